//! Every `Failure` variant's Reason, word for word (issue 19): a Reason is what a
//! CloudFormation user reads, so a change to one is a change a test must show. Each case
//! builds the failure as the provider does and compares the whole text.

use ecr_policy_provider::diagnosis::{PolicyKind, Scope, check};
use ecr_policy_provider::ecr::EcrError;
use ecr_policy_provider::error::{Failure, Undo};
use ecr_policy_provider::event::{PropertyError, RequestError};
use ecr_policy_provider::lock::{Holder, LockError};
use serde_json::json;
use std::time::Duration;

const TARGET: &str = "the registry in us-east-1";

fn holder() -> Holder {
    Holder {
        tag: "8f1d2c3b".into(),
        stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/platform/5b3c9a10".into(),
        logical: "GrantA".into(),
    }
}

/// A property with a typo, as the event's properties are read.
fn property_error() -> PropertyError {
    ecr_policy_provider::event::desired_state(
        "Custom::ECRRegistryPolicy",
        &json!({"PolicyText": {"Statement": []}, "Adop": "true"}),
        Some("us-east-1"),
    )
    .map(|_| ())
    .expect_err("a typo")
}

fn cases() -> Vec<(&'static str, Failure)> {
    let scope = Scope {
        kind: PolicyKind::Repository,
        partition: "aws",
        region: "us-east-1",
        account: Some("123456789012"),
    };
    let document = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImages"}]});
    let defects = check(document.as_object().expect("object"), &scope).expect_err("a typo");
    vec![
        (
            "Request",
            Failure::Request(RequestError::UnknownRequestType("Replace".into())),
        ),
        ("Property", Failure::Property(property_error())),
        (
            "Ecr",
            Failure::Ecr(EcrError::RepositoryNotFound {
                name: "app".into(),
                region: "us-east-1".into(),
            }),
        ),
        (
            "Defective",
            Failure::Defective {
                property: "PolicyText",
                defects,
            },
        ),
        (
            "RegistryScopeV1",
            Failure::RegistryScopeV1(vec!["ecr:BatchGetImage".into()]),
        ),
        (
            "AlreadyHasPolicy",
            Failure::AlreadyHasPolicy {
                target: TARGET.into(),
            },
        ),
        (
            "OwnedBy",
            Failure::OwnedBy {
                target: TARGET.into(),
                holder: holder(),
                differs: false,
            },
        ),
        (
            "HeldBy",
            Failure::HeldBy {
                target: TARGET.into(),
                held: vec![("A".into(), holder())],
            },
        ),
        (
            "ForeignPhysicalId",
            Failure::ForeignPhysicalId("my-policy".into()),
        ),
        (
            "UpdateOfFailedCreate",
            Failure::UpdateOfFailedCreate("failed-create:5f0c".into()),
        ),
        (
            "KindChanged",
            Failure::KindChanged("registry-policy:us-east-1:123456789012".into()),
        ),
        (
            "SidsDiffer",
            Failure::SidsDiffer {
                target: TARGET.into(),
                sids: vec!["A".into(), "B".into()],
            },
        ),
        (
            "MergedTooLong",
            Failure::MergedTooLong {
                target: TARGET.into(),
                chars: 10_300,
            },
        ),
        ("LiveNotJson", Failure::LiveNotJson(TARGET.into())),
        ("NoLockTable", Failure::NoLockTable),
        (
            "Busy",
            Failure::Busy {
                target: TARGET.into(),
                waited: Duration::from_secs(57),
            },
        ),
        (
            "Lock",
            Failure::Lock(LockError::NoTable {
                table: "locks".into(),
            }),
        ),
        ("IdTooLong", Failure::IdTooLong(1100)),
        (
            "PolicyRejected",
            Failure::PolicyRejected {
                error: EcrError::InvalidPolicy {
                    message: "Invalid registry policy provided".into(),
                },
                attempts: 4,
                waited: Duration::from_secs(15),
                v1_actions: Vec::new(),
                iam_possible: true,
                auth_token: Box::default(),
            },
        ),
        ("TimedOut", Failure::TimedOut(Duration::from_secs(170))),
        (
            "Undone",
            Failure::Undone {
                failure: Box::new(Failure::Ecr(EcrError::Unavailable {
                    operation: "PutRegistryPolicy",
                    detail: "dispatch failure".into(),
                })),
                undo: Undo::Restored,
            },
        ),
        ("AnsweredFailed", Failure::AnsweredFailed),
        ("Panicked", Failure::Panicked("index out of bounds".into())),
    ]
}

/// What each variant says, in full.
const EXPECTED: &[(&str, &str)] = &[
    (
        "Request",
        r#"RequestType "Replace" is not one CloudFormation sends; expected Create, Update or Delete"#,
    ),
    (
        "Property",
        r#"unknown property "Adop"; did you mean Adopt?"#,
    ),
    (
        "Ecr",
        r#"repository "app" does not exist in us-east-1; create it first (an AWS::ECR::Repository in the same stack, passed with !Ref, is created before the policy)"#,
    ),
    (
        "Defective",
        r#"property PolicyText statement 1 (Sid "Pull") has Action "ecr:BatchGetImages", which is not an ECR action; did you mean "ecr:BatchGetImage"?"#,
    ),
    (
        "RegistryScopeV1",
        r#"ECR refused the registry policy because the registry's policy scope is V1, where a registry policy may grant only ecr:ReplicateImage, ecr:BatchImportUpstreamImage, ecr:CreateRepository; this one also grants "ecr:BatchGetImage". Switch the registry to V2 with `aws ecr put-account-setting --name REGISTRY_POLICY_SCOPE --value V2` (see it with `aws ecr get-account-setting --name REGISTRY_POLICY_SCOPE`), or drop those actions."#,
    ),
    (
        "AlreadyHasPolicy",
        r#"the registry in us-east-1 already has a policy that differs from PolicyText; set Adopt: true to take it over (it is then replaced, and deleted with the stack), or remove it first"#,
    ),
    (
        "OwnedBy",
        r#"the registry in us-east-1 already has a policy equivalent to PolicyText, managed by "GrantA" of stack "platform"; set Adopt: true to take it over (the other resource's Delete then leaves it in place), or remove it from that stack first"#,
    ),
    (
        "HeldBy",
        r#"the registry in us-east-1 already has statements with Sid "A" that other resources hold: Sid "A" is held by "GrantA" of stack "platform"; set Adopt: true to take them over (the other resource's Delete then leaves them in place), or give this resource's statements other Sids"#,
    ),
    (
        "ForeignPhysicalId",
        r#"PhysicalResourceId "my-policy" was not issued by this provider, so it cannot be updated; replace the resource (give it a new logical id) to let this provider manage it"#,
    ),
    (
        "UpdateOfFailedCreate",
        r#"PhysicalResourceId "failed-create:5f0c" is that of a create that failed, so there is nothing to update; delete the resource and create it again"#,
    ),
    (
        "KindChanged",
        r#"PhysicalResourceId "registry-policy:us-east-1:123456789012" names a whole policy or statements, and the properties now ask for the other kind; a resource cannot change kind: give it a new logical id"#,
    ),
    (
        "SidsDiffer",
        r#"the registry in us-east-1 already has statements with Sid "A", "B" that differ from this resource's; set Adopt: true to take them over (they are then replaced, and removed with the stack), or give this resource's statements other Sids"#,
    ),
    (
        "MergedTooLong",
        r#"with these statements the policy of the registry in us-east-1 would be 10300 characters long; ECR accepts at most 10240, so the statements do not fit: shorten them, merge them, or move grants to IAM policies. Nothing was written."#,
    ),
    (
        "LiveNotJson",
        r#"the live policy of the registry in us-east-1 is not a JSON object, so no statement can be merged into it; replace it with a whole-policy resource (Adopt: true) or delete it first"#,
    ),
    (
        "NoLockTable",
        r#"statement resources need the lock table: set the function's POLICY_LOCK_TABLE environment variable to the DynamoDB table that template.yaml creates (deploying with template.yaml sets it)"#,
    ),
    (
        "Busy",
        r#"another change to the registry in us-east-1 held its lock for all of the 57 s this request could wait; nothing was changed. Retry the stack operation."#,
    ),
    (
        "Lock",
        r#"the lock table locks does not exist: set POLICY_LOCK_TABLE to the table that template.yaml creates"#,
    ),
    (
        "IdTooLong",
        r#"the PhysicalResourceId naming these Sids would be 1100 bytes long; CloudFormation allows 1024: split the statements over several resources, or shorten their Sids"#,
    ),
    (
        "PolicyRejected",
        r#"ECR rejected the policy: Invalid registry policy provided (tried 4 times over 15 s). If the policy names IAM users, roles or accounts that were just created, IAM may not have propagated them yet: check that every principal exists, or raise IAM_PROPAGATION_TIMEOUT_SECONDS."#,
    ),
    (
        "TimedOut",
        r#"the request did not finish within the 170 s left before the function's timeout; ECR did not answer in time. Nothing more will be changed by this request; retry the stack operation, and if this repeats raise the function's Timeout."#,
    ),
    (
        "Undone",
        r#"ECR PutRegistryPolicy failed after retries: dispatch failure; this is usually temporary, so retry the stack operation. The new policy had landed after all and the previous one was put back: ECR is as it was."#,
    ),
    (
        "AnsweredFailed",
        r#"another delivery of this request was answered FAILED already, and CloudFormation acts on the first answer; this one changed nothing"#,
    ),
    (
        "Panicked",
        r#"internal error: the provider panicked (index out of bounds); nothing more will be changed by this request. Please report it with the logs"#,
    ),
];

#[test]
fn every_failure_reads_word_for_word_as_written() {
    let cases = cases();
    assert_eq!(cases.len(), EXPECTED.len());
    for ((name, failure), (expected_name, expected)) in cases.iter().zip(EXPECTED) {
        assert_eq!(name, expected_name);
        assert_eq!(failure.to_string(), *expected, "{name}");
    }
}

#[test]
fn every_reason_is_sentences_that_do_not_run_on() {
    for (name, failure) in cases() {
        let text = failure.to_string();
        // A new sentence right after a word with no full stop: "… operation The new …".
        const STARTERS: [&str; 7] = [
            "The", "Nothing", "Retry", "Switch", "If", "Whether", "Please",
        ];
        let words: Vec<&str> = text.split_whitespace().collect();
        let run_on = words.windows(2).any(|w| {
            w[0].chars().last().is_some_and(char::is_alphanumeric) && STARTERS.contains(&w[1])
        });
        assert!(!run_on, "{name}: {text}");
    }
}
