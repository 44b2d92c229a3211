//! What the record remembers of a target's past (CONTRACT 11), as plain functions over a
//! [`Record`]: who was displaced and may be handed something back, the versions the provider
//! wrote and removed lately (a lagging read may still show them), and when it last wrote.

use crate::lock::{
    Displaced, Gone, Held, Holder, Owned, READ_LAG_MS, REMOVED_KEPT_MS, Record, Removed, Version,
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
    record.gone.retain(|g| lately(g.at_ms, now_ms));
    record.failed.retain(|f| lately(f.at_ms, now_ms));
}

/// A displaced resource's Delete: forgets its entries (see [`forget_displaced`]) and
/// remembers that its Delete came, so that a duplicate delivery of it does the same; whether
/// it was displaced (now, or by the Delete that came first).
pub fn depart(
    record: &mut Record,
    me: &Holder,
    is_me: impl Fn(&Holder) -> bool,
    now_ms: u64,
) -> bool {
    if forget_displaced(record, &is_me) {
        record.gone.retain(|g| !is_me(&g.holder));
        record.gone.push(Gone {
            holder: me.clone(),
            at_ms: now_ms,
        });
        return true;
    }
    record
        .gone
        .iter()
        .any(|g| is_me(&g.holder) && lately(g.at_ms, now_ms))
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

/// `earlier` with the versions of `gone` (a removal of the Sid that is held again as
/// `now`) that it lacks, dated by the removal.
pub fn also_removed(mut earlier: Vec<Version>, gone: &Removed, now: &str) -> Vec<Version> {
    for text in gone.versions() {
        if text != now && !earlier.iter().any(|v| v.text == text) {
            earlier.push(Version {
                text: text.to_owned(),
                at_ms: gone.at_ms,
            });
        }
    }
    earlier
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

/// The provider deletes the policy a read showed as `text`: that text is removed by the
/// provider too (whatever the record says was there), so a read lagging behind the delete
/// that still shows it is never taken for a policy someone else put there.
pub fn deleted_as_read(record: &mut Record, text: &str, now_ms: u64) {
    match record.removed_policy.as_mut() {
        Some(gone) if lately(gone.at_ms, now_ms) => {
            if !gone.versions().any(|v| v == text) {
                gone.also.push(text.to_owned());
            }
        }
        _ => {
            record.removed_policy = Some(Removed {
                statement: text.to_owned(),
                at_ms: now_ms,
                also: Vec::new(),
            });
        }
    }
}

/// A statement the provider puts back is not removed any more: a read that shows it is not
/// lagging behind a removal.
pub fn unremove(record: &mut Record, statement: &Value) {
    if let Some(sid) = sid_of(statement)
        && record
            .removed
            .get(sid)
            .is_some_and(|gone| gone.versions().any(|v| same_statement(v, statement)))
    {
        record.removed.remove(sid);
    }
    let Some(gone) = record.removed_policy.as_mut() else {
        return;
    };
    let without = |text: &str| -> String {
        let Some(policy) = Policy::from_live(text) else {
            return text.to_owned();
        };
        let kept: Vec<Value> = policy
            .statements()
            .iter()
            .filter(|s| !statement_equivalent(s, statement))
            .cloned()
            .collect();
        let mut document = policy.document().clone();
        document.insert("Statement".into(), Value::Array(kept));
        Value::Object(document).to_string()
    };
    gone.statement = without(&gone.statement);
    gone.also = gone.also.iter().map(|t| without(t)).collect();
}

/// Who took a displaced resource's Sid or policy: a resource that took it over, or a
/// statement that ended a whole policy's ownership.
#[derive(Debug, Clone, Copy)]
pub enum Taker<'a> {
    /// Took it over (by `Adopt`, a renamed logical id, a replacement): hands it back.
    Took(&'a Holder),
    /// A statement that ended the whole policy's ownership: the whole policy is never handed
    /// back whole.
    Ended(&'a Holder),
}

/// Remembers `holder` as displaced from `sid` (or, for `None`, from the whole policy) by
/// `taker`, declaring `text`; an entry it already has there is brought up to date instead.
pub fn displace(
    record: &mut Record,
    holder: &Holder,
    sid: Option<&str>,
    text: &str,
    force: bool,
    taker: Taker<'_>,
) {
    record
        .displaced
        .retain(|d| !(d.holder == *holder && d.sid.as_deref() == sid));
    let (by, ended) = match taker {
        Taker::Took(by) => (by, false),
        Taker::Ended(by) => (by, true),
    };
    record.displaced.push(Displaced {
        holder: holder.clone(),
        sid: sid.map(str::to_owned),
        text: text.to_owned(),
        force,
        by: Some(by.clone()),
        ended,
        prior: None,
    });
}

/// Whether the resource `is_me` names took `entry` over: its taker, or, in an entry stored
/// before takers were recorded, whoever holds it when deleted.
fn taken_by(entry: &Displaced, is_me: &impl Fn(&Holder) -> bool) -> bool {
    !entry.ended && entry.by.as_ref().is_none_or(is_me)
}

/// Forgets every entry of a displaced resource (its Delete came); whether it had any, and
/// who holds what it had (for the warning).
pub fn forget_displaced(record: &mut Record, is_me: impl Fn(&Holder) -> bool) -> bool {
    let before = record.displaced.len();
    record.displaced.retain(|d| !is_me(&d.holder));
    record.displaced.len() != before
}

/// The resource `gone` names never existed (a failed Create whose whole policy a statement
/// ended): the Sids taken out of its policy are taken, by the same takers, out of the other
/// ended whole policies that declare them, so that they go back there if the taker goes
/// first (CONTRACT 11).
pub fn take_over_ended(record: &mut Record, gone: impl Fn(&Holder) -> bool) {
    let moved: Vec<Displaced> = record
        .displaced
        .iter()
        .filter(|mine| gone(&mine.holder) && !mine.ended)
        .filter_map(|mine| Some((mine.sid.clone()?, mine.by.clone()?)))
        .flat_map(|(sid, by)| {
            record
                .displaced
                .iter()
                .filter(|d| d.sid.is_none() && d.ended && !gone(&d.holder))
                .filter(|d| declared(&d.text, &sid).is_some())
                .filter(|d| {
                    !record
                        .displaced
                        .iter()
                        .any(|e| e.holder == d.holder && e.sid.as_deref() == Some(sid.as_str()))
                })
                .map(|d| Displaced {
                    holder: d.holder.clone(),
                    sid: Some(sid.clone()),
                    text: String::new(),
                    force: d.force,
                    by: Some(by.clone()),
                    ended: false,
                    prior: None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    record.displaced.extend(moved);
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

/// What goes back to a displaced entry's resource: its statement; for a Sid a statement
/// took out of a whole policy (whose ownership it ended), that Sid as the policy declares
/// it now (its Updates keep the whole entry current), `None` if it declares it no more.
pub fn back_text(record: &Record, entry: &Displaced) -> Option<String> {
    let sid = entry.sid.as_deref()?;
    match record
        .displaced
        .iter()
        .rev()
        .find(|d| d.sid.is_none() && d.holder == entry.holder)
    {
        Some(whole) => declared(&whole.text, sid).map(|s| s.to_string()),
        None => Some(entry.text.clone()).filter(|t| !t.is_empty()),
    }
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
/// it: one it displaced from that Sid (its entry ends: it holds the Sid again), or a whole
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
                Some(s) => s == sid && taken_by(d, &is_me) && back_text(record, d).is_some(),
                // An entry stored before takers were recorded.
                None => d.by.is_none() && !d.ended && declared(&d.text, sid).is_some(),
            }
    })?;
    let entry = &record.displaced[index];
    let statement = match &entry.sid {
        Some(_) => back_text(record, entry)?,
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
    Whole(Box<Displaced>),
    /// Sids, to the statement resources it displaced (the latest for each Sid).
    Statements(Vec<Displaced>),
}

/// What a deleted whole-policy owner hands back, taken out of the displaced list: the
/// latest displaced resource decides. A whole policy goes back whole; statement resources
/// displaced since the last whole-policy one get their Sids back.
pub fn hand_back_whole(record: &mut Record, is_me: impl Fn(&Holder) -> bool) -> Option<HandBack> {
    let owed = |d: &Displaced| d.sid.is_none() || back_text(record, d).is_some();
    let mine = |d: &Displaced| !is_me(&d.holder) && taken_by(d, &is_me) && owed(d);
    let last = record.displaced.iter().rposition(mine)?;
    if record.displaced[last].sid.is_none() {
        return Some(HandBack::Whole(Box::new(record.displaced.remove(last))));
    }
    let mut chosen: Vec<usize> = Vec::new();
    for (index, entry) in record.displaced.iter().enumerate().rev() {
        if !mine(entry) {
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
    let texts: Vec<Option<String>> = chosen
        .iter()
        .map(|i| back_text(record, &record.displaced[*i]))
        .collect();
    let mut back = Vec::new();
    for (index, text) in chosen.into_iter().zip(texts).rev() {
        let mut entry = record.displaced.remove(index);
        entry.text = text.unwrap_or_default();
        back.push(entry);
    }
    back.reverse();
    Some(HandBack::Statements(back))
}

/// What a deleted resource left to those it had displaced, once what it held is out of
/// the record (see [`release`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    Nothing,
    /// Sids that nobody held any more, back with the resources it took them from.
    Sids(Vec<String>),
    /// The whole policy, back with the whole-policy resource it took it from (nothing else
    /// was held): its text and `Force`.
    Whole(String, bool),
}

/// A taker's Delete, once what it held is out of `record` (removed or handed back): every
/// entry it took over gets back what nobody holds now, latest first; an entry whose Sid or
/// policy another resource holds since is taken by that one from now on, so that it comes
/// back when that one goes (CONTRACT 11: "a taker hands back to the latest one that still
/// exists").
pub fn release(record: &mut Record, is_me: impl Fn(&Holder) -> bool) -> Released {
    let mut sids = Vec::new();
    let mut whole = None;
    let mut index = record.displaced.len();
    while index > 0 {
        index -= 1;
        let entry = &record.displaced[index];
        if entry.ended || !entry.by.as_ref().is_some_and(&is_me) || is_me(&entry.holder) {
            continue;
        }
        let holder_now = record.owner.as_ref().map(|o| o.holder.clone());
        match entry.sid.clone() {
            Some(sid) => {
                let now =
                    holder_now.or_else(|| record.statements.get(&sid).map(|h| h.holder.clone()));
                let Some(text) = back_text(record, &record.displaced[index]) else {
                    // A whole policy that declares the Sid no more: nothing to give back.
                    record.displaced.remove(index);
                    continue;
                };
                match now {
                    Some(now) => record.displaced[index].by = Some(now),
                    None => {
                        let entry = record.displaced.remove(index);
                        record.removed.remove(&sid);
                        record.statements.insert(
                            sid.clone(),
                            Held {
                                holder: entry.holder,
                                statement: Some(text),
                                prior: None,
                                force: entry.force,
                                earlier: Vec::new(),
                            },
                        );
                        sids.push(sid);
                    }
                }
            }
            None => {
                let now = holder_now
                    .or_else(|| record.statements.values().next().map(|h| h.holder.clone()));
                match now {
                    Some(now) => record.displaced[index].by = Some(now),
                    None => {
                        let entry = record.displaced.remove(index);
                        // Written again: what of it the provider removed lately is live now.
                        for statement in Policy::from_live(&entry.text)
                            .map(|p| p.statements().to_vec())
                            .unwrap_or_default()
                        {
                            unremove(record, &statement);
                        }
                        whole = Some((entry.text.clone(), entry.force));
                        // What its Create replaced, nobody holding it, goes back with
                        // it: its failed Create's Delete puts that back.
                        record.owner = Some(Owned {
                            holder: entry.holder,
                            policy: entry.text,
                            prior: entry.prior,
                            force: entry.force,
                            earlier: Vec::new(),
                        });
                    }
                }
            }
        }
    }
    match whole {
        Some((text, force)) => Released::Whole(text, force),
        None if !sids.is_empty() => Released::Sids(sids),
        None => Released::Nothing,
    }
}

/// Whether the live read lacks what the record says the provider wrote less than
/// [`READ_LAG_MS`] ago (a held statement, or any statement of the policy as last written:
/// statements nobody holds, which only a read knows, among them), or still shows what it
/// removed since (a policy at all, when it last deleted the policy): a read older than the
/// last write, to be read again (CONTRACT 11).
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
    let lacks_written = record
        .written
        .as_deref()
        .and_then(Policy::from_live)
        .is_some_and(|written| {
            written.statements().iter().any(|ours| {
                let held = sid_of(ours).is_some_and(|sid| record.statements.contains_key(sid));
                !held && !shown.iter().any(|s| statement_equivalent(s, ours))
            })
        });
    let shows_removed = shown.iter().any(|s| {
        let held = sid_of(s).is_some_and(|sid| record.statements.contains_key(sid));
        !held && removed_lately(record, s, now_ms)
    });
    // The last write deleted the policy: one shown since is older than that delete (or
    // the console's, which a read a minute later still shows).
    let shows_deleted = record.written.is_none() && record.statements.is_empty() && live.is_some();
    lacks_held || lacks_written || shows_removed || shows_deleted
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

    /// `holder` displaced from `sid` (or its whole policy) by resource `x`.
    fn taken_by_x(record: &mut Record, tag: &str, sid: Option<&str>, text: &str, force: bool) {
        displace(
            record,
            &holder(tag),
            sid,
            text,
            force,
            Taker::Took(&holder("x")),
        );
    }

    fn grant(sid: &str, account: &str) -> String {
        json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": account}, "Action": "ecr:BatchGetImage"})
            .to_string()
    }

    #[test]
    fn a_sid_goes_back_to_the_latest_displaced_resource_that_declares_it() {
        let mut record = Record::default();
        taken_by_x(&mut record, "b", Some("S"), &grant("S", "1"), false);
        taken_by_x(&mut record, "c", Some("S"), &grant("S", "2"), true);
        taken_by_x(&mut record, "d", Some("T"), &grant("T", "3"), false);
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
    fn a_whole_policy_gets_back_only_the_sids_taken_out_of_it_as_it_declares_them_now() {
        let mut record = Record::default();
        let policy = |statements: &[&str]| {
            let items: Vec<Value> = statements.iter().map(|s| parse(s).unwrap()).collect();
            json!({"Version": "2012-10-17", "Statement": items}).to_string()
        };
        // Statement x ended w's ownership, taking S; T of w's policy became nobody's.
        displace(
            &mut record,
            &holder("w"),
            None,
            &policy(&[&grant("S", "1"), &grant("T", "1")]),
            false,
            Taker::Ended(&holder("x")),
        );
        displace(
            &mut record,
            &holder("w"),
            Some("S"),
            &grant("S", "1"),
            false,
            Taker::Took(&holder("x")),
        );
        // w's Update changed S since: it gets S back as it declares it now.
        update_displaced(
            &mut record,
            |h| *h == holder("w"),
            None,
            &policy(&[&grant("S", "2"), &grant("T", "1")]),
            false,
        );
        assert_eq!(hand_back_sid(&mut record, "T", |h| h.tag == "x"), None);
        let back = hand_back_sid(&mut record, "S", |h| h.tag == "x").expect("handed back");
        assert_eq!(back.holder, holder("w"));
        assert_eq!(
            parse(back.statement.as_deref().unwrap()),
            parse(&grant("S", "2"))
        );
        // Still displaced as a whole; the Sid's entry ended.
        assert_eq!(record.displaced.len(), 1);
        assert_eq!(record.displaced[0].sid, None);
        // A policy that declares the Sid no more gets nothing back.
        displace(
            &mut record,
            &holder("w"),
            Some("S"),
            &grant("S", "1"),
            false,
            Taker::Took(&holder("x")),
        );
        update_displaced(
            &mut record,
            |h| *h == holder("w"),
            None,
            &policy(&[&grant("T", "1")]),
            false,
        );
        assert_eq!(hand_back_sid(&mut record, "S", |h| h.tag == "x"), None);
    }

    #[test]
    fn a_whole_owner_hands_back_to_the_whole_policy_it_displaced_last_or_to_the_statements() {
        let mut record = Record::default();
        taken_by_x(&mut record, "b", Some("S"), &grant("S", "1"), false);
        taken_by_x(&mut record, "w", None, "{}", false);
        assert_eq!(
            hand_back_whole(&mut record, |h| h.tag == "x")
                .map(|b| matches!(b, HandBack::Whole(d) if d.holder == holder("w"))),
            Some(true)
        );
        taken_by_x(&mut record, "c", Some("S"), &grant("S", "2"), false);
        taken_by_x(&mut record, "d", Some("T"), &grant("T", "3"), false);
        let Some(HandBack::Statements(back)) = hand_back_whole(&mut record, |h| h.tag == "x")
        else {
            panic!("statements expected");
        };
        let tags: Vec<&str> = back.iter().map(|d| d.holder.tag.as_str()).collect();
        // The latest for S is c; b stays displaced (by c).
        assert_eq!(tags, ["c", "d"]);
        assert_eq!(record.displaced.len(), 1);
        assert_eq!(record.displaced[0].holder, holder("b"));
    }

    #[test]
    fn a_deleted_taker_releases_what_nobody_holds_and_passes_on_what_another_holds() {
        let mut record = Record::default();
        // w's whole policy was taken by x (a whole policy), whose ownership statement s
        // then ended (s holds T); b's Sid S was taken by x too, and nobody holds S now.
        taken_by_x(&mut record, "w", None, "{}", false);
        taken_by_x(&mut record, "b", Some("S"), &grant("S", "1"), true);
        displace(
            &mut record,
            &holder("x"),
            None,
            "{}",
            false,
            Taker::Ended(&holder("s")),
        );
        record.statements.insert(
            "T".into(),
            Held {
                holder: holder("s"),
                statement: Some(grant("T", "2")),
                ..Held::default()
            },
        );
        assert_eq!(
            release(&mut record, |h| h.tag == "x"),
            Released::Sids(vec!["S".into()])
        );
        assert_eq!(record.statements["S"].holder, holder("b"));
        assert!(record.statements["S"].force);
        // The whole policy is not free (s, b hold Sids): it is taken by a holder now.
        let w = record
            .displaced
            .iter()
            .find(|d| d.holder == holder("w"))
            .expect("still displaced")
            .clone();
        assert!(
            w.by.as_ref()
                .is_some_and(|by| by.tag == "b" || by.tag == "s")
        );
        // An ended entry is never released whole, nor one taken by another resource.
        assert_eq!(
            release(&mut record, |h| h.tag == "nobody"),
            Released::Nothing
        );
        // Once the Sids' holders are gone, the whole policy goes back whole.
        record.statements.clear();
        let by = w.by.clone().expect("a taker");
        assert_eq!(
            release(&mut record, |h| *h == by),
            Released::Whole("{}".into(), false)
        );
        assert_eq!(
            record.owner.as_ref().map(|o| o.holder.clone()),
            Some(holder("w"))
        );
        // An entry stored before takers were recorded is left to the hand-backs.
        let mut legacy = Record::default();
        legacy.displaced.push(Displaced {
            holder: holder("b"),
            sid: Some("S".into()),
            text: grant("S", "1"),
            ..Displaced::default()
        });
        assert_eq!(release(&mut legacy, |_| true), Released::Nothing);
        assert!(hand_back_sid(&mut legacy, "S", |h| h.tag == "anyone").is_some());
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
