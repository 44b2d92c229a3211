//! A prefix statement over more repositories than one invocation reaches (CONTRACT 15):
//! GIVEN a few hundred in-memory repositories whose reads take a while and an invocation
//! with a couple of seconds to run, WHEN CloudFormation sends the Create, Update or Delete,
//! THEN the work continues in the next invocation of the function (the self-invoke replaced
//! by a stand-in that queues the event, run here as Lambda would run it), and the last
//! invocation sends the one response; a step delivered twice is done once.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::event::progress::{PROGRESS_KEY, Phase, Progress};
use ecr_policy_provider::lock::key;
use ecr_policy_provider::lock::memory::MemoryLock;
use ecr_policy_provider::provider::{Outcome, Provider, Unsent};
use ecr_policy_provider::relay::{Handing, Relay};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Recorder, deadline_in, event, provider_with, repo};

const CREATE: &str = "repository-prefix-statement-create.json";
const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ecr-policy-provider";
const SID: &str = "PullForTeamConsumers";
const TAG: &str = "6a2f0c4e-9b1d-4e7a-8c3f-2d5b7e9a1c02";
/// Repositories under `team/`, and beside it.
const UNDER: usize = 300;
const BESIDE: [&str; 2] = ["team-x", "teams/app"];
/// What one invocation has to run: a third or so of the repositories, at the reads' pace.
const INVOCATION: Duration = Duration::from_secs(2);
const READ_DELAY: Duration = Duration::from_millis(20);

/// The self-invoke's stand-in: the events handed over, in order, for the test to run.
#[derive(Default)]
struct Queue(Mutex<VecDeque<(String, String)>>);

impl Relay for Queue {
    fn hand_over<'a>(&'a self, function_arn: &'a str, payload: String) -> Handing<'a> {
        self.0
            .lock()
            .expect("lock")
            .push_back((function_arn.to_owned(), payload));
        Box::pin(async { Ok(()) })
    }
}

impl Queue {
    fn next(&self) -> Option<Value> {
        let (arn, payload) = self.0.lock().expect("lock").pop_front()?;
        assert_eq!(arn, ARN, "the function invokes itself");
        Some(serde_json::from_str(&payload).expect("JSON"))
    }
}

fn name(n: usize) -> String {
    format!("team/r{n:03}")
}

struct Harness {
    store: Arc<MemoryEcr>,
    lock: Arc<MemoryLock>,
    recorder: Recorder,
    queue: Arc<Queue>,
    provider: Provider<Arc<MemoryEcr>, Arc<MemoryLock>>,
}

impl Harness {
    async fn new() -> Self {
        let store = Arc::new(MemoryEcr::new());
        for n in 0..UNDER {
            store.create_repository("us-east-1", &name(n));
        }
        for name in BESIDE {
            store.create_repository("us-east-1", name);
        }
        store.delay_reads(READ_DELAY);
        let lock = Arc::new(MemoryLock::new());
        let recorder = Recorder::start(Vec::new()).await;
        let queue = Arc::new(Queue::default());
        let provider = provider_with(store.clone(), support::config(&recorder))
            .with_lock(Some(lock.clone()))
            .with_relay(queue.clone());
        Self {
            store,
            lock,
            recorder,
            queue,
            provider,
        }
    }

    fn create(&self) -> Value {
        event(CREATE, &self.recorder.url)
    }

    async fn invoke(&self, event: Value, n: usize) -> Outcome {
        self.provider
            .handle_as(
                event,
                deadline_in(INVOCATION),
                &format!("invocation-{n}"),
                ARN,
            )
            .await
            .expect("the invocation ended well")
    }

    /// Runs `event`, then every invocation it hands over, until one answers. The outcomes.
    async fn run(&self, event: Value) -> Vec<Outcome> {
        let mut outcomes = vec![self.invoke(event, 0).await];
        while let Some(next) = self.queue.next() {
            outcomes.push(self.invoke(next, outcomes.len()).await);
        }
        outcomes
    }

    /// The one response CloudFormation got.
    fn response(&self) -> Value {
        let requests = self.recorder.requests();
        assert_eq!(requests.len(), 1, "exactly one response");
        requests[0].json()
    }

    fn holds(&self, name: &str) -> bool {
        self.store
            .live(&repo(name))
            .is_some_and(|text| text.contains(SID))
    }

    fn leases_free(&self) -> bool {
        (0..UNDER).all(|n| self.lock.lease(&key(&repo(&name(n)))).is_none())
    }
}

fn progress_of(event: &Value) -> Progress {
    serde_json::from_value(event[PROGRESS_KEY].clone()).expect("progress")
}

/// Each invocation but the last handed over, and the last answered.
fn handed_over_then_answered(outcomes: &[Outcome]) {
    let (last, before) = outcomes.split_last().expect("an invocation");
    assert!(
        !before.is_empty(),
        "the work continued in another invocation"
    );
    for outcome in before {
        assert_eq!(outcome.unsent, Some(Unsent::HandedOver));
    }
    assert_eq!(last.unsent, None);
}

#[tokio::test]
async fn a_create_over_hundreds_of_repositories_continues_and_the_last_invocation_answers() {
    let h = Harness::new().await;
    let outcomes = h.run(h.create()).await;
    handed_over_then_answered(&outcomes);

    let r = h.response();
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], UNDER.to_string());
    assert!((0..UNDER).all(|n| h.holds(&name(n))));
    assert!(BESIDE.iter().all(|name| !h.holds(name)));
    for n in 0..UNDER {
        assert_eq!(
            h.lock.record(&key(&repo(&name(n)))).holder_of(SID),
            Some(TAG)
        );
    }
    assert!(h.leases_free());
    // Each repository was written once, whichever invocation reached it.
    assert_eq!(h.store.calls().writes, UNDER);
}

#[tokio::test]
async fn a_step_delivered_twice_is_done_once_and_answered_once() {
    let h = Harness::new().await;
    let first = h.invoke(h.create(), 0).await;
    assert_eq!(first.unsent, Some(Unsent::HandedOver));
    let next = h.queue.next().expect("handed over");
    let progress = progress_of(&next);
    assert_eq!(progress.step, 1);
    assert_eq!(progress.phase, Phase::Apply);
    let done = (0..UNDER).filter(|n| h.holds(&name(*n))).count();
    assert!(done > 0 && done < UNDER, "{done}");
    assert_eq!(progress.repositories, done);

    // Lambda delivers the same event twice, at once: one carries it, the other does nothing.
    let (a, b) = tokio::join!(h.invoke(next.clone(), 1), h.invoke(next.clone(), 2));
    let mut unsent = [a.unsent, b.unsent];
    unsent.sort_by_key(|u| format!("{u:?}"));
    assert!(
        unsent.contains(&Some(Unsent::Duplicate)),
        "one of them is a duplicate: {unsent:?}"
    );
    // And once more, after the first was done with it.
    let again = h.invoke(next, 3).await;
    assert_eq!(again.unsent, Some(Unsent::Duplicate));

    let mut n = 4;
    while let Some(next) = h.queue.next() {
        h.invoke(next, n).await;
        n += 1;
    }
    let r = h.response();
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], UNDER.to_string());
    assert!((0..UNDER).all(|n| h.holds(&name(n))));
    assert_eq!(h.store.calls().writes, UNDER);
}

#[tokio::test]
async fn a_refusal_in_a_later_invocation_takes_out_what_every_invocation_wrote() {
    let h = Harness::new().await;
    // The last repository has a statement of the same Sid that differs: it refuses, in an
    // invocation after the first.
    let last = name(UNDER - 1);
    let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": ["ecr:BatchGetImage"]});
    let doc = json!({"Version": "2012-10-17", "Statement": [theirs]});
    h.store.seed(&repo(&last), &doc.to_string());

    let outcomes = h.run(h.create()).await;
    handed_over_then_answered(&outcomes);
    let r = h.response();
    assert_eq!(r["Status"], "FAILED", "{r}");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains(&last), "{reason}");
    assert!(reason.contains("taken out again"), "{reason}");
    // Every repository is as it was: what each invocation wrote is gone.
    assert!((0..UNDER - 1).all(|n| !h.holds(&name(n))));
    assert_eq!(
        h.store
            .live(&repo(&last))
            .map(|t| serde_json::from_str::<Value>(&t).expect("JSON")),
        Some(doc)
    );
    assert!(h.leases_free());
}

#[tokio::test]
async fn a_delete_continues_the_same_way() {
    let h = Harness::new().await;
    h.run(h.create()).await;
    let created = h.response();
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let before = h.recorder.requests().len();

    let mut delete = h.create();
    delete["RequestType"] = "Delete".into();
    delete["RequestId"] = "d1".into();
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    let outcomes = h.run(delete).await;
    handed_over_then_answered(&outcomes);
    let requests = h.recorder.requests();
    assert_eq!(
        requests.len(),
        before + 1,
        "exactly one response to the Delete"
    );
    let r = requests[before].json();
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!((0..UNDER).all(|n| !h.holds(&name(n))));
    assert!(h.leases_free());
}

#[tokio::test]
async fn an_update_continues_and_reaches_every_repository() {
    let h = Harness::new().await;
    h.run(h.create()).await;
    let created = h.response();
    let before = h.recorder.requests().len();

    let mut update = h.create();
    update["RequestType"] = "Update".into();
    update["RequestId"] = "u1".into();
    update["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    update["OldResourceProperties"] = update["ResourceProperties"].clone();
    update["ResourceProperties"]["Statement"][0]["Action"] = json!(["ecr:BatchGetImage"]);
    let outcomes = h.run(update).await;
    handed_over_then_answered(&outcomes);
    let requests = h.recorder.requests();
    assert_eq!(
        requests.len(),
        before + 1,
        "exactly one response to the Update"
    );
    let r = requests[before].json();
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], UNDER.to_string());
    assert_eq!(r["PhysicalResourceId"], created["PhysicalResourceId"]);
    for n in 0..UNDER {
        let live = h.store.live(&repo(&name(n))).expect("a policy");
        assert!(!live.contains("GetDownloadUrlForLayer"), "{live}");
    }
}
