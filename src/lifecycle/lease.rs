//! The target's lease (CONTRACT 9 and 11): taken with a conditional write that accepts the
//! request's own lease (a retry whose first answer was lost), kept while the request reads,
//! stores the record and writes ECR, and given back only when no write of this request can
//! still land. Abandoned work (a timeout or a panic) with an ECR call in flight leaves the
//! lease to expire: its expiry covers that call's attempt timeout.

use super::Context;
use crate::error::Failure;
use crate::identity::Target;
use crate::lock::{self, Holder, LockError, LockStore, Record};
use crate::retry::{self, Attempt, Backoff};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease outlives the invocation's answer deadline: an ECR call sent just before
/// it may still land until its attempt times out.
pub const LEASE_MARGIN: Duration = crate::ecr::ATTEMPT_TIMEOUT;

/// The leases a request holds (a prefix statement holds one per repository at a time, up
/// to its concurrency): kept outside the work, so that when the work is abandoned (timeout,
/// panic) the provider still knows which it may give back.
#[derive(Debug, Default)]
pub struct HeldLease {
    /// Each lease held: its key and owner.
    held: Mutex<Vec<(String, String)>>,
    /// ECR writes and deletes sent and not answered, by the lock key of their target: while
    /// any is, it may still land. A write abandoned mid-flight is never answered, so it
    /// counts for good.
    writing: Mutex<HashMap<String, usize>>,
    /// Leases whose work is done, to give back while the answer is sent ([`give_back_last`]):
    /// key, owner, and whether the record then holds nothing.
    done: Mutex<Vec<(String, String, bool)>>,
    /// The lease a Create works under, and the resource it creates: abandoned, that Create
    /// is answered FAILED, and the record must say so ([`give_back_abandoned`]).
    creating: Mutex<Option<(String, Holder)>>,
}

impl HeldLease {
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn writes(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn done(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, bool)>> {
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, key: &str, owner: &str) {
        let mut held = self.held();
        held.retain(|(k, _)| k != key);
        held.push((key.to_owned(), owner.to_owned()));
        // Taken again by this request: no longer done.
        self.done().retain(|(k, _, _)| k != key);
    }

    fn creates(&self) -> std::sync::MutexGuard<'_, Option<(String, Holder)>> {
        self.creating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lease on `key` is a Create's, for `me`.
    pub fn creating(&self, key: &str, me: &Holder) {
        *self.creates() = Some((key.to_owned(), me.clone()));
    }

    /// Every lease whose work is done, taken out: key, owner, idle.
    pub fn take_done(&self) -> Vec<(String, String, bool)> {
        std::mem::take(&mut *self.done())
    }

    /// The lease on `key`, if still held, taken out.
    fn take(&self, key: &str) -> Option<(String, String)> {
        let mut held = self.held();
        let at = held.iter().position(|(k, _)| k == key)?;
        Some(held.remove(at))
    }

    /// The owner the lease on `key` was taken as, while it is held.
    fn owner_of(&self, key: &str) -> Option<String> {
        self.held()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, owner)| owner.clone())
    }

    /// Every lease still held, taken out.
    fn take_all(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.held())
    }

    /// Counts an ECR write to the target of lock key `key` as sent (`true`) or answered
    /// (`false`).
    pub fn writing(&self, key: &str, sent: bool) {
        let mut writes = self.writes();
        let count = writes.entry(key.to_owned()).or_default();
        if sent {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
    }

    /// Whether a write of this request to the target of lock key `key` may still land.
    pub fn write_in_flight(&self, key: &str) -> bool {
        self.writes().get(key).is_some_and(|n| *n > 0)
    }
}

/// A lease this request took: the item's key, the owner it was taken as, and the record as
/// it was.
#[derive(Debug, Clone)]
pub struct Taken {
    pub key: String,
    pub owner: String,
    pub record: Record,
}

/// Takes the target's lease, waiting (with jittered pauses) while another request holds
/// it, until the deadline. No lock table: whole policies go ahead without one, statement
/// resources are refused.
pub async fn take<L: LockStore>(
    target: &Target,
    statements: bool,
    cx: &Context<'_, L>,
) -> Result<Option<Taken>, Failure> {
    let Some(lock) = cx.lock else {
        return if statements {
            Err(Failure::NoLockTable)
        } else {
            Ok(None)
        };
    };
    take_key(lock::key(target), &target.describe(), lock, cx)
        .await
        .map(Some)
}

/// Takes the lease on the lock item `key` (`what` names it in a refusal), waiting while
/// another request holds it, until the deadline.
pub async fn take_key<L: LockStore>(
    key: String,
    what: &str,
    lock: &L,
    cx: &Context<'_, L>,
) -> Result<Taken, Failure> {
    let owner = cx.lease_owner.as_str();
    let started = Instant::now();
    let backoff = Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_secs(1),
        jitter: 0.5..1.5,
    };
    let attempt = |_| async {
        match lock
            .acquire(&key, owner, cx.now_ms(), cx.lease_until_ms)
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
                target: what.to_owned(),
                waited: started.elapsed(),
            },
            other => Failure::Lock(other),
        })?;
    cx.held.set(&key, owner);
    Ok(Taken {
        key,
        owner: owner.to_owned(),
        record,
    })
}

/// Stores the record under the lease, before ECR is written. Nothing to store without a
/// lease, or when the record is unchanged.
pub async fn store<L: LockStore>(
    lease: Option<&Taken>,
    record: &Record,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    let (Some(lease), Some(lock)) = (lease, cx.lock) else {
        return Ok(());
    };
    if *record == lease.record {
        return Ok(());
    }
    lock.store(&lease.key, &lease.owner, record)
        .await
        .map_err(Failure::Lock)
}

/// Stores the record under the lease before ECR is written ([`store`]); when that fails,
/// puts back the record as the lease found it: the store's answer may have been lost with
/// the record stored, which would then announce a change that never reaches ECR (CONTRACT
/// 11: a record that cannot be stored leaves everything as it was).
pub async fn store_first<L: LockStore>(
    lease: Option<&Taken>,
    record: &Record,
    cx: &Context<'_, L>,
) -> Result<(), Failure> {
    let stored = store(lease, record, cx).await;
    // Only a store that may have landed: one refused by its condition (the lease is
    // another's) did not, and could not be put back either.
    if let Err(Failure::Lock(LockError::Unavailable { .. })) = &stored {
        put_back(lease, cx).await;
    }
    stored
}

/// Stores the record under the lease once the request has failed: a failure is logged, and
/// the record stays as it was.
pub async fn store_or_log<L: LockStore>(
    lease: Option<&Taken>,
    record: &Record,
    cx: &Context<'_, L>,
) {
    if let Err(error) = store(lease, record, cx).await {
        tracing::warn!(error = %error, "could not note in the record that the request failed");
    }
}

/// Puts the record back as it was when the lease was taken, after ECR refused the write
/// that the stored record announced (or the store itself failed, maybe landing). A failure
/// is logged: the record then says more than ECR holds, which the next change on the
/// target writes again.
pub async fn put_back<L: LockStore>(lease: Option<&Taken>, cx: &Context<'_, L>) {
    if let Some(taken) = lease {
        put_back_as(lease, &taken.record, cx).await;
    }
}

/// Puts the record back as `record`: as it was when the lease was taken, with what an undo
/// of the request's write changed since ([`plan::undone`]).
///
/// [`plan::undone`]: crate::plan::undone
pub async fn put_back_as<L: LockStore>(
    lease: Option<&Taken>,
    record: &Record,
    cx: &Context<'_, L>,
) {
    let (Some(lease), Some(lock)) = (lease, cx.lock) else {
        return;
    };
    if let Err(error) = lock.store(&lease.key, &lease.owner, record).await {
        tracing::warn!(lock = %lease.key, error = %error, "could not put the record back as it was");
    }
}

/// A Create answered FAILED: the record, as it stands under the lease now, says so (its
/// `failed`), so that another delivery of the same request (Lambda's retry, a duplicate)
/// changes nothing: CloudFormation acts on the first answer. A failure to store it is
/// logged.
pub async fn mark_failed<L: LockStore>(lease: Option<&Taken>, me: &Holder, cx: &Context<'_, L>) {
    let (Some(lease), Some(lock)) = (lease, cx.lock) else {
        return;
    };
    let at = (cx.now_ms(), cx.lease_until_ms);
    mark_failed_at(lock, &lease.key, &lease.owner, me, at).await;
}

/// [`mark_failed`] on the lease `key` taken as `owner`, at `now` (ms), the lease kept until
/// `until` (ms).
async fn mark_failed_at<L: LockStore>(
    lock: &L,
    key: &str,
    owner: &str,
    me: &Holder,
    (now, until): (u64, u64),
) {
    // Taken again by its own owner: the record as stored now.
    let mut record = match lock.acquire(key, owner, now, until).await {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(lock = %key, error = %error, "could not mark the failed create in the record");
            return;
        }
    };
    if record.failed_create(&me.tag) {
        return;
    }
    record.failed.push(crate::lock::Gone {
        holder: me.clone(),
        at_ms: now,
    });
    if let Err(error) = lock.store(key, owner, &record).await {
        tracing::warn!(lock = %key, error = %error, "could not mark the failed create in the record");
    }
}

/// Gives the lease back once the work is done, unless a write of this request may still
/// land. A failure to do so is logged: the lease expires by itself.
pub async fn give_back<L: LockStore>(lease: Option<&Taken>, idle: bool, cx: &Context<'_, L>) {
    let (Some((key, owner)), Some(lock)) = (done_with(lease, cx), cx.lock) else {
        return;
    };
    if let Err(error) = lock.release(&key, &owner, idle).await {
        tracing::warn!(lock = %key, error = %error, "could not give the lock back; it expires by itself");
    }
}

/// Marks the lease to be given back once the request's last work is done, while its answer
/// is sent ([`give_back_done`]): the answer need not wait for the lock table's call. As
/// [`give_back`], unless a write of this request may still land (then it is left to expire).
pub async fn give_back_last<L: LockStore>(lease: Option<&Taken>, idle: bool, cx: &Context<'_, L>) {
    if let Some((key, owner)) = done_with(lease, cx) {
        cx.held.done().push((key, owner, idle));
    }
}

/// The lease taken out of those held, to give back: none without a lock table, or while a
/// write of this request to its target may still land (it is then left to expire).
fn done_with<L: LockStore>(lease: Option<&Taken>, cx: &Context<'_, L>) -> Option<(String, String)> {
    let (Some(lease), Some(_)) = (lease, cx.lock) else {
        return None;
    };
    if cx.held.write_in_flight(&lease.key) {
        tracing::warn!(lock = %lease.key, "an ECR write of this request may still land; the lock is left to expire");
        cx.held.take(&lease.key);
        return None;
    }
    cx.held.take(&lease.key)
}

/// Gives back the leases of work done ([`give_back_last`]), within `within`; a failure is
/// logged: the lease expires by itself.
pub async fn give_back_done<L: LockStore>(
    lock: Option<&L>,
    done: Vec<(String, String, bool)>,
    within: Duration,
) {
    let Some(lock) = lock else {
        return;
    };
    if done.is_empty() {
        return;
    }
    let releases = done.iter().map(|(key, owner, idle)| async move {
        if let Err(error) = lock.release(key, owner, *idle).await {
            tracing::warn!(lock = %key, error = %error, "could not give the lock back; it expires by itself");
        }
    });
    if tokio::time::timeout(within, futures_util::future::join_all(releases))
        .await
        .is_err()
    {
        tracing::warn!("giving the locks back took too long; they expire by themselves");
    }
}

/// Leases still held once the work has ended belong to work that was abandoned (a timeout
/// or a panic): each given back within `within`, unless an ECR write to its target may still
/// land. An abandoned Create is answered FAILED: its record says so first (as
/// [`mark_failed`], `at` the time now and the lease's end), so that another delivery of it
/// changes nothing.
pub async fn give_back_abandoned<L: LockStore>(
    lock: Option<&L>,
    held: &HeldLease,
    at: (u64, u64),
    within: Duration,
) {
    let Some(lock) = lock else {
        return;
    };
    let creating = held.creates().take();
    let work = async {
        if let Some((key, me)) = creating
            && let Some(owner) = held.owner_of(&key)
        {
            mark_failed_at(lock, &key, &owner, &me, at).await;
        }
        release_abandoned(lock, held).await;
    };
    if tokio::time::timeout(within, work).await.is_err() {
        tracing::warn!(
            "giving back the locks of abandoned work took too long; they expire by themselves"
        );
    }
}

async fn release_abandoned<L: LockStore>(lock: &L, held: &HeldLease) {
    let leases: Vec<(String, String)> = held
        .take_all()
        .into_iter()
        .filter(|(key, _)| {
            let in_flight = held.write_in_flight(key);
            if in_flight {
                tracing::warn!(lock = %key, "abandoned work may still have an ECR write in flight; the lock is left to expire");
            }
            !in_flight
        })
        .collect();
    if leases.is_empty() {
        return;
    }
    let releases = leases.iter().map(|(key, owner)| async move {
        match lock.release(key, owner, false).await {
            Ok(()) => tracing::info!(lock = %key, "gave back the lock of abandoned work"),
            Err(error) => {
                tracing::warn!(lock = %key, error = %error, "could not give back the lock of abandoned work; it expires by itself")
            }
        }
    });
    futures_util::future::join_all(releases).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_abandoned_in_flight_stays_in_flight_whatever_follows() {
        let held = HeldLease::default();
        assert!(!held.write_in_flight("repository/us-east-1/a"));
        // A write sent and never answered (its future dropped at the deadline)...
        held.writing("repository/us-east-1/a", true);
        // ...then the undo's own write, sent and answered.
        held.writing("repository/us-east-1/a", true);
        held.writing("repository/us-east-1/a", false);
        assert!(held.write_in_flight("repository/us-east-1/a"));
        // Another target's lease is not held back by it.
        held.writing("repository/us-east-1/b", true);
        held.writing("repository/us-east-1/b", false);
        assert!(!held.write_in_flight("repository/us-east-1/b"));
    }

    #[test]
    fn each_lease_is_given_back_by_its_own_key() {
        let held = HeldLease::default();
        held.set("repository/us-east-1/a", "o");
        held.set("repository/us-east-1/b", "o");
        assert_eq!(
            held.take("repository/us-east-1/b"),
            Some(("repository/us-east-1/b".into(), "o".into()))
        );
        assert_eq!(held.take("repository/us-east-1/b"), None);
        assert_eq!(
            held.take_all(),
            [("repository/us-east-1/a".to_owned(), "o".to_owned())]
        );
    }
}
