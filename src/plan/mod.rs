//! The Create/Update/Delete decisions (CONTRACT 4, 9 and 11): one pure call, [`plan`], turns
//! (the request, the record, the live read, now) into a [`Plan`]: what to write to ECR, the
//! record to store first, what an unclear write is undone to, and what to answer. No I/O
//! here: [`crate::lifecycle`] takes the lease, reads, asks once, stores, writes and answers.
//!
//! A whole-policy resource replaces the document ([`whole`]); a statement resource adds,
//! replaces or removes its Sids and leaves every other statement as it was, same content,
//! same order ([`statements`]). Held statements and owned policies come from the record,
//! never from the live read, which can lag; what the record remembers of the past (who was
//! displaced, what was removed lately) is [`history`]'s.

pub mod history;
mod statements;
mod whole;

use crate::diagnosis::access::{self, Access};
use crate::error::Failure;
use crate::event::{Content, Desired};
use crate::identity::{
    MAX_PHYSICAL_ID_BYTES, PhysicalId, Target, account_of_stack, partition, valid_account,
};
use crate::lock::{Holder, Record};
use crate::policy::{NEW_POLICY_VERSION, Policy, sid_of, statement_equivalent};
use crate::response::Data;
use serde_json::{Map, Value};

pub use history::read_lags;

/// How a request treats its target, decided from the event alone, before ECR is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approach {
    /// A Create: `Adopt` rules apply, and a failure must leave ECR as it was found.
    Create,
    /// The Create half of a replacement (an Update onto another target or another set of
    /// Sids): a Create, except that the Sids the replaced resource holds are its own to
    /// take (CloudFormation's cleanup Delete of the old id then leaves them).
    Replace { predecessor: PhysicalId },
    /// An Update of what the resource already manages: the PhysicalResourceId is kept, and
    /// a failure is followed by CloudFormation's rollback.
    UpdateInPlace,
}

impl Approach {
    /// Whether a failure must leave ECR as it was found (a write whose outcome is unclear
    /// is undone).
    pub fn creates(&self) -> bool {
        !matches!(self, Approach::UpdateInPlace)
    }
}

/// An Update: the same target (and Sids), in place; another one, a replacement; or an id it
/// cannot update.
pub fn approach_update(physical_id: &str, desired: &Desired) -> Result<Approach, Failure> {
    let parsed = PhysicalId::parse(physical_id);
    let same = match (&parsed, &desired.content) {
        (PhysicalId::Policy { target, .. }, Content::Policy(_)) => *target == desired.target,
        (PhysicalId::Statements { target, sids, .. }, Content::Statements(statements)) => {
            let mut old = sids.clone();
            let mut new = statements.sids();
            old.sort();
            new.sort();
            *target == desired.target && old == new
        }
        // A prefix statement becomes one repository's: a replacement.
        (PhysicalId::Prefix { .. }, Content::Statements(_)) => false,
        (
            PhysicalId::Policy { .. } | PhysicalId::Statements { .. } | PhysicalId::Prefix { .. },
            _,
        ) => {
            return Err(Failure::KindChanged(physical_id.to_owned()));
        }
        (PhysicalId::FailedCreate { .. }, _) => {
            return Err(Failure::UpdateOfFailedCreate(physical_id.to_owned()));
        }
        (PhysicalId::Foreign, _) => return Err(Failure::ForeignPhysicalId(physical_id.to_owned())),
    };
    Ok(if same {
        Approach::UpdateInPlace
    } else {
        Approach::Replace {
            predecessor: parsed,
        }
    })
}

/// A prefix statement's Update: the same region, prefix (`team` and `team/` alike) and
/// Sids, in place; other ones (or a statement resource on one repository before), a
/// replacement; an id it cannot update, refused.
pub fn approach_update_prefix(
    physical_id: &str,
    prefixed: &crate::event::Prefixed,
) -> Result<Approach, Failure> {
    let parsed = PhysicalId::parse(physical_id);
    let sorted = |mut sids: Vec<String>| {
        sids.sort();
        sids
    };
    let same = match &parsed {
        PhysicalId::Prefix {
            region,
            prefix,
            sids,
            ..
        } => {
            region == prefixed.region()
                && crate::identity::same_prefix(prefix, &prefixed.prefix)
                && sorted(sids.clone()) == sorted(prefixed.statements().sids())
        }
        PhysicalId::Statements { .. } => false,
        PhysicalId::Policy { .. } => return Err(Failure::KindChanged(physical_id.to_owned())),
        PhysicalId::FailedCreate { .. } => {
            return Err(Failure::UpdateOfFailedCreate(physical_id.to_owned()));
        }
        PhysicalId::Foreign => return Err(Failure::ForeignPhysicalId(physical_id.to_owned())),
    };
    Ok(if same {
        Approach::UpdateInPlace
    } else {
        Approach::Replace {
            predecessor: parsed,
        }
    })
}

/// The next state of the target's document.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Nothing to change: no write.
    Keep,
    /// Write this document (compact JSON, exactly as it is sent to ECR).
    Write(String),
    /// Delete the policy.
    Delete,
}

/// Why a Create or Update cannot go ahead; nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A different whole policy is there and `Adopt` is not set.
    AlreadyHasPolicy,
    /// Another resource owns the whole policy, and `Adopt` is not set; `differs`: what it
    /// owns is not what this resource asks for.
    OwnedBy { holder: Holder, differs: bool },
    /// These Sids are there with other content and `Adopt` is not set.
    SidsDiffer(Vec<String>),
    /// Other resources hold these Sids, and `Adopt` is not set.
    HeldBy(Vec<(String, Holder)>),
    /// A statement resource's Create on a target whose policy a whole-policy resource owns,
    /// without `Adopt` (one target, two kinds).
    OwnedWhole(Holder),
    /// A whole-policy Create on a target where statement resources hold these Sids, without
    /// `Adopt` (one target, two kinds).
    HeldByStatements(Vec<(String, Holder)>),
    /// The merged document would be this many characters long.
    TooLong(usize),
    /// The live policy is not a JSON object, so no statement can be merged into it.
    LiveNotJson,
}

/// The resource a request acts for: its tag, stack and logical id.
pub type Me = Holder;

/// What a request asks of its target, in the planner's terms.
#[derive(Debug, Clone, Copy)]
pub enum Intent<'a> {
    /// A Create, a replacement's Create half, or an Update in place: `me` carries the tag
    /// (the Create's; an update in place keeps the resource's).
    Apply {
        approach: &'a Approach,
        desired: &'a Desired,
        me: &'a Me,
    },
    /// A whole-policy resource's Delete: `me` is its stack and logical id.
    DeleteWhole { me: &'a Me },
    /// A statement resource's Delete: `me.tag` is its id's, `sids` the Sids its id names.
    DeleteStatements { me: &'a Me, sids: &'a [String] },
    /// A failed Create's Delete: what the record holds under the tag of its request.
    FailedCreate { tag: &'a str },
    /// A rollback's Update in place, on the target (or the Sids) of the update that failed:
    /// what that update's write left there (its answer lost, or it landed late) is taken
    /// out as a failed Create's Delete takes it out, since no Delete of it will come
    /// (CONTRACT 11). `whole`: `me` is a whole-policy resource.
    Leftovers { me: &'a Me, whole: bool },
}

/// What to do, decided once under the lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to write to ECR.
    pub next: Next,
    /// The record once it is done; stored before ECR is written.
    pub record: Record,
    /// For a Create: what its write is undone to if its outcome is unclear (the document
    /// the merge started from, or no policy).
    pub undo: Option<Next>,
    /// The `force` the write goes with (SetRepositoryPolicy).
    pub force: bool,
    /// Whether this request took over what someone else had (CONTRACT 6, `Adopted`).
    pub adopted: bool,
    /// Said in `Data.Warnings`: what a displaced resource's request left to another.
    pub warnings: Vec<String>,
}

impl Plan {
    fn new(next: Next, record: Record) -> Self {
        Self {
            next,
            record,
            undo: None,
            force: false,
            adopted: false,
            warnings: Vec::new(),
        }
    }
}

/// The one decision: from the request, the record as the lease found it, the live policy
/// text (`None`: no policy) and the time, what to write, the record to store first, the
/// undo and the answer's `Adopted` and warnings. Without a lock table the record is empty,
/// and the whole-policy rules of CONTRACT 4 follow from it.
pub fn plan(
    intent: &Intent<'_>,
    record: &Record,
    live: Option<&str>,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    let mut plan = match intent {
        Intent::Apply {
            approach,
            desired,
            me,
        } => {
            // Created again (the same logical id back in its stack): its Deletes are its own.
            let mut record = record.clone();
            record
                .gone
                .retain(|g| !(g.holder.tag == me.tag || g.holder.same_resource(me)));
            let record = &record;
            let claim = Claim {
                approach,
                adopt: desired.adopt,
                me,
            };
            match &desired.content {
                Content::Policy(policy) => {
                    whole::apply(&claim, policy, desired.force, live, record, now_ms)
                }
                Content::Statements(ours) if **approach == Approach::UpdateInPlace => {
                    // What a failed replacement of it left, first (as its Delete does).
                    let before = failed_replacements(me, record, live, now_ms)?;
                    let live = parse_live(before.live.as_deref())?;
                    let applied = statements::apply(
                        &claim,
                        ours.items(),
                        desired.force,
                        live.as_ref(),
                        &before.record,
                        now_ms,
                    )?;
                    Ok(before.then(applied))
                }
                Content::Statements(ours) => {
                    let live = parse_live(live)?;
                    statements::apply(
                        &claim,
                        ours.items(),
                        desired.force,
                        live.as_ref(),
                        record,
                        now_ms,
                    )
                }
            }?
        }
        Intent::DeleteWhole { me } => whole::delete(me, live, record, false, now_ms),
        Intent::DeleteStatements { me, sids } => {
            let before = failed_replacements(me, record, live, now_ms)?;
            let live = before.live.as_deref().and_then(Policy::from_live);
            let deleted = statements::delete(me, sids, live.as_ref(), &before.record, now_ms);
            before.then(deleted)
        }
        Intent::Leftovers { me, whole } => {
            let tags = left_by_failed_update(record, me, *whole);
            let done = taken_out(&tags, record, live, now_ms)?;
            let mut plan = Plan::new(done.next, done.record);
            plan.warnings = done.warnings;
            plan
        }
        Intent::FailedCreate { tag } => {
            let live = live.and_then(Policy::from_live);
            // The failed Create's resource never existed for CloudFormation: where another
            // took something over from it, it has nothing to be handed back.
            let mut record = record.clone();
            record.failed.retain(|f| f.holder.tag != *tag);
            // A Sid nobody held that it took out of a whole policy whose ownership a
            // statement had ended (that policy declaring it: an entry with no statement of
            // its own) was never taken for CloudFormation: it goes back as it was (nobody's,
            // or absent), not to that whole policy; also when a whole policy took the target
            // over from this request since. (A statement resource that took the Sid from it
            // since took it from that whole policy: it goes back when that one goes.)
            record.displaced.retain(|d| {
                let by_it = d.by.as_ref().is_some_and(|b| b.tag == *tag);
                let taken_on = d
                    .sid
                    .as_ref()
                    .and_then(|sid| record.statements.get(sid))
                    .is_some_and(|h| h.holder.tag != *tag);
                !(by_it && d.sid.is_some() && d.text.is_empty() && !taken_on)
            });
            // A whole policy it wrote whose ownership a statement ended since: the rest of
            // it, left as statements nobody holds, came from this request alone, and goes;
            // except what another whole policy there declares too (one that took it over,
            // whose own rest is nobody's now).
            let others: Vec<Value> = record
                .displaced
                .iter()
                .filter(|d| d.sid.is_none() && d.holder.tag != *tag)
                .filter_map(|d| Policy::from_live(&d.text))
                .flat_map(|p| p.statements().to_vec())
                .collect();
            let left: Vec<Value> = record
                .displaced
                .iter()
                .filter(|d| d.sid.is_none() && d.holder.tag == *tag)
                .filter_map(|d| Policy::from_live(&d.text))
                .flat_map(|p| p.statements().to_vec())
                .filter(|s| !others.iter().any(|o| statement_equivalent(o, s)))
                .collect();
            // What that whole policy's write replaced, nobody holding it: put back.
            let replaced: Vec<Value> = record
                .displaced
                .iter()
                .filter(|d| d.sid.is_none() && d.holder.tag == *tag)
                .filter_map(|d| d.prior.as_ref())
                .filter_map(|p| Policy::from_live(&p.text))
                .flat_map(|p| p.statements().to_vec())
                .collect();
            // Its whole policy's ownership, ended by a statement since, never was for
            // CloudFormation: the Sids that statement took came out of the whole policies it
            // had ended before, where they declare them (as if it had never been there).
            let ended_here = record
                .displaced
                .iter()
                .any(|d| d.sid.is_none() && d.ended && d.holder.tag == *tag);
            if ended_here {
                history::take_over_ended(&mut record, |h| h.tag == *tag);
            }
            // A whole policy that took it over replaced, as far as CloudFormation knows,
            // what this request's write replaced: that goes back if its Create fails too.
            let mine = record
                .displaced
                .iter()
                .find(|d| d.sid.is_none() && d.holder.tag == *tag)
                .map(|d| d.prior.clone());
            if let Some(mine) = mine
                && let Some(owner) = record.owner.as_mut()
                && owner
                    .prior
                    .as_ref()
                    .and_then(|p| p.holder.as_ref())
                    .is_some_and(|h| h.tag == *tag)
            {
                owner.prior = mine;
            }
            history::forget_displaced(&mut record, |h| h.tag == *tag);
            // A whole policy whose ownership it ended (its record was stored, its outcome
            // unknown) was never ended for CloudFormation: it is owned again once nobody
            // holds a Sid there ([`release`] below), or when the last holder goes.
            let revived: Vec<Holder> = record
                .displaced
                .iter_mut()
                .filter(|e| e.ended && e.by.as_ref().is_some_and(|b| b.tag == *tag))
                .map(|entry| {
                    entry.ended = false;
                    entry.holder.clone()
                })
                .collect();
            // That policy is displaced as a whole again: the Sids taken out of it (by this
            // request, or by statements that joined since) come back with it as a whole.
            // Whatever else it took there was that policy's too (the target was owned whole
            // when it came): nothing of it goes back to a statement resource.
            record.displaced.retain(|e| {
                let by_it = e.by.as_ref().is_some_and(|b| b.tag == *tag);
                !(e.sid.is_some()
                    && (revived.contains(&e.holder) || (by_it && !revived.is_empty())))
            });
            let owned = record.owner.as_ref().filter(|o| o.holder.tag == *tag);
            let plan = match owned
                .map(|owned| whole::failed_create(owned, live.as_ref(), &record, now_ms))
                .or_else(|| statements::failed_create(tag, live.as_ref(), &record, now_ms))
            {
                Some(plan) => plan,
                None if !left.is_empty() => {
                    statements::remove_unheld(&left, live.as_ref(), &record, now_ms)
                }
                None => Plan::new(Next::Keep, record),
            };
            statements::put_back(plan, &replaced, live.as_ref(), now_ms)
        }
    };
    // A taker's Delete: what it took over that nobody holds now goes back (CONTRACT 11).
    match intent {
        Intent::DeleteWhole { me } => release(&mut plan, |h| h.same_resource(me), live, now_ms),
        Intent::DeleteStatements { me, .. } => {
            release(&mut plan, |h| h.tag == me.tag, live, now_ms)
        }
        Intent::FailedCreate { tag } => release(&mut plan, |h| h.tag == *tag, live, now_ms),
        // Each of its failed creates released what it took.
        Intent::Leftovers { .. } | Intent::Apply { .. } => {}
    }
    if plan.next != Next::Keep {
        plan.record.written_ms = Some(now_ms);
        plan.record.written = match &plan.next {
            Next::Write(text) => Some(text.clone()),
            _ => None,
        };
    }
    if plan.next == Next::Delete
        && let Some(text) = live
    {
        history::deleted_as_read(&mut plan.record, text, now_ms);
    }
    history::forget_old(&mut plan.record, now_ms);
    Ok(plan)
}

/// [`history::release`] after a Delete's plan: the document gains what goes back.
fn release(plan: &mut Plan, is_me: impl Fn(&Holder) -> bool, live: Option<&str>, now_ms: u64) {
    match history::release(&mut plan.record, is_me) {
        history::Released::Nothing => {}
        history::Released::Whole(text, force) => {
            plan.next = Next::Write(text);
            plan.force = force;
        }
        history::Released::Sids(_) => {
            let base = match &plan.next {
                Next::Write(text) => Policy::from_live(text),
                Next::Delete => None,
                Next::Keep => live.and_then(Policy::from_live),
            };
            let document = base.as_ref().map(Policy::document);
            let merged = statements::from_record(document, &plan.record, now_ms);
            plan.next = statements::decided(base.as_ref(), merged, true);
        }
    }
}

fn parse_live(live: Option<&str>) -> Result<Option<Policy>, Refusal> {
    match live {
        None => Ok(None),
        Some(text) => Policy::from_live(text)
            .map(Some)
            .ok_or(Refusal::LiveNotJson),
    }
}

/// Who may take what: ownership moves only by `Adopt`, except that a duplicate delivery, a
/// rollback and a replacement's predecessor are this same resource, and a logical id renamed
/// in its stack takes over equivalent content (CONTRACT 11).
struct Claim<'a> {
    approach: &'a Approach,
    adopt: bool,
    me: &'a Me,
}

/// Whether a request may take what a holder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// This very resource: a duplicate delivery, a rollback, the resource it replaces.
    Ours,
    /// A logical id renamed in the same stack, with equivalent content.
    Renamed,
    /// Taken over with `Adopt`.
    Adopted,
    /// Another resource's.
    Theirs,
}

impl Claim<'_> {
    /// The tag of the resource this request replaces, if it replaces a statement resource.
    fn predecessor(&self) -> Option<&str> {
        match self.approach {
            Approach::Replace {
                predecessor: PhysicalId::Statements { tag, .. } | PhysicalId::Prefix { tag, .. },
            } => Some(tag.as_str()),
            _ => None,
        }
    }

    fn judge(&self, holder: &Holder, equivalent: bool) -> Verdict {
        // A Create is this resource only by its tag (a duplicate delivery); an update also
        // by its stack and logical id (a rollback, a move back).
        let same = match self.approach {
            Approach::Create => false,
            Approach::Replace { .. } | Approach::UpdateInPlace => holder.same_resource(self.me),
        };
        if holder.tag == self.me.tag || self.predecessor() == Some(holder.tag.as_str()) || same {
            Verdict::Ours
        } else if self.adopt && self.approach.creates() {
            // An Update in place takes nothing over: a resource another took over writes
            // nothing there, whatever its `Adopt` says (CONTRACT 11).
            Verdict::Adopted
        } else if self.approach.creates()
            && equivalent
            && !holder.stack.is_empty()
            && holder.stack == self.me.stack
        {
            Verdict::Renamed
        } else {
            Verdict::Theirs
        }
    }
}

/// A warning for a resource that holds nothing here any more: another took it over.
fn left_to(what: &str, holder: &Holder) -> String {
    format!(
        "{what} now managed by {}, which took it over; this resource changes nothing there, \
         and gets it back if that one is deleted first",
        crate::error::describe(holder)
    )
}

/// The record put back after a Create's write of `written` landed and its undo took it out
/// again (`undo`: what the undo wrote, a document or a delete): the statements it wrote that
/// the undo's document lacks are removed by the provider, and the undo is the last write,
/// so that a read lagging behind it is read again, never taken for what ECR holds
/// (CONTRACT 11).
pub fn undone(record: &mut Record, written: &str, undo: &Next, now_ms: u64) {
    let back = match undo {
        Next::Write(text) => Some(Policy::from_live(text)),
        Next::Delete => Some(None),
        Next::Keep => None,
    };
    let Some(back) = back else {
        return;
    };
    let kept = back.as_ref().map(Policy::statements).unwrap_or_default();
    let gone: Vec<Value> = Policy::from_live(written)
        .map(|p| p.statements().to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !kept.iter().any(|k| statement_equivalent(k, s)))
        .collect();
    if !gone.is_empty() {
        let text = Value::Object(with_statements(None, gone)).to_string();
        history::remove_policy(record, &text, &[], now_ms);
    }
    record.written = back.map(|p| p.compact().to_owned());
    record.written_ms = Some(now_ms);
}

/// Whether the live text grants what `policy` does; text that is not a JSON object never
/// does.
pub fn equivalent(policy: &Policy, live: &str) -> bool {
    Policy::from_live(live).is_some_and(|live| policy.equivalent(&live))
}

/// What a drift restore writes (CONTRACT 13): an owned whole policy as the record has it;
/// otherwise the live statements with every held one as recorded, put back where missing,
/// and every statement nobody holds kept (but not one this provider removed lately, which a
/// lagging read may still show).
pub fn restore(live: Option<&str>, record: &Record, now_ms: u64) -> Next {
    let live = live.and_then(Policy::from_live);
    if let Some(owned) = &record.owner {
        return match &live {
            Some(live) if equivalent(live, &owned.policy) => Next::Keep,
            _ => Next::Write(owned.policy.clone()),
        };
    }
    let composed = statements::from_record(live.as_ref().map(Policy::document), record, now_ms);
    statements::next_document(live.as_ref(), composed)
}

/// Whether the record knows anything under `tag`: a statement or the whole policy it holds,
/// or what another took over from it.
pub fn holds_under(record: &Record, tag: &str) -> bool {
    record.owner.as_ref().is_some_and(|o| o.holder.tag == tag)
        || record.statements.values().any(|h| h.holder.tag == tag)
        || record
            .displaced
            .iter()
            .any(|d| d.holder.tag == tag || d.by.as_ref().is_some_and(|b| b.tag == tag))
}

/// What failed Creates under `tags` left, taken out one after the other as each one's
/// Delete would: the policy to write (or [`Next::Keep`]), the live policy then, the record
/// and the warnings.
struct TakenOut {
    next: Next,
    live: Option<String>,
    record: Record,
    warnings: Vec<String>,
}

impl TakenOut {
    /// `plan`, made on what is left once these are taken out: its write, or theirs.
    fn then(self, mut plan: Plan) -> Plan {
        if plan.next == Next::Keep {
            plan.next = self.next;
        }
        let mut warnings = self.warnings;
        warnings.append(&mut plan.warnings);
        plan.warnings = warnings;
        plan
    }
}

/// What replacements of statement resource `me` answered FAILED in the last 15 minutes
/// (the record's `failed`) left on the target, taken out: no Delete of them will come, and
/// the rollback that should have taken it out may have failed too, or never come
/// (CONTRACT 11). A successful replacement is never among them.
fn failed_replacements(
    me: &Me,
    record: &Record,
    live: Option<&str>,
    now_ms: u64,
) -> Result<TakenOut, Refusal> {
    let tags: Vec<String> = left_by_failed_update(record, me, false)
        .into_iter()
        .filter(|tag| record.failed_create(tag))
        .collect();
    taken_out(&tags, record, live, now_ms)
}

fn taken_out(
    tags: &[String],
    record: &Record,
    live: Option<&str>,
    now_ms: u64,
) -> Result<TakenOut, Refusal> {
    let mut done = TakenOut {
        next: Next::Keep,
        live: live.map(str::to_owned),
        record: record.clone(),
        warnings: Vec::new(),
    };
    for tag in tags {
        let step = plan(
            &Intent::FailedCreate { tag },
            &done.record,
            done.live.as_deref(),
            now_ms,
        )?;
        match &step.next {
            Next::Keep => {}
            Next::Write(text) => {
                done.live = Some(text.clone());
                done.next = step.next.clone();
            }
            Next::Delete => {
                done.live = None;
                done.next = Next::Delete;
            }
        }
        done.record = step.record;
        done.warnings.extend(step.warnings);
    }
    Ok(done)
}

/// The tags of the requests of resource `me` other than its own whose writes the record
/// announces on a target: what its updates that failed left (a whole-policy resource owns
/// nothing on a target it moved away from, so any tag of its there; a statement resource
/// holds Sids only under its own tag).
pub fn left_by_failed_update(record: &Record, me: &Me, whole: bool) -> Vec<String> {
    let other =
        |h: &Holder| h.same_resource(me) && (whole || h.tag != me.tag) && !h.stack.is_empty();
    let mut tags: Vec<String> = Vec::new();
    let owner = record.owner.iter().map(|o| &o.holder);
    let held = record.statements.values().map(|h| &h.holder);
    // Displaced under that request: never to be handed back to it.
    let displaced = record.displaced.iter().map(|d| &d.holder);
    for holder in owner.chain(held).chain(displaced) {
        if other(holder) && !tags.contains(&holder.tag) {
            tags.push(holder.tag.clone());
        }
    }
    tags
}

/// The tag that tells apart two statement resources naming the same Sids: from the
/// RequestId of the request that created the resource.
pub fn tag_of(request_id: &str) -> String {
    let tag: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(36)
        .collect();
    if tag.is_empty() { "r".into() } else { tag }
}

/// A request carried out: the PhysicalResourceId and the `Data` to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub physical_id: String,
    /// The response's `Data`.
    pub data: Data,
    /// Whether ECR was written to (a write or a delete).
    pub changed: bool,
}

/// The answer, once its PhysicalResourceId is known to fit in what CloudFormation takes.
pub fn fits(applied: Applied) -> Result<Applied, Failure> {
    if applied.physical_id.len() > MAX_PHYSICAL_ID_BYTES {
        return Err(Failure::IdTooLong(applied.physical_id.len()));
    }
    Ok(applied)
}

/// Who a resource's own statements let in (CONTRACT 12), as `Data.Access` says it.
fn access_of(statements: &[Value], account: &str) -> String {
    let own = Some(account).filter(|a| valid_account(a));
    Access::of(&access::analyze(statements, own)).to_string()
}

/// The account an answer names: the registry's, else the stack's.
fn account_or_stack(registry_id: String, stack_id: &str) -> String {
    if registry_id.is_empty() {
        account_of_stack(stack_id).to_owned()
    } else {
        registry_id
    }
}

/// The answer of a prefix statement (CONTRACT 15): its PhysicalResourceId, and `Data` with
/// how many repositories hold the statements now and the prefixes of the creation templates
/// that do. Refused when the id would be too long.
pub fn answer_prefix(
    prefixed: &crate::event::Prefixed,
    registry_id: String,
    held_in: usize,
    templates: &[String],
    adopted: bool,
    tag: &str,
    stack_id: &str,
) -> Result<Applied, Failure> {
    let account = account_or_stack(registry_id, stack_id);
    let region = prefixed.region();
    let sids = prefixed.statements().sids();
    let data = Data {
        registry_id: Some(account.clone()),
        region: Some(region.to_owned()),
        sids: Some(sids.join(",")),
        adopted: Some(adopted.to_string()),
        access: Some(access_of(prefixed.statements().items(), &account)),
        repositories: Some(held_in.to_string()),
        templates: Some(templates.join(",")),
        ..Data::default()
    };
    let id = PhysicalId::Prefix {
        region: region.to_owned(),
        prefix: prefixed.prefix.clone(),
        account,
        tag: tag.to_owned(),
        sids,
    };
    fits(Applied {
        physical_id: id.format("").unwrap_or_default(),
        data,
        changed: false,
    })
}

/// The answer for what is now in place: the PhysicalResourceId and the `Data`. `tag` is the
/// statement resource's. Whatever the length of its id ([`fits`] checks it): a repository
/// under a prefix answers with the prefix's id, not its own.
pub fn describe(
    desired: &Desired,
    registry_id: String,
    adopted: bool,
    changed: bool,
    tag: &str,
    stack_id: &str,
) -> Applied {
    let target = &desired.target;
    let account = account_or_stack(registry_id, stack_id);
    let partition = partition(stack_id, target.region());
    let statements = match &desired.content {
        Content::Policy(policy) => policy.statements(),
        Content::Statements(statements) => statements.items(),
    };
    let access = access_of(statements, &account);
    let (id, data) = match &desired.content {
        Content::Policy(policy) => (
            PhysicalId::Policy {
                target: target.clone(),
                account: account.clone(),
            },
            Data::policy(target, &account, &partition, adopted, policy.compact()),
        ),
        Content::Statements(statements) => {
            let sids = statements.sids();
            let data = Data::statements(target, &account, &partition, adopted, &sids);
            let id = PhysicalId::Statements {
                target: target.clone(),
                account,
                tag: tag.to_owned(),
                sids,
            };
            (id, data)
        }
    };
    let data = Data {
        access: Some(access),
        ..data
    };
    Applied {
        physical_id: id.format(&partition).unwrap_or_default(),
        data,
        changed,
    }
}

fn positions(statements: &[Value], sid: &str) -> Vec<usize> {
    statements
        .iter()
        .enumerate()
        .filter(|(_, s)| sid_of(s) == Some(sid))
        .map(|(i, _)| i)
        .collect()
}

/// The live document with its statements replaced (every other key kept, in place); a new
/// document when there was none.
fn with_statements(
    live: Option<&Map<String, Value>>,
    statements: Vec<Value>,
) -> Map<String, Value> {
    let mut document = live.cloned().unwrap_or_else(|| {
        let mut new = Map::new();
        new.insert("Version".into(), NEW_POLICY_VERSION.into());
        new
    });
    document.insert("Statement".into(), Value::Array(statements));
    document
}

/// What a Delete acts on: only its PhysicalResourceId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePlan {
    /// An id this provider never issues: touch nothing.
    Nothing,
    /// A failed Create's id: remove what the record holds under its request, if anything
    /// (a write that landed after the answer), and nothing else.
    FailedCreate { request_id: String },
    /// The whole policy.
    Delete { target: Target, account: String },
    /// Some statements of the policy.
    Statements {
        target: Target,
        account: String,
        tag: String,
        sids: Vec<String>,
    },
    /// Some statements, in every repository under a prefix that holds them.
    Prefix {
        region: String,
        prefix: String,
        tag: String,
        sids: Vec<String>,
    },
}

pub fn plan_delete(physical_id: &str) -> DeletePlan {
    match PhysicalId::parse(physical_id) {
        PhysicalId::Policy { target, account } => DeletePlan::Delete { target, account },
        PhysicalId::Statements {
            target,
            account,
            tag,
            sids,
        } => DeletePlan::Statements {
            target,
            account,
            tag,
            sids,
        },
        PhysicalId::Prefix {
            region,
            prefix,
            tag,
            sids,
            ..
        } => DeletePlan::Prefix {
            region,
            prefix,
            tag,
            sids,
        },
        PhysicalId::FailedCreate { request_id } => DeletePlan::FailedCreate { request_id },
        PhysicalId::Foreign => DeletePlan::Nothing,
    }
}

#[cfg(test)]
mod tests;
