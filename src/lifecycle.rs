//! Carries out Create, Update and Delete (CONTRACT 4 and 9) against a [`PolicyStore`]: takes
//! the target's lease when there is a lock table, reads the target (again, briefly, when the
//! read does not match the last write), asks [`crate::plan`] what to do, and does it, with
//! the IAM-propagation retry and the undo of a failed Create's unclear write.

use crate::diagnosis::{self, PolicyKind, Scope};
use crate::ecr::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore};
use crate::error::{Failure, Undo};
use crate::event::{Content, Desired, PropertyError, Request};
use crate::identity::{
    MAX_PHYSICAL_ID_BYTES, PhysicalId, Target, account_of_stack, partition, valid_account,
};
use crate::lock::{self, LockError, LockStore, NO_POLICY, Record};
use crate::plan::{self, Approach, DeletePlan, Next, Refusal};
use crate::policy::Policy;
use crate::response::Data;
use crate::retry::{self, Attempt, Backoff};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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

/// The lease this request holds, if any: kept outside the work, so that when the work is
/// abandoned (timeout, panic) the provider still gives the lease back.
#[derive(Debug, Default)]
pub struct HeldLease(Mutex<Option<(String, String)>>);

impl HeldLease {
    fn set(&self, held: Option<(String, String)>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = held;
    }

    /// The lease still held (key and owner), taken out.
    pub fn take(&self) -> Option<(String, String)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// What every step of one request needs.
pub struct Context<'a, L> {
    pub stack_id: &'a str,
    /// The request's id: the lease's owner, and the tag of a new statement resource.
    pub request_id: &'a str,
    pub settings: &'a Settings,
    /// When the work must be done (the guard's); bounds the retries, the wait for the lock
    /// and the undo.
    pub deadline: Instant,
    /// When the invocation must have answered, in milliseconds since the epoch: a lease
    /// lasts no longer.
    pub lease_until_ms: u64,
    /// The lock table, when one is configured.
    pub lock: Option<&'a L>,
    pub held: &'a HeldLease,
}

/// Carries out one decoded request.
pub async fn execute<S: PolicyStore, L: LockStore>(
    store: &S,
    request: &Request,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    match request {
        Request::Create {
            resource_type,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, cx.settings)?;
            diagnose(&desired, cx.stack_id)?;
            let tag = tag_of(cx.request_id);
            apply(store, &Approach::Create, &desired, &tag, cx).await
        }
        Request::Update {
            resource_type,
            physical_id,
            properties,
        } => {
            let desired = desired_state(resource_type, properties, cx.settings)?;
            let approach = plan::approach_update(physical_id, &desired)?;
            diagnose(&desired, cx.stack_id)?;
            // A statement resource keeps its tag while it stays; a new one takes this
            // request's.
            let tag = match (&approach, PhysicalId::parse(physical_id)) {
                (Approach::UpdateInPlace, PhysicalId::Statements { tag, .. }) => tag,
                _ => tag_of(cx.request_id),
            };
            let applied = apply(store, &approach, &desired, &tag, cx).await?;
            Ok(match approach {
                // The id does not change while the target (and the Sids) stay.
                Approach::UpdateInPlace => Applied {
                    physical_id: physical_id.clone(),
                    ..applied
                },
                Approach::Create | Approach::Replace { .. } => applied,
            })
        }
        Request::Delete { physical_id } => delete(store, physical_id, cx).await,
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

/// Refuses, before any ECR call, a policy that can never work (CONTRACT 10): the same
/// checks for every resource type.
fn diagnose(desired: &Desired, stack_id: &str) -> Result<(), Failure> {
    let target = &desired.target;
    let account = Some(account_of_stack(stack_id)).filter(|a| valid_account(a));
    let partition = partition(stack_id, target.region());
    let scope = Scope {
        kind: match target {
            Target::Registry { .. } => PolicyKind::Registry,
            Target::Repository { .. } => PolicyKind::Repository,
        },
        partition: &partition,
        region: target.region(),
        account,
    };
    let (property, checked) = match &desired.content {
        Content::Policy(policy) => ("PolicyText", diagnosis::check(policy.document(), &scope)),
        Content::Statements(statements) => (
            "Statement",
            diagnosis::check_statements(statements.items(), &scope),
        ),
    };
    checked.map_err(|defects| Failure::Defective { property, defects })
}

/// The tag that tells apart two statement resources naming the same Sids: from the
/// RequestId of the request that created the resource.
fn tag_of(request_id: &str) -> String {
    let tag: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(36)
        .collect();
    if tag.is_empty() { "r".into() } else { tag }
}

/// Reads, plans and writes a Create or Update, under the target's lease. `tag` is the
/// statement resource's (unused for whole policies).
async fn apply<S: PolicyStore, L: LockStore>(
    store: &S,
    approach: &Approach,
    desired: &Desired,
    tag: &str,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let statements = matches!(desired.content, Content::Statements(_));
    if statements && *approach != Approach::UpdateInPlace {
        // Before anything is written: the new id must fit (with a 12-digit account, as
        // every registry id has), or the statements would land under a Create that
        // answers FAILED.
        let any_account = "0".repeat(12);
        answer(desired, any_account, false, false, tag, cx.stack_id)?;
    }
    let lease = take_lease(&desired.target, statements, cx).await?;
    let result = apply_leased(store, approach, desired, tag, lease.as_ref(), cx).await;
    let record = match &result {
        Ok((_, record)) => Some(record),
        Err(_) => None,
    };
    give_back(lease.as_ref(), record, cx).await;
    result.map(|(applied, _)| applied)
}

async fn apply_leased<S: PolicyStore, L: LockStore>(
    store: &S,
    approach: &Approach,
    desired: &Desired,
    tag: &str,
    lease: Option<&Record>,
    cx: &Context<'_, L>,
) -> Result<(Applied, Record), Failure> {
    let target = &desired.target;
    let mut record = lease.cloned().unwrap_or_default();
    let live = read_fresh(store, target, record.digest.as_deref(), cx).await?;
    let live_text = live.as_ref().map(|l| l.text.as_str());
    let decision = plan::decide(approach, desired, live_text, &record.holders, Some(tag))
        .map_err(|r| refused(target, r))?;
    let (registry_id, digest) = match &decision.next {
        Next::Keep | Next::Delete => (
            live.as_ref()
                .map(|l| l.registry_id.clone())
                .unwrap_or_default(),
            digest_of(live_text),
        ),
        Next::Write(text) => {
            let registry_id = if approach.creates() {
                write_or_undo(store, desired, text, live.as_ref(), cx).await?
            } else {
                write_policy(store, target, text, desired.force, cx.settings, cx.deadline).await?
            };
            (registry_id, digest_of(Some(text)))
        }
    };
    record.digest = Some(digest);
    if let Some(statements) = desired.statements() {
        record.holders = plan::hold_sids(tag, &statements.sids(), &record.holders);
    }
    let changed = matches!(decision.next, Next::Write(_));
    let applied = answer(
        desired,
        registry_id,
        decision.adopted,
        changed,
        tag,
        cx.stack_id,
    )?;
    Ok((applied, record))
}

/// The answer for what is now in place: the PhysicalResourceId and the `Data`. `tag` is the
/// statement resource's.
fn answer(
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

fn refused(target: &Target, refusal: Refusal) -> Failure {
    let target = target.describe();
    match refusal {
        Refusal::AlreadyHasPolicy => Failure::AlreadyHasPolicy { target },
        Refusal::SidsDiffer(sids) => Failure::SidsDiffer { target, sids },
        Refusal::TooLong(chars) => Failure::MergedTooLong { target, chars },
        Refusal::LiveNotJson => Failure::LiveNotJson(target),
    }
}

/// The digest recorded for what is now live.
fn digest_of(text: Option<&str>) -> String {
    match text {
        None => NO_POLICY.to_owned(),
        Some(text) => match Policy::from_live(text) {
            Some(policy) => policy.digest(),
            None => format!("text:{}", text.len()),
        },
    }
}

async fn delete<S: PolicyStore, L: LockStore>(
    store: &S,
    physical_id: &str,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let plan = plan::plan_delete(physical_id);
    let changed = match &plan {
        DeletePlan::Nothing => false,
        DeletePlan::Delete { target, account } => {
            let lease = take_lease(target, false, cx).await?;
            let registry_id = matches!(target, Target::Repository { .. }).then_some(account);
            let result = store.delete(target, registry_id.map(String::as_str)).await;
            let record = Record {
                digest: Some(NO_POLICY.to_owned()),
                holders: Default::default(),
            };
            give_back(lease.as_ref(), result.is_ok().then_some(&record), cx).await;
            result? == Deleted::Removed
        }
        DeletePlan::Statements {
            target, tag, sids, ..
        } => {
            let lease = take_lease(target, true, cx).await?;
            let result = remove_statements(store, target, tag, sids, lease.as_ref(), cx).await;
            give_back(lease.as_ref(), result.as_ref().ok().map(|(_, r)| r), cx).await;
            result?.0
        }
    };
    Ok(Applied {
        physical_id: physical_id.to_owned(),
        data: Data::default(),
        changed,
    })
}

/// A statement resource's Delete: its Sids out of the policy, the policy deleted when no
/// statement is left; a repository that is gone has nothing to remove.
async fn remove_statements<S: PolicyStore, L: LockStore>(
    store: &S,
    target: &Target,
    tag: &str,
    sids: &[String],
    lease: Option<&Record>,
    cx: &Context<'_, L>,
) -> Result<(bool, Record), Failure> {
    let mut record = lease.cloned().unwrap_or_default();
    let live = match read_fresh(store, target, record.digest.as_deref(), cx).await {
        Ok(live) => live,
        Err(Failure::Ecr(EcrError::RepositoryNotFound { .. })) => None,
        Err(other) => return Err(other),
    };
    let live_text = live.as_ref().map(|l| l.text.as_str());
    let next = plan::after_delete(live_text, tag, sids, &record.holders);
    let changed = match &next {
        Next::Keep => {
            record.digest = Some(digest_of(live_text));
            false
        }
        Next::Write(text) => {
            write_policy(store, target, text, false, cx.settings, cx.deadline).await?;
            record.digest = Some(digest_of(Some(text)));
            true
        }
        Next::Delete => {
            let removed = store.delete(target, None).await? == Deleted::Removed;
            record.digest = Some(NO_POLICY.to_owned());
            removed
        }
    };
    record.holders = plan::release_sids(tag, sids, &record.holders);
    Ok((changed, record))
}

/// Takes the target's lease, waiting (with jittered pauses) while another request holds
/// it, until the deadline. No lock table: whole policies go ahead without one, statement
/// resources are refused.
async fn take_lease<L: LockStore>(
    target: &Target,
    statements: bool,
    cx: &Context<'_, L>,
) -> Result<Option<Record>, Failure> {
    let Some(lock) = cx.lock else {
        return if statements {
            Err(Failure::NoLockTable)
        } else {
            Ok(None)
        };
    };
    let key = lock::key(target);
    let started = Instant::now();
    let backoff = Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_secs(1),
        jitter: 0.5..1.5,
    };
    let attempt = |_| async {
        match lock
            .acquire(&key, cx.request_id, epoch_ms(), cx.lease_until_ms)
            .await
        {
            Ok(record) => Attempt::Done(record),
            Err(LockError::Busy) => Attempt::Retry(LockError::Busy),
            Err(other) => Attempt::Stop(other),
        }
    };
    let waiting = |_: &LockError, attempt: u32| {
        if attempt == 1 {
            tracing::info!(lock = %key, "another request holds the target's lock; waiting");
        }
    };
    let record = retry::until(&backoff, cx.deadline, attempt, waiting)
        .await
        .map_err(|gave_up| match gave_up.error {
            LockError::Busy => Failure::Busy {
                target: target.describe(),
                waited: started.elapsed(),
            },
            other => Failure::Lock(other),
        })?;
    cx.held.set(Some((key, cx.request_id.to_owned())));
    Ok(Some(record))
}

/// Gives the lease back, storing the record when the work succeeded. A failure to do so is
/// logged: the lease ends by itself at the invocation's deadline.
async fn give_back<L: LockStore>(
    lease: Option<&Record>,
    record: Option<&Record>,
    cx: &Context<'_, L>,
) {
    let (Some(_), Some(lock)) = (lease, cx.lock) else {
        return;
    };
    let Some((key, owner)) = cx.held.take() else {
        return;
    };
    if let Err(error) = lock.release(&key, &owner, record).await {
        tracing::warn!(lock = %key, error = %error, "could not give the lock back; it ends with this invocation's deadline");
    }
}

/// Milliseconds since the epoch, now.
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// How long a read that does not match the last write is retried before it is trusted as a
/// change made out of band.
const LAG_WAIT: Duration = Duration::from_millis(1500);

/// Reads the target's policy. When the lock's record says what this provider last wrote
/// there and the read differs, ECR's read may lag that write: read again, briefly.
async fn read_fresh<S: PolicyStore, L>(
    store: &S,
    target: &Target,
    expected: Option<&str>,
    cx: &Context<'_, L>,
) -> Result<Option<LivePolicy>, Failure> {
    let live = store.get(target).await?;
    let Some(expected) = expected else {
        return Ok(live);
    };
    if digest_of(live.as_ref().map(|l| l.text.as_str())) == expected {
        return Ok(live);
    }
    let backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_millis(400),
        jitter: 1.0..1.0,
    };
    let until = cx.deadline.min(Instant::now() + LAG_WAIT);
    let reread = |_| async {
        match store.get(target).await {
            Ok(live) if digest_of(live.as_ref().map(|l| l.text.as_str())) == expected => {
                Attempt::Done(live)
            }
            Ok(live) => Attempt::Retry(Ok(live)),
            Err(e) => Attempt::Stop(Err(e)),
        }
    };
    // The first read already missed: wait before the next one.
    tokio::time::sleep(
        backoff
            .first
            .min(until.saturating_duration_since(Instant::now())),
    )
    .await;
    match retry::until(&backoff, until, reread, |_, _| {}).await {
        Ok(live) => Ok(live),
        Err(gave_up) => match gave_up.error {
            Ok(live) => {
                tracing::info!(
                    "the live policy differs from the last one written here; taking it as a change made out of band"
                );
                Ok(live)
            }
            Err(e) => Err(e.into()),
        },
    }
}

/// The least and most time kept back from a Create's write to undo it.
const UNDO_RESERVE_MIN: Duration = Duration::from_millis(250);
const UNDO_RESERVE_MAX: Duration = Duration::from_secs(5);

/// Writes for a Create. A write that ECR refused changed nothing; one whose outcome is
/// unclear (ECR unreachable or failing, or no answer in the time allowed) may have landed,
/// so the time kept back puts back what was there before.
async fn write_or_undo<S: PolicyStore, L>(
    store: &S,
    desired: &Desired,
    text: &str,
    before: Option<&LivePolicy>,
    cx: &Context<'_, L>,
) -> Result<String, Failure> {
    let now = Instant::now();
    let reserve =
        (cx.deadline.saturating_duration_since(now) / 4).clamp(UNDO_RESERVE_MIN, UNDO_RESERVE_MAX);
    let write_until = cx.deadline.checked_sub(reserve).unwrap_or(now).max(now);
    let writing = write_policy(
        store,
        &desired.target,
        text,
        desired.force,
        cx.settings,
        write_until,
    );
    let failure = match tokio::time::timeout_at(write_until, writing).await {
        Ok(Ok(registry_id)) => return Ok(registry_id),
        Ok(Err(failure @ Failure::Ecr(EcrError::Unavailable { .. }))) => failure,
        Ok(Err(failure)) => return Err(failure),
        Err(_) => Failure::TimedOut(write_until - now),
    };
    tracing::warn!(error = %failure, "the write's outcome is unclear; undoing it");
    let undo = undo_write(store, desired, text, before).await;
    Err(Failure::Undone {
        failure: Box::new(failure),
        undo,
    })
}

/// Puts the target back as it was before a Create's write of `text`, if that write landed.
async fn undo_write<S: PolicyStore>(
    store: &S,
    desired: &Desired,
    text: &str,
    before: Option<&LivePolicy>,
) -> Undo {
    let Some(written) = Policy::from_live(text) else {
        return Undo::NothingLanded;
    };
    let landed = match store.get(&desired.target).await {
        Ok(Some(now)) => plan::equivalent(&written, &now.text),
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

/// Why ECR refused a write, as far as the provider can tell (CONTRACT 10).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// A principal IAM has not propagated yet may explain it: worth retrying. `scope_unread`:
    /// the policy grants actions beyond V1 and the registry's scope could not be read.
    MaybeIam { scope_unread: bool },
    /// No principal could be waiting on IAM.
    NotIam,
    /// The registry's policy scope is V1 and the policy grants these actions beyond it.
    ScopeV1(Vec<String>),
}

/// Works out, once per write, what can explain ECR's "invalid policy" answer: the registry
/// policy scope (read when the policy grants actions beyond V1), else a principal.
async fn explain<S: PolicyStore>(store: &S, target: &Target, policy: Option<&Policy>) -> Why {
    let beyond_v1 = match (target, policy) {
        (Target::Registry { .. }, Some(policy)) => diagnosis::actions_beyond_v1(policy.document()),
        _ => Vec::new(),
    };
    if !beyond_v1.is_empty() {
        match store.policy_scope(target.region()).await {
            Ok(PolicyScope::V1) => return Why::ScopeV1(beyond_v1),
            Ok(PolicyScope::V2) => {}
            Err(error) => {
                tracing::warn!(error = %error, "could not read the registry policy scope; retrying in case IAM explains the refusal");
                return Why::MaybeIam { scope_unread: true };
            }
        }
    }
    if policy.is_some_and(names_iam_principal) {
        Why::MaybeIam {
            scope_unread: false,
        }
    } else {
        Why::NotIam
    }
}

/// Whether the policy names an AWS principal other than everyone: an account, user or role
/// that IAM could still be propagating.
fn names_iam_principal(policy: &Policy) -> bool {
    policy.statements().iter().any(|statement| {
        ["Principal", "NotPrincipal"].iter().any(|key| {
            let aws = statement.get(*key).and_then(|p| p.get("AWS"));
            let list = match aws {
                Some(Value::Array(items)) => items.as_slice(),
                Some(single) => std::slice::from_ref(single),
                None => &[],
            };
            list.iter().any(|p| p.as_str() != Some("*"))
        })
    })
}

/// Writes the policy. ECR's "invalid policy" answer is retried, with backoff, until
/// `IAM_PROPAGATION_TIMEOUT_SECONDS` or the deadline, only when a principal IAM has not yet
/// propagated is the one explanation left (CONTRACT 7 and 10).
async fn write_policy<S: PolicyStore>(
    store: &S,
    target: &Target,
    text: &str,
    force: bool,
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
    let policy = Policy::from_live(text);
    let why: tokio::sync::OnceCell<Why> = tokio::sync::OnceCell::new();
    let write = |_| async {
        let error = match store.put(target, text, force).await {
            Ok(registry_id) => return Attempt::Done(registry_id),
            Err(error) if error.may_be_iam_propagation() => error,
            Err(error) => return Attempt::Stop(error),
        };
        let why = why
            .get_or_init(|| explain(store, target, policy.as_ref()))
            .await;
        match why {
            Why::MaybeIam { .. } => Attempt::Retry(error),
            Why::NotIam | Why::ScopeV1(_) => Attempt::Stop(error),
        }
    };
    let retried = |error: &EcrError, attempt: u32| {
        tracing::warn!(attempt, error = %error, "ECR rejected the policy; retrying in case IAM has not propagated a principal yet");
    };
    let gave_up = match retry::until(&backoff, give_up, write, retried).await {
        Ok(registry_id) => return Ok(registry_id),
        Err(gave_up) => gave_up,
    };
    if !matches!(gave_up.error, EcrError::InvalidPolicy { .. }) {
        return Err(Failure::Ecr(gave_up.error));
    }
    let (iam_possible, v1_actions) = match why.get() {
        Some(Why::ScopeV1(actions)) => return Err(Failure::RegistryScopeV1(actions.clone())),
        Some(Why::NotIam) => (false, Vec::new()),
        // The scope could not be read: the V1 hint stays.
        Some(Why::MaybeIam { scope_unread: true }) => (
            true,
            policy
                .as_ref()
                .map(|p| diagnosis::actions_beyond_v1(p.document()))
                .unwrap_or_default(),
        ),
        Some(Why::MaybeIam {
            scope_unread: false,
        })
        | None => (true, Vec::new()),
    };
    Err(Failure::PolicyRejected {
        error: gave_up.error,
        attempts: gave_up.attempts,
        waited: started.elapsed(),
        v1_actions,
        iam_possible,
    })
}
