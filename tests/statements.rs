//! Statement resources (CONTRACT 9) and whole policies under the lock (CONTRACT 9, last
//! paragraph), end to end over the in-memory ECR and an in-memory lock table: GIVEN a
//! policy others share, WHEN CloudFormation sends an event, THEN exactly one response
//! arrives and only this resource's statements changed.

mod support;

use ecr_policy_provider::ecr::memory::ACCOUNT_ID;
use ecr_policy_provider::lock::{Record, key};
use ecr_policy_provider::response::Status;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{Harness, deadline_in, denied, registry, repo};

const REGISTRY_STATEMENTS_ID: &str = "ecr-policy-statements/4c9e1a20-7b3d-4f5e-8a6b-1c2d3e4f5a01/ReplicationFromTeamA/registry-policy:us-east-1:123456789012";

/// What the console adds, and what Lambda adds to a repository its functions pull from.
fn console() -> Value {
    json!({"Sid": "ConsoleAddedPull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": ["ecr:BatchGetImage"], "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"})
}

fn lambda_grant() -> Value {
    json!({"Sid": "LambdaECRImageRetrievalPolicy", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Condition": {"StringLike": {"aws:sourceArn": "arn:aws:lambda:us-east-1:123456789012:function:*"}}})
}

/// The provider with a lock table, over an ECR with repository `app`.
async fn harness() -> Harness {
    Harness::new(&["app"]).await
}

fn statement_of(event: &Value) -> Value {
    let s = &event["ResourceProperties"]["Statement"];
    match s {
        Value::Array(items) => items[0].clone(),
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_registry_statement_lives_beside_the_others_through_its_whole_life() {
    let h = harness().await;
    h.seed(&registry(), &[console()]);

    let create = h.event("registry-statement-create.json");
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], REGISTRY_STATEMENTS_ID);
    assert_eq!(
        r["Data"],
        json!({"RegistryId": ACCOUNT_ID, "Region": "us-east-1", "Sids": "ReplicationFromTeamA", "Adopted": "false", "Access": "accounts:111122223333"})
    );
    let live = h.live(&registry()).expect("a policy");
    assert_eq!(
        live["Version"], "2008-10-17",
        "the policy keeps its Version"
    );
    assert_eq!(live["Statement"], json!([console(), statement_of(&create)]));
    let record = h.record(&registry());
    assert_eq!(
        record.holder_of("ReplicationFromTeamA"),
        Some("4c9e1a20-7b3d-4f5e-8a6b-1c2d3e4f5a01")
    );
    assert!(h.lease_free(&registry()));

    let update = h.event("registry-statement-update.json");
    let r = h.send(update.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        r["PhysicalResourceId"], REGISTRY_STATEMENTS_ID,
        "same Sids: id kept"
    );
    let live = h.live(&registry()).expect("a policy");
    assert_eq!(live["Statement"], json!([console(), statement_of(&update)]));

    let r = h.send(h.event("registry-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        h.live(&registry()).expect("a policy")["Statement"],
        json!([console()])
    );
    assert!(h.record(&registry()).statements.is_empty());
    assert!(h.lease_free(&registry()));
}

#[tokio::test]
async fn the_last_statement_out_deletes_the_policy_and_a_new_policy_starts_at_2012() {
    let h = harness().await;
    let r = h.send(h.event("repository-statement-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["RepositoryName"], "app");
    assert_eq!(
        r["Data"]["RepositoryArn"],
        "arn:aws:ecr:us-east-1:123456789012:repository/app"
    );
    assert_eq!(
        h.live(&repo("app")).expect("policy")["Version"],
        "2012-10-17"
    );
    let r = h.send(h.event("repository-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.live(&repo("app")), None);
    // Again: Sids and policy already gone.
    let writes = h.store.calls().writes + h.store.calls().deletes;
    let r = h.send(h.event("repository-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.calls().writes + h.store.calls().deletes, writes);
    // And with the repository gone.
    h.store.delete_repository("us-east-1", "app");
    let r = h.send(h.event("repository-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
}

#[tokio::test]
async fn lambdas_grant_survives_every_step_on_a_repository() {
    let h = harness().await;
    h.seed(&repo("app"), &[lambda_grant()]);
    for name in [
        "repository-statement-create.json",
        "repository-statement-update.json",
    ] {
        let r = h.send(h.event(name)).await;
        assert_eq!(r["Status"], "SUCCESS", "{name}: {r}");
        let live = h.live(&repo("app")).expect("policy");
        assert_eq!(live["Statement"][0], lambda_grant(), "{name}");
    }
    let r = h.send(h.event("repository-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        h.live(&repo("app")).expect("policy")["Statement"],
        json!([lambda_grant()])
    );
}

#[tokio::test]
async fn an_equivalent_statement_already_there_is_not_written_again() {
    let h = harness().await;
    let create = h.event("registry-statement-create.json");
    let mut reordered = statement_of(&create);
    reordered["Action"] = json!(["ecr:ReplicateImage", "ecr:CreateRepository"]);
    h.seed(&registry(), &[console(), reordered]);
    let r = h.send(create).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.calls().writes, 0);
}

#[tokio::test]
async fn a_conflicting_sid_fails_without_adopt_is_taken_with_it_and_the_failed_delete_touches_nothing()
 {
    let h = harness().await;
    let mut theirs = statement_of(&h.event("registry-statement-create.json"));
    theirs["Principal"] = json!({"AWS": "arn:aws:iam::999988887777:root"});
    h.seed(&registry(), &[console(), theirs.clone()]);

    let create = h.event("registry-statement-create.json");
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("already has statements with Sid \"ReplicationFromTeamA\"")
            && reason.contains("Adopt: true"),
        "{reason}"
    );
    assert_eq!(h.store.calls().writes, 0);
    let failed_id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    assert!(failed_id.starts_with("failed-create:"));
    let mut delete = h.event("registry-statement-delete.json");
    delete["PhysicalResourceId"] = failed_id.into();
    let r = h.send(delete).await;
    assert_eq!(r["Status"], "SUCCESS");
    assert_eq!(
        h.live(&registry()).expect("policy")["Statement"],
        json!([console(), theirs])
    );

    // The stack operation again, with Adopt: a new request.
    let mut adopt = create;
    adopt["RequestId"] = "4c9e1a20-7b3d-4f5e-8a6b-1c2d3e4f5a02".into();
    adopt["ResourceProperties"]["Adopt"] = "true".into();
    let r = h.send(adopt.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Adopted"], "true");
    assert_eq!(
        h.live(&registry()).expect("policy")["Statement"],
        json!([console(), statement_of(&adopt)])
    );
}

#[tokio::test]
async fn a_sid_rename_is_a_replacement_whose_cleanup_removes_only_the_old_sid() {
    let h = harness().await;
    h.seed(&registry(), &[console()]);
    let create = h.event("registry-statement-create.json");
    h.send(create.clone()).await;

    let mut update = h.event("registry-statement-update.json");
    let mut renamed = statement_of(&update);
    renamed["Sid"] = "ReplicationFromTeamAToo".into();
    update["ResourceProperties"]["Statement"] = json!([renamed.clone(), statement_of(&create)]);
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let new_id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    assert_ne!(
        new_id, REGISTRY_STATEMENTS_ID,
        "another set of Sids: a new id"
    );
    assert!(
        new_id.contains("ReplicationFromTeamAToo,ReplicationFromTeamA/"),
        "{new_id}"
    );
    assert_eq!(
        h.sids(&registry()),
        [
            "ConsoleAddedPull",
            "ReplicationFromTeamA",
            "ReplicationFromTeamAToo"
        ]
    );

    // CloudFormation's cleanup Delete of the old id: ReplicationFromTeamA is now held by
    // the new resource, so it stays.
    let r = h.send(h.event("registry-statement-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        h.sids(&registry()),
        [
            "ConsoleAddedPull",
            "ReplicationFromTeamA",
            "ReplicationFromTeamAToo"
        ]
    );

    let mut delete = h.event("registry-statement-delete.json");
    delete["PhysicalResourceId"] = new_id.into();
    let r = h.send(delete).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.sids(&registry()), ["ConsoleAddedPull"]);
}

#[tokio::test]
async fn a_merge_that_does_not_fit_says_how_long_it_would_be_and_writes_nothing() {
    let h = harness().await;
    let mut big = console();
    big["Condition"] = json!({"StringEquals": {"aws:PrincipalTag/team": "x".repeat(7000)}});
    h.seed(&registry(), &[big]);
    let mut create = h.event("registry-statement-create.json");
    create["ResourceProperties"]["Statement"]["Condition"] =
        json!({"StringEquals": {"aws:PrincipalTag/team": "y".repeat(4000)}});
    let r = h.send(create).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("would be 11") && reason.contains("do not fit"),
        "{reason}"
    );
    assert_eq!(h.store.calls().writes, 0);
    assert!(h.lease_free(&registry()));
}

#[tokio::test]
async fn without_a_lock_table_a_statement_resource_says_what_to_set() {
    let h = Harness::without_lock_table(&["app"]).await;
    let (r, _) = h
        .deliver_within(
            h.event("registry-statement-create.json"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("set the function's POLICY_LOCK_TABLE"),
        "{r}"
    );
    assert_eq!(h.store.calls().reads, 0);
}

#[tokio::test]
async fn bad_statements_are_refused_before_any_call() {
    let h = harness().await;
    let cases = [
        (json!([]), "property Statement is an empty list"),
        (
            json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}),
            "statement 1 has no Sid",
        ),
        (
            json!([{"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}, {"Sid": "A", "Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage"}]),
            "statement 2 repeats Sid \"A\"",
        ),
        (json!(["x"]), "statement 1 is a string, not an object"),
        (json!("not json"), "property Statement is not valid JSON"),
        (
            json!({"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImages"}),
            "did you mean \"ecr:BatchGetImage\"",
        ),
    ];
    for (statement, expected) in cases {
        let mut e = h.event("repository-statement-create.json");
        e["ResourceProperties"]["Statement"] = statement.clone();
        let r = h.send(e).await;
        assert_eq!(r["Status"], "FAILED", "{statement}");
        let reason = r["Reason"].as_str().expect("reason");
        assert!(reason.contains(expected), "{statement}: {reason}");
    }
    let mut e = h.event("repository-statement-create.json");
    e["ResourceProperties"]["PolicyText"] = json!({});
    let r = h.send(e).await;
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("unknown property \"PolicyText\""),
        "{r}"
    );
    assert_eq!(h.store.calls().reads + h.store.calls().writes, 0);
}

#[tokio::test]
async fn a_lease_left_by_a_crashed_invocation_is_taken_once_it_ends() {
    let h = harness().await;
    let ended = support::deadline_in(Duration::ZERO) - 1;
    h.lock.hold(&key(&registry()), "crashed-request", ended);
    let r = h.send(h.event("registry-statement-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(h.lease_free(&registry()));
}

#[tokio::test]
async fn a_lease_held_past_the_deadline_gets_failed_in_time_and_writes_nothing() {
    let h = harness().await;
    let later = support::deadline_in(Duration::from_secs(600));
    h.lock.hold(&key(&registry()), "slow-request", later);
    let started = std::time::Instant::now();
    let r = h
        .send_within(
            h.event("registry-statement-create.json"),
            Duration::from_secs(3),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("held its lock"),
        "{r}"
    );
    assert_eq!(h.store.calls().reads, 0);
    assert!(h.lock.calls().busy > 1, "waited with retries");
    assert_eq!(
        h.lock.lease(&key(&registry())).map(|(owner, _)| owner),
        Some("slow-request".into()),
        "another's lease is not taken"
    );
}

/// `create` delivered again: FAILED, saying another delivery was answered FAILED already,
/// and nothing written. Its response.
async fn failed_again_writing_nothing(h: &Harness, create: Value) -> Value {
    let writes = h.store.calls().writes;
    let r = h.send(create).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("answered FAILED already"), "{r}");
    assert_eq!(h.store.calls().writes, writes);
    r
}

#[tokio::test]
async fn another_delivery_of_a_create_answered_failed_changes_nothing_even_after_its_delete() {
    let h = harness().await;
    h.seed(&registry(), &[console()]);
    h.store.fail_writes([denied("PutRegistryPolicy", "no")]);
    let create = h.event("registry-statement-create.json");
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "FAILED");
    let failed_id = r["PhysicalResourceId"].as_str().expect("id").to_owned();
    // Lambda delivers the same event again (a retry, a duplicate): ECR would take the write
    // now, but CloudFormation has the FAILED, so nothing is written.
    let r = failed_again_writing_nothing(&h, create.clone()).await;
    assert_eq!(r["PhysicalResourceId"], failed_id.as_str());
    // After the failed create's Delete too: no statement is left behind with no resource.
    let mut delete = h.event("registry-statement-delete.json");
    delete["PhysicalResourceId"] = failed_id.into();
    assert_eq!(h.send(delete).await["Status"], "SUCCESS");
    let r = h.send(create).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(
        h.live(&registry()).expect("policy")["Statement"],
        json!([console()])
    );
    assert!(h.lease_free(&registry()));
}

/// A Create abandoned by a panic (or a timeout) is answered FAILED as well: its record says
/// so before the lease is given back, so that another delivery of it takes nothing over.
#[tokio::test]
async fn another_delivery_of_a_create_that_panicked_changes_nothing() {
    let h = harness().await;
    h.seed(&registry(), &[console()]);
    let create = h.event("registry-statement-create.json");
    h.store.panic_on_next_call();
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"].as_str().expect("reason").contains("panicked"),
        "{r}"
    );
    assert!(h.lease_free(&registry()));
    failed_again_writing_nothing(&h, create).await;
    assert_eq!(
        h.live(&registry()).expect("policy")["Statement"],
        json!([console()])
    );
}

#[tokio::test]
async fn the_lease_is_given_back_after_a_failure_a_hang_and_a_panic() {
    let h = harness().await;
    h.store.fail_writes([denied("PutRegistryPolicy", "no")]);
    let r = h.send(h.event("registry-statement-create.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(h.lease_free(&registry()), "after FAILED");

    // Each retry of the stack operation is a new request.
    let retry = |n: u8| {
        let mut e = h.event("registry-statement-create.json");
        e["RequestId"] = format!("4c9e1a20-7b3d-4f5e-8a6b-1c2d3e4f5a{n:02x}").into();
        e
    };
    h.store.panic_on_next_call();
    let r = h.send(retry(2)).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().expect("reason").contains("panicked"));
    assert!(h.lease_free(&registry()), "after a panic");

    h.store.hang();
    let r = h.send_within(retry(3), Duration::from_secs(2)).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(h.lease_free(&registry()), "after a timeout");
}

#[tokio::test]
async fn a_read_that_lags_the_last_write_loses_no_statement() {
    let h = harness().await;
    h.seed(&registry(), &[console()]);
    h.store.lag_reads(Duration::from_secs(6));
    h.send(h.event("registry-statement-create.json")).await;
    // Another resource's statement, while reads still show the policy before that write.
    let mut other = h.event("registry-statement-create.json");
    other["RequestId"] = "5d0f2b31-8c4e-4a6f-9b7c-2d3e4f5a6b01".into();
    let mut statement = statement_of(&other);
    statement["Sid"] = "ReplicationFromTeamB".into();
    other["ResourceProperties"]["Statement"] = statement;
    let r = h.send(other).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    h.store.lag_reads(Duration::ZERO);
    assert_eq!(
        h.sids(&registry()),
        [
            "ConsoleAddedPull",
            "ReplicationFromTeamA",
            "ReplicationFromTeamB"
        ]
    );
}

/// A read that lacks the last write is read again (CONTRACT 11) until the minute after that
/// write has passed or the deadline draws near; then it is a change made out of band, and
/// is trusted for the statements nobody holds, the record for the held ones.
#[tokio::test]
async fn a_change_made_out_of_band_is_trusted_once_rereading_can_wait_no_longer() {
    let h = harness().await;
    h.send(h.event("registry-statement-create.json")).await;
    h.seed(&registry(), &[console()]);
    let started = std::time::Instant::now();
    let reads = h.store.calls().reads;
    let r = h
        .send_within(
            h.event("registry-statement-update.json"),
            Duration::from_secs(4),
        )
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        h.store.calls().reads - reads > 1,
        "read again while it lagged"
    );
    assert_eq!(
        h.sids(&registry()),
        ["ConsoleAddedPull", "ReplicationFromTeamA"]
    );
}

/// Many statement resources at once on one target: every statement lands, none is lost;
/// then every Delete at once: only the others' statement is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_statement_creates_and_deletes_lose_nothing() {
    let h = Arc::new(harness().await);
    h.seed(&registry(), &[console()]);
    h.store.delay_reads(Duration::from_millis(5));
    let sids: Vec<String> = (0..24).map(|i| format!("Team{i:02}")).collect();
    let mut ids = Vec::new();
    let mut tasks = Vec::new();
    for (i, sid) in sids.iter().enumerate() {
        let h = h.clone();
        let mut e = h.event("registry-statement-create.json");
        e["RequestId"] = format!("00000000-0000-4000-8000-{i:012}").into();
        let mut s = statement_of(&e);
        s["Sid"] = sid.clone().into();
        e["ResourceProperties"]["Statement"] = s;
        tasks.push(tokio::spawn(async move { h.send_concurrently(e).await }));
    }
    for task in tasks {
        let r = task.await.expect("task");
        assert_eq!(r["Status"], "SUCCESS", "{r}");
        ids.push(r["PhysicalResourceId"].as_str().expect("id").to_owned());
    }
    assert_eq!(h.recorder.requests().len(), 24, "one response per event");
    let mut live = h.sids(&registry());
    live.sort();
    let mut expected = sids.clone();
    expected.push("ConsoleAddedPull".into());
    expected.sort();
    assert_eq!(live, expected);

    let mut tasks = Vec::new();
    for id in ids {
        let h = h.clone();
        let mut e = h.event("registry-statement-delete.json");
        e["PhysicalResourceId"] = id.into();
        tasks.push(tokio::spawn(async move { h.send_concurrently(e).await }));
    }
    for task in tasks {
        let r = task.await.expect("task");
        assert_eq!(r["Status"], "SUCCESS", "{r}");
    }
    assert_eq!(h.recorder.requests().len(), 48, "one response per event");
    assert_eq!(h.sids(&registry()), ["ConsoleAddedPull"]);
    let record: Record = h.record(&registry());
    assert!(record.statements.is_empty(), "{record:?}");
}

/// Two stacks create one registry policy at the same moment (CONTRACT 9, whole policies
/// under the lock): exactly one is told SUCCESS, and the live policy is its.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_whole_policy_creates_exactly_one_succeeds() {
    for with_lock in [true, false] {
        let h = Arc::new(if with_lock {
            harness().await
        } else {
            Harness::without_lock_table(&["app"]).await
        });
        h.store.delay_reads(Duration::from_millis(20));
        let mut tasks = Vec::new();
        for (i, account) in ["111122223333", "444455556666"].iter().enumerate() {
            let h = h.clone();
            let mut e = h.event("registry-create.json");
            e["RequestId"] = format!("00000000-0000-4000-8000-00000000000{i}").into();
            e["ResourceProperties"]["PolicyText"]["Statement"][0]["Principal"]["AWS"] =
                format!("arn:aws:iam::{account}:root").into();
            let policy = e["ResourceProperties"]["PolicyText"].clone();
            tasks.push(tokio::spawn(async move {
                let outcome = h
                    .provider()
                    .handle(e, deadline_in(Duration::from_secs(30)))
                    .await
                    .expect("delivered");
                (outcome.response.status, policy)
            }));
        }
        let mut succeeded = Vec::new();
        for task in tasks {
            let (status, policy) = task.await.expect("task");
            if status == Status::Success {
                succeeded.push(policy);
            }
        }
        assert_eq!(h.recorder.requests().len(), 2, "one response per event");
        if with_lock {
            assert_eq!(succeeded.len(), 1, "exactly one SUCCESS");
            assert_eq!(h.live(&registry()), Some(succeeded[0].clone()));
            let failed = h
                .recorder
                .requests()
                .iter()
                .map(|r| r.json())
                .find(|r| r["Status"] == "FAILED")
                .expect("one FAILED");
            assert!(
                failed["Reason"]
                    .as_str()
                    .expect("reason")
                    .contains("already has a policy that differs"),
                "{failed}"
            );
        } else {
            // Without the table, the race this closes is real: both are told SUCCESS.
            let responses: Vec<Value> = h.recorder.requests().iter().map(|r| r.json()).collect();
            assert_eq!(
                succeeded.len(),
                2,
                "the race is reproduced without the lock: {responses:?}"
            );
        }
    }
}

/// The time the lock took counts the wait while another request held the lease, not only
/// the calls: the "response sent" line's lock_us tells how long a request queued.
#[tokio::test]
async fn the_lock_time_counts_the_wait_for_a_held_lease() {
    let h = harness().await;
    let soon = support::deadline_in(Duration::from_millis(400));
    h.lock.hold(&key(&registry()), "other-request", soon);
    let outcome = h
        .provider()
        .handle(
            h.event("registry-statement-create.json"),
            deadline_in(Duration::from_secs(30)),
        )
        .await
        .expect("delivered");
    assert_eq!(outcome.response.status, Status::Success);
    let timing = outcome.timing;
    assert!(timing.lock >= Duration::from_millis(300), "{timing:?}");
    assert!(
        timing.lock_calls >= 3,
        "tries, then giving back: {timing:?}"
    );
    assert!(timing.own() < Duration::from_millis(100), "{timing:?}");
}

#[tokio::test]
async fn sids_too_long_for_a_physical_id_are_refused_before_any_write() {
    let h = harness().await;
    let mut e = h.event("registry-statement-create.json");
    let statements: Vec<Value> = (0..12)
        .map(|i| {
            let mut s = statement_of(&e);
            s["Sid"] = format!("{i:02}{}", "x".repeat(90)).into();
            s
        })
        .collect();
    e["ResourceProperties"]["Statement"] = Value::Array(statements);
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("CloudFormation allows 1024"), "{reason}");
    assert_eq!(h.store.calls().reads + h.store.calls().writes, 0);
    assert_eq!(h.lock.calls().acquired, 0);
}

/// A statement taken over by another resource with Adopt is theirs now: the first
/// resource's update in place does not write over it, and does not wedge its stack.
#[tokio::test]
async fn an_update_in_place_writes_nothing_over_a_sid_another_resource_took_over() {
    let h = harness().await;
    h.send(h.event("registry-statement-create.json")).await;
    let mut takeover = h.event("registry-statement-create.json");
    takeover["RequestId"] = "6e1a3c42-9d5f-4b70-8c8d-3e4f5a6b7c01".into();
    takeover["LogicalResourceId"] = "OtherStackReplication".into();
    let mut theirs = statement_of(&takeover);
    theirs["Principal"] = json!({"AWS": "arn:aws:iam::999988887777:root"});
    takeover["ResourceProperties"]["Statement"] = theirs.clone();
    takeover["ResourceProperties"]["Adopt"] = "true".into();
    let r = h.send(takeover).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");

    // It holds nothing there any more: nothing is written, and the Update (and so a
    // rollback) succeeds with a warning naming the new holder (CONTRACT 11).
    let r = h.send(h.event("registry-statement-update.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let warnings = r["Data"]["Warnings"].as_str().expect("warnings");
    assert!(
        warnings.contains("Sid \"ReplicationFromTeamA\"")
            && warnings.contains("OtherStackReplication"),
        "{warnings}"
    );
    assert_eq!(
        h.live(&registry()).expect("policy")["Statement"],
        json!([theirs])
    );
}
