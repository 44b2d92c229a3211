//! The record (CONTRACT 11), over the in-memory ECR and lock table: each sequence of issue 15
//! that lost a statement, removed a policy another stack manages or answered FAILED for
//! nothing. GIVEN a target others share, WHEN the events arrive in that order (with the
//! fault named), THEN exactly one response per event and nothing held is lost.

mod support;

use ecr_policy_provider::lock::{Held, Holder, Record, key};
use serde_json::{Value, json};
use std::time::Duration;
use support::world::LockFault;
use support::{Harness, follow_up, grant, reason, registry, repo};

const STACK_1: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/platform/5b3c9a10-c8e1-11ee-9c2a-0a1b2c3d4e5f";
const STACK_2: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/team-b/0e4d8f20-c8e1-11ee-9c2a-0a1b2c3d4e5f";

/// The provider with a lock table, over an ECR with repositories `app`, `repo-a` and
/// `repo-b`.
async fn harness() -> Harness {
    Harness::new(&["app", "repo-a", "repo-b"]).await
}

fn with_statement(mut e: Value, statement: Value) -> Value {
    e["ResourceProperties"]["Statement"] = json!([statement]);
    e
}

/// Stack `stack`'s statement resource `logical` creating `statement` in the registry's
/// policy, request `request`.
fn registry_statement(
    h: &Harness,
    stack: &str,
    logical: &str,
    request: &str,
    statement: Value,
) -> Value {
    with_statement(
        h.event_from("registry-statement-create.json", stack, logical, request),
        statement,
    )
}

fn registry_grant(sid: &str, account: &str) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"})
}

fn id(r: &Value) -> String {
    r["PhysicalResourceId"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn an_identical_statement_another_stack_holds_does_not_change_hands_without_adopt() {
    // Sequence 1.
    let h = harness().await;
    let a = registry_grant("A", "111122223333");
    let s1 = registry_statement(&h, STACK_1, "GrantA", "req-s1", a.clone());
    let created = h.send(s1.clone()).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let s2 = registry_statement(&h, STACK_2, "SameGrant", "req-s2", a.clone());
    let refused = h.send(s2.clone()).await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    for words in ["is held by", "\"GrantA\"", "\"platform\"", "Adopt: true"] {
        assert!(reason(&refused).contains(words), "{words}: {refused}");
    }
    // S2's rollback Delete leaves A, and S1 can still update its A.
    let cleanup = h
        .send(follow_up(&s2, "Delete", &id(&refused), "req-s2-delete"))
        .await;
    assert_eq!(cleanup["Status"], "SUCCESS");
    assert_eq!(h.sids(&registry()), ["A"]);
    assert_eq!(h.record(&registry()).holder_of("A"), Some("req-s1"));
    let changed = registry_grant("A", "444455556666");
    let update = with_statement(
        follow_up(&s1, "Update", &id(&created), "req-s1-update"),
        changed.clone(),
    );
    let updated = h.send(update).await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    assert_eq!(h.statements(&registry()), [changed]);
}

#[tokio::test]
async fn an_identical_whole_policy_gets_one_owner_and_the_others_delete_leaves_it() {
    // Sequence 2.
    let h = harness().await;
    let first = h.event_from("registry-create.json", STACK_1, "RegistryPolicy", "req-p1");
    let r = h.send(first).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let policy = h.store.live(&registry()).expect("written");
    let second = h.event_from("registry-create.json", STACK_2, "RegistryPolicy", "req-p2");
    let refused = h.send(second.clone()).await;
    assert_eq!(refused["Status"], "FAILED", "{refused}");
    for words in [
        "managed by",
        "\"RegistryPolicy\"",
        "\"platform\"",
        "Adopt: true",
    ] {
        assert!(reason(&refused).contains(words), "{words}: {refused}");
    }
    // With Adopt the second stack owns it; the first one's Delete then leaves it in place.
    let mut adopting = second.clone();
    adopting["RequestId"] = "req-p2-adopt".into();
    adopting["ResourceProperties"]["Adopt"] = "true".into();
    let taken = h.send(adopting).await;
    assert_eq!(taken["Status"], "SUCCESS", "{taken}");
    assert_eq!(taken["Data"]["Adopted"], "true");
    let mut delete_first = h.event_from(
        "registry-delete.json",
        STACK_1,
        "RegistryPolicy",
        "req-p1-d",
    );
    delete_first["PhysicalResourceId"] = r["PhysicalResourceId"].clone();
    let left = h.send(delete_first).await;
    assert_eq!(left["Status"], "SUCCESS", "{left}");
    assert_eq!(h.store.live(&registry()), Some(policy));
    let mut delete_second = h.event_from(
        "registry-delete.json",
        STACK_2,
        "RegistryPolicy",
        "req-p2-d",
    );
    delete_second["PhysicalResourceId"] = r["PhysicalResourceId"].clone();
    assert_eq!(h.send(delete_second).await["Status"], "SUCCESS");
    assert_eq!(h.store.live(&registry()), None);
}

#[tokio::test]
async fn a_move_onto_another_repository_does_not_take_its_differing_statement() {
    // Sequence 3.
    let h = harness().await;
    let theirs = grant("PullForConsumers", "999988887777");
    h.seed(&repo("repo-b"), std::slice::from_ref(&theirs));
    let mut create = h.event_from(
        "repository-statement-create.json",
        STACK_1,
        "ConsumerPull",
        "req-m1",
    );
    create["ResourceProperties"]["RepositoryName"] = "repo-a".into();
    let created = h.send(create.clone()).await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let mut moved = follow_up(&create, "Update", &id(&created), "req-m2");
    moved["ResourceProperties"]["RepositoryName"] = "repo-b".into();
    let r = h.send(moved).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(reason(&r).contains("PullForConsumers"), "{r}");
    assert!(reason(&r).contains("Adopt: true"), "{r}");
    assert_eq!(h.statements(&repo("repo-b")), [theirs]);
    assert_eq!(
        h.record(&repo("repo-b")).holder_of("PullForConsumers"),
        None
    );
}

#[tokio::test]
async fn reads_lagging_far_longer_than_any_reread_lose_nothing_and_bring_nothing_back() {
    // Sequence 4: reads lag 6 s behind the writes.
    let h = harness().await;
    let console = registry_grant("Console", "999988887777");
    h.seed(&registry(), std::slice::from_ref(&console));
    h.store.lag_reads(Duration::from_secs(6));
    let mut ids = Vec::new();
    let mut creates = Vec::new();
    for (n, (sid, stack)) in [("A", STACK_1), ("B", STACK_2), ("C", STACK_1)]
        .into_iter()
        .enumerate()
    {
        let e = registry_statement(
            &h,
            stack,
            &format!("Grant{sid}"),
            &format!("req-lag-{n}"),
            registry_grant(sid, "111122223333"),
        );
        let r = h.send(e.clone()).await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        ids.push(id(&r));
        creates.push(e);
    }
    assert_eq!(h.sids(&registry()), ["Console", "A", "B", "C"]);
    // A's Delete, then B's, each reading a policy 6 s old.
    for (n, (e, physical_id)) in creates.iter().zip(&ids).take(2).enumerate() {
        let r = h
            .send(follow_up(
                e,
                "Delete",
                physical_id,
                &format!("req-lag-d{n}"),
            ))
            .await;
        assert_eq!(r["Status"], "SUCCESS", "{r}");
    }
    assert_eq!(h.sids(&registry()), ["Console", "C"]);
}

#[tokio::test]
async fn a_record_that_cannot_be_stored_leaves_ecr_untouched() {
    // Sequence 5, first half: the record is stored before ECR.
    let h = harness().await;
    h.lock.arm([LockFault::ThrottleStore]);
    let e = h.event_from(
        "registry-statement-create.json",
        STACK_1,
        "GrantA",
        "req-f1",
    );
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(h.lock.fired(), 1, "the store failed");
    assert!(reason(&r).contains("lock table"), "{r}");
    assert_eq!(h.store.calls().writes, 0);
    assert_eq!(h.store.live(&registry()), None);
    assert_eq!(
        h.lock.inner.lease(&key(&registry())),
        None,
        "the lease is given back"
    );
}

#[tokio::test]
async fn a_lease_that_cannot_be_given_back_after_both_writes_still_keeps_the_record() {
    // Sequence 5: the replacement's give-back fails; its cleanup Delete of the old id must
    // leave the Sid the new resource holds.
    let mut h = harness().await;
    h.config.settings.lease_margin = Duration::from_millis(100);
    let a = registry_grant("A", "111122223333");
    let create = registry_statement(&h, STACK_1, "Grants", "req-r1", a.clone());
    let created = h.send(create.clone()).await;
    // The Update adds B: another set of Sids, a replacement.
    let b = registry_grant("B", "444455556666");
    let mut update = follow_up(&create, "Update", &id(&created), "req-r2");
    update["ResourceProperties"]["Statement"] = json!([a.clone(), b.clone()]);
    h.lock.arm([LockFault::FailRelease]);
    let replaced = h.send_within(update, Duration::from_secs(1)).await;
    assert_eq!(replaced["Status"], "SUCCESS", "{replaced}");
    assert_eq!(h.lock.fired(), 1, "the give-back failed");
    assert_eq!(h.record(&registry()).holder_of("A"), Some("req-r2"));
    // The lease expires by itself; then the cleanup Delete of the old id.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let cleanup = h
        .send(follow_up(&create, "Delete", &id(&created), "req-r3"))
        .await;
    assert_eq!(cleanup["Status"], "SUCCESS", "{cleanup}");
    assert_eq!(h.statements(&registry()), [a, b]);
}

#[tokio::test]
async fn a_lease_whose_first_answer_was_lost_is_taken_on_the_retry() {
    // Sequence 6.
    let h = harness().await;
    h.lock.arm([LockFault::LoseAcquireAnswer]);
    let (r, took) = h
        .send_timed(h.event_from(
            "registry-statement-create.json",
            STACK_1,
            "GrantA",
            "req-l1",
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.lock.fired(), 1, "the first answer was lost");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(h.lock.inner.lease(&key(&registry())), None);
    // The next request on the target does not wait.
    let (r, took) = h
        .send_timed(h.event_from("registry-create.json", STACK_2, "Other", "req-l2"))
        .await;
    assert!(took < Duration::from_secs(2), "{r}");
}

#[tokio::test]
async fn taking_the_lease_removes_the_items_pending_expiry() {
    // Sequence 7.
    let h = harness().await;
    h.lock.inner.set_expiry(&key(&registry()), 1);
    let r = h
        .send(h.event_from(
            "registry-statement-create.json",
            STACK_1,
            "GrantA",
            "req-t1",
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.lock.inner.expiry(&key(&registry())), None);
}

/// A statement Create whose ECR write is cut off by the deadline and lands `late` after it
/// was sent; returns the event and its answer.
async fn create_cut_off(h: &Harness, sid: &str, request: &str, late: Duration) -> (Value, Value) {
    h.store.land_writes_late([late]);
    let e = registry_statement(
        h,
        STACK_1,
        &format!("Grant{sid}"),
        request,
        registry_grant(sid, "111122223333"),
    );
    let r = h.send_within(e.clone(), Duration::from_millis(1500)).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    (e, r)
}

#[tokio::test]
async fn a_write_that_lands_after_the_deadline_does_not_undo_the_next_requests_write() {
    // Sequence 8: the abandoned request keeps the lease until its write can no longer land.
    let mut h = harness().await;
    h.config.settings.lease_margin = Duration::from_millis(1500);
    let started = tokio::time::Instant::now();
    let landing = Duration::from_millis(2000);
    let (late, failed) = create_cut_off(&h, "Late", "req-w1", landing).await;
    let next = registry_statement(
        &h,
        STACK_2,
        "GrantNext",
        "req-w2",
        registry_grant("Next", "444455556666"),
    );
    let r = h.send(next).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // Whenever the next request answered, the late write has landed by now: Next survived it.
    tokio::time::sleep_until(started + landing + Duration::from_millis(300)).await;
    assert!(
        h.sids(&registry()).contains(&"Next".to_owned()),
        "{:?}",
        h.sids(&registry())
    );
    // Sequence 9: the failed Create's Delete takes out what landed under it, only that.
    let cleanup = h
        .send(follow_up(&late, "Delete", &id(&failed), "req-w3"))
        .await;
    assert_eq!(cleanup["Status"], "SUCCESS", "{cleanup}");
    assert_eq!(h.sids(&registry()), ["Next"]);
    assert_eq!(h.record(&registry()).holder_of("Late"), None);
}

#[tokio::test]
async fn a_create_cut_off_by_its_deadline_leaves_nothing_once_its_delete_is_done() {
    // Sequence 9.
    let mut h = harness().await;
    h.config.settings.lease_margin = Duration::from_millis(300);
    let console = registry_grant("Console", "999988887777");
    h.seed(&registry(), std::slice::from_ref(&console));
    let (late, failed) = create_cut_off(&h, "Late", "req-c1", Duration::from_millis(1600)).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        h.sids(&registry()),
        ["Console", "Late"],
        "the write landed late: {failed} {:?}",
        h.store.calls()
    );
    let cleanup = h
        .send(follow_up(&late, "Delete", &id(&failed), "req-c2"))
        .await;
    assert_eq!(cleanup["Status"], "SUCCESS", "{cleanup}");
    assert_eq!(h.statements(&registry()), [console]);
    assert!(h.record(&registry()).statements.is_empty());
}

#[tokio::test]
async fn a_format_1_record_keeps_working_and_is_rewritten_on_the_next_change() {
    let h = harness().await;
    let a = registry_grant("A", "111122223333");
    h.seed(&registry(), std::slice::from_ref(&a));
    let mut legacy = Record::default();
    legacy.statements.insert(
        "A".into(),
        Held {
            holder: Holder {
                tag: "req-old".into(),
                ..Holder::default()
            },
            ..Held::default()
        },
    );
    h.lock.inner.set_record(&key(&registry()), legacy);
    // Another resource cannot take A without Adopt...
    let other = registry_statement(&h, STACK_2, "Other", "req-n1", a.clone());
    let r = h.send(other).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    // ...its holder updates it in place, and the record is in today's format after.
    let mut update = h.event_from(
        "registry-statement-update.json",
        STACK_1,
        "GrantA",
        "req-n2",
    );
    update["PhysicalResourceId"] =
        "ecr-policy-statements/req-old/A/registry-policy:us-east-1:123456789012".into();
    let changed = registry_grant("A", "444455556666");
    update["ResourceProperties"]["Statement"] = json!([changed.clone()]);
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements(&registry()), std::slice::from_ref(&changed));
    let record = h.record(&registry());
    assert_eq!(
        record.statements["A"].statement.as_deref(),
        Some(changed.to_string().as_str())
    );
    assert_eq!(record.statements["A"].holder.logical, "GrantA");
}

#[tokio::test]
async fn the_same_create_delivered_again_after_a_crash_succeeds_once_the_lease_expires() {
    // A process killed after storing the record and before writing ECR: Lambda delivers the
    // same event again.
    let h = harness().await;
    let e = h.event_from(
        "registry-statement-create.json",
        STACK_1,
        "GrantA",
        "req-k1",
    );
    let statement = e["ResourceProperties"]["Statement"].clone();
    let statement = match statement {
        Value::Array(items) => items[0].clone(),
        other => other,
    };
    let mut record = Record::default();
    record.statements.insert(
        statement["Sid"].as_str().expect("Sid").into(),
        Held {
            holder: Holder {
                tag: "req-k1".into(),
                stack: STACK_1.into(),
                logical: "GrantA".into(),
            },
            statement: Some(statement.to_string()),
            ..Held::default()
        },
    );
    h.lock.inner.set_record(&key(&registry()), record);
    let until = support::deadline_in(Duration::from_millis(700));
    h.lock
        .inner
        .hold(&key(&registry()), "req-k1/dead-invocation", until);
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.statements(&registry()), [statement]);
    assert_eq!(h.lock.inner.lease(&key(&registry())), None);
}
