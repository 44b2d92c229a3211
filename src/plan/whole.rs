//! A whole-policy resource's decisions: its Create and Update replace the document, its
//! Delete removes it or hands it back (CONTRACT 4 and 11).

use super::history::{self, HandBack, Taker};
use super::statements;
use super::{Claim, Me, Next, Plan, Refusal, Verdict, equivalent, left_to, with_statements};
use crate::lock::{Held, Holder, Owned, Prior, READ_LAG_MS, Record, Version};
use crate::policy::{NEW_POLICY_VERSION, Policy, sid_of, statement_equivalent, statements_of};
use serde_json::{Map, Value};

/// The live policy as far as the provider can trust it: without the statements it removed
/// lately, which a lagging read still shows; `None` when nothing else is left. With it,
/// whether that is the read as it is (nothing left out, or a read that does not parse).
pub(super) fn effective_live(
    live: Option<&str>,
    record: &Record,
    now_ms: u64,
) -> (Option<Policy>, bool) {
    let Some(policy) = live.and_then(Policy::from_live) else {
        return (None, true);
    };
    let shown = statements_of(policy.document());
    let kept: Vec<Value> = shown
        .iter()
        .filter(|s| {
            let held = sid_of(s).is_some_and(|sid| record.statements.contains_key(sid));
            held || !history::removed_lately(record, s, now_ms)
        })
        .cloned()
        .collect();
    if kept.len() == shown.len() {
        return (Some(policy), true);
    }
    if kept.is_empty() {
        return (None, false);
    }
    let trusted = Policy::from_document(with_statements(Some(policy.document()), kept)).ok();
    (trusted, false)
}

/// A whole-policy Create or Update.
pub(super) fn apply(
    claim: &Claim<'_>,
    policy: &Policy,
    force: bool,
    live: Option<&str>,
    record: &Record,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    let (effective, as_read) = effective_live(live, record, now_ms);
    let live_equivalent = effective.as_ref().is_some_and(|l| l.equivalent(policy));
    let me = claim.me;
    let is_me = |h: &Holder| h.same_resource(me);
    let mut after = record.clone();
    let mut adopted = false;
    // What the write would replace, for a Create's undo and a failed Create's Delete: what
    // the read shows, but what the provider removed lately (a read lagging behind that
    // removal must not bring it back by either).
    let replaced = if as_read {
        live.map(str::to_owned)
    } else {
        effective.as_ref().map(|p| p.compact().to_owned())
    };
    let mut prior = claim
        .approach
        .creates()
        .then(|| replaced.clone().map(|text| Prior { holder: None, text }));
    let mut tag = me.tag.clone();
    let mut earlier = Vec::new();
    let mut record_equal = true;
    if let Some(owned) = &record.owner {
        let same = equivalent(policy, &owned.policy);
        match claim.judge(
            &owned.holder,
            same && !record.failed_create(&owned.holder.tag),
        ) {
            Verdict::Ours => {
                tag = owned.holder.tag.clone();
                prior = Some(owned.prior.clone());
                earlier = history::superseded(
                    &owned.earlier,
                    Some(&owned.policy),
                    policy.compact(),
                    now_ms,
                );
                record_equal = same;
            }
            verdict @ (Verdict::Renamed | Verdict::Adopted) => {
                adopted = verdict == Verdict::Adopted;
                history::displace(
                    &mut after,
                    &owned.holder,
                    None,
                    &owned.policy,
                    owned.force,
                    Taker::Took(me),
                );
                // What the displaced owner's Create replaced, nobody holding it: put back
                // if that Create failed and its Delete comes, whatever took it over since.
                if let Some(entry) = after.displaced.last_mut() {
                    entry.prior = owned.prior.clone().filter(|p| p.holder.is_none());
                }
                if let Some(Some(prior)) = prior.as_mut() {
                    prior.holder = Some(owned.holder.clone());
                }
                record_equal = same;
            }
            Verdict::Theirs if !claim.approach.creates() => {
                return Ok(displaced_update(
                    after,
                    me,
                    policy,
                    force,
                    &owned.holder,
                    "the policy is",
                ));
            }
            Verdict::Theirs => {
                return Err(Refusal::OwnedBy {
                    holder: owned.holder.clone(),
                    differs: !same,
                });
            }
        }
    } else if !record.statements.is_empty() {
        // One target, two kinds: statement resources hold Sids here.
        if !claim.approach.creates() {
            let displaced_here = record
                .displaced
                .iter()
                .any(|d| d.sid.is_none() && is_me(&d.holder));
            if displaced_here {
                return Ok(displaced_whole_update(
                    claim, policy, force, live, record, now_ms,
                ));
            }
            return Ok(unrecorded_update(policy, force, live, record, now_ms));
        }
        if !claim.adopt {
            return Err(Refusal::HeldByStatements(
                record
                    .statements
                    .iter()
                    .map(|(sid, held)| (sid.clone(), held.holder.clone()))
                    .collect(),
            ));
        }
        // Adopt: the whole policy takes every held Sid; their holders are displaced.
        for (sid, held) in &record.statements {
            if let Some(text) = &held.statement {
                history::displace(
                    &mut after,
                    &held.holder,
                    Some(sid),
                    text,
                    held.force,
                    Taker::Took(me),
                );
            }
        }
        after.statements.clear();
        adopted = true;
        record_equal = false;
        // What a failed Create's Delete puts back is what nobody held: the held statements
        // go back to their holders (if they still exist), or nowhere.
        if let Some(Some(replaced)) = prior.as_mut() {
            let unheld: Vec<Value> = Policy::from_live(&replaced.text)
                .map(|p| p.statements().to_vec())
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !sid_of(s).is_some_and(|sid| record.statements.contains_key(sid)))
                .collect();
            let base = Policy::from_live(&replaced.text);
            match (unheld.is_empty(), base) {
                (false, Some(base)) => {
                    replaced.text =
                        Value::Object(with_statements(Some(base.document()), unheld)).to_string();
                }
                _ => prior = Some(None),
            }
        }
    } else if let Some(entry) = record
        .displaced
        .iter()
        .rev()
        .find(|d| d.sid.is_none() && is_me(&d.holder) && (d.ended || d.by.is_some()))
        .filter(|_| !claim.approach.creates())
    {
        // Displaced, with no Sid held there now: an Update writes nothing (CONTRACT 11),
        // keeping what it declares for a hand-back.
        if entry.ended {
            return Ok(displaced_whole_update(
                claim, policy, force, live, record, now_ms,
            ));
        }
        let taker = entry.by.clone().unwrap_or_default();
        return Ok(displaced_update(
            after,
            me,
            policy,
            force,
            &taker,
            "the policy is",
        ));
    } else {
        match (&effective, claim.approach.creates()) {
            (None, _) => {}
            (Some(_), _) if live_equivalent => adopted = claim.adopt && claim.approach.creates(),
            (Some(_), true) if claim.adopt => adopted = true,
            (Some(_), true) => return Err(Refusal::AlreadyHasPolicy),
            // An update of a policy from before the record: its own.
            (Some(_), false) => {}
        }
    }
    history::forget_displaced(&mut after, is_me);
    // A version it replaced less than a minute ago may have landed after what a lagging
    // read shows (a write whose answer was lost, then a rollback whose write was refused):
    // that read's agreement with the record proves nothing, so the policy is written. A
    // version equivalent to this one changes nothing if it lands.
    let replaced_lately = record
        .owner
        .as_ref()
        .filter(|o| is_me(&o.holder))
        .is_some_and(|o| {
            o.earlier.iter().any(|v| {
                now_ms.saturating_sub(v.at_ms) < READ_LAG_MS
                    && Policy::from_live(&v.text).is_none_or(|p| !p.equivalent(policy))
            })
        });
    let next = if live_equivalent && record_equal && !replaced_lately {
        Next::Keep
    } else {
        Next::Write(policy.compact().to_owned())
    };
    if next != Next::Keep {
        // The statements of this policy the provider removed lately (by Sid, or with a
        // policy it deleted) are live again. The rest of a policy it deleted stays removed:
        // a read lagging behind that delete may still show it, and it must not come back
        // as statements nobody holds when a statement resource joins (CONTRACT 11).
        for statement in policy.statements() {
            history::unremove(&mut after, statement);
        }
        for sid in policy.statements().iter().filter_map(sid_of) {
            after.removed.remove(sid);
        }
    }
    if next != Next::Keep {
        // The held statements the write replaces (their holders displaced) are removed by
        // the provider: a read that lags behind the write must not bring them back. The
        // record says what they are (every version written lately), whatever the read
        // shows; a read lagging behind an earlier write may show another version of a
        // held Sid too. (The statements nobody held that it replaced are not remembered:
        // the console may add them again.)
        let from_record = record.statements.values().flat_map(|held| {
            let earlier = held.earlier.iter().map(|v| v.text.as_str());
            held.statement.as_deref().into_iter().chain(earlier)
        });
        let from_read = effective.iter().flat_map(|replaced| {
            replaced
                .statements()
                .iter()
                .filter(|s| sid_of(s).is_some_and(|sid| record.statements.contains_key(sid)))
                .cloned()
        });
        let mut gone: Vec<Value> = Vec::new();
        for statement in from_record.filter_map(history::parse).chain(from_read) {
            let kept = policy
                .statements()
                .iter()
                .any(|p| statement_equivalent(p, &statement));
            if !kept && !gone.iter().any(|g| statement_equivalent(g, &statement)) {
                gone.push(statement);
            }
        }
        if !gone.is_empty() {
            let text = Value::Object(with_statements(None, gone)).to_string();
            history::remove_policy(&mut after, &text, &[], now_ms);
        }
    }
    after.owner = Some(Owned {
        holder: Holder { tag, ..me.clone() },
        policy: policy.compact().to_owned(),
        prior: prior.flatten(),
        force,
        earlier,
    });
    let undo = claim.approach.creates().then_some(match replaced {
        Some(text) => Next::Write(text),
        None => Next::Delete,
    });
    Ok(Plan {
        next,
        record: after,
        undo,
        force,
        adopted,
        warnings: Vec::new(),
    })
}

/// An Update of a whole policy the record never knew (written before the lock table), on a
/// target where statement resources now hold Sids: it manages what nobody holds, so its
/// policy is written with every held statement kept as the record has it (a Sid of its own
/// that another holds stays theirs), and the record gains no owner. Never refused, so that
/// neither the Update nor its rollback can wedge the stack.
fn unrecorded_update(
    policy: &Policy,
    force: bool,
    live: Option<&str>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    let held: Vec<Value> = statements::from_record(None, record, now_ms);
    let own: Vec<Value> = policy
        .statements()
        .iter()
        .filter(|s| !sid_of(s).is_some_and(|sid| record.statements.contains_key(sid)))
        .cloned()
        .collect();
    let statements: Vec<Value> = own.into_iter().chain(held).collect();
    let document = with_statements(Some(policy.document()), statements);
    let text = Value::Object(document).to_string();
    let next = match live.and_then(Policy::from_live) {
        Some(live) if equivalent(&live, &text) => Next::Keep,
        _ => Next::Write(text),
    };
    let mut plan = Plan::new(next, record.clone());
    plan.force = force;
    plan.warnings.push(format!(
        "statements with Sid {} held by other resources were kept beside this policy",
        crate::text::quote_all(&record.statements.keys().cloned().collect::<Vec<_>>())
    ));
    plan
}

/// An Update of a whole-policy resource a statement took a Sid from (the target is managed
/// by statements since): what it declares is kept current for a hand-back, and the Sids
/// handed back to it (if any) are written as its new policy declares them; nothing else.
fn displaced_whole_update(
    claim: &Claim<'_>,
    policy: &Policy,
    force: bool,
    live: Option<&str>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    let me = claim.me;
    let is_me = |h: &Holder| h.same_resource(me);
    let mut after = record.clone();
    history::update_displaced(&mut after, is_me, None, policy.compact(), force);
    let held_by_me: Vec<(&String, &Held)> = record
        .statements
        .iter()
        .filter(|(_, held)| is_me(&held.holder))
        .collect();
    let other = record
        .statements
        .values()
        .map(|h| h.holder.clone())
        .find(|h| !is_me(h));
    let mut warnings: Vec<String> = other
        .iter()
        .map(|h| left_to("the policy's other statements are", h))
        .collect();
    let ours: Vec<Value> = policy
        .statements()
        .iter()
        .filter(|s| sid_of(s).is_some_and(|sid| held_by_me.iter().any(|(h, _)| h.as_str() == sid)))
        .cloned()
        .collect();
    // A Sid handed back to it that its policy no longer declares goes, as a statement
    // resource's Update dropping a Sid takes it out.
    let dropped: Vec<String> = held_by_me
        .iter()
        .map(|(sid, _)| (*sid).clone())
        .filter(|sid| !ours.iter().any(|s| sid_of(s) == Some(sid.as_str())))
        .collect();
    let mut removal = None;
    let mut live: Option<String> = live.map(str::to_owned);
    if !dropped.is_empty() {
        let live_policy = live.as_deref().and_then(Policy::from_live);
        let out = statements::remove(&dropped, is_me, live_policy.as_ref(), &after, now_ms);
        after = out.record.clone();
        match &out.next {
            Next::Write(text) => live = Some(text.clone()),
            Next::Delete => live = None,
            Next::Keep => {}
        }
        removal = Some(out.next);
    }
    let Some((_, held)) = held_by_me.iter().find(|(sid, _)| !dropped.contains(sid)) else {
        let mut plan = Plan::new(removal.unwrap_or(Next::Keep), after);
        plan.warnings = warnings;
        return plan;
    };
    warnings.push(format!(
        "the target is managed by statements: of this policy only Sid {} is written",
        crate::text::quote_all(
            &held_by_me
                .iter()
                .map(|(s, _)| (*s).clone())
                .collect::<Vec<_>>()
        )
    ));
    let as_holder = super::Approach::UpdateInPlace;
    let statement_claim = Claim {
        approach: &as_holder,
        adopt: false,
        me: &held.holder,
    };
    let live = live.as_deref().and_then(Policy::from_live);
    match statements::apply(
        &statement_claim,
        &ours,
        force,
        live.as_ref(),
        &after,
        now_ms,
    ) {
        Ok(mut plan) => {
            if plan.next == Next::Keep
                && let Some(removed) = removal
            {
                plan.next = removed;
            }
            plan.warnings.extend(warnings);
            plan
        }
        Err(_) => {
            let mut plan = Plan::new(removal.unwrap_or(Next::Keep), after);
            plan.warnings = warnings;
            plan
        }
    }
}

/// An Update of a resource another took over: nothing written, what it declares now kept for
/// when it is handed back.
fn displaced_update(
    mut after: Record,
    me: &Me,
    policy: &Policy,
    force: bool,
    holder: &Holder,
    what: &str,
) -> Plan {
    history::update_displaced(
        &mut after,
        |h| h.same_resource(me),
        None,
        policy.compact(),
        force,
    );
    let mut plan = Plan::new(Next::Keep, after);
    plan.warnings.push(left_to(what, holder));
    plan
}

/// A failed whole-policy Create's Delete (`owned`, held under that request's tag): the
/// policy taken out as its Delete would, whether its write landed or not, and what it
/// replaced that nobody held put back (a policy it adopted, the statements nobody held).
pub(super) fn failed_create(
    owned: &Owned,
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Plan {
    let me = owned.holder.clone();
    let mut plan = delete(&me, live.map(Policy::compact), record, true, now_ms);
    // What it replaced without a holder (a policy it adopted, the statements nobody held)
    // is put back, beside the Sids handed back to the resources it displaced.
    if plan.record.owner.is_none()
        && let Some(prior) = owned.prior.as_ref().filter(|p| p.holder.is_none())
    {
        // What goes back is not removed (its own policy may have repeated some of it).
        if let Some(base) = Policy::from_live(&prior.text) {
            for statement in base.statements() {
                history::unremove(&mut plan.record, statement);
            }
        }
        plan.next = if plan.record.statements.is_empty() {
            Next::Write(prior.text.clone())
        } else {
            let base = Policy::from_live(&prior.text);
            let merged =
                statements::from_record(base.as_ref().map(Policy::document), &plan.record, now_ms);
            statements::decided(live, merged, true)
        };
    }
    plan
}

/// A whole-policy resource's Delete: the policy, or what it hands back; nothing that another
/// resource holds or owns. `put_back`: a failed Create's Delete, which puts back what that
/// Create replaced.
pub(super) fn delete(
    me: &Me,
    live: Option<&str>,
    record: &Record,
    put_back: bool,
    now_ms: u64,
) -> Plan {
    let is_me = |h: &Holder| h.same_resource(me);
    let mut after = record.clone();
    if let Some(owned) = record.owner.as_ref().filter(|o| is_me(&o.holder)) {
        after.owner = None;
        // What its Create replaced, nobody holding it (a policy it adopted), was removed by
        // the provider too: a read lagging behind that Create may still show it. (A failed
        // Create's Delete puts it back instead.)
        let mut earlier = owned.earlier.clone();
        if let Some(prior) = owned
            .prior
            .as_ref()
            .filter(|p| p.holder.is_none() && !put_back)
        {
            earlier.push(Version {
                text: prior.text.clone(),
                at_ms: now_ms,
            });
        }
        history::forget_displaced(&mut after, is_me);
        let back = history::hand_back_whole(&mut after, is_me);
        let next = match back {
            Some(HandBack::Whole(entry)) => {
                // Written again: what of it the provider removed lately is live now.
                for statement in Policy::from_live(&entry.text)
                    .map(|p| p.statements().to_vec())
                    .unwrap_or_default()
                {
                    history::unremove(&mut after, &statement);
                }
                after.owner = Some(Owned {
                    holder: entry.holder,
                    policy: entry.text.clone(),
                    prior: entry.prior,
                    force: entry.force,
                    earlier: Vec::new(),
                });
                let mut plan = Plan::new(Next::Write(entry.text), after);
                plan.force = entry.force;
                return plan;
            }
            Some(HandBack::Statements(entries)) => {
                history::remove_policy(&mut after, &owned.policy, &earlier, now_ms);
                let mut statements = Vec::new();
                for entry in entries {
                    let Some(sid) = entry.sid.clone() else {
                        continue;
                    };
                    if let Some(statement) = history::parse(&entry.text) {
                        statements.push(statement);
                    }
                    after.statements.insert(
                        sid,
                        Held {
                            holder: entry.holder,
                            statement: Some(entry.text),
                            prior: None,
                            force: entry.force,
                            earlier: Vec::new(),
                        },
                    );
                }
                let base = Policy::from_live(&owned.policy);
                let mut document: Map<String, Value> =
                    base.map(|p| p.document().clone()).unwrap_or_default();
                document
                    .entry("Version")
                    .or_insert_with(|| NEW_POLICY_VERSION.into());
                document.insert("Statement".into(), Value::Array(statements));
                Next::Write(Value::Object(document).to_string())
            }
            None => {
                history::remove_policy(&mut after, &owned.policy, &earlier, now_ms);
                Next::Delete
            }
        };
        return Plan::new(next, after);
    }
    // Its ownership ended by a Create answered FAILED (whose write landed, its Delete to
    // come): never ended for CloudFormation, so the rest of its policy, left as statements
    // nobody holds, goes with it as with an owner's Delete.
    let unended: Vec<Value> = record
        .displaced
        .iter()
        .filter(|d| d.sid.is_none() && d.ended && is_me(&d.holder))
        .filter(|d| d.by.as_ref().is_some_and(|b| record.failed_create(&b.tag)))
        .filter_map(|d| Policy::from_live(&d.text))
        .flat_map(|p| p.statements().to_vec())
        .collect();
    let was_displaced = history::depart(&mut after, me, is_me, now_ms);
    // Sids handed back to it (a statement that took one out of its policy was deleted).
    let mine: Vec<String> = record
        .statements
        .iter()
        .filter(|(_, held)| is_me(&held.holder))
        .map(|(sid, _)| sid.clone())
        .collect();
    let live_policy = live.and_then(Policy::from_live);
    if let Some(owner) = &record.owner {
        let mut plan = Plan::new(Next::Keep, after);
        plan.warnings.push(left_to("the policy is", &owner.holder));
        return plan;
    }
    if was_displaced || !mine.is_empty() {
        // What it holds (Sids handed back to it) goes; the rest of its policy stays as
        // statements nobody holds, as it has since a statement took a Sid out of it
        // (CONTRACT 11: a displaced resource's Delete writes nothing for it).
        let mut plan = statements::remove(&mine, is_me, live_policy.as_ref(), &after, now_ms);
        if !unended.is_empty() {
            plan = statements::remove_unheld_after(plan, &unended, live_policy.as_ref(), now_ms);
        }
        if let Some(holder) = plan
            .record
            .statements
            .values()
            .map(|h| h.holder.clone())
            .find(|h| !is_me(h))
        {
            plan.warnings
                .push(left_to("some of the policy's statements are", &holder));
        }
        return plan;
    }
    // No record of owning it (a policy from before the lock table): only what nobody holds
    // goes, except the rest of a whole policy whose ownership a statement ended (kept as
    // statements nobody holds, CONTRACT 11).
    let rest: Vec<Value> = after
        .displaced
        .iter()
        .filter(|d| d.ended && d.sid.is_none())
        .filter_map(|d| Policy::from_live(&d.text))
        .flat_map(|p| p.statements().to_vec())
        .collect();
    let (held, gone): (Vec<Value>, Vec<Value>) =
        statements::from_record(live_policy.as_ref().map(Policy::document), &after, now_ms)
            .into_iter()
            .partition(|s| {
                sid_of(s).is_some_and(|sid| after.statements.contains_key(sid))
                    || rest.iter().any(|r| statement_equivalent(r, s))
            });
    if !gone.is_empty() {
        let text = Value::Object(with_statements(None, gone)).to_string();
        history::remove_policy(&mut after, &text, &[], now_ms);
    }
    if held.is_empty() {
        return Plan::new(Next::Delete, after);
    }
    let document = with_statements(live_policy.as_ref().map(Policy::document), held);
    let text = Value::Object(document).to_string();
    let next = match &live_policy {
        Some(live) if equivalent(live, &text) => Next::Keep,
        _ => Next::Write(text),
    };
    Plan::new(next, after)
}
