//! Prefix statements (CONTRACT 15) over the in-memory ECR and lock table: GIVEN repositories
//! under a prefix (and some beside it) with statements others added, WHEN CloudFormation
//! sends a prefix statement's Create, Update or Delete, THEN every matching repository holds
//! exactly this resource's statements as a statement resource on it would, and nothing
//! else changed.

mod support;

use ecr_policy_provider::ecr::memory::{ACCOUNT_ID, MemoryEcr};
use ecr_policy_provider::ecr::{EcrError, PolicyStore};
use ecr_policy_provider::identity::Target;
use ecr_policy_provider::lock::key;
use ecr_policy_provider::lock::memory::MemoryLock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{Recorder, deadline_in, event, provider_with, repo, send_one};

const CREATE: &str = "repository-prefix-statement-create.json";
const TAG: &str = "6a2f0c4e-9b1d-4e7a-8c3f-2d5b7e9a1c02";
const SID: &str = "PullForTeamConsumers";

/// Under `team/`: these; beside it: `team` itself, `team-x` and `teams/app`.
const UNDER: [&str; 4] = ["team/app", "team/a/b", "team/web", "team/z"];
const BESIDE: [&str; 3] = ["team", "team-x", "teams/app"];

fn console() -> Value {
    json!({"Sid": "ConsoleAddedPull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": ["ecr:BatchGetImage"]})
}

fn lambda_grant() -> Value {
    json!({"Sid": "LambdaECRImageRetrievalPolicy", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:123456789012:function:*"}}})
}

fn prefix_id(tag: &str, prefix: &str) -> String {
    format!("ecr-policy-statements/{tag}/{SID}/repository-prefix:us-east-1:{ACCOUNT_ID}:{prefix}")
}

struct Harness {
    store: Arc<MemoryEcr>,
    lock: Arc<MemoryLock>,
    recorder: Recorder,
    concurrency: usize,
}

impl Harness {
    async fn new() -> Self {
        let store = Arc::new(MemoryEcr::new());
        for name in UNDER.iter().chain(BESIDE.iter()) {
            store.create_repository("us-east-1", name);
        }
        Self {
            store,
            lock: Arc::new(MemoryLock::new()),
            recorder: Recorder::start(Vec::new()).await,
            concurrency: 4,
        }
    }

    fn create(&self) -> Value {
        event(CREATE, &self.recorder.url)
    }

    fn follow_up(&self, request_type: &str, physical_id: &str, request_id: &str) -> Value {
        let mut e = self.create();
        e["RequestType"] = request_type.into();
        e["RequestId"] = request_id.into();
        e["PhysicalResourceId"] = physical_id.into();
        if request_type == "Update" {
            e["OldResourceProperties"] = e["ResourceProperties"].clone();
        }
        e
    }

    async fn send(&self, event: Value) -> Value {
        let mut config = support::config(&self.recorder);
        config.settings.prefix_concurrency = self.concurrency;
        let provider = provider_with(self.store.clone(), config).with_lock(Some(self.lock.clone()));
        send_one(&provider, &self.recorder, event).await
    }

    fn seed(&self, name: &str, statements: &[Value]) {
        self.seed_target(&repo(name), statements);
    }

    fn seed_target(&self, target: &Target, statements: &[Value]) {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        self.store.seed(target, &doc.to_string());
    }

    fn statements(&self, name: &str) -> Vec<Value> {
        self.statements_of(&repo(name))
    }

    fn statements_of(&self, target: &Target) -> Vec<Value> {
        self.store
            .live(target)
            .map(|text| {
                let doc: Value = serde_json::from_str(&text).expect("JSON");
                doc["Statement"].as_array().expect("a list").clone()
            })
            .unwrap_or_default()
    }

    fn leases_free(&self) -> bool {
        UNDER
            .iter()
            .chain(BESIDE.iter())
            .all(|name| self.lock.lease(&key(&repo(name))).is_none())
    }
}

fn own_statement() -> Value {
    let e = event(CREATE, "https://unused");
    e["ResourceProperties"]["Statement"][0].clone()
}

#[tokio::test]
async fn a_prefix_statement_reaches_every_repository_under_it_and_none_beside_it() {
    let h = Harness::new().await;
    h.seed("team/app", &[console()]);
    h.seed("team-x", &[console()]);

    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], prefix_id(TAG, "team/"));
    assert_eq!(
        r["Data"],
        json!({"RegistryId": ACCOUNT_ID, "Region": "us-east-1", "Sids": SID, "Adopted": "false", "Access": "accounts:444455556666", "Repositories": "4", "Templates": ""})
    );
    assert_eq!(h.statements("team/app"), [console(), own_statement()]);
    for name in &UNDER[1..] {
        assert_eq!(h.statements(name), [own_statement()], "{name}");
    }
    assert_eq!(h.statements("team-x"), [console()]);
    for name in ["team", "teams/app"] {
        assert!(h.statements(name).is_empty(), "{name}");
    }
    // Each repository is a target of its own: its record holds the Sid under the tag.
    for name in UNDER {
        let record = h.lock.record(&key(&repo(name)));
        assert_eq!(record.holder_of(SID), Some(TAG), "{name}");
    }
    assert!(h.leases_free());

    // Delivered again: nothing more is written.
    let writes = h.store.calls().writes;
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.calls().writes, writes);
}

#[tokio::test]
async fn team_and_team_slash_and_root_match_as_creation_templates_do() {
    for (prefix, expected) in [
        ("team", UNDER.to_vec()),
        ("team/a", vec!["team/a/b"]),
        ("ROOT", UNDER.iter().chain(BESIDE.iter()).copied().collect()),
    ] {
        let h = Harness::new().await;
        let mut e = h.create();
        e["ResourceProperties"]["RepositoryPrefix"] = prefix.into();
        let r = h.send(e).await;
        assert_eq!(r["Status"], "SUCCESS", "{prefix}: {r}");
        assert_eq!(r["PhysicalResourceId"], prefix_id(TAG, prefix));
        assert_eq!(r["Data"]["Repositories"], expected.len().to_string());
        for name in UNDER.iter().chain(BESIDE.iter()) {
            let holds = !h.statements(name).is_empty();
            assert_eq!(holds, expected.contains(name), "{prefix}: {name}");
        }
    }
}

#[tokio::test]
async fn a_prefix_beside_a_name_or_malformed_is_refused_before_ecr_is_called() {
    let h = Harness::new().await;
    for (properties, fragment) in [
        (
            json!({"RepositoryPrefix": "team", "RepositoryName": "team/app"}),
            "exactly one of RepositoryName",
        ),
        (json!({"RepositoryPrefix": "Team/"}), "is not a prefix"),
        (json!({"RepositoryPrefix": "team//x"}), "is not a prefix"),
    ] {
        let mut e = h.create();
        let props = e["ResourceProperties"].as_object_mut().expect("object");
        props.remove("RepositoryPrefix");
        for (k, v) in properties.as_object().expect("object") {
            props.insert(k.clone(), v.clone());
        }
        let r = h.send(e).await;
        assert_eq!(r["Status"], "FAILED", "{r}");
        let reason = r["Reason"].as_str().expect("a reason");
        assert!(reason.contains(fragment), "{reason}");
    }
    let calls = h.store.calls();
    assert_eq!((calls.reads, calls.writes, calls.lists), (0, 0, 0));
}

#[tokio::test]
async fn a_conflicting_sid_in_one_repository_fails_the_create_naming_it_and_leaves_every_other_as_it_was()
 {
    for concurrency in [1, 4] {
        let mut h = Harness::new().await;
        h.concurrency = concurrency;
        let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
        h.seed("team/app", &[console()]);
        h.seed("team/web", &[theirs.clone(), lambda_grant()]);

        let r = h.send(h.create()).await;
        assert_eq!(r["Status"], "FAILED", "{r}");
        assert_eq!(r["PhysicalResourceId"], format!("failed-create:{TAG}"));
        let reason = r["Reason"].as_str().expect("a reason");
        assert!(reason.contains("repository \"team/web\""), "{reason}");
        assert!(reason.contains("prefix \"team/\""), "{reason}");
        assert!(reason.contains("taken out again"), "{reason}");
        assert_eq!(h.statements("team/app"), [console()], "{concurrency}");
        assert_eq!(h.statements("team/web"), [theirs, lambda_grant()]);
        for name in ["team/a/b", "team/z"] {
            assert!(h.statements(name).is_empty(), "{concurrency}: {name}");
        }
        for name in UNDER {
            let record = h.lock.record(&key(&repo(name)));
            assert_eq!(record.holder_of(SID), None, "{concurrency}: {name}");
        }
        assert!(h.leases_free());

        // CloudFormation's Delete of the failed Create touches nothing more.
        let r = h
            .send(h.follow_up("Delete", &format!("failed-create:{TAG}"), "d1"))
            .await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        assert_eq!(h.statements("team/app"), [console()]);
    }
}

#[tokio::test]
async fn with_adopt_the_conflicting_sid_is_taken_over() {
    let h = Harness::new().await;
    let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
    h.seed("team/web", &[theirs]);
    let mut e = h.create();
    e["ResourceProperties"]["Adopt"] = "true".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Adopted"], "true");
    assert_eq!(h.statements("team/web"), [own_statement()]);
}

#[tokio::test]
async fn update_and_delete_leave_the_consoles_and_lambdas_statements() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    // Others add theirs afterwards, and a new repository appears under the prefix.
    h.seed("team/app", &[console(), own_statement(), lambda_grant()]);
    h.store.create_repository("us-east-1", "team/new");

    let mut update = h.follow_up("Update", &id, "u1");
    update["ResourceProperties"]["Statement"][0]["Action"] = json!(["ecr:BatchGetImage"]);
    let changed = update["ResourceProperties"]["Statement"][0].clone();
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        r["PhysicalResourceId"], id,
        "an update in place keeps the id"
    );
    assert_eq!(r["Data"]["Repositories"], "5");
    assert_eq!(
        h.statements("team/app"),
        [console(), changed.clone(), lambda_grant()]
    );
    for name in ["team/a/b", "team/web", "team/z", "team/new"] {
        assert_eq!(h.statements(name), std::slice::from_ref(&changed), "{name}");
    }
    assert_eq!(
        h.lock.record(&key(&repo("team/new"))).holder_of(SID),
        Some(TAG),
        "the new match is held under the resource's tag"
    );

    let r = h.send(h.follow_up("Delete", &id, "d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/app"), [console(), lambda_grant()]);
    for name in ["team/a/b", "team/web", "team/z", "team/new"] {
        assert!(h.store.live(&repo(name)).is_none(), "{name}");
    }
    assert!(h.leases_free());
}

#[tokio::test]
async fn a_delete_leaves_a_repository_it_never_reached_with_a_statement_of_the_same_sid() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    // A repository created later, with its own statement of that Sid (a creation
    // template's, say): this resource never held it there.
    let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
    h.seed("team/later", std::slice::from_ref(&theirs));
    let r = h.send(h.follow_up("Delete", &id, "d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/later"), [theirs]);
    assert!(h.statements("team/app").is_empty());
}

#[tokio::test]
async fn a_repository_deleted_meanwhile_is_skipped() {
    let h = Harness::new().await;
    // Listed, then gone before its turn: its read answers RepositoryNotFound.
    h.store.delete_after_listing("us-east-1", "team/web");
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], "3");
    for name in ["team/app", "team/a/b", "team/z"] {
        assert_eq!(h.statements(name), [own_statement()], "{name}");
    }
    assert_eq!(
        h.lock.record(&key(&repo("team/web"))).holder_of(SID),
        None,
        "nothing is recorded for the deleted repository"
    );
    assert!(h.leases_free());

    // A Delete during which a repository goes takes the statements out of the others.
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    h.store.delete_after_listing("us-east-1", "team/z");
    let r = h.send(h.follow_up("Delete", &id, "d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    for name in ["team/app", "team/a/b"] {
        assert!(h.statements(name).is_empty(), "{name}");
    }
    assert!(h.leases_free());
}

#[tokio::test]
async fn prefix_statements_need_the_lock_table() {
    let h = Harness::new().await;
    let outcome = support::provider(h.store.clone(), &h.recorder)
        .handle(h.create(), deadline_in(Duration::from_secs(30)))
        .await
        .expect("delivered");
    let body: Value = serde_json::from_slice(&outcome.response.to_body()).expect("JSON");
    assert_eq!(body["Status"], "FAILED", "{body}");
    let reason = body["Reason"].as_str().expect("a reason");
    assert!(reason.contains("lock table"), "{reason}");
    assert_eq!(h.store.calls().writes, 0);
}

#[tokio::test]
async fn an_update_refuses_a_new_match_whose_sid_differs_as_a_create_would() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
    h.seed("team/later", std::slice::from_ref(&theirs));
    let r = h.send(h.follow_up("Update", &id, "u1")).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(r["PhysicalResourceId"], id);
    let reason = r["Reason"].as_str().expect("a reason");
    assert!(reason.contains("repository \"team/later\""), "{reason}");
    assert!(reason.contains("rollback"), "{reason}");
    assert_eq!(h.statements("team/later"), [theirs]);
    assert!(h.leases_free());
}

#[tokio::test]
async fn repositories_are_worked_on_a_few_at_a_time() {
    for concurrency in [1, 2, 4] {
        let mut h = Harness::new().await;
        h.concurrency = concurrency;
        for n in 0..8 {
            h.store
                .create_repository("us-east-1", &format!("team/more-{n}"));
        }
        h.store.delay_reads(Duration::from_millis(20));
        let r = h.send(h.create()).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        assert_eq!(r["Data"]["Repositories"], "12");
        assert_eq!(h.store.most_reads_at_once(), concurrency);
    }
}

#[tokio::test]
async fn a_narrower_prefix_replaces_the_resource_and_the_cleanup_leaves_what_the_new_one_holds() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    let old_id = r["PhysicalResourceId"].as_str().expect("id").to_owned();

    let mut update = h.follow_up("Update", &old_id, "7e1d2c3b-0000-4000-8000-000000000001");
    update["ResourceProperties"]["RepositoryPrefix"] = "team/a".into();
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let new_tag = "7e1d2c3b-0000-4000-8000-000000000001";
    assert_eq!(r["PhysicalResourceId"], prefix_id(new_tag, "team/a"));
    assert_eq!(r["Data"]["Repositories"], "1");
    assert_eq!(
        h.lock.record(&key(&repo("team/a/b"))).holder_of(SID),
        Some(new_tag)
    );

    // CloudFormation's cleanup Delete of the old id: out of the repositories only the old
    // resource held; the new one keeps its own.
    let r = h.send(h.follow_up("Delete", &old_id, "d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/a/b"), [own_statement()]);
    for name in ["team/app", "team/web", "team/z"] {
        assert!(h.statements(name).is_empty(), "{name}");
    }
    assert!(h.leases_free());
}

#[tokio::test]
async fn a_prefix_nothing_matches_yet_succeeds_with_no_repository() {
    let h = Harness::new().await;
    let mut e = h.create();
    e["ResourceProperties"]["RepositoryPrefix"] = "nobody/".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], "0");
    assert_eq!(h.store.calls().writes, 0);
}

// Repository creation templates: one more kind of target (CONTRACT 15).

/// Templates at or under `team/` (reached by a `team/` statement), and beside or above it.
const TEMPLATES_REACHED: [&str; 2] = ["team", "team/a/"];
const TEMPLATES_NOT_REACHED: [&str; 3] = ["ROOT", "team-x", "other/team"];

fn template(prefix: &str) -> Target {
    Target::Template {
        region: "us-east-1".into(),
        prefix: prefix.into(),
    }
}

impl Harness {
    fn with_templates(self) -> Self {
        for prefix in TEMPLATES_REACHED.iter().chain(TEMPLATES_NOT_REACHED.iter()) {
            self.store.create_template("us-east-1", prefix);
        }
        self
    }

    fn seed_template(&self, prefix: &str, statements: &[Value]) {
        self.seed_target(&template(prefix), statements);
    }

    fn template_statements(&self, prefix: &str) -> Vec<Value> {
        self.statements_of(&template(prefix))
    }

    /// Every repository's and template's live policy.
    fn everything(&self) -> Vec<Option<String>> {
        let repositories = UNDER.iter().chain(BESIDE.iter()).map(|n| repo(n));
        let templates = TEMPLATES_REACHED
            .iter()
            .chain(TEMPLATES_NOT_REACHED.iter())
            .map(|p| template(p));
        repositories
            .chain(templates)
            .map(|t| self.store.live(&t))
            .collect()
    }

    fn template_leases_free(&self) -> bool {
        TEMPLATES_REACHED
            .iter()
            .chain(TEMPLATES_NOT_REACHED.iter())
            .all(|prefix| self.lock.lease(&key(&template(prefix))).is_none())
    }
}

#[tokio::test]
async fn templates_at_or_under_the_prefix_hold_the_statements_and_no_other_template_does() {
    let h = Harness::new().await.with_templates();
    h.seed_template("team", &[console()]);
    h.seed_template("team-x", &[console()]);

    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], "4");
    assert_eq!(r["Data"]["Templates"], "team,team/a/");
    assert_eq!(h.template_statements("team"), [console(), own_statement()]);
    assert_eq!(h.template_statements("team/a/"), [own_statement()]);
    assert_eq!(h.template_statements("team-x"), [console()]);
    for prefix in ["ROOT", "other/team"] {
        assert!(h.store.live(&template(prefix)).is_none(), "{prefix}");
    }
    // A template is a target of its own: its record holds the Sid under the tag.
    for prefix in TEMPLATES_REACHED {
        let record = h.lock.record(&key(&template(prefix)));
        assert_eq!(record.holder_of(SID), Some(TAG), "{prefix}");
    }
    assert_eq!(h.store.calls().template_lists, 1);
    assert!(h.leases_free() && h.template_leases_free());

    // Delivered again: nothing more is written.
    let writes = h.store.calls().writes;
    let r = h.send(h.create()).await;
    assert_eq!(r["Data"]["Templates"], "team,team/a/", "{r}");
    assert_eq!(h.store.calls().writes, writes);
}

#[tokio::test]
async fn only_a_root_statement_reaches_the_root_template() {
    for (prefix, reached) in [
        ("ROOT", "ROOT,other/team,team,team-x,team/a/"),
        ("team/a", "team/a/"),
        ("other", "other/team"),
    ] {
        let h = Harness::new().await.with_templates();
        let mut e = h.create();
        e["ResourceProperties"]["RepositoryPrefix"] = prefix.into();
        let r = h.send(e).await;
        assert_eq!(r["Status"], "SUCCESS", "{prefix}: {r}");
        assert_eq!(r["Data"]["Templates"], reached, "{prefix}");
        for template_prefix in TEMPLATES_REACHED.iter().chain(TEMPLATES_NOT_REACHED.iter()) {
            let holds = !h.template_statements(template_prefix).is_empty();
            let expected = reached.split(',').any(|p| p == *template_prefix);
            assert_eq!(holds, expected, "{prefix}: template {template_prefix}");
        }
    }
}

#[tokio::test]
async fn a_conflicting_sid_in_one_template_fails_the_create_naming_it_and_leaves_everything_as_it_was()
 {
    for concurrency in [1, 4] {
        let mut h = Harness::new().await.with_templates();
        h.concurrency = concurrency;
        let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
        h.seed("team/app", &[console()]);
        h.seed_template("team", &[console()]);
        h.seed_template("team/a/", &[theirs.clone(), lambda_grant()]);
        let before = h.everything();

        let r = h.send(h.create()).await;
        assert_eq!(r["Status"], "FAILED", "{r}");
        assert_eq!(r["PhysicalResourceId"], format!("failed-create:{TAG}"));
        let reason = r["Reason"].as_str().expect("a reason");
        assert!(
            reason.contains("repository creation template \"team/a/\""),
            "{reason}"
        );
        assert!(
            reason.contains("4 matching repositories and 2 creation templates"),
            "{reason}"
        );
        assert!(reason.contains("taken out again"), "{reason}");
        assert_eq!(h.everything(), before, "{concurrency}");
        for prefix in TEMPLATES_REACHED {
            let record = h.lock.record(&key(&template(prefix)));
            assert_eq!(record.holder_of(SID), None, "{concurrency}: {prefix}");
        }
        for name in UNDER {
            let record = h.lock.record(&key(&repo(name)));
            assert_eq!(record.holder_of(SID), None, "{concurrency}: {name}");
        }
        assert!(h.leases_free() && h.template_leases_free());
    }
}

#[tokio::test]
async fn update_and_delete_reach_templates_and_leave_others_statements_in_them() {
    let h = Harness::new().await.with_templates();
    h.seed_template("team", &[console()]);
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    // Lambda's grant lands in a template afterwards, and a new template appears under it.
    h.seed_template("team", &[console(), own_statement(), lambda_grant()]);
    h.store.create_template("us-east-1", "team/new");

    let mut update = h.follow_up("Update", &id, "u1");
    update["ResourceProperties"]["Statement"][0]["Action"] = json!(["ecr:BatchGetImage"]);
    let changed = update["ResourceProperties"]["Statement"][0].clone();
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], id);
    assert_eq!(r["Data"]["Templates"], "team,team/a/,team/new");
    assert_eq!(
        h.template_statements("team"),
        [console(), changed.clone(), lambda_grant()]
    );
    for prefix in ["team/a/", "team/new"] {
        assert_eq!(
            h.template_statements(prefix),
            std::slice::from_ref(&changed),
            "{prefix}"
        );
    }

    // A template deleted meanwhile is no failure of the Delete.
    h.store.delete_template("us-east-1", "team/new");
    let r = h.send(h.follow_up("Delete", &id, "d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.template_statements("team"), [console(), lambda_grant()]);
    // The last statement out of a template leaves it there, with no policy.
    assert!(h.store.live(&template("team/a/")).is_none());
    assert!(
        h.store
            .templates("us-east-1")
            .await
            .expect("listed")
            .contains(&"team/a/".to_owned())
    );
    for prefix in TEMPLATES_REACHED {
        let record = h.lock.record(&key(&template(prefix)));
        assert_eq!(record.holder_of(SID), None, "{prefix}");
    }
    assert!(h.leases_free() && h.template_leases_free());
}

#[tokio::test]
async fn a_template_deleted_meanwhile_is_skipped() {
    let h = Harness::new().await.with_templates();
    // Listed, then gone before its turn: its read answers TemplateNotFound.
    h.store
        .delete_template_after_listing("us-east-1", "team/a/");
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Templates"], "team");
    assert_eq!(r["Data"]["Repositories"], "4");
    assert_eq!(h.template_statements("team"), [own_statement()]);
    assert_eq!(
        h.lock.record(&key(&template("team/a/"))).holder_of(SID),
        None,
        "nothing is recorded for the deleted template"
    );
    assert!(h.leases_free() && h.template_leases_free());
}

#[tokio::test]
async fn throttling_beyond_the_sdk_retries_pauses_the_fan_out_and_the_create_succeeds() {
    let h = Harness::new().await;
    let throttle = || EcrError::Throttled {
        operation: "GetRepositoryPolicy",
        detail: "HTTP 400 ThrottlingException: Rate exceeded".into(),
    };
    // More throttled reads than one target could take without the provider's backoff.
    h.store.fail_reads((0..3).map(|_| throttle()));
    let started = std::time::Instant::now();
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Repositories"], "4");
    for name in UNDER {
        assert_eq!(h.statements(name), [own_statement()], "{name}");
    }
    assert!(h.leases_free());
    // Three throttles one after the other: three pauses of 0.5 s at least (the step
    // doubles with each, and halves with each call that goes through meanwhile).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert_eq!(h.store.calls().reads, 4 + 3);
}

/// A prefix Create refused in one repository takes its statement out of the others again;
/// where that removal fails with an answer that cannot say whether it landed (a 500 after
/// the SDK's retries), the record keeps announcing the statement, and CloudFormation's
/// Delete of the failed Create takes it out (CONTRACT 11: an unknowable outcome is not
/// called undone; CONTRACT 15: all or nothing; seeds 1000005652, 1000012780).
#[tokio::test]
async fn a_take_out_whose_removal_may_not_have_landed_is_finished_by_the_failed_creates_delete() {
    let mut h = Harness::new().await;
    h.concurrency = 1;
    let theirs = json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"});
    h.seed("team/web", std::slice::from_ref(&theirs));
    h.store.fail_deletes([EcrError::Unavailable {
        operation: "DeleteRepositoryPolicy",
        detail: "injected: a 500 after retries".into(),
    }]);
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let reason = r["Reason"].as_str().expect("a reason");
    assert!(reason.contains("could not be taken out"), "{reason}");
    let left: Vec<&str> = UNDER
        .iter()
        .copied()
        .filter(|name| !h.statements(name).is_empty() && *name != "team/web")
        .collect();
    assert_eq!(left.len(), 1, "one removal failed: {left:?}");
    let record = h.lock.record(&key(&repo(left[0])));
    assert_eq!(
        record.holder_of(SID),
        Some(TAG),
        "the record still announces it"
    );
    let r = h
        .send(h.follow_up("Delete", &format!("failed-create:{TAG}"), "d1"))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    for name in UNDER.iter().filter(|n| **n != "team/web") {
        assert!(h.statements(name).is_empty(), "{name}");
    }
    assert_eq!(h.statements("team/web"), [theirs]);
}

/// Another prefix statement on `team/`, with `Adopt`, whose statement has the Sid of ours
/// and another principal.
fn taker_event(h: &Harness, request_type: &str, request_id: &str) -> Value {
    let mut e = h.create();
    e["RequestType"] = request_type.into();
    e["RequestId"] = request_id.into();
    e["LogicalResourceId"] = "TeamPullTaker".into();
    e["ResourceProperties"]["Adopt"] = "true".into();
    e["ResourceProperties"]["Statement"] = json!([taker_statement()]);
    if request_type != "Create" {
        e["PhysicalResourceId"] = prefix_id("taker-create", "team/").into();
        e["OldResourceProperties"] = e["ResourceProperties"].clone();
    }
    e
}

fn taker_statement() -> Value {
    json!({"Sid": SID, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::777788889999:root"}, "Action": "ecr:BatchGetImage"})
}

#[tokio::test]
async fn an_updates_new_match_gets_the_statement_of_the_prefix_statement_that_took_its_sid() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    let r = h.send(taker_event(&h, "Create", "taker-create")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], prefix_id("taker-create", "team/"));
    for name in UNDER {
        assert_eq!(h.statements(name), [taker_statement()], "{name}");
    }
    // A repository no event announced: our Update reaches it first, and brings there what
    // the index holds, as the repository's event would have: the taker's statement.
    h.store.create_repository("us-east-1", "team/later");
    let r = h.send(h.follow_up("Update", &id, "u1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/later"), [taker_statement()]);
    let r = h.send(taker_event(&h, "Update", "taker-u1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/later"), [taker_statement()]);
    // The taker goes first: everywhere, the Sid goes back to ours, the new match included.
    taker_deleted_hands_back_everywhere(&h).await;
}

/// The taker's Delete: every repository under the prefix, `team/later` included, holds our
/// statement again.
async fn taker_deleted_hands_back_everywhere(h: &Harness) {
    let r = h.send(taker_event(h, "Delete", "taker-d1")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    for name in UNDER.iter().chain(["team/later"].iter()) {
        assert_eq!(h.statements(name), [own_statement()], "{name}");
    }
}

#[tokio::test]
async fn a_taker_that_reached_a_repository_first_hands_the_sid_back_there_too() {
    let h = Harness::new().await;
    let r = h.send(h.create()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // A repository no event announced: ours never reached it, the taker's Create does.
    h.store.create_repository("us-east-1", "team/later");
    let r = h.send(taker_event(&h, "Create", "taker-create")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements("team/later"), [taker_statement()]);
    taker_deleted_hands_back_everywhere(&h).await;
}
