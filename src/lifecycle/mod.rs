//! Carries out Create, Update and Delete (CONTRACT 4, 9 and 11) against a [`PolicyStore`]:
//! judges what is asked for ([`judge`]: CONTRACT 10 and 12; a Create is refused before any
//! ECR call, an Update only when it would change what is live), takes the target's lease
//! when there is a lock table ([`lease`]), reads the target (again while the read lags
//! behind the provider's last write), asks [`crate::plan::plan`] once what to do, stores the
//! record before ECR is written, writes ECR ([`write`]: the IAM-propagation retry and the
//! undo of a Create's unclear write), puts the record back if ECR refused, and gives the
//! lease back.

pub mod arrivals;
pub mod continuation;
pub mod judge;
pub mod lease;
pub mod pace;
mod prefix;
pub mod write;

use crate::diagnosis::access::PublicAccess;
use crate::ecr::{LivePolicy, PolicyStore};
use crate::error::{Failure, Undo};
use crate::event::progress::Progress;
use crate::event::{Content, Desired, PropertyError, Request, Wanted};
use crate::identity::{PhysicalId, Target};
use crate::lock::{Holder, LockStore, Record, RecordReader};
use crate::plan::{self, Approach, DeletePlan, Intent, Next, Plan, Refusal};
use crate::response::Data;
use crate::retry::{self, Attempt, Backoff, Clock};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

use judge::Findings;
use lease::Taken;
pub use lease::{HeldLease, LEASE_MARGIN};
pub use plan::Applied;
use write::{InFlight, write_or_undo, write_policy};

/// Settings the lifecycle needs from the function's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_region: Option<String>,
    pub iam_propagation_timeout: Duration,
    /// First pause between IAM-propagation retries; it doubles up to 16 times this.
    pub iam_retry_base: Duration,
    /// How long a lease outlives the invocation's answer deadline ([`LEASE_MARGIN`]).
    pub lease_margin: Duration,
    /// Whether public statements are refused (`PUBLIC_ACCESS`, CONTRACT 12).
    pub public_access: PublicAccess,
    /// How many repositories a prefix statement works on at once (`PREFIX_CONCURRENCY`,
    /// CONTRACT 15).
    pub prefix_concurrency: usize,
}

/// The repositories a prefix statement works on at once, unless `PREFIX_CONCURRENCY` says.
pub const DEFAULT_PREFIX_CONCURRENCY: usize = 4;

/// What every step of one request needs.
pub struct Context<'a, L> {
    pub stack_id: &'a str,
    pub logical_id: &'a str,
    /// The request's id: the tag of a new resource.
    pub request_id: &'a str,
    /// Who takes the lease: unique to the invocation (the RequestId with the invocation's
    /// own id), so that a retried acquire recognises its own lease.
    pub lease_owner: String,
    pub settings: &'a Settings,
    /// When the work must be done (the guard's); bounds the retries, the wait for the lock
    /// and the undo.
    pub deadline: Instant,
    /// The time of day: leases and the record's dates.
    pub clock: Clock,
    /// Until when a lease lasts, in milliseconds since the epoch: the invocation's answer
    /// deadline and [`Settings::lease_margin`].
    pub lease_until_ms: u64,
    /// The lock table, when one is configured.
    pub lock: Option<&'a L>,
    pub held: &'a HeldLease,
    /// ECR's pace for the request: a throttled call pauses every call of it.
    pub pace: &'a pace::Pace,
    /// How far the invocations before this one got (CONTRACT 15), when the event carries it.
    pub progress: Option<&'a Progress>,
    /// When a prefix statement stops starting targets and hands the rest to the next
    /// invocation ([`continuation::stop_at`]); `None` when the function cannot invoke
    /// itself: then it works until the deadline.
    pub stop_at: Option<Instant>,
}

impl<L> Context<'_, L> {
    /// Milliseconds since the epoch, now.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The resource this request acts for, with `tag`.
    fn me(&self, tag: &str) -> Holder {
        Holder {
            tag: tag.to_owned(),
            stack: self.stack_id.to_owned(),
            logical: self.logical_id.to_owned(),
        }
    }
}

/// Carries out one decoded request.
pub async fn execute<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    request: &Request,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let store = InFlight::new(store, cx.held, cx.pace);
    let store = &store;
    match request {
        Request::Create {
            resource_type,
            properties,
        } => {
            let wanted = wanted(resource_type, properties, cx.settings)?;
            let me = cx.me(&plan::tag_of(cx.request_id));
            let approach = Approach::Create;
            let mut findings = match &wanted {
                Wanted::One(desired) => judge::judge(desired, cx.stack_id, cx.settings),
                Wanted::Prefix(prefixed) => judge::judge(&prefixed.each, cx.stack_id, cx.settings),
            };
            // A Create is refused before any ECR call: it cannot wedge a stack.
            if let Some(refusal) = findings.refusal.take() {
                return Err(refusal);
            }
            match &wanted {
                Wanted::One(desired) => {
                    id_fits(desired, &approach, &me, cx)?;
                    plan::fits(apply(store, &approach, desired, &me, findings, cx).await?)
                }
                Wanted::Prefix(prefixed) => {
                    prefix::apply(store, &approach, prefixed, &me, cx).await
                }
            }
        }
        Request::Update {
            resource_type,
            physical_id,
            properties,
            old_properties,
        } => {
            let wanted = wanted(resource_type, properties, cx.settings)?;
            let approach = match &wanted {
                Wanted::One(desired) => plan::approach_update(physical_id, desired)?,
                Wanted::Prefix(prefixed) => plan::approach_update_prefix(physical_id, prefixed)?,
            };
            // A statement resource keeps its tag while it stays; a new one takes this
            // request's.
            let tag = match (&approach, PhysicalId::parse(physical_id)) {
                (
                    Approach::UpdateInPlace,
                    PhysicalId::Statements { tag, .. } | PhysicalId::Prefix { tag, .. },
                ) => tag,
                _ => plan::tag_of(cx.request_id),
            };
            let me = cx.me(&tag);
            // A rollback of a failed replacement: what that replacement's write left is taken
            // out first, so that the Update decides against the record as it was before.
            let mut left = false;
            if approach == Approach::UpdateInPlace
                && let Wanted::One(desired) = &wanted
                && let Ok(Wanted::One(old)) =
                    self::wanted(resource_type, old_properties, cx.settings)
            {
                left = left_by_failed_update(store, desired, &old, &me, cx).await?;
            }
            let applied = match &wanted {
                Wanted::One(desired) => {
                    let findings = judge::judge(desired, cx.stack_id, cx.settings);
                    id_fits(desired, &approach, &me, cx)?;
                    apply(store, &approach, desired, &me, findings, cx).await?
                }
                Wanted::Prefix(prefixed) => {
                    prefix::apply(store, &approach, prefixed, &me, cx).await?
                }
            };
            match approach {
                // The id does not change while the target (and the Sids) stay.
                Approach::UpdateInPlace => {
                    let mut applied = Applied {
                        physical_id: physical_id.clone(),
                        ..applied
                    };
                    applied.changed |= left;
                    Ok(applied)
                }
                Approach::Create | Approach::Replace { .. } => plan::fits(applied),
            }
        }
        Request::Delete {
            physical_id,
            resource_type,
            properties,
        } => {
            let (changed, warnings) = match plan::plan_delete(physical_id) {
                DeletePlan::Nothing => (false, Vec::new()),
                DeletePlan::Delete { target, account } => {
                    let me = cx.me("");
                    let intent = Intent::DeleteWhole { me: &me };
                    remove(store, &target, Some(&account), &intent, false, cx).await?
                }
                DeletePlan::Statements {
                    target, tag, sids, ..
                } => {
                    let me = cx.me(&tag);
                    let intent = Intent::DeleteStatements {
                        me: &me,
                        sids: &sids,
                    };
                    remove(store, &target, None, &intent, true, cx).await?
                }
                DeletePlan::Prefix {
                    region,
                    prefix,
                    tag,
                    sids,
                } => prefix::delete(store, &region, &prefix, &cx.me(&tag), &sids, cx).await?,
                DeletePlan::FailedCreate { request_id } => {
                    // The properties name the target (the id names only the request); ones
                    // that no longer read mean nothing was ever written. Without a lock
                    // table there is no record, and nothing is touched.
                    let tag = plan::tag_of(&request_id);
                    match wanted(resource_type, properties, cx.settings) {
                        Ok(Wanted::One(desired)) if cx.lock.is_some() => {
                            let intent = Intent::FailedCreate { tag: &tag };
                            remove(store, &desired.target, None, &intent, true, cx).await?
                        }
                        Ok(Wanted::Prefix(prefixed)) if cx.lock.is_some() => {
                            prefix::failed_create(store, &prefixed, &tag, cx).await?
                        }
                        _ => (false, Vec::new()),
                    }
                }
            };
            let findings = Findings {
                warnings,
                ..Findings::default()
            };
            findings.log();
            Ok(Applied {
                physical_id: physical_id.clone(),
                data: Data {
                    warnings: findings.data(),
                    ..Data::default()
                },
                changed,
            })
        }
    }
}

/// An Update in place whose old properties name another target, or other Sids, than its
/// own: a rollback of an update that was a replacement (a move, new Sids) and failed. What
/// that update's write left there, its answer lost or landing late, is taken out, as a
/// failed Create's Delete does: no Delete of it will come (CONTRACT 11). Whether ECR
/// changed.
async fn left_by_failed_update<S: PolicyStore, L: LockStore>(
    store: &S,
    desired: &Desired,
    old: &Desired,
    me: &Holder,
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    let whole = matches!(desired.content, Content::Policy(_));
    let other_sids = match (&desired.content, &old.content) {
        (Content::Statements(new), Content::Statements(old)) => {
            let sids = |list: &[Value]| {
                list.iter()
                    .filter_map(crate::policy::sid_of)
                    .map(str::to_owned)
                    .collect::<std::collections::BTreeSet<String>>()
            };
            sids(new.items()) != sids(old.items())
        }
        _ => false,
    };
    let moved = old.target != desired.target;
    if cx.lock.is_none() || !(moved || other_sids) || (whole && !moved) {
        return Ok(false);
    }
    let intent = Intent::Leftovers { me, whole };
    let (changed, _) = remove(store, &old.target, None, &intent, !whole, cx).await?;
    Ok(changed)
}

/// Before anything is written: a statement resource's new id must fit (with a 12-digit
/// account, as every registry id has), or the statements would land under a Create that
/// answers FAILED.
fn id_fits<L>(
    desired: &Desired,
    approach: &Approach,
    me: &Holder,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    if matches!(desired.content, Content::Statements(_)) && *approach != Approach::UpdateInPlace {
        let any_account = "0".repeat(12);
        plan::fits(plan::describe(
            desired,
            any_account,
            false,
            false,
            &me.tag,
            cx.stack_id,
        ))?;
    }
    Ok(())
}

fn wanted(
    resource_type: &str,
    properties: &Value,
    settings: &Settings,
) -> Result<Wanted, PropertyError> {
    crate::event::wanted(
        resource_type,
        properties,
        settings.default_region.as_deref(),
    )
}

/// Reads, plans and writes a Create or Update, under the target's lease.
async fn apply<S: PolicyStore, L: LockStore>(
    store: &S,
    approach: &Approach,
    desired: &Desired,
    me: &Holder,
    findings: Findings,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let findings = refused_unless_unchanged(store, desired, findings).await?;
    let statements = matches!(desired.content, Content::Statements(_));
    let lease = lease::take(&desired.target, statements, cx).await?;
    if approach.creates()
        && let Some(lease) = &lease
    {
        cx.held.creating(&lease.key, me);
    }
    if approach.creates()
        && lease
            .as_ref()
            .is_some_and(|l| l.record.failed_create(&me.tag))
    {
        // Another delivery of this Create was answered FAILED: CloudFormation has that
        // answer, so whatever this one did would be a change for nothing.
        return finish_last(lease.as_ref(), Err(Failure::AnsweredFailed), cx).await;
    }
    let result = apply_leased(store, approach, desired, me, lease.as_ref(), findings, cx).await;
    if result.is_err() && approach.creates() {
        lease::mark_failed(lease.as_ref(), me, cx).await;
    }
    finish_last(lease.as_ref(), result, cx).await
}

/// An Update is judged on what it would write (CONTRACT 12): a live policy that already
/// holds what is asked for is kept, with the refusal as a warning, so that neither the
/// Update nor its rollback can wedge the stack. Read once before the lease, so that a
/// refusal stays quick whatever holds the lock.
async fn refused_unless_unchanged<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    mut findings: Findings,
) -> Result<Findings, Failure> {
    if let Some(refusal) = findings.refusal.take() {
        let live = store.get(&desired.target).await.ok().flatten();
        if !judge::unchanged(desired, live.as_ref().map(|l| l.text.as_str())) {
            return Err(refusal);
        }
        findings.refusal = Some(refusal);
    }
    Ok(findings)
}

async fn apply_leased<S: PolicyStore, L: LockStore>(
    store: &S,
    approach: &Approach,
    desired: &Desired,
    me: &Holder,
    lease: Option<&Taken>,
    mut findings: Findings,
    cx: &Context<'_, L>,
) -> Result<(Applied, Record), Failure> {
    let target = &desired.target;
    let record = lease.map(|l| l.record.clone()).unwrap_or_default();
    // Not read as a Delete's: a repository that is gone is ECR's error, passed on.
    let (live, _) = read_settled(store, target, &record, false, cx).await?;
    let live_text = live.as_ref().map(|l| l.text.as_str());
    // The read under the lease decides: what is live may have changed since the first.
    if let Some(refusal) = findings.refusal.take() {
        if !judge::unchanged(desired, live_text) {
            return Err(refusal);
        }
        findings.refusal = Some(refusal);
        findings.forgive();
    }
    findings
        .warnings
        .extend(judge::variables_in_old_version(desired, live_text));
    let intent = Intent::Apply {
        approach,
        desired,
        me,
    };
    let plan =
        plan::plan(&intent, &record, live_text, cx.now_ms()).map_err(|r| refused(target, r))?;
    findings.warnings.extend(plan.warnings.iter().cloned());
    // Record first, then ECR (CONTRACT 11): a record that cannot be stored stops here.
    lease::store_first(lease, &plan.record, cx).await?;
    let carried = carry_out(store, target, None, &plan, lease, cx).await;
    let registry_id = match carried? {
        Some(registry_id) => registry_id,
        None => registry_of(live.as_ref()),
    };
    let changed = plan.next != Next::Keep;
    let mut applied = plan::describe(
        desired,
        registry_id,
        plan.adopted,
        changed,
        &me.tag,
        cx.stack_id,
    );
    findings.log();
    applied.data.warnings = findings.data();
    Ok((applied, plan.record))
}

/// Reads the target, again while the read lags behind the provider's last write (CONTRACT
/// 11), until the read catches up, the record's minute has passed, or the deadline draws
/// near. The policy, and whether the repository itself is gone (`for_delete`: then that is
/// no error).
async fn read_settled<S: PolicyStore, L>(
    store: &S,
    target: &Target,
    record: &Record,
    for_delete: bool,
    cx: &Context<'_, L>,
) -> Result<(Option<LivePolicy>, bool), Failure> {
    let backoff = Backoff {
        first: Duration::from_millis(250),
        max: Duration::from_secs(4),
        jitter: 1.0..1.5,
    };
    // Time kept for the write and the answer after the last read.
    let left = cx.deadline.saturating_duration_since(Instant::now());
    let until = cx.deadline - (left / 2).min(Duration::from_secs(10));
    let read = |_| async {
        let live = match store.get(target).await {
            Ok(live) => live,
            Err(gone) if for_delete && gone.target_gone() => {
                return Attempt::Done((None, true));
            }
            Err(other) => return Attempt::Stop(Err(Failure::from(other))),
        };
        let text = live.as_ref().map(|l| l.text.as_str());
        if plan::read_lags(record, text, cx.now_ms()) {
            Attempt::Retry(Ok((live, false)))
        } else {
            Attempt::Done((live, false))
        }
    };
    let lagging = |_: &Result<(Option<LivePolicy>, bool), Failure>, attempt: u32| {
        tracing::info!(
            attempt,
            "the read lacks what this provider wrote less than a minute ago; reading again"
        );
    };
    match retry::until(&backoff, until, read, lagging).await {
        Ok(live) => Ok(live),
        // Still lagging when time is up: the record wins for held statements.
        Err(gave_up) => gave_up.error,
    }
}

/// Carries out the plan's write, after the record that announces it was stored; puts the
/// record back when ECR refused it (a write that may still land keeps the record, so that a
/// failed Create's Delete can take it out). The registry id a write returned.
async fn carry_out<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    account: Option<&str>,
    plan: &Plan,
    lease: Option<&Taken>,
    cx: &Context<'_, L>,
) -> Result<Option<String>, Failure> {
    let result = match (&plan.next, &plan.undo) {
        (Next::Keep, _) => return Ok(None),
        (Next::Write(text), Some(undo)) => {
            write_or_undo(
                store,
                target,
                text,
                plan.force,
                undo,
                cx.settings,
                cx.deadline,
            )
            .await
        }
        (Next::Write(text), None) => {
            write_policy(store, target, text, plan.force, cx.settings, cx.deadline).await
        }
        (Next::Delete, _) => {
            let registry_id = matches!(target, Target::Repository { .. })
                .then_some(account)
                .flatten();
            store
                .delete(target, registry_id)
                .await
                .map(|_| String::new())
                .map_err(Failure::from)
        }
    };
    match result {
        Ok(registry_id) => Ok(Some(registry_id).filter(|id| !id.is_empty())),
        Err(failure) => {
            // A write abandoned in flight may land yet, whatever a read said.
            if !may_have_landed(&failure) && !cx.held.write_in_flight(&crate::lock::key(target)) {
                match (&failure, &plan.next, &plan.undo, lease) {
                    // Its undo wrote: the record remembers that write, and what it took out.
                    (
                        Failure::Undone {
                            undo: Undo::Removed | Undo::Restored,
                            ..
                        },
                        Next::Write(written),
                        Some(undo),
                        Some(taken),
                    ) => {
                        let mut record = taken.record.clone();
                        plan::undone(&mut record, written, undo, cx.now_ms());
                        lease::put_back_as(lease, &record, cx).await;
                    }
                    _ => lease::put_back(lease, cx).await,
                }
            }
            Err(failure)
        }
    }
}

/// Whether a failed write may still have landed: then the record keeps announcing it, so
/// that a failed Create's Delete can take it out (CONTRACT 11).
pub(super) fn may_have_landed(failure: &Failure) -> bool {
    matches!(
        failure,
        Failure::Undone {
            undo: Undo::Unknown(_),
            ..
        } | Failure::TimedOut(_)
    )
    // An Update's or a Delete's write whose answer never came: it may have landed, and the
    // rollback must not take a lagging read's word that it did not (CONTRACT 11).
    || matches!(failure, Failure::Ecr(e) if e.unanswered())
}

fn registry_of(live: Option<&LivePolicy>) -> String {
    live.map(|l| l.registry_id.clone()).unwrap_or_default()
}

fn refused(target: &Target, refusal: Refusal) -> Failure {
    let target = target.describe();
    match refusal {
        Refusal::AlreadyHasPolicy => Failure::AlreadyHasPolicy { target },
        Refusal::OwnedBy { holder, differs } => Failure::OwnedBy {
            target,
            holder,
            differs,
        },
        Refusal::SidsDiffer(sids) => Failure::SidsDiffer { target, sids },
        Refusal::HeldBy(held) => Failure::HeldBy { target, held },
        Refusal::OwnedWhole(holder) => Failure::OwnedWhole { target, holder },
        Refusal::HeldByStatements(held) => Failure::HeldByStatements { target, held },
        Refusal::TooLong(chars) => Failure::MergedTooLong { target, chars },
        Refusal::LiveNotJson => Failure::LiveNotJson(target),
    }
}

/// A Delete under the target's lease (a whole policy, statements, or what a failed Create
/// left): read, plan, store the record, write. Whether ECR changed, and the warnings.
async fn remove<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    account: Option<&str>,
    intent: &Intent<'_>,
    statements: bool,
    cx: &Context<'_, L>,
) -> Result<(bool, Vec<String>), Failure> {
    let lease = lease::take(target, statements, cx).await?;
    let result = remove_leased(store, target, account, intent, lease.as_ref(), cx).await;
    finish_last(lease.as_ref(), result, cx).await
}

/// A Delete's read, plan, record and write, under the lease: whether ECR changed, the
/// warnings, and the record as stored.
async fn remove_leased<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    account: Option<&str>,
    intent: &Intent<'_>,
    lease: Option<&Taken>,
    cx: &Context<'_, L>,
) -> Result<((bool, Vec<String>), Record), Failure> {
    {
        let record = lease.map(|l| l.record.clone()).unwrap_or_default();
        let nothing_left = match intent {
            // Where it holds nothing, it may still be remembered as displaced (a prefix
            // statement that took its Sid in the index seeded that here): forgotten.
            Intent::FailedCreate { tag } => {
                !plan::holds_under(&record, tag)
                    && !record.displaced.iter().any(|d| d.holder.tag == *tag)
            }
            Intent::Leftovers { me, whole } => {
                plan::left_by_failed_update(&record, me, *whole).is_empty()
            }
            _ => false,
        };
        if nothing_left {
            return Ok(((false, Vec::new()), record));
        }
        let (live, gone) = read_settled(store, target, &record, true, cx).await?;
        let live_text = live.as_ref().map(|l| l.text.as_str());
        let mut plan =
            plan::plan(intent, &record, live_text, cx.now_ms()).map_err(|r| refused(target, r))?;
        if gone {
            // The repository is gone, and its policy with it: the record forgets, ECR has
            // nothing left to change.
            plan.next = Next::Keep;
        }
        if plan.next == Next::Delete && live.is_none() && record.written_ms.is_none() {
            // Not there, and never written by this provider (whose own writes a read may
            // lag behind): nothing to delete.
            plan.next = Next::Keep;
        }
        if matches!(
            intent,
            Intent::FailedCreate { .. } | Intent::Leftovers { .. }
        ) {
            tracing::info!(next = ?plan.next, "taking out what a failed create left behind");
        }
        lease::store_first(lease, &plan.record, cx).await?;
        carry_out(store, target, account, &plan, lease, cx).await?;
        let changed = plan.next != Next::Keep;
        Ok(((changed, plan.warnings), plan.record))
    }
}

/// Gives the lease back once the work is done (the item may expire when the record holds
/// nothing).
async fn finish<L: LockStore, T>(
    lease: Option<&Taken>,
    result: Result<(T, Record), Failure>,
    cx: &Context<'_, L>,
) -> Result<T, Failure> {
    lease::give_back(lease, idle(lease, &result), cx).await;
    result.map(|(value, _)| value)
}

/// As [`finish`], for the lease of a request's one target: given back while the answer is
/// sent ([`lease::give_back_last`]).
async fn finish_last<L: LockStore, T>(
    lease: Option<&Taken>,
    result: Result<(T, Record), Failure>,
    cx: &Context<'_, L>,
) -> Result<T, Failure> {
    lease::give_back_last(lease, idle(lease, &result), cx).await;
    result.map(|(value, _)| value)
}

/// Whether the record holds nothing once the work is done.
fn idle<T>(lease: Option<&Taken>, result: &Result<(T, Record), Failure>) -> bool {
    match (result, lease) {
        (Ok((_, record)), _) => !record.holds_anything(),
        (Err(_), Some(lease)) => !lease.record.holds_anything(),
        (Err(_), None) => false,
    }
}
