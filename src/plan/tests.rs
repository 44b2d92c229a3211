use super::*;
use crate::lock::{Displaced, Held, Owned, Prior, REMOVED_KEPT_MS, Removed, Version};
use crate::policy::Statements;
use crate::policy::{sid_of, statement_equivalent};
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
        allow_public: false,
    }
}

fn statements(list: Value, adopt: bool) -> Desired {
    Desired {
        target: registry(),
        content: Content::Statements(Statements::from_property(&list).expect("valid")),
        adopt,
        force: false,
        allow_public: false,
    }
}

fn grant(sid: &str, account: &str) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"]})
}

fn doc(statements: &[Value]) -> String {
    json!({"Version": "2008-10-17", "Statement": statements}).to_string()
}

fn written(decision: &Result<(Next, bool), Refusal>) -> Value {
    match decision {
        Ok((Next::Write(text), _)) => serde_json::from_str(text).expect("JSON"),
        other => panic!("not a write: {other:?}"),
    }
}

/// When the decisions are made, in milliseconds since the epoch.
const NOW: u64 = 1_000_000_000;
const STACK: &str = "arn:aws:cloudformation:us-west-2:123456789012:stack/platform/8e3c";
const OTHER_STACK: &str = "arn:aws:cloudformation:us-west-2:123456789012:stack/team-b/1f2a";

/// The resource a test request acts for.
fn me(tag: &str) -> Holder {
    holder(tag, STACK, "Grants")
}

fn holder(tag: &str, stack: &str, logical: &str) -> Holder {
    Holder {
        tag: tag.into(),
        stack: stack.into(),
        logical: logical.into(),
    }
}

/// The planner for a Create or Update, as the lifecycle asks it.
fn decide(
    approach: &Approach,
    desired: &Desired,
    live: Option<&str>,
    record: &Record,
    me: &Me,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    plan(
        &Intent::Apply {
            approach,
            desired,
            me,
        },
        record,
        live,
        now_ms,
    )
}

/// The planner for a statement resource's Delete (resource `tag` of the test stack).
fn after_delete(
    live: Option<&str>,
    record: &Record,
    tag: &str,
    sids: &[String],
    now_ms: u64,
) -> (Next, Record) {
    let me = me(tag);
    let planned = plan(
        &Intent::DeleteStatements { me: &me, sids },
        record,
        live,
        now_ms,
    )
    .expect("a delete is never refused");
    (planned.next, planned.record)
}

/// The planner for a whole-policy resource's Delete.
fn after_whole(live: Option<&str>, record: &Record, me: &Me) -> Plan {
    plan(&Intent::DeleteWhole { me }, record, live, NOW).expect("a delete is never refused")
}

/// The planner for a failed Create's Delete: `None` when the record holds nothing under
/// the tag.
fn after_failed_create(
    live: Option<&str>,
    record: &Record,
    tag: &str,
    now_ms: u64,
) -> Option<(Next, Record)> {
    if !holds_under(record, tag) {
        return None;
    }
    let planned = plan(&Intent::FailedCreate { tag }, record, live, now_ms).expect("never refused");
    let mut after = planned.record;
    after.written_ms = None;
    Some((planned.next, after))
}

/// The next document and whether it adopted, for a request of resource `t0`.
fn run(
    approach: &Approach,
    desired: &Desired,
    live: Option<&str>,
    record: &Record,
) -> Result<(Next, bool), Refusal> {
    decide(approach, desired, live, record, &me("t0"), NOW).map(|d| (d.next, d.adopted))
}

/// A record in which `holder` holds `statement` under its Sid.
fn holding(record: &mut Record, statement: &Value, holder: Holder) {
    let sid = sid_of(statement).expect("a Sid").to_owned();
    record.statements.insert(
        sid,
        Held {
            holder,
            statement: Some(statement.to_string()),
            ..Held::default()
        },
    );
}

const REORDERED: &str = r#"{"Statement":[{"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Effect":"Allow"}],"Version":"2012-10-17"}"#;
const OTHER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}"#;

fn keep(adopted: bool) -> Result<(Next, bool), Refusal> {
    Ok((Next::Keep, adopted))
}

#[test]
fn a_whole_policy_create_writes_keeps_refuses_or_adopts() {
    let d = whole(false);
    let compact = d.policy().expect("whole").compact().to_owned();
    let write = |adopted| Ok((Next::Write(compact.clone()), adopted));
    assert_eq!(
        run(&Approach::Create, &d, None, &Record::default()),
        write(false)
    );
    assert_eq!(
        run(&Approach::Create, &d, Some(REORDERED), &Record::default()),
        keep(false)
    );
    assert_eq!(
        run(&Approach::Create, &d, Some(OTHER), &Record::default()),
        Err(Refusal::AlreadyHasPolicy)
    );
    assert_eq!(
        run(
            &Approach::Create,
            &whole(true),
            Some(OTHER),
            &Record::default()
        ),
        write(true)
    );
    assert_eq!(
        run(
            &Approach::Create,
            &whole(true),
            Some(REORDERED),
            &Record::default()
        ),
        keep(true)
    );
}

#[test]
fn a_whole_policy_update_writes_unless_equivalent_and_rewrites_a_deleted_policy() {
    let d = whole(false);
    assert_eq!(
        run(
            &Approach::UpdateInPlace,
            &d,
            Some(REORDERED),
            &Record::default()
        ),
        keep(false)
    );
    assert!(matches!(
        run(
            &Approach::UpdateInPlace,
            &d,
            Some(OTHER),
            &Record::default()
        ),
        Ok((Next::Write(_), false))
    ));
    assert!(matches!(
        run(&Approach::UpdateInPlace, &d, None, &Record::default()),
        Ok((Next::Write(_), false))
    ));
    // Live text that is not JSON is never equivalent.
    assert!(matches!(
        run(
            &Approach::UpdateInPlace,
            &d,
            Some("garbage"),
            &Record::default()
        ),
        Ok((Next::Write(_), _))
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
        run(&replace, &d, Some(OTHER), &Record::default()),
        Ok((_, true))
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
    let next = written(&run(&Approach::Create, &d, Some(&live), &Record::default()));
    assert_eq!(
        next["Version"], "2008-10-17",
        "an existing policy keeps its Version"
    );
    let list = next["Statement"].as_array().expect("list");
    assert_eq!(list[0], console);
    assert_eq!(list[1], grant("Team1", "111122223333"));
    assert_eq!(list[2]["Sid"], "Team2");
    // A new policy starts at 2012-10-17.
    let fresh = written(&run(&Approach::Create, &d, None, &Record::default()));
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
        run(&Approach::Create, &d, Some(&live), &Record::default()),
        keep(false)
    );
    let other = doc(&[grant("Team1", "999988887777")]);
    assert_eq!(
        run(&Approach::Create, &d, Some(&other), &Record::default()),
        Err(Refusal::SidsDiffer(vec!["Team1".into()]))
    );
    let taken = run(
        &Approach::Create,
        &statements(ours.clone(), true),
        Some(&other),
        &Record::default(),
    );
    assert!(matches!(taken, Ok((_, true))));
    assert_eq!(written(&taken)["Statement"], json!([ours]));
    // An update in place replaces its own statement without Adopt.
    let updated = run(
        &Approach::UpdateInPlace,
        &d,
        Some(&other),
        &Record::default(),
    );
    assert!(matches!(updated, Ok((_, false))));
}

#[test]
fn a_replacement_takes_its_predecessors_sids_without_adopt() {
    let predecessor =
        PhysicalId::parse("ecr-policy-statements/t1/Team1/registry-policy:us-west-2:123456789012");
    let old = grant("Team1", "999988887777");
    let other = doc(std::slice::from_ref(&old));
    let d = statements(grant("Team1", "111122223333"), false);
    // The record says the predecessor holds it (as another stack's resource would not).
    let mut record = Record::default();
    holding(&mut record, &old, holder("t1", OTHER_STACK, "Old"));
    let replaced = run(
        &Approach::Replace { predecessor },
        &d,
        Some(&other),
        &record,
    );
    assert!(
        matches!(replaced, Ok((Next::Write(_), false))),
        "{replaced:?}"
    );
}

#[test]
fn a_merge_over_the_size_limit_says_how_long_it_would_be() {
    let big = |sid: &str| json!({"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Condition": {"StringEquals": {"aws:PrincipalTag/x": "y".repeat(6000)}}});
    let live = doc(&[big("Other")]);
    let d = statements(big("Ours"), false);
    match run(&Approach::Create, &d, Some(&live), &Record::default()) {
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
    let mut record = Record::default();
    holding(&mut record, &grant("A", "111122223333"), me("t1"));
    holding(&mut record, &grant("B", "111122223333"), me("t2"));
    let (next, after) = after_delete(Some(&live), &record, "t1", &sids, NOW);
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(
                v["Statement"],
                json!([grant("Console", "444455556666"), grant("B", "111122223333")])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(after.holder_of("B"), Some("t2"));
    assert_eq!(after.holder_of("A"), None);
    assert!(
        after.removed.contains_key("A"),
        "A is remembered as removed"
    );
    let only_ours = doc(&[grant("A", "111122223333")]);
    assert_eq!(
        after_delete(Some(&only_ours), &Record::default(), "t1", &sids, NOW).0,
        Next::Delete
    );
    assert_eq!(
        after_delete(None, &Record::default(), "t1", &sids, NOW).0,
        Next::Keep
    );
    let none_of_ours = doc(&[grant("Console", "444455556666")]);
    assert_eq!(
        after_delete(Some(&none_of_ours), &Record::default(), "t1", &sids, NOW).0,
        Next::Keep
    );
}

#[test]
fn delete_touches_nothing_for_ids_it_did_not_issue() {
    assert_eq!(
        plan_delete("failed-create:5f0c"),
        DeletePlan::FailedCreate {
            request_id: "5f0c".into()
        }
    );
    for id in [
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
        let merged = match run(&Approach::Create, &d, live.as_deref(), &Record::default()) {
            Ok((Next::Write(text), _)) => text,
            other => panic!("{other:?}"),
        };
        let ecr_text = as_ecr_returns(&merged);
        prop_assert_eq!(run(&Approach::Create, &d, Some(&ecr_text), &Record::default()), keep(false));
        prop_assert_eq!(run(&Approach::UpdateInPlace, &d, Some(&ecr_text), &Record::default()), keep(false));
        let sids = d.statements().expect("statements").sids();
        let record = decide(&Approach::Create, &d, live.as_deref(), &Record::default(), &me("t0"), NOW).expect("merged").record;
        let (next, after) = after_delete(Some(&ecr_text), &record, "t0", &sids, NOW);
        match next {
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
        prop_assert!(after.statements.is_empty());
    }
}

#[test]
fn a_sid_another_resource_took_over_is_not_rewritten_without_adopt() {
    let mine = grant("Team1", "111122223333");
    let theirs_statement = grant("Team1", "999988887777");
    let theirs = doc(std::slice::from_ref(&theirs_statement));
    let d = statements(mine.clone(), false);
    let mut record = Record::default();
    holding(
        &mut record,
        &theirs_statement,
        holder("t2", OTHER_STACK, "Taker"),
    );
    // An update in place of t1, after t2 took Team1 over with Adopt.
    let as_t1 = |approach: &Approach, d: &Desired, record: &Record| {
        decide(approach, d, Some(&theirs), record, &me("t1"), NOW).map(|d| (d.next, d.adopted))
    };
    // It holds nothing there any more: nothing is written, and the Update (or a rollback)
    // succeeds with a warning naming the new holder, never wedging the stack.
    let displaced = decide(
        &Approach::UpdateInPlace,
        &d,
        Some(&theirs),
        &record,
        &me("t1"),
        NOW,
    )
    .expect("never refused");
    assert_eq!(displaced.next, Next::Keep);
    assert!(
        displaced.warnings[0].contains("Taker"),
        "{:?}",
        displaced.warnings
    );
    assert_eq!(displaced.record.holder_of("Team1"), Some("t2"));
    // Still its own: rewritten in place.
    holding(&mut record, &theirs_statement, me("t1"));
    assert!(matches!(
        as_t1(&Approach::UpdateInPlace, &d, &record),
        Ok((Next::Write(_), false))
    ));
    // A replacement takes its predecessor's Sid only while the predecessor holds it.
    let predecessor =
        PhysicalId::parse("ecr-policy-statements/t1/Team1/registry-policy:us-west-2:123456789012");
    let replace = Approach::Replace { predecessor };
    let as_t3 = |d: &Desired, record: &Record| {
        decide(
            &replace,
            d,
            Some(&theirs),
            record,
            &holder("t3", OTHER_STACK, "New"),
            NOW,
        )
        .map(|d| (d.next, d.adopted))
    };
    assert!(matches!(as_t3(&d, &record), Ok((Next::Write(_), false))));
    holding(
        &mut record,
        &theirs_statement,
        holder("t2", OTHER_STACK, "Taker"),
    );
    assert_eq!(
        as_t3(&d, &record),
        Err(Refusal::HeldBy(vec![(
            "Team1".into(),
            holder("t2", OTHER_STACK, "Taker")
        )]))
    );
    // An Update in place takes nothing back, even with Adopt: only a Create (or a
    // replacement) moves ownership.
    let adopting = statements(mine, true);
    assert_eq!(
        as_t1(&Approach::UpdateInPlace, &adopting, &record),
        Ok((Next::Keep, false))
    );
    assert!(matches!(
        decide(
            &Approach::Create,
            &adopting,
            Some(&theirs),
            &record,
            &me("t5"),
            NOW
        )
        .map(|d| (d.next, d.adopted)),
        Ok((Next::Write(_), true))
    ));
}

#[test]
fn an_identical_statement_another_stack_holds_is_refused_without_adopt() {
    // Sequence 1 of issue 15: S2 creating the Sid A that S1 holds, with the same content.
    let a = grant("A", "111122223333");
    let live = doc(std::slice::from_ref(&a));
    let mut record = Record::default();
    holding(&mut record, &a, holder("s1", OTHER_STACK, "GrantA"));
    let d = statements(a.clone(), false);
    assert_eq!(
        run(&Approach::Create, &d, Some(&live), &record),
        Err(Refusal::HeldBy(vec![(
            "A".into(),
            holder("s1", OTHER_STACK, "GrantA")
        )]))
    );
    // With Adopt it moves, and the record says so.
    let taken = decide(
        &Approach::Create,
        &statements(a.clone(), true),
        Some(&live),
        &record,
        &me("t0"),
        NOW,
    )
    .expect("adopted");
    assert_eq!((taken.next, taken.adopted), (Next::Keep, true));
    assert_eq!(taken.record.holder_of("A"), Some("t0"));
    // A logical id renamed in the same stack takes equivalent content without Adopt...
    holding(&mut record, &a, holder("s1", STACK, "OldName"));
    let renamed =
        decide(&Approach::Create, &d, Some(&live), &record, &me("t0"), NOW).expect("renamed");
    assert_eq!((renamed.next, renamed.adopted), (Next::Keep, false));
    assert_eq!(renamed.record.holder_of("A"), Some("t0"));
    // ...but not content that differs.
    let changed = statements(grant("A", "444455556666"), false);
    assert!(matches!(
        run(&Approach::Create, &changed, Some(&live), &record),
        Err(Refusal::HeldBy(_))
    ));
    // A duplicate delivery of the holder's own Create is the same owner.
    holding(&mut record, &a, me("t0"));
    assert_eq!(
        run(&Approach::Create, &d, Some(&live), &record),
        keep(false)
    );
}

#[test]
fn an_identical_whole_policy_another_resource_owns_is_refused_without_adopt() {
    // Sequence 2 of issue 15.
    let d = whole(false);
    let text = d.policy().expect("whole").compact().to_owned();
    let record = Record {
        owner: Some(Owned {
            holder: holder("s1", OTHER_STACK, "RegistryPolicy"),
            policy: text.clone(),
            prior: None,
            ..Default::default()
        }),
        ..Record::default()
    };
    assert_eq!(
        run(&Approach::Create, &d, Some(REORDERED), &record),
        Err(Refusal::OwnedBy {
            holder: holder("s1", OTHER_STACK, "RegistryPolicy"),
            differs: false
        })
    );
    assert_eq!(
        run(&Approach::Create, &whole(true), Some(REORDERED), &record),
        keep(true)
    );
    // Its Delete then leaves the policy to the new owner.
    let taken = decide(
        &Approach::Create,
        &whole(true),
        Some(REORDERED),
        &record,
        &me("t0"),
        NOW,
    )
    .expect("adopted")
    .record;
    let former = after_whole(
        Some(REORDERED),
        &taken,
        &holder("", OTHER_STACK, "RegistryPolicy"),
    );
    assert_eq!(former.next, Next::Keep);
    assert!(
        former.warnings[0].contains("Grants"),
        "{:?}",
        former.warnings
    );
    assert_eq!(
        after_whole(Some(REORDERED), &taken, &holder("", STACK, "Grants")).next,
        Next::Write(text.clone()),
        "the new owner's Delete hands the policy back to the one it took it from"
    );
    // A rollback (an update in place) of the owner: the same resource, its tag kept.
    let mine = decide(
        &Approach::UpdateInPlace,
        &d,
        Some(REORDERED),
        &taken,
        &me("t9"),
        NOW,
    )
    .expect("own");
    assert_eq!(mine.next, Next::Keep);
    assert_eq!(mine.record.owner.map(|o| o.holder.tag), Some("t0".into()));
}

#[test]
fn a_whole_policy_is_written_when_the_read_lags_the_record() {
    // What the record says was written last differs from what is asked: a read showing the
    // asked-for policy is an old one, and the write is not skipped.
    let d = whole(false);
    let record = Record {
        owner: Some(Owned {
            holder: me("t0"),
            policy: OTHER.into(),
            prior: None,
            ..Default::default()
        }),
        ..Record::default()
    };
    assert!(matches!(
        run(&Approach::UpdateInPlace, &d, Some(REORDERED), &record),
        Ok((Next::Write(_), false))
    ));
}

#[test]
fn a_move_onto_a_target_with_a_differing_statement_needs_adopt() {
    // Sequence 3 of issue 15: repo-b has its own AllowPull, nobody's in the record.
    let predecessor = PhysicalId::parse(
        "ecr-policy-statements/t1/AllowPull/registry-policy:eu-west-1:123456789012",
    );
    let theirs = doc(&[grant("AllowPull", "999988887777")]);
    let d = statements(grant("AllowPull", "111122223333"), false);
    assert_eq!(
        run(
            &Approach::Replace { predecessor },
            &d,
            Some(&theirs),
            &Record::default()
        ),
        Err(Refusal::SidsDiffer(vec!["AllowPull".into()]))
    );
}

#[test]
fn held_statements_come_from_the_record_whatever_the_read_shows() {
    // Sequence 4 of issue 15: the read lags and shows neither B (written just before) nor
    // the removal of C (removed just before).
    let b = grant("B", "444455556666");
    let c = grant("C", "777788889999");
    let console = grant("Console", "999988887777");
    let lagging = doc(&[console.clone(), c.clone()]);
    let mut record = Record::default();
    holding(&mut record, &b, holder("s2", OTHER_STACK, "GrantB"));
    record.removed.insert(
        "C".into(),
        Removed {
            statement: c.to_string(),
            at_ms: NOW - 5_000,
            ..Default::default()
        },
    );
    let a = grant("A", "111122223333");
    let written_doc = written(&run(
        &Approach::Create,
        &statements(a.clone(), false),
        Some(&lagging),
        &record,
    ));
    assert_eq!(written_doc["Statement"], json!([console, b, a]));
    // Long after, a statement with C's Sid is the console's again.
    record.removed.get_mut("C").expect("C").at_ms = NOW - REMOVED_KEPT_MS - 1;
    let later = written(&run(
        &Approach::Create,
        &statements(grant("A", "111122223333"), false),
        Some(&lagging),
        &record,
    ));
    assert_eq!(later["Statement"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_failed_creates_delete_takes_out_only_what_landed_under_its_request() {
    // Sequence 9 of issue 15.
    let ours = grant("Late", "111122223333");
    let other = grant("Kept", "444455556666");
    let console = grant("Console", "999988887777");
    let mut record = Record::default();
    holding(&mut record, &ours, me("r9"));
    holding(&mut record, &other, holder("s2", OTHER_STACK, "GrantKept"));
    // The write landed after the FAILED answer.
    let landed = doc(&[console.clone(), other.clone(), ours.clone()]);
    let (next, after) =
        after_failed_create(Some(&landed), &record, "r9", NOW).expect("something to undo");
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([console, other]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(after.holder_of("Late"), None);
    assert_eq!(after.holder_of("Kept"), Some("s2"));
    // A read that does not show it cannot tell that it never landed (reads lag): the
    // record decides, and the same document is written, the record forgetting it.
    let not_landed = doc(&[console.clone(), other.clone()]);
    let (next, after) = after_failed_create(Some(&not_landed), &record, "r9", NOW).expect("held");
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([console, other]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(after.holder_of("Late"), None);
    // Nothing held under another request's tag.
    assert_eq!(after_failed_create(Some(&landed), &record, "r8", NOW), None);
    // A whole policy put back as it was before the failed Create took it over.
    let d = whole(true);
    let taken = decide(
        &Approach::Create,
        &d,
        Some(OTHER),
        &Record::default(),
        &me("r9"),
        NOW,
    )
    .expect("adopted");
    let (next, after) =
        after_failed_create(Some(REORDERED), &taken.record, "r9", NOW).expect("owned");
    assert_eq!(next, Next::Write(OTHER.into()));
    assert_eq!(after.owner, None);
}

#[test]
fn removals_older_than_any_lag_are_forgotten_on_the_next_change() {
    let mut record = Record::default();
    for (sid, at_ms) in [("Old", NOW - REMOVED_KEPT_MS - 1), ("Recent", NOW - 1_000)] {
        record.removed.insert(
            sid.into(),
            Removed {
                statement: grant(sid, "111122223333").to_string(),
                at_ms,
                ..Default::default()
            },
        );
    }
    let d = statements(grant("A", "444455556666"), false);
    let after = decide(&Approach::Create, &d, None, &record, &me("t0"), NOW)
        .expect("added")
        .record;
    assert_eq!(
        after.removed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Recent"]
    );
    let (_, after) = after_delete(None, &record, "t0", &["A".into()], NOW);
    assert!(!after.removed.contains_key("Old"));
}

#[test]
fn a_former_holders_update_that_asks_for_what_is_there_changes_nothing() {
    // t2 took Team1 over with Adopt; t1's rollback asks for the same statement.
    let statement = grant("Team1", "111122223333");
    let live = doc(std::slice::from_ref(&statement));
    let mut record = Record::default();
    holding(&mut record, &statement, holder("t2", OTHER_STACK, "Taker"));
    let d = statements(statement, false);
    let kept = decide(
        &Approach::UpdateInPlace,
        &d,
        Some(&live),
        &record,
        &me("t1"),
        NOW,
    )
    .expect("kept, not refused");
    assert_eq!((kept.next, kept.adopted), (Next::Keep, false));
    assert_eq!(
        kept.record.holder_of("Team1"),
        Some("t2"),
        "t2 still holds it"
    );
}

#[test]
fn adopted_is_reported_only_by_a_create_that_takes_something() {
    // An equivalent statement nobody holds, taken with Adopt: a Create reports it...
    let statement = grant("Team1", "111122223333");
    let live = doc(std::slice::from_ref(&statement));
    let adopting = statements(statement.clone(), true);
    assert_eq!(
        run(
            &Approach::Create,
            &adopting,
            Some(&live),
            &Record::default()
        ),
        keep(true)
    );
    // ...without Adopt it is kept all the same, not reported...
    let plain = statements(statement, false);
    assert_eq!(
        run(&Approach::Create, &plain, Some(&live), &Record::default()),
        keep(false)
    );
    // ...and the Create half of a replacement does not report it.
    let predecessor =
        PhysicalId::parse("ecr-policy-statements/t1/Other/registry-policy:us-west-2:123456789012");
    assert_eq!(
        run(
            &Approach::Replace { predecessor },
            &adopting,
            Some(&live),
            &Record::default()
        ),
        keep(false)
    );
}

#[test]
fn a_format_1_holders_delete_remembers_the_statement_it_removed_from_the_read() {
    let a = grant("A", "111122223333");
    let live = doc(&[a.clone(), grant("Console", "444455556666")]);
    let mut record = Record::default();
    record.statements.insert(
        "A".into(),
        Held {
            holder: Holder {
                tag: "t1".into(),
                ..Holder::default()
            },
            ..Held::default()
        },
    );
    let (_, after) = after_delete(Some(&live), &record, "t1", &["A".into()], NOW);
    assert_eq!(
        after.removed.get("A").map(|r| r.statement.clone()),
        Some(a.to_string())
    );
}

#[test]
fn a_whole_policy_delete_forgets_the_owner_and_remembers_what_it_deleted() {
    let record = Record {
        owner: Some(Owned {
            holder: me("t0"),
            policy: OTHER.into(),
            prior: None,
            ..Default::default()
        }),
        ..Record::default()
    };
    let planned = after_whole(Some(OTHER), &record, &holder("", STACK, "Grants"));
    assert_eq!(planned.next, Next::Delete);
    assert_eq!(planned.record.owner, None);
    assert_eq!(
        planned
            .record
            .removed_policy
            .map(|r| (r.statement, r.at_ms)),
        Some((OTHER.to_owned(), NOW))
    );
}

#[test]
fn a_failed_creates_delete_leaves_a_sid_whose_write_never_landed_and_puts_back_what_it_took() {
    let ours = grant("Late", "111122223333");
    let theirs = grant("Late", "999988887777");
    let other = grant("Kept", "444455556666");
    let mut record = Record::default();
    record.statements.insert(
        "Late".into(),
        Held {
            holder: me("r9"),
            statement: Some(ours.to_string()),
            prior: Some(Prior {
                holder: None,
                text: theirs.to_string(),
            }),
            ..Default::default()
        },
    );
    // The live Late is still the one it replaced: the read may lag, so what it replaced is
    // written again in its place (the same document), and the record forgets the Sid.
    let not_landed = doc(&[theirs.clone(), other.clone()]);
    let (next, after) = after_failed_create(Some(&not_landed), &record, "r9", NOW).expect("held");
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([theirs, other]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(after.holder_of("Late"), None);
    // It landed: what it replaced goes back in its place, the other statement untouched.
    let landed = doc(&[other.clone(), ours]);
    match after_failed_create(Some(&landed), &record, "r9", NOW)
        .expect("held")
        .0
    {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([other, theirs]));
        }
        next => panic!("{next:?}"),
    }
    // Without a prior, a Sid with someone else's content is left as it is: the document
    // written keeps it (a write that landed and a lagging read would otherwise keep ours).
    record.statements.get_mut("Late").expect("held").prior = None;
    let (next, after) = after_failed_create(Some(&not_landed), &record, "r9", NOW).expect("held");
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([theirs, other]));
        }
        next => panic!("{next:?}"),
    }
    assert!(
        after.removed.contains_key("Late"),
        "its own version is kept out as removed"
    );
}

#[test]
fn only_a_tag_that_holds_something_is_worth_a_cleanup() {
    let mut record = Record::default();
    assert!(!holds_under(&record, "r9"));
    holding(&mut record, &grant("A", "111122223333"), me("r8"));
    assert!(!holds_under(&record, "r9"));
    assert!(holds_under(&record, "r8"));
    record.owner = Some(Owned {
        holder: me("r7"),
        policy: OTHER.into(),
        prior: None,
        ..Default::default()
    });
    assert!(holds_under(&record, "r7"));
}

#[test]
fn a_statement_id_of_exactly_1024_bytes_fits_and_one_more_does_not() {
    let id_of = |sid_len: usize| {
        let sid = "S".repeat(sid_len);
        let d = statements(grant(&sid, "111122223333"), false);
        fits(describe(&d, ACCOUNT.into(), false, false, "t0", ""))
    };
    let fixed = match id_of(1) {
        Ok(applied) => applied.physical_id.len() - 1,
        Err(e) => panic!("{e}"),
    };
    let longest = MAX_PHYSICAL_ID_BYTES - fixed;
    assert!(matches!(id_of(longest), Ok(a) if a.physical_id.len() == MAX_PHYSICAL_ID_BYTES));
    assert!(matches!(
        id_of(longest + 1),
        Err(Failure::IdTooLong(n)) if n == MAX_PHYSICAL_ID_BYTES + 1
    ));
}

#[test]
fn a_whole_policy_written_again_is_no_longer_removed_lately_by_sid() {
    // A failed create's Delete removed Audit moments ago; a whole policy now writes the same
    // statement, and a statement resource ends its ownership: Audit stays, nobody's.
    let mut record = Record::default();
    history::remove_sid(
        &mut record,
        "Audit",
        Some(grant("Audit", "1").to_string()),
        NOW,
    );
    let policy = doc(&[grant("Audit", "1")]);
    let desired = Desired {
        content: Content::Policy(Policy::from_live(&policy).expect("valid")),
        ..whole(false)
    };
    let owner = me("w");
    let created = decide(&Approach::Create, &desired, None, &record, &owner, NOW).expect("planned");
    assert!(!created.record.removed.contains_key("Audit"));
    let taker = holder("s", OTHER_STACK, "Pull");
    let joined = decide(
        &Approach::Create,
        &statements(json!([grant("Ci", "2")]), true),
        Some(&policy),
        &created.record,
        &taker,
        NOW,
    )
    .expect("planned");
    let Next::Write(text) = &joined.next else {
        panic!("a write: {:?}", joined.next)
    };
    let sids: Vec<String> = Policy::from_live(text)
        .expect("policy")
        .statements()
        .iter()
        .filter_map(sid_of)
        .map(str::to_owned)
        .collect();
    assert_eq!(sids, ["Audit", "Ci"]);
}

#[test]
fn a_failed_whole_create_puts_back_what_nobody_held_beside_the_sids_it_hands_back() {
    // Statement resource b holds S; the console's C is nobody's. A whole-policy Create
    // (Adopt) takes the target, and fails: its Delete hands S back to b and puts C back.
    let b = holder("b", OTHER_STACK, "Grant");
    let mut record = Record::default();
    record.statements.insert(
        "S".into(),
        Held {
            holder: b.clone(),
            statement: Some(grant("S", "1").to_string()),
            ..Held::default()
        },
    );
    let before = doc(&[grant("S", "1"), grant("C", "9")]);
    let failed = me("f");
    let created = decide(
        &Approach::Create,
        &whole(true),
        Some(&before),
        &record,
        &failed,
        NOW,
    )
    .expect("planned");
    let after_write = match &created.next {
        Next::Write(text) => text.clone(),
        other => panic!("a write: {other:?}"),
    };
    let (next, after) =
        after_failed_create(Some(&after_write), &created.record, "f", NOW).expect("held");
    let Next::Write(text) = next else {
        panic!("a write: {next:?}")
    };
    let mut sids: Vec<String> = Policy::from_live(&text)
        .expect("policy")
        .statements()
        .iter()
        .filter_map(sid_of)
        .map(str::to_owned)
        .collect();
    sids.sort();
    assert_eq!(sids, ["C", "S"]);
    assert_eq!(after.statements["S"].holder, b);
    assert!(after.owner.is_none());
}

#[test]
fn a_failed_whole_create_whose_ownership_a_statement_ended_puts_back_what_it_replaced() {
    // The console's C was there; a whole-policy Create (Adopt) replaced it and failed with
    // its outcome unknown; a statement resource then ended its ownership. The failed
    // create's Delete takes out its statement and puts C back beside the statement.
    let before = doc(&[grant("C", "9")]);
    let failed = me("f");
    let created = decide(
        &Approach::Create,
        &whole(true),
        Some(&before),
        &Record::default(),
        &failed,
        NOW,
    )
    .expect("planned");
    let Next::Write(whole_text) = &created.next else {
        panic!("a write")
    };
    let taker = holder("s", OTHER_STACK, "Pull");
    let joined = decide(
        &Approach::Create,
        &statements(json!([grant("S", "2")]), true),
        Some(whole_text),
        &created.record,
        &taker,
        NOW,
    )
    .expect("planned");
    let Next::Write(joined_text) = &joined.next else {
        panic!("a write")
    };
    let (next, after) =
        after_failed_create(Some(joined_text), &joined.record, "f", NOW).expect("held");
    let Next::Write(text) = next else {
        panic!("a write: {next:?}")
    };
    let policy = Policy::from_live(&text).expect("policy");
    let mut sids: Vec<&str> = policy.statements().iter().filter_map(sid_of).collect();
    sids.sort_unstable();
    assert_eq!(sids, ["C", "S"]);
    assert!(after.displaced.is_empty());
}

#[test]
fn a_whole_policy_owned_again_after_a_failed_statement_create_still_puts_back_what_it_adopted() {
    // A whole policy with `Adopt` replaced a statement nobody held (`kept`), and its Create
    // failed with its write's outcome unknown; a statement Create whose outcome is unknown
    // too ended that ownership. The statement's failed Create's Delete makes the policy
    // owned again; its own failed Create's Delete then puts `kept` back.
    let kept = grant("Kept", "444455556666");
    let deploy = grant("Deploy", "111122223333");
    let audit = grant("Audit", "777788889999");
    let whole = doc(std::slice::from_ref(&deploy));
    let mut record = Record::default();
    holding(&mut record, &audit, me("s3"));
    record.displaced.push(Displaced {
        holder: me("p2"),
        sid: None,
        text: whole.clone(),
        by: Some(me("s3")),
        ended: true,
        prior: Some(Prior {
            holder: None,
            text: doc(std::slice::from_ref(&kept)),
        }),
        ..Displaced::default()
    });
    let live = doc(&[deploy.clone(), audit]);
    let (_, owned_again) = after_failed_create(Some(&live), &record, "s3", NOW).expect("held");
    assert_eq!(
        owned_again.owner.as_ref().map(|o| o.holder.tag.as_str()),
        Some("p2")
    );
    let (next, _) = after_failed_create(Some(&whole), &owned_again, "p2", NOW).expect("owned");
    match next {
        Next::Write(text) => {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(v["Statement"], json!([kept]));
        }
        next => panic!("{next:?}"),
    }
}

#[test]
fn a_whole_policy_create_neither_remembers_nor_undoes_to_what_the_provider_removed_lately() {
    // The provider deleted `gone` less than a minute ago; a read lagging behind that delete
    // still shows it. A whole-policy Create with `Adopt` replaces nothing, as far as the
    // provider can trust: its failed Create's Delete and its undo must not write it back.
    let gone = doc(&[grant("Audit", "111122223332")]);
    let mut record = Record::default();
    history::remove_policy(&mut record, &gone, &[], NOW - 1_000);
    let planned = decide(
        &Approach::Create,
        &whole(true),
        Some(&gone),
        &record,
        &me("t7"),
        NOW,
    )
    .expect("adopts");
    assert_eq!(
        planned.record.owner.as_ref().and_then(|o| o.prior.clone()),
        None
    );
    assert_eq!(planned.undo, Some(Next::Delete));
    // Beside a statement nobody holds that the provider did not remove, only that one is
    // what the write replaces.
    let kept = grant("Kept", "444455556666");
    let shown = doc(&[grant("Audit", "111122223332"), kept.clone()]);
    let planned = decide(
        &Approach::Create,
        &whole(true),
        Some(&shown),
        &record,
        &me("t7"),
        NOW,
    )
    .expect("adopts");
    let prior = planned.record.owner.and_then(|o| o.prior).expect("a prior");
    let v: Value = serde_json::from_str(&prior.text).expect("JSON");
    assert_eq!(v["Statement"], json!([kept]));
    let Some(Next::Write(undo)) = planned.undo else {
        panic!("{:?}", planned.undo);
    };
    let v: Value = serde_json::from_str(&undo).expect("JSON");
    assert_eq!(v["Statement"], json!([kept]));
    // Nothing removed lately: the read as it is.
    let planned = decide(
        &Approach::Create,
        &whole(true),
        Some(&shown),
        &Record::default(),
        &me("t7"),
        NOW,
    )
    .expect("adopts");
    assert_eq!(
        planned.record.owner.and_then(|o| o.prior).map(|p| p.text),
        Some(shown.clone())
    );
    assert_eq!(planned.undo, Some(Next::Write(shown)));
}

#[test]
fn a_failed_statement_creates_delete_gives_no_sid_to_an_ended_whole_policy_even_once_taken_on() {
    // Whole policy `pull` declares Audit, but a statement resource ended its ownership
    // before it did, and nobody held Audit since. Statement Create `b` (Adopt) took Audit
    // out of `pull`'s policy, then failed; whole policy `sh` (Adopt) took the target over
    // from `b` meanwhile. `b`'s failed Create's Delete: `pull` never had Audit, so `sh`'s
    // Delete hands nothing back.
    let pull = holder("p1", STACK, "Pull");
    let b = holder("b", OTHER_STACK, "Policy");
    let sh = holder("sh", OTHER_STACK, "Shared");
    let audit = grant("Audit", "111122223332");
    let ci = grant("Ci", "111122223333");
    let mut record = Record::default();
    record.displaced.push(Displaced {
        holder: pull.clone(),
        sid: None,
        text: doc(&[audit.clone(), grant("Deploy", "444455556666")]),
        by: Some(holder("p4", OTHER_STACK, "Policy")),
        ended: true,
        ..Displaced::default()
    });
    record.displaced.push(Displaced {
        holder: pull,
        sid: Some("Audit".into()),
        text: String::new(),
        by: Some(b.clone()),
        ..Displaced::default()
    });
    record.displaced.push(Displaced {
        holder: b.clone(),
        sid: Some("Audit".into()),
        text: audit.to_string(),
        by: Some(sh.clone()),
        ..Displaced::default()
    });
    record.owner = Some(Owned {
        holder: sh.clone(),
        policy: doc(std::slice::from_ref(&ci)),
        ..Owned::default()
    });
    record.failed.push(crate::lock::Gone {
        holder: b,
        at_ms: NOW,
    });
    let failed_b = |record: &Record, live: &str| {
        plan(&Intent::FailedCreate { tag: "b" }, record, Some(live), NOW)
            .expect("never refused")
            .record
    };
    let live = doc(&[ci]);
    let after = failed_b(&record, &live);
    let audit_entries = |r: &Record| -> Vec<Displaced> {
        r.displaced
            .iter()
            .filter(|d| d.sid.as_deref() == Some("Audit"))
            .cloned()
            .collect()
    };
    assert_eq!(audit_entries(&after), []);
    let deleted = after_whole(Some(&live), &after, &sh);
    assert_eq!(deleted.next, Next::Delete);
    // A statement resource that took Audit from `b` took it from `pull`, which declares it:
    // it goes back to `pull` when that one goes.
    record.owner = None;
    let taker = holder("st", OTHER_STACK, "Statement");
    holding(&mut record, &audit, taker.clone());
    record.displaced.last_mut().expect("b's entry").by = Some(taker.clone());
    let after = failed_b(&record, &doc(&[audit]));
    let back_to: Vec<(String, Option<Holder>)> = audit_entries(&after)
        .into_iter()
        .map(|d| (d.holder.logical, d.by))
        .collect();
    assert_eq!(back_to, [("Pull".to_owned(), Some(taker))]);
}

#[test]
fn a_sid_removed_then_held_and_removed_again_keeps_every_removed_version_from_the_next_create() {
    // The provider removed Scan v1 (a prefix statement's Delete); another resource then
    // held it as v2 and was deleted too. A read lagging behind both may show v1: it is
    // the provider's own removal, not a statement nobody holds that a Create with the same
    // content finds there (and would put back, as what it replaced, if it failed).
    let v1 = grant("Scan", "111122223333");
    let v2 = grant("Scan", "111122223332");
    let mut record = Record::default();
    holding(&mut record, &v1, me("a"));
    history::remove_sid(&mut record, "Scan", None, NOW - 30_000);
    let taken = decide(
        &Approach::Create,
        &statements(json!([v2]), false),
        Some(&doc(&[])),
        &record,
        &me("b"),
        NOW - 20_000,
    )
    .expect("a Sid nobody holds");
    let earlier: Vec<&str> = taken.record.statements["Scan"]
        .earlier
        .iter()
        .map(|v| v.text.as_str())
        .collect();
    assert_eq!(earlier, [v1.to_string()]);
    let (_, record) = after_delete(
        Some(&doc(std::slice::from_ref(&v2))),
        &taken.record,
        "b",
        &["Scan".into()],
        NOW - 10_000,
    );
    let removed: Vec<&str> = record.removed["Scan"].versions().collect();
    assert_eq!(removed, [v2.to_string(), v1.to_string()]);
    // The read lags: it still shows v1.
    let planned = decide(
        &Approach::Create,
        &statements(json!([v1]), false),
        Some(&doc(std::slice::from_ref(&v1))),
        &record,
        &me("c"),
        NOW,
    )
    .expect("a Sid nobody holds");
    assert_eq!(planned.record.statements["Scan"].prior, None);
    assert!(matches!(planned.next, Next::Write(_)), "{:?}", planned.next);
}

#[test]
fn a_whole_policy_taking_held_statements_over_remembers_them_removed_whatever_the_read_shows() {
    // Statement resources hold Deploy (written lately as v1, then v2) and Shared; a whole
    // policy with `Adopt` takes the target over while reads lag behind those writes (the
    // read shows no policy). What the record says they hold is what the write replaces: a
    // later read still showing them is the provider's own removal, not statements nobody
    // holds for the next merge to keep.
    let deploy_v1 = grant("Deploy", "111122223331");
    let deploy_v2 = grant("Deploy", "111122223332");
    let shared = grant("Shared", "111122223333");
    let mut record = Record::default();
    holding(&mut record, &deploy_v2, me("s"));
    holding(&mut record, &shared, me("s"));
    record.statements.get_mut("Deploy").unwrap().earlier = vec![Version {
        text: deploy_v1.to_string(),
        at_ms: NOW - 5_000,
    }];
    let planned = decide(
        &Approach::Create,
        &whole(true),
        None,
        &record,
        &me("w"),
        NOW,
    )
    .expect("adopts");
    let removed = planned.record.removed_policy.expect("removed");
    let statements: Vec<Value> = removed
        .versions()
        .filter_map(history::parse)
        .flat_map(|doc| doc["Statement"].as_array().cloned().unwrap_or_default())
        .collect();
    for statement in [&deploy_v2, &shared, &deploy_v1] {
        assert!(
            statements
                .iter()
                .any(|s| statement_equivalent(s, statement)),
            "{statement} not in {statements:?}"
        );
    }
}

#[test]
fn a_sid_taken_by_adopt_keeps_the_version_it_replaced_as_an_earlier_one() {
    // P holds Shared as v3; Q takes it with Adopt as v2. A read lagging behind Q's write
    // shows v3: should P hold nothing here when Q goes (a failed Create's Delete after P's
    // own), v3 is the provider's removal, not a statement nobody holds.
    let v3 = grant("Shared", "111122223333");
    let v2 = grant("Shared", "111122223332");
    let mut record = Record::default();
    holding(&mut record, &v3, holder("p", "other-stack", "Pull"));
    let taken = decide(
        &Approach::Create,
        &statements(json!([v2]), true),
        Some(&doc(std::slice::from_ref(&v3))),
        &record,
        &me("q"),
        NOW,
    )
    .expect("adopts");
    assert!(taken.adopted);
    let earlier: Vec<&str> = taken.record.statements["Shared"]
        .earlier
        .iter()
        .map(|v| v.text.as_str())
        .collect();
    assert_eq!(earlier, [v3.to_string()]);
}
