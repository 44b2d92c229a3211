//! What the record remembers of a target's past (CONTRACT 11), as plain functions over a
//! [`Record`]: who was displaced and may be handed something back, the versions the provider
//! wrote and removed lately (a lagging read may still show them), and when it last wrote.

use crate::lock::{
    Displaced, Held, Holder, READ_LAG_MS, REMOVED_KEPT_MS, Record, Removed, Version,
};
use crate::policy::{Policy, sid_of, statement_equivalent, statements_of};
use serde_json::Value;

/// A statement or policy text as JSON; `None` when it does not parse.
pub fn parse(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

/// Whether something dated `at_ms` is recent enough at `now_ms` for a read to lag behind it.
fn lately(at_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(at_ms) <= REMOVED_KEPT_MS
}

/// Whether `text` parses to a statement equivalent to `statement`.
fn same_statement(text: &str, statement: &Value) -> bool {
    parse(text).is_some_and(|s| statement_equivalent(&s, statement))
}

/// Whether a live statement is one the provider removed lately (any version it wrote, by
/// Sid, or a statement of a whole policy it deleted), which a lagging read still shows.
pub fn removed_lately(record: &Record, statement: &Value, now_ms: u64) -> bool {
    let by_sid = sid_of(statement)
        .and_then(|sid| record.removed.get(sid))
        .is_some_and(|gone| {
            lately(gone.at_ms, now_ms) && gone.versions().any(|v| same_statement(v, statement))
        });
    let by_policy = record.removed_policy.as_ref().is_some_and(|gone| {
        lately(gone.at_ms, now_ms)
            && gone.versions().any(|text| {
                Policy::from_live(text).is_some_and(|policy| {
                    policy
                        .statements()
                        .iter()
                        .any(|s| statement_equivalent(s, statement))
                })
            })
    });
    by_sid || by_policy
}

/// Forgets removals and earlier versions old enough that no read can still show them.
pub fn forget_old(record: &mut Record, now_ms: u64) {
    record.removed.retain(|_, gone| lately(gone.at_ms, now_ms));
    if record
        .removed_policy
        .as_ref()
        .is_some_and(|gone| !lately(gone.at_ms, now_ms))
    {
        record.removed_policy = None;
    }
    for held in record.statements.values_mut() {
        held.earlier.retain(|v| lately(v.at_ms, now_ms));
    }
    if let Some(owned) = record.owner.as_mut() {
        owned.earlier.retain(|v| lately(v.at_ms, now_ms));
    }
}

/// The versions to remember once `old` is replaced by `new` at `now_ms`: `earlier`, and
/// `old` when it differs.
pub fn superseded(earlier: &[Version], old: Option<&str>, new: &str, now_ms: u64) -> Vec<Version> {
    let mut versions = earlier.to_vec();
    if let Some(old) = old
        && old != new
        && !versions.iter().any(|v| v.text == old)
    {
        versions.push(Version {
            text: old.to_owned(),
            at_ms: now_ms,
        });
    }
    versions
}

/// Takes a held Sid out of the record and remembers it as removed (every version of it
/// written lately); `shown`: the live statement, when the record never had its text (a
/// format-1 record).
pub fn remove_sid(record: &mut Record, sid: &str, shown: Option<String>, now_ms: u64) {
    let held = record.statements.remove(sid);
    let (last, earlier) = match held {
        Some(held) => (held.statement.or(shown), held.earlier),
        None => (shown, Vec::new()),
    };
    if let Some(statement) = last {
        record.removed.insert(
            sid.to_owned(),
            Removed {
                statement,
                at_ms: now_ms,
                also: earlier.into_iter().map(|v| v.text).collect(),
            },
        );
    }
}

/// Remembers a whole policy (and its earlier versions) as deleted by the provider.
pub fn remove_policy(record: &mut Record, policy: &str, earlier: &[Version], now_ms: u64) {
    let mut also: Vec<String> = earlier.iter().map(|v| v.text.clone()).collect();
    if let Some(before) = record.removed_policy.take()
        && lately(before.at_ms, now_ms)
    {
        also.extend(before.versions().map(str::to_owned));
    }
    also.retain(|t| t != policy);
    record.removed_policy = Some(Removed {
        statement: policy.to_owned(),
        at_ms: now_ms,
        also,
    });
}

/// Remembers `holder` as displaced from `sid` (or, for `None`, from the whole policy),
/// declaring `text`; an entry it already has there is brought up to date instead.
pub fn displace(record: &mut Record, holder: &Holder, sid: Option<&str>, text: &str, force: bool) {
    record
        .displaced
        .retain(|d| !(d.holder == *holder && d.sid.as_deref() == sid));
    record.displaced.push(Displaced {
        holder: holder.clone(),
        sid: sid.map(str::to_owned),
        text: text.to_owned(),
        force,
    });
}

/// Forgets every entry of a displaced resource (its Delete came); whether it had any, and
/// who holds what it had (for the warning).
pub fn forget_displaced(record: &mut Record, is_me: impl Fn(&Holder) -> bool) -> bool {
    let before = record.displaced.len();
    record.displaced.retain(|d| !is_me(&d.holder));
    record.displaced.len() != before
}

/// Brings a displaced resource's entry for `sid` up to date with what it declares now
/// (its Update came); whether it had one.
pub fn update_displaced(
    record: &mut Record,
    is_me: impl Fn(&Holder) -> bool,
    sid: Option<&str>,
    text: &str,
    force: bool,
) -> bool {
    let mut found = false;
    for entry in record.displaced.iter_mut() {
        if is_me(&entry.holder) && entry.sid.as_deref() == sid {
            entry.text = text.to_owned();
            entry.force = force;
            found = true;
        }
    }
    found
}

/// The statement with Sid `sid` that a whole policy text declares.
pub fn declared(policy: &str, sid: &str) -> Option<Value> {
    let policy = Policy::from_live(policy)?;
    statements_of(policy.document())
        .iter()
        .find(|s| sid_of(s) == Some(sid))
        .cloned()
}

/// The Sid a deleted taker held goes back to the latest displaced resource that declares
/// it: one displaced from that Sid (its entry ends: it holds the Sid again), or a whole
/// policy a statement took the Sid out of (its entry stays: it is still displaced as a
/// whole, and now holds the Sid as its policy declares it).
pub fn hand_back_sid(
    record: &mut Record,
    sid: &str,
    is_me: impl Fn(&Holder) -> bool,
) -> Option<Held> {
    let index = record.displaced.iter().rposition(|d| {
        !is_me(&d.holder)
            && match &d.sid {
                Some(s) => s == sid,
                None => declared(&d.text, sid).is_some(),
            }
    })?;
    let entry = &record.displaced[index];
    let statement = match &entry.sid {
        Some(_) => entry.text.clone(),
        None => declared(&entry.text, sid)?.to_string(),
    };
    let held = Held {
        holder: entry.holder.clone(),
        statement: Some(statement),
        prior: None,
        force: entry.force,
        earlier: Vec::new(),
    };
    if entry.sid.is_some() {
        record.displaced.remove(index);
    }
    Some(held)
}

/// What a deleted whole-policy owner hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandBack {
    /// The whole policy, to the whole-policy resource it displaced last.
    Whole(Displaced),
    /// Sids, to the statement resources it displaced (the latest for each Sid).
    Statements(Vec<Displaced>),
}

/// What a deleted whole-policy owner hands back, taken out of the displaced list: the
/// latest displaced resource decides. A whole policy goes back whole; statement resources
/// displaced since the last whole-policy one get their Sids back.
pub fn hand_back_whole(record: &mut Record, is_me: impl Fn(&Holder) -> bool) -> Option<HandBack> {
    let last = record.displaced.iter().rposition(|d| !is_me(&d.holder))?;
    if record.displaced[last].sid.is_none() {
        return Some(HandBack::Whole(record.displaced.remove(last)));
    }
    let mut chosen: Vec<usize> = Vec::new();
    for (index, entry) in record.displaced.iter().enumerate().rev() {
        if is_me(&entry.holder) {
            continue;
        }
        let Some(sid) = &entry.sid else { break };
        let taken = chosen
            .iter()
            .any(|i| record.displaced[*i].sid.as_deref() == Some(sid.as_str()));
        if !taken {
            chosen.push(index);
        }
    }
    chosen.sort_unstable();
    let mut back = Vec::new();
    for index in chosen.into_iter().rev() {
        back.push(record.displaced.remove(index));
    }
    back.reverse();
    Some(HandBack::Statements(back))
}

/// Whether the live read lacks what the record says the provider wrote less than
/// [`READ_LAG_MS`] ago, or still shows what it removed since: a read older than the last
/// write, to be read again (CONTRACT 11).
pub fn read_lags(record: &Record, live: Option<&str>, now_ms: u64) -> bool {
    let Some(at) = record.written_ms else {
        return false;
    };
    if now_ms.saturating_sub(at) >= READ_LAG_MS {
        return false;
    }
    let live = live.and_then(Policy::from_live);
    if let Some(owned) = &record.owner {
        let owned = Policy::from_live(&owned.policy);
        return match (&live, &owned) {
            (Some(live), Some(owned)) => !live.equivalent(owned),
            (None, Some(_)) => true,
            _ => false,
        };
    }
    let shown = live
        .as_ref()
        .map(|l| statements_of(l.document()))
        .unwrap_or_default();
    let lacks_held = record.statements.values().any(|held| {
        held.statement
            .as_deref()
            .and_then(parse)
            .is_some_and(|ours| !shown.iter().any(|s| statement_equivalent(s, &ours)))
    });
    let shows_removed = shown.iter().any(|s| {
        let held = sid_of(s).is_some_and(|sid| record.statements.contains_key(sid));
        !held && removed_lately(record, s, now_ms)
    });
    lacks_held || shows_removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holder(tag: &str) -> Holder {
        Holder {
            tag: tag.into(),
            stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
            logical: tag.to_uppercase(),
        }
    }

    fn grant(sid: &str, account: &str) -> String {
        json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": account}, "Action": "ecr:BatchGetImage"})
            .to_string()
    }

    #[test]
    fn a_sid_goes_back_to_the_latest_displaced_resource_that_declares_it() {
        let mut record = Record::default();
        displace(
            &mut record,
            &holder("b"),
            Some("S"),
            &grant("S", "1"),
            false,
        );
        displace(&mut record, &holder("c"), Some("S"), &grant("S", "2"), true);
        displace(
            &mut record,
            &holder("d"),
            Some("T"),
            &grant("T", "3"),
            false,
        );
        let back = hand_back_sid(&mut record, "S", |h| h.tag == "x").expect("handed back");
        assert_eq!(back.holder, holder("c"));
        assert_eq!(back.statement.as_deref(), Some(grant("S", "2").as_str()));
        assert!(back.force);
        // c's entry ended; b is still displaced, and T's entry is untouched.
        let left: Vec<&str> = record
            .displaced
            .iter()
            .map(|d| d.holder.tag.as_str())
            .collect();
        assert_eq!(left, ["b", "d"]);
    }

    #[test]
    fn a_whole_policy_hands_a_sid_back_as_it_declares_it_and_stays_displaced() {
        let mut record = Record::default();
        let policy = json!({"Version": "2012-10-17", "Statement": [serde_json::from_str::<Value>(&grant("S", "1")).unwrap()]}).to_string();
        displace(&mut record, &holder("w"), None, &policy, false);
        let back = hand_back_sid(&mut record, "S", |_| false).expect("handed back");
        assert_eq!(back.holder, holder("w"));
        assert_eq!(
            parse(back.statement.as_deref().unwrap()),
            parse(&grant("S", "1"))
        );
        assert_eq!(record.displaced.len(), 1);
        assert_eq!(hand_back_sid(&mut record, "Other", |_| false), None);
    }

    #[test]
    fn a_whole_owner_hands_back_to_the_whole_policy_it_displaced_last_or_to_the_statements() {
        let mut record = Record::default();
        displace(
            &mut record,
            &holder("b"),
            Some("S"),
            &grant("S", "1"),
            false,
        );
        displace(&mut record, &holder("w"), None, "{}", false);
        assert_eq!(
            hand_back_whole(&mut record, |_| false)
                .map(|b| matches!(b, HandBack::Whole(d) if d.holder == holder("w"))),
            Some(true)
        );
        displace(
            &mut record,
            &holder("c"),
            Some("S"),
            &grant("S", "2"),
            false,
        );
        displace(
            &mut record,
            &holder("d"),
            Some("T"),
            &grant("T", "3"),
            false,
        );
        let Some(HandBack::Statements(back)) = hand_back_whole(&mut record, |_| false) else {
            panic!("statements expected");
        };
        let tags: Vec<&str> = back.iter().map(|d| d.holder.tag.as_str()).collect();
        // The latest for S is c; b stays displaced (by c).
        assert_eq!(tags, ["c", "d"]);
        assert_eq!(record.displaced.len(), 1);
        assert_eq!(record.displaced[0].holder, holder("b"));
    }

    #[test]
    fn a_read_lags_only_within_a_minute_of_the_last_write_and_only_when_it_lacks_it() {
        let mut record = Record::default();
        record.statements.insert(
            "S".into(),
            Held {
                holder: holder("b"),
                statement: Some(grant("S", "1")),
                ..Held::default()
            },
        );
        let with =
            json!({"Version": "2012-10-17", "Statement": [parse(&grant("S", "1"))]}).to_string();
        let without =
            json!({"Version": "2012-10-17", "Statement": [parse(&grant("X", "1"))]}).to_string();
        assert!(
            !read_lags(&record, None, 1_000),
            "never written: nothing to lag behind"
        );
        record.written_ms = Some(1_000);
        assert!(read_lags(&record, None, 1_000 + READ_LAG_MS - 1));
        assert!(read_lags(&record, Some(&without), 2_000));
        assert!(!read_lags(&record, Some(&with), 2_000));
        assert!(!read_lags(&record, None, 1_000 + READ_LAG_MS));
    }

    #[test]
    fn every_version_removed_lately_is_kept_out_and_forgotten_after_fifteen_minutes() {
        let mut record = Record::default();
        record.statements.insert(
            "S".into(),
            Held {
                holder: holder("b"),
                statement: Some(grant("S", "2")),
                earlier: vec![Version {
                    text: grant("S", "1"),
                    at_ms: 500,
                }],
                ..Held::default()
            },
        );
        remove_sid(&mut record, "S", None, 1_000);
        for account in ["1", "2"] {
            let shown = parse(&grant("S", account)).unwrap();
            assert!(removed_lately(&record, &shown, 1_000 + REMOVED_KEPT_MS));
            assert!(!removed_lately(&record, &shown, 1_001 + REMOVED_KEPT_MS));
        }
        assert!(!removed_lately(
            &record,
            &parse(&grant("S", "3")).unwrap(),
            1_000
        ));
        forget_old(&mut record, 1_001 + REMOVED_KEPT_MS);
        assert!(record.removed.is_empty());
    }

    #[test]
    fn a_deleted_whole_policys_statements_are_kept_out_in_every_version() {
        let mut record = Record::default();
        let v1 = json!({"Statement": [parse(&grant("A", "1"))]}).to_string();
        let v2 = json!({"Statement": [parse(&grant("B", "2"))]}).to_string();
        remove_policy(
            &mut record,
            &v2,
            &[Version {
                text: v1,
                at_ms: 10,
            }],
            100,
        );
        assert!(removed_lately(
            &record,
            &parse(&grant("A", "1")).unwrap(),
            200
        ));
        assert!(removed_lately(
            &record,
            &parse(&grant("B", "2")).unwrap(),
            200
        ));
        assert!(!removed_lately(
            &record,
            &parse(&grant("B", "3")).unwrap(),
            200
        ));
    }
}
