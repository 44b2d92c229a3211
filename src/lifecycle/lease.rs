//! The target's lease (CONTRACT 9 and 11): taken with a conditional write that accepts the
//! request's own lease (a retry whose first answer was lost), kept while the request reads,
//! stores the record and writes ECR, and given back only when no write of this request can
//! still land. Abandoned work (a timeout or a panic) with an ECR call in flight leaves the
//! lease to expire: its expiry covers that call's attempt timeout.

use super::Context;
use crate::error::Failure;
use crate::identity::Target;
use crate::lock::{self, LockError, LockStore, Record};
use crate::retry::{self, Attempt, Backoff};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long a lease outlives the invocation's answer deadline: an ECR call sent just before
/// it may still land until its attempt times out.
pub const LEASE_MARGIN: Duration = crate::ecr::ATTEMPT_TIMEOUT;

/// The lease a request holds: kept outside the work, so that when the work is abandoned
/// (timeout, panic) the provider still knows whether it may give the lease back.
#[derive(Debug, Default)]
pub struct HeldLease {
    held: Mutex<Option<(String, String)>>,
    /// ECR writes and deletes sent and not answered: while any is, it may still land. A
    /// write abandoned mid-flight is never answered, so it counts for good.
    writing: AtomicUsize,
}

impl HeldLease {
    fn set(&self, held: Option<(String, String)>) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = held;
    }

    /// The lease still held (key and owner), taken out.
    fn take(&self) -> Option<(String, String)> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Counts an ECR write as sent (`true`) or answered (`false`).
    pub fn writing(&self, sent: bool) {
        if sent {
            self.writing.fetch_add(1, Ordering::SeqCst);
        } else {
            self.writing.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether a write of this request may still land.
    pub fn write_in_flight(&self) -> bool {
        self.writing.load(Ordering::SeqCst) > 0
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
    let key = lock::key(target);
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
                target: target.describe(),
                waited: started.elapsed(),
            },
            other => Failure::Lock(other),
        })?;
    cx.held.set(Some((key.clone(), owner.to_owned())));
    Ok(Some(Taken {
        key,
        owner: owner.to_owned(),
        record,
    }))
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

/// Puts the record back as it was when the lease was taken, after ECR refused the write
/// that the stored record announced. A failure is logged: the record then says more than
/// ECR holds, which the next change on the target writes again.
pub async fn put_back<L: LockStore>(lease: Option<&Taken>, cx: &Context<'_, L>) {
    let (Some(lease), Some(lock)) = (lease, cx.lock) else {
        return;
    };
    if let Err(error) = lock.store(&lease.key, &lease.owner, &lease.record).await {
        tracing::warn!(lock = %lease.key, error = %error, "could not put the record back after ECR refused the write");
    }
}

/// Gives the lease back once the work is done, unless a write of this request may still
/// land. A failure to do so is logged: the lease expires by itself.
pub async fn give_back<L: LockStore>(lease: Option<&Taken>, idle: bool, cx: &Context<'_, L>) {
    let (Some(_), Some(lock)) = (lease, cx.lock) else {
        return;
    };
    if cx.held.write_in_flight() {
        tracing::warn!("an ECR write of this request may still land; the lock is left to expire");
        cx.held.take();
        return;
    }
    let Some((key, owner)) = cx.held.take() else {
        return;
    };
    if let Err(error) = lock.release(&key, &owner, idle).await {
        tracing::warn!(lock = %key, error = %error, "could not give the lock back; it expires by itself");
    }
}

/// A lease still held once the work has ended belongs to work that was abandoned (a timeout
/// or a panic): given back within `within`, unless an ECR write of it may still land.
pub async fn give_back_abandoned<L: LockStore>(
    lock: Option<&L>,
    held: &HeldLease,
    within: Duration,
) {
    let Some(lock) = lock else {
        return;
    };
    let in_flight = held.write_in_flight();
    let Some((key, owner)) = held.take() else {
        return;
    };
    if in_flight {
        tracing::warn!(lock = %key, "abandoned work may still have an ECR write in flight; the lock is left to expire");
        return;
    }
    match tokio::time::timeout(within, lock.release(&key, &owner, false)).await {
        Ok(Ok(())) => tracing::info!(lock = %key, "gave back the lock of abandoned work"),
        Ok(Err(error)) => {
            tracing::warn!(lock = %key, error = %error, "could not give back the lock of abandoned work; it expires by itself")
        }
        Err(_) => {
            tracing::warn!(lock = %key, "giving back the lock of abandoned work took too long; it expires by itself")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_abandoned_in_flight_stays_in_flight_whatever_follows() {
        let held = HeldLease::default();
        assert!(!held.write_in_flight());
        // A write sent and never answered (its future dropped at the deadline)...
        held.writing(true);
        // ...then the undo's own write, sent and answered.
        held.writing(true);
        held.writing(false);
        assert!(held.write_in_flight());
    }
}
