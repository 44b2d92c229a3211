//! Who gets in (CONTRACT 12), end to end over the in-memory ECR and lock table: GIVEN a
//! policy, WHEN CloudFormation sends an event, THEN a public statement is refused before
//! any ECR call unless it is allowed, `Data.Access` says who gets in, an Update that changes
//! nothing is never refused, and warnings reach `Data.Warnings`.

mod support;

use ecr_policy_provider::diagnosis::access::PublicAccess;
use ecr_policy_provider::ecr::EcrError;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Harness, reason, repo};

/// The ECR documentation's first repository policy example: "Allow all AWS accounts to pull
/// images".
fn everyone_pulls() -> Value {
    json!({"Version": "2008-10-17", "Statement": [{"Sid": "AllowPull", "Effect": "Allow", "Principal": "*",
        "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]}]})
}

/// The same, limited to one organization.
fn organization_pulls() -> Value {
    let mut policy = everyone_pulls();
    policy["Statement"][0]["Condition"] =
        json!({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}});
    policy
}

/// The provider with a lock table, over an ECR with repository `app`.
async fn harness() -> Harness {
    Harness::new(&["app"]).await
}

fn with_policy(mut event: Value, policy: Value) -> Value {
    event["ResourceProperties"]["PolicyText"] = policy;
    event
}

#[tokio::test]
async fn a_public_repository_policy_is_refused_before_any_call_with_both_fixes() {
    let h = harness().await;
    let (r, took) = h
        .send_timed(with_policy(
            h.event("repository-create.json"),
            everyone_pulls(),
        ))
        .await;
    assert!(took < Duration::from_secs(2));
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        reason(&r).starts_with(
            "arn:aws:ecr:us-east-1:123456789012:repository/app allows public access: statement 1 \
             (Sid \"AllowPull\") lets in every AWS account: its Principal is \"*\", and no \
             condition limits it to named accounts or an organization. Limit it"
        ),
        "{r}"
    );
    assert!(reason(&r).contains("\"aws:PrincipalOrgID\""), "{r}");
    assert!(reason(&r).contains("set AllowPublicAccess: true"), "{r}");
    assert_eq!(h.calls(), (0, 0), "no ECR call");
    assert_eq!(h.live(&repo("app")), None);
}

#[tokio::test]
async fn every_form_of_everyone_is_refused_on_every_type() {
    let h = harness().await;
    let public_statements = [
        json!({"Sid": "S", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:BatchGetImage"}),
        json!({"Sid": "S", "Effect": "Allow", "Principal": {"AWS": ["111122223333", "*"]}, "Action": "ecr:BatchGetImage"}),
        json!({"Sid": "S", "Effect": "Allow", "NotPrincipal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImage"}),
        json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
               "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}),
        json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
               "Condition": {"StringLike": {"aws:PrincipalAccount": "*"}}}),
    ];
    for statement in public_statements {
        for name in [
            "repository-create.json",
            "registry-create.json",
            "repository-statement-create.json",
            "registry-statement-create.json",
        ] {
            let mut e = h.event(name);
            let mut statement = statement.clone();
            if name.starts_with("registry") {
                statement["Action"] = json!("ecr:ReplicateImage");
            }
            if name.contains("statement") {
                e["ResourceProperties"]["Statement"] = statement.clone();
            } else {
                e["ResourceProperties"]["PolicyText"] = json!({"Statement": [statement.clone()]});
            }
            let r = h.send(e).await;
            assert_eq!(r["Status"], "FAILED", "{name} {statement}: {r}");
            assert!(
                reason(&r).contains(
                    " allows public access: statement 1 (Sid \"S\") lets in every AWS account"
                ),
                "{name}: {r}"
            );
        }
    }
    assert_eq!(h.calls(), (0, 0), "no ECR call");
}

#[tokio::test]
async fn for_all_values_limits_nothing_and_the_reason_says_use_string_equals() {
    let h = harness().await;
    let mut policy = everyone_pulls();
    policy["Statement"][0]["Condition"] =
        json!({"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}});
    let r = h
        .send(with_policy(h.event("repository-create.json"), policy))
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        reason(&r).contains(
            "its condition ForAllValues:StringEquals on aws:PrincipalOrgID limits nothing \
             (ForAllValues is true when the key is absent): aws:PrincipalOrgID has one value, \
             so use StringEquals"
        ),
        "{r}"
    );
    assert_eq!(h.calls(), (0, 0));
}

#[tokio::test]
async fn allow_public_access_or_the_provider_setting_lets_a_public_policy_through() {
    let h = harness().await;
    let mut e = with_policy(h.event("repository-create.json"), everyone_pulls());
    e["ResourceProperties"]["AllowPublicAccess"] = "true".into();
    let r = h.send(e).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "public");
    assert_eq!(h.live(&repo("app")), Some(everyone_pulls()));

    let mut h = harness().await;
    h.config.settings.public_access = PublicAccess::Allow;
    let r = h
        .send(with_policy(
            h.event("repository-create.json"),
            everyone_pulls(),
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "public");

    // A value that is not a boolean is named, as for every boolean property.
    let h = harness().await;
    let mut e = with_policy(h.event("repository-create.json"), everyone_pulls());
    e["ResourceProperties"]["AllowPublicAccess"] = "yes".into();
    let r = h.send(e).await;
    assert_eq!(
        reason(&r).split(" (logs:").next(),
        Some("property AllowPublicAccess must be true or false, got \"yes\"")
    );
}

#[tokio::test]
async fn data_access_says_who_gets_in_for_all_four_types() {
    let h = harness().await;
    let r = h
        .send(with_policy(
            h.event("repository-create.json"),
            organization_pulls(),
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "organization:o-a1b2c3d4e5");

    let r = h.send(h.event("registry-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "accounts:111122223333");

    // A statement resource reports its own statements only: the public statement beside
    // it is someone else's.
    let h = harness().await;
    h.seed_policy(&repo("app"), &everyone_pulls());
    let r = h.send(h.event("repository-statement-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "accounts:444455556666");

    let r = h.send(h.event("registry-statement-create.json")).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(r["Data"]["Access"], "accounts:111122223333");

    // Only the registry's own account: "account".
    let h = harness().await;
    let own = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"}, "Action": "ecr:BatchGetImage"}]});
    let r = h
        .send(with_policy(h.event("repository-create.json"), own))
        .await;
    assert_eq!(r["Data"]["Access"], "account", "{r}");
}

#[tokio::test]
async fn an_update_that_changes_nothing_is_never_refused_and_warns() {
    // A stack whose public policy predates the check: its Update (and a rollback, which is
    // an Update too) keeps what is there.
    let h = harness().await;
    h.seed_policy(&repo("app"), &everyone_pulls());
    let before = h.calls();
    let r = h
        .send(with_policy(
            h.event("repository-update.json"),
            everyone_pulls(),
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.calls().1, before.1, "nothing written");
    let warnings = r["Data"]["Warnings"].as_str().expect("warnings");
    assert!(
        warnings.starts_with("kept as it is, because the live policy already holds it: arn:aws:ecr:us-east-1:123456789012:repository/app allows public access"),
        "{warnings}"
    );
    assert_eq!(r["Data"]["Access"], "public");

    // What would change is judged: a different public policy is refused, nothing written.
    let mut other = everyone_pulls();
    other["Statement"][0]["Action"] = json!("ecr:BatchGetImage");
    let r = h
        .send(with_policy(h.event("repository-update.json"), other))
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(reason(&r).contains("allows public access"), "{r}");
    assert_eq!(h.calls().1, before.1, "nothing written");
    assert_eq!(h.live(&repo("app")), Some(everyone_pulls()));

    // A Create is refused whatever is there.
    let r = h
        .send(with_policy(
            h.event("repository-create.json"),
            everyone_pulls(),
        ))
        .await;
    assert_eq!(r["Status"], "FAILED", "{r}");
}

#[tokio::test]
async fn an_unchanged_public_statement_is_kept_on_update() {
    let h = harness().await;
    let mut e = h.event("repository-statement-update.json");
    let statement = json!({"Sid": "PullForConsumers", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
    e["ResourceProperties"]["Statement"] = json!([statement.clone()]);
    let console = json!({"Sid": "Console", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImage"});
    h.seed_policy(
        &repo("app"),
        &json!({"Version": "2012-10-17", "Statement": [console.clone(), statement.clone()]}),
    );
    let r = h.send(e.clone()).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(h.calls().1, 0, "nothing written");
    assert!(
        r["Data"]["Warnings"]
            .as_str()
            .is_some_and(|w| w.contains("allows public access"))
    );

    // The same statement changed: refused.
    e["ResourceProperties"]["Statement"][0]["Action"] = json!("ecr:*");
    let r = h.send(e).await;
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert_eq!(h.calls().1, 0, "nothing written");
}

#[tokio::test]
async fn a_defect_of_an_unchanged_policy_is_a_warning_on_update() {
    // CONTRACT 10's refusals judge what would be written too.
    let h = harness().await;
    let mut policy = organization_pulls();
    policy["Statement"][0]["Action"] = json!("ecr:BatchGetImages");
    h.seed_policy(&repo("app"), &policy);
    let r = h
        .send(with_policy(
            h.event("repository-update.json"),
            policy.clone(),
        ))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(
        r["Data"]["Warnings"]
            .as_str()
            .is_some_and(|w| w.contains("did you mean \\\"ecr:BatchGetImage\\\"")
                || w.contains("did you mean \"ecr:BatchGetImage\"")),
        "{r}"
    );
    assert_eq!(h.calls().1, 0);
}

#[tokio::test]
async fn service_principals_without_a_source_condition_and_auth_token_are_warnings() {
    let h = harness().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CodeBuildAccess", "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]},
        {"Sid": "Login", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"]}]});
    let r = h
        .send(with_policy(h.event("repository-create.json"), policy))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert_eq!(
        r["Data"]["Access"],
        "accounts:111122223333;services:codebuild.amazonaws.com"
    );
    let warnings = r["Data"]["Warnings"].as_str().expect("warnings");
    assert!(
        warnings.contains(
            "statement 1 (Sid \"CodeBuildAccess\") lets in service \"codebuild.amazonaws.com\" \
             with no aws:SourceAccount or aws:SourceArn condition"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("\"aws:SourceAccount\": \"123456789012\""),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "statement 2 (Sid \"Login\") grants ecr:GetAuthorizationToken, which is not a \
             repository action"
        ),
        "{warnings}"
    );
    // With a source condition, and in a registry policy, neither warns.
    let limited = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
        "Action": "ecr:BatchGetImage", "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]});
    let r = h
        .send(with_policy(h.event("repository-update.json"), limited))
        .await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(r["Data"].get("Warnings").is_none(), "{r}");
}

#[tokio::test]
async fn when_ecr_refuses_a_policy_with_auth_token_the_reason_names_it_at_once() {
    let h = harness().await;
    h.store.fail_writes(std::iter::repeat_n(
        EcrError::InvalidPolicy {
            message: "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".into(),
        },
        100,
    ));
    let policy = json!({"Statement": [{"Sid": "Login", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"]}]});
    let (r, took) = h
        .send_timed(with_policy(h.event("repository-create.json"), policy))
        .await;
    assert!(took < Duration::from_secs(1), "not retried");
    assert_eq!(r["Status"], "FAILED", "{r}");
    assert!(
        reason(&r).contains(
            "Invalid repository policy provided'. The likely cause: statement 1 (Sid \"Login\") \
             grants ecr:GetAuthorizationToken"
        ),
        "{r}"
    );
    assert_eq!(h.store.calls().writes, 1);
}

#[tokio::test]
async fn policy_variables_joining_an_old_version_policy_are_a_warning() {
    let h = harness().await;
    let console = json!({"Sid": "Console", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImage"});
    h.seed_policy(
        &repo("app"),
        &json!({"Version": "2008-10-17", "Statement": [console.clone()]}),
    );
    let with_variable = |h: &Harness| {
        let mut e = h.event("repository-statement-create.json");
        e["ResourceProperties"]["Statement"][0]["Condition"] = json!({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::444455556666:user/${aws:username}"}});
        e
    };
    let r = h.send(with_variable(&h)).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    let warnings = r["Data"]["Warnings"].as_str().expect("warnings");
    assert!(
        warnings.starts_with(
            "statement 1 (Sid \"PullForConsumers\") uses policy variables, but the policy it \
             joins has Version \"2008-10-17\", where IAM reads them as literal text"
        ),
        "{warnings}"
    );

    // Into a 2012-10-17 policy, or a new one: nothing to say.
    let h = harness().await;
    let r = h.send(with_variable(&h)).await;
    assert_eq!(r["Status"], "SUCCESS", "{r}");
    assert!(r["Data"].get("Warnings").is_none(), "{r}");
    let h = harness().await;
    h.seed_policy(
        &repo("app"),
        &json!({"Version": "2012-10-17", "Statement": [console]}),
    );
    let r = h.send(with_variable(&h)).await;
    assert!(r["Data"].get("Warnings").is_none(), "{r}");
}
