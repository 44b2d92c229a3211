//! Carries out Create, Update and Delete (CONTRACT 4) against a [`PolicyStore`]: reads the
//! target, asks [`crate::plan`] what to do, and does it, with the IAM-propagation retry and
//! the undo of a failed Create's unclear write.

use crate::ecr::{Deleted, EcrError, LivePolicy, PolicyStore};
use crate::error::{Failure, Undo, V1_REGISTRY_ACTIONS};
use crate::event::{Desired, PropertyError, Request};
use crate::identity::{PhysicalId, Target, account_of_stack, partition};
use crate::plan::{self, Approach, DeletePlan, Plan};
use crate::response::Data;
use crate::retry::{self, Attempt, Backoff};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// Settings the lifecycle needs from the function's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_region: Option<String>,
    pub iam_propagation_timeout: Duration,
    /// First pause between IAM-propagation retries; it doubles up to 16 times this.
    pub iam_retry_base: Duration,
}

/// A request carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub physical_id: String,
    /// The response's `Data`.
    pub data: Data,
    /// Whether ECR was written to (a write or a delete).
    pub changed: bool,
}

/// What every step of one request needs.
struct Context<'a> {
    stack_id: &'a str,
    settings: &'a Settings,
    /// When the work must be done (the guard's); bounds the retries and the undo.
    deadline: Instant,
}

/// Carries out one decoded request. `deadline` bounds the IAM-propagation retry.
pub async fn execute<S: PolicyStore>(
    store: &S,
    request: &Request,
    stack_id: &str,
    settings: &Settings,
    deadline: Instant,
) -> Result<Applied, Failure> {
    let cx = Context {
        stack_id,
        settings,
        deadline,
    };
    match request {
        Request::Create {
            resource_type,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, settings)?;
            apply(store, Approach::Create, &desired, &cx).await
        }
        Request::Update {
            resource_type,
            physical_id,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, settings)?;
            let approach = plan::approach_update(physical_id, &desired)?;
            let applied = apply(store, approach, &desired, &cx).await?;
            Ok(match approach {
                // The id does not change while the target stays.
                Approach::UpdateInPlace => Applied {
                    physical_id: physical_id.clone(),
                    ..applied
                },
                Approach::Create => applied,
            })
        }
        Request::Delete { physical_id } => delete(store, physical_id).await,
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

/// Reads the target, plans, and writes if the plan says so.
async fn apply<S: PolicyStore>(
    store: &S,
    approach: Approach,
    desired: &Desired,
    cx: &Context<'_>,
) -> Result<Applied, Failure> {
    let live = store.get(&desired.target).await?;
    let (registry_id, adopted, changed) = match plan::plan(approach, desired, live.as_ref()) {
        Plan::Refuse => {
            return Err(Failure::AlreadyHasPolicy {
                target: desired.target.describe(),
            });
        }
        Plan::Keep { adopted } => (
            live.map(|l| l.registry_id).unwrap_or_default(),
            adopted,
            false,
        ),
        Plan::Write { adopted } => {
            let registry_id = match approach {
                Approach::UpdateInPlace => {
                    write_with_propagation_retry(store, desired, cx.settings, cx.deadline).await?
                }
                Approach::Create => write_or_undo(store, desired, live.as_ref(), cx).await?,
            };
            (registry_id, adopted, true)
        }
    };
    Ok(applied(desired, registry_id, adopted, changed, cx.stack_id))
}

/// The answer for a policy now in place: its id and `Data`.
fn applied(
    desired: &Desired,
    registry_id: String,
    adopted: bool,
    changed: bool,
    stack_id: &str,
) -> Applied {
    let partition = partition(stack_id, desired.target.region());
    let account = if registry_id.is_empty() {
        account_of_stack(stack_id).to_owned()
    } else {
        registry_id
    };
    let data = Data::policy(
        &desired.target,
        &account,
        &partition,
        adopted,
        desired.policy.compact(),
    );
    let id = PhysicalId::Policy {
        target: desired.target.clone(),
        account,
    };
    Applied {
        physical_id: id.format(&partition).unwrap_or_default(),
        data,
        changed,
    }
}

async fn delete<S: PolicyStore>(store: &S, physical_id: &str) -> Result<Applied, Failure> {
    let changed = match plan::plan_delete(physical_id) {
        DeletePlan::Nothing => false,
        DeletePlan::Delete { target, account } => {
            let registry_id = matches!(target, Target::Repository { .. }).then_some(account);
            store.delete(&target, registry_id.as_deref()).await? == Deleted::Removed
        }
    };
    Ok(Applied {
        physical_id: physical_id.to_owned(),
        data: Data::default(),
        changed,
    })
}

/// The least and most time kept back from a Create's write to undo it.
const UNDO_RESERVE_MIN: Duration = Duration::from_millis(250);
const UNDO_RESERVE_MAX: Duration = Duration::from_secs(5);

/// Writes for a Create. A write that ECR refused changed nothing; one whose outcome is
/// unclear (ECR unreachable or failing, or no answer in the time allowed) may have landed,
/// so the time kept back puts back what was there before.
async fn write_or_undo<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    before: Option<&LivePolicy>,
    cx: &Context<'_>,
) -> Result<String, Failure> {
    let now = Instant::now();
    let reserve =
        (cx.deadline.saturating_duration_since(now) / 4).clamp(UNDO_RESERVE_MIN, UNDO_RESERVE_MAX);
    let write_until = cx.deadline.checked_sub(reserve).unwrap_or(now).max(now);
    let writing = write_with_propagation_retry(store, desired, cx.settings, write_until);
    let failure = match tokio::time::timeout_at(write_until, writing).await {
        Ok(Ok(registry_id)) => return Ok(registry_id),
        Ok(Err(failure @ Failure::Ecr(EcrError::Unavailable { .. }))) => failure,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => Failure::TimedOut(write_until - now),
    };
    tracing::warn!(error = %failure, "the write's outcome is unclear; undoing it");
    let undo = undo_write(store, desired, before).await;
    Err(Failure::Undone {
        failure: Box::new(failure),
        undo,
    })
}

/// Puts the target back as it was before a Create's write, if that write landed.
async fn undo_write<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    before: Option<&LivePolicy>,
) -> Undo {
    let landed = match store.get(&desired.target).await {
        Ok(Some(now)) => plan::equivalent(&desired.policy, &now),
        Ok(None) => false,
        Err(e) => return Undo::Unknown(e.to_string()),
    };
    if !landed {
        return Undo::NothingLanded;
    }
    let result = match before {
        None => store
            .delete(&desired.target, None)
            .await
            .map(|_| Undo::Removed),
        Some(previous) => store
            .put(&desired.target, &previous.text, desired.force)
            .await
            .map(|_| Undo::Restored),
    };
    result.unwrap_or_else(|e| Undo::Unknown(e.to_string()))
}

/// Writes the policy, retrying ECR's rejections that IAM's eventual consistency can cause
/// until `IAM_PROPAGATION_TIMEOUT_SECONDS` or the deadline, whichever comes first.
async fn write_with_propagation_retry<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    settings: &Settings,
    deadline: Instant,
) -> Result<String, Failure> {
    let started = Instant::now();
    let give_up = deadline.min(started + settings.iam_propagation_timeout);
    let backoff = Backoff {
        first: settings.iam_retry_base,
        max: settings.iam_retry_base * 16,
        jitter: 1.0..1.5,
    };
    let write = |_| async {
        match store
            .put(&desired.target, desired.policy.compact(), desired.force)
            .await
        {
            Ok(registry_id) => Attempt::Done(registry_id),
            Err(error) if error.may_be_iam_propagation() => Attempt::Retry(error),
            Err(error) => Attempt::Stop(error),
        }
    };
    let retried = |error: &EcrError, attempt: u32| {
        tracing::warn!(attempt, error = %error, "ECR rejected the policy; retrying in case IAM has not propagated a principal yet");
    };
    retry::until(&backoff, give_up, write, retried)
        .await
        .map_err(|gave_up| rejection(desired, gave_up.error, gave_up.attempts, started.elapsed()))
}

fn rejection(desired: &Desired, error: EcrError, attempts: u32, waited: Duration) -> Failure {
    if !matches!(error, EcrError::InvalidPolicy { .. }) {
        return Failure::Ecr(error);
    }
    let v1_actions = match desired.target {
        Target::Registry { .. } => {
            let mut outside: Vec<String> = desired
                .policy
                .actions()
                .into_iter()
                .filter(|a| !V1_REGISTRY_ACTIONS.contains(a))
                .map(str::to_owned)
                .collect();
            outside.dedup();
            outside
        }
        Target::Repository { .. } => Vec::new(),
    };
    Failure::PolicyRejected {
        error,
        attempts,
        waited,
        v1_actions,
    }
}
