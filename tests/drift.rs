//! Drift (CONTRACT 13), over the in-memory ECR and lock table: GIVEN what the provider's
//! resources wrote, WHEN a console edit, a CloudTrail event or the sweep comes, THEN the
//! drift is reported (and restored when asked) and nothing nobody holds is touched.

mod support;

use ecr_policy_provider::drift::{self, Action};
use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::ecr::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore};
use ecr_policy_provider::identity::Target;
use ecr_policy_provider::lock::{LockStore, RecordReader, key};
use ecr_policy_provider::provider::{InvocationError, Invoked, Provider};
use ecr_policy_provider::retry::{Clock, epoch_ms};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::world::{FaultyLock, event_time};
use support::{Harness, deadline_in, denied, grant, registry, repo, sample};

const OWN_ROLE: &str = "arn:aws:iam::123456789012:role/provider-FunctionRole-1A2B3C";

/// The provider with a lock table, over an ECR with repositories `app`, `web` and `api`.
async fn harness() -> Harness {
    Harness::new(&["app", "web", "api"]).await
}

/// A harness where a stack's statement resources grant each (repository, Sid, account),
/// each resource named by its Sid.
async fn granted(grants: &[(&str, &str, &str)]) -> Harness {
    let h = harness().await;
    for (repository, sid, account) in grants {
        h.grant(repository, sid, sid, account).await;
    }
    h
}

/// What drift's tests do with the shared harness.
trait Checks {
    /// The provider, its drift checks doing `action`.
    fn provider_doing(&self, action: Action) -> Provider<Arc<MemoryEcr>, Arc<FaultyLock>>;
    /// A custom-resource request, answered SUCCESS.
    async fn create(&self, event: Value, request: &str) -> Value;
    /// A statement resource `logical` granting `account` under `sid`: its PhysicalResourceId.
    async fn grant(&self, repository: &str, logical: &str, sid: &str, account: &str) -> String;
    /// The Delete of a statement resource made by [`Checks::grant`], answered SUCCESS.
    async fn revoke(&self, physical_id: &str, repository: &str, logical: &str, sid: &str);
    async fn drift(&self, action: Action, event: &Value)
    -> Result<drift::Summary, InvocationError>;
    /// A CloudTrail sample from `events/` for repository `repository`, checked.
    async fn call(&self, action: Action, sample: &str, repository: &str) -> drift::Summary;
    /// A deployment's lease on `repository`, held by `owner` and given back after `after`:
    /// what gives it back.
    fn lease_given_back(
        &self,
        repository: &str,
        owner: &'static str,
        after: Duration,
    ) -> tokio::task::JoinHandle<()>;
    /// An edit in the console: the live policy replaced by `statements`.
    fn console(&self, target: &Target, statements: Vec<Value>);
}

impl Checks for Harness {
    fn provider_doing(&self, action: Action) -> Provider<Arc<MemoryEcr>, Arc<FaultyLock>> {
        let mut config = self.config.clone();
        config.drift = drift::Settings {
            action,
            own_role: Some(OWN_ROLE.into()),
            function_name: Some("provider-Function-1".into()),
            reads_per_second: 0,
            // The in-memory ECR's reads never lag here: judged at once.
            own_write_lag: Duration::ZERO,
        };
        self.provider_with(config)
    }

    async fn create(&self, mut event: Value, request: &str) -> Value {
        event["RequestId"] = request.into();
        let before = self.recorder.requests().len();
        let invoked = self
            .provider_doing(Action::Report)
            .invoke(
                &event.to_string(),
                deadline_in(Duration::from_secs(30)),
                request,
            )
            .await
            .expect("answered");
        assert!(matches!(invoked, Invoked::Request(_)));
        assert_eq!(invoked.result(), Value::Null);
        let response = self.recorder.requests()[before].json();
        assert_eq!(response["Status"], "SUCCESS", "{response}");
        response
    }

    async fn grant(&self, repository: &str, logical: &str, sid: &str, account: &str) -> String {
        let mut e = self.event("repository-statement-create.json");
        e["LogicalResourceId"] = logical.into();
        e["ResourceProperties"]["RepositoryName"] = repository.into();
        e["ResourceProperties"]["Statement"] = json!([grant(sid, account)]);
        let response = self.create(e, &format!("req-{logical}")).await;
        response["PhysicalResourceId"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    async fn revoke(&self, physical_id: &str, repository: &str, logical: &str, sid: &str) {
        let mut e = self.event("repository-statement-delete.json");
        e["LogicalResourceId"] = logical.into();
        e["PhysicalResourceId"] = physical_id.into();
        e["ResourceProperties"]["RepositoryName"] = repository.into();
        e["ResourceProperties"]["Statement"] = json!([grant(sid, "111122223333")]);
        self.create(e, &format!("req-delete-{logical}")).await;
    }

    async fn drift(
        &self,
        action: Action,
        event: &Value,
    ) -> Result<drift::Summary, InvocationError> {
        match self
            .provider_doing(action)
            .invoke(
                &event.to_string(),
                deadline_in(Duration::from_secs(30)),
                "inv-1",
            )
            .await?
        {
            Invoked::Drift(summary) => Ok(summary),
            Invoked::Request(_) => panic!("a drift event answered as a request"),
        }
    }

    async fn call(&self, action: Action, sample: &str, repository: &str) -> drift::Summary {
        self.drift(action, &cloudtrail(sample, repository))
            .await
            .expect("checked")
    }

    fn lease_given_back(
        &self,
        repository: &str,
        owner: &'static str,
        after: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let target_key = key(&repo(repository));
        self.lock.hold(&target_key, owner, epoch_ms() + 60_000);
        let lock = self.lock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            lock.release(&target_key, owner, false)
                .await
                .expect("given back");
        })
    }

    fn console(&self, target: &Target, statements: Vec<Value>) {
        self.seed_policy(
            target,
            &json!({"Version": "2012-10-17", "Statement": statements}),
        );
    }
}

/// `shape` checked by drift's own entry point with `settings`, on the system clock, with
/// `left` to run.
async fn check<E, L>(
    store: &E,
    lock: &L,
    shape: &drift::Shape,
    settings: &drift::Settings,
    left: Duration,
) -> Result<drift::Summary, drift::DriftError>
where
    E: PolicyStore,
    L: LockStore + RecordReader,
{
    let until = tokio::time::Instant::now() + left;
    drift::run(store, lock, shape, settings, &Clock::System, "inv", until).await
}

/// `event` given to `provider` with `left` to run, failing as a check that could not be
/// done fails (`DriftCheckFailed`, for Lambda to deliver it again): what it says, and how
/// long it took.
async fn check_failed<L>(
    provider: &Provider<Arc<MemoryEcr>, L>,
    event: &Value,
    left: Duration,
) -> (String, Duration)
where
    L: LockStore + RecordReader,
{
    let started = std::time::Instant::now();
    let error = provider
        .invoke(&event.to_string(), deadline_in(left), "inv")
        .await
        .expect_err("the invocation fails");
    let took = started.elapsed();
    let message = error.to_string();
    assert_eq!(
        lambda_runtime::Diagnostic::from(error).error_type,
        "DriftCheckFailed",
        "{message}"
    );
    (message, took)
}

/// Drift's settings doing `action`, its reads not paced.
fn unpaced(action: Action) -> drift::Settings {
    drift::Settings {
        action,
        reads_per_second: 0,
        ..Default::default()
    }
}

/// The invocation's result: targets, drifted, restored.
fn counts(summary: &drift::Summary, (targets, drifted, restored): (usize, usize, usize)) {
    assert_eq!(
        summary.result(),
        json!({"targets": targets, "drifted": drifted, "restored": restored})
    );
}

/// One target checked and found drifted by `missing` held Sids, not restored.
fn found_missing(summary: &drift::Summary, missing: &[&str]) {
    counts(summary, (1, 1, 0));
    assert_eq!(summary.findings[0].difference.missing, missing);
}

/// A sample CloudTrail event from `events/`, for repository `repository`, made now. The
/// sample's `policyText` (what a set left) is taken out: the tests that set it say what it is.
fn cloudtrail(name: &str, repository: &str) -> Value {
    let mut e = sample(name);
    e["detail"]["eventTime"] = event_time(epoch_ms()).into();
    if let Some(parameters) = e["detail"]["requestParameters"].as_object_mut() {
        parameters.insert("repositoryName".into(), repository.into());
        parameters.remove("policyText");
    }
    e
}

/// The console sets `statements` as app's policy: the text, and the call's CloudTrail
/// record, made now.
async fn console_sets(h: &Harness, statements: Vec<Value>) -> (String, Value) {
    let console = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    h.store
        .put(&repo("app"), &console, false)
        .await
        .expect("the console's write");
    let mut event = cloudtrail("drift/set-repository-policy.json", "app");
    event["detail"]["requestParameters"]["policyText"] = console.clone().into();
    (console, event)
}

fn sweep() -> Value {
    sample("drift/sweep.json")
}

#[tokio::test]
async fn a_held_statement_removed_in_the_console_is_reported_and_nothing_is_written() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("app", "PullB", "222233334444"),
    ])
    .await;
    h.console(
        &repo("app"),
        vec![
            grant("PullB", "222233334444"),
            grant("Console", "777788889999"),
        ],
    );
    let (summary, (_, writes)) = h
        .calls_of(h.call(Action::Report, "drift/set-repository-policy.json", "app"))
        .await;

    counts(&summary, (1, 1, 0));
    let finding = &summary.findings[0];
    assert_eq!(finding.difference.missing, ["PullA"]);
    assert!(finding.difference.changed.is_empty());
    assert_eq!(
        finding.by.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/Admin/alice")
    );
    assert!(!finding.restored);
    assert_eq!(writes, 0, "Report writes nothing");
    assert_eq!(h.sids(&repo("app")), ["PullB", "Console"]);
}

#[tokio::test]
async fn restore_puts_back_what_is_held_and_keeps_the_consoles_statements() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("app", "PullB", "222233334444"),
    ])
    .await;
    // PullA removed, PullB widened to another account, a console statement added.
    h.console(
        &repo("app"),
        vec![
            grant("PullB", "999999999999"),
            grant("Console", "777788889999"),
        ],
    );

    let summary = h
        .call(Action::Restore, "drift/set-repository-policy.json", "app")
        .await;

    counts(&summary, (1, 1, 1));
    assert_eq!(summary.findings[0].difference.missing, ["PullA"]);
    assert_eq!(summary.findings[0].difference.changed, ["PullB"]);
    let mut sids = h.sids(&repo("app"));
    sids.sort();
    assert_eq!(sids, ["Console", "PullA", "PullB"]);
    let live = h.store.live(&repo("app")).expect("a policy");
    assert!(
        live.contains("222233334444") && !live.contains("999999999999"),
        "{live}"
    );
    assert_eq!(
        h.lock.lease(&key(&repo("app"))),
        None,
        "the lease is given back"
    );
    // Restored: the next look finds nothing.
    let again = h.drift(Action::Restore, &sweep()).await.expect("checked");
    counts(&again, (1, 0, 0));
}

#[tokio::test]
async fn an_owned_whole_policy_changed_or_deleted_is_drift_and_restore_writes_it_back() {
    let h = harness().await;
    let created = h.event("registry-create.json");
    h.create(created.clone(), "req-registry").await;
    let owned = h.store.live(&registry()).expect("written");

    h.console(&registry(), vec![json!({"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": ["ecr:ReplicateImage"], "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"})]);
    let changed = h
        .call(Action::Report, "drift/put-registry-policy.json", "-")
        .await;
    assert_eq!(
        changed.findings[0].difference.whole_policy,
        Some(drift::compare::Whole::Changed)
    );

    h.store
        .delete(&registry(), None)
        .await
        .expect("deleted out of band");
    let deleted = h
        .call(Action::Restore, "drift/delete-registry-policy.json", "-")
        .await;
    assert_eq!(
        deleted.findings[0].difference.whole_policy,
        Some(drift::compare::Whole::Deleted)
    );
    assert_eq!(deleted.restored(), 1);
    assert_eq!(h.store.live(&registry()), Some(owned));
}

#[tokio::test]
async fn a_statement_nobody_holds_is_never_drift() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    let mut statements: Vec<Value> =
        serde_json::from_str::<Value>(&h.store.live(&repo("app")).unwrap()).unwrap()["Statement"]
            .as_array()
            .unwrap()
            .clone();
    statements.push(grant("Console", "777788889999"));
    h.console(&repo("app"), statements);
    let (summary, (_, writes)) = h
        .calls_of(h.call(Action::Restore, "drift/set-repository-policy.json", "app"))
        .await;
    counts(&summary, (1, 0, 0));
    assert_eq!(writes, 0);
}

#[tokio::test]
async fn an_event_for_a_target_nobody_manages_reads_nothing_from_ecr() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("web"), vec![grant("Console", "777788889999")]);
    let (summary, (reads, _)) = h
        .calls_of(h.call(Action::Restore, "drift/set-repository-policy.json", "web"))
        .await;
    counts(&summary, (0, 0, 0));
    assert_eq!(reads, 0);
}

#[tokio::test]
async fn the_providers_own_write_is_not_drift() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    // The event of the provider's own SetRepositoryPolicy, by its role.
    let mut own = cloudtrail("drift/set-repository-policy.json", "app");
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = OWN_ROLE.into();
    own["detail"]["userIdentity"]["arn"] =
        "arn:aws:sts::123456789012:assumed-role/provider-FunctionRole-1A2B3C/provider-Function-1"
            .into();
    let (summary, (reads, _)) = h.calls_of(h.drift(Action::Restore, &own)).await;
    counts(&summary.expect("checked"), (0, 0, 0));
    assert_eq!(reads, 0, "not even read");

    // And by anyone's account, what the provider wrote is what the record says.
    let by_anyone = h
        .call(Action::Restore, "drift/set-repository-policy.json", "app")
        .await;
    counts(&by_anyone, (1, 0, 0));
}

#[tokio::test]
async fn a_console_edit_during_a_deployment_is_checked_once_the_lease_is_given_back() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("app"), vec![]);
    // A deployment holds the lease when the console's CloudTrail event arrives, and gives it
    // back 600 ms later.
    let deployment = h.lease_given_back("app", "req-deploy/inv-deploy", Duration::from_millis(600));
    let started = std::time::Instant::now();

    let (summary, (reads, _)) = h
        .calls_of(h.call(Action::Report, "drift/delete-repository-policy.json", "app"))
        .await;

    deployment.await.expect("the deployment ended");
    assert!(started.elapsed() >= Duration::from_millis(600));
    found_missing(&summary, &["PullA"]);
    assert_eq!(reads, 1, "ECR is read once, after the lease");
}

#[tokio::test]
async fn a_lease_left_to_expire_is_waited_for_until_it_ends() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("app"), vec![]);
    // An invocation that died holding the lease: nobody gives it back, it expires.
    h.lock
        .hold(&key(&repo("app")), "req-x/inv-x", epoch_ms() + 700);
    let started = std::time::Instant::now();
    let summary = h
        .call(Action::Report, "drift/delete-repository-policy.json", "app")
        .await;
    assert!(started.elapsed() >= Duration::from_millis(700));
    counts(&summary, (1, 1, 0));
}

#[tokio::test]
async fn an_event_whose_target_stays_leased_fails_so_that_lambda_delivers_it_again() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("app"), vec![]);
    let lease_owner = "req-x/inv-x";
    h.lock
        .hold(&key(&repo("app")), lease_owner, epoch_ms() + 60_000);
    let event = cloudtrail("drift/delete-repository-policy.json", "app");

    // Never dropped: the invocation fails.
    let provider = h.provider_doing(Action::Report);
    let (error, took) = check_failed(&provider, &event, Duration::from_secs(2)).await;

    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        error.contains("held the lease on repository/us-east-1/app"),
        "{error}"
    );
    // Lambda's retry delivers the same event once the lease is given back: checked then.
    h.lock
        .release(&key(&repo("app")), lease_owner, false)
        .await
        .expect("given back");
    let again = h.drift(Action::Report, &event).await.expect("checked");
    counts(&again, (1, 1, 0));
}

#[tokio::test]
async fn the_sweep_looks_again_at_a_leased_target_once_the_others_are_done() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("web", "PullW", "111122223333"),
        ("api", "PullI", "111122223333"),
    ])
    .await;
    for name in ["app", "web", "api"] {
        h.console(&repo(name), vec![]);
    }
    // app's lease is given back during the sweep; api's outlives it.
    let deployment = h.lease_given_back("app", "req-a/inv-a", Duration::from_millis(500));
    h.lock
        .hold(&key(&repo("api")), "req-b/inv-b", epoch_ms() + 60_000);
    let settings = unpaced(Action::Report);

    let summary = check(
        h.store.as_ref(),
        h.lock.as_ref(),
        &drift::Shape::Sweep,
        &settings,
        Duration::from_secs(2),
    )
    .await
    .expect("a leased target does not fail a sweep: the next one covers it");

    deployment.await.expect("the deployment ended");
    counts(&summary, (3, 2, 0));
    let drifted: Vec<String> = summary.findings.iter().map(|f| key(&f.target)).collect();
    assert_eq!(
        drifted,
        ["repository/us-east-1/app", "repository/us-east-1/web"]
    );
    assert_eq!(summary.busy, 1, "api, still leased when the time was up");
}

/// The in-memory ECR, watched: it notes the `force` of every write, and, when made
/// [`Watched::interleaved`], its first read waits, before it reads, for something else to
/// happen.
struct Watched {
    inner: Arc<MemoryEcr>,
    forces: std::sync::Mutex<Vec<bool>>,
    go: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    done: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Watched {
    fn new(inner: Arc<MemoryEcr>) -> Self {
        Self {
            inner,
            forces: Default::default(),
            go: Default::default(),
            done: Default::default(),
        }
    }

    /// Also the two ends the test holds: told when the first read starts, it tells when the
    /// read may go on.
    fn interleaved(
        inner: Arc<MemoryEcr>,
    ) -> (
        Self,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (go, started) = tokio::sync::oneshot::channel();
        let (finished, done) = tokio::sync::oneshot::channel();
        let store = Self::new(inner);
        *store.go.lock().unwrap() = Some(go);
        *store.done.try_lock().expect("new") = Some(done);
        (store, started, finished)
    }
}

impl PolicyStore for Watched {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        let go = self.go.lock().unwrap().take();
        if let Some(go) = go {
            go.send(()).expect("the test listens");
            let done = self.done.lock().await.take().expect("once");
            done.await.expect("it happened");
        }
        self.inner.get(target).await
    }
    async fn put(&self, target: &Target, text: &str, force: bool) -> Result<String, EcrError> {
        self.forces.lock().unwrap().push(force);
        self.inner.put(target, text, force).await
    }
    async fn delete(&self, target: &Target, registry: Option<&str>) -> Result<Deleted, EcrError> {
        self.inner.delete(target, registry).await
    }
    async fn policy_scope(&self, region: &str) -> Result<PolicyScope, EcrError> {
        self.inner.policy_scope(region).await
    }

    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.inner.repositories(region).await
    }

    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.inner.templates(region).await
    }
}

/// `shape` checked with `settings`, where `meanwhile` runs to its end between the check's
/// read of the record and its first read of ECR.
async fn check_while(
    h: &Harness,
    shape: &drift::Shape,
    settings: &drift::Settings,
    meanwhile: impl std::future::Future<Output = ()>,
) -> Result<drift::Summary, drift::DriftError> {
    let (store, started, finished) = Watched::interleaved(h.store.clone());
    let check = check(
        &store,
        h.lock.as_ref(),
        shape,
        settings,
        Duration::from_secs(30),
    );
    tokio::pin!(check);
    // A check that ends without reading ECR fails the test instead of leaving it waiting.
    tokio::select! {
        ended = &mut check => panic!("the check ended without reading ECR: {ended:?}"),
        read = started => read.expect("the check reads ECR"),
    }
    let (summary, ()) = tokio::join!(check, async {
        meanwhile.await;
        finished.send(()).expect("the check waits");
    });
    summary
}

#[tokio::test]
async fn restore_writes_with_the_force_the_owning_resources_asked_for() {
    let h = harness().await;
    // app: a statement resource that asked for Force, beside one that did not; web: only
    // one that did not; api: a whole policy that asked for Force.
    let mut forced = h.event("repository-statement-create.json");
    forced["LogicalResourceId"] = "PullF".into();
    forced["ResourceProperties"]["Statement"] = json!([grant("PullF", "111122223333")]);
    forced["ResourceProperties"]["Force"] = "true".into();
    h.create(forced, "req-PullF").await;
    h.grant("app", "PullA", "PullA", "222233334444").await;
    h.grant("web", "PullW", "PullW", "222233334444").await;
    let mut whole = h.event("repository-create.json");
    whole["ResourceProperties"]["RepositoryName"] = "api".into();
    whole["ResourceProperties"]["Force"] = true.into();
    h.create(whole, "req-whole").await;
    let held = |name: &str, sid: &str| h.lock.record(&key(&repo(name))).statements[sid].force;
    assert!(held("app", "PullF"), "kept in the record");
    assert!(!held("app", "PullA") && !held("web", "PullW"));
    assert!(
        h.lock
            .record(&key(&repo("api")))
            .owner
            .expect("owned")
            .force
    );
    let store = Watched::new(h.store.clone());
    let restore = unpaced(Action::Restore);
    for (name, force) in [("app", true), ("web", false), ("api", true)] {
        h.console(&repo(name), vec![]);
        let shape = drift::shape_of(&cloudtrail("drift/delete-repository-policy.json", name))
            .expect("a call");
        let summary = check(
            &store,
            h.lock.as_ref(),
            &shape,
            &restore,
            Duration::from_secs(30),
        )
        .await
        .expect("checked");
        counts(&summary, (1, 1, 1));
        assert_eq!(
            store.forces.lock().unwrap().pop(),
            Some(force),
            "{name}: written once, with the Force asked for"
        );
    }
}

#[tokio::test]
async fn the_providers_own_write_landing_while_a_check_reads_is_not_drift() {
    let shapes = [
        (
            "a CloudTrail event",
            drift::shape_of(&cloudtrail("drift/set-repository-policy.json", "app"))
                .expect("a call"),
        ),
        ("the sweep", drift::Shape::Sweep),
    ];
    for (what, shape) in shapes {
        for action in [Action::Report, Action::Restore] {
            let h = harness().await;
            let grant_a = h.grant("app", "PullA", "PullA", "111122223333").await;
            h.grant("app", "PullB", "PullB", "222233334444").await;
            let settings = unpaced(action);
            let writes = h.store.calls().writes;
            // The check reads the record; then, before its read of ECR, the provider deletes
            // PullA (the record first, then ECR), and only then ECR is read.
            let summary = check_while(&h, &shape, &settings, async {
                h.revoke(&grant_a, "app", "PullA", "PullA").await;
            })
            .await
            .expect("checked");
            counts(&summary, (1, 0, 0));
            assert_eq!(h.sids(&repo("app")), ["PullB"], "{what}, {action:?}");
            assert_eq!(
                h.store.calls().writes,
                writes + 1,
                "{what}, {action:?}: the delete's write, and nothing else"
            );
        }
    }
}

#[tokio::test]
async fn a_console_edit_after_the_providers_write_is_judged_against_the_new_record() {
    let h = harness().await;
    let grant_a = h.grant("app", "PullA", "PullA", "111122223333").await;
    h.grant("app", "PullB", "PullB", "222233334444").await;
    let settings = unpaced(Action::Report);
    // While the sweep reads, the stack deletes PullA, then someone removes PullB in the
    // console: PullB is drift, PullA is not.
    let summary = check_while(&h, &drift::Shape::Sweep, &settings, async {
        h.revoke(&grant_a, "app", "PullA", "PullA").await;
        h.console(&repo("app"), vec![grant("Console", "777788889999")]);
    })
    .await;
    found_missing(&summary.expect("swept"), &["PullB"]);
}

#[tokio::test]
async fn a_write_whose_lease_is_still_held_after_the_read_is_judged_once_it_is_given_back() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("app", "PullB", "222233334444"),
    ])
    .await;
    let target_key = key(&repo("app"));
    let owner = "req-deploy/inv-deploy";
    let shape =
        drift::shape_of(&cloudtrail("drift/set-repository-policy.json", "app")).expect("a call");
    let lock = h.lock.clone();
    let began = std::time::Instant::now();
    // Between the check's read of the record and its read of ECR, a request takes the lease,
    // stores a record without PullA and writes ECR so; it gives the lease back 400 ms later.
    let summary = check_while(&h, &shape, &drift::Settings::default(), async {
        let mut record = lock
            .acquire(&target_key, owner, epoch_ms(), epoch_ms() + 60_000)
            .await
            .expect("the lease");
        record.statements.remove("PullA");
        lock.store(&target_key, owner, &record)
            .await
            .expect("stored");
        let doc = json!({"Version": "2012-10-17", "Statement": [grant("PullB", "222233334444")]});
        h.store
            .put(&repo("app"), &doc.to_string(), false)
            .await
            .expect("written");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            lock.release(&target_key, owner, false)
                .await
                .expect("given back");
        });
    })
    .await;
    let summary = summary.expect("checked");
    counts(&summary, (1, 0, 0));
    assert!(
        began.elapsed() >= Duration::from_millis(400),
        "judged after the lease"
    );
}

#[tokio::test]
async fn a_cross_account_caller_is_named_by_its_account_and_principal() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("app"), vec![]);
    let mut event = cloudtrail("drift/delete-repository-policy.json", "app");
    event["detail"]["userIdentity"] =
        json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "444455556666"});
    let summary = h.drift(Action::Report, &event).await.expect("checked");
    assert_eq!(
        summary.findings[0].by.as_deref(),
        Some("accountId=444455556666 type=AWSAccount principalId=AIDAEXAMPLE")
    );
}

#[tokio::test]
async fn a_deleted_repository_is_drift_that_cannot_be_restored() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.store.delete_repository("us-east-1", "app");
    let summary = h
        .call(Action::Restore, "drift/delete-repository.json", "app")
        .await;
    counts(&summary, (1, 1, 0));
    let finding = &summary.findings[0];
    assert_eq!(finding.difference.missing, ["PullA"]);
    let why = finding.not_restored.as_deref().expect("why not");
    assert!(why.contains("does not exist"), "{why}");
    assert_eq!(
        h.lock.lease(&key(&repo("app"))),
        None,
        "a refused write gives the lease back"
    );
}

#[tokio::test]
async fn the_sweep_checks_every_target_in_the_record() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("web", "PullW", "111122223333"),
        ("api", "PullI", "111122223333"),
    ])
    .await;
    h.create(h.event("registry-create.json"), "req-registry")
        .await;
    h.console(&repo("web"), vec![grant("Console", "777788889999")]);
    h.console(&repo("api"), vec![grant("PullI", "999999999999")]);

    let summary = h.drift(Action::Report, &sweep()).await.expect("swept");
    counts(&summary, (4, 2, 0));
    let drifted: Vec<String> = summary.findings.iter().map(|f| key(&f.target)).collect();
    assert_eq!(
        drifted,
        ["repository/us-east-1/api", "repository/us-east-1/web"]
    );
    assert!(
        summary.findings.iter().all(|f| f.by.is_none()),
        "a sweep knows no caller"
    );
}

#[tokio::test]
async fn an_eventbridge_event_of_another_shape_is_an_invocation_error() {
    let h = harness().await;
    let mut push = cloudtrail("drift/set-repository-policy.json", "app");
    push["detail"]["eventName"] = "PutImage".into();
    let error = h.drift(Action::Report, &push).await.expect_err("refused");
    assert!(matches!(error, InvocationError::UnknownShape(_)), "{error}");
    assert!(error.to_string().contains("PutImage"), "{error}");
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "UnknownEvent");
    assert!(h.recorder.requests().is_empty(), "nothing answered");
}

#[tokio::test]
async fn without_a_lock_table_a_drift_event_fails_loudly() {
    let h = harness().await;
    let provider = h.provider_without_lock_table();
    for event in [
        sweep(),
        cloudtrail("drift/set-repository-policy.json", "app"),
    ] {
        // No record to compare with.
        let (error, _) = check_failed(&provider, &event, Duration::from_secs(30)).await;
        assert!(error.contains("lock table"), "{error}");
    }
}

#[tokio::test]
async fn a_sweep_out_of_time_leaves_the_rest_for_the_next_one() {
    let h = granted(&[
        ("app", "PullA", "111122223333"),
        ("web", "PullW", "111122223333"),
    ])
    .await;
    h.console(&repo("web"), vec![]);
    let reads = h.store.calls().reads;
    let settings = unpaced(Action::Report);
    let run = |left| {
        check(
            h.store.as_ref(),
            h.lock.as_ref(),
            &drift::Shape::Sweep,
            &settings,
            left,
        )
    };
    let late = run(Duration::ZERO).await.expect("swept");
    assert_eq!((late.targets, late.unchecked), (0, 2));
    assert_eq!(h.store.calls().reads, reads, "nothing read");
    let in_time = run(Duration::from_secs(30)).await.expect("swept");
    assert_eq!(
        (in_time.targets, in_time.unchecked, in_time.drifted()),
        (2, 0, 1)
    );
}

#[tokio::test]
async fn a_lagging_read_does_not_hide_what_the_cloudtrail_record_says() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    // The console's write, which reads show only 0.8 s later (ECR's reads can lag).
    h.store.lag_reads(Duration::from_millis(800));
    tokio::time::sleep(Duration::from_millis(900)).await; // the grant's own write shows by now
    let (_, event) = console_sets(&h, vec![grant("Console", "777788889999")]).await;
    let (summary, (reads, _)) = h.calls_of(h.drift(Action::Report, &event)).await;

    found_missing(&summary.expect("checked"), &["PullA"]);
    assert_eq!(reads, 2, "read again once, after the lag");
}

#[tokio::test]
async fn a_console_edit_that_leaves_the_held_statements_is_not_drift_whatever_a_lagging_read_shows()
{
    // The provider's grant was written moments ago; reads lag behind it. The console then
    // adds a statement of its own, and its CloudTrail record shows the grant still there:
    // the read that lacks the grant is lagging, not drift, and Restore writes nothing.
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.store.lag_reads(Duration::from_secs(30));
    let (console, event) = console_sets(
        &h,
        vec![
            grant("PullA", "111122223333"),
            grant("Console", "777788889999"),
        ],
    )
    .await;
    let (summary, (_, writes)) = h.calls_of(h.drift(Action::Restore, &event)).await;

    counts(&summary.expect("checked"), (1, 0, 0));
    assert_eq!(writes, 0, "nothing to put right");
    assert_eq!(h.store.live(&repo("app")), Some(console));
}

#[tokio::test]
async fn a_call_made_before_the_providers_write_says_nothing_of_that_write() {
    // The console sets its own statement; five seconds later the provider grants PullA;
    // reads still lag behind the grant when the console call's CloudTrail record comes. The
    // record's policy lacks PullA because it is older than the grant, not because anything
    // took PullA out: the target is judged by a read once reads can show the grant.
    let h = harness().await;
    let (_, mut event) = console_sets(&h, vec![grant("Console", "777788889999")]).await;
    event["detail"]["eventTime"] = event_time(epoch_ms() - 5_000).into();
    h.grant("app", "PullA", "PullA", "111122223333").await;
    h.store.lag_reads(Duration::from_millis(1_500));
    let mut config = h.config.clone();
    config.drift = drift::Settings {
        own_write_lag: Duration::from_secs(3),
        ..unpaced(Action::Restore)
    };
    let provider = h.provider_with(config);
    let started = std::time::Instant::now();

    let invoked = h
        .calls_of(provider.invoke(
            &event.to_string(),
            deadline_in(Duration::from_secs(30)),
            "inv-1",
        ))
        .await;

    let (Ok(Invoked::Drift(summary)), (_, writes)) = invoked else {
        panic!("a drift check");
    };
    counts(&summary, (1, 0, 0));
    assert_eq!(writes, 0, "nothing to put right");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "judged once reads can show the grant"
    );
}

#[tokio::test]
async fn a_call_before_the_providers_write_whose_read_still_lags_is_delivered_again() {
    let h = harness().await;
    let (_, mut event) = console_sets(&h, vec![grant("Console", "777788889999")]).await;
    event["detail"]["eventTime"] = event_time(epoch_ms() - 5_000).into();
    h.grant("app", "PullA", "PullA", "111122223333").await;
    h.store.lag_reads(Duration::from_secs(60));
    let mut config = h.config.clone();
    config.drift = drift::Settings {
        own_write_lag: Duration::from_secs(60),
        ..unpaced(Action::Report)
    };
    let provider = h.provider_with(config);

    let (message, _) = check_failed(&provider, &event, Duration::from_secs(2)).await;

    assert!(
        message.contains("still lacked what the provider wrote"),
        "{message}"
    );
}

#[tokio::test]
async fn a_change_already_put_right_is_believed_after_the_pauses() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    // The record says the call left only the console's statement; the read, now, shows the
    // grant back (someone undid the edit): no drift, once the reads have had their time.
    let mut event = cloudtrail("drift/set-repository-policy.json", "app");
    event["detail"]["requestParameters"]["policyText"] =
        json!({"Version": "2012-10-17", "Statement": [grant("Console", "777788889999")]})
            .to_string()
            .into();
    let started = std::time::Instant::now();

    let (summary, (read, _)) = h.calls_of(h.drift(Action::Report, &event)).await;

    counts(&summary.expect("checked"), (1, 0, 0));
    // The read, and one after each pause that fits in the invocation's time (a lagging read
    // may take up to a minute to catch up, CONTRACT 11).
    assert!((3..=7).contains(&read), "{read} reads");
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn a_hanging_ecr_ends_the_check_with_an_error_before_the_deadline() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.store.hang();
    let provider = h.provider_doing(Action::Report);
    let (error, took) = check_failed(&provider, &sweep(), Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(error.contains("did not finish"), "{error}");
}

#[tokio::test]
async fn a_target_that_cannot_be_read_fails_the_sweep_after_the_others_are_checked() {
    let h = granted(&[
        ("api", "PullI", "111122223333"),
        ("web", "PullW", "111122223333"),
    ])
    .await;
    h.console(&repo("web"), vec![]);
    h.store
        .fail_reads([denied("GetRepositoryPolicy", "not authorized")]);
    let (error, (reads, _)) = h.calls_of(h.drift(Action::Report, &sweep())).await;
    let text = error.expect_err("one failed").to_string();
    assert!(
        text.starts_with("drift check failed: 1 of 2 targets could not be checked; the first, repository/us-east-1/"),
        "{text}"
    );
    assert!(text.contains("ECR denied GetRepositoryPolicy"), "{text}");
    assert_eq!(reads, 2, "the other target was read too");
}

#[tokio::test]
async fn a_restore_holds_the_lease_for_a_minute() {
    let h = granted(&[("app", "PullA", "111122223333")]).await;
    h.console(&repo("app"), vec![]);
    let lock = FaultyLock::new(Clock::System);
    lock.set_record(&key(&repo("app")), h.record(&repo("app")));
    let settings = drift::Settings {
        action: Action::Restore,
        ..Default::default()
    };
    let summary = check(
        h.store.as_ref(),
        &lock,
        &drift::Shape::Sweep,
        &settings,
        Duration::from_secs(30),
    )
    .await
    .expect("swept");
    counts(&summary, (1, 1, 1));
    let asked = lock.asked();
    let [(now, until)] = asked.as_slice() else {
        panic!("one acquire: {asked:?}")
    };
    assert_eq!(until - now, 60_000);
}

#[tokio::test]
async fn the_sweep_restores_a_prefix_statement_in_a_creation_template() {
    let h = harness().await;
    h.store.create_template("us-east-1", "team/");
    let template = Target::Template {
        region: "us-east-1".into(),
        prefix: "team/".into(),
    };
    let response = h
        .create(
            h.event("repository-prefix-statement-create.json"),
            "req-prefix",
        )
        .await;
    assert_eq!(response["Data"]["Templates"], "team/", "{response}");
    let sid = h.sids(&template);
    assert_eq!(sid.len(), 1);
    // The console replaces the template's policy.
    h.console(&template, vec![grant("Console", "777788889999")]);

    let summary = h.drift(Action::Restore, &sweep()).await.expect("swept");
    counts(&summary, (1, 1, 1));
    assert_eq!(key(&summary.findings[0].target), "template/us-east-1/team/");
    assert_eq!(summary.findings[0].difference.missing, sid);
    let mut sids = h.sids(&template);
    sids.sort();
    let mut expected = vec!["Console".to_owned(), sid[0].clone()];
    expected.sort();
    assert_eq!(sids, expected);

    // A template deleted since holds nothing: drift that cannot be restored, not a failure.
    h.store.delete_template("us-east-1", "team/");
    let summary = h.drift(Action::Restore, &sweep()).await.expect("swept");
    counts(&summary, (1, 1, 0));
    let why = summary.findings[0]
        .not_restored
        .as_deref()
        .expect("why not");
    assert!(why.contains("does not exist"), "{why}");
    assert_eq!(
        h.lock.lease(&key(&template)),
        None,
        "the lease is given back"
    );
}
