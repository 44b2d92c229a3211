//! Prefix statements and the targets that appear after them (CONTRACT 15).
//!
//! **The index.** A prefix statement's Create or Update writes its statements, under its
//! holder (tag, stack, logical id), into the lock table's item `prefix/<region>/<prefix>`
//! (the prefix without its trailing `/`, or `ROOT`), a record like any target's: Sid →
//! holder, statement and `Force`; its Delete (and its failed Create's Delete) takes them out.
//! The item is taken, stored and given back under its own lease, like a target's.
//!
//! **A new target.** CloudTrail's `CreateRepository` (or `CreateRepositoryCreationTemplate`)
//! names the new repository (or template). The prefixes that can cover it are its parents
//! (`a`, `a/b` for `a/b/c`; and `a/b` itself for a template `a/b/`) and `ROOT`: one read of
//! each of their index items finds every prefix statement that covers it, with no `Scan`. Each
//! is written there as its Create would have, under the target's lease, with the record,
//! under the same holder, so that the statement resource's later Update and Delete reach it.
//! A repository that answers `RepositoryNotFoundException` at first (ECR's reads lag its
//! writes) is tried again with backoff, and a write whose outcome is unknown is applied once
//! more after a pause (nothing else would retry it). One whose policy already has the Sid
//! with other content (or held by another resource) is left as it is and reported like
//! drift.
//!
//! **The sweep** applies what an event missed: every repository and template under an
//! indexed prefix whose record does not know the statement gets it, whatever `DRIFT_ACTION`
//! says (it is the statement's own promise, not a restore). It also forgets a deleted
//! repository that only prefix statements held (as the `DeleteRepository` event does), which
//! is not drift.

use super::judge;
use super::lease;
use super::{Context, HeldLease, Settings, apply_leased, finish};
use crate::drift::compare::Difference;
use crate::drift::{self, Call, DriftError, Finding, Shape, Summary};
use crate::ecr::PolicyStore;
use crate::error::Failure;
use crate::event::{Content, Desired, Prefixed};
use crate::identity::{ROOT_PREFIX, Target, prefix_matches, template_matches};
use crate::lock::{
    self, Displaced, Gone, Held, Holder, LockError, LockStore, Record, RecordReader, Snapshot,
};
use crate::plan::{self, Approach};
use crate::policy::{Statements, sid_of};
use crate::retry::Clock;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

use crate::lock::INDEX_KEY_PREFIX;

/// Pauses between reads of a target just created that ECR does not show yet
/// (`RepositoryNotFoundException`): 15.5 s in all, while the invocation has time.
pub const NOT_YET_PAUSES: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// How long an index item remembers a prefix statement whose Delete came ([`end`]): as long
/// as the lock table keeps an item that holds nothing (30 days after its last use), and
/// many daily sweeps.
const ENDED_KEPT_MS: u64 = 30 * 24 * 3600 * 1000;

/// The pause before a write whose outcome is unknown is applied again.
const UNKNOWN_PAUSE: Duration = Duration::from_secs(1);

/// How many targets the sweep applies prefix statements to at once.
const SWEEP_CONCURRENCY: usize = 4;
/// How long the sweep waits for a target's lease a request holds, before it leaves the
/// target to the next sweep (`busy`).
const SWEEP_LEASE_WAIT: Duration = Duration::from_secs(10);

/// The index item of the prefix statements on `prefix` in `region`: `team` and `team/`
/// share one.
pub fn index_key(region: &str, prefix: &str) -> String {
    let prefix = if prefix == ROOT_PREFIX {
        prefix
    } else {
        prefix.strip_suffix('/').unwrap_or(prefix)
    };
    format!("{INDEX_KEY_PREFIX}{region}/{prefix}")
}

/// The region and prefix an index key names: the inverse of [`index_key`].
pub fn index_of(key: &str) -> Option<(String, String)> {
    let (region, prefix) = key.strip_prefix(INDEX_KEY_PREFIX)?.split_once('/')?;
    (!region.is_empty() && !prefix.is_empty()).then(|| (region.to_owned(), prefix.to_owned()))
}

/// Whether a prefix statement on `prefix` reaches `target` (CONTRACT 15).
pub fn covers(prefix: &str, target: &Target) -> bool {
    match target {
        Target::Repository { name, .. } => prefix_matches(prefix, name),
        Target::Template {
            prefix: template, ..
        } => template_matches(prefix, template),
        Target::Registry { .. } => false,
    }
}

/// The index items that may hold a prefix statement reaching `target`: its parents' (and,
/// for a template, its own prefix's), and `ROOT`'s.
pub fn covering_keys(target: &Target) -> Vec<String> {
    let (region, path, itself) = match target {
        Target::Repository { region, name } => (region, name.as_str(), false),
        Target::Template { region, prefix } if prefix == ROOT_PREFIX => {
            return vec![index_key(region, ROOT_PREFIX)];
        }
        Target::Template { region, prefix } => {
            (region, prefix.strip_suffix('/').unwrap_or(prefix), true)
        }
        Target::Registry { .. } => return Vec::new(),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let last = if itself { parts.len() } else { parts.len() - 1 };
    let mut keys: Vec<String> = (1..=last)
        .map(|n| index_key(region, &parts[..n].join("/")))
        .collect();
    keys.push(index_key(region, ROOT_PREFIX));
    keys
}

/// A prefix statement as the index holds it: the index item it was read from, its holder
/// and its statements, by Sid, and the resources it took those Sids from there (each gets
/// its Sid back if this one goes first, on every target this one reaches later too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub key: String,
    pub holder: Holder,
    pub statements: Vec<(String, Held)>,
    pub displaced: Vec<Displaced>,
}

impl Indexed {
    fn sids(&self) -> Vec<String> {
        self.statements.iter().map(|(sid, _)| sid.clone()).collect()
    }

    /// The statement resource it is on one target: no `Adopt` (a differing Sid there is
    /// left as it is), its `Force`; judged for public access when it was created.
    fn on(&self, target: &Target) -> Option<Desired> {
        let items: Vec<Value> = self
            .statements
            .iter()
            .filter_map(|(_, held)| serde_json::from_str(held.statement.as_deref()?).ok())
            .collect();
        let statements = Statements::from_property(&Value::Array(items)).ok()?;
        Some(Desired {
            target: target.clone(),
            content: Content::Statements(statements),
            adopt: false,
            force: self.statements.iter().any(|(_, held)| held.force),
            allow_public: true,
        })
    }
}

/// The prefix statements of the index item `key` (on `prefix`), by holder, for the targets
/// they cover.
fn indexed_in(key: &str, prefix: &str, record: &Record, target: &Target) -> Vec<Indexed> {
    if covers(prefix, target) {
        by_holder(key, record)
    } else {
        Vec::new()
    }
}

/// Every prefix statement of the index item `key`, by holder.
fn by_holder(key: &str, record: &Record) -> Vec<Indexed> {
    let mut by_tag: BTreeMap<String, Indexed> = BTreeMap::new();
    for (sid, held) in &record.statements {
        by_tag
            .entry(held.holder.tag.clone())
            .or_insert_with(|| Indexed {
                key: key.to_owned(),
                holder: held.holder.clone(),
                statements: Vec::new(),
                displaced: Vec::new(),
            })
            .statements
            .push((sid.clone(), held.clone()));
    }
    for entry in &record.displaced {
        let taker = entry.by.as_ref().map(|by| by.tag.as_str());
        let sid = entry.sid.as_deref();
        if let Some(indexed) = taker.and_then(|tag| by_tag.get_mut(tag))
            && indexed
                .statements
                .iter()
                .any(|(s, _)| Some(s.as_str()) == sid)
        {
            indexed.displaced.push(entry.clone());
        }
    }
    by_tag.into_values().collect()
}

/// Writes a prefix statement's statements into its index item, under the item's lease
/// ([`declare`]); returns it as the item then holds it (an Update in place leaves another's
/// Sid to the one that took it), with the prefix statements there that hold a Sid it
/// declares.
pub(super) async fn register<L: LockStore>(
    prefixed: &Prefixed,
    approach: &Approach,
    me: &Holder,
    cx: &Context<'_, L>,
) -> Result<(Indexed, Vec<Indexed>), Failure> {
    let statements = prefixed
        .each
        .statements()
        .map(|s| s.items().to_vec())
        .unwrap_or_default();
    let force = prefixed.each.force;
    let statements: Vec<(String, Held)> = statements
        .iter()
        .filter_map(|statement| {
            let held = Held {
                holder: me.clone(),
                statement: Some(statement.to_string()),
                force,
                ..Held::default()
            };
            Some((sid_of(statement)?.to_owned(), held))
        })
        .collect();
    let (region, prefix) = (prefixed.region(), prefixed.prefix.as_str());
    let record = edit_index(region, prefix, cx, |record| {
        declare(record, me, approach.creates(), statements);
    })
    .await?;
    let key = index_key(region, prefix);
    let (mine, others): (Vec<Indexed>, Vec<Indexed>) = by_holder(&key, &record)
        .into_iter()
        .partition(|indexed| indexed.holder.tag == me.tag);
    let declared = prefixed.statements().sids();
    let takers = others
        .into_iter()
        .filter(|other| {
            other
                .statements
                .iter()
                .any(|(sid, _)| declared.contains(sid))
        })
        .collect();
    let mine = mine.into_iter().next().unwrap_or_else(|| Indexed {
        key,
        holder: me.clone(),
        statements: Vec::new(),
        displaced: Vec::new(),
    });
    Ok((mine, takers))
}

/// Takes what the resource of `tag` holds out of the index item of `prefix`, handing back
/// what it took over ([`withdraw`]).
pub(super) async fn unregister<L: LockStore>(
    region: &str,
    prefix: &str,
    tag: &str,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    edit_index(region, prefix, cx, |record| withdraw(record, tag))
        .await
        .map(drop)
}

/// A prefix statement's Delete (or its failed Create's Delete) in the index item of its
/// prefix: its entries taken out ([`unregister`]), and the resource remembered there as
/// ended (the item's `gone`, for [`ENDED_KEPT_MS`]). A repository deleted before the Delete
/// listed the prefix's matches keeps the statement in its record; remembered as a prefix
/// statement, it is forgotten by its `DeleteRepository` event or the sweep, not reported
/// as drift (CONTRACT 15), and the sweep never indexes it again from that record.
pub(super) async fn end<L: LockStore>(
    region: &str,
    prefix: &str,
    tag: &str,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    let now_ms = cx.clock.now_ms();
    let holder = Holder {
        tag: tag.to_owned(),
        stack: cx.stack_id.to_owned(),
        logical: cx.logical_id.to_owned(),
    };
    edit_index(region, prefix, cx, |record| {
        withdraw(record, tag);
        record
            .gone
            .retain(|g| g.holder.tag != tag && now_ms.saturating_sub(g.at_ms) < ENDED_KEPT_MS);
        record.gone.push(Gone {
            holder,
            at_ms: now_ms,
        });
    })
    .await
    .map(drop)
}

/// The tags of the prefix statements an index item remembers as ended ([`end`]).
fn ended_in(record: &Record) -> impl Iterator<Item = &str> {
    record.gone.iter().map(|g| g.holder.tag.as_str())
}

/// An index item once the prefix statement `me` declares `statements` there (its Create,
/// `creates`, or its Update), as a target's record would be (CONTRACT 11): a Sid another
/// resource holds there is taken over by a Create (or the same resource's replacement),
/// which gives it back if it goes first; an Update in place takes nothing over (a Sid
/// another took from it stays theirs, its declaration kept for the hand-back). A Create the
/// targets refuse takes its entries out again ([`withdraw`]), which hands back what it took:
/// the index never loses a holder to a Create that did not happen.
fn declare(record: &mut Record, me: &Holder, creates: bool, statements: Vec<(String, Held)>) {
    let is_me = |h: &Holder| h.tag == me.tag;
    let declared: BTreeSet<String> = statements.iter().map(|(sid, _)| sid.clone()).collect();
    record
        .statements
        .retain(|sid, held| !is_me(&held.holder) || declared.contains(sid));
    record
        .displaced
        .retain(|d| !is_me(&d.holder) || d.sid.as_ref().is_some_and(|sid| declared.contains(sid)));
    for (sid, held) in statements {
        match record.statements.get(&sid) {
            Some(there) if is_me(&there.holder) => {}
            Some(there) if creates || there.holder.same_resource(me) => {
                let (holder, text, force) = (
                    there.holder.clone(),
                    there.statement.clone().unwrap_or_default(),
                    there.force,
                );
                plan::history::displace(
                    record,
                    &holder,
                    Some(&sid),
                    &text,
                    force,
                    plan::history::Taker::Took(me),
                );
            }
            Some(_) => {
                let text = held.statement.as_deref().unwrap_or_default();
                plan::history::update_displaced(record, is_me, Some(&sid), text, held.force);
                continue;
            }
            None => {}
        }
        record
            .displaced
            .retain(|d| !(is_me(&d.holder) && d.sid.as_deref() == Some(sid.as_str())));
        record.statements.insert(sid, held);
    }
    // The Sids it declares no more go back to those it took them from.
    plan::history::release(record, is_me);
}

/// An index item once the prefix statement of `tag` leaves it (its Delete, its failed
/// Create's Delete): its entries out, and every Sid it took over back with the resource it
/// took it from (the latest that still declares it).
fn withdraw(record: &mut Record, tag: &str) {
    let is_me = |h: &Holder| h.tag == tag;
    record.statements.retain(|_, held| !is_me(&held.holder));
    plan::history::forget_displaced(record, is_me);
    plan::history::release(record, is_me);
}

/// The index item of `prefix` with `edit` done, under its lease: the record as stored.
async fn edit_index<L: LockStore>(
    region: &str,
    prefix: &str,
    cx: &Context<'_, L>,
    edit: impl FnOnce(&mut Record),
) -> Result<Record, Failure> {
    let Some(lock) = cx.lock else {
        return Err(Failure::NoLockTable);
    };
    let key = index_key(region, prefix);
    let what = format!("the index of the prefix statements on {prefix:?} in {region}");
    let taken = lease::take_key(key, &what, lock, cx).await?;
    let mut record = taken.record.clone();
    edit(&mut record);
    let stored = lease::store(Some(&taken), &record, cx).await;
    finish(Some(&taken), stored.map(|()| (record.clone(), record)), cx).await
}

/// What an event or a sweep needs to write under a target's lease.
pub struct Arrivals<'a, L> {
    pub lock: &'a L,
    pub settings: &'a Settings,
    pub clock: Clock,
    /// No work starts after this.
    pub until: Instant,
    /// Until when a lease lasts (ms since the epoch).
    pub lease_until_ms: u64,
    /// Who takes the leases: unique to the invocation.
    pub owner: String,
}

impl<L: LockStore> Arrivals<'_, L> {
    /// The context of work for `holder` under this invocation's leases, by `deadline`.
    fn context<'c>(
        &'c self,
        holder: &'c Holder,
        held: &'c HeldLease,
        pace: &'c super::pace::Pace,
        deadline: Instant,
    ) -> Context<'c, L> {
        Context {
            stack_id: &holder.stack,
            logical_id: &holder.logical,
            request_id: &holder.tag,
            lease_owner: self.owner.clone(),
            settings: self.settings,
            deadline,
            clock: self.clock,
            lease_until_ms: self.lease_until_ms,
            lock: Some(self.lock),
            held,
            pace,
            // A target or an index item at a time: nothing to continue in another invocation.
            progress: None,
            stop_at: None,
        }
    }
}

/// What became of one prefix statement on a new target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrived {
    /// It holds the statements now (`changed`: they were written).
    Applied {
        holder: Holder,
        sids: Vec<String>,
        changed: bool,
    },
    /// Left as it was, with why (a differing Sid, one another resource holds, ECR refused).
    Left {
        holder: Holder,
        sids: Vec<String>,
        why: String,
    },
    /// The target is gone (or never showed).
    Gone,
    /// The statement left the index before it was written (its resource was deleted, or
    /// its Create failed, meanwhile): nothing written.
    Withdrawn { holder: Holder, sids: Vec<String> },
    /// A request held the target's lease all the while.
    Busy,
}

/// The prefix statements the index holds that reach `target`.
async fn covering<L: RecordReader>(lock: &L, target: &Target) -> Result<Vec<Indexed>, LockError> {
    Ok(prefixes_over(lock, target).await?.indexed)
}

/// What the index items that can cover `target` say of it: the prefix statements covering
/// it ([`covering`]), and those whose Delete came lately under those prefixes.
async fn prefixes_over<L: RecordReader>(lock: &L, target: &Target) -> Result<Prefixes, LockError> {
    let mut found: Vec<Indexed> = Vec::new();
    let mut ended = BTreeSet::new();
    let mut keys = covering_keys(target);
    // The broadest first: a holder found under two prefixes (its own, and a narrower one a
    // sweep indexed it under before its Update) is taken from its own.
    if let Some(root) = keys.pop() {
        keys.insert(0, root);
    }
    for key in keys {
        let Some(snapshot) = lock.read(&key).await? else {
            continue;
        };
        if let Some((_, prefix)) = index_of(&key) {
            for indexed in indexed_in(&key, &prefix, &snapshot.record, target) {
                if !found.iter().any(|f| f.holder.tag == indexed.holder.tag) {
                    found.push(indexed);
                }
            }
            ended.extend(ended_in(&snapshot.record).map(str::to_owned));
        }
    }
    Ok(Prefixes {
        indexed: found,
        ended,
    })
}

/// Writes `indexed` on `target` as its Create there would have, under the target's lease,
/// by `deadline`; `wait`: a target ECR does not show yet is read again after
/// [`NOT_YET_PAUSES`].
pub(super) async fn apply_on<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
    indexed: &Indexed,
    target: &Target,
    wait: bool,
    deadline: Instant,
) -> Arrived {
    let holder = &indexed.holder;
    let sids = indexed.sids();
    let left = |why: String| Arrived::Left {
        holder: holder.clone(),
        sids: sids.clone(),
        why,
    };
    let Some(desired) = indexed.on(target) else {
        return left("the index holds statements that no longer read".into());
    };
    let held = HeldLease::default();
    let pace = super::pace::Pace::new(deadline);
    let cx = on.context(holder, &held, &pace, deadline);
    let mut pauses = NOT_YET_PAUSES.iter().filter(|_| wait);
    // A write whose outcome is unknown is tried again once: no CloudFormation request
    // retries it, and the record announcing it would leave it to the next sweep's report.
    let mut unknown_once = true;
    loop {
        let mut findings = judge::judge(&desired, &holder.stack, on.settings);
        if let Some(refusal) = findings.refusal.take() {
            return left(refusal.to_string());
        }
        let result = match lease::take(target, true, &cx).await {
            Ok(taken) => {
                // Under the target's lease, and just before the write: a Delete that took
                // the statement out of the index since it was read passes over this target
                // after this lease (and finds what is written here in its record), or
                // already did (and this writes nothing).
                let seeded = taken.as_ref().map(|t| seeded(t, indexed));
                let as_taken = || taken.as_ref().map(|t| t.record.clone()).unwrap_or_default();
                // A Sid another resource took from it here stays theirs.
                let here = match &taken {
                    Some(t) => not_taken_from(&desired, &t.record, &holder.tag),
                    None => Some(desired.clone()),
                };
                let result = match (still_indexed(on.lock, indexed).await, here) {
                    (Ok(true), Some(here)) => apply_leased(
                        store,
                        &Approach::Create,
                        &here,
                        holder,
                        seeded.as_ref(),
                        findings,
                        &cx,
                    )
                    .await
                    .map(|(applied, record)| (Some(applied.changed), record)),
                    (Ok(true), None) => Ok((Some(false), as_taken())),
                    (Ok(false), _) => Ok((None, as_taken())),
                    (Err(error), _) => Err(Failure::Lock(error)),
                };
                finish(taken.as_ref(), result, &cx).await
            }
            Err(failure) => Err(failure),
        };
        match result {
            Ok(None) => {
                return Arrived::Withdrawn {
                    holder: holder.clone(),
                    sids,
                };
            }
            Ok(Some(changed)) => {
                return Arrived::Applied {
                    holder: holder.clone(),
                    sids,
                    changed,
                };
            }
            Err(Failure::Ecr(gone)) if gone.target_gone() => match pauses.next() {
                Some(pause) if Instant::now() + *pause < deadline => {
                    tracing::info!(target_key = %lock::key(target), pause_ms = pause.as_millis() as u64, "a new target ECR does not show yet: read again");
                    tokio::time::sleep(*pause).await;
                }
                _ => return Arrived::Gone,
            },
            Err(Failure::Busy { .. }) => return Arrived::Busy,
            Err(failure)
                if unknown_once
                    && super::may_have_landed(&failure)
                    && Instant::now() + UNKNOWN_PAUSE < deadline =>
            {
                unknown_once = false;
                tracing::info!(target_key = %lock::key(target), error = %failure, "the write's outcome is unknown: applied again");
                tokio::time::sleep(UNKNOWN_PAUSE).await;
            }
            Err(failure) => return left(failure.to_string()),
        }
    }
}

/// `desired` without the statements whose Sid another resource took from the resource of
/// `tag` on the target of `record`; `None` when none is left.
fn not_taken_from(desired: &Desired, record: &Record, tag: &str) -> Option<Desired> {
    let taken = |sid: &str| {
        record
            .displaced
            .iter()
            .any(|d| d.holder.tag == tag && d.sid.as_deref() == Some(sid))
    };
    let statements = desired.statements()?.only(|sid| !taken(sid))?;
    Some(Desired {
        content: Content::Statements(statements),
        ..desired.clone()
    })
}

/// Whether `record` lacks one of the statements of `indexed`: a Sid neither held there by
/// its resource nor taken from it by another (CONTRACT 15: the sweep applies it).
fn lacks(record: &Record, indexed: &Indexed) -> bool {
    let tag = indexed.holder.tag.as_str();
    indexed.statements.iter().any(|(sid, _)| {
        record
            .statements
            .get(sid)
            .is_none_or(|held| held.holder.tag != tag)
            && !record
                .displaced
                .iter()
                .any(|d| d.holder.tag == tag && d.sid.as_deref() == Some(sid.as_str()))
    })
}

/// The target's record as the lease took it, remembering, for each Sid `indexed` brings
/// that nobody holds there yet, the resources it took that Sid from in the index: on this
/// target as on the others, its Delete hands the Sid back to them, and their Updates change
/// nothing here while it holds it (CONTRACT 11).
pub(super) fn seeded(taken: &lease::Taken, indexed: &Indexed) -> lease::Taken {
    let mut taken = taken.clone();
    let record = &mut taken.record;
    for entry in &indexed.displaced {
        let Some(sid) = entry.sid.as_deref() else {
            continue;
        };
        let known = record
            .displaced
            .iter()
            .any(|d| d.holder.same_resource(&entry.holder) && d.sid.as_deref() == Some(sid));
        if !record.statements.contains_key(sid) && !known {
            record.displaced.push(entry.clone());
        }
    }
    taken
}

/// Whether the index item `indexed` was read from still holds its statements, as they were
/// read, under its holder.
pub(super) async fn still_indexed<L: RecordReader>(
    lock: &L,
    indexed: &Indexed,
) -> Result<bool, LockError> {
    let record = lock
        .read(&indexed.key)
        .await?
        .map(|snapshot| snapshot.record)
        .unwrap_or_default();
    Ok(by_holder(&indexed.key, &record).contains(indexed))
}

/// Logs what became of `indexed` on `target`; a statement left as it was is a finding.
pub(super) fn report(target: &Target, arrived: &Arrived, by: Option<&str>) -> Option<Finding> {
    let key = lock::key(target);
    match arrived {
        Arrived::Applied {
            holder,
            sids,
            changed,
        } => {
            tracing::info!(target_key = %key, stack = %holder.stack, logical = %holder.logical, sids = %sids.join(","), changed, "prefix statement applied");
            None
        }
        Arrived::Left { holder, sids, why } => {
            tracing::warn!(target_key = %key, stack = %holder.stack, logical = %holder.logical, sids = %sids.join(","), reason = %why, "prefix statement not applied");
            Some(Finding {
                target: target.clone(),
                difference: Difference {
                    missing: sids.clone(),
                    ..Difference::default()
                },
                by: by.map(str::to_owned),
                restored: false,
                not_restored: Some(why.clone()),
            })
        }
        Arrived::Gone => {
            tracing::info!(target_key = %key, "the new target is gone; skipped");
            None
        }
        Arrived::Withdrawn { holder, sids } => {
            tracing::info!(target_key = %key, stack = %holder.stack, logical = %holder.logical, sids = %sids.join(","), "prefix statement withdrawn meanwhile; not applied");
            None
        }
        Arrived::Busy => {
            tracing::info!(target_key = %key, "a request holds the target's lease; left for later");
            None
        }
    }
}

/// A `CreateRepository` or `CreateRepositoryCreationTemplate` event: every prefix statement
/// that covers the new target, applied there.
async fn created<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
    call: &Call,
) -> Result<Summary, DriftError> {
    let key = lock::key(&call.target);
    if call.failed {
        tracing::info!(target_key = %key, event = %call.name, "the call failed: nothing was created");
        return Ok(Summary::default());
    }
    let found = covering(on.lock, &call.target).await?;
    if found.is_empty() {
        tracing::info!(target_key = %key, event = %call.name, "no prefix statement covers the new target");
        return Ok(Summary::default());
    }
    let mut summary = Summary {
        targets: 1,
        ..Summary::default()
    };
    for indexed in &found {
        let arrived = apply_on(store, on, indexed, &call.target, true, on.until).await;
        summary
            .findings
            .extend(report(&call.target, &arrived, call.by.as_deref()));
        match arrived {
            Arrived::Gone => break,
            // As for a drift event: failed, so that Lambda delivers it again.
            Arrived::Busy => return Err(DriftError::Leased { target: key }),
            // Withdrawn: what its Delete (or failed Create's) handed back to another
            // resource reaches this target by the sweep.
            Arrived::Applied { .. } | Arrived::Left { .. } | Arrived::Withdrawn { .. } => {}
        }
    }
    Ok(summary)
}

/// The prefix statements a target's record may name: those the index names, and those whose
/// Delete came lately ([`end`]), by tag.
#[derive(Debug, Default)]
struct Prefixes {
    indexed: Vec<Indexed>,
    ended: BTreeSet<String>,
}

impl Prefixes {
    fn holds(&self, holder: &Holder) -> bool {
        self.indexed.iter().any(|i| i.holder.same_resource(holder))
            || self.ended.contains(&holder.tag)
    }
}

/// Whether the record holds nothing but what prefix statements hold (indexed, or ended),
/// and remembers nothing displaced but Sids such a statement took (by `Adopt`) from another.
fn only_prefix_statements(record: &Record, prefixes: &Prefixes) -> bool {
    let prefixed = |holder: &Holder| prefixes.holds(holder);
    record.owner.is_none()
        && record
            .displaced
            .iter()
            .all(|d| d.sid.is_some() && d.by.as_ref().is_some_and(prefixed))
        && !record.statements.is_empty()
        && record
            .statements
            .values()
            .all(|held| prefixed(&held.holder))
}

/// What became of a repository a CloudTrail event or the sweep says is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgot {
    /// Only prefix statements held it, and ECR says it is gone: its record is cleared.
    Forgotten,
    /// Only prefix statements held it, but ECR's read still shows it (a read lagging the
    /// deletion, or a repository created again under the name): nothing changed, the
    /// sweep looks again.
    StillShown,
    /// Its record holds more than prefix statements (or none, or a request holds its
    /// lease): a drift check judges it.
    Kept,
}

/// A deleted repository that only prefix statements held is forgotten (its record cleared,
/// under its lease, once ECR confirms it is gone): not drift (CONTRACT 15). `wait`: ECR's
/// read may lag the deletion a CloudTrail event reports, so it is read again after
/// [`NOT_YET_PAUSES`] while it still shows the repository.
async fn forget_if_gone<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
    target: &Target,
    prefixes: &Prefixes,
    wait: bool,
) -> Result<Forgot, LockError> {
    let key = lock::key(target);
    let Some(snapshot) = on.lock.read(&key).await? else {
        return Ok(Forgot::Kept);
    };
    if !only_prefix_statements(&snapshot.record, prefixes) {
        return Ok(Forgot::Kept);
    }
    let gone = |read: Result<Option<crate::ecr::LivePolicy>, crate::ecr::EcrError>| matches!(read, Err(e) if e.target_gone());
    let mut pauses = NOT_YET_PAUSES.iter().filter(|_| wait);
    while !gone(store.get(target).await) {
        match pauses.next() {
            Some(pause) if Instant::now() + *pause < on.until => tokio::time::sleep(*pause).await,
            _ => return Ok(Forgot::StillShown),
        }
    }
    let now = on.clock.now_ms();
    let record = match on
        .lock
        .acquire(&key, &on.owner, now, on.lease_until_ms)
        .await
    {
        Ok(record) => record,
        Err(LockError::Busy) => return Ok(Forgot::Kept),
        Err(error) => return Err(error),
    };
    let gone = only_prefix_statements(&record, prefixes) && gone(store.get(target).await);
    if gone {
        on.lock.store(&key, &on.owner, &Record::default()).await?;
        tracing::info!(target_key = %key, "a deleted repository only prefix statements held: forgotten");
    }
    on.lock.release(&key, &on.owner, gone).await?;
    Ok(if gone {
        Forgot::Forgotten
    } else {
        Forgot::Kept
    })
}

/// The drift check's findings, without those on deleted repositories that only prefix
/// statements held: such a repository is forgotten, not drift (CONTRACT 15). ECR's reads
/// may show a deleted repository for a while: the check, which waits for a read to catch
/// up with the provider's own writes, may see it gone only after the event's own wait for
/// the deletion ([`NOT_YET_PAUSES`]) or the sweep's listing.
async fn without_deleted<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
    mut summary: Summary,
) -> Result<Summary, DriftError> {
    let mut kept = Vec::with_capacity(summary.findings.len());
    for finding in std::mem::take(&mut summary.findings) {
        if matches!(finding.target, Target::Repository { .. })
            && !finding.difference.missing.is_empty()
        {
            let prefixes = prefixes_over(on.lock, &finding.target).await?;
            if forget_if_gone(store, on, &finding.target, &prefixes, false).await?
                == Forgot::Forgotten
            {
                continue;
            }
        }
        kept.push(finding);
    }
    summary.findings = kept;
    Ok(summary)
}

/// A prefix statement that targets' records hold and no index item names: written before
/// the index existed (or its index entry lost). Its holder, its statements (as every target
/// holding it holds them), and those targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unindexed {
    pub region: String,
    pub holder: Holder,
    pub statements: BTreeMap<String, Held>,
    pub targets: Vec<Target>,
}

/// The prefix statements that targets' records hold and no index item of their region
/// names, with the narrowest prefix that covers every target each holds.
///
/// A record does not say which resource kind holds a Sid, so only what no other kind can
/// hold counts: a creation template (only prefix statements reach one), or one resource,
/// by its tag, holding Sids in two targets or more (a statement resource on one repository
/// or registry holds one target; a move to another is a new resource, with a new tag). A
/// holder whose targets hold different statements, or statements no longer readable, is
/// left to its next Update. The prefix is the narrowest one that covers every target it
/// holds, never broader than the one its resource names (which covers them all), so that
/// no repository outside that prefix gets the grant; a repository under the resource's
/// prefix but outside the narrowest one still gets it at the resource's next Update, which
/// indexes it under its own prefix.
pub fn unindexed(items: &BTreeMap<String, Snapshot>) -> Vec<(String, Unindexed)> {
    let indexed: BTreeSet<(String, String)> = items
        .iter()
        .filter_map(|(key, s)| index_of(key).map(|(region, _)| (region, &s.record)))
        .flat_map(|(region, record)| {
            // A holder another took its Sids from in the index is known there too, and one
            // whose Delete came is never indexed again.
            let displaced = record.displaced.iter().map(|d| &d.holder);
            let ended = record.gone.iter().map(|g| &g.holder);
            record
                .statements
                .values()
                .map(|held| &held.holder)
                .chain(displaced)
                .chain(ended)
                .map(move |holder| (region.clone(), holder.tag.clone()))
        })
        .collect();
    let mut found: BTreeMap<(String, String), (Unindexed, bool)> = BTreeMap::new();
    let mut sids_on: BTreeMap<(String, String), Vec<BTreeSet<&str>>> = BTreeMap::new();
    for (key, snapshot) in items {
        let target = match lock::target_of(key) {
            Some(target @ (Target::Repository { .. } | Target::Template { .. })) => target,
            _ => continue,
        };
        let region = target.region().to_owned();
        let mut here: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for (sid, held) in &snapshot.record.statements {
            let id = (region.clone(), held.holder.tag.clone());
            if indexed.contains(&id) {
                continue;
            }
            here.entry(held.holder.tag.clone())
                .or_default()
                .insert(sid.as_str());
            let (entry, consistent) = found.entry(id).or_insert_with(|| {
                let entry = Unindexed {
                    region: region.clone(),
                    holder: held.holder.clone(),
                    statements: BTreeMap::new(),
                    targets: Vec::new(),
                };
                (entry, true)
            });
            if entry.targets.last() != Some(&target) {
                entry.targets.push(target.clone());
            }
            let as_indexed = Held {
                holder: held.holder.clone(),
                statement: held.statement.clone(),
                force: held.force,
                ..Held::default()
            };
            match entry.statements.get(sid) {
                _ if held.statement.is_none() => *consistent = false,
                Some(other) if *other != as_indexed => *consistent = false,
                Some(_) => {}
                None => {
                    entry.statements.insert(sid.clone(), as_indexed);
                }
            }
        }
        for (tag, sids) in here {
            sids_on.entry((region.clone(), tag)).or_default().push(sids);
        }
    }
    found
        .into_iter()
        .filter(|(id, (entry, consistent))| {
            let same_sids = sids_on.get(id).is_some_and(|all| {
                all.iter().all(|sids| {
                    sids.iter()
                        .copied()
                        .eq(entry.statements.keys().map(String::as_str))
                })
            });
            let only_a_prefix_holds = entry.targets.len() >= 2
                || entry
                    .targets
                    .iter()
                    .any(|t| matches!(t, Target::Template { .. }));
            *consistent && same_sids && only_a_prefix_holds
        })
        .map(|(_, (entry, _))| (narrowest_prefix(&entry.targets), entry))
        .collect()
}

/// The narrowest prefix that covers every one of `targets` ([`covers`]): their deepest
/// common parent, or `ROOT` when they have none (or one is the `ROOT` template).
pub fn narrowest_prefix(targets: &[Target]) -> String {
    let mut common: Option<Vec<&str>> = None;
    for target in targets {
        let parents: Vec<&str> = match target {
            Target::Repository { name, .. } => {
                let mut parts: Vec<&str> = name.split('/').collect();
                parts.pop();
                parts
            }
            Target::Template { prefix, .. } if prefix == ROOT_PREFIX => {
                return ROOT_PREFIX.to_owned();
            }
            Target::Template { prefix, .. } => prefix
                .strip_suffix('/')
                .unwrap_or(prefix)
                .split('/')
                .collect(),
            Target::Registry { .. } => return ROOT_PREFIX.to_owned(),
        };
        common = Some(match common {
            None => parents,
            Some(common) => common
                .into_iter()
                .zip(parents)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    match common {
        Some(parts) if !parts.is_empty() => parts.join("/"),
        _ => ROOT_PREFIX.to_owned(),
    }
}

/// The sweep's first step: every prefix statement the index does not know ([`unindexed`])
/// written into the index item of the narrowest prefix covering its targets, so that new
/// repositories get it by their events from now on, and this sweep applies it to those an
/// event missed. Written under the lease of a target that holds it and that ECR still lists
/// (its witness), after checking that target still holds it: a Delete of the resource
/// passes over that target (under its lease) before it takes the resource out of the index
/// items under its prefix ([`forget_elsewhere`]), so either this finds it gone, or that
/// finds it indexed.
async fn rebuild_index<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
    items: &mut BTreeMap<String, Snapshot>,
) -> Result<(), DriftError> {
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (prefix, entry) in unindexed(items) {
        if Instant::now() >= on.until {
            break;
        }
        if !listed.contains_key(&entry.region) {
            let region = entry.region.as_str();
            let (Ok(repositories), Ok(templates)) = (
                store.repositories(region).await,
                store.templates(region).await,
            ) else {
                continue;
            };
            let keys = targets_in(region, repositories, templates)
                .map(|t| lock::key(&t))
                .collect();
            listed.insert(entry.region.clone(), keys);
        }
        let live = &listed[&entry.region];
        let Some(witness) = entry.targets.iter().find(|t| live.contains(&lock::key(t))) else {
            continue;
        };
        let held = HeldLease::default();
        let pace = super::pace::Pace::new(on.until);
        let cx = on.context(&entry.holder, &held, &pace, on.until);
        let what = witness.describe();
        let taken = match lease::take_key(lock::key(witness), &what, on.lock, &cx).await {
            Ok(taken) => taken,
            Err(Failure::Busy { .. }) => continue,
            Err(Failure::Lock(error)) => return Err(error.into()),
            Err(_) => continue,
        };
        let still_held = entry.statements.iter().all(|(sid, held)| {
            taken
                .record
                .statements
                .get(sid)
                .is_some_and(|h| h.holder == held.holder && h.statement == held.statement)
        });
        let result = if still_held {
            let statements = entry.statements.clone();
            let tag = entry.holder.tag.as_str();
            // An Update that indexed it meanwhile under this same prefix is not undone.
            edit_index(&entry.region, &prefix, &cx, |record| {
                // Nor is a Sid another resource holds there taken from it.
                if !record.statements.values().any(|h| h.holder.tag == tag) {
                    for (sid, held) in statements {
                        record.statements.entry(sid).or_insert(held);
                    }
                }
            })
            .await
            .map(drop)
        } else {
            Ok(())
        };
        finish(Some(&taken), Ok(((), taken.record.clone())), &cx)
            .await
            .ok();
        match result {
            Ok(()) if still_held => {
                let key = index_key(&entry.region, &prefix);
                tracing::warn!(
                    index = %key,
                    stack = %entry.holder.stack,
                    logical = %entry.holder.logical,
                    sids = %entry.statements.keys().cloned().collect::<Vec<_>>().join(","),
                    targets = entry.targets.len(),
                    "a prefix statement the index did not know: indexed from its targets' records"
                );
                if let Some(snapshot) = on.lock.read(&key).await? {
                    items.insert(key, snapshot);
                }
            }
            Ok(()) => {}
            Err(Failure::Lock(error)) => return Err(error.into()),
            Err(failure) => {
                tracing::warn!(error = %failure, stack = %entry.holder.stack, logical = %entry.holder.logical, "could not index a prefix statement the index did not know; the next sweep tries again");
            }
        }
    }
    Ok(())
}

/// After an Update or a Delete of the prefix statement of `tag` on `prefix`, once it passed
/// over every one of `targets` (its matches): its entries taken out of every index item
/// under its prefix that covers one of them, where a sweep may have indexed it from its
/// targets' records ([`rebuild_index`], under a narrower prefix); and, for a Delete
/// (`own`), out of its own item again (a sweep may have indexed it there after the Delete
/// took it out, before the Delete passed over the sweep's witness).
pub(super) async fn forget_elsewhere<L: LockStore>(
    region: &str,
    prefix: &str,
    tag: &str,
    targets: &[Target],
    own: bool,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    let own_key = index_key(region, prefix);
    let under = |key: &str| {
        index_of(key).is_some_and(|(_, k)| {
            k != ROOT_PREFIX && (prefix == ROOT_PREFIX || prefix_matches(prefix, &k))
        })
    };
    let mut keys: BTreeSet<String> = targets
        .iter()
        .flat_map(covering_keys)
        .filter(|key| *key != own_key && under(key))
        .collect();
    if own {
        keys.insert(own_key);
    }
    for key in keys {
        if let Some((region, prefix)) = index_of(&key) {
            unregister(&region, &prefix, tag, cx).await?;
        }
    }
    Ok(())
}

/// An index item the sweep read.
struct IndexItem<'a> {
    key: &'a str,
    region: String,
    prefix: String,
    record: &'a Record,
}

/// The repositories and creation templates ECR lists in `region`, as targets.
fn targets_in(
    region: &str,
    repositories: Vec<String>,
    templates: Vec<String>,
) -> impl Iterator<Item = Target> {
    let repositories = repositories.into_iter().map({
        let region = region.to_owned();
        move |name| Target::Repository {
            region: region.clone(),
            name,
        }
    });
    let templates = templates.into_iter().map({
        let region = region.to_owned();
        move |prefix| Target::Template {
            region: region.clone(),
            prefix,
        }
    });
    repositories.chain(templates)
}

/// The sweep's part for prefix statements: forgets deleted repositories only they held,
/// and applies each to every repository and template under its prefix whose record does
/// not know it. Findings for those left as they were.
async fn sweep<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    on: &Arrivals<'_, L>,
) -> Result<Summary, DriftError> {
    let mut items: BTreeMap<String, Snapshot> = on.lock.scan().await?.into_iter().collect();
    rebuild_index(store, on, &mut items).await?;
    let index: Vec<IndexItem<'_>> = items
        .iter()
        .filter_map(|(key, s)| {
            index_of(key).map(|(region, prefix)| IndexItem {
                key,
                region,
                prefix,
                record: &s.record,
            })
        })
        // Items that only remember ended statements too: a repository they held may be gone.
        .filter(|item| !item.record.statements.is_empty() || !item.record.gone.is_empty())
        .collect();
    let regions: BTreeSet<&str> = index.iter().map(|item| item.region.as_str()).collect();
    let mut work: Vec<(Target, Vec<Indexed>)> = Vec::new();
    let mut summary = Summary::default();
    for region in regions {
        let in_region = || index.iter().filter(|item| item.region == region);
        let (repositories, templates) = match (
            store.repositories(region).await,
            store.templates(region).await,
        ) {
            (Ok(r), Ok(t)) => (r, t),
            (Err(error), _) | (_, Err(error)) => {
                summary
                    .failed
                    .push((format!("prefix statements in {region}"), error.to_string()));
                continue;
            }
        };
        let live: BTreeSet<String> = repositories.iter().cloned().collect();
        for target in targets_in(region, repositories, templates) {
            let record = items.get(&lock::key(&target)).map(|s| &s.record);
            let mut missing: Vec<Indexed> = Vec::new();
            for indexed in in_region()
                .flat_map(|item| indexed_in(item.key, &item.prefix, item.record, &target))
                .filter(|i| record.is_none_or(|rec| lacks(rec, i)))
            {
                if !missing.iter().any(|m| m.holder.tag == indexed.holder.tag) {
                    missing.push(indexed);
                }
            }
            if !missing.is_empty() {
                work.push((target, missing));
            }
        }
        // Repositories the record knows that ECR no longer lists.
        let all = Prefixes {
            indexed: in_region()
                .flat_map(|item| by_holder(item.key, item.record))
                .collect(),
            ended: in_region()
                .flat_map(|item| ended_in(item.record).map(str::to_owned))
                .collect(),
        };
        for key in items.keys() {
            if let Some(Target::Repository { region: r, name }) = lock::target_of(key)
                && r == region
                && !live.contains(&name)
            {
                let target = Target::Repository { region: r, name };
                forget_if_gone(store, on, &target, &all, false).await?;
            }
        }
    }
    // One target's prefix statements one after the other (they share its lease owner);
    // targets a few at once, none waiting long for a lease a request holds.
    let results = futures_util::stream::iter(work)
        .map(|(target, missing)| async move {
            let mut done = Vec::new();
            for indexed in &missing {
                if Instant::now() >= on.until {
                    done.push(None);
                    continue;
                }
                let deadline = on.until.min(Instant::now() + SWEEP_LEASE_WAIT);
                done.push(Some(
                    apply_on(store, on, indexed, &target, false, deadline).await,
                ));
            }
            (target, done)
        })
        .buffer_unordered(SWEEP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut applied = 0;
    for (target, done) in results {
        for arrived in done {
            match arrived {
                None => summary.unchecked += 1,
                Some(Arrived::Busy) => summary.busy += 1,
                Some(arrived) => {
                    if matches!(arrived, Arrived::Applied { .. }) {
                        applied += 1;
                    }
                    summary.findings.extend(report(&target, &arrived, None));
                }
            }
        }
    }
    tracing::info!(
        applied,
        left = summary.findings.len(),
        unchecked = summary.unchecked,
        "prefix statements swept"
    );
    Ok(summary)
}

/// Handles an EventBridge event (CONTRACT 13 and 15): a creation applies the prefix
/// statements that cover the new target; a `DeleteRepository` of a repository that only
/// prefix statements held forgets it; the sweep also applies what events missed; every other
/// call is a drift check ([`drift::run`]).
#[allow(clippy::too_many_arguments)]
pub async fn run<E, L>(
    ecr: &E,
    lock: &L,
    shape: &Shape,
    drift_settings: &drift::Settings,
    settings: &Settings,
    clock: &Clock,
    invocation_id: &str,
    until: Instant,
) -> Result<Summary, DriftError>
where
    E: PolicyStore,
    L: LockStore + RecordReader,
{
    let left = until.saturating_duration_since(Instant::now());
    let on = Arrivals {
        lock,
        settings,
        clock: *clock,
        until,
        lease_until_ms: clock.now_ms() + (left + settings.lease_margin).as_millis() as u64,
        owner: format!("prefix/{invocation_id}"),
    };
    let on = &on;
    let check = || async move {
        let summary = drift::run(
            ecr,
            lock,
            shape,
            drift_settings,
            clock,
            invocation_id,
            until,
        )
        .await?;
        without_deleted(ecr, on, summary).await
    };
    match shape {
        Shape::Call(call) if call.creates() => created(ecr, on, call).await,
        Shape::Call(call) if call.name == "DeleteRepository" => {
            let prefixes = prefixes_over(lock, &call.target).await?;
            match forget_if_gone(ecr, on, &call.target, &prefixes, true).await? {
                Forgot::Forgotten => Ok(Summary::default()),
                // A deletion changes no statement: judged from a read that still shows
                // the repository, it would be a read older than the provider's own
                // writes there. The sweep forgets it once ECR no longer lists it.
                Forgot::StillShown => {
                    tracing::info!(target_key = %lock::key(&call.target), "ECR still shows the deleted repository; the sweep forgets it once ECR no longer lists it");
                    Ok(Summary::default())
                }
                Forgot::Kept => check().await,
            }
        }
        Shape::Sweep => {
            let prefixes = sweep(ecr, on).await?;
            let mut summary = check().await?;
            summary.findings.extend(prefixes.findings);
            summary.unchecked += prefixes.unchecked;
            summary.busy += prefixes.busy;
            summary.failed.extend(prefixes.failed);
            if !summary.failed.is_empty() {
                return Err(DriftError::Targets {
                    targets: summary.targets,
                    failed: summary.failed,
                });
            }
            Ok(summary)
        }
        _ => check().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(name: &str) -> Target {
        Target::Repository {
            region: "us-east-1".into(),
            name: name.into(),
        }
    }

    fn template(prefix: &str) -> Target {
        Target::Template {
            region: "us-east-1".into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn the_narrowest_prefix_covers_every_target_and_is_root_only_when_nothing_narrower_does() {
        let cases: [(&[Target], &str); 7] = [
            (&[repository("team/a/x"), repository("team/a/y")], "team/a"),
            (&[repository("team/a/x"), repository("team/b")], "team"),
            (&[repository("team/a/x"), template("team/a/")], "team/a"),
            (&[template("team/")], "team"),
            (&[repository("team/x"), repository("other/y")], "ROOT"),
            (&[repository("app"), repository("team/x")], "ROOT"),
            (&[repository("team/x"), template("ROOT")], "ROOT"),
        ];
        for (targets, expected) in cases {
            let prefix = narrowest_prefix(targets);
            assert_eq!(prefix, expected, "{targets:?}");
            assert!(targets.iter().all(|t| covers(&prefix, t)), "{targets:?}");
        }
    }

    fn holding(tag: &str, sid: &str, statement: &str) -> Snapshot {
        let mut record = Record::default();
        record.statements.insert(
            sid.into(),
            Held {
                holder: Holder {
                    tag: tag.into(),
                    stack: "stack".into(),
                    logical: tag.into(),
                },
                statement: Some(statement.into()),
                ..Held::default()
            },
        );
        Snapshot {
            record,
            leased_until_ms: None,
        }
    }

    #[test]
    fn only_what_a_prefix_statement_alone_can_hold_is_taken_for_one() {
        let mut items: BTreeMap<String, Snapshot> = BTreeMap::new();
        let mut put = |target: Target, snapshot: Snapshot| {
            items.insert(lock::key(&target), snapshot);
        };
        // Two repositories under one tag: a prefix statement.
        put(repository("team/a/x"), holding("p1", "A", "{}"));
        put(repository("team/a/y"), holding("p1", "A", "{}"));
        // One template: a prefix statement.
        put(template("ops/"), holding("p2", "B", "{}"));
        // One repository: a repository statement, or a prefix statement; not taken.
        put(repository("solo/x"), holding("r1", "C", "{}"));
        // Two repositories that hold different statements: not taken.
        put(repository("mixed/x"), holding("p3", "D", "{\"a\":1}"));
        put(repository("mixed/y"), holding("p3", "D", "{\"a\":2}"));
        // Indexed already: not taken.
        put(repository("known/x"), holding("p4", "E", "{}"));
        put(repository("known/y"), holding("p4", "E", "{}"));
        items.insert(index_key("us-east-1", "known"), holding("p4", "E", "{}"));
        // Ended (its Delete came) where the index remembers it: never indexed again.
        items.insert(lock::key(&repository("ended/x")), holding("p5", "F", "{}"));
        items.insert(lock::key(&repository("ended/y")), holding("p5", "F", "{}"));
        let mut ended = Snapshot::default();
        ended.record.gone.push(Gone {
            holder: holding("p5", "F", "{}").record.statements["F"]
                .holder
                .clone(),
            at_ms: 1,
        });
        items.insert(index_key("us-east-1", "ended"), ended);
        let found: Vec<(String, String)> = unindexed(&items)
            .into_iter()
            .map(|(prefix, entry)| (entry.holder.tag, prefix))
            .collect();
        assert_eq!(
            found,
            [("p1".into(), "team/a".into()), ("p2".into(), "ops".into())]
        );
    }

    #[test]
    fn team_and_team_slash_share_one_index_item_and_root_has_its_own() {
        assert_eq!(index_key("us-east-1", "team"), "prefix/us-east-1/team");
        assert_eq!(index_key("us-east-1", "team/"), "prefix/us-east-1/team");
        assert_eq!(index_key("us-east-1", "ROOT"), "prefix/us-east-1/ROOT");
        assert_eq!(
            index_of("prefix/us-east-1/team/a"),
            Some(("us-east-1".into(), "team/a".into()))
        );
        assert_eq!(index_of("repository/us-east-1/team"), None);
    }

    #[test]
    fn a_repository_is_covered_by_its_parents_and_root_never_by_itself() {
        assert_eq!(
            covering_keys(&repository("team/a/app")),
            [
                "prefix/us-east-1/team",
                "prefix/us-east-1/team/a",
                "prefix/us-east-1/ROOT"
            ]
        );
        assert_eq!(covering_keys(&repository("app")), ["prefix/us-east-1/ROOT"]);
        for key in covering_keys(&repository("team/a/app")) {
            let (_, prefix) = index_of(&key).expect("an index key");
            assert!(covers(&prefix, &repository("team/a/app")), "{prefix}");
        }
        assert!(!covers("team", &repository("team-x/app")));
    }

    #[test]
    fn a_template_is_covered_by_its_own_prefix_and_its_parents_and_root_only_by_root() {
        assert_eq!(
            covering_keys(&template("team/a/")),
            [
                "prefix/us-east-1/team",
                "prefix/us-east-1/team/a",
                "prefix/us-east-1/ROOT"
            ]
        );
        assert_eq!(covering_keys(&template("ROOT")), ["prefix/us-east-1/ROOT"]);
        assert!(covers("ROOT", &template("ROOT")));
        assert!(!covers("team", &template("ROOT")));
        assert!(covers("team/", &template("team")));
    }

    fn holder(tag: &str, stack: &str) -> Holder {
        Holder {
            tag: tag.into(),
            stack: stack.into(),
            logical: format!("L{tag}"),
        }
    }

    /// The index item once `me` declares `statements` there, by its Create (`creates`) or
    /// its Update.
    fn declares(record: &mut Record, me: &Holder, creates: bool, statements: &[(&str, &str)]) {
        let statements = statements
            .iter()
            .map(|(sid, text)| {
                let held = Held {
                    holder: me.clone(),
                    statement: Some((*text).into()),
                    ..Held::default()
                };
                ((*sid).to_owned(), held)
            })
            .collect();
        declare(record, me, creates, statements);
    }

    /// Who holds each Sid of the index item, by tag, with the statement.
    fn holders(record: &Record) -> Vec<(String, String, String)> {
        record
            .statements
            .iter()
            .map(|(sid, held)| {
                let text = held.statement.clone().unwrap_or_default();
                (sid.clone(), held.holder.tag.clone(), text)
            })
            .collect()
    }

    fn entry(sid: &str, tag: &str, text: &str) -> (String, String, String) {
        (sid.into(), tag.into(), text.into())
    }

    #[test]
    fn a_create_that_takes_a_sid_and_then_goes_hands_it_back() {
        let a = holder("a", "stack-a");
        let b = holder("b", "stack-b");
        let mut record = Record::default();
        declares(&mut record, &a, true, &[("S", "a1"), ("T", "a2")]);
        // B's Create on S (refused in the targets, adopting, or alone): it holds S now.
        declares(&mut record, &b, true, &[("S", "b1")]);
        assert_eq!(
            holders(&record),
            [entry("S", "b", "b1"), entry("T", "a", "a2")]
        );
        // Its Create fails (or its Delete comes): S is A's again, as A declares it.
        withdraw(&mut record, "b");
        assert_eq!(
            holders(&record),
            [entry("S", "a", "a1"), entry("T", "a", "a2")]
        );
        assert!(record.displaced.is_empty());
    }

    #[test]
    fn a_displaced_resources_update_keeps_its_declaration_for_the_hand_back() {
        let a = holder("a", "stack-a");
        let b = holder("b", "stack-b");
        let mut record = Record::default();
        declares(&mut record, &a, true, &[("S", "a1")]);
        declares(&mut record, &b, true, &[("S", "b1")]);
        // A's Update in place takes nothing back, but S comes back as A declares it now.
        declares(&mut record, &a, false, &[("S", "a2")]);
        assert_eq!(holders(&record), [entry("S", "b", "b1")]);
        withdraw(&mut record, "b");
        assert_eq!(holders(&record), [entry("S", "a", "a2")]);
    }

    #[test]
    fn a_sid_the_taker_declares_no_more_goes_back_and_the_displaced_ones_delete_ends_its_claim() {
        let a = holder("a", "stack-a");
        let b = holder("b", "stack-b");
        let c = holder("c", "stack-c");
        let mut record = Record::default();
        declares(&mut record, &a, true, &[("S", "a1")]);
        declares(&mut record, &b, true, &[("S", "b1"), ("T", "b2")]);
        // B's Update drops S: back with A.
        declares(&mut record, &b, false, &[("T", "b2")]);
        assert_eq!(
            holders(&record),
            [entry("S", "a", "a1"), entry("T", "b", "b2")]
        );
        // C takes T; B is deleted meanwhile: T stays C's, and nothing goes back to B.
        declares(&mut record, &c, true, &[("T", "c1")]);
        withdraw(&mut record, "b");
        withdraw(&mut record, "c");
        assert_eq!(holders(&record), [entry("S", "a", "a1")]);
        assert!(record.displaced.is_empty());
    }

    #[test]
    fn a_replacement_takes_over_from_the_resource_it_replaces_and_a_rollback_hands_back() {
        let old = holder("old", "stack");
        let new = Holder {
            tag: "new".into(),
            ..old.clone()
        };
        let mut record = Record::default();
        declares(&mut record, &old, true, &[("S", "v1")]);
        declares(&mut record, &new, true, &[("S", "v2")]);
        assert_eq!(holders(&record), [entry("S", "new", "v2")]);
        // The rollback deletes the new resource: the old one holds S again.
        withdraw(&mut record, "new");
        assert_eq!(holders(&record), [entry("S", "old", "v1")]);
        // Or the update completes and the old one's cleanup Delete comes: the new one keeps S.
        declares(&mut record, &new, true, &[("S", "v2")]);
        withdraw(&mut record, "old");
        assert_eq!(holders(&record), [entry("S", "new", "v2")]);
    }

    #[test]
    fn a_deleted_repository_held_by_a_prefix_statement_whose_delete_came_is_only_prefix_statements()
    {
        let a = holder("a", "stack-a");
        let mut record = Record::default();
        declares(&mut record, &a, true, &[("S", "a1")]);
        let mut prefixes = Prefixes::default();
        // Neither indexed nor remembered as ended: a repository statement's, perhaps.
        assert!(!only_prefix_statements(&record, &prefixes));
        prefixes.ended.insert("a".into());
        assert!(only_prefix_statements(&record, &prefixes));
        // Another resource of the same stack and logical id (a replacement) is not it.
        record.statements.get_mut("S").unwrap().holder.tag = "a2".into();
        assert!(!only_prefix_statements(&record, &prefixes));
    }

    #[test]
    fn a_deleted_repository_whose_record_remembers_a_prefix_adopt_is_only_prefix_statements() {
        let a = holder("a", "stack-a");
        let b = holder("b", "stack-b");
        let mut index = Record::default();
        declares(&mut index, &a, true, &[("S", "a1")]);
        declares(&mut index, &b, true, &[("S", "b1")]);
        let key = index_key("us-east-1", "team");
        let indexed = Prefixes {
            indexed: by_holder(&key, &index),
            ended: BTreeSet::new(),
        };
        // The repository's record: B took S from A there too.
        let mut record = index.clone();
        assert!(only_prefix_statements(&record, &indexed));
        // A statement resource on the repository that B took S from: gone with the
        // repository too (nothing is left to hand back to it).
        record.displaced[0].holder = holder("r", "stack-r");
        assert!(only_prefix_statements(&record, &indexed));
        // Taken by a resource that is not a prefix statement: the record is kept.
        record.displaced[0].by = Some(holder("r2", "stack-r"));
        assert!(!only_prefix_statements(&record, &indexed));
    }
}
