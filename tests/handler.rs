//! The handler end to end over the in-memory ECR and a recording response server: GIVEN a
//! state of ECR, WHEN CloudFormation sends an event, THEN exactly one response arrives and ECR
//! holds what CONTRACT 4 says.

mod support;

use ecr_policy_provider::diagnosis::actions::ECR_ACTIONS;
use ecr_policy_provider::ecr::memory::ACCOUNT_ID;
use ecr_policy_provider::ecr::{EcrError, PolicyScope};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Harness, LOG_STREAM, deadline_in, denied, registry, repo};

const REPO_ID: &str = "arn:aws:ecr:us-east-1:123456789012:repository/app";
const REGISTRY_ID: &str = "registry-policy:us-east-1:123456789012";
const OTHER_POLICY: &str = r#"{"Version":"2008-10-17","Statement":[{"Sid":"Legacy","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;

/// The provider without a lock table (whole policies only), over an ECR with repository
/// `app`.
async fn harness() -> Harness {
    Harness::without_lock_table(&["app"]).await
}

fn policy_of(event: &Value) -> Value {
    match &event["ResourceProperties"]["PolicyText"] {
        Value::String(s) => serde_json::from_str(s).expect("policy JSON"),
        other => other.clone(),
    }
}

#[tokio::test]
async fn registry_policy_create_update_delete() {
    let h = harness().await;
    let create = h.event("registry-create.json");
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], REGISTRY_ID);
    assert_eq!(r["Data"]["RegistryId"], ACCOUNT_ID);
    assert_eq!(r["Data"]["Region"], "us-east-1");
    assert_eq!(r["Data"]["Adopted"], "false");
    assert_eq!(h.live(&registry()), Some(policy_of(&create)));

    let update = h.event("registry-update.json");
    let r = h.send(update.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], REGISTRY_ID);
    assert_eq!(h.live(&registry()), Some(policy_of(&update)));

    let r = h.send(h.event("registry-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.live(&registry()), None);
    assert_eq!(h.store.calls().writes, 2);
}

#[tokio::test]
async fn repository_policy_create_reports_the_repository() {
    let h = harness().await;
    let r = h.send(h.event("repository-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["PhysicalResourceId"], REPO_ID);
    assert_eq!(r["Data"]["RepositoryName"], "app");
    assert_eq!(r["Data"]["RepositoryArn"], REPO_ID);
    let written: Value =
        serde_json::from_str(r["Data"]["PolicyText"].as_str().expect("text")).expect("json");
    assert_eq!(h.live(&repo("app")), Some(written));
}

#[tokio::test]
async fn create_over_a_different_policy_without_adopt_fails_and_its_delete_touches_nothing() {
    let h = harness().await;
    h.store.seed(&repo("app"), OTHER_POLICY);
    let create = h.event("repository-create.json");
    let r = h.send(create.clone()).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("already has a policy"), "{reason}");
    assert!(reason.contains("Adopt: true"), "{reason}");
    assert!(reason.contains(support::LOG_GROUP), "{reason}");
    assert!(reason.contains(support::LOG_STREAM), "{reason}");
    let failed_id = format!(
        "failed-create:{}",
        create["RequestId"].as_str().expect("id")
    );
    assert_eq!(r["PhysicalResourceId"], failed_id.as_str());
    assert_eq!(h.store.live(&repo("app")).as_deref(), Some(OTHER_POLICY));

    let mut delete = h.event("repository-delete.json");
    delete["PhysicalResourceId"] = failed_id.into();
    let r = h.send(delete).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.live(&repo("app")).as_deref(), Some(OTHER_POLICY));
    assert_eq!(h.store.calls().writes + h.store.calls().deletes, 0);
}

#[tokio::test]
async fn create_with_adopt_takes_over_a_different_policy() {
    let h = harness().await;
    h.store.seed(&repo("app"), OTHER_POLICY);
    let adopt = h.event("repository-adopt.json");
    let r = h.send(adopt.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Adopted"], "true");
    assert_eq!(h.live(&repo("app")), Some(policy_of(&adopt)));
}

#[tokio::test]
async fn a_create_delivered_twice_succeeds_twice_with_one_write() {
    let h = harness().await;
    let create = h.event("repository-create.json");
    let first = h.send(create.clone()).await;
    let second = h.send(create).await;
    assert_eq!(first["Status"], "SUCCESS");
    assert_eq!(second["Status"], "SUCCESS", "{second}");
    assert_eq!(first["PhysicalResourceId"], second["PhysicalResourceId"]);
    assert_eq!(h.store.calls().writes, 1);
}

#[tokio::test]
async fn an_equivalent_update_reads_once_and_writes_nothing() {
    let h = harness().await;
    h.send(h.event("repository-create.json")).await;
    let before = h.store.calls();
    let mut update = h.event("repository-update.json");
    // The same grant, reordered and with a one-element list made a string.
    update["ResourceProperties"]["PolicyText"] = json!({"Statement":[{"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","ecr:BatchCheckLayerAvailability"],"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Effect":"Allow","Sid":"AllowPull"}],"Version":"2012-10-17"});
    let r = h.send(update).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let after = h.store.calls();
    assert_eq!(
        (after.reads - before.reads, after.writes - before.writes),
        (1, 0)
    );
}

#[tokio::test]
async fn an_update_that_renames_the_repository_replaces_and_the_old_delete_cleans_up() {
    let h = harness().await;
    h.store.create_repository("us-east-1", "app-v2");
    h.send(h.event("repository-create.json")).await;

    let mut update = h.event("repository-update.json");
    update["ResourceProperties"]["RepositoryName"] = "app-v2".into();
    let r = h.send(update.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let new_id = "arn:aws:ecr:us-east-1:123456789012:repository/app-v2";
    assert_eq!(r["PhysicalResourceId"], new_id);
    assert!(
        h.live(&repo("app")).is_some(),
        "the old policy stays until CloudFormation deletes it"
    );
    assert_eq!(h.live(&repo("app-v2")), Some(policy_of(&update)));

    // CloudFormation's cleanup: a Delete of the old id.
    let r = h.send(h.event("repository-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.live(&repo("app")), None);
    assert_eq!(h.live(&repo("app-v2")), Some(policy_of(&update)));
}

#[tokio::test]
async fn a_failed_update_keeps_the_physical_id() {
    let h = harness().await;
    h.send(h.event("repository-create.json")).await;
    h.store.fail_writes([denied(
        "SetRepositoryPolicy",
        "User is not authorized to perform: ecr:SetRepositoryPolicy",
    )]);
    let r = h.send(h.event("repository-update.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(r["PhysicalResourceId"], REPO_ID);
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("not authorized"), "{reason}");
    assert!(reason.contains("ecr:SetRepositoryPolicy"), "{reason}");
}

#[tokio::test]
async fn a_replacement_onto_a_foreign_policy_fails_without_touching_either() {
    let h = harness().await;
    h.send(h.event("repository-create.json")).await;
    h.store.seed(&repo("other"), OTHER_POLICY);
    let mut update = h.event("repository-update.json");
    update["ResourceProperties"]["RepositoryName"] = "other".into();
    let r = h.send(update).await;
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(r["PhysicalResourceId"], REPO_ID);
    assert_eq!(h.store.live(&repo("other")).as_deref(), Some(OTHER_POLICY));
    assert!(h.live(&repo("app")).is_some());
}

#[tokio::test]
async fn a_rollback_is_an_update_with_the_old_properties() {
    let h = harness().await;
    let create = h.event("repository-create.json");
    h.send(create.clone()).await;
    h.send(h.event("repository-update.json")).await;
    let mut rollback = h.event("repository-update.json");
    let old = rollback["OldResourceProperties"].clone();
    rollback["OldResourceProperties"] = rollback["ResourceProperties"].clone();
    rollback["ResourceProperties"] = old;
    let r = h.send(rollback).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.live(&repo("app")), Some(policy_of(&create)));
}

#[tokio::test]
async fn an_update_rewrites_a_policy_deleted_out_of_band() {
    let h = harness().await;
    h.send(h.event("repository-create.json")).await;
    h.store.seed(&repo("app"), "{}");
    h.store.delete_repository("us-east-1", "app");
    h.store.create_repository("us-east-1", "app");
    let update = h.event("repository-update.json");
    let r = h.send(update.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.live(&repo("app")), Some(policy_of(&update)));
}

#[tokio::test]
async fn a_delete_after_the_repository_is_gone_succeeds() {
    let h = harness().await;
    h.send(h.event("repository-create.json")).await;
    h.store.delete_repository("us-east-1", "app");
    let r = h.send(h.event("repository-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    // And a second delivery of the same Delete, with nothing left at all.
    let r = h.send(h.event("repository-delete.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
}

#[tokio::test]
async fn a_delete_that_ecr_refuses_fails() {
    let h = harness().await;
    h.send(h.event("registry-create.json")).await;
    h.store
        .fail_deletes([denied("DeleteRegistryPolicy", "not authorized")]);
    let r = h.send(h.event("registry-delete.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(r["PhysicalResourceId"], REGISTRY_ID);
    assert!(h.live(&registry()).is_some());
}

#[tokio::test]
async fn bad_properties_fail_naming_the_property_before_any_ecr_call() {
    let h = harness().await;
    let base = h.event("repository-create.json");
    let with = |key: &str, value: Value| {
        let mut e = base.clone();
        e["ResourceProperties"][key] = value;
        e
    };
    let huge_action = "ecr:".to_owned() + &"x".repeat(12_000);
    let cases = [
        (
            with("Adopt", "yes".into()),
            "property Adopt must be true or false, got \"yes\"",
        ),
        (
            with("RepositoryNmae", "app".into()),
            "unknown property \"RepositoryNmae\"; did you mean RepositoryName?",
        ),
        (
            with("PolicyText", "not json".into()),
            "property PolicyText is not valid JSON",
        ),
        (
            with(
                "PolicyText",
                json!({"Statement":[{"Effect":"Allow","Principal":"*","Action":huge_action}]}),
            ),
            "property PolicyText is 12",
        ),
    ];
    for (event, expected) in cases {
        let r = h.send(event).await;
        assert_eq!(r["Status"], "FAILED");
        let reason = r["Reason"].as_str().expect("reason");
        assert!(reason.starts_with(expected), "{reason}");
        assert!(
            r["PhysicalResourceId"]
                .as_str()
                .expect("id")
                .starts_with("failed-create:")
        );
    }
    let r = h.send(h.event("bad-input.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(h.store.calls(), Default::default(), "no ECR call at all");
}

#[tokio::test]
async fn an_unsupported_resource_type_names_the_accepted_ones() {
    let h = harness().await;
    let mut e = h.event("registry-create.json");
    e["ResourceType"] = "Custom::S3BucketPolicy".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("Custom::ECRRegistryPolicy")
            && reason.contains("Custom::ECRRepositoryPolicy"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_ecr_call_that_never_returns_still_gets_failed_in_time() {
    let h = harness().await;
    h.store.hang();
    let deadline = Duration::from_secs(3);
    let (r, took) = h
        .deliver_within(h.event("repository-create.json"), deadline)
        .await;
    assert!(
        took < deadline - Duration::from_millis(500),
        "answered after {took:?}"
    );
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("did not finish"),
        "{r}"
    );
}

#[tokio::test]
async fn a_panic_in_the_work_still_answers_failed() {
    let h = harness().await;
    h.store.panic_on_next_call();
    let r = h.send(h.event("registry-create.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"].as_str().expect("reason").contains("panicked"),
        "{r}"
    );
    // The process keeps serving.
    let r = h.send(h.event("registry-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
}

#[tokio::test]
async fn responses_stay_under_4096_bytes() {
    let h = harness().await;
    // A 9,000-character policy that ECR accepts: its text is dropped from Data.
    let mut e = h.event("repository-create.json");
    // Real actions, repeated (ECR accepts repeats), until the policy is over 9,000 characters.
    let mut actions: Vec<&str> = Vec::new();
    while serde_json::to_string(&actions).expect("json").len() < 9100 {
        actions.push(ECR_ACTIONS[actions.len() % ECR_ACTIONS.len()]);
    }
    e["ResourceProperties"]["PolicyText"] = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":actions}]});
    e["ResourceProperties"]["AllowPublicAccess"] = "true".into();
    let compact = serde_json::to_string(&e["ResourceProperties"]["PolicyText"]).expect("json");
    assert!(
        compact.len() > 9000 && compact.len() < 10_240,
        "{}",
        compact.len()
    );
    h.send(e).await;
    let body = &h.recorder.requests().last().expect("sent").body.clone();
    assert!(body.len() <= 4096, "{}", body.len());
    let r: Value = serde_json::from_slice(body).expect("valid JSON");
    assert_eq!(r["Status"], "SUCCESS");
    assert!(r["Data"].get("PolicyText").is_none());

    // A 5,000-character message from ECR: the Reason quotes the start of it, shortened, so
    // what the provider says about it is never the part that is cut.
    h.store.fail_writes([EcrError::Other {
        operation: "SetRepositoryPolicy",
        code: "SomethingOdd".into(),
        message: "ü".repeat(5000),
    }]);
    let mut e = h.event("repository-update.json");
    e["ResourceProperties"]["PolicyText"] = json!({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]});
    h.send(e).await;
    let body = h.recorder.requests().last().expect("sent").body.clone();
    assert!(body.len() <= 4096, "{}", body.len());
    let r: Value = serde_json::from_slice(&body).expect("valid JSON");
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("ECR SetRepositoryPolicy failed with \"SomethingOdd\": üüü"),
        "{reason}"
    );
    assert!(reason.contains("ü…"), "{reason}");
    assert!(
        reason.ends_with(&format!("stream {LOG_STREAM})")),
        "{reason}"
    );
    assert!(!reason.contains("[truncated]"), "{reason}");

    // A 2,500-character Sid on a statement with no Principal: the Sid is shortened and the
    // diagnosis is whole.
    let mut e = h.event("repository-create.json");
    e["ResourceProperties"]["PolicyText"] = json!({"Statement":[{"Sid": "S".repeat(2500), "Effect":"Allow","Action":"ecr:BatchGetImage"}]});
    let r = h.send(e).await;
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("S…\") has no Principal"), "{reason}");
    assert!(reason.len() < 600, "{}", reason.len());
}

#[tokio::test]
async fn iam_propagation_rejections_are_retried_until_accepted() {
    let h = harness().await;
    let rejected = || {
        EcrError::InvalidPolicy {
        message: "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".into(),
    }
    };
    h.store.fail_writes([rejected(), rejected(), rejected()]);
    let r = h.send(h.event("repository-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.calls().writes, 4);
}

fn invalid_registry_policy() -> EcrError {
    EcrError::InvalidPolicy {
        message: "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'".into(),
    }
}

/// The registry's policy scope cannot be read (the role lacks ecr:GetAccountSetting, or an
/// emulator lacks the call): a refused registry policy with actions beyond V1 is retried in
/// case IAM explains it, and the Reason keeps the V1 hint.
#[tokio::test]
async fn iam_propagation_retries_are_bounded_and_explained() {
    let h = harness().await;
    h.store
        .fail_writes(std::iter::repeat_n(invalid_registry_policy(), 10_000));
    h.store
        .set_policy_scope(Err(denied("GetAccountSetting", "not authorized")));
    let mut e = h.event("registry-create.json");
    e["ResourceProperties"]["PolicyText"]["Statement"][0]["Action"] =
        json!(["ecr:ReplicateImage", "ecr:BatchGetImage"]);
    let (r, took) = h.send_timed(e).await;
    // The test configuration allows 2 s of retrying.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("Invalid registry policy provided"),
        "{reason}"
    );
    assert!(reason.contains("IAM may not have propagated"), "{reason}");
    assert!(
        reason.contains("REGISTRY_POLICY_SCOPE") && reason.contains("\"ecr:BatchGetImage\""),
        "{reason}"
    );
    assert!(h.store.calls().writes > 3);
    assert_eq!(h.store.calls().settings, 1, "the scope is asked once");
}

/// Under the V1 scope a registry policy with actions beyond V1 fails at once, naming them
/// and the command that switches to V2; nothing is retried.
#[tokio::test]
async fn a_registry_policy_beyond_the_v1_scope_fails_at_once() {
    let h = harness().await;
    h.store
        .fail_writes(std::iter::repeat_n(invalid_registry_policy(), 10_000));
    h.store.set_policy_scope(Ok(PolicyScope::V1));
    let mut e = h.event("registry-create.json");
    e["ResourceProperties"]["PolicyText"]["Statement"][0]["Action"] = json!([
        "ecr:ReplicateImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer"
    ]);
    let (r, took) = h.send_timed(e).await;
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(reason.contains("policy scope is V1"), "{reason}");
    assert!(
        reason.contains("\"ecr:BatchGetImage\", \"ecr:GetDownloadUrlForLayer\""),
        "{reason}"
    );
    assert!(
        reason.contains("aws ecr put-account-setting --name REGISTRY_POLICY_SCOPE --value V2"),
        "{reason}"
    );
    assert_eq!(h.store.calls().writes, 1);
    assert_eq!(h.live(&registry()), None);
}

/// A V2 registry, and a refused policy whose only principal is everyone: no principal can
/// be waiting on IAM, so it fails at once with ECR's message.
#[tokio::test]
async fn a_refusal_no_principal_can_explain_is_not_retried() {
    let h = harness().await;
    h.store.fail_writes(std::iter::repeat_n(
        EcrError::InvalidPolicy {
            message: "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".into(),
        },
        10_000,
    ));
    let mut e = h.event("repository-create.json");
    e["ResourceProperties"]["PolicyText"] = json!({"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"Bogus":{"x":"y"}}}]});
    e["ResourceProperties"]["AllowPublicAccess"] = "true".into();
    let (r, took) = h.send_timed(e).await;
    assert!(took < Duration::from_millis(500), "{took:?}");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("Invalid repository policy provided"),
        "{reason}"
    );
    assert!(reason.contains("was not retried"), "{reason}");
    assert_eq!(h.store.calls().writes, 1);
    assert_eq!(
        h.store.calls().settings,
        0,
        "a repository policy has no scope"
    );
}

/// A V2 registry: actions beyond V1 are fine, so a principal is what is left; retried.
#[tokio::test]
async fn a_v2_registry_retries_for_iam_until_accepted() {
    let h = harness().await;
    h.store
        .fail_writes([invalid_registry_policy(), invalid_registry_policy()]);
    h.store.set_policy_scope(Ok(PolicyScope::V2));
    let mut e = h.event("registry-create.json");
    e["ResourceProperties"]["PolicyText"]["Statement"][0]["Action"] =
        json!(["ecr:ReplicateImage", "ecr:BatchGetImage"]);
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.store.calls().writes, 3);
    assert_eq!(h.store.calls().settings, 1);
}

#[tokio::test]
async fn a_response_url_off_the_allow_list_gets_nothing_and_ecr_is_not_called() {
    let h = harness().await;
    let mut e = h.event("registry-create.json");
    e["ResponseURL"] = "https://attacker.example/collect".into();
    let result = h
        .provider()
        .handle(e, deadline_in(Duration::from_secs(30)))
        .await;
    assert!(result.is_err());
    assert!(h.recorder.requests().is_empty());
    assert_eq!(h.store.calls(), Default::default());
}

#[tokio::test]
async fn an_unknown_request_type_and_a_missing_physical_id_fail_cleanly() {
    let h = harness().await;
    let mut e = h.event("registry-create.json");
    e["RequestType"] = "Upsert".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(r["Reason"].as_str().expect("reason").contains("Upsert"));

    let mut e = h.event("registry-delete.json");
    e.as_object_mut()
        .expect("object")
        .remove("PhysicalResourceId");
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("PhysicalResourceId")
    );
    assert_eq!(h.store.calls(), Default::default());
}

#[tokio::test]
async fn an_update_of_an_id_this_provider_never_issued_is_refused() {
    let h = harness().await;
    let mut e = h.event("repository-update.json");
    e["PhysicalResourceId"] = "some-other-provider-id".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(r["PhysicalResourceId"], "some-other-provider-id");
    assert_eq!(h.store.calls().writes, 0);
}

#[tokio::test]
async fn an_event_nested_past_the_parser_limit_still_gets_its_failed_answer() {
    let h = harness().await;
    let e = h.event("repository-create.json");
    let text = e.to_string();
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let raw = text.replacen(
        "\"ResourceProperties\":{",
        &format!("\"Deep\":{deep},\"ResourceProperties\":{{"),
        1,
    );
    assert!(raw.contains("\"Deep\""));
    h.provider()
        .handle_raw(&raw, deadline_in(Duration::from_secs(30)), "invocation")
        .await
        .expect("delivered");
    let r = h.recorder.delivered();
    assert_eq!(r["Status"], "FAILED");
    assert_eq!(r["RequestId"], e["RequestId"]);
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("recursion limit"),
        "{r}"
    );
    assert_eq!(h.store.calls(), Default::default());
}

#[tokio::test]
async fn the_outcome_counts_ecr_calls_fresh_create_one_read_one_write_equivalent_update_one_read() {
    let h = harness().await;
    let p = h.provider();
    let created = p
        .handle(
            h.event("registry-create.json"),
            deadline_in(Duration::from_secs(30)),
        )
        .await
        .expect("delivered");
    assert_eq!(
        (created.timing.ecr.reads, created.timing.ecr.writes),
        (1, 1)
    );
    let mut same = h.event("registry-update.json");
    same["ResourceProperties"] = same["OldResourceProperties"].clone();
    let updated = p
        .handle(same, deadline_in(Duration::from_secs(30)))
        .await
        .expect("delivered");
    assert_eq!(
        updated.response.status,
        ecr_policy_provider::response::Status::Success
    );
    assert_eq!(
        (updated.timing.ecr.reads, updated.timing.ecr.writes),
        (1, 0)
    );
    assert!(updated.timing.own() <= updated.timing.total);
}

fn unavailable() -> EcrError {
    EcrError::Unavailable {
        operation: "SetRepositoryPolicy",
        detail: "HTTP 503: service unavailable".into(),
    }
}

#[tokio::test]
async fn a_failed_create_whose_write_landed_anyway_is_undone() {
    let h = harness().await;
    h.store.lose_write_answers([Some(unavailable())]);
    let r = h.send(h.event("repository-create.json")).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("had landed after all and was removed again"),
        "{reason}"
    );
    assert_eq!(h.store.live(&repo("app")), None);
}

#[tokio::test]
async fn a_failed_adopt_whose_write_landed_anyway_puts_the_old_policy_back() {
    let h = harness().await;
    h.store.seed(&repo("app"), OTHER_POLICY);
    h.store.lose_write_answers([Some(unavailable())]);
    let r = h.send(h.event("repository-adopt.json")).await;
    assert_eq!(r["Status"], "FAILED");
    assert!(
        r["Reason"]
            .as_str()
            .expect("reason")
            .contains("previous one was put back"),
        "{r}"
    );
    let live = h.live(&repo("app")).expect("a policy");
    assert_eq!(
        live,
        serde_json::from_str::<Value>(OTHER_POLICY).expect("json")
    );
}

#[tokio::test]
async fn a_create_whose_write_never_answers_is_undone_before_the_deadline() {
    let h = harness().await;
    h.store.lose_write_answers([None]);
    let (r, took) = h
        .deliver_within(h.event("registry-create.json"), Duration::from_secs(4))
        .await;
    assert!(took < Duration::from_secs(4));
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("did not finish") && reason.contains("removed again"),
        "{reason}"
    );
    assert_eq!(h.live(&registry()), None);
}

/// The write failed with ECR unavailable, so its outcome was unclear: the target is read
/// again and does not show it, which a lagging read cannot tell from a write that never
/// landed (CONTRACT 11): the Reason says the outcome is unknown, never "as it was", and
/// nothing is deleted.
#[tokio::test]
async fn an_unclear_write_a_read_does_not_show_is_called_unknown_not_undone() {
    let h = harness().await;
    h.store.fail_writes([unavailable()]);
    let r = h.send(h.event("repository-create.json")).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("could not be checked") && !reason.contains("as it was"),
        "{r}"
    );
    assert_eq!(h.store.calls().deletes, 0);
}

/// ECR refused the Create's write outright (not an IAM-propagation message, not unclear): it
/// changed nothing, so there is nothing to undo and the target is not read again.
#[tokio::test]
async fn a_create_whose_write_ecr_refuses_is_not_undone() {
    let h = harness().await;
    h.store
        .fail_writes([denied("SetRepositoryPolicy", "not authorized")]);
    let r = h.send(h.event("repository-create.json")).await;
    assert_eq!(r["Status"], "FAILED");
    let reason = r["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("ECR denied SetRepositoryPolicy: not authorized"),
        "{reason}"
    );
    assert!(!reason.contains("landed"), "no undo was needed: {reason}");
    let calls = h.store.calls();
    assert_eq!((calls.reads, calls.writes, calls.deletes), (1, 1, 0));
    assert_eq!(h.live(&repo("app")), None);
}
