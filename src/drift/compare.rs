//! How the live policy differs from the record (CONTRACT 13): held Sids missing or changed,
//! an owned whole policy changed or deleted. Statements nobody holds are never drift.

use crate::lock::Record;
use crate::plan;
use crate::policy::{Policy, sid_of, statement_equivalent};
use serde_json::Value;

/// What happened to an owned whole policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    Changed,
    Deleted,
}

impl Whole {
    pub fn as_str(self) -> &'static str {
        match self {
            Whole::Changed => "changed",
            Whole::Deleted => "deleted",
        }
    }
}

/// The drift of one target; empty when the live policy grants what the record says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Difference {
    /// Held Sids the live policy lacks.
    pub missing: Vec<String>,
    /// Held Sids whose live statement grants something else than the recorded one.
    pub changed: Vec<String>,
    /// The owned whole policy, changed or deleted.
    pub whole_policy: Option<Whole>,
}

impl Difference {
    pub fn is_drift(&self) -> bool {
        !self.missing.is_empty() || !self.changed.is_empty() || self.whole_policy.is_some()
    }
}

/// Compares the live policy text (`None`: no policy, or no repository) with the record.
/// What a Create answered FAILED announces is no resource's (CloudFormation deletes it):
/// neither drift nor restored.
pub fn difference(record: &Record, live: Option<&str>) -> Difference {
    let mut out = Difference::default();
    if let Some(owned) = record
        .owner
        .as_ref()
        .filter(|o| !record.failed_create(&o.holder.tag))
    {
        out.whole_policy = match live {
            None => Some(Whole::Deleted),
            Some(text) => match Policy::from_live(&owned.policy) {
                Some(recorded) if plan::equivalent(&recorded, text) => None,
                _ => Some(Whole::Changed),
            },
        };
    }
    let text = live;
    let live = live.and_then(Policy::from_live);
    let statements = live.as_ref().map(Policy::statements).unwrap_or_default();
    taken_by_failed_creates(record, text, statements, &mut out);
    let live_resources = record
        .statements
        .iter()
        .filter(|(_, held)| !record.failed_create(&held.holder.tag));
    for (sid, held) in live_resources {
        let found: Vec<&Value> = statements
            .iter()
            .filter(|s| sid_of(s) == Some(sid.as_str()))
            .collect();
        let recorded = held
            .statement
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok());
        match (found.as_slice(), recorded) {
            ([], _) => out.missing.push(sid.clone()),
            // A format-1 record knows the holder, not the statement: only its absence shows.
            (_, None) => {}
            ([one], Some(recorded)) if statement_equivalent(one, &recorded) => {}
            (_, Some(_)) => out.changed.push(sid.clone()),
        }
    }
    out
}

/// What resources held before a Create answered FAILED took it over (its take announced,
/// its write's outcome unknown): theirs still, for CloudFormation. Drift when the live
/// policy shows neither their version nor the failed Create's.
fn taken_by_failed_creates(
    record: &Record,
    text: Option<&str>,
    statements: &[Value],
    out: &mut Difference,
) {
    let failed = |h: &crate::lock::Holder| record.failed_create(&h.tag);
    let taken = record
        .displaced
        .iter()
        .filter(|d| d.by.as_ref().is_some_and(failed) && !failed(&d.holder) && !d.text.is_empty());
    // The statements failed Creates hold, as written.
    let theirs: Vec<Value> = (record.statements.values())
        .filter(|h| failed(&h.holder))
        .filter_map(|h| h.statement.as_deref())
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    if record.owner.as_ref().is_some_and(|o| !failed(&o.holder)) {
        // Owned whole by a live resource since: that one is what counts.
        return;
    }
    let owner = record.owner.as_ref();
    let owner_shown = owner.is_some_and(|o| {
        Policy::from_live(&o.policy).is_some_and(|p| text.is_some_and(|t| plan::equivalent(&p, t)))
    });
    for d in taken {
        let Some(sid) = &d.sid else {
            // A whole policy: as it declared it, or as the failed Create wrote it (its own
            // policy, or statements it added to this one when it ended that ownership).
            let shows = |policy: &str| {
                Policy::from_live(policy)
                    .is_some_and(|p| text.is_some_and(|t| plan::equivalent(&p, t)))
            };
            let with_theirs = Policy::from_live(&d.text).map(|p| {
                let mut statements = p.statements().to_vec();
                statements.retain(|s| !theirs.iter().any(|t| sid_of(t) == sid_of(s)));
                statements.extend(theirs.iter().cloned());
                serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
            });
            let fine = shows(&d.text)
                || owner.is_some_and(|o| shows(&o.policy))
                || (d.ended && with_theirs.is_some_and(|w| shows(&w)));
            if !fine {
                out.whole_policy = Some(if text.is_some() {
                    Whole::Changed
                } else {
                    Whole::Deleted
                });
            }
            continue;
        };
        if record
            .statements
            .get(sid)
            .is_some_and(|h| !failed(&h.holder))
        {
            // Held by a live resource since: compared as its.
            continue;
        }
        // The failed Create's version of that Sid: in its whole policy, or held by it.
        let written: Option<Option<Value>> = match owner {
            Some(o) => Some(Policy::from_live(&o.policy).and_then(|p| {
                p.statements()
                    .iter()
                    .find(|s| sid_of(s) == Some(sid.as_str()))
                    .cloned()
            })),
            None => (record.statements.get(sid))
                .filter(|h| failed(&h.holder))
                .map(|h| {
                    h.statement
                        .as_deref()
                        .and_then(|t| serde_json::from_str(t).ok())
                }),
        };
        let found: Vec<&Value> = statements
            .iter()
            .filter(|s| sid_of(s) == Some(sid.as_str()))
            .collect();
        let declared = serde_json::from_str::<Value>(&d.text).ok();
        let fits = |one: &Value| {
            declared
                .as_ref()
                .is_some_and(|v| statement_equivalent(one, v))
                || matches!(&written, Some(Some(v)) if statement_equivalent(one, v))
        };
        match found.as_slice() {
            // Absent: the failed Create's write left it out, if the live policy is that write.
            [] if matches!(written, Some(None)) && owner_shown => {}
            [] => out.missing.push(sid.clone()),
            [one] if fits(one) => {}
            _ => out.changed.push(sid.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{Held, Holder, Owned};
    use serde_json::json;

    fn grant(sid: &str, account: &str) -> Value {
        json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "ecr:BatchGetImage"})
    }

    fn holding(statements: &[Value]) -> Record {
        let mut record = Record::default();
        for statement in statements {
            record.statements.insert(
                sid_of(statement).unwrap().to_owned(),
                Held {
                    holder: Holder {
                        tag: "t".into(),
                        stack: "s".into(),
                        logical: "L".into(),
                    },
                    statement: Some(statement.to_string()),
                    prior: None,
                    ..Default::default()
                },
            );
        }
        record
    }

    fn policy(statements: Vec<Value>) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    #[test]
    fn held_statements_missing_or_changed_are_drift_and_nothing_else_is() {
        let record = holding(&[grant("A", "111111111111"), grant("B", "222222222222")]);
        let same = policy(vec![
            grant("B", "222222222222"),
            grant("Console", "333333333333"),
            grant("A", "111111111111"),
        ]);
        assert!(
            !difference(&record, Some(&same)).is_drift(),
            "order and others don't count"
        );

        let drifted = policy(vec![grant("B", "999999999999"), grant("Console", "3")]);
        assert_eq!(
            difference(&record, Some(&drifted)),
            Difference {
                missing: vec!["A".into()],
                changed: vec!["B".into()],
                whole_policy: None,
            }
        );
        let gone = difference(&record, None);
        assert_eq!(gone.missing, ["A", "B"]);
        assert!(gone.changed.is_empty() && gone.whole_policy.is_none());
        assert_eq!(difference(&record, Some("not json")).missing, ["A", "B"]);
    }

    #[test]
    fn a_held_sid_written_twice_is_changed() {
        let record = holding(&[grant("A", "111111111111")]);
        let twice = policy(vec![grant("A", "111111111111"), grant("A", "111111111111")]);
        assert_eq!(difference(&record, Some(&twice)).changed, ["A"]);
    }

    #[test]
    fn a_rewritten_but_equivalent_statement_is_not_drift() {
        let record = holding(&[grant("A", "111111111111")]);
        // ECR writes an account id back as its root ARN, and a one-item list as the item.
        let rewritten = json!({"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ["111111111111"]}, "Action": ["ecr:BatchGetImage"]});
        assert!(!difference(&record, Some(&policy(vec![rewritten]))).is_drift());
    }

    #[test]
    fn a_format_1_record_sees_only_missing_sids() {
        let mut record = holding(&[grant("A", "111111111111")]);
        record.statements.get_mut("A").unwrap().statement = None;
        let changed = policy(vec![grant("A", "999999999999")]);
        assert!(!difference(&record, Some(&changed)).is_drift());
        assert_eq!(difference(&record, Some(&policy(vec![]))).missing, ["A"]);
    }

    #[test]
    fn an_owned_policy_changed_or_deleted_is_drift() {
        let owned = policy(vec![grant("A", "111111111111")]);
        let record = Record {
            owner: Some(Owned {
                holder: Holder::default(),
                policy: owned.clone(),
                prior: None,
                ..Default::default()
            }),
            ..Record::default()
        };
        assert_eq!(difference(&record, Some(&owned)), Difference::default());
        let reordered = json!({"Statement": [grant("A", "111111111111")], "Version": "2012-10-17"});
        assert!(!difference(&record, Some(&reordered.to_string())).is_drift());
        let other = policy(vec![grant("A", "222222222222")]);
        assert_eq!(
            difference(&record, Some(&other)).whole_policy,
            Some(Whole::Changed)
        );
        assert_eq!(difference(&record, None).whole_policy, Some(Whole::Deleted));
        assert_eq!(Whole::Changed.as_str(), "changed");
        assert_eq!(Whole::Deleted.as_str(), "deleted");
    }

    #[test]
    fn an_empty_record_never_drifts() {
        let any = policy(vec![grant("A", "111111111111")]);
        assert!(!difference(&Record::default(), Some(&any)).is_drift());
        assert!(!difference(&Record::default(), None).is_drift());
    }

    /// A whole policy a Create answered FAILED wrote (its outcome unknown), over the
    /// statement S that resource B held: B's S, or the failed Create's, is no drift; S gone
    /// or changed to a third version is B's drift; nothing else is.
    #[test]
    fn what_a_failed_create_took_over_is_its_former_holders_still() {
        let b = Holder {
            tag: "b".into(),
            stack: "s".into(),
            logical: "B".into(),
        };
        let failed = Holder {
            tag: "f".into(),
            stack: "s".into(),
            logical: "F".into(),
        };
        let record = Record {
            owner: Some(Owned {
                holder: failed.clone(),
                policy: policy(vec![grant("S", "222222222222"), grant("T", "333333333333")]),
                ..Default::default()
            }),
            displaced: vec![crate::lock::Displaced {
                holder: b,
                sid: Some("S".into()),
                text: grant("S", "111111111111").to_string(),
                by: Some(failed.clone()),
                ..Default::default()
            }],
            failed: vec![crate::lock::Gone {
                holder: failed,
                at_ms: 0,
            }],
            ..Default::default()
        };
        let live = |statements: Vec<Value>| difference(&record, Some(&policy(statements)));
        assert!(!live(vec![grant("S", "111111111111")]).is_drift());
        assert!(!live(vec![grant("S", "222222222222"), grant("T", "333333333333")]).is_drift());
        assert!(!live(vec![grant("S", "111111111111"), grant("X", "444444444444")]).is_drift());
        assert_eq!(live(vec![]).missing, ["S"]);
        assert_eq!(live(vec![grant("S", "555555555555")]).changed, ["S"]);
        assert_eq!(difference(&record, None).missing, ["S"]);
        assert!(difference(&record, None).whole_policy.is_none());
    }

    /// A statement Create answered FAILED ended whole policy W's ownership (its take
    /// announced): W's policy, alone or with the failed Create's statement, is no drift;
    /// anything else is W's drift (seed 12359).
    #[test]
    fn a_whole_policy_a_failed_create_ended_is_still_judged_whole() {
        let failed = Holder {
            tag: "f".into(),
            stack: "s".into(),
            logical: "F".into(),
        };
        let theirs = grant("A", "222222222222");
        let mut record = holding(std::slice::from_ref(&theirs));
        for held in record.statements.values_mut() {
            held.holder = failed.clone();
        }
        record.displaced.push(crate::lock::Displaced {
            holder: Holder {
                tag: "w".into(),
                stack: "s".into(),
                logical: "W".into(),
            },
            text: policy(vec![grant("S", "111111111111")]),
            by: Some(failed.clone()),
            ended: true,
            ..Default::default()
        });
        record.failed.push(crate::lock::Gone {
            holder: failed,
            at_ms: 0,
        });
        let live = |statements: Vec<Value>| difference(&record, Some(&policy(statements)));
        assert!(!live(vec![grant("S", "111111111111")]).is_drift());
        assert!(!live(vec![grant("S", "111111111111"), theirs.clone()]).is_drift());
        let console = grant("C", "333333333333");
        assert_eq!(
            live(vec![grant("S", "111111111111"), console]).whole_policy,
            Some(Whole::Changed)
        );
        assert_eq!(difference(&record, None).whole_policy, Some(Whole::Deleted));
    }
}
