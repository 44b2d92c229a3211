//! A statement resource's decisions: its Sids merged into the document, replaced in place,
//! removed or handed back; every statement nobody holds kept as it is (CONTRACT 9 and 11).

use super::history::{self, Taker};
use super::{Claim, Me, Next, Plan, Refusal, Verdict, left_to, positions, with_statements};
use crate::lock::{Held, Holder, Prior, Record};
use crate::policy::{Policy, PolicyError, sid_of, statement_equivalent, statements_of};
use serde_json::{Map, Value};

fn compact(statement: &Value) -> String {
    statement.to_string()
}

/// The statements a merge starts from: the live ones in their order, each held Sid's
/// statement taken from the record instead, the ones the record holds and the read does not
/// show added, and the ones this provider removed lately and a lagging read still shows
/// left out (CONTRACT 11).
pub(super) fn from_record(
    live: Option<&Map<String, Value>>,
    record: &Record,
    now_ms: u64,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut placed = std::collections::BTreeSet::new();
    for statement in live.map(statements_of).unwrap_or_default() {
        let sid = sid_of(statement);
        let held = sid.and_then(|sid| record.statements.get(sid));
        match (sid, held) {
            (Some(sid), Some(held)) => match held.statement.as_deref().and_then(history::parse) {
                Some(recorded) => {
                    if placed.insert(sid.to_owned()) {
                        out.push(recorded);
                    }
                }
                // A format-1 record knows the holder, not the statement.
                None => out.push(statement.clone()),
            },
            _ if history::removed_lately(record, statement, now_ms) => {}
            _ => out.push(statement.clone()),
        }
    }
    for (sid, held) in &record.statements {
        if live.is_some_and(|doc| !positions(statements_of(doc), sid).is_empty()) {
            continue;
        }
        if let Some(recorded) = held.statement.as_deref().and_then(history::parse) {
            out.push(recorded);
        }
    }
    out
}

/// The document that `statements` make of the live one: nothing to change, a write, or,
/// with no statement left, a delete.
pub(super) fn next_document(live: Option<&Policy>, statements: Vec<Value>) -> Next {
    if statements.is_empty() {
        return if live.is_some() {
            Next::Delete
        } else {
            Next::Keep
        };
    }
    let document = with_statements(live.map(Policy::document), statements);
    match Policy::from_document(document.clone()) {
        Ok(policy) if live.is_some_and(|live| live.equivalent(&policy)) => Next::Keep,
        Ok(policy) => Next::Write(policy.compact().to_owned()),
        // Never refuse to remove: a document over the limit is ECR's to judge.
        Err(_) => Next::Write(Value::Object(document).to_string()),
    }
}

/// The next document when the record changed: decided against the record, so a read that
/// lags (shows no policy, or already shows the result) never stops the write.
pub(super) fn decided(live: Option<&Policy>, statements: Vec<Value>, changed: bool) -> Next {
    match next_document(live, statements.clone()) {
        Next::Keep if changed && statements.is_empty() => Next::Delete,
        Next::Keep if changed => {
            let document = with_statements(live.map(Policy::document), statements);
            Next::Write(Value::Object(document).to_string())
        }
        next => next,
    }
}

/// A statement resource's Create or Update: each of its Sids added, kept or replaced.
pub(super) fn apply(
    claim: &Claim<'_>,
    ours: &[Value],
    force: bool,
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    let me = claim.me;
    let is_me = |h: &Holder| h.tag == me.tag;
    let mut after = record.clone();
    let mut adopted = false;
    let mut warnings = Vec::new();
    let live_doc = live.map(Policy::document);
    // The whole policy whose ownership this Create ends: what it takes from that policy was
    // that owner's, not a statement nobody held.
    let mut ended = None;
    // The document the merge starts from, and the base of its other keys.
    let (base, mut statements) = match &record.owner {
        None => (live_doc.cloned(), from_record(live_doc, record, now_ms)),
        Some(owned) => {
            match claim.judge(&owned.holder, false) {
                Verdict::Adopted => {
                    // The statement ends the whole-policy ownership: the rest of that policy,
                    // as the record holds it, becomes statements nobody holds.
                    adopted = true;
                    ended = Some(owned.holder.clone());
                    history::displace(
                        &mut after,
                        &owned.holder,
                        None,
                        &owned.policy,
                        owned.force,
                        Taker::Ended(me),
                    );
                    if let Some(entry) = after.displaced.last_mut() {
                        entry.prior = owned.prior.clone().filter(|p| p.holder.is_none());
                    }
                    // Its Sids are taken from the whole policy's resource: each goes back
                    // to it, as its policy declares it then, if this one goes first.
                    for statement in ours {
                        let sid = sid_of(statement).unwrap_or_default();
                        let text = history::declared(&owned.policy, sid)
                            .map(|s| compact(&s))
                            .unwrap_or_default();
                        history::displace(
                            &mut after,
                            &owned.holder,
                            Some(sid),
                            &text,
                            owned.force,
                            Taker::Took(me),
                        );
                    }
                    after.owner = None;
                    let owned_doc = Policy::from_live(&owned.policy);
                    let doc = owned_doc.as_ref().map(Policy::document);
                    (
                        doc.cloned(),
                        doc.map(statements_of).unwrap_or_default().to_vec(),
                    )
                }
                _ if !claim.approach.creates() => {
                    for statement in ours {
                        let sid = sid_of(statement).unwrap_or_default();
                        history::update_displaced(
                            &mut after,
                            is_me,
                            Some(sid),
                            &compact(statement),
                            force,
                        );
                    }
                    let mut plan = Plan::new(Next::Keep, after);
                    plan.warnings.push(left_to("the policy is", &owned.holder));
                    return Ok(plan);
                }
                _ => return Err(Refusal::OwnedWhole(owned.holder.clone())),
            }
        }
    };
    let undo = claim.approach.creates().then(|| {
        let before = statements.clone();
        match next_document(None, before) {
            Next::Keep => Next::Delete,
            other => other,
        }
    });
    let mut differ = Vec::new();
    let mut held_by = Vec::new();
    let mut record_equal = true;
    for statement in ours {
        let sid = sid_of(statement).unwrap_or_default();
        let present = positions(&statements, sid);
        let there = present.first().map(|i| statements[*i].clone());
        let same = present.len() == 1
            && there
                .as_ref()
                .is_some_and(|t| statement_equivalent(t, statement));
        let held = record.statements.get(sid);
        let recorded = held.and_then(|h| h.statement.clone());
        let mut prior = None;
        let mut earlier = Vec::new();
        let settled = |h: &Held| !record.failed_create(&h.holder.tag);
        match held.map(|h| (h, claim.judge(&h.holder, same && settled(h)))) {
            Some((h, Verdict::Ours)) => {
                prior = h.prior.clone();
                earlier = history::superseded(
                    &h.earlier,
                    recorded.as_deref(),
                    &compact(statement),
                    now_ms,
                );
                record_equal &= h.holder.tag == me.tag
                    && recorded
                        .as_deref()
                        .and_then(history::parse)
                        .is_some_and(|r| statement_equivalent(&r, statement));
                if h.holder.tag != me.tag
                    && let Some(text) = &recorded
                {
                    // The resource this one replaces gets it back if this one is deleted
                    // first (a rollback).
                    history::displace(
                        &mut after,
                        &h.holder,
                        Some(sid),
                        text,
                        h.force,
                        Taker::Took(me),
                    );
                }
            }
            Some((h, verdict @ (Verdict::Adopted | Verdict::Renamed))) => {
                adopted |= verdict == Verdict::Adopted;
                // What the holder it takes the Sid from had written, a read lagging behind
                // this write may still show: an earlier version of this one's, removed with
                // it if it goes while that holder holds nothing here any more.
                earlier = history::superseded(
                    &h.earlier,
                    recorded.as_deref(),
                    &compact(statement),
                    now_ms,
                );
                // The content the record holds is what is asked: only its holder changes.
                record_equal &= recorded
                    .as_deref()
                    .and_then(history::parse)
                    .is_some_and(|r| statement_equivalent(&r, statement));
                if let Some(text) = &recorded {
                    history::displace(
                        &mut after,
                        &h.holder,
                        Some(sid),
                        text,
                        h.force,
                        Taker::Took(me),
                    );
                }
                prior = there.as_ref().map(|t| Prior {
                    holder: Some(h.holder.clone()),
                    text: compact(t),
                });
            }
            Some((h, Verdict::Theirs)) if !claim.approach.creates() => {
                // A resource whose Sid another took over holds nothing here any more.
                history::update_displaced(&mut after, is_me, Some(sid), &compact(statement), force);
                warnings.push(left_to(
                    &format!("Sid {} is", crate::text::quote(sid)),
                    &h.holder,
                ));
                continue;
            }
            Some((h, Verdict::Theirs)) => {
                held_by.push((sid.to_owned(), h.holder.clone()));
                continue;
            }
            // Displaced from it, its taker still there (a taker's Delete hands it back and
            // ends the entry), though nobody holds the Sid now (the taker's own ownership
            // ended, say): it holds nothing here.
            None if !claim.approach.creates()
                && let Some(taker) = displaced_by(record, is_me, sid) =>
            {
                history::update_displaced(&mut after, is_me, Some(sid), &compact(statement), force);
                warnings.push(left_to(
                    &format!("Sid {} is", crate::text::quote(sid)),
                    &taker,
                ));
                continue;
            }
            None => match &there {
                None => record_equal = false,
                Some(t) if same => {
                    adopted |= claim.adopt && *claim.approach == super::Approach::Create;
                    prior = claim.approach.creates().then(|| Prior {
                        holder: ended.clone(),
                        text: compact(t),
                    });
                }
                // An update in place of a Sid the record lost track of: its own.
                Some(_) if !claim.approach.creates() => record_equal = false,
                Some(t) if claim.adopt => {
                    adopted = true;
                    record_equal = false;
                    prior = Some(Prior {
                        holder: ended.clone(),
                        text: compact(t),
                    });
                }
                Some(_) => {
                    differ.push(sid.to_owned());
                    continue;
                }
            },
        }
        if held.is_none() && claim.approach.creates() && record.owner.is_none() {
            // A Sid nobody holds that a whole policy (whose ownership a statement ended)
            // still declares is taken out of that policy too: it goes back to it if this
            // one goes first (CONTRACT 11).
            let wholes: Vec<(Holder, bool)> = record
                .displaced
                .iter()
                .filter(|d| d.sid.is_none() && d.ended && !is_me(&d.holder))
                .filter(|d| history::declared(&d.text, sid).is_some())
                .map(|d| (d.holder.clone(), d.force))
                .collect();
            // No statement of its own in the entry (the Sid was nobody's): `back_text` reads
            // it from the whole policy, and a failed Create's Delete knows it by that.
            for (whole, whole_force) in wholes {
                history::displace(
                    &mut after,
                    &whole,
                    Some(sid),
                    "",
                    whole_force,
                    Taker::Took(me),
                );
            }
        }
        match present.split_first() {
            None => statements.push(statement.clone()),
            Some((first, rest)) => {
                statements[*first] = statement.clone();
                for index in rest.iter().rev() {
                    statements.remove(*index);
                }
            }
        }
        // What the provider removed of this Sid lately, a read lagging behind may still
        // show: held again, those versions are its earlier ones (and removed with it again
        // if it goes), never a statement nobody holds.
        if let Some(gone) = after.removed.remove(sid) {
            earlier = history::also_removed(earlier, &gone, &compact(statement));
        }
        after.statements.insert(
            sid.to_owned(),
            Held {
                holder: me.clone(),
                statement: Some(compact(statement)),
                prior,
                force,
                earlier,
            },
        );
    }
    if !held_by.is_empty() {
        return Err(Refusal::HeldBy(held_by));
    }
    if !differ.is_empty() {
        return Err(Refusal::SidsDiffer(differ));
    }
    let document = with_statements(base.as_ref(), statements);
    let policy = Policy::from_document(document).map_err(|e| match e {
        PolicyError::TooLong { chars } => Refusal::TooLong(chars),
        _ => Refusal::LiveNotJson,
    })?;
    // Nothing to write needs both: the record already says it, and the read shows it.
    let shown = live.is_some_and(|live| live.equivalent(&policy));
    let next = if shown && record_equal && record.owner.is_none() {
        Next::Keep
    } else {
        Next::Write(policy.compact().to_owned())
    };
    Ok(Plan {
        next,
        record: after,
        undo,
        force,
        adopted,
        warnings,
    })
}

/// Who took `sid` from the resource `is_me` names, if the record still says it is displaced
/// from it.
fn displaced_by(record: &Record, is_me: impl Fn(&Holder) -> bool, sid: &str) -> Option<Holder> {
    record
        .displaced
        .iter()
        .rev()
        .find(|d| is_me(&d.holder) && d.sid.as_deref() == Some(sid) && !d.ended)
        .and_then(|d| d.by.clone())
}

/// Takes `sids` (those `is_me` holds) out of a target nobody owns whole: each goes back to
/// the latest displaced resource that declares it, or is removed; the document is decided
/// against the record.
pub(super) fn remove(
    sids: &[String],
    is_me: impl Fn(&Holder) -> bool + Copy,
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    remove_known(sids, is_me, true, live, record, now_ms)
}

/// [`remove`]; `lost_track`: a Sid the record holds for nobody is this resource's (the record
/// lost track of it: a format-1 item), removed if the read shows it. Not for a resource the
/// record knows was displaced: what it was displaced from is not its own any more.
pub(super) fn remove_known(
    sids: &[String],
    is_me: impl Fn(&Holder) -> bool + Copy,
    lost_track: bool,
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    let mut after = record.clone();
    let live_doc = live.map(Policy::document);
    let mut gone: Vec<&str> = Vec::new();
    let mut changed = false;
    for sid in sids {
        let shown = live_doc
            .and_then(|doc| statements_of(doc).iter().find(|s| sid_of(s) == Some(sid)))
            .map(compact);
        match record.statements.get(sid) {
            Some(held) if is_me(&held.holder) => {
                changed = true;
                match history::hand_back_sid(&mut after, sid, is_me) {
                    Some(back) => {
                        after.statements.insert(sid.clone(), back);
                    }
                    None => {
                        history::remove_sid(&mut after, sid, shown, now_ms);
                        gone.push(sid);
                    }
                }
            }
            // Another resource holds it now.
            Some(_) => {}
            // Nobody holds it (the record lost track): removed if the read shows it.
            None => {
                if lost_track && shown.is_some() {
                    history::remove_sid(&mut after, sid, shown, now_ms);
                    gone.push(sid);
                }
            }
        }
    }
    let statements: Vec<Value> = from_record(live_doc, &after, now_ms)
        .into_iter()
        .filter(|s| !sid_of(s).is_some_and(|sid| gone.contains(&sid)))
        .collect();
    Plan::new(decided(live, statements, changed), after)
}

/// Takes out of a target nobody owns whole the statements nobody holds that are one of
/// `left` (what a failed Create wrote and no resource holds); the document decided against
/// the record.
pub(super) fn remove_unheld(
    left: &[Value],
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    remove_unheld_after(Plan::new(Next::Keep, record.clone()), left, live, now_ms)
}

/// `plan`, with the statements nobody holds that are one of `left` taken out of the
/// document it plans; nothing where a whole policy is owned.
pub(super) fn remove_unheld_after(
    mut plan: Plan,
    left: &[Value],
    live: Option<&Policy>,
    now_ms: u64,
) -> Plan {
    if plan.record.owner.is_some() {
        return plan;
    }
    let base = match &plan.next {
        Next::Write(text) => Policy::from_live(text),
        Next::Delete => None,
        Next::Keep => live.cloned(),
    };
    let record = &plan.record;
    let mut gone = Vec::new();
    let statements: Vec<Value> = from_record(base.as_ref().map(Policy::document), record, now_ms)
        .into_iter()
        .filter(|s| {
            let held = sid_of(s).is_some_and(|sid| record.statements.contains_key(sid));
            let theirs = !held && left.iter().any(|l| statement_equivalent(l, s));
            if theirs {
                gone.push(s.clone());
            }
            !theirs
        })
        .collect();
    if gone.is_empty() {
        return plan;
    }
    let text = Value::Object(with_statements(None, gone)).to_string();
    history::remove_policy(&mut plan.record, &text, &[], now_ms);
    plan.next = decided(live, statements, true);
    plan
}

/// `plan`, with the statements nobody holds of `replaced` (what a failed Create's write
/// replaced) put back where the planned document lacks them; nothing where a whole policy
/// is owned.
pub(super) fn put_back(
    mut plan: Plan,
    replaced: &[Value],
    live: Option<&Policy>,
    now_ms: u64,
) -> Plan {
    if replaced.is_empty() || plan.record.owner.is_some() {
        return plan;
    }
    let base = match &plan.next {
        Next::Write(text) => Policy::from_live(text),
        Next::Delete => None,
        Next::Keep => live.cloned(),
    };
    let mut statements = from_record(base.as_ref().map(Policy::document), &plan.record, now_ms);
    let missing: Vec<Value> = replaced
        .iter()
        .filter(|r| {
            let held = sid_of(r).is_some_and(|sid| plan.record.statements.contains_key(sid));
            // A statement of that Sid there now (the rest of a whole policy that adopted
            // the target since) took its place.
            let taken = sid_of(r).is_some_and(|sid| !positions(&statements, sid).is_empty());
            !held && !taken && !statements.iter().any(|s| statement_equivalent(s, r))
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        return plan;
    }
    for statement in &missing {
        history::unremove(&mut plan.record, statement);
    }
    statements.extend(missing);
    plan.next = decided(live, statements, true);
    plan
}

/// A statement resource's Delete: its Sids out (or handed back), except those another
/// resource now holds; nothing of a policy another resource owns.
pub(super) fn delete(
    me: &Me,
    sids: &[String],
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    let is_me = |h: &Holder| h.tag == me.tag;
    let mut after = record.clone();
    let was_displaced = history::depart(&mut after, me, is_me, now_ms);
    if let Some(owner) = &record.owner {
        let mut plan = Plan::new(Next::Keep, after);
        plan.warnings.push(left_to("the policy is", &owner.holder));
        return plan;
    }
    let mut plan = remove_known(sids, is_me, !was_displaced, live, &after, now_ms);
    if was_displaced {
        for sid in sids {
            if let Some(held) = plan.record.statements.get(sid)
                && !is_me(&held.holder)
                && !held.holder.same_resource(me)
            {
                plan.warnings.push(left_to(
                    &format!("Sid {} is", crate::text::quote(sid)),
                    &held.holder,
                ));
            }
        }
    }
    plan
}

/// A failed statement Create's Delete: the statements the record holds under that request's
/// tag are taken out, whether its write landed or not (a read cannot tell: it may lag), and
/// what they took put back; nothing else changes. Nothing held under the tag: `None`. (A
/// whole policy held under the tag: [`super::whole::failed_create`].)
pub(super) fn failed_create(
    tag: &str,
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Option<Plan> {
    let is_tag = |h: &Holder| h.tag == tag;
    let held: Vec<(&String, &Held)> = record
        .statements
        .iter()
        .filter(|(_, h)| is_tag(&h.holder))
        .collect();
    if held.is_empty() {
        return None;
    }
    let mut after = record.clone();
    let live_doc = live.map(Policy::document);
    let mut restore: Vec<(String, Value)> = Vec::new();
    // (A Sid nobody held that it took out of a whole policy whose ownership a statement had
    // ended is out of `displaced` already: the caller drops such entries.)
    for (sid, h) in held {
        if let Some(back) = history::hand_back_sid(&mut after, sid, is_tag) {
            after.statements.insert(sid.clone(), back);
            continue;
        }
        // What it replaced goes back only if nobody held it: a holder it took the Sid from
        // got it back above, or was deleted since and holds nothing.
        let replaced = h.prior.as_ref().filter(|p| p.holder.is_none());
        match replaced.and_then(|p| history::parse(&p.text)) {
            Some(statement) => {
                // What it wrote is removed lately (a lagging read must not bring it back);
                // what it replaced goes back.
                history::remove_sid(&mut after, sid, None, now_ms);
                restore.push((sid.clone(), statement));
            }
            None => history::remove_sid(&mut after, sid, None, now_ms),
        }
    }
    // What it wrote is kept out as removed lately; a statement of that Sid with other
    // content is someone else's, and stays.
    let mut statements: Vec<Value> = from_record(live_doc, &after, now_ms)
        .into_iter()
        .map(|s| {
            let put_back = sid_of(&s)
                .and_then(|sid| restore.iter().find(|(r, _)| r == sid))
                .map(|(_, statement)| statement.clone());
            put_back.unwrap_or(s)
        })
        .collect();
    // What it took that the merge lacks (a lagging read, or its own write kept out).
    for (sid, statement) in &restore {
        if positions(&statements, sid).is_empty() {
            statements.push(statement.clone());
        }
        // What goes back is not removed, though it wrote that same statement (it adopted
        // it as it was): a later read that shows it is not lagging behind a removal.
        history::unremove(&mut after, statement);
    }
    Some(Plan::new(decided(live, statements, true), after))
}
