//! Carries out Create, Update and Delete (CONTRACT 4, 9 and 11) against a [`PolicyStore`]:
//! judges what is asked for ([`judge`]: CONTRACT 10 and 12; a Create is refused before any
//! ECR call, an Update only when it would change what is live), takes the target's lease
//! when there is a lock table ([`lease`]), reads the target, asks
//! [`crate::plan`] what to do, stores the record before ECR is written, writes ECR
//! ([`write`]: the IAM-propagation retry and the undo of a Create's unclear write), puts
//! the record back if ECR refused, and gives the lease back.

pub mod judge;
pub mod lease;
pub mod write;

use crate::diagnosis::access::PublicAccess;
use crate::ecr::{Deleted, EcrError, LivePolicy, PolicyStore};
use crate::error::{Failure, Undo};
use crate::event::{Content, Desired, PropertyError, Request};
use crate::identity::{PhysicalId, Target};
use crate::lock::{Holder, LockStore, Record};
use crate::plan::{self, Approach, DeletePlan, Next, Refusal};
use crate::response::Data;
use crate::retry::Clock;
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
}

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
pub async fn execute<S: PolicyStore, L: LockStore>(
    store: &S,
    request: &Request,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let store = InFlight::new(store, cx.held);
    let store = &store;
    match request {
        Request::Create {
            resource_type,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, cx.settings)?;
            let mut findings = judge::judge(&desired, cx.stack_id, cx.settings);
            // A Create is refused before any ECR call: it cannot wedge a stack.
            if let Some(refusal) = findings.refusal.take() {
                return Err(refusal);
            }
            let me = cx.me(&plan::tag_of(cx.request_id));
            apply(store, &Approach::Create, &desired, &me, findings, cx).await
        }
        Request::Update {
            resource_type,
            physical_id,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, cx.settings)?;
            let approach = plan::approach_update(physical_id, &desired)?;
            let findings = judge::judge(&desired, cx.stack_id, cx.settings);
            // A statement resource keeps its tag while it stays; a new one takes this
            // request's.
            let tag = match (&approach, PhysicalId::parse(physical_id)) {
                (Approach::UpdateInPlace, PhysicalId::Statements { tag, .. }) => tag,
                _ => plan::tag_of(cx.request_id),
            };
            let applied = apply(store, &approach, &desired, &cx.me(&tag), findings, cx).await?;
            Ok(match approach {
                // The id does not change while the target (and the Sids) stay.
                Approach::UpdateInPlace => Applied {
                    physical_id: physical_id.clone(),
                    ..applied
                },
                Approach::Create | Approach::Replace { .. } => applied,
            })
        }
        Request::Delete {
            physical_id,
            resource_type,
            properties,
        } => {
            let changed = match plan::plan_delete(physical_id) {
                DeletePlan::Nothing => false,
                DeletePlan::Delete { target, account } => {
                    delete_whole(store, &target, &account, cx).await?
                }
                DeletePlan::Statements {
                    target, tag, sids, ..
                } => delete_statements(store, &target, &tag, &sids, cx).await?,
                DeletePlan::FailedCreate { request_id } => {
                    // The properties name the target (the id names only the request); ones
                    // that no longer read mean nothing was ever written.
                    match desired_state(resource_type, properties, cx.settings) {
                        Ok(desired) => {
                            clean_up_failed_create(store, &desired, &request_id, cx).await?
                        }
                        Err(_) => false,
                    }
                }
            };
            Ok(Applied {
                physical_id: physical_id.clone(),
                data: Data::default(),
                changed,
            })
        }
    }
}

fn desired_state(
    resource_type: &str,
    properties: &Value,
    settings: &Settings,
) -> Result<Desired, PropertyError> {
    crate::event::desired_state(
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
    mut findings: Findings,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    if let Some(refusal) = findings.refusal.take() {
        // An Update is judged on what it would write (CONTRACT 12): a live policy that
        // already holds what is asked for is kept, with the refusal as a warning, so that
        // neither the Update nor its rollback can wedge the stack. Read once before the
        // lease, so that a refusal stays quick whatever holds the lock.
        let live = store.get(&desired.target).await.ok().flatten();
        if !judge::unchanged(desired, live.as_ref().map(|l| l.text.as_str())) {
            return Err(refusal);
        }
        findings.refusal = Some(refusal);
    }
    let statements = matches!(desired.content, Content::Statements(_));
    if statements && *approach != Approach::UpdateInPlace {
        // Before anything is written: the new id must fit (with a 12-digit account, as
        // every registry id has), or the statements would land under a Create that
        // answers FAILED.
        let any_account = "0".repeat(12);
        plan::answer(desired, any_account, false, false, &me.tag, cx.stack_id)?;
    }
    let lease = lease::take(&desired.target, statements, cx).await?;
    let result = apply_leased(store, approach, desired, me, lease.as_ref(), findings, cx).await;
    let idle = match (&result, &lease) {
        (Ok((_, record)), _) => !record.holds_anything(),
        (Err(_), Some(lease)) => !lease.record.holds_anything(),
        (Err(_), None) => false,
    };
    lease::give_back(lease.as_ref(), idle, cx).await;
    result.map(|(applied, _)| applied)
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
    let live = store.get(target).await?;
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
    let now = cx.now_ms();
    let decision = plan::decide(approach, desired, live_text, &record, me, now)
        .map_err(|r| refused(target, r))?;
    // Record first, then ECR (CONTRACT 11): a record that cannot be stored stops here.
    lease::store(lease, &decision.record, cx).await?;
    let registry_id = match &decision.next {
        Next::Keep | Next::Delete => registry_of(live.as_ref()),
        Next::Write(text) => {
            let written = if approach.creates() {
                let undo = plan::before(desired, live_text, &record, now);
                write_or_undo(
                    store,
                    target,
                    text,
                    desired.force,
                    &undo,
                    cx.settings,
                    cx.deadline,
                )
                .await
            } else {
                write_policy(store, target, text, desired.force, cx.settings, cx.deadline).await
            };
            match written {
                Ok(registry_id) => registry_id,
                Err(failure) => {
                    // A write abandoned in flight may land yet, whatever a read said.
                    if !may_have_landed(&failure) && !cx.held.write_in_flight() {
                        lease::put_back(lease, cx).await;
                    }
                    return Err(failure);
                }
            }
        }
    };
    let changed = matches!(decision.next, Next::Write(_));
    let mut applied = plan::answer(
        desired,
        registry_id,
        decision.adopted,
        changed,
        &me.tag,
        cx.stack_id,
    )?;
    findings.log();
    applied.data.warnings = findings.data();
    Ok((applied, decision.record))
}

/// Whether a failed write may still have landed: then the record keeps announcing it, so
/// that a failed Create's Delete can take it out (CONTRACT 11).
fn may_have_landed(failure: &Failure) -> bool {
    matches!(
        failure,
        Failure::Undone {
            undo: Undo::Unknown(_),
            ..
        } | Failure::TimedOut(_)
    )
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
        Refusal::TooLong(chars) => Failure::MergedTooLong { target, chars },
        Refusal::LiveNotJson => Failure::LiveNotJson(target),
    }
}

/// Carries out `next` on the target, after the record that announces it was stored; puts
/// the record back when ECR refuses. Whether ECR changed.
async fn carry_out<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    next: &Next,
    lease: Option<&Taken>,
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    let result = match next {
        Next::Keep => return Ok(false),
        Next::Write(text) => write_policy(store, target, text, false, cx.settings, cx.deadline)
            .await
            .map(|_| true),
        Next::Delete => match store.delete(target, None).await {
            Ok(deleted) => Ok(deleted == Deleted::Removed),
            Err(e) => Err(e.into()),
        },
    };
    if result.is_err() {
        lease::put_back(lease, cx).await;
    }
    result
}

/// A whole-policy resource's Delete: the policy, unless another resource now owns it.
async fn delete_whole<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    account: &str,
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    let lease = lease::take(target, false, cx).await?;
    let result = async {
        let record = lease.as_ref().map(|l| l.record.clone()).unwrap_or_default();
        if !plan::deletes_whole(&record, &cx.me("")) {
            tracing::info!("another resource now manages this policy; leaving it in place");
            return Ok((false, record));
        }
        let after = plan::after_whole_delete(&record);
        lease::store(lease.as_ref(), &after, cx).await?;
        let registry_id = matches!(target, Target::Repository { .. }).then_some(account);
        match store.delete(target, registry_id).await {
            Ok(deleted) => Ok((deleted == Deleted::Removed, after)),
            Err(e) => {
                lease::put_back(lease.as_ref(), cx).await;
                Err(Failure::from(e))
            }
        }
    }
    .await;
    finish(lease.as_ref(), result, cx).await
}

/// Gives the lease back after a Delete and returns whether ECR changed.
async fn finish<L: LockStore>(
    lease: Option<&Taken>,
    result: Result<(bool, Record), Failure>,
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    let idle = match (&result, lease) {
        (Ok((_, record)), _) => !record.holds_anything(),
        (Err(_), Some(lease)) => !lease.record.holds_anything(),
        (Err(_), None) => false,
    };
    lease::give_back(lease, idle, cx).await;
    result.map(|(changed, _)| changed)
}

/// Reads the target for a Delete: a repository that is gone has no policy.
async fn read_for_delete<S: PolicyStore>(
    store: &S,
    target: &Target,
) -> Result<(Option<LivePolicy>, bool), Failure> {
    match store.get(target).await {
        Ok(live) => Ok((live, false)),
        Err(EcrError::RepositoryNotFound { .. }) => Ok((None, true)),
        Err(other) => Err(other.into()),
    }
}

/// A statement resource's Delete: its Sids out of the policy, the policy deleted when no
/// statement is left; a repository that is gone has nothing to remove.
async fn delete_statements<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    tag: &str,
    sids: &[String],
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    let lease = lease::take(target, true, cx).await?;
    let result = async {
        let record = lease.as_ref().map(|l| l.record.clone()).unwrap_or_default();
        let (live, gone) = read_for_delete(store, target).await?;
        let live_text = live.as_ref().map(|l| l.text.as_str());
        let (next, after) = plan::after_delete(live_text, &record, tag, sids, cx.now_ms());
        let next = if gone { Next::Keep } else { next };
        lease::store(lease.as_ref(), &after, cx).await?;
        let changed = carry_out(store, target, &next, lease.as_ref(), cx).await?;
        Ok((changed, after))
    }
    .await;
    finish(lease.as_ref(), result, cx).await
}

/// A failed Create's Delete (CONTRACT 11): what the record holds under that request (a
/// write that landed after the FAILED answer) is taken out, and nothing else. Without a
/// lock table there is no record, and nothing is touched.
async fn clean_up_failed_create<S: PolicyStore, L: LockStore>(
    store: &S,
    desired: &Desired,
    request_id: &str,
    cx: &Context<'_, L>,
) -> Result<bool, Failure> {
    if cx.lock.is_none() {
        return Ok(false);
    }
    let target = &desired.target;
    let lease = lease::take(target, false, cx).await?;
    let result = async {
        let record = lease.as_ref().map(|l| l.record.clone()).unwrap_or_default();
        let tag = plan::tag_of(request_id);
        if !plan::holds_under(&record, &tag) {
            return Ok((false, record));
        }
        let (live, gone) = read_for_delete(store, target).await?;
        let live_text = live.as_ref().map(|l| l.text.as_str());
        let Some((next, after)) = plan::after_failed_create(live_text, &record, &tag, cx.now_ms())
        else {
            return Ok((false, record));
        };
        let next = if gone { Next::Keep } else { next };
        tracing::info!(next = ?next, "taking out what a failed create left behind");
        lease::store(lease.as_ref(), &after, cx).await?;
        let changed = carry_out(store, target, &next, lease.as_ref(), cx).await?;
        Ok((changed, after))
    }
    .await;
    finish(lease.as_ref(), result, cx).await
}
