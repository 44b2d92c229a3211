//! The per-target lock (CONTRACT 9): a lease in a DynamoDB table that serialises the
//! read-decide-write of one target's policy across concurrent invocations, and the record
//! kept beside it: a digest of the policy this provider last wrote there (ECR's reads can
//! lag its writes) and who holds which Sid.

use crate::identity::Target;
use std::future::Future;

pub mod dynamo;
/// An in-memory lock table, for tests.
#[cfg(feature = "test-util")]
pub mod memory;

/// Who holds each Sid of a target's policy: the tag of the statement resource that created
/// it or last took it over (CONTRACT 9).
pub type Holders = std::collections::BTreeMap<String, String>;

/// The environment variable that names the lock table (`template.yaml` sets it).
pub const TABLE_VARIABLE: &str = "POLICY_LOCK_TABLE";

/// The lock item's key for a target: one lock per registry policy or repository policy.
pub fn key(target: &Target) -> String {
    match target {
        Target::Registry { region } => format!("registry/{region}"),
        Target::Repository { region, name } => format!("repository/{region}/{name}"),
    }
}

/// What the provider keeps beside a target's lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The digest of the policy this provider last wrote to the target
    /// ([`crate::policy::Policy::digest`]), or [`NO_POLICY`] after it deleted it.
    pub digest: Option<String>,
    /// Who holds each Sid (statement resources).
    pub holders: Holders,
}

/// The digest recorded after the provider deleted the policy.
pub const NO_POLICY: &str = "none";

/// A lease taken: who holds it, until when, and the record as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    /// The request that holds it.
    pub owner: String,
    pub record: Record,
}

/// Why the lock could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Someone else holds the lease (a conditional write failed).
    #[error("another request holds the lock")]
    Busy,
    #[error(
        "the lock table {table} denied {operation}: {message}; the function's execution role \
         needs dynamodb:{operation} on it (see IAM permissions in the README)"
    )]
    AccessDenied {
        table: String,
        operation: &'static str,
        message: String,
    },
    #[error(
        "the lock table {table} does not exist: set {TABLE_VARIABLE} to the table that \
         template.yaml creates"
    )]
    NoTable { table: String },
    #[error("the lock table {table} failed on {operation}: {detail}; retry the stack operation")]
    Unavailable {
        table: String,
        operation: &'static str,
        detail: String,
    },
}

/// The lock table: one conditional write to take a lease, one to give it back.
pub trait LockStore: Send + Sync {
    /// Takes the lease on `key` for `owner` until `until_ms` (milliseconds since the epoch),
    /// if no one holds an unexpired one at `now_ms`; returns the record.
    fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<Record, LockError>> + Send;

    /// Gives the lease back, storing `record` when given, if `owner` still holds it.
    fn release(
        &self,
        key: &str,
        owner: &str,
        record: Option<&Record>,
    ) -> impl Future<Output = Result<(), LockError>> + Send;
}

impl<T: LockStore> LockStore for std::sync::Arc<T> {
    fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<Record, LockError>> + Send {
        (**self).acquire(key, owner, now_ms, until_ms)
    }
    fn release(
        &self,
        key: &str,
        owner: &str,
        record: Option<&Record>,
    ) -> impl Future<Output = Result<(), LockError>> + Send {
        (**self).release(key, owner, record)
    }
}

/// Times the lock calls made through it, for the logs and the benchmark: from the first
/// try to take a lease to the last (the pauses between tries while another request holds
/// it included), plus giving it back.
pub struct Timed<'a, L> {
    inner: &'a L,
    stats: std::sync::Mutex<TimedStats>,
}

#[derive(Debug, Default, Clone, Copy)]
struct TimedStats {
    calls: u32,
    first_try: Option<std::time::Instant>,
    last_try_done: Option<std::time::Instant>,
    releasing: std::time::Duration,
}

impl<'a, L: LockStore> Timed<'a, L> {
    pub fn new(inner: &'a L) -> Self {
        Self {
            inner,
            stats: std::sync::Mutex::new(TimedStats::default()),
        }
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, TimedStats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls made, and the time taken by the lock: taking the lease (waiting included) and
    /// giving it back.
    pub fn stats(&self) -> (u32, std::time::Duration) {
        let stats = *self.stats_mut();
        let taking = match (stats.first_try, stats.last_try_done) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => std::time::Duration::ZERO,
        };
        (stats.calls, taking + stats.releasing)
    }
}

impl<L: LockStore> LockStore for Timed<'_, L> {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        let started = std::time::Instant::now();
        self.stats_mut().first_try.get_or_insert(started);
        let result = self.inner.acquire(key, owner, now_ms, until_ms).await;
        let mut stats = self.stats_mut();
        stats.calls += 1;
        stats.last_try_done = Some(std::time::Instant::now());
        result
    }

    async fn release(
        &self,
        key: &str,
        owner: &str,
        record: Option<&Record>,
    ) -> Result<(), LockError> {
        let started = std::time::Instant::now();
        let result = self.inner.release(key, owner, record).await;
        let mut stats = self.stats_mut();
        stats.calls += 1;
        stats.releasing += started.elapsed();
        result
    }
}

/// No lock table configured: whole-policy resources go ahead without a lease, statement
/// resources are refused (CONTRACT 9).
pub struct NoLock;

impl LockStore for NoLock {
    async fn acquire(&self, _: &str, _: &str, _: u64, _: u64) -> Result<Record, LockError> {
        Err(LockError::NoTable {
            table: String::new(),
        })
    }
    async fn release(&self, _: &str, _: &str, _: Option<&Record>) -> Result<(), LockError> {
        Ok(())
    }
}
