//! The Create/Update/Delete decisions (CONTRACT 4, 9 and 11), as plain functions of the
//! request, the live policy and the record: no I/O here. [`crate::lifecycle`] carries them
//! out.
//!
//! One planning function serves every resource type: from the record, the live document and
//! what the resource wants, the next document and the next record. A whole-policy resource
//! replaces the document; a statement resource adds, replaces or removes its Sids and leaves
//! every other statement as it was (same content, same order). Held statements come from the
//! record, never from the live read, which can lag (CONTRACT 11).

use crate::diagnosis::access::{self, Access};
use crate::error::Failure;
use crate::event::{Content, Desired};
use crate::identity::{
    MAX_PHYSICAL_ID_BYTES, PhysicalId, Target, account_of_stack, partition, valid_account,
};
use crate::lock::{Held, Holder, Owned, Prior, REMOVED_KEPT_MS, Record, Removed};
use crate::policy::{
    NEW_POLICY_VERSION, Policy, PolicyError, sid_of, statement_equivalent, statements_of,
};
use crate::response::Data;
use serde_json::{Map, Value};

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
        (PhysicalId::Policy { .. } | PhysicalId::Statements { .. }, _) => {
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

/// A decision: the next document and the record that goes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub next: Next,
    /// Whether this request took over what someone else had (CONTRACT 6, `Adopted`).
    pub adopted: bool,
    /// The record once the decision is carried out; stored before ECR is written.
    pub record: Record,
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
    /// The merged document would be this many characters long.
    TooLong(usize),
    /// The live policy is not a JSON object, so no statement can be merged into it.
    LiveNotJson,
}

/// The resource a request acts for: its tag, stack and logical id.
pub type Me = Holder;

/// The next document and record for a Create or Update, given the live policy text and the
/// record. `me` is the resource the request acts for (its tag: the Create's, kept by an
/// update in place); `now_ms` dates the statements it removes.
pub fn decide(
    approach: &Approach,
    desired: &Desired,
    live: Option<&str>,
    record: &Record,
    me: &Me,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    match &desired.content {
        Content::Policy(policy) => decide_whole(approach, policy, desired, live, record, me),
        Content::Statements(statements) => {
            let live = match live {
                None => None,
                Some(text) => Some(Policy::from_live(text).ok_or(Refusal::LiveNotJson)?),
            };
            let claim = Claim {
                approach,
                adopt: desired.adopt,
                force: desired.force,
                me,
            };
            merge(&claim, statements.items(), live.as_ref(), record, now_ms)
        }
    }
}

/// Who may take what: ownership moves only by `Adopt`, except that a duplicate delivery, a
/// rollback and a replacement's predecessor are this same resource, and a logical id renamed
/// in its stack takes over equivalent content (CONTRACT 11).
struct Claim<'a> {
    approach: &'a Approach,
    adopt: bool,
    /// The resource's `Force`, kept in the record for a restore (CONTRACT 13).
    force: bool,
    me: &'a Me,
}

/// Whether a Create may take what `holder` holds, with content `theirs`, without `Adopt`:
/// it is this resource (a duplicate delivery, the resource it replaces), or a resource of the
/// same stack with equivalent content (a logical id renamed in the template).
enum Verdict {
    Ours,
    Renamed,
    Adopted,
    Theirs,
}

impl Claim<'_> {
    fn judge(&self, holder: &Holder, equivalent: bool) -> Verdict {
        let predecessor = match self.approach {
            Approach::Replace {
                predecessor: PhysicalId::Statements { tag, .. },
            } => Some(tag.as_str()),
            _ => None,
        };
        // A Create is this resource only by its tag (a duplicate delivery); an update also
        // by its stack and logical id (a rollback, a move back).
        let same = match self.approach {
            Approach::Create => false,
            Approach::Replace { .. } | Approach::UpdateInPlace => holder.same_resource(self.me),
        };
        if holder.tag == self.me.tag || predecessor == Some(holder.tag.as_str()) || same {
            Verdict::Ours
        } else if self.adopt {
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

fn decide_whole(
    approach: &Approach,
    policy: &Policy,
    desired: &Desired,
    live: Option<&str>,
    record: &Record,
    me: &Me,
) -> Result<Decision, Refusal> {
    let live_equivalent = live.is_some_and(|text| equivalent(policy, text));
    let (adopt, force) = (desired.adopt, desired.force);
    let claim = Claim {
        approach,
        adopt,
        force,
        me,
    };
    let owner = record.owner.as_ref();
    let verdict = owner.map(|o| claim.judge(&o.holder, equivalent(policy, &o.policy)));
    let adopted = match (&verdict, live) {
        (Some(Verdict::Theirs), _) => {
            let holder = owner.map(|o| o.holder.clone()).unwrap_or_default();
            let differs = !owner.is_some_and(|o| equivalent(policy, &o.policy));
            // A former owner's update that asks for what is there changes nothing.
            return if !approach.creates() && live_equivalent {
                Ok(Decision {
                    next: Next::Keep,
                    adopted: false,
                    record: record.clone(),
                })
            } else {
                Err(Refusal::OwnedBy { holder, differs })
            };
        }
        (Some(Verdict::Adopted), _) => true,
        (Some(Verdict::Ours | Verdict::Renamed), _) => false,
        // Nobody owns it: section 4's rules.
        (None, _) if !approach.creates() => false,
        (None, None) => false,
        (None, Some(_)) if live_equivalent => adopt,
        (None, Some(_)) if adopt => true,
        (None, Some(_)) => return Err(Refusal::AlreadyHasPolicy),
    };
    // The record's last write counts too: a read that lags can show what was there before.
    let recorded_equivalent = owner.is_none_or(|o| equivalent(policy, &o.policy));
    let next = if live_equivalent && recorded_equivalent {
        Next::Keep
    } else {
        Next::Write(policy.compact().to_owned())
    };
    let keeps_tag = matches!(verdict, Some(Verdict::Ours));
    let (tag, prior) = match owner {
        Some(o) if keeps_tag => (o.holder.tag.clone(), o.prior.clone()),
        _ if approach.creates() => (
            me.tag.clone(),
            live.map(|text| Prior {
                holder: owner.map(|o| o.holder.clone()),
                text: text.to_owned(),
            }),
        ),
        _ => (me.tag.clone(), None),
    };
    let mut after = record.clone();
    after.owner = Some(Owned {
        holder: Holder { tag, ..me.clone() },
        policy: policy.compact().to_owned(),
        prior,
        force,
    });
    Ok(Decision {
        next,
        adopted,
        record: after,
    })
}

/// Whether the live text grants what `policy` does; text that is not a JSON object never
/// does.
pub fn equivalent(policy: &Policy, live: &str) -> bool {
    Policy::from_live(live).is_some_and(|live| policy.equivalent(&live))
}

fn parse(statement: &str) -> Option<Value> {
    serde_json::from_str(statement).ok()
}

fn compact(statement: &Value) -> String {
    statement.to_string()
}

/// The statements a merge starts from: the live ones in their order, each held Sid's
/// statement taken from the record instead, the ones the record holds and the read does not
/// show added, and the ones this provider removed lately and a lagging read still shows
/// left out (CONTRACT 11).
fn from_record(live: Option<&Map<String, Value>>, record: &Record, now_ms: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut placed = std::collections::BTreeSet::new();
    for statement in live.map(statements_of).unwrap_or_default() {
        let sid = sid_of(statement);
        let held = sid.and_then(|sid| record.statements.get(sid));
        match (sid, held) {
            (Some(sid), Some(held)) => match held.statement.as_deref().and_then(parse) {
                Some(recorded) => {
                    if placed.insert(sid.to_owned()) {
                        out.push(recorded);
                    }
                }
                // A format-1 record knows the holder, not the statement.
                None => out.push(statement.clone()),
            },
            (Some(sid), None) if removed_lately(record, sid, statement, now_ms) => {}
            _ => out.push(statement.clone()),
        }
    }
    for (sid, held) in &record.statements {
        if live.is_some_and(|doc| !positions(statements_of(doc), sid).is_empty()) {
            continue;
        }
        if let Some(recorded) = held.statement.as_deref().and_then(parse) {
            out.push(recorded);
        }
    }
    out
}

fn removed_lately(record: &Record, sid: &str, statement: &Value, now_ms: u64) -> bool {
    record.removed.get(sid).is_some_and(|gone| {
        now_ms.saturating_sub(gone.at_ms) <= REMOVED_KEPT_MS
            && parse(&gone.statement).is_some_and(|s| statement_equivalent(&s, statement))
    })
}

/// Forgets removed statements old enough that no read can still show them.
fn forget_old_removals(record: &mut Record, now_ms: u64) {
    record
        .removed
        .retain(|_, gone| now_ms.saturating_sub(gone.at_ms) <= REMOVED_KEPT_MS);
}

/// Merges a statement resource's statements into the document composed from the record.
fn merge(
    claim: &Claim<'_>,
    ours: &[Value],
    live: Option<&Policy>,
    record: &Record,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let live_doc = live.map(Policy::document);
    let mut statements = from_record(live_doc, record, now_ms);
    let mut after = record.clone();
    let mut adopted = false;
    let mut differ = Vec::new();
    let mut held_by = Vec::new();
    for statement in ours {
        let sid = sid_of(statement).unwrap_or_default();
        let present = positions(&statements, sid);
        let there = present.first().map(|i| statements[*i].clone());
        let same = present.len() == 1
            && there
                .as_ref()
                .is_some_and(|t| statement_equivalent(t, statement));
        let held = record.statements.get(sid);
        let mut prior = None;
        match held.map(|h| (h, claim.judge(&h.holder, same))) {
            Some((h, Verdict::Ours)) => prior = h.prior.clone(),
            Some((h, Verdict::Adopted | Verdict::Renamed)) => {
                adopted |= claim.adopt;
                prior = there.as_ref().map(|t| Prior {
                    holder: Some(h.holder.clone()),
                    text: compact(t),
                });
            }
            // A former holder's update that asks for what is there changes nothing.
            Some((_, Verdict::Theirs)) if !claim.approach.creates() && same => continue,
            Some((h, Verdict::Theirs)) => {
                held_by.push((sid.to_owned(), h.holder.clone()));
                continue;
            }
            None => match &there {
                None => {}
                Some(t) if same => {
                    adopted |= claim.adopt && *claim.approach == Approach::Create;
                    prior = claim.approach.creates().then(|| Prior {
                        holder: None,
                        text: compact(t),
                    });
                }
                // An update in place of a Sid the record lost track of: its own.
                Some(_) if !claim.approach.creates() => {}
                Some(t) if claim.adopt => {
                    adopted = true;
                    prior = Some(Prior {
                        holder: None,
                        text: compact(t),
                    });
                }
                Some(_) => {
                    differ.push(sid.to_owned());
                    continue;
                }
            },
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
        after.removed.remove(sid);
        after.statements.insert(
            sid.to_owned(),
            Held {
                holder: claim.me.clone(),
                statement: Some(compact(statement)),
                prior,
                force: claim.force,
            },
        );
    }
    if !held_by.is_empty() {
        return Err(Refusal::HeldBy(held_by));
    }
    if !differ.is_empty() {
        return Err(Refusal::SidsDiffer(differ));
    }
    forget_old_removals(&mut after, now_ms);
    let document = with_statements(live_doc, statements);
    let policy = Policy::from_document(document).map_err(|e| match e {
        PolicyError::TooLong { chars } => Refusal::TooLong(chars),
        _ => Refusal::LiveNotJson,
    })?;
    let next = if live.is_some_and(|live| live.equivalent(&policy)) {
        Next::Keep
    } else {
        Next::Write(policy.compact().to_owned())
    };
    Ok(Decision {
        next,
        adopted,
        record: after,
    })
}

/// The document that `statements` make of the live one: nothing to change, a write, or,
/// with no statement left, a delete.
fn next_document(live: Option<&Policy>, statements: Vec<Value>) -> Next {
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

/// A statement resource's Delete: its Sids gone, except those another resource now holds;
/// every held statement from the record; no statement left, no policy.
pub fn after_delete(
    live: Option<&str>,
    record: &Record,
    tag: &str,
    sids: &[String],
    now_ms: u64,
) -> (Next, Record) {
    let live = live.and_then(Policy::from_live);
    let live_doc = live.as_ref().map(Policy::document);
    let mut after = record.clone();
    let ours: Vec<&String> = sids
        .iter()
        .filter(|sid| record.holder_of(sid).is_none_or(|holder| holder == tag))
        .collect();
    for sid in &ours {
        let recorded = after
            .statements
            .remove(sid.as_str())
            .and_then(|held| held.statement);
        let shown = live_doc
            .and_then(|doc| {
                statements_of(doc)
                    .iter()
                    .find(|s| sid_of(s) == Some(sid.as_str()))
            })
            .map(compact);
        if let Some(statement) = recorded.or(shown) {
            after.removed.insert(
                (*sid).clone(),
                Removed {
                    statement,
                    at_ms: now_ms,
                },
            );
        }
    }
    forget_old_removals(&mut after, now_ms);
    let statements: Vec<Value> = from_record(live_doc, &after, now_ms)
        .into_iter()
        .filter(|s| !sid_of(s).is_some_and(|sid| ours.iter().any(|o| o.as_str() == sid)))
        .collect();
    (next_document(live.as_ref(), statements), after)
}

/// Whether a whole-policy resource's Delete removes the policy: unless another resource now
/// owns it (it was taken over with `Adopt`, or by a renamed logical id).
pub fn deletes_whole(record: &Record, me: &Me) -> bool {
    record
        .owner
        .as_ref()
        .is_none_or(|owned| owned.holder.same_resource(me))
}

/// The record after a whole-policy resource's Delete.
pub fn after_whole_delete(record: &Record) -> Record {
    Record {
        owner: None,
        ..record.clone()
    }
}

/// A failed Create's Delete: what the record holds under that request's tag is taken out
/// where its write landed (what it replaced put back), and the record forgets it; nothing
/// else changes. Nothing held under the tag: nothing to do (`None`).
pub fn after_failed_create(
    live: Option<&str>,
    record: &Record,
    tag: &str,
    now_ms: u64,
) -> Option<(Next, Record)> {
    let owned = record.owner.as_ref().filter(|o| o.holder.tag == tag);
    let held: Vec<(&String, &Held)> = record
        .statements
        .iter()
        .filter(|(_, h)| h.holder.tag == tag)
        .collect();
    if owned.is_none() && held.is_empty() {
        return None;
    }
    let mut after = record.clone();
    if let Some(owned) = owned {
        let landed = Policy::from_live(&owned.policy)
            .is_some_and(|policy| live.is_some_and(|text| equivalent(&policy, text)));
        after.owner = owned.prior.as_ref().and_then(|prior| {
            Some(Owned {
                holder: prior.holder.clone()?,
                policy: prior.text.clone(),
                prior: None,
                force: false,
            })
        });
        let next = match (&owned.prior, landed) {
            (_, false) => Next::Keep,
            (Some(prior), true) => Next::Write(prior.text.clone()),
            (None, true) => Next::Delete,
        };
        return Some((next, after));
    }
    let live = live.and_then(Policy::from_live);
    let live_doc = live.as_ref().map(Policy::document);
    let mut restore: Vec<(String, Value)> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    for (sid, h) in held {
        let landed = live_doc.is_some_and(|doc| {
            statements_of(doc).iter().any(|s| {
                sid_of(s) == Some(sid.as_str())
                    && h.statement
                        .as_deref()
                        .and_then(parse)
                        .is_some_and(|ours| statement_equivalent(s, &ours))
            })
        });
        after.statements.remove(sid);
        match &h.prior {
            Some(prior) => {
                if let Some(holder) = &prior.holder {
                    after.statements.insert(
                        sid.clone(),
                        Held {
                            holder: holder.clone(),
                            statement: Some(prior.text.clone()),
                            prior: None,
                            force: false,
                        },
                    );
                }
                if landed && let Some(statement) = parse(&prior.text) {
                    restore.push((sid.clone(), statement));
                }
            }
            None if landed => {
                remove.push(sid.clone());
                if let Some(statement) = &h.statement {
                    after.removed.insert(
                        sid.clone(),
                        Removed {
                            statement: statement.clone(),
                            at_ms: now_ms,
                        },
                    );
                }
            }
            None => {}
        }
    }
    let statements: Vec<Value> = from_record(live_doc, &after, now_ms)
        .into_iter()
        .filter(|s| !sid_of(s).is_some_and(|sid| remove.iter().any(|r| r == sid)))
        .map(|s| {
            let put_back = sid_of(&s)
                .and_then(|sid| restore.iter().find(|(r, _)| r == sid))
                .map(|(_, statement)| statement.clone());
            put_back.unwrap_or(s)
        })
        .collect();
    Some((next_document(live.as_ref(), statements), after))
}

/// What a Create's unclear write is undone to: the document its merge started from (the
/// live policy, with the record's held statements), or no policy.
pub fn before(desired: &Desired, live: Option<&str>, record: &Record, now_ms: u64) -> Next {
    match &desired.content {
        Content::Policy(_) => match live {
            Some(text) => Next::Write(text.to_owned()),
            None => Next::Delete,
        },
        Content::Statements(_) => {
            let live = live.and_then(Policy::from_live);
            let statements = from_record(live.as_ref().map(Policy::document), record, now_ms);
            match next_document(None, statements) {
                Next::Keep => Next::Delete,
                other => other,
            }
        }
    }
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
    let statements = from_record(live.as_ref().map(Policy::document), record, now_ms);
    next_document(live.as_ref(), statements)
}

/// Whether the record holds anything under `tag` (a statement or the whole policy).
pub fn holds_under(record: &Record, tag: &str) -> bool {
    record.owner.as_ref().is_some_and(|o| o.holder.tag == tag)
        || record.statements.values().any(|h| h.holder.tag == tag)
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

/// The answer for what is now in place: the PhysicalResourceId and the `Data`. `tag` is the
/// statement resource's.
pub fn answer(
    desired: &Desired,
    registry_id: String,
    adopted: bool,
    changed: bool,
    tag: &str,
    stack_id: &str,
) -> Result<Applied, Failure> {
    let target = &desired.target;
    let account = if registry_id.is_empty() {
        account_of_stack(stack_id).to_owned()
    } else {
        registry_id
    };
    let partition = partition(stack_id, target.region());
    // Who the resource's own statements let in (CONTRACT 12).
    let statements = match &desired.content {
        Content::Policy(policy) => policy.statements(),
        Content::Statements(statements) => statements.items(),
    };
    let own = Some(account.as_str()).filter(|a| valid_account(a));
    let access = Access::of(&access::analyze(statements, own)).to_string();
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
    let physical_id = id.format(&partition).unwrap_or_default();
    if physical_id.len() > MAX_PHYSICAL_ID_BYTES {
        return Err(Failure::IdTooLong(physical_id.len()));
    }
    Ok(Applied {
        physical_id,
        data,
        changed,
    })
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
        PhysicalId::FailedCreate { request_id } => DeletePlan::FailedCreate { request_id },
        PhysicalId::Foreign => DeletePlan::Nothing,
    }
}

#[cfg(test)]
mod tests;
