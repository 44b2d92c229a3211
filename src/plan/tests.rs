use super::*;
use crate::policy::Statements;
use proptest::prelude::*;
use serde_json::json;

const ACCOUNT: &str = "123456789012";

fn registry() -> Target {
    Target::Registry {
        region: "us-west-2".into(),
    }
}

fn whole(adopt: bool) -> Desired {
    Desired {
        target: registry(),
        content: Content::Policy(Policy::from_property(&json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":["ecr:ReplicateImage","ecr:CreateRepository"]}]}))
            .expect("valid")),
        adopt,
        force: false,
    }
}

fn statements(list: Value, adopt: bool) -> Desired {
    Desired {
        target: registry(),
        content: Content::Statements(Statements::from_property(&list).expect("valid")),
        adopt,
        force: false,
    }
}

fn grant(sid: &str, account: &str) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"]})
}

fn doc(statements: &[Value]) -> String {
    json!({"Version": "2008-10-17", "Statement": statements}).to_string()
}

fn written(decision: &Result<Decision, Refusal>) -> Value {
    match decision {
        Ok(Decision {
            next: Next::Write(text),
            ..
        }) => serde_json::from_str(text).expect("JSON"),
        other => panic!("not a write: {other:?}"),
    }
}

const REORDERED: &str = r#"{"Statement":[{"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Effect":"Allow"}],"Version":"2012-10-17"}"#;
const OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}"#;

fn keep(adopted: bool) -> Result<Decision, Refusal> {
    Ok(Decision {
        next: Next::Keep,
        adopted,
    })
}

#[test]
fn a_whole_policy_create_writes_keeps_refuses_or_adopts() {
    let d = whole(false);
    let compact = d.policy().expect("whole").compact().to_owned();
    let write = |adopted| {
        Ok(Decision {
            next: Next::Write(compact.clone()),
            adopted,
        })
    };
    assert_eq!(
        decide(&Approach::Create, &d, None, &Holders::new(), None),
        write(false)
    );
    assert_eq!(
        decide(
            &Approach::Create,
            &d,
            Some(REORDERED),
            &Holders::new(),
            None
        ),
        keep(false)
    );
    assert_eq!(
        decide(&Approach::Create, &d, Some(OTHER), &Holders::new(), None),
        Err(Refusal::AlreadyHasPolicy)
    );
    assert_eq!(
        decide(
            &Approach::Create,
            &whole(true),
            Some(OTHER),
            &Holders::new(),
            None
        ),
        write(true)
    );
    assert_eq!(
        decide(
            &Approach::Create,
            &whole(true),
            Some(REORDERED),
            &Holders::new(),
            None
        ),
        keep(true)
    );
}

#[test]
fn a_whole_policy_update_writes_unless_equivalent_and_rewrites_a_deleted_policy() {
    let d = whole(false);
    assert_eq!(
        decide(
            &Approach::UpdateInPlace,
            &d,
            Some(REORDERED),
            &Holders::new(),
            None
        ),
        keep(false)
    );
    assert!(matches!(
        decide(
            &Approach::UpdateInPlace,
            &d,
            Some(OTHER),
            &Holders::new(),
            None
        ),
        Ok(Decision {
            next: Next::Write(_),
            adopted: false
        })
    ));
    assert!(matches!(
        decide(&Approach::UpdateInPlace, &d, None, &Holders::new(), None),
        Ok(Decision {
            next: Next::Write(_),
            adopted: false
        })
    ));
    // Live text that is not JSON is never equivalent.
    assert!(matches!(
        decide(
            &Approach::UpdateInPlace,
            &d,
            Some("garbage"),
            &Holders::new(),
            None
        ),
        Ok(Decision {
            next: Next::Write(_),
            ..
        })
    ));
}

#[test]
fn an_update_stays_in_place_on_its_target_and_replaces_onto_another() {
    let d = whole(true);
    assert_eq!(
        approach_update("registry-policy:us-west-2:123456789012", &d).ok(),
        Some(Approach::UpdateInPlace)
    );
    let replace = approach_update("registry-policy:eu-west-1:123456789012", &d).expect("replace");
    assert!(matches!(replace, Approach::Replace { .. }));
    // The replacement is a Create: Adopt applies to what is live there.
    assert!(matches!(
        decide(&replace, &d, Some(OTHER), &Holders::new(), None),
        Ok(Decision { adopted: true, .. })
    ));
}

#[test]
fn an_update_of_a_failed_create_a_foreign_id_or_another_kind_is_refused() {
    let d = whole(false);
    let failed = approach_update("failed-create:r1", &d).expect_err("failed create");
    assert!(
        matches!(failed, Failure::UpdateOfFailedCreate(_)),
        "{failed}"
    );
    for id in ["my-policy", "arn:aws:s3:::bucket"] {
        let foreign = approach_update(id, &d).expect_err("foreign");
        assert!(
            matches!(foreign, Failure::ForeignPhysicalId(_)),
            "{foreign}"
        );
    }
    let statement_id = "ecr-policy-statements/t1/A/registry-policy:us-west-2:123456789012";
    let changed = approach_update(statement_id, &d).expect_err("kind changed");
    assert!(matches!(changed, Failure::KindChanged(_)), "{changed}");
}

#[test]
fn a_statement_update_is_in_place_only_for_the_same_target_and_sids() {
    let d = statements(
        json!([grant("B", "111122223333"), grant("A", "111122223333")]),
        false,
    );
    let id = |sids: &str| {
        format!("ecr-policy-statements/t1/{sids}/registry-policy:us-west-2:123456789012")
    };
    assert_eq!(
        approach_update(&id("A,B"), &d).ok(),
        Some(Approach::UpdateInPlace)
    );
    assert!(matches!(
        approach_update(&id("A,C"), &d),
        Ok(Approach::Replace { .. })
    ));
    let moved = "ecr-policy-statements/t1/A,B/registry-policy:eu-west-1:123456789012";
    assert!(matches!(
        approach_update(moved, &d),
        Ok(Approach::Replace { .. })
    ));
}

#[test]
fn statements_are_added_after_the_others_which_stay_as_they_are() {
    let console = json!({"Sid": "console", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Condition": {"NumericLessThan": {"n": 3600}}});
    let live = doc(&[console.clone(), grant("Team1", "111122223333")]);
    let d = statements(
        json!({"Sid": "Team2", "Effect": "Allow", "Principal": {"AWS": "444455556666"}, "Action": "ecr:ReplicateImage"}),
        false,
    );
    let next = written(&decide(
        &Approach::Create,
        &d,
        Some(&live),
        &Holders::new(),
        None,
    ));
    assert_eq!(
        next["Version"], "2008-10-17",
        "an existing policy keeps its Version"
    );
    let list = next["Statement"].as_array().expect("list");
    assert_eq!(list[0], console);
    assert_eq!(list[1], grant("Team1", "111122223333"));
    assert_eq!(list[2]["Sid"], "Team2");
    // A new policy starts at 2012-10-17.
    let fresh = written(&decide(&Approach::Create, &d, None, &Holders::new(), None));
    assert_eq!(fresh["Version"], "2012-10-17");
}

#[test]
fn an_equivalent_statement_is_kept_and_a_different_one_needs_adopt() {
    let ours = grant("Team1", "111122223333");
    let live = doc(&[
        json!({"Action": ["ecr:ReplicateImage", "ecr:CreateRepository"], "Principal": {"AWS": "111122223333"}, "Effect": "Allow", "Sid": "Team1"}),
    ]);
    let d = statements(ours.clone(), false);
    assert_eq!(
        decide(&Approach::Create, &d, Some(&live), &Holders::new(), None),
        keep(false)
    );
    let other = doc(&[grant("Team1", "999988887777")]);
    assert_eq!(
        decide(&Approach::Create, &d, Some(&other), &Holders::new(), None),
        Err(Refusal::SidsDiffer(vec!["Team1".into()]))
    );
    let taken = decide(
        &Approach::Create,
        &statements(ours.clone(), true),
        Some(&other),
        &Holders::new(),
        None,
    );
    assert!(matches!(taken, Ok(Decision { adopted: true, .. })));
    assert_eq!(written(&taken)["Statement"], json!([ours]));
    // An update in place replaces its own statement without Adopt.
    let updated = decide(
        &Approach::UpdateInPlace,
        &d,
        Some(&other),
        &Holders::new(),
        None,
    );
    assert!(matches!(updated, Ok(Decision { adopted: false, .. })));
}

#[test]
fn a_replacement_takes_its_predecessors_sids_without_adopt() {
    let predecessor =
        PhysicalId::parse("ecr-policy-statements/t1/Team1/registry-policy:us-west-2:123456789012");
    let other = doc(&[grant("Team1", "999988887777")]);
    let d = statements(grant("Team1", "111122223333"), false);
    let replaced = decide(
        &Approach::Replace { predecessor },
        &d,
        Some(&other),
        &Holders::new(),
        None,
    );
    assert!(
        matches!(replaced, Ok(Decision { adopted: false, .. })),
        "{replaced:?}"
    );
}

#[test]
fn a_merge_over_the_size_limit_says_how_long_it_would_be() {
    let big = |sid: &str| json!({"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Condition": {"StringEquals": {"aws:PrincipalTag/x": "y".repeat(6000)}}});
    let live = doc(&[big("Other")]);
    let d = statements(big("Ours"), false);
    match decide(&Approach::Create, &d, Some(&live), &Holders::new(), None) {
        Err(Refusal::TooLong(chars)) => assert!(chars > 12_000, "{chars}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_delete_removes_only_the_sids_this_resource_holds() {
    let live = doc(&[
        grant("A", "111122223333"),
        grant("Console", "444455556666"),
        grant("B", "111122223333"),
    ]);
    let sids = vec!["A".to_owned(), "B".to_owned()];
    let mut holders = Holders::new();
    holders.insert("A".into(), "t1".into());
    holders.insert("B".into(), "t2".into());
    match after_delete(Some(&live), "t1", &sids, &holders) {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(
                v["Statement"],
                json!([grant("Console", "444455556666"), grant("B", "111122223333")])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        release_sids("t1", &sids, &holders)
            .get("B")
            .map(String::as_str),
        Some("t2")
    );
    assert!(!release_sids("t1", &sids, &holders).contains_key("A"));
    let only_ours = doc(&[grant("A", "111122223333")]);
    assert_eq!(
        after_delete(Some(&only_ours), "t1", &sids, &Holders::new()),
        Next::Delete
    );
    assert_eq!(after_delete(None, "t1", &sids, &Holders::new()), Next::Keep);
    let none_of_ours = doc(&[grant("Console", "444455556666")]);
    assert_eq!(
        after_delete(Some(&none_of_ours), "t1", &sids, &Holders::new()),
        Next::Keep
    );
}

#[test]
fn delete_touches_nothing_for_ids_it_did_not_issue() {
    for id in [
        "failed-create:5f0c",
        "",
        "registry-policy:nowhere:1",
        "arn:aws:s3:::bucket",
        "arn:aws:ecr:us-east-1:123456789012:repository/UPPER",
        "my-policy",
    ] {
        assert_eq!(plan_delete(id), DeletePlan::Nothing, "{id}");
    }
    assert_eq!(
        plan_delete("registry-policy:us-west-2:123456789012"),
        DeletePlan::Delete {
            target: registry(),
            account: ACCOUNT.into()
        }
    );
}

/// ECR's way of returning a document: pretty-printed, keys reordered.
fn as_ecr_returns(text: &str) -> String {
    let v: Value = serde_json::from_str(text).expect("JSON");
    let reversed = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut doc = reversed(v.as_object().expect("object"));
    if let Some(Value::Array(items)) = doc.get_mut("Statement") {
        for item in items.iter_mut() {
            if let Value::Object(m) = item {
                *m = reversed(m);
            }
        }
    }
    serde_json::to_string_pretty(&Value::Object(doc)).expect("serialises")
}

proptest! {
    /// Others' statements (any number, any order) survive our statements being merged in
    /// and taken out again, unchanged and in their order; merging an equivalent copy of
    /// ours again never writes.
    #[test]
    fn merging_then_removing_gives_back_the_other_owners_statements(
        others in prop::collection::vec(0u32..1000, 0..6),
        ours in prop::collection::btree_set(0u32..1000, 1..4),
    ) {
        let theirs: Vec<Value> = others
            .iter()
            .enumerate()
            .map(|(i, n)| grant(&format!("Other{i}"), &format!("{:012}", 100_000_000_000u64 + u64::from(*n))))
            .collect();
        let live = (!theirs.is_empty()).then(|| doc(&theirs));
        let mine: Vec<Value> = ours.iter().map(|n| grant(&format!("Mine{n}"), &format!("{:012}", 200_000_000_000u64 + u64::from(*n)))).collect();
        let d = statements(Value::Array(mine.clone()), false);
        let merged = match decide(&Approach::Create, &d, live.as_deref(), &Holders::new(), None) {
            Ok(Decision { next: Next::Write(text), .. }) => text,
            other => panic!("{other:?}"),
        };
        let ecr_text = as_ecr_returns(&merged);
        prop_assert_eq!(decide(&Approach::Create, &d, Some(&ecr_text), &Holders::new(), None), keep(false));
        prop_assert_eq!(decide(&Approach::UpdateInPlace, &d, Some(&ecr_text), &Holders::new(), None), keep(false));
        let sids = d.statements().expect("statements").sids();
        let holders = hold_sids("t1", &sids, &Holders::new());
        match after_delete(Some(&ecr_text), "t1", &sids, &holders) {
            Next::Delete => prop_assert!(theirs.is_empty()),
            Next::Write(text) => {
                let v: Value = serde_json::from_str(&text).expect("JSON");
                let back = v["Statement"].as_array().expect("list");
                prop_assert_eq!(back.len(), theirs.len());
                for (got, want) in back.iter().zip(&theirs) {
                    prop_assert!(statement_equivalent(got, want));
                    prop_assert_eq!(got, &serde_json::from_str::<Value>(&as_ecr_returns(&doc(std::slice::from_ref(want)))).expect("JSON")["Statement"][0]);
                }
            }
            Next::Keep => prop_assert!(false, "our statements were not removed"),
        }
        prop_assert!(release_sids("t1", &sids, &holders).is_empty());
    }
}

#[test]
fn a_sid_another_resource_took_over_is_not_rewritten_without_adopt() {
    let mine = grant("Team1", "111122223333");
    let theirs = doc(&[grant("Team1", "999988887777")]);
    let d = statements(mine.clone(), false);
    let mut holders = Holders::new();
    holders.insert("Team1".into(), "t2".into());
    // An update in place of t1, after t2 took Team1 over with Adopt.
    assert_eq!(
        decide(
            &Approach::UpdateInPlace,
            &d,
            Some(&theirs),
            &holders,
            Some("t1")
        ),
        Err(Refusal::SidsDiffer(vec!["Team1".into()]))
    );
    // Still its own: rewritten in place.
    holders.insert("Team1".into(), "t1".into());
    assert!(matches!(
        decide(
            &Approach::UpdateInPlace,
            &d,
            Some(&theirs),
            &holders,
            Some("t1")
        ),
        Ok(Decision {
            next: Next::Write(_),
            adopted: false
        })
    ));
    // A replacement takes its predecessor's Sid only while the predecessor holds it.
    let predecessor =
        PhysicalId::parse("ecr-policy-statements/t1/Team1/registry-policy:us-west-2:123456789012");
    let replace = Approach::Replace { predecessor };
    assert!(decide(&replace, &d, Some(&theirs), &holders, Some("t3")).is_ok());
    holders.insert("Team1".into(), "t2".into());
    assert_eq!(
        decide(&replace, &d, Some(&theirs), &holders, Some("t3")),
        Err(Refusal::SidsDiffer(vec!["Team1".into()]))
    );
    // With Adopt it is taken back.
    let adopting = statements(mine, true);
    assert!(matches!(
        decide(
            &Approach::UpdateInPlace,
            &adopting,
            Some(&theirs),
            &holders,
            Some("t1")
        ),
        Ok(Decision { adopted: true, .. })
    ));
}
