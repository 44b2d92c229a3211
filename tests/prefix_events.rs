//! Prefix statements and targets that appear after them (CONTRACT 15), over the in-memory
//! ECR and lock table: GIVEN a prefix statement created by CloudFormation, WHEN a repository
//! or a repository creation template is created (its CloudTrail event through the drift
//! rule, or missed and found by the daily sweep), THEN it holds the statements as the
//! Create would have written them, under the same holder, and nothing it does not cover is
//! touched.

mod support;

use ecr_policy_provider::drift::{self, Action};
use ecr_policy_provider::ecr::EcrError;
use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::identity::Target;
use ecr_policy_provider::lifecycle::arrivals::index_key;
use ecr_policy_provider::lock::memory::MemoryLock;
use ecr_policy_provider::lock::{LockError, LockStore, Record, RecordReader, Snapshot, key};
use ecr_policy_provider::provider::{Invoked, Provider};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Recorder, deadline_in, event, provider_with, repo, sample, send_one};
use tokio::sync::Notify;

const CREATE: &str = "repository-prefix-statement-create.json";
const TAG: &str = "6a2f0c4e-9b1d-4e7a-8c3f-2d5b7e9a1c02";
const SID: &str = "PullForTeamConsumers";
const ROOT_TAG: &str = "7b3e1d5f-0c2e-4f8b-9d4a-3e6c8f0b2d13";
const ROOT_SID: &str = "ScanEverywhere";

fn console() -> Value {
    json!({"Sid": "ConsoleAddedPull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": ["ecr:BatchGetImage"]})
}

fn own_statement() -> Value {
    event(CREATE, "https://unused")["ResourceProperties"]["Statement"][0].clone()
}

fn root_statement() -> Value {
    json!({"Sid": ROOT_SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": ["ecr:BatchGetImage"]})
}

/// The prefix statement's PhysicalResourceId.
fn physical_id() -> String {
    format!(
        "ecr-policy-statements/{TAG}/{SID}/repository-prefix:us-east-1:{}:team/",
        ecr_policy_provider::ecr::memory::ACCOUNT_ID
    )
}

fn template(prefix: &str) -> Target {
    Target::Template {
        region: "us-east-1".into(),
        prefix: prefix.into(),
    }
}

struct Harness {
    store: Arc<MemoryEcr>,
    lock: Arc<MemoryLock>,
    recorder: Recorder,
}

impl Harness {
    /// `team/app` exists; the prefix statement on `team/` is created.
    async fn new() -> Self {
        Self::over(&["team/app"]).await
    }

    /// `repositories` exist; the prefix statement on `team/` is created.
    async fn over(repositories: &[&str]) -> Self {
        let store = Arc::new(MemoryEcr::new());
        for name in repositories {
            store.create_repository("us-east-1", name);
        }
        let h = Self {
            store,
            lock: Arc::new(MemoryLock::new()),
            recorder: Recorder::start(Vec::new()).await,
        };
        let r = h.send(event(CREATE, &h.recorder.url)).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        h
    }

    fn provider(&self, action: Action) -> Provider<Arc<MemoryEcr>, Arc<MemoryLock>> {
        let mut config = support::config(&self.recorder);
        config.drift = drift::Settings {
            action,
            own_write_lag: Duration::ZERO,
            reads_per_second: 0,
            ..drift::Settings::default()
        };
        provider_with(self.store.clone(), config).with_lock(Some(self.lock.clone()))
    }

    async fn send(&self, event: Value) -> Value {
        send_one(&self.provider(Action::Report), &self.recorder, event).await
    }

    /// The `ROOT` prefix statement, created.
    async fn root_statement(&self) {
        let mut e = event(CREATE, &self.recorder.url);
        e["RequestId"] = ROOT_TAG.into();
        e["LogicalResourceId"] = "ScanEverywhere".into();
        e["ResourceProperties"]["RepositoryPrefix"] = "ROOT".into();
        e["ResourceProperties"]["Statement"] = json!([root_statement()]);
        let r = self.send(e).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
    }

    /// The prefix statement's Delete.
    async fn delete(&self) {
        let r = self.send(self.delete_event()).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
    }

    /// The prefix statement's Update in place to `statement`.
    async fn update(&self, statement: &Value) {
        let mut e = event(CREATE, &self.recorder.url);
        e["RequestType"] = "Update".into();
        e["RequestId"] = "update-1".into();
        e["PhysicalResourceId"] = physical_id().into();
        e["OldResourceProperties"] = e["ResourceProperties"].clone();
        e["ResourceProperties"]["Statement"] = json!([statement]);
        let r = self.send(e).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
    }

    async fn invoke(&self, action: Action, event: &Value, left: Duration) -> drift::Summary {
        match self
            .provider(action)
            .invoke(&event.to_string(), deadline_in(left), "inv-1")
            .await
            .expect("handled")
        {
            Invoked::Drift(summary) => summary,
            Invoked::Request(_) => panic!("an EventBridge event answered as a request"),
        }
    }

    /// ECR's `CreateRepository` of `name`, as CloudTrail records it, delivered.
    async fn repository_created(&self, name: &str) -> drift::Summary {
        self.invoke(
            Action::Report,
            &created_repository(name),
            Duration::from_secs(30),
        )
        .await
    }

    async fn sweep(&self, action: Action) -> drift::Summary {
        self.invoke(action, &sample("drift/sweep.json"), Duration::from_secs(30))
            .await
    }

    fn seed(&self, target: &Target, statements: &[Value]) {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        self.store.seed(target, &doc.to_string());
    }

    fn statements(&self, target: &Target) -> Vec<Value> {
        let live = self.store.live(target);
        let doc: Option<Value> = live.map(|text| serde_json::from_str(&text).expect("JSON"));
        doc.and_then(|d| d["Statement"].as_array().cloned())
            .unwrap_or_default()
    }

    fn holder_of(&self, target: &Target, sid: &str) -> Option<String> {
        self.lock
            .record(&key(target))
            .holder_of(sid)
            .map(str::to_owned)
    }
}

fn created_repository(name: &str) -> Value {
    let mut e = sample("drift/create-repository.json");
    e["detail"]["requestParameters"]["repositoryName"] = name.into();
    e["detail"]["responseElements"]["repository"]["repositoryName"] = name.into();
    e
}

fn template_call(sample_name: &str, prefix: &str) -> Value {
    let mut e = sample(sample_name);
    e["detail"]["requestParameters"]["prefix"] = prefix.into();
    e["detail"]["responseElements"]["repositoryCreationTemplate"]["prefix"] = prefix.into();
    e
}

#[tokio::test]
async fn a_new_repository_gets_the_statement_by_its_event_though_its_first_read_says_not_found() {
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/a/new");
    // ECR's reads lag its writes: the repository just created is not found at first.
    h.store.fail_reads([EcrError::RepositoryNotFound {
        name: "team/a/new".into(),
        region: "us-east-1".into(),
    }]);
    let reads_before = h.store.calls().reads;

    let summary = h.repository_created("team/a/new").await;

    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(h.statements(&repo("team/a/new")), [own_statement()]);
    assert!(h.store.calls().reads > reads_before + 1, "read again");
    // Under the Create's holder: the statement resource's Delete reaches it.
    assert_eq!(h.holder_of(&repo("team/a/new"), SID).as_deref(), Some(TAG));
    assert!(h.lock.lease(&key(&repo("team/a/new"))).is_none());
    h.delete().await;
    assert!(h.statements(&repo("team/a/new")).is_empty());
    assert!(h.statements(&repo("team/app")).is_empty());
    // Deleted: a repository created after it gets nothing.
    h.store.create_repository("us-east-1", "team/later");
    h.repository_created("team/later").await;
    assert!(h.statements(&repo("team/later")).is_empty());
}

/// The event's write fails with its outcome unknown (ECR unavailable, and a read does not
/// show it): no CloudFormation request retries it, so the arrival applies it again once,
/// rather than leaving the record announcing a statement the next sweep reports missing.
#[tokio::test]
async fn a_new_repository_whose_write_outcome_is_unknown_gets_the_statement_applied_again() {
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    h.store.fail_writes([EcrError::Unavailable {
        operation: "SetRepositoryPolicy",
        detail: "HTTP 503: service unavailable".into(),
    }]);
    let summary = h
        .invoke(
            Action::Report,
            &created_repository("team/new"),
            Duration::from_secs(4),
        )
        .await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(h.statements(&repo("team/new")), [own_statement()]);
    assert_eq!(h.sweep(Action::Report).await.drifted(), 0);
}

#[tokio::test]
async fn a_new_repository_keeps_what_others_put_there_and_a_delivery_twice_writes_once() {
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    h.seed(&repo("team/new"), &[console()]);
    h.repository_created("team/new").await;
    assert_eq!(
        h.statements(&repo("team/new")),
        [console(), own_statement()]
    );
    let writes = h.store.calls().writes;
    h.repository_created("team/new").await;
    assert_eq!(h.store.calls().writes, writes, "nothing more to write");
}

#[tokio::test]
async fn a_repository_outside_the_prefix_is_untouched() {
    let h = Harness::new().await;
    for name in ["team", "team-x", "teams/app", "other/team/app"] {
        h.store.create_repository("us-east-1", name);
        h.seed(&repo(name), &[console()]);
    }
    let writes = h.store.calls().writes;
    for name in ["team", "team-x", "teams/app", "other/team/app"] {
        let summary = h.repository_created(name).await;
        assert_eq!(summary.targets, 0, "{name}");
        assert_eq!(h.statements(&repo(name)), [console()], "{name}");
        assert!(!h.lock.record(&key(&repo(name))).holds_anything(), "{name}");
    }
    assert_eq!(h.store.calls().writes, writes);
}

#[tokio::test]
async fn a_new_template_under_the_prefix_gets_the_statement_and_one_beside_it_does_not() {
    let h = Harness::new().await;
    h.store.create_template("us-east-1", "team/a/");
    h.store.create_template("us-east-1", "team-x/");
    for prefix in ["team/a/", "team-x/"] {
        h.invoke(
            Action::Report,
            &template_call("drift/create-repository-creation-template.json", prefix),
            Duration::from_secs(30),
        )
        .await;
    }
    assert_eq!(h.statements(&template("team/a/")), [own_statement()]);
    assert_eq!(h.holder_of(&template("team/a/"), SID).as_deref(), Some(TAG));
    assert!(h.statements(&template("team-x/")).is_empty());
}

#[tokio::test]
async fn root_reaches_every_new_repository_and_the_root_template_and_team_does_not_reach_root() {
    let h = Harness::new().await;
    h.root_statement().await;
    for name in ["app", "team/new"] {
        h.store.create_repository("us-east-1", name);
        h.repository_created(name).await;
    }
    h.store.create_template("us-east-1", "ROOT");
    h.invoke(
        Action::Report,
        &template_call("drift/create-repository-creation-template.json", "ROOT"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(h.statements(&repo("app")), [root_statement()]);
    let both = h.statements(&repo("team/new"));
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&own_statement()) && both.contains(&root_statement()));
    // The ROOT template serves repositories outside `team/`: only ROOT's statement.
    assert_eq!(h.statements(&template("ROOT")), [root_statement()]);
}

#[tokio::test]
async fn a_new_repository_with_a_differing_sid_is_left_as_it_is_and_reported() {
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    let mut theirs = own_statement();
    theirs["Principal"] = json!({"AWS": "arn:aws:iam::999988887777:root"});
    h.seed(&repo("team/new"), std::slice::from_ref(&theirs));
    let summary = h.repository_created("team/new").await;
    assert_eq!(h.statements(&repo("team/new")), [theirs]);
    assert_eq!(summary.drifted(), 1, "{summary:?}");
    let finding = &summary.findings[0];
    assert_eq!(finding.difference.missing, [SID]);
    assert!(!finding.restored);
    let why = finding.not_restored.as_deref().expect("why");
    assert!(why.contains(SID), "{why}");
    assert!(finding.by.is_some());
}

#[tokio::test]
async fn a_repository_deleted_before_its_event_is_skipped_after_the_retries() {
    let h = Harness::new().await;
    // Never shows: created and deleted before the event came.
    let started = tokio::time::Instant::now();
    let summary = h
        .invoke(
            Action::Report,
            &created_repository("team/gone"),
            Duration::from_secs(5),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(1500), "retried");
    assert_eq!(summary.drifted(), 0);
    assert!(!h.lock.record(&key(&repo("team/gone"))).holds_anything());
    assert!(h.lock.lease(&key(&repo("team/gone"))).is_none());
}

#[tokio::test]
async fn a_deleted_repository_only_prefix_statements_held_is_forgotten_not_drift() {
    let h = Harness::new().await;
    h.store.delete_repository("us-east-1", "team/app");
    let mut e = sample("drift/delete-repository.json");
    e["detail"]["requestParameters"]["repositoryName"] = "team/app".into();
    let summary = h.invoke(Action::Report, &e, Duration::from_secs(30)).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert!(!h.lock.record(&key(&repo("team/app"))).holds_anything());
}

#[tokio::test]
async fn a_repository_deleted_before_the_prefix_statements_delete_is_forgotten_not_drift_after_it()
{
    // Two repositories deleted while their events were late; the statement's Delete lists
    // neither, so their records still name it.
    let h = Harness::over(&["team/app", "team/old"]).await;
    h.store.delete_repository("us-east-1", "team/app");
    h.store.delete_repository("us-east-1", "team/old");
    h.delete().await;
    assert!(h.lock.record(&key(&repo("team/app"))).holds_anything());
    // The late event of one: forgotten, not drift.
    let mut e = sample("drift/delete-repository.json");
    e["detail"]["requestParameters"]["repositoryName"] = "team/app".into();
    let summary = h.invoke(Action::Report, &e, Duration::from_secs(30)).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert!(!h.lock.record(&key(&repo("team/app"))).holds_anything());
    // The other's event lost: the sweep forgets it (and indexes nothing again).
    let summary = h.sweep(Action::Report).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert!(!h.lock.record(&key(&repo("team/old"))).holds_anything());
    assert_eq!(indexed(&h, "team"), None);
    // A repository created since gets nothing of the deleted statement.
    h.store.create_repository("us-east-1", "team/new");
    h.repository_created("team/new").await;
    assert!(h.statements(&repo("team/new")).is_empty());
}

#[tokio::test]
async fn a_deleted_repository_ecr_still_shows_is_not_drift_and_the_sweep_forgets_it() {
    let h = Harness::new().await;
    // ECR's reads lag the deletion (and the Create's own write, moments ago).
    h.store.lag_reads(Duration::from_secs(60));
    h.store.delete_repository("us-east-1", "team/app");
    let mut e = sample("drift/delete-repository.json");
    e["detail"]["requestParameters"]["repositoryName"] = "team/app".into();
    // Time for two reads of the repository only: it still shows when the time is up.
    let summary = h.invoke(Action::Report, &e, Duration::from_secs(2)).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert!(h.lock.record(&key(&repo("team/app"))).holds_anything());
    // Once reads catch up, the sweep (ECR no longer lists it) forgets it: not drift either.
    h.store.lag_reads(Duration::ZERO);
    let summary = h.sweep(Action::Report).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert!(!h.lock.record(&key(&repo("team/app"))).holds_anything());
}

#[tokio::test]
async fn the_sweep_applies_what_an_event_missed_and_forgets_what_was_deleted() {
    let h = Harness::new().await;
    // Created while no event came: a repository and a template.
    h.store.create_repository("us-east-1", "team/missed");
    h.store.create_template("us-east-1", "team/");
    h.store.create_repository("us-east-1", "beside");
    h.store.delete_repository("us-east-1", "team/app");
    // The statement's own promise, not a restore: applied under Report.
    let summary = h.sweep(Action::Report).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(h.statements(&repo("team/missed")), [own_statement()]);
    assert_eq!(h.holder_of(&repo("team/missed"), SID).as_deref(), Some(TAG));
    assert_eq!(h.statements(&template("team/")), [own_statement()]);
    assert!(h.statements(&repo("beside")).is_empty());
    assert!(!h.lock.record(&key(&repo("team/app"))).holds_anything());
    // A second sweep finds nothing to do.
    let writes = h.store.calls().writes;
    h.sweep(Action::Report).await;
    assert_eq!(h.store.calls().writes, writes);
}

#[tokio::test]
async fn a_held_statement_removed_by_hand_is_drift_for_the_sweep_not_a_missed_repository() {
    let h = Harness::new().await;
    h.seed(&repo("team/app"), &[console()]);
    let summary = h.sweep(Action::Report).await;
    assert_eq!(summary.drifted(), 1, "{summary:?}");
    assert!(summary.findings[0].not_restored.is_none());
    assert_eq!(h.statements(&repo("team/app")), [console()]);
}

#[tokio::test]
async fn a_template_update_that_drops_the_statement_is_drift_restored_only_under_restore() {
    let h = Harness::new().await;
    h.store.create_template("us-east-1", "team/");
    let created = template_call("drift/create-repository-creation-template.json", "team/");
    h.invoke(Action::Report, &created, Duration::from_secs(30))
        .await;
    assert_eq!(h.statements(&template("team/")), [own_statement()]);
    // The console replaces the template's policy.
    h.seed(&template("team/"), &[console()]);
    let updated = template_call("drift/update-repository-creation-template.json", "team/");
    let summary = h
        .invoke(Action::Report, &updated, Duration::from_secs(30))
        .await;
    assert_eq!(summary.drifted(), 1, "{summary:?}");
    assert_eq!(summary.findings[0].difference.missing, [SID]);
    assert_eq!(h.statements(&template("team/")), [console()]);
    let summary = h
        .invoke(Action::Restore, &updated, Duration::from_secs(30))
        .await;
    assert_eq!(summary.restored(), 1, "{summary:?}");
    assert_eq!(
        h.statements(&template("team/")),
        [console(), own_statement()]
    );
}

#[tokio::test]
async fn the_index_holds_the_statement_while_the_resource_lives() {
    let h = Harness::new().await;
    let index = h.lock.record(&index_key("us-east-1", "team"));
    assert_eq!(index.holder_of(SID), Some(TAG));
    h.delete().await;
    assert!(
        !h.lock
            .record(&index_key("us-east-1", "team"))
            .holds_anything()
    );
}

#[tokio::test]
async fn an_update_in_place_changes_what_a_new_repository_gets() {
    let h = Harness::new().await;
    let mut changed = own_statement();
    changed["Action"] = json!(["ecr:BatchGetImage"]);
    h.update(&changed).await;
    h.store.create_repository("us-east-1", "team/new");
    h.repository_created("team/new").await;
    assert_eq!(h.statements(&repo("team/new")), [changed]);
    assert_eq!(h.holder_of(&repo("team/new"), SID).as_deref(), Some(TAG));
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_for_a_new_repository() {
    let h = Harness::new().await;
    let mut theirs = root_statement();
    theirs["Sid"] = "Conflicting".into();
    let mut other = own_statement();
    other["Sid"] = "Conflicting".into();
    h.store.create_repository("us-east-1", "other/app");
    h.seed(&repo("other/app"), &[theirs]);
    let mut e = event(CREATE, &h.recorder.url);
    e["RequestId"] = "failing-create".into();
    e["LogicalResourceId"] = "OtherPull".into();
    e["ResourceProperties"]["RepositoryPrefix"] = "other".into();
    e["ResourceProperties"]["Statement"] = json!([other]);
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        !h.lock
            .record(&index_key("us-east-1", "other"))
            .holds_anything()
    );
    h.store.create_repository("us-east-1", "other/new");
    let summary = h.repository_created("other/new").await;
    assert_eq!(summary.targets, 0, "{summary:?}");
    assert!(h.statements(&repo("other/new")).is_empty());
}

/// Another stack's prefix statement Create on the same prefix and Sid, granting less
/// (`ecr:BatchGetImage` only); its RequestId tags it.
fn rival_create(h: &Harness, tag: &str, adopt: bool) -> Value {
    let mut e = event(CREATE, &h.recorder.url);
    e["RequestId"] = tag.into();
    e["StackId"] = "arn:aws:cloudformation:us-east-1:123456789012:stack/rival/1".into();
    e["LogicalResourceId"] = "RivalPull".into();
    let mut statement = own_statement();
    statement["Action"] = json!(["ecr:BatchGetImage"]);
    e["ResourceProperties"]["Statement"] = json!([statement]);
    if adopt {
        e["ResourceProperties"]["Adopt"] = "true".into();
    }
    e
}

/// The Delete of the rival resource whose Create answered `created` (CloudFormation's
/// rollback of a failed Create, or the rival stack's deletion).
fn rival_delete(h: &Harness, created: &Value, adopt: bool) -> Value {
    let mut delete = rival_create(h, "rival-delete", adopt);
    delete["RequestType"] = "Delete".into();
    delete["PhysicalResourceId"] = created["PhysicalResourceId"].clone();
    delete
}

#[tokio::test]
async fn a_refused_create_on_a_held_sid_leaves_its_holder_for_new_repositories() {
    let h = Harness::new().await;
    let r = h.send(rival_create(&h, "rival-create", false)).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    // CloudFormation's rollback: the failed Create's Delete.
    let d = h.send(rival_delete(&h, &r, false)).await;
    assert_eq!(d["Status"], "SUCCESS", "{d}");
    assert_eq!(
        h.lock
            .record(&index_key("us-east-1", "team"))
            .holder_of(SID),
        Some(TAG)
    );
    h.store.create_repository("us-east-1", "team/new");
    h.repository_created("team/new").await;
    assert_eq!(h.statements(&repo("team/new")), [own_statement()]);
    assert_eq!(h.holder_of(&repo("team/new"), SID).as_deref(), Some(TAG));
}

#[tokio::test]
async fn a_taker_by_adopt_deleted_hands_the_sid_back_on_a_repository_created_after_it() {
    let h = Harness::new().await;
    let r = h.send(rival_create(&h, "rival-create", true)).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let theirs = rival_create(&h, "unused", true)["ResourceProperties"]["Statement"][0].clone();
    // A repository created while the rival holds the Sid gets the rival's statement...
    h.store.create_repository("us-east-1", "team/new");
    h.repository_created("team/new").await;
    assert_eq!(
        h.statements(&repo("team/new")),
        std::slice::from_ref(&theirs)
    );
    // ...and the first holder's Update changes nothing there while the rival holds it.
    let mut changed = own_statement();
    changed["Action"] = json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]);
    h.update(&changed).await;
    assert_eq!(h.statements(&repo("team/new")), [theirs]);
    // The rival's Delete hands the Sid back there, as the first holder declares it now.
    let d = h.send(rival_delete(&h, &r, true)).await;
    assert_eq!(d["Status"], "SUCCESS", "{d}");
    assert_eq!(h.statements(&repo("team/new")), [changed.clone()]);
    assert_eq!(h.holder_of(&repo("team/new"), SID).as_deref(), Some(TAG));
    assert_eq!(h.statements(&repo("team/app")), [changed]);
}

#[tokio::test]
async fn a_new_repository_a_request_holds_all_the_while_fails_the_event_for_its_redelivery() {
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    let held = key(&repo("team/new"));
    h.lock.hold(
        &held,
        "req-deploy/lambda",
        ecr_policy_provider::retry::epoch_ms() + 60_000,
    );
    let result = h
        .provider(Action::Report)
        .invoke(
            &created_repository("team/new").to_string(),
            deadline_in(Duration::from_secs(3)),
            "inv-1",
        )
        .await;
    let error = result.expect_err("failed, for Lambda to deliver it again");
    assert!(error.to_string().contains("lease"), "{error}");
    assert!(h.statements(&repo("team/new")).is_empty());
    // Delivered again once the lease is given back.
    h.lock.hold(&held, "req-deploy/lambda", 0);
    h.repository_created("team/new").await;
    assert_eq!(h.statements(&repo("team/new")), [own_statement()]);
}

/// Which call of the lock table a [`Gate`] stops at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Taking the lease on the item, by an owner whose name starts with the gate's.
    Acquire,
    /// Reading the item without the lease (an arrival reading the index).
    Read,
}

/// A point where one invocation stops until the test lets it go: the `skip + 1`-th call
/// `call` on `key` (by an owner starting with `owner`, for a lease).
struct Gate {
    call: Call,
    key: String,
    owner: String,
    skip: Mutex<usize>,
    reached: Notify,
    go: Notify,
}

impl Gate {
    fn new(call: Call, key: &str, owner: &str, skip: usize) -> Arc<Self> {
        Arc::new(Self {
            call,
            key: key.to_owned(),
            owner: owner.to_owned(),
            skip: Mutex::new(skip),
            reached: Notify::new(),
            go: Notify::new(),
        })
    }

    /// Whether this call is the one to stop at (each gate stops once).
    fn stops(&self, call: Call, key: &str, owner: &str) -> bool {
        if call != self.call || key != self.key || !owner.starts_with(&self.owner) {
            return false;
        }
        let mut skip = self.skip.lock().expect("lock");
        match *skip {
            0 => {
                *skip = usize::MAX;
                true
            }
            usize::MAX => false,
            n => {
                *skip = n - 1;
                false
            }
        }
    }

    async fn pass(&self, call: Call, key: &str, owner: &str) {
        if self.stops(call, key, owner) {
            self.reached.notify_one();
            self.go.notified().await;
        }
    }
}

/// The in-memory lock table, stopping at the gates: the interleavings of two invocations
/// staged call by call, without sleeps.
struct Gated {
    inner: Arc<MemoryLock>,
    gates: Vec<Arc<Gate>>,
}

impl Gated {
    async fn pass(&self, call: Call, key: &str, owner: &str) {
        for gate in &self.gates {
            gate.pass(call, key, owner).await;
        }
    }
}

impl LockStore for Gated {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        self.pass(Call::Acquire, key, owner).await;
        self.inner.acquire(key, owner, now_ms, until_ms).await
    }
    async fn store(&self, key: &str, owner: &str, record: &Record) -> Result<(), LockError> {
        self.inner.store(key, owner, record).await
    }
    async fn release(&self, key: &str, owner: &str, idle: bool) -> Result<(), LockError> {
        self.inner.release(key, owner, idle).await
    }
}

impl RecordReader for Gated {
    async fn read(&self, key: &str) -> Result<Option<Snapshot>, LockError> {
        self.pass(Call::Read, key, "").await;
        self.inner.read(key).await
    }
    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        self.inner.scan().await
    }
}

impl Harness {
    /// The provider over the same ECR and lock table, stopping at `gates`.
    fn gated(&self, gates: &[&Arc<Gate>]) -> Provider<Arc<MemoryEcr>, Arc<Gated>> {
        let lock = Gated {
            inner: self.lock.clone(),
            gates: gates.iter().map(|g| Arc::clone(g)).collect(),
        };
        let mut config = support::config(&self.recorder);
        config.drift = drift::Settings {
            own_write_lag: Duration::ZERO,
            reads_per_second: 0,
            ..drift::Settings::default()
        };
        provider_with(self.store.clone(), config).with_lock(Some(Arc::new(lock)))
    }

    fn delete_event(&self) -> Value {
        let mut e = event(CREATE, &self.recorder.url);
        e["RequestType"] = "Delete".into();
        e["RequestId"] = "delete-1".into();
        e["PhysicalResourceId"] = physical_id().into();
        e
    }

    /// Nothing of the prefix statement is left: not in ECR, its records, its index item.
    fn nothing_left(&self, names: &[&str]) {
        for name in names {
            assert!(
                !self.statements(&repo(name)).iter().any(|s| s["Sid"] == SID),
                "{name} still holds the statement: {:?}",
                self.statements(&repo(name))
            );
            assert_eq!(self.holder_of(&repo(name), SID), None, "{name}");
            assert!(self.lock.lease(&key(&repo(name))).is_none(), "{name}");
        }
        assert!(
            !self
                .lock
                .record(&index_key("us-east-1", "team"))
                .holds_anything()
        );
    }
}

/// Runs `work` until `gate` stops it; panics if it ends first.
async fn until_stopped<F: std::future::Future>(work: std::pin::Pin<&mut F>, gate: &Gate) {
    tokio::select! {
        _ = work => panic!("the work ended before it reached the gate"),
        () = gate.reached.notified() => {}
    }
}

#[tokio::test]
async fn an_arrival_that_read_the_index_before_a_delete_writes_nothing_after_the_deletes_pass() {
    // GIVEN the prefix statement on `team/`, and a new repository whose CreateRepository
    // event read the index (the statement is there) and stops before taking the new
    // repository's lease
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    let arrival_gate = Gate::new(Call::Acquire, &key(&repo("team/new")), "prefix/", 0);
    let arrivals = h.gated(&[&arrival_gate]);
    let event = created_repository("team/new").to_string();
    let arrival = arrivals.invoke(&event, deadline_in(Duration::from_secs(30)), "inv-1");
    tokio::pin!(arrival);
    until_stopped(arrival.as_mut(), &arrival_gate).await;
    // WHEN the statement's Delete runs to its end meanwhile (out of the index, then over
    // every repository, the new one included, whose record does not know it yet)
    let r = h.send(h.delete_event()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let writes = h.store.calls().writes;
    // and then the arrival goes on
    arrival_gate.go.notify_one();
    let summary = match arrival.await.expect("handled") {
        Invoked::Drift(summary) => summary,
        Invoked::Request(_) => panic!("answered as a request"),
    };
    // THEN it writes nothing: no statement that nobody holds
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(
        h.store.calls().writes,
        writes,
        "nothing written after the Delete"
    );
    h.nothing_left(&["team/app", "team/new"]);
}

#[tokio::test]
async fn an_arrival_holding_the_lease_when_the_delete_unregisters_writes_nothing() {
    // GIVEN an arrival that read the index, took the new repository's lease, and stops as
    // it reads the index again before writing
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    let index = index_key("us-east-1", "team");
    let arrival_gate = Gate::new(Call::Read, &index, "", 1);
    // and the Delete, which stops at its first try to take that same repository's lease
    let delete_gate = Gate::new(Call::Acquire, &key(&repo("team/new")), "delete-1/", 0);
    let provider = h.gated(&[&arrival_gate, &delete_gate]);
    let event = created_repository("team/new").to_string();
    let arrival = provider.invoke(&event, deadline_in(Duration::from_secs(30)), "inv-1");
    tokio::pin!(arrival);
    until_stopped(arrival.as_mut(), &arrival_gate).await;
    assert!(
        h.lock.lease(&key(&repo("team/new"))).is_some(),
        "the arrival holds the lease"
    );
    // WHEN the Delete takes the statement out of the index and reaches the new repository
    let delete = support::send_one(&provider, &h.recorder, h.delete_event());
    tokio::pin!(delete);
    tokio::select! {
        r = delete.as_mut() => panic!("the Delete ended before the new repository: {r}"),
        () = delete_gate.reached.notified() => {}
    }
    assert!(!h.lock.record(&index).holds_anything(), "out of the index");
    // and the arrival goes on first
    let writes = h.store.calls().writes;
    arrival_gate.go.notify_one();
    arrival.await.expect("handled");
    assert_eq!(h.store.calls().writes, writes, "the arrival wrote nothing");
    delete_gate.go.notify_one();
    let r = delete.await;
    // THEN the arrival wrote nothing, and the Delete found nothing to take out there
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(h.statements(&repo("team/new")).is_empty());
    h.nothing_left(&["team/app", "team/new"]);
}

#[tokio::test]
async fn an_arrival_that_wrote_before_a_delete_is_taken_out_by_it() {
    // GIVEN the statement's Delete, stopped before it takes the statement out of the index
    let h = Harness::new().await;
    h.store.create_repository("us-east-1", "team/new");
    let delete_gate = Gate::new(
        Call::Acquire,
        &index_key("us-east-1", "team"),
        "delete-1/",
        0,
    );
    let deletes = h.gated(&[&delete_gate]);
    let delete = support::send_one(&deletes, &h.recorder, h.delete_event());
    tokio::pin!(delete);
    tokio::select! {
        r = delete.as_mut() => panic!("the Delete ended before the gate: {r}"),
        () = delete_gate.reached.notified() => {}
    }
    // WHEN a new repository's event is handled meanwhile (the index still holds it)
    h.repository_created("team/new").await;
    assert_eq!(h.statements(&repo("team/new")), [own_statement()]);
    assert_eq!(h.holder_of(&repo("team/new"), SID).as_deref(), Some(TAG));
    // and the Delete goes on
    delete_gate.go.notify_one();
    let r = delete.await;
    // THEN it finds the statement in the new repository's record and takes it out too
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    h.nothing_left(&["team/app", "team/new"]);
}

/// The index item of `prefix`: who holds each Sid there.
fn indexed(h: &Harness, prefix: &str) -> Option<String> {
    h.lock
        .record(&index_key("us-east-1", prefix))
        .holder_of(SID)
        .map(str::to_owned)
}

impl Harness {
    /// As a release before the index left it: the targets' records, no index item.
    fn forget_the_index(&self) {
        self.lock
            .set_record(&index_key("us-east-1", "team"), Record::default());
        assert_eq!(indexed(self, "team"), None);
    }

    /// A new repository `name`, by its event.
    async fn new_repository(&self, name: &str) {
        self.store.create_repository("us-east-1", name);
        self.repository_created(name).await;
    }

    /// GIVEN a prefix statement on `team/` from before the index whose repositories are all
    /// under `team/a/` (its records cannot tell `team` from `team/a`), WHEN the sweep runs,
    /// THEN it is indexed under the narrowest prefix that covers them, never broader than its
    /// own.
    async fn indexed_under_team_a() -> Self {
        let h = Self::over(&["team/a/x", "team/a/y"]).await;
        h.forget_the_index();
        h.sweep(Action::Report).await;
        assert_eq!(indexed(&h, "team/a").as_deref(), Some(TAG));
        assert_eq!(indexed(&h, "team"), None);
        h
    }

    /// The prefix statement's Delete: no index item holds it after, and a new repository
    /// under `team/a/` gets nothing.
    async fn deleted_leaves_no_index_entry(&self) {
        self.delete().await;
        assert_eq!(indexed(self, "team"), None);
        assert_eq!(indexed(self, "team/a"), None);
        self.new_repository("team/a/after-delete").await;
        assert!(!self.holds("team/a/after-delete"));
    }

    fn holds(&self, name: &str) -> bool {
        self.statements(&repo(name)).iter().any(|s| s["Sid"] == SID)
    }
}

#[tokio::test]
async fn a_prefix_statement_from_before_the_index_is_indexed_by_the_sweep_and_reaches_new_repositories()
 {
    // GIVEN a prefix statement on `team/` held by two repositories whose common parent is
    // `team`, and no index item (as a release before the index wrote it)
    let h = Harness::over(&["team/app", "team/b/x"]).await;
    h.forget_the_index();
    h.new_repository("team/early").await;
    assert!(
        !h.holds("team/early"),
        "without the index, an event finds nothing"
    );
    // WHEN the daily sweep runs
    let summary = h.sweep(Action::Report).await;
    // THEN it is indexed again, under its holder, and applied where the event missed it
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(indexed(&h, "team").as_deref(), Some(TAG));
    assert!(h.holds("team/early"));
    assert_eq!(h.holder_of(&repo("team/early"), SID).as_deref(), Some(TAG));
    // and new repositories under it get it by their events, those beside it do not
    h.new_repository("team/later").await;
    assert_eq!(h.statements(&repo("team/later")), [own_statement()]);
    h.new_repository("teams/x").await;
    assert!(h.statements(&repo("teams/x")).is_empty());
    // and its Delete leaves nothing, in ECR or the index
    h.delete().await;
    for name in ["team/app", "team/b/x", "team/early", "team/later"] {
        assert!(!h.holds(name), "{name}");
    }
    assert_eq!(indexed(&h, "team"), None);
    h.new_repository("team/after").await;
    assert!(!h.holds("team/after"));
}

#[tokio::test]
async fn a_prefix_statement_indexed_under_a_narrower_prefix_moves_to_its_own_at_its_update() {
    let h = Harness::indexed_under_team_a().await;
    h.new_repository("team/a/z").await;
    assert!(h.holds("team/a/z"));
    h.new_repository("team/b/new").await;
    assert!(!h.holds("team/b/new"), "not until its Update");
    // WHEN its Update in place runs
    let mut changed = own_statement();
    changed["Action"] = json!(["ecr:BatchGetImage"]);
    h.update(&changed).await;
    // THEN it is indexed under its own prefix only, with its new statement
    assert_eq!(indexed(&h, "team").as_deref(), Some(TAG));
    assert_eq!(indexed(&h, "team/a"), None, "the narrower entry is gone");
    assert_eq!(h.statements(&repo("team/b/new")), [changed.clone()]);
    h.new_repository("team/a/after-update").await;
    assert_eq!(h.statements(&repo("team/a/after-update")), [changed]);
    // and its Delete leaves nothing anywhere
    h.deleted_leaves_no_index_entry().await;
}

#[tokio::test]
async fn a_delete_takes_out_what_a_sweep_indexed_under_a_narrower_prefix() {
    let h = Harness::indexed_under_team_a().await;
    h.deleted_leaves_no_index_entry().await;
}

#[tokio::test]
async fn a_statement_on_one_repository_is_never_taken_for_a_prefix_statement() {
    // GIVEN a statement resource on the one repository `team/app` (RepositoryName), and no
    // prefix statement
    let store = Arc::new(MemoryEcr::new());
    store.create_repository("us-east-1", "team/app");
    let h = Harness {
        store,
        lock: Arc::new(MemoryLock::new()),
        recorder: Recorder::start(Vec::new()).await,
    };
    let mut e = event("repository-statement-create.json", &h.recorder.url);
    e["ResourceProperties"]["RepositoryName"] = "team/app".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // WHEN the sweep runs, and a repository beside it is created
    h.sweep(Action::Report).await;
    h.new_repository("team/new").await;
    // THEN no index item names it, and the new repository gets nothing
    let index_items = h.lock.scan().await.expect("scan");
    assert!(
        !index_items
            .iter()
            .any(|(key, s)| key.starts_with("prefix/") && s.record.holds_anything()),
        "{index_items:?}"
    );
    assert!(h.statements(&repo("team/new")).is_empty());
}

#[tokio::test]
async fn a_delete_during_the_sweeps_indexing_leaves_no_index_entry() {
    // GIVEN a prefix statement from before the index, and a sweep that holds the lease of
    // the repository it checked (its witness) and stops before writing the index item
    let h = Harness::over(&["team/app", "team/b/x"]).await;
    h.forget_the_index();
    let index = index_key("us-east-1", "team");
    let sweep_gate = Gate::new(Call::Acquire, &index, "prefix/", 0);
    // and the statement's Delete, out of the index already, which stops at its first try
    // to take that repository's lease
    let delete_gate = Gate::new(Call::Acquire, &key(&repo("team/app")), "delete-1/", 0);
    let provider = h.gated(&[&sweep_gate, &delete_gate]);
    let sweep_event = sample("drift/sweep.json").to_string();
    let sweep = provider.invoke(&sweep_event, deadline_in(Duration::from_secs(30)), "inv-1");
    tokio::pin!(sweep);
    until_stopped(sweep.as_mut(), &sweep_gate).await;
    let delete = support::send_one(&provider, &h.recorder, h.delete_event());
    tokio::pin!(delete);
    tokio::select! {
        r = delete.as_mut() => panic!("the Delete ended before the repository: {r}"),
        () = delete_gate.reached.notified() => {}
    }
    // WHEN the sweep writes the index item, and then the Delete goes on
    sweep_gate.go.notify_one();
    sweep.await.expect("swept");
    assert_eq!(
        indexed(&h, "team").as_deref(),
        Some(TAG),
        "indexed by the sweep"
    );
    delete_gate.go.notify_one();
    let r = delete.await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // THEN nothing is left: not in the repositories, not in the index
    h.nothing_left(&["team/app", "team/b/x"]);
    h.new_repository("team/after").await;
    assert!(!h.holds("team/after"));
}

#[tokio::test]
async fn the_sweep_applies_the_statements_a_repository_lacks_of_a_prefix_statement_it_partly_holds()
{
    let h = Harness::new().await;
    let second = json!({"Sid": "ScanForTeamConsumers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "ecr:DescribeImages"});
    let mut e = event(CREATE, &h.recorder.url);
    e["RequestType"] = "Update".into();
    e["RequestId"] = "update-1".into();
    e["PhysicalResourceId"] = physical_id().into();
    e["OldResourceProperties"] = e["ResourceProperties"].clone();
    e["ResourceProperties"]["Statement"] = json!([own_statement(), second]);
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // A repository no event announced; then another prefix statement's Create naming our
    // first Sid, without `Adopt`: it reaches the new repository first (ours never did), is
    // refused in team/app, and its take-out hands our first Sid back in the new one.
    h.store.create_repository("us-east-1", "team/a-missed");
    let mut other = event(CREATE, &h.recorder.url);
    other["RequestId"] = "other-create".into();
    other["LogicalResourceId"] = "OtherPull".into();
    other["ResourceProperties"]["Statement"] = json!([{"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"}]);
    let r = h.send(other.clone()).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let mut cleanup = other;
    cleanup["RequestType"] = "Delete".into();
    cleanup["RequestId"] = "other-delete".into();
    cleanup["PhysicalResourceId"] = "failed-create:other-create".into();
    let r = h.send(cleanup).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let sids = |target: &Target| -> Vec<String> {
        let mut sids: Vec<String> = h
            .statements(target)
            .iter()
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
            .collect();
        sids.sort();
        sids
    };
    assert_eq!(sids(&repo("team/a-missed")), [SID]);
    // WHEN the sweep runs, THEN the repository gets the statement it lacks.
    let summary = h.sweep(Action::Report).await;
    assert_eq!(summary.drifted(), 0, "{summary:?}");
    assert_eq!(sids(&repo("team/a-missed")), [SID, "ScanForTeamConsumers"]);
    assert_eq!(sids(&repo("team/app")), [SID, "ScanForTeamConsumers"]);
}
