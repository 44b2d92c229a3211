//! The sequences of issue 23 (CONTRACT 11 as amended), one test each, over the in-memory ECR
//! and lock table: one target with both kinds of resource, reads that lag the provider's own
//! deletes, deciding against the record rather than a read, rollbacks that must complete.
//! GIVEN stacks on one repository, WHEN the events arrive in the order named (with the read
//! lag named), THEN exactly one response per event, and ECR's true state (not a lagging
//! read) holds what the live resources declare.

mod support;

use ecr_policy_provider::ecr::EcrError;
use ecr_policy_provider::identity::Target;
use serde_json::{Value, json};
use std::time::Duration;
use support::world::Request;
use support::{Harness, grant, repo};

const STACK_A: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/platform/5b3c9a10-c8e1-11ee-9c2a-0a1b2c3d4e5f";
const STACK_B: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/team-b/0e4d8f20-c8e1-11ee-9c2a-0a1b2c3d4e5f";
/// Stack A deleted and created again under its name: another StackId.
const STACK_A_AGAIN: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/platform/9f8e7d60-c8e1-11ee-9c2a-0a1b2c3d4e5f";

const WHOLE: &str = "Custom::ECRRepositoryPolicy";
const STATEMENTS: &str = "Custom::ECRRepositoryPolicyStatement";

fn whole(statements: &[Value]) -> Value {
    json!({"RepositoryName": "app", "PolicyText": {"Version": "2012-10-17", "Statement": statements}})
}

fn some(statements: &[Value]) -> Value {
    json!({"RepositoryName": "app", "Statement": statements})
}

fn adopting(mut properties: Value) -> Value {
    properties["Adopt"] = "true".into();
    properties
}

fn app() -> Target {
    repo("app")
}

/// One resource of one stack.
#[derive(Clone, Copy)]
struct Res {
    stack: &'static str,
    logical: &'static str,
    kind: &'static str,
}

const fn res(stack: &'static str, logical: &'static str, kind: &'static str) -> Res {
    Res {
        stack,
        logical,
        kind,
    }
}

/// The shared harness over repository `app`, sending the events of [`Res`]ources.
struct World(Harness);

impl std::ops::Deref for World {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.0
    }
}

impl World {
    async fn new() -> Self {
        Self(Harness::new(&["app"]).await)
    }

    /// `r`'s request of `request_type` with `properties`; an Update or Delete of
    /// `physical_id`, an Update from `old`.
    fn request(
        &self,
        r: Res,
        request_type: &str,
        physical_id: Option<&str>,
        properties: &Value,
        old: Option<&Value>,
    ) -> Value {
        let request_id = self.request_id();
        let mut event = Request {
            request_type,
            resource_type: r.kind,
            stack_id: r.stack,
            logical_id: r.logical,
            request_id: &request_id,
            physical_id,
            properties,
            old_properties: old,
        }
        .event();
        event["ResponseURL"] = self.recorder.url.clone().into();
        event
    }

    fn event(&self, r: Res, request_type: &str, properties: &Value) -> Value {
        self.request(r, request_type, None, properties, None)
    }

    async fn create(&self, r: Res, properties: &Value) -> Value {
        self.create_within(r, properties, Duration::from_secs(30))
            .await
    }

    async fn create_within(&self, r: Res, properties: &Value, left: Duration) -> Value {
        self.send_within(self.event(r, "Create", properties), left)
            .await
    }

    /// An Update of the resource `physical_id`, from `old` to `new` properties.
    async fn update_within(
        &self,
        r: Res,
        physical_id: &str,
        old: &Value,
        new: &Value,
        left: Duration,
    ) -> Value {
        let e = self.request(r, "Update", Some(physical_id), new, Some(old));
        self.send_within(e, left).await
    }

    async fn update(&self, r: Res, physical_id: &str, old: &Value, new: &Value) -> Value {
        self.update_within(r, physical_id, old, new, Duration::from_secs(30))
            .await
    }

    async fn delete_within(
        &self,
        r: Res,
        physical_id: &str,
        properties: &Value,
        left: Duration,
    ) -> Value {
        let e = self.request(r, "Delete", Some(physical_id), properties, None);
        self.send_within(e, left).await
    }

    async fn delete(&self, r: Res, physical_id: &str, properties: &Value) -> Value {
        self.delete_within(r, physical_id, properties, Duration::from_secs(30))
            .await
    }

    /// ECR's true state: the statements the repository's policy holds now, whatever a
    /// lagging read would show.
    fn truth(&self) -> Vec<Value> {
        self.statements(&app())
    }

    fn truth_sids(&self) -> Vec<String> {
        let mut sids = self.sids(&app());
        sids.sort();
        sids
    }
}

fn id(r: &Value) -> String {
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    r["PhysicalResourceId"].as_str().expect("id").to_owned()
}

fn reason(r: &Value) -> &str {
    assert_eq!(r["Status"], "FAILED", "{r}");
    r["Reason"].as_str().expect("reason")
}

fn warnings(r: &Value) -> &str {
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    r["Data"]["Warnings"].as_str().unwrap_or_default()
}

/// Statements equal, as ECR's pretty-printed text reads back.
fn same(got: &[Value], want: &[Value]) {
    assert_eq!(got, want, "ECR holds {got:#?}");
}

const A: Res = res(STACK_A, "RepositoryPolicy", WHOLE);
const B: Res = res(STACK_B, "SharedGrant", STATEMENTS);

// One target, two kinds (sequences 1 to 6).

#[tokio::test]
async fn s01_a_statement_whose_sid_a_whole_policy_adopted_is_not_removed_by_its_delete() {
    let w = World::new().await;
    let b_props = some(&[grant("Shared", "111122223333")]);
    let b = id(&w.create(B, &b_props).await);
    let a_policy = [
        grant("Shared", "444455556666"),
        grant("Own", "777788889999"),
    ];
    id(&w.create(A, &adopting(whole(&a_policy))).await);
    let r = w.delete(B, &b, &b_props).await;
    assert!(warnings(&r).contains("RepositoryPolicy"), "{r}");
    same(&w.truth(), &a_policy);
}

#[tokio::test]
async fn s02_a_whole_policy_equal_to_the_live_one_is_refused_while_a_sid_is_held() {
    let w = World::new().await;
    let statement = grant("Shared", "111122223333");
    let b_props = some(std::slice::from_ref(&statement));
    let b = id(&w.create(B, &b_props).await);
    let r = w.create(A, &whole(std::slice::from_ref(&statement))).await;
    assert!(
        reason(&r).contains("\"Shared\"") && reason(&r).contains("SharedGrant"),
        "{r}"
    );
    // B's Delete then removes what B holds, nothing A was never given.
    w.delete(B, &b, &b_props).await;
    assert_eq!(w.store.live(&app()), None);
}

#[tokio::test]
async fn s03_a_statement_create_on_an_owned_policy_is_refused_and_with_adopt_hands_back() {
    let w = World::new().await;
    let a_policy = [grant("S1", "111122223333"), grant("S2", "444455556666")];
    id(&w.create(A, &whole(&a_policy)).await);
    // The same content as A's S1: refused all the same, naming the owner.
    let b_props = some(&[grant("S1", "111122223333")]);
    let r = w.create(B, &b_props).await;
    assert!(reason(&r).contains("RepositoryPolicy"), "{r}");
    same(&w.truth(), &a_policy);
    // With Adopt it takes S1; its Delete (while A still exists) hands S1 back as A declares it.
    let taker = adopting(some(&[grant("S1", "777788889999")]));
    let b = id(&w.create(B, &taker).await);
    w.delete(B, &b, &taker).await;
    same(&w.truth(), &a_policy);
}

#[tokio::test]
async fn s04_a_statement_added_to_an_owned_policy_survives_the_owners_update() {
    let w = World::new().await;
    let a_props = whole(&[grant("S1", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    let b_props = some(&[grant("S9", "444455556666")]);
    let r = w.create(B, &b_props).await;
    assert!(reason(&r).contains("RepositoryPolicy"), "{r}");
    // With Adopt the target moves to statements: A's next update writes nothing.
    id(&w.create(B, &adopting(b_props)).await);
    let a_new = whole(&[grant("S1", "777788889999")]);
    let r = w.update(A, &a, &a_props, &a_new).await;
    assert!(warnings(&r).contains("SharedGrant"), "{r}");
    assert_eq!(w.truth_sids(), ["S1", "S9"]);
    same(&w.truth()[..1], &[grant("S1", "111122223333")]);
}

#[tokio::test]
async fn s05_a_whole_policy_from_before_the_lock_table_leaves_a_statement_added_since() {
    let w = World::new().await;
    let a_props = whole(&[grant("Legacy", "111122223333")]);
    let created = w
        .send_without_lock_table(w.event(A, "Create", &a_props))
        .await;
    let a = id(&created);
    let b_props = some(&[grant("Added", "444455556666")]);
    id(&w.create(B, &b_props).await);
    id(&w.delete(A, &a, &a_props).await);
    same(&w.truth(), &[grant("Added", "444455556666")]);
}

#[tokio::test]
async fn s06_one_stack_update_moves_a_target_between_the_kinds_and_its_cleanup_keeps_it() {
    let w = World::new().await;
    let s1 = grant("S1", "111122223333");
    let s2 = grant("S2", "444455556666");
    let a_props = whole(&[s1.clone(), s2.clone()]);
    let a = id(&w.create(A, &a_props).await);
    let g1 = res(STACK_A, "GrantOne", STATEMENTS);
    let g2 = res(STACK_A, "GrantTwo", STATEMENTS);
    // Without Adopt: refused, naming the whole policy's resource.
    let r = w.create(g1, &some(std::slice::from_ref(&s1))).await;
    assert!(reason(&r).contains("RepositoryPolicy"), "{r}");
    let g1_props = adopting(some(std::slice::from_ref(&s1)));
    let g2_props = adopting(some(std::slice::from_ref(&s2)));
    let g1_id = id(&w.create(g1, &g1_props).await);
    let g2_id = id(&w.create(g2, &g2_props).await);
    // The cleanup Delete of the old resource leaves what it no longer holds.
    id(&w.delete(A, &a, &a_props).await);
    same(&w.truth(), &[s1.clone(), s2.clone()]);
    // And back: a whole policy adopts both; the statement resources' Deletes leave it.
    let back = res(STACK_A, "PolicyAgain", WHOLE);
    id(&w.create(back, &adopting(a_props.clone())).await);
    id(&w.delete(g1, &g1_id, &g1_props).await);
    id(&w.delete(g2, &g2_id, &g2_props).await);
    same(&w.truth(), &[s1, s2]);
}

// Reads that lag the provider's own deletes (sequences 7 to 9).

/// Reads lag by more than a request with [`SHORT`] to run waits for them (it reads again
/// until about half its time is left): what the provider removed must stay removed because
/// the record says so, not because a read caught up.
const LONG_LAG: Duration = Duration::from_millis(2_500);
const SHORT: Duration = Duration::from_secs(3);

impl World {
    /// From now on reads lag by [`LONG_LAG`], once what was written so far is older than
    /// that: a read then shows the state before the next write.
    async fn lag_from_now(&self) {
        tokio::time::sleep(LONG_LAG + Duration::from_millis(100)).await;
        self.store.lag_reads(LONG_LAG);
    }

    /// Reads lag from now on ([`World::lag_from_now`]), and the next write lands with its
    /// answer lost: the request cannot know its outcome.
    async fn lose_the_next_answer_while_reads_lag(&self) {
        self.lag_from_now().await;
        self.store.lose_write_answers([Some(EcrError::Unavailable {
            operation: "SetRepositoryPolicy",
            detail: "connection reset".into(),
        })]);
    }

    /// `r` (created with `old`, id `physical_id`) updated to `new`, a replacement whose write
    /// lands and whose answer is lost (FAILED, the outcome unknown); reads stop lagging
    /// after it.
    async fn replaced_lost(&self, r: Res, physical_id: &str, old: &Value, new: &Value) {
        self.lose_the_next_answer_while_reads_lag().await;
        let answer = self.update_within(r, physical_id, old, new, SHORT).await;
        assert!(reason(&answer).contains("could not be checked"), "{answer}");
        self.store.lag_reads(Duration::ZERO);
    }

    /// `r`'s Create whose write lands with its answer lost while reads lag (FAILED, the
    /// outcome unknown); reads stop lagging after it. Its failed-create id.
    async fn create_lost(&self, r: Res, properties: &Value) -> String {
        self.lose_the_next_answer_while_reads_lag().await;
        let answer = self.create_within(r, properties, SHORT).await;
        assert_eq!(answer["Status"], "FAILED", "{answer}");
        self.store.lag_reads(Duration::ZERO);
        answer["PhysicalResourceId"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// The logical id of the resource the record says holds `sid`.
    fn holder_of(&self, sid: &str) -> String {
        self.record(&app()).statements[sid].holder.logical.clone()
    }

    /// `r` created with `properties`; then, reads lagging from now on, deleted with `left`
    /// to run (both answered SUCCESS).
    async fn deleted_while_reads_lag(&self, r: Res, properties: &Value, left: Duration) {
        let physical_id = id(&self.create(r, properties).await);
        self.lag_from_now().await;
        id(&self.delete_within(r, &physical_id, properties, left).await);
    }

    /// `r` created with `old`; then, reads lagging from now on, updated to `new` with
    /// [`SHORT`] to run (both answered SUCCESS): its PhysicalResourceId.
    async fn updated_while_reads_lag(&self, r: Res, old: &Value, new: &Value) -> String {
        let physical_id = id(&self.create(r, old).await);
        self.lag_from_now().await;
        id(&self.update_within(r, &physical_id, old, new, SHORT).await);
        physical_id
    }
}

/// A statement Create whose write landed with its answer lost is undone (the undo's read
/// shows the write: it deletes the policy, "ECR is as it was"); a read lagging behind that
/// undo still shows the write. The next Create must not keep it as a statement nobody holds:
/// the record remembers the undo as the provider's own last write.
#[tokio::test]
async fn an_undone_create_stays_out_of_the_next_merge_while_reads_lag_behind_the_undo() {
    let w = World::new().await;
    let undone = res(STACK_A, "Undone", STATEMENTS);
    // Each read takes 1 s: the write lands 1 s in, its undo deletes 2 s in.
    w.store.delay_reads(Duration::from_secs(1));
    w.store.lose_write_answers([Some(EcrError::Unavailable {
        operation: "SetRepositoryPolicy",
        detail: "connection reset".into(),
    })]);
    let answer = w
        .create_within(undone, &some(&[grant("Undone", "111122223333")]), SHORT)
        .await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(
        answer["Reason"]
            .as_str()
            .is_some_and(|r| r.contains("removed again")),
        "{answer}"
    );
    // A read 0.5 s behind shows the write, not its undo.
    w.store.delay_reads(Duration::ZERO);
    w.store.lag_reads(Duration::from_millis(500));
    let b_props = some(&[grant("New", "444455556666")]);
    id(&w.create_within(B, &b_props, SHORT).await);
    assert_eq!(w.truth_sids(), ["New"]);
}

#[tokio::test]
async fn s07_a_deleted_whole_policys_statements_do_not_come_back_beside_a_new_statement() {
    let w = World::new().await;
    let a_props = whole(&[grant("Old", "111122223333")]);
    w.deleted_while_reads_lag(A, &a_props, Duration::from_secs(30))
        .await;
    let b_props = some(&[grant("New", "444455556666")]);
    id(&w.create_within(B, &b_props, SHORT).await);
    assert_eq!(w.truth_sids(), ["New"]);
}

#[tokio::test]
async fn s08_a_stale_read_after_a_whole_policys_delete_is_no_reason_to_refuse_a_create() {
    let w = World::new().await;
    let a_props = whole(&[grant("Old", "111122223333")]);
    w.deleted_while_reads_lag(A, &a_props, SHORT).await;
    let again = res(STACK_A_AGAIN, "RepositoryPolicy", WHOLE);
    let new_props = whole(&[grant("New", "444455556666")]);
    id(&w.create_within(again, &new_props, SHORT).await);
    assert_eq!(w.truth_sids(), ["New"]);
}

#[tokio::test]
async fn s08_a_stale_read_after_the_last_statements_delete_is_no_reason_to_refuse_a_create() {
    let w = World::new().await;
    let b_props = some(&[grant("Last", "777788889999")]);
    w.deleted_while_reads_lag(B, &b_props, SHORT).await;
    let third_props = whole(&[grant("Third", "111122223333")]);
    id(&w.create_within(A, &third_props, SHORT).await);
    assert_eq!(w.truth_sids(), ["Third"]);
}

#[tokio::test]
async fn s09_no_version_of_a_deleted_statement_comes_back_on_the_next_merge() {
    let w = World::new().await;
    let c1 = some(&[grant("S", "111122223333")]);
    let c2 = some(&[grant("S", "444455556666")]);
    let b = w.updated_while_reads_lag(B, &c1, &c2).await;
    id(&w.delete_within(B, &b, &c2, SHORT).await);
    let other = res(STACK_A, "OtherGrant", STATEMENTS);
    id(&w
        .create_within(other, &some(&[grant("T", "777788889999")]), SHORT)
        .await);
    assert_eq!(w.truth_sids(), ["T"]);
}

// Deciding against the record, not a read (sequences 10 to 13).

#[tokio::test]
async fn s10_a_rollback_whose_lagging_read_shows_the_old_statement_still_writes_it() {
    let w = World::new().await;
    let c1 = some(&[grant("S", "111122223333")]);
    let c2 = some(&[grant("S", "444455556666")]);
    let b = w.updated_while_reads_lag(B, &c1, &c2).await;
    // The rollback: an Update back to c1 while reads still show c1.
    id(&w.update_within(B, &b, &c2, &c1, SHORT).await);
    same(&w.truth(), &[grant("S", "111122223333")]);
}

#[tokio::test]
async fn s11_a_delete_whose_lagging_read_shows_no_policy_still_removes_its_statement() {
    let w = World::new().await;
    w.lag_from_now().await;
    let props = some(&[grant("S", "111122223333")]);
    let b = id(&w.create_within(B, &props, SHORT).await);
    assert_eq!(w.truth_sids(), ["S"]);
    id(&w.delete_within(B, &b, &props, SHORT).await);
    assert_eq!(w.store.live(&app()), None);
}

#[tokio::test]
async fn s12_a_stack_recreated_under_its_name_writes_its_policy_whatever_a_stale_read_shows() {
    let w = World::new().await;
    let props = whole(&[grant("S", "111122223333")]);
    w.deleted_while_reads_lag(A, &props, SHORT).await;
    let again = res(STACK_A_AGAIN, "RepositoryPolicy", WHOLE);
    let r = w.create_within(again, &props, SHORT).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(w.truth_sids(), ["S"]);
}

#[tokio::test]
async fn s13_a_write_whose_answer_was_lost_is_unknown_and_its_failed_create_delete_removes_it() {
    let w = World::new().await;
    w.lose_the_next_answer_while_reads_lag().await;
    let props = some(&[grant("S", "111122223333")]);
    let r = w.create_within(B, &props, SHORT).await;
    let why = reason(&r);
    assert!(
        why.contains("could not be checked") && !why.contains("as it was"),
        "{why}"
    );
    assert_eq!(w.truth_sids(), ["S"], "the write landed");
    // The record still announces it, so the failed create's Delete takes it out.
    assert!(w.record(&app()).statements.contains_key("S"));
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    id_of_delete(&w.delete_within(B, &failed, &props, SHORT).await);
    assert_eq!(w.store.live(&app()), None);
    assert!(w.record(&app()).statements.is_empty());
}

fn id_of_delete(r: &Value) {
    assert_eq!(r["Status"], "SUCCESS", "{r}");
}

// Rollbacks that must complete (sequences 14 and 15).

#[tokio::test]
async fn s14_a_displaced_holders_update_and_its_rollback_both_complete() {
    let w = World::new().await;
    let mine = some(&[grant("S", "111122223333")]);
    let a_res = res(STACK_A, "Grant", STATEMENTS);
    let a = id(&w.create(a_res, &mine).await);
    let theirs = adopting(some(&[grant("S", "444455556666")]));
    id(&w.create(B, &theirs).await);
    let changed = some(&[grant("S", "777788889999")]);
    let r = w.update(a_res, &a, &mine, &changed).await;
    assert!(warnings(&r).contains("SharedGrant"), "{r}");
    let r = w.update(a_res, &a, &changed, &mine).await;
    assert!(warnings(&r).contains("SharedGrant"), "{r}");
    same(&w.truth(), &[grant("S", "444455556666")]);
}

#[tokio::test]
async fn s15_a_renamed_resource_rolled_back_hands_its_sid_back_to_the_old_one() {
    let w = World::new().await;
    let props = some(&[grant("S", "111122223333")]);
    let old = res(STACK_A, "OldName", STATEMENTS);
    let new = res(STACK_A, "NewName", STATEMENTS);
    id(&w.create(old, &props).await);
    let new_id = id(&w.create(new, &props).await);
    // The stack update fails elsewhere: CloudFormation deletes the new resource.
    id(&w.delete(new, &new_id, &props).await);
    same(&w.truth(), &[grant("S", "111122223333")]);
    let record = w.record(&app());
    assert_eq!(record.statements["S"].holder.logical, "OldName");
}

#[tokio::test]
async fn a_whole_policy_taker_deleted_first_hands_the_policy_back() {
    let w = World::new().await;
    let a_policy = [grant("A", "111122223333")];
    id(&w.create(A, &whole(&a_policy)).await);
    let taker = res(STACK_B, "TakesOver", WHOLE);
    let taker_props = adopting(whole(&[grant("B", "444455556666")]));
    let t = id(&w.create(taker, &taker_props).await);
    id(&w.delete(taker, &t, &taker_props).await);
    same(&w.truth(), &a_policy);
    assert_eq!(
        w.record(&app()).owner.map(|o| o.holder.logical),
        Some("RepositoryPolicy".into())
    );
}

#[tokio::test]
async fn a_delete_after_the_repository_is_gone_succeeds_whoever_else_held_statements() {
    let w = World::new().await;
    let mine = some(&[grant("Mine", "111122223333")]);
    let b = id(&w.create(B, &mine).await);
    let other = res(STACK_A, "OtherGrant", STATEMENTS);
    id(&w
        .create(other, &some(&[grant("Theirs", "444455556666")]))
        .await);
    w.store.delete_repository("us-east-1", "app");
    let r = w.delete(B, &b, &mine).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        w.store.calls().writes,
        2,
        "nothing written to a repository that is gone"
    );
    assert!(!w.record(&app()).statements.contains_key("Mine"));
}

#[tokio::test]
async fn an_update_of_a_whole_policy_from_before_the_lock_table_keeps_the_statements_added_since() {
    let w = World::new().await;
    let old = whole(&[grant("Legacy", "111122223333")]);
    let created = w.send_without_lock_table(w.event(A, "Create", &old)).await;
    let a = id(&created);
    id(&w.create(B, &some(&[grant("Added", "444455556666")])).await);
    let new = whole(&[grant("Legacy", "777788889999")]);
    let r = w.update(A, &a, &old, &new).await;
    assert!(warnings(&r).contains("\"Added\""), "{r}");
    same(
        &w.truth(),
        &[
            grant("Legacy", "777788889999"),
            grant("Added", "444455556666"),
        ],
    );
    // Its rollback completes too.
    id(&w.update(A, &a, &new, &old).await);
    assert_eq!(w.truth_sids(), ["Added", "Legacy"]);
}

#[tokio::test]
async fn a_displaced_resource_that_says_adopt_takes_nothing_back_on_its_update() {
    let w = World::new().await;
    let a_res = res(STACK_A, "Grant", STATEMENTS);
    let mine = adopting(some(&[grant("S", "111122223333")]));
    let a = id(&w.create(a_res, &mine).await);
    id(&w
        .create(B, &adopting(some(&[grant("S", "444455556666")])))
        .await);
    let changed = adopting(some(&[grant("S", "777788889999")]));
    let r = w.update(a_res, &a, &mine, &changed).await;
    assert!(warnings(&r).contains("SharedGrant"), "{r}");
    same(&w.truth(), &[grant("S", "444455556666")]);
}

#[tokio::test]
async fn a_whole_policy_a_statement_took_a_sid_from_gets_it_back_and_deletes_only_what_it_holds() {
    let w = World::new().await;
    let a_props = whole(&[grant("S1", "111122223333"), grant("S2", "444455556666")]);
    let a = id(&w.create(A, &a_props).await);
    let taker = adopting(some(&[grant("S1", "777788889999")]));
    let b = id(&w.create(B, &taker).await);
    id(&w.delete(B, &b, &taker).await);
    same(
        &w.truth(),
        &[grant("S1", "111122223333"), grant("S2", "444455556666")],
    );
    // Its Update writes the Sid handed back to it, and names nobody but others.
    let changed = whole(&[grant("S1", "999988887777"), grant("S2", "444455556666")]);
    let r = w.update(A, &a, &a_props, &changed).await;
    assert!(!warnings(&r).contains("RepositoryPolicy\" of"), "{r}");
    same(
        &w.truth(),
        &[grant("S1", "999988887777"), grant("S2", "444455556666")],
    );
    // Its Delete takes out the Sid it holds again; the rest of its policy has been
    // statements nobody holds since the statement took S1 out of it, and stays (CONTRACT 11).
    id(&w.delete(A, &a, &changed).await);
    assert_eq!(w.truth_sids(), ["S2"]);
}

#[tokio::test]
async fn a_whole_policy_whose_ownership_a_statement_ended_leaves_the_rest_on_its_delete() {
    let w = World::new().await;
    w.store.seed(
        &app(),
        &json!({"Version": "2012-10-17", "Statement": [grant("Console", "123456789012")]})
            .to_string(),
    );
    let a_props = adopting(whole(&[grant("S1", "111122223333")]));
    let a = id(&w.create(A, &a_props).await);
    let taker = adopting(some(&[grant("S9", "444455556666")]));
    let b = id(&w.create(B, &taker).await);
    w.store.seed(
        &app(),
        &json!({"Version": "2012-10-17", "Statement": [grant("S1", "111122223333"), grant("S9", "444455556666"), grant("Console", "123456789012")]}).to_string(),
    );
    id(&w.delete(B, &b, &taker).await);
    let r = w.delete(A, &a, &a_props).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // S1 became a statement nobody holds when B ended A's ownership: A's Delete writes
    // nothing for it (CONTRACT 11), and the console's statement stays too.
    assert_eq!(w.truth_sids(), ["Console", "S1"]);
}

#[tokio::test]
async fn s10_a_whole_policys_rollback_after_a_lost_answer_writes_what_it_asks_whatever_a_read_shows()
 {
    let w = World::new().await;
    let p1 = whole(&[grant("S", "111122223333")]);
    let p2 = whole(&[grant("S", "444455556666")]);
    let a = id(&w.create(A, &p1).await);
    // The Update's write lands, its answer is lost (all three tries of the SDK).
    w.lose_the_next_answer_while_reads_lag().await;
    let r = w.update_within(A, &a, &p1, &p2, SHORT).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(w.truth_sids(), ["S"]);
    // The rollback: its read lags and shows p1; the record still announces p2.
    id(&w.update_within(A, &a, &p2, &p1, SHORT).await);
    same(&w.truth(), &[grant("S", "111122223333")]);
}

// Found by the simulator (docs/simulation.md): a taker deleted after a statement ended its
// ownership, and what a failed replacement's write left.

#[tokio::test]
async fn h01_a_rolled_back_update_gives_another_stacks_whole_policy_back_in_either_order() {
    for pull_first in [false, true] {
        let w = World::new().await;
        let grant_policy = [grant("Deploy", "111122223333")];
        id(&w.create(A, &whole(&grant_policy)).await);
        // Stack B's update: a whole policy adopts A's, a statement adopts a Sid out of it.
        let access = res(STACK_B, "Access", WHOLE);
        let pull = res(STACK_B, "Pull", STATEMENTS);
        let access_props = adopting(whole(&[grant("Audit", "444455556666")]));
        let pull_props = adopting(some(&[grant("Audit", "444455556666")]));
        let access_id = id(&w.create(access, &access_props).await);
        let pull_id = id(&w.create(pull, &pull_props).await);
        // B's update fails elsewhere: its rollback deletes both, in either order.
        if pull_first {
            id(&w.delete(pull, &pull_id, &pull_props).await);
            id(&w.delete(access, &access_id, &access_props).await);
        } else {
            id(&w.delete(access, &access_id, &access_props).await);
            id(&w.delete(pull, &pull_id, &pull_props).await);
        }
        same(&w.truth(), &grant_policy);
        assert_eq!(
            w.record(&app()).owner.map(|o| o.holder.logical),
            Some(A.logical.to_owned()),
            "pull first: {pull_first}"
        );
    }
}

#[tokio::test]
async fn h02_a_sid_a_whole_policy_took_comes_back_when_it_goes_though_a_statement_ended_it() {
    let w = World::new().await;
    let b_props = some(&[grant("Shared", "111122223333")]);
    id(&w.create(B, &b_props).await);
    let access = res(STACK_A, "Access", WHOLE);
    let access_props = adopting(whole(&[grant("Ci", "444455556666")]));
    let access_id = id(&w.create(access, &access_props).await);
    let audit = res(STACK_A, "Audit", STATEMENTS);
    id(&w
        .create(audit, &adopting(some(&[grant("Audit", "777788889999")])))
        .await);
    // Access holds nothing now; its Delete gives B its Sid back, and leaves Ci (nobody's
    // since Audit ended the ownership) and Audit.
    id(&w.delete(access, &access_id, &access_props).await);
    assert_eq!(w.truth_sids(), ["Audit", "Ci", "Shared"]);
    assert_eq!(w.holder_of("Shared"), B.logical);
}

#[tokio::test]
async fn h03_a_rollback_takes_out_the_sids_a_failed_replacement_left_behind() {
    let w = World::new().await;
    let old = some(&[grant("Shared", "111122223333")]);
    let new = some(&[grant("Deploy", "444455556666")]);
    let b = id(&w.create(B, &old).await);
    // The replacement's write lands; its answer is lost: FAILED, the outcome unknown.
    w.lose_the_next_answer_while_reads_lag().await;
    let r = w.update_within(B, &b, &old, &new, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    assert_eq!(w.truth_sids(), ["Deploy", "Shared"]);
    // The rollback: back to the old properties on the old id; no Delete of the new one
    // will come, so the rollback takes out what it left.
    id(&w.update_within(B, &b, &new, &old, SHORT).await);
    same(&w.truth(), &[grant("Shared", "111122223333")]);
}

#[tokio::test]
async fn h04_a_rollback_of_a_failed_move_takes_out_what_its_write_left_on_the_other_repository() {
    let w = World(Harness::new(&["app", "web"]).await);
    let on_app = some(&[grant("Shared", "111122223333")]);
    let mut on_web = on_app.clone();
    on_web["RepositoryName"] = "web".into();
    let b = id(&w.create(B, &on_app).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let r = w.update_within(B, &b, &on_app, &on_web, SHORT).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(w.sids(&repo("web")), ["Shared"], "the write landed");
    id(&w.update_within(B, &b, &on_web, &on_app, SHORT).await);
    assert_eq!(w.store.live(&repo("web")), None);
    assert!(w.record(&repo("web")).statements.is_empty());
    same(&w.truth(), &[grant("Shared", "111122223333")]);
}

#[tokio::test]
async fn h05_a_failed_create_that_ended_a_whole_policys_ownership_gives_it_back() {
    use support::world::LockFault;
    let w = World::new().await;
    let a_policy = [grant("Own", "111122223333")];
    let a_props = whole(&a_policy);
    let a = id(&w.create(A, &a_props).await);
    // B's statement Create with Adopt: its record is stored, the answer lost: FAILED, and
    // the record announces that B ended A's ownership.
    w.lock.arm([LockFault::LoseStoreAnswer]);
    let b_props = adopting(some(&[grant("Taken", "444455556666")]));
    let r = w.create(B, &b_props).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    // Meanwhile another statement joins as the record allows (the target looks shared).
    let c = res(STACK_B, "Joined", STATEMENTS);
    let c_props = some(&[grant("Joined", "777788889999")]);
    let joined = w.create(c, &c_props).await;
    // B's rollback: the failed create never existed; once nobody holds a Sid, A owns its
    // policy again, and its next Update writes it.
    id_of_delete(&w.delete(B, &failed, &b_props).await);
    if joined["Status"] == "SUCCESS" {
        id(&w.delete(c, &id(&joined), &c_props).await);
    }
    assert_eq!(
        w.record(&app()).owner.map(|o| o.holder.logical),
        Some(A.logical.to_owned())
    );
    same(&w.truth(), &a_policy);
    let changed = whole(&[grant("Own", "222233334444")]);
    id(&w.update(A, &a, &a_props, &changed).await);
    same(&w.truth(), &[grant("Own", "222233334444")]);
}

#[tokio::test]
async fn h06_a_whole_policy_a_sid_was_handed_back_to_drops_it_when_its_update_no_longer_declares_it()
 {
    let w = World::new().await;
    let a_props = whole(&[grant("Audit", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    // B's statement takes Audit out of A's policy (A's ownership ends), then goes: A holds
    // Audit again, as a statement.
    let b_props = adopting(some(&[grant("Audit", "111122223333")]));
    let b = id(&w.create(B, &b_props).await);
    id(&w.delete(B, &b, &b_props).await);
    assert_eq!(w.truth_sids(), ["Audit"]);
    // A's Update declares Ci instead: Audit goes (nothing else is written: the target is
    // managed by statements).
    let changed = whole(&[grant("Ci", "444455556666")]);
    id(&w.update(A, &a, &a_props, &changed).await);
    assert_eq!(w.store.live(&app()), None);
}

#[tokio::test]
async fn h07_a_whole_policy_from_before_the_lock_table_leaves_the_rest_of_a_policy_a_statement_ended()
 {
    let w = World::new().await;
    let legacy_props = whole(&[grant("Shared", "111122223333")]);
    let legacy = id(&w
        .send_without_lock_table(w.event(A, "Create", &legacy_props))
        .await);
    // The same stack takes the target over under another logical id, and a statement
    // resource then adopts a Sid: the whole policy's rest is nobody's, and stays.
    let grant_res = res(STACK_A, "Grant", WHOLE);
    id(&w.create(grant_res, &adopting(legacy_props.clone())).await);
    id(&w
        .create(B, &adopting(some(&[grant("Audit", "444455556666")])))
        .await);
    // The cleanup Delete of the old resource, which the record never knew, removes only
    // what nobody holds and no ended whole policy declares.
    id(&w.delete(A, &legacy, &legacy_props).await);
    assert_eq!(w.truth_sids(), ["Audit", "Shared"]);
}

/// A statement resource displaced by a whole policy (`Adopt`), whose own ownership a later
/// statement (`Adopt`) ended: nobody holds the displaced Sid now, yet the displaced
/// resource's Update in place writes nothing and names its taker (CONTRACT 11: displaced
/// holders' Updates write nothing; seeds 1648, 1923).
#[tokio::test]
async fn h08_a_displaced_statements_update_writes_nothing_after_its_takers_ownership_ended() {
    let w = World::new().await;
    let pull = res(STACK_B, "Pull", STATEMENTS);
    let pull_props = some(&[grant("Deploy", "111122223333")]);
    let p = id(&w.create(pull, &pull_props).await);
    let access = res(STACK_A, "Access", WHOLE);
    id(&w
        .create(access, &adopting(whole(&[grant("Audit", "444455556666")])))
        .await);
    let mirror = res(STACK_A, "Mirror", STATEMENTS);
    id(&w
        .create(mirror, &adopting(some(&[grant("Shared", "777788889999")])))
        .await);
    assert!(w.record(&app()).owner.is_none(), "Access's ownership ended");
    // Deploy is nobody's now, but Pull was displaced from it: its Update writes nothing.
    let changed = some(&[grant("Deploy", "222233334444")]);
    let (r, (_, writes)) = w.calls_of(w.update(pull, &p, &pull_props, &changed)).await;
    assert!(warnings(&r).contains("Access"), "{r}");
    assert_eq!(writes, 0, "nothing written for a displaced resource");
    assert_eq!(w.truth_sids(), ["Audit", "Shared"]);
}

/// Whole policy A declares Ci; statement S takes Ci out of it (`Adopt`, ending A's
/// ownership); A's Update changes Ci (writing nothing: S holds it); whole policy W
/// (`Adopt`) takes S's Sids; S is deleted, then W: A, which still exists, gets Ci back as
/// it declares it now (CONTRACT 11: a taker deleted before the one it displaced hands
/// back; a statement that took a Sid out of a whole policy hands it back as that policy
/// declares it; seed 1467).
#[tokio::test]
async fn h09_a_sid_taken_from_an_ended_whole_policy_and_taken_again_goes_back_to_it() {
    let w = World::new().await;
    let a_props = whole(&[grant("Ci", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    let s = res(STACK_B, "Pull", STATEMENTS);
    let s_props = adopting(some(&[grant("Ci", "444455556666")]));
    let s_id = id(&w.create(s, &s_props).await);
    let a_changed = whole(&[grant("Ci", "222233334444")]);
    let r = w.update(A, &a, &a_props, &a_changed).await;
    assert!(warnings(&r).contains("Pull"), "{r}");
    same(&w.truth(), &[grant("Ci", "444455556666")]);
    let taker = res(STACK_B, "Access", WHOLE);
    let taker_props = adopting(whole(&[grant("Audit", "777788889999")]));
    let t = id(&w.create(taker, &taker_props).await);
    id(&w.delete(s, &s_id, &s_props).await);
    assert_eq!(w.truth_sids(), ["Audit"]);
    id(&w.delete(taker, &t, &taker_props).await);
    same(&w.truth(), &[grant("Ci", "222233334444")]);
    assert_eq!(w.holder_of("Ci"), A.logical);
}

/// Whole policy A declares Ci; statement M takes it (`Adopt`, ending A's ownership); P of
/// the same stack, a renamed M, takes it over with equivalent content; whole policy W
/// (`Adopt`) takes P's Sids; P is deleted, then W: Ci goes back to the latest displaced
/// resource that still exists, M as it declares it, not to the older A (CONTRACT 11:
/// displaced resources are remembered in order; seed 1774).
#[tokio::test]
async fn h10_a_hand_back_goes_to_the_latest_displaced_resource_that_still_exists() {
    let w = World::new().await;
    id(&w.create(A, &whole(&[grant("Ci", "111122223333")])).await);
    let mirror = res(STACK_A, "Mirror", STATEMENTS);
    let mirror_props = adopting(some(&[grant("Ci", "444455556666")]));
    id(&w.create(mirror, &mirror_props).await);
    let renamed = res(STACK_A, "Policy", STATEMENTS);
    let renamed_props = some(&[grant("Ci", "444455556666")]);
    let r_id = id(&w.create(renamed, &renamed_props).await);
    let taker = res(STACK_A, "Shared", WHOLE);
    let taker_props = adopting(whole(&[grant("Audit", "777788889999")]));
    let t = id(&w.create(taker, &taker_props).await);
    id(&w.delete(renamed, &r_id, &renamed_props).await);
    id(&w.delete(taker, &t, &taker_props).await);
    same(&w.truth(), &[grant("Ci", "444455556666")]);
    assert_eq!(w.holder_of("Ci"), mirror.logical);
}

/// Statement resource P holds S; F's Create (`Adopt`) takes S, its write lands and its
/// answer is lost (FAILED, the outcome unknown); P is deleted; F's failed-create Delete
/// then takes out what F wrote and puts back nothing of P, which is gone (CONTRACT 11: a
/// failed Create's Delete removes what it wrote, and nothing else; seed 1691).
#[tokio::test]
async fn h11_a_failed_creates_delete_does_not_bring_back_a_deleted_resources_statement() {
    let w = World::new().await;
    let p = res(STACK_A, "Grant", STATEMENTS);
    let p_props = some(&[grant("S", "111122223333")]);
    let p_id = id(&w.create(p, &p_props).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let f_props = adopting(some(&[grant("S", "444455556666")]));
    let r = w.create_within(B, &f_props, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    same(&w.truth(), &[grant("S", "444455556666")]);
    // P, displaced, goes: it writes nothing. (Each Delete has the time to read again
    // until its read shows F's write.)
    id(&w.delete(p, &p_id, &p_props).await);
    id_of_delete(&w.delete(B, &failed, &f_props).await);
    assert_eq!(w.store.live(&app()), None);
    assert!(w.record(&app()).statements.is_empty());
}

/// Whole policy A declares S1 and S2; statement B takes S1 (`Adopt`, ending A's
/// ownership: S2 is nobody's); A's Delete is delivered twice: the duplicate does what the
/// first did and keeps S2 (CONTRACT 11: a duplicate delivery is the same owner; the
/// record's `gone`; seed 1736).
#[tokio::test]
async fn h12_a_duplicate_delete_of_a_displaced_whole_policy_keeps_the_rest_of_its_policy() {
    let w = World::new().await;
    let a_props = whole(&[grant("S1", "111122223333"), grant("S2", "444455556666")]);
    let a = id(&w.create(A, &a_props).await);
    id(&w
        .create(B, &adopting(some(&[grant("S1", "777788889999")])))
        .await);
    let delete = w.request(A, "Delete", Some(&a), &a_props, None);
    id(&w.send(delete.clone()).await);
    assert_eq!(w.truth_sids(), ["S1", "S2"]);
    id(&w.send(delete).await);
    assert_eq!(w.truth_sids(), ["S1", "S2"]);
    assert_eq!(w.holder_of("S1"), B.logical);
}

/// Statement resource B changes S (c1) to S (c2) and T: a replacement, whose write lands
/// and whose answer is lost (FAILED, the outcome unknown); whole policy C (`Adopt`) takes
/// what the replacement holds, and statement D (`Adopt`) ends C's ownership; the rollback
/// (an Update in place back to S c1) first takes out what the failed replacement left, so
/// it is not displaced by its own replacement: it holds S c1 again and names nobody
/// (CONTRACT 11: a rollback is the same owner, not a second one; seed 863).
#[tokio::test]
async fn h13_a_rollback_takes_out_a_failed_replacements_leftovers_before_it_applies() {
    let w = World::new().await;
    let old = some(&[grant("S", "111122223333")]);
    let new = some(&[grant("S", "444455556666"), grant("T", "777788889999")]);
    let b = id(&w.create(B, &old).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let r = w.update_within(B, &b, &old, &new, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    assert_eq!(w.truth_sids(), ["S", "T"]);
    w.store.lag_reads(Duration::ZERO);
    let c = res(STACK_A, "Access", WHOLE);
    id(&w
        .create(c, &adopting(whole(&[grant("X", "123412341234")])))
        .await);
    let d = res(STACK_A, "Mirror", STATEMENTS);
    id(&w
        .create(d, &adopting(some(&[grant("Y", "432143214321")])))
        .await);
    let r = w.update(B, &b, &new, &old).await;
    assert_eq!(warnings(&r), "", "{r}");
    assert_eq!(w.truth_sids(), ["S", "X", "Y"]);
    same(&w.truth()[2..], &[grant("S", "111122223333")]);
    let record = w.record(&app());
    assert_eq!(record.statements["S"].holder.logical, B.logical);
    assert!(!record.statements.contains_key("T"));
}

/// A console statement C; whole policy W's Create (`Adopt`, declaring C and Own) stores
/// its record and loses the answer (FAILED); statement S (`Adopt`) ends W's ownership; W's
/// failed-create Delete removes W's policy and puts back C, which it replaced; S's Delete
/// then keeps C (CONTRACT 11: statements nobody holds are kept; a statement put back is
/// not removed lately; seed 751).
#[tokio::test]
async fn h14_a_statement_a_failed_whole_create_put_back_survives_a_later_statement_delete() {
    use support::world::LockFault;
    let w = World::new().await;
    let console = grant("Console", "123456789012");
    w.seed(&app(), std::slice::from_ref(&console));
    w.lock.arm([LockFault::LoseStoreAnswer]);
    let w_props = adopting(whole(&[console.clone(), grant("Own", "111122223333")]));
    let r = w.create(A, &w_props).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    let s_props = adopting(some(&[grant("Taken", "444455556666")]));
    let s = id(&w.create(B, &s_props).await);
    id_of_delete(&w.delete(A, &failed, &w_props).await);
    assert!(
        w.truth_sids().contains(&"Console".to_owned()),
        "{:?}",
        w.truth_sids()
    );
    id(&w.delete(B, &s, &s_props).await);
    same(&w.truth(), &[console]);
}

/// A whole policy P set by the console; W's Create (`Adopt`) replaces it, W is deleted;
/// reads still lag behind W's Create and show P: a new whole policy's Create is not FAILED
/// "already has a policy" because of it (CONTRACT 11: what the provider removed stays
/// removed, and never makes a conflict; seed 1831's kind).
#[tokio::test]
async fn h15_a_policy_an_owner_adopted_and_deleted_is_no_conflict_through_a_lagging_read() {
    let w = World::new().await;
    w.seed(&app(), &[grant("Console", "123456789012")]);
    let lag = Duration::from_secs(10);
    w.store.lag_reads(lag);
    let w_props = adopting(whole(&[grant("Own", "111122223333")]));
    let owner = id(&w.create(A, &w_props).await);
    id(&w.delete_within(A, &owner, &w_props, SHORT).await);
    let again = res(STACK_A_AGAIN, "RepositoryPolicy", WHOLE);
    let new_props = whole(&[grant("New", "444455556666")]);
    let r = w.create_within(again, &new_props, SHORT).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(w.truth_sids(), ["New"]);
}

/// Whole policy A declares S; statement B's Create (`Adopt`) takes S out of it, ending A's
/// ownership, and its write lands with its answer lost (FAILED, the outcome unknown); A is
/// deleted (displaced, it writes nothing); B's failed-create Delete then takes out what B
/// wrote and puts back nothing of A, which is gone: what B took from A's policy was A's,
/// not a statement nobody held (CONTRACT 11: a failed Create's Delete removes what it
/// wrote, and nothing else; seeds 1204, 3604).
#[tokio::test]
async fn h16_a_failed_creates_delete_does_not_bring_back_what_it_took_from_a_deleted_whole_policy()
{
    let w = World::new().await;
    let a_props = whole(&[grant("S", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let b_props = adopting(some(&[grant("S", "444455556666")]));
    let r = w.create_within(B, &b_props, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    same(&w.truth(), &[grant("S", "444455556666")]);
    id(&w.delete(A, &a, &a_props).await);
    id_of_delete(&w.delete(B, &failed, &b_props).await);
    assert_eq!(w.store.live(&app()), None);
    assert!(w.record(&app()).statements.is_empty());
}

/// Statement resource M (stack B) holds S; in stack A, Access's Create (`Adopt`) takes S,
/// its write lands and its answer is lost (FAILED, the outcome unknown); Grant, in the same
/// stack, asks for S exactly as Access wrote it, without `Adopt`: it is refused, for M holds
/// S. Access never existed for CloudFormation, so Grant is no rename of it (CONTRACT 11:
/// ownership moves only by `Adopt`; the record's `failed`; seed 4653).
#[tokio::test]
async fn h17_a_failed_create_is_no_resource_a_rename_takes_over_from() {
    let w = World::new().await;
    let m_props = some(&[grant("S", "111122223333")]);
    id(&w.create(B, &m_props).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let access = res(STACK_A, "Access", STATEMENTS);
    let r = w
        .create_within(
            access,
            &adopting(some(&[grant("S", "444455556666")])),
            SHORT,
        )
        .await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    assert_eq!(
        w.record(&app()).failed.len(),
        1,
        "the record says it failed"
    );
    let grant_res = res(STACK_A, "Grant", STATEMENTS);
    let r = w
        .create_within(grant_res, &some(&[grant("S", "444455556666")]), SHORT)
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
}

/// Whole policy A (S) is created; statement resource B's Create (`Adopt`, stack B) adds T,
/// which ends A's ownership; its write lands and its answer is lost (FAILED, the outcome
/// unknown). A is deleted (displaced, as the record has it) before B's failed-create
/// Delete. B's Create never ended anything for CloudFormation, so A's Delete takes its
/// policy out as an owner's would, and B's Delete takes out T: nothing is left (CONTRACT 11:
/// a failed Create never ended anything; seeds 19411, 10310, 5449).
#[tokio::test]
async fn h18_a_whole_policy_a_failed_create_ended_goes_with_its_delete() {
    let w = World::new().await;
    let a_props = whole(&[grant("S", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    w.lose_the_next_answer_while_reads_lag().await;
    let b_props = adopting(some(&[grant("T", "444455556666")]));
    let r = w.create_within(B, &b_props, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    let failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    same(
        &w.truth(),
        &[grant("S", "111122223333"), grant("T", "444455556666")],
    );
    id(&w.delete(A, &a, &a_props).await);
    same(&w.truth(), &[grant("T", "444455556666")]);
    id_of_delete(&w.delete(B, &failed, &b_props).await);
    assert_eq!(w.store.live(&app()), None);
    assert!(w.record(&app()).statements.is_empty());
}

/// Whole policy M's Create (S and T) is answered FAILED while a duplicate delivery of it
/// wrote and answered SUCCESS (CloudFormation acts on the first answer); whole policy P
/// (`Adopt`, declaring S) takes the target over; statement Q (`Adopt`) ends P's
/// ownership, so P's S is nobody's. M's failed-create Delete takes out what M alone wrote
/// (T is gone already) and keeps S, which P declares too; P's and Q's Deletes keep it
/// (CONTRACT 11: a failed Create's Delete removes what it wrote, and nothing else;
/// statements nobody holds are kept; seed 13485).
#[tokio::test]
async fn h19_a_failed_creates_delete_keeps_what_the_whole_policy_that_took_it_over_declares() {
    let w = World::new().await;
    let m = res(STACK_A, "Mirror", WHOLE);
    let m_props = whole(&[grant("S", "111122223333"), grant("T", "444455556666")]);
    let create = w.request(m, "Create", None, &m_props, None);
    let request = create["RequestId"].as_str().expect("request id").to_owned();
    id(&w.send(create).await);
    let p = res(STACK_A, "Policy", WHOLE);
    let p_props = adopting(whole(&[grant("S", "111122223333")]));
    let p_id = id(&w.create(p, &p_props).await);
    let q = res(STACK_A, "Pull", STATEMENTS);
    let q_props = adopting(some(&[grant("Q", "777788889999")]));
    let q_id = id(&w.create(q, &q_props).await);
    assert_eq!(w.truth_sids(), ["Q", "S"]);
    let failed = format!("failed-create:{request}");
    id_of_delete(
        &w.send(w.request(m, "Delete", Some(&failed), &m_props, None))
            .await,
    );
    assert_eq!(w.truth_sids(), ["Q", "S"]);
    id(&w.delete(p, &p_id, &p_props).await);
    id(&w.delete(q, &q_id, &q_props).await);
    same(&w.truth(), &[grant("S", "111122223333")]);
}

/// A console statement C; whole policy M's Create (`Adopt`) replaces it, its answer lost
/// (FAILED, the outcome unknown); whole policy P's Create (`Adopt`, another stack) takes
/// the target over, its answer lost too. Both failed-create Deletes come, in either order:
/// C comes back, for neither Create happened for CloudFormation (CONTRACT 11: a failed
/// Create's Delete puts back what its write replaced; statements nobody holds are kept;
/// seeds 10094, 16105, 18043).
#[tokio::test]
async fn h20_what_two_failed_whole_creates_replaced_comes_back_in_either_order() {
    for m_first in [true, false] {
        let w = World::new().await;
        let console = grant("Console", "123456789012");
        w.seed(&app(), std::slice::from_ref(&console));
        let m = res(STACK_A, "Mirror", WHOLE);
        let m_props = adopting(whole(&[grant("M", "111122223333")]));
        w.lose_the_next_answer_while_reads_lag().await;
        let r = w.create_within(m, &m_props, SHORT).await;
        assert!(reason(&r).contains("could not be checked"), "{r}");
        let m_failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
        let p = res(STACK_B, "Policy", WHOLE);
        let p_props = adopting(whole(&[grant("P", "444455556666")]));
        w.lose_the_next_answer_while_reads_lag().await;
        let r = w.create_within(p, &p_props, SHORT).await;
        assert!(reason(&r).contains("could not be checked"), "{r}");
        let p_failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
        assert_eq!(w.truth_sids(), ["P"]);
        w.store.lag_reads(Duration::ZERO);
        if m_first {
            id_of_delete(&w.delete(m, &m_failed, &m_props).await);
            id_of_delete(&w.delete(p, &p_failed, &p_props).await);
        } else {
            id_of_delete(&w.delete(p, &p_failed, &p_props).await);
            id_of_delete(&w.delete(m, &m_failed, &m_props).await);
        }
        same(&w.truth(), std::slice::from_ref(&console));
    }
}

/// A console statement C; whole policy G (`Adopt`, declaring C exactly as the console
/// wrote it) is created, its answer lost (FAILED, the outcome unknown); whole policy M (`Adopt`)
/// takes the target over with its own C; statement S (`Adopt`) ends M's ownership, so M's
/// C is nobody's. G's failed-create Delete puts back nothing of the console's C: M's C
/// took its place, and a policy never gets two statements of one Sid (CONTRACT 11; seed
/// 12712).
#[tokio::test]
async fn h21_a_failed_creates_delete_puts_back_no_sid_another_statement_took() {
    let w = World::new().await;
    let console = grant("C", "111122223333");
    w.seed(&app(), std::slice::from_ref(&console));
    let g = res(STACK_A, "Grant", WHOLE);
    let g_props = adopting(whole(std::slice::from_ref(&console)));
    w.lose_the_next_answer_while_reads_lag().await;
    let r = w.create_within(g, &g_props, SHORT).await;
    assert!(reason(&r).contains("could not be checked"), "{r}");
    let g_failed = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    w.store.lag_reads(Duration::ZERO);
    let m = res(STACK_B, "Mirror", WHOLE);
    let theirs = grant("C", "444455556666");
    id(&w
        .create(m, &adopting(whole(std::slice::from_ref(&theirs))))
        .await);
    id(&w
        .create(B, &adopting(some(&[grant("D", "777788889999")])))
        .await);
    id_of_delete(&w.delete(g, &g_failed, &g_props).await);
    assert_eq!(w.truth_sids(), ["C", "D"]);
    same(&w.truth()[..1], &[theirs]);
}

/// Whole policy A (S c1); reads lag 4 s. A's Update to S c2 lands with its answer lost
/// (FAILED); its rollback to c1 is refused by ECR (FAILED, the outcome unknown to the
/// provider, which keeps announcing c1). The next Update asks for c1 again: the record says
/// c1 and the lagging read shows c1 from before the Update, but c2 landed after that read's
/// time: the policy is written, and ECR holds c1 (CONTRACT 11: whether to write is decided
/// against the record, and "nothing to write" needs a read that can show it; seed 10401).
#[tokio::test]
async fn h22_a_read_agreeing_with_the_record_after_an_unknown_outcome_still_writes() {
    let w = World::new().await;
    let c1 = whole(&[grant("S", "111122223333")]);
    let c2 = whole(&[grant("S", "444455556666")]);
    let a = id(&w.create(A, &c1).await);
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    w.store.lag_reads(Duration::from_secs(4));
    w.store.lose_write_answers([Some(EcrError::Unavailable {
        operation: "SetRepositoryPolicy",
        detail: "connection reset".into(),
    })]);
    let r = w.update_within(A, &a, &c1, &c2, SHORT).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    same(&w.truth(), &[grant("S", "444455556666")]);
    w.store.fail_writes([EcrError::Unavailable {
        operation: "SetRepositoryPolicy",
        detail: "a 500 after retries".into(),
    }]);
    let r = w.update_within(A, &a, &c2, &c1, SHORT).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    same(&w.truth(), &[grant("S", "444455556666")]);
    let r = w.update_within(A, &a, &c2, &c1, SHORT).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    same(&w.truth(), &[grant("S", "111122223333")]);
}

/// Whole policy A (Old) deleted; whole policy M of another stack (Mid) created and deleted
/// at once after it. Statement B's Create then reads a policy from before A's Delete: Old is still a statement the provider removed, though M's policy was
/// written since (M's write makes only its own statements live again), so it does not come
/// back beside B's (CONTRACT 11: what the provider removed stays removed; seed 11115).
#[tokio::test]
async fn h23_a_whole_policy_written_after_another_was_deleted_does_not_revive_its_statements() {
    let w = World::new().await;
    let a_props = whole(&[grant("Old", "111122223333")]);
    let a = id(&w.create(A, &a_props).await);
    tokio::time::sleep(LONG_LAG + Duration::from_millis(100)).await;
    id(&w.delete(A, &a, &a_props).await);
    let m = res(STACK_B, "Mirror", WHOLE);
    let m_props = whole(&[grant("Mid", "444455556666")]);
    let m_id = id(&w.create(m, &m_props).await);
    id(&w.delete(m, &m_id, &m_props).await);
    // A read now shows A's policy, from before its Delete.
    w.store.lag_reads(LONG_LAG);
    id(&w
        .create_within(B, &some(&[grant("New", "777788889999")]), SHORT)
        .await);
    assert_eq!(w.truth_sids(), ["New"]);
}

/// Whole policy A (Rest); statement P with `Adopt` (Deploy) ends A's ownership, so Rest is a
/// statement nobody holds; P is deleted. Reads lag: statement B's Create reads a
/// policy from before A's Create (none). The record says what the provider last wrote (Rest
/// alone): a read lacking it is read again until it shows it, so Rest, which only a read
/// knows, is kept beside B's statement (CONTRACT 11: a read older than our last write is read
/// again; seed 4814).
#[tokio::test]
async fn h24_a_read_lacking_a_statement_nobody_holds_that_was_just_written_is_read_again() {
    let w = World::new().await;
    let rest = grant("Rest", "111122223333");
    id(&w.create(A, &whole(std::slice::from_ref(&rest))).await);
    let p = res(STACK_B, "Pull", STATEMENTS);
    let p_props = adopting(some(&[grant("Deploy", "777788889999")]));
    let p_id = id(&w.create(p, &p_props).await);
    id_of_delete(&w.delete(p, &p_id, &p_props).await);
    same(&w.truth(), std::slice::from_ref(&rest));
    // A read now shows the repository before A's Create: no policy.
    w.store.lag_reads(LONG_LAG);
    id(&w.create(B, &some(&[grant("New", "123412341234")])).await);
    assert_eq!(w.truth_sids(), ["New", "Rest"]);
}

/// The console's statement C is nobody's. Statement M's Create declares C exactly as it is
/// (so it takes it as it was) and D; its write lands with its answer lost (FAILED). Its
/// failed-create Delete takes D out and leaves C, as it was before M. C is not a statement
/// the provider removed: statement B's Create later keeps it (CONTRACT 11: statements nobody
/// holds are kept; seed 11496).
#[tokio::test]
async fn h25_what_a_failed_create_puts_back_as_it_was_is_not_taken_for_a_removal() {
    let w = World::new().await;
    let console = grant("C", "111122223333");
    w.seed(&app(), std::slice::from_ref(&console));
    let m = res(STACK_A, "Mirror", STATEMENTS);
    let m_props = some(&[console.clone(), grant("D", "444455556666")]);
    let failed = w.create_lost(m, &m_props).await;
    id_of_delete(&w.delete(m, &failed, &m_props).await);
    same(&w.truth(), std::slice::from_ref(&console));
    id(&w.create(B, &some(&[grant("New", "777788889999")])).await);
    assert_eq!(w.truth_sids(), ["C", "New"]);
}

/// Whole policy A (Ci, Deploy); statement M with `Adopt` (Ci) ends its ownership, so Deploy
/// is a statement nobody holds. Statement X with `Adopt` takes Deploy; its write lands with
/// its answer lost (FAILED). For CloudFormation X never existed: its failed-create Delete
/// leaves Deploy as it was, nobody's, not A's, and A's Delete then leaves it (CONTRACT 11: a
/// failed Create never ended or took anything; seeds 3864, 1443, 19995).
#[tokio::test]
async fn h26_a_failed_create_gives_a_sid_it_took_from_an_ended_policys_rest_back_as_nobodys() {
    let w = World::new().await;
    let deploy = grant("Deploy", "444455556666");
    let a_props = whole(&[grant("Ci", "111122223333"), deploy.clone()]);
    let a = id(&w.create(A, &a_props).await);
    let m = res(STACK_B, "Mirror", STATEMENTS);
    id(&w
        .create(m, &adopting(some(&[grant("Ci", "777788889999")])))
        .await);
    let x = res(STACK_B, "Access", STATEMENTS);
    let x_props = adopting(some(&[grant("Deploy", "123412341234")]));
    let failed = w.create_lost(x, &x_props).await;
    id_of_delete(&w.delete(x, &failed, &x_props).await);
    id_of_delete(&w.delete(A, &a, &a_props).await);
    assert_eq!(w.truth_sids(), ["Ci", "Deploy"]);
    same(&w.truth()[1..], &[deploy]);
}

/// Statement M of stack B holds Ci. Statement X of stack A with `Adopt` declares Ci: its
/// record is stored, the store's answer lost (FAILED, nothing written to ECR). The record
/// is put back as it was, so X took nothing: statement P of stack A, with the same Ci as X,
/// is refused as held by M, not taken over from X by the rename exception (CONTRACT 11: a
/// record that cannot be stored leaves everything as it was; seed 1464).
#[tokio::test]
async fn h27_a_record_store_whose_answer_was_lost_is_put_back() {
    use support::world::LockFault;
    let w = World::new().await;
    let m = res(STACK_B, "Mirror", STATEMENTS);
    let theirs = grant("Ci", "111122223333");
    id(&w.create(m, &some(std::slice::from_ref(&theirs))).await);
    let ours = grant("Ci", "444455556666");
    w.lock.arm([LockFault::LoseStoreAnswer]);
    let x = res(STACK_A, "Access", STATEMENTS);
    let r = w
        .create(x, &adopting(some(std::slice::from_ref(&ours))))
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(w.holder_of("Ci"), "Mirror");
    let p = res(STACK_A, "Policy", STATEMENTS);
    let r = w.create(p, &some(std::slice::from_ref(&ours))).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(reason(&r).contains("Mirror"), "{r}");
    same(&w.truth(), &[theirs]);
}

/// The console's statement C (c1) is nobody's. Statement S with `Adopt` replaces it with
/// c2; S's Delete then deletes the policy. Reads lag: whole policy A's Create, asking for C
/// c1, reads the policy from before S (c1). The provider's last write deleted the policy, so
/// a policy shown less than a minute later is read again: A writes, and ECR holds c1
/// (CONTRACT 11: a read older than our last write is read again; seed 13878).
#[tokio::test]
async fn h28_a_policy_read_less_than_a_minute_after_the_provider_deleted_it_is_read_again() {
    let w = World::new().await;
    let c1 = grant("C", "111122223333");
    w.seed(&app(), std::slice::from_ref(&c1));
    tokio::time::sleep(LONG_LAG + Duration::from_millis(100)).await;
    let s_props = adopting(some(&[grant("C", "444455556666")]));
    let s = id(&w.create(B, &s_props).await);
    id_of_delete(&w.delete(B, &s, &s_props).await);
    assert!(w.truth().is_empty());
    // A read now shows the policy from before S's Create: c1.
    w.store.lag_reads(LONG_LAG);
    id(&w.create(A, &whole(std::slice::from_ref(&c1))).await);
    same(&w.truth(), &[c1]);
}

/// Whole policy A is updated to an equivalent text (its one statement written as an object,
/// not a list of one), and again within the minute: neither Update writes. The version the
/// first replaced is equivalent to what is asked, so its landing late would change nothing
/// (h22's rule writes only when a version replaced lately differs; CONTRACT 5, "write only
/// when needed").
#[tokio::test]
async fn h22_an_equivalent_update_within_a_minute_of_another_writes_nothing() {
    let s = grant("S", "111122223333");
    let single = json!({"RepositoryName": "app",
        "PolicyText": {"Version": "2012-10-17", "Statement": s.clone()}});
    let listed = whole(std::slice::from_ref(&s));
    let w = World::new().await;
    let a = id(&w.create(A, &listed).await);
    let (r, (_, writes)) = w.calls_of(w.update(A, &a, &listed, &single)).await;
    id(&r);
    assert_eq!(writes, 0, "an equivalent Update writes nothing");
    let (r, (_, writes)) = w.calls_of(w.update(A, &a, &single, &listed)).await;
    id(&r);
    assert_eq!(writes, 0, "nor does the next one within the minute");
    same(&w.truth(), &[s]);
}

/// Statement resource B changes S to T: a replacement, whose write lands and whose answer
/// is lost (FAILED, the outcome unknown). The rollback never takes out what it left (its
/// own Update fails, or never comes), and the stack is deleted: B's Delete takes out T too,
/// since no Delete of the failed replacement will come (CONTRACT 11: SUCCESS of a Delete
/// means ECR no longer holds what the resource asked for; seed 30422).
#[tokio::test]
async fn h29_a_delete_takes_out_what_a_failed_replacement_left_when_its_rollback_did_not() {
    let w = World::new().await;
    let console = grant("Console", "123456789012");
    w.seed(&app(), std::slice::from_ref(&console));
    let old = some(&[grant("S", "111122223333")]);
    let new = some(&[grant("T", "444455556666")]);
    let b = id(&w.create(B, &old).await);
    w.replaced_lost(B, &b, &old, &new).await;
    assert_eq!(w.truth_sids(), ["Console", "S", "T"]);
    id_of_delete(&w.delete(B, &b, &old).await);
    same(&w.truth(), &[console]);
    assert!(w.record(&app()).statements.is_empty());
}

/// As h29, but the next thing B sees is an Update in place (S to another version, the
/// stack operation after the failed one): it takes out T first, then writes S (seed 33229).
#[tokio::test]
async fn h30_an_update_in_place_takes_out_what_a_failed_replacement_left() {
    let w = World::new().await;
    let old = some(&[grant("S", "111122223333")]);
    let new = some(&[grant("T", "444455556666")]);
    let b = id(&w.create(B, &old).await);
    w.replaced_lost(B, &b, &old, &new).await;
    assert_eq!(w.truth_sids(), ["S", "T"]);
    let again = some(&[grant("S", "999988887777")]);
    id(&w.update(B, &b, &old, &again).await);
    same(&w.truth(), &[grant("S", "999988887777")]);
    let record = w.record(&app());
    assert_eq!(record.statements.keys().collect::<Vec<_>>(), ["S"]);
}
