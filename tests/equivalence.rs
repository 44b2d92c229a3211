//! Property tests for policy equivalence (CONTRACT 5): rewriting that keeps the meaning never
//! changes equivalence; changing what is granted always does.

use ecr_policy_provider::policy::Policy;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ACTIONS: [&str; 8] = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:ReplicateImage",
];

#[derive(Debug, Clone)]
struct Statement {
    sid: Option<String>,
    allow: bool,
    /// Account numbers; empty means `"*"`.
    accounts: Vec<u64>,
    actions: Vec<usize>,
    org_ids: Vec<u32>,
}

fn statement() -> impl Strategy<Value = Statement> {
    (
        proptest::option::of("[A-Z][a-zA-Z0-9]{0,8}"),
        any::<bool>(),
        proptest::collection::btree_set(100_000_000_000u64..999_999_999_999, 0..4),
        proptest::collection::btree_set(0..ACTIONS.len(), 1..5),
        proptest::collection::btree_set(0u32..1000, 0..3),
    )
        .prop_map(|(sid, allow, accounts, actions, org_ids)| Statement {
            sid,
            allow,
            accounts: accounts.into_iter().collect(),
            actions: actions.into_iter().collect(),
            org_ids: org_ids.into_iter().collect(),
        })
}

fn document(statements: &[Statement]) -> Value {
    let list: Vec<Value> = statements
        .iter()
        .map(|s| {
            let mut m = Map::new();
            if let Some(sid) = &s.sid {
                m.insert("Sid".into(), sid.clone().into());
            }
            m.insert("Effect".into(), if s.allow { "Allow" } else { "Deny" }.into());
            m.insert(
                "Principal".into(),
                if s.accounts.is_empty() {
                    json!("*")
                } else {
                    json!({"AWS": s.accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect::<Vec<_>>()})
                },
            );
            m.insert(
                "Action".into(),
                s.actions.iter().map(|&i| ACTIONS[i]).collect::<Vec<_>>().into(),
            );
            if !s.org_ids.is_empty() {
                m.insert(
                    "Condition".into(),
                    json!({"StringEquals": {"aws:PrincipalOrgID": s.org_ids.iter().map(|o| format!("o-{o}")).collect::<Vec<_>>()}}),
                );
            }
            Value::Object(m)
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": list})
}

/// Rewrites that keep the meaning: key order reversed, lists shuffled, one-element lists
/// made single values, statements reordered.
fn rewrite(value: &Value, rng: &mut fastrand::Rng, in_list_position: bool) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.reverse();
            Value::Object(
                entries
                    .into_iter()
                    // Every list in these documents is a set (statements, actions,
                    // principals, condition values).
                    .map(|(k, v)| (k.clone(), rewrite(v, rng, true)))
                    .collect(),
            )
        }
        Value::Array(items) if in_list_position => {
            let mut items: Vec<Value> = items.iter().map(|v| rewrite(v, rng, false)).collect();
            rng.shuffle(&mut items);
            if items.len() == 1 && !items[0].is_object() && rng.bool() {
                items.pop().expect("one item")
            } else {
                Value::Array(items)
            }
        }
        other => other.clone(),
    }
}

fn parse(value: &Value) -> Policy {
    Policy::from_property(value).expect("generated policies are valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn meaning_preserving_rewrites_stay_equivalent(
        statements in proptest::collection::vec(statement(), 1..4),
        seed in any::<u64>(),
        pretty in any::<bool>(),
    ) {
        let original = document(&statements);
        let mut rng = fastrand::Rng::with_seed(seed);
        let rewritten = rewrite(&original, &mut rng, true);
        let text = if pretty {
            serde_json::to_string_pretty(&rewritten).expect("serialises")
        } else {
            rewritten.to_string()
        };
        let live = Policy::from_live(&text).expect("object");
        prop_assert!(parse(&original).equivalent(&live), "{original}\n{text}");
        prop_assert!(parse(&original).equivalent(&parse(&Value::String(text))));
    }

    #[test]
    fn changing_what_is_granted_breaks_equivalence(
        statements in proptest::collection::vec(statement(), 1..4),
        which in any::<prop::sample::Index>(),
        change in 0..4u8,
        seed in any::<u64>(),
    ) {
        let original = document(&statements);
        let mut changed = statements.clone();
        let s = &mut changed[which.index(statements.len())];
        match change {
            // An action swapped for one the statement does not have yet, or one added.
            0 => match (0..ACTIONS.len()).find(|i| !s.actions.contains(i)) {
                Some(new) => s.actions[0] = new,
                None => { s.actions.pop(); }
            },
            // A principal account changed, or "*" made an account.
            1 => match s.accounts.first_mut() {
                Some(account) => *account = if *account == 999_999_999_999 { 100_000_000_000 } else { *account + 1 },
                None => s.accounts.push(123_456_789_012),
            },
            2 => s.allow = !s.allow,
            // A condition value changed, or a condition added.
            _ => match s.org_ids.first_mut() {
                Some(org) => *org += 1000,
                None => s.org_ids.push(7),
            },
        }
        // Guard against a change that lands on a value the statement already had.
        let changed_doc = document(&changed);
        prop_assume!(changed_doc != original);
        let mut rng = fastrand::Rng::with_seed(seed);
        let rewritten = rewrite(&changed_doc, &mut rng, true);
        prop_assert!(!parse(&original).equivalent(&parse(&rewritten)), "{original}\n{rewritten}");
    }
}

#[test]
fn every_reference_policy_parses_and_is_equivalent_to_itself_reformatted() {
    for (name, doc) in reference_policies() {
        let policy = Policy::from_property(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        let pretty = serde_json::to_string_pretty(&doc).expect("serialises");
        assert!(
            policy.equivalent(&Policy::from_live(&pretty).expect("object")),
            "{name}"
        );
    }
}

/// The policies in the shared reference documents, with their placeholders filled in.
fn reference_policies() -> Vec<(&'static str, Value)> {
    let pull = [
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "ecr:BatchCheckLayerAvailability",
    ];
    let replicate = json!({"Sid":"ReplicationAccessCrossAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":["arn:aws:ecr:us-west-2:444455556666:repository/*"]});
    vec![
        (
            "replication",
            json!({"Version":"2012-10-17","Statement":[replicate.clone()]}),
        ),
        (
            "multiple accounts",
            json!({"Version":"2012-10-17","Statement":[replicate.clone(), replicate]}),
        ),
        (
            "prod prefix",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"ReplicationAccessCrossAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":["arn:aws:ecr:us-west-2:444455556666:repository/prod-*"]}]}),
        ),
        (
            "pull through cache",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"PullThroughCacheFromReadOnlyRole","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:BatchImportUpstreamImage"],"Resource":"arn:aws:ecr:us-east-1:111122223333:repository/ecr-public/*"}]}),
        ),
        (
            "pull for everyone",
            json!({"Version":"2008-10-17","Statement":[{"Sid":"AllowPull","Effect":"Allow","Principal":"*","Action":pull}]}),
        ),
        (
            "push and pull users",
            json!({"Version":"2008-10-17","Statement":[{"Sid":"AllowPushPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/push-pull-user-1","arn:aws:iam::123456789012:user/push-pull-user-2"]},"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","ecr:BatchCheckLayerAvailability","ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload"]}]}),
        ),
        (
            "cross-account push",
            json!({"Version":"2008-10-17","Statement":[{"Sid":"AllowCrossAccountPush","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload"]}]}),
        ),
        (
            "pull plus admin",
            json!({"Version":"2008-10-17","Statement":[{"Sid":"AllowPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/pull-user-1","arn:aws:iam::123456789012:user/pull-user-2"]},"Action":pull},{"Sid":"AllowAll","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/admin-user"},"Action":["ecr:*"]}]}),
        ),
        (
            "deny all",
            json!({"Version":"2008-10-17","Statement":[{"Sid":"DenyPull","Effect":"Deny","Principal":"*","Action":pull}]}),
        ),
        (
            "service principal",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"CodeBuildAccess","Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":["ecr:BatchCheckLayerAvailability","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}),
        ),
    ]
}
