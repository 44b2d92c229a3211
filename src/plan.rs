//! The Create/Update/Delete decisions (CONTRACT 4 and 9), as plain functions of the request,
//! the live policy and the record of who holds which Sid: no I/O here.
//! [`crate::lifecycle`] carries them out.
//!
//! One planning function serves every resource type: from the live document and what the
//! resource wants, the next document. A whole-policy resource replaces the document; a
//! statement resource adds, replaces or removes its Sids and leaves every other statement as
//! it was (same content, same order).

use crate::error::Failure;
use crate::event::{Content, Desired};
use crate::identity::{PhysicalId, Target};
use crate::lock::Holders;
use crate::policy::{NEW_POLICY_VERSION, Policy, PolicyError, sid_of, statement_equivalent};
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
        (PhysicalId::FailedCreate, _) => {
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

/// A decision for a Create or Update.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub next: Next,
    /// Whether this request took over what someone else had (CONTRACT 6, `Adopted`).
    pub adopted: bool,
}

/// Why a Create or Update cannot go ahead; nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A different whole policy is there and `Adopt` is not set.
    AlreadyHasPolicy,
    /// These Sids are there with other content and `Adopt` is not set.
    SidsDiffer(Vec<String>),
    /// The merged document would be this many characters long.
    TooLong(usize),
    /// The live policy is not a JSON object, so no statement can be merged into it.
    LiveNotJson,
}

/// The next document for a Create or Update, given the live policy text.
/// `holders` is the record of who holds which Sid; `own_tag` the tag of the statement
/// resource an update in place belongs to.
pub fn decide(
    approach: &Approach,
    desired: &Desired,
    live: Option<&str>,
    holders: &Holders,
    own_tag: Option<&str>,
) -> Result<Decision, Refusal> {
    match &desired.content {
        Content::Policy(policy) => decide_whole(approach, policy, desired.adopt, live),
        Content::Statements(statements) => {
            let live = match live {
                None => None,
                Some(text) => Some(Policy::from_live(text).ok_or(Refusal::LiveNotJson)?),
            };
            let owner = Owner::of(approach, holders, own_tag);
            merge(
                &owner,
                statements.items(),
                desired.adopt,
                live.as_ref().map(Policy::document),
            )
        }
    }
}

/// Which Sids a statement resource may rewrite without `Adopt`: its own in an update in
/// place, or those of the resource it replaces, unless another resource now holds them
/// (CONTRACT 9, "Who holds a Sid").
struct Owner<'a> {
    approach: &'a Approach,
    holders: &'a Holders,
    /// The tags that are this resource's: its own, and its predecessor's.
    tags: [Option<&'a str>; 2],
}

impl<'a> Owner<'a> {
    fn of(approach: &'a Approach, holders: &'a Holders, own_tag: Option<&'a str>) -> Self {
        let predecessor = match approach {
            Approach::Replace {
                predecessor: PhysicalId::Statements { tag, .. },
            } => Some(tag.as_str()),
            _ => None,
        };
        Self {
            approach,
            holders,
            tags: [own_tag, predecessor],
        }
    }

    fn holds(&self, sid: &str) -> bool {
        let named = match self.approach {
            Approach::UpdateInPlace => true,
            Approach::Replace {
                predecessor: PhysicalId::Statements { sids, .. },
            } => sids.iter().any(|s| s == sid),
            _ => false,
        };
        let held_by = self.holders.get(sid).map(String::as_str);
        named && held_by.is_none_or(|holder| self.tags.contains(&Some(holder)))
    }
}

fn decide_whole(
    approach: &Approach,
    policy: &Policy,
    adopt: bool,
    live: Option<&str>,
) -> Result<Decision, Refusal> {
    let equivalent = live.is_some_and(|text| equivalent(policy, text));
    let write = Next::Write(policy.compact().to_owned());
    let decision = |next, adopted| Ok(Decision { next, adopted });
    match (approach, live) {
        (Approach::UpdateInPlace, _) if equivalent => decision(Next::Keep, false),
        (Approach::UpdateInPlace, _) => decision(write, false),
        (_, None) => decision(write, false),
        (_, Some(_)) if equivalent => decision(Next::Keep, adopt),
        (_, Some(_)) if adopt => decision(write, true),
        (_, Some(_)) => Err(Refusal::AlreadyHasPolicy),
    }
}

/// Whether the live text grants what `policy` does; text that is not a JSON object never
/// does.
pub fn equivalent(policy: &Policy, live: &str) -> bool {
    Policy::from_live(live).is_some_and(|live| policy.equivalent(&live))
}

/// Merges a statement resource's statements into the live document.
fn merge(
    owner: &Owner<'_>,
    ours: &[Value],
    adopt: bool,
    live: Option<&Map<String, Value>>,
) -> Result<Decision, Refusal> {
    let mut statements: Vec<Value> = live.map(|d| statements_of(d).to_vec()).unwrap_or_default();
    let mut changed = false;
    let mut adopted = false;
    let mut differ = Vec::new();
    for statement in ours {
        let sid = sid_of(statement).unwrap_or_default();
        let present: Vec<usize> = positions(&statements, sid);
        match present.as_slice() {
            [] => {
                statements.push(statement.clone());
                changed = true;
            }
            [only] if statement_equivalent(&statements[*only], statement) => {
                adopted |= adopt && *owner.approach == Approach::Create;
            }
            [first, rest @ ..] => {
                let ours_already = owner.holds(sid);
                if !(ours_already || adopt) {
                    differ.push(sid.to_owned());
                    continue;
                }
                adopted |= !ours_already;
                statements[*first] = statement.clone();
                for index in rest.iter().rev() {
                    statements.remove(*index);
                }
                changed = true;
            }
        }
    }
    if !differ.is_empty() {
        return Err(Refusal::SidsDiffer(differ));
    }
    if !changed {
        return Ok(Decision {
            next: Next::Keep,
            adopted,
        });
    }
    let document = with_statements(live, statements);
    let policy = Policy::from_document(document).map_err(|e| match e {
        PolicyError::TooLong { chars } => Refusal::TooLong(chars),
        _ => Refusal::LiveNotJson,
    })?;
    Ok(Decision {
        next: Next::Write(policy.compact().to_owned()),
        adopted,
    })
}

/// The next document after a statement resource's Delete: its Sids gone, except those
/// another resource now holds; no statement left, no policy.
pub fn after_delete(live: Option<&str>, tag: &str, sids: &[String], holders: &Holders) -> Next {
    let Some(live) = live.and_then(Policy::from_live) else {
        return Next::Keep;
    };
    let ours = |sid: &str| {
        sids.iter().any(|s| s == sid) && holders.get(sid).is_none_or(|holder| holder == tag)
    };
    let before = live.statements();
    let kept: Vec<Value> = before
        .iter()
        .filter(|s| !sid_of(s).is_some_and(ours))
        .cloned()
        .collect();
    if kept.len() == before.len() {
        return Next::Keep;
    }
    if kept.is_empty() {
        return Next::Delete;
    }
    let document = with_statements(Some(live.document()), kept);
    // Fewer statements than a policy ECR holds: never over the limit.
    Next::Write(Value::Object(document).to_string())
}

/// The Sids a statement resource's Delete may remove, and the record after it.
pub fn release_sids(tag: &str, sids: &[String], holders: &Holders) -> Holders {
    let mut after = holders.clone();
    for sid in sids {
        if after.get(sid).is_none_or(|holder| holder == tag) {
            after.remove(sid);
        }
    }
    after
}

/// The record after a statement resource's Create or Update: its Sids are its own.
pub fn hold_sids(tag: &str, sids: &[String], holders: &Holders) -> Holders {
    let mut after = holders.clone();
    for sid in sids {
        after.insert(sid.clone(), tag.to_owned());
    }
    after
}

fn statements_of(document: &Map<String, Value>) -> &[Value] {
    match document.get("Statement") {
        Some(Value::Array(items)) => items,
        Some(single) => std::slice::from_ref(single),
        None => &[],
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
    /// A failed-create id or an id this provider never issues: touch nothing.
    Nothing,
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
        PhysicalId::FailedCreate | PhysicalId::Foreign => DeletePlan::Nothing,
    }
}

#[cfg(test)]
mod tests;
