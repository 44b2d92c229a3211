//! The per-target lock and record (CONTRACT 9 and 11): a lease in a DynamoDB table that
//! serialises the read-decide-write of one target's policy across concurrent invocations,
//! and, in the same item, the provider's record of what it manages there: who holds each
//! Sid and the statement as last written, who owns the whole policy and the policy as last
//! written, and the statements it removed lately. A merge starts from the record, not from
//! ECR's read, which can lag.

use crate::identity::Target;
use std::collections::BTreeMap;
use std::future::Future;

pub mod dynamo;
/// An in-memory lock table, for tests.
#[cfg(feature = "test-util")]
pub mod memory;

/// The environment variable that names the lock table (`template.yaml` sets it).
pub const TABLE_VARIABLE: &str = "POLICY_LOCK_TABLE";

/// The record format written today (`format` in the item); format 2 items (without the
/// displaced holders, the earlier versions, the deleted whole policy and the last write's
/// date) and items without it, format 1 (a digest and `holders`, Sid to tag), are still read.
pub const RECORD_FORMAT: u32 = 3;

/// How long a statement this provider removed is remembered: a lagging read that still shows
/// it within this time does not bring it back (ECR's reads lag by seconds, a minute at most).
pub const REMOVED_KEPT_MS: u64 = 15 * 60 * 1000;

/// How long after the provider's last write to a target a read that lacks what it wrote is
/// taken for a lagging read, and read again (CONTRACT 11).
pub const READ_LAG_MS: u64 = 60 * 1000;

/// The start of every key of the prefix statements' index items (CONTRACT 15; written by
/// `lifecycle::arrivals`), which name no target: here, below both drift and the lifecycle,
/// which both need it.
pub const INDEX_KEY_PREFIX: &str = "prefix/";

/// The lock item's key for a target: one lock per registry policy, repository policy or
/// creation template.
pub fn key(target: &Target) -> String {
    match target {
        Target::Registry { region } => format!("registry/{region}"),
        Target::Repository { region, name } => format!("repository/{region}/{name}"),
        Target::Template { region, prefix } => format!("template/{region}/{prefix}"),
    }
}

/// The target a lock item's key names: the inverse of [`key`].
pub fn target_of(key: &str) -> Option<Target> {
    if let Some(region) = key.strip_prefix("registry/") {
        return (!region.is_empty() && !region.contains('/')).then(|| Target::Registry {
            region: region.to_owned(),
        });
    }
    if let Some(rest) = key.strip_prefix("template/") {
        let (region, prefix) = rest.split_once('/')?;
        return (!region.is_empty() && !prefix.is_empty()).then(|| Target::Template {
            region: region.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    let (region, name) = key.strip_prefix("repository/")?.split_once('/')?;
    (!region.is_empty() && !name.is_empty()).then(|| Target::Repository {
        region: region.to_owned(),
        name: name.to_owned(),
    })
}

/// A resource that holds something in the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// The tag of the request that created the resource (a statement resource's id carries
    /// it; a failed create's id names its request).
    pub tag: String,
    /// The resource's StackId (empty in a format-1 record).
    pub stack: String,
    /// The resource's LogicalResourceId (empty in a format-1 record).
    pub logical: String,
}

impl Holder {
    /// Whether `other` is the same resource: the same stack and logical id, or, when one
    /// side does not know them (a format-1 record), the same tag.
    pub fn same_resource(&self, other: &Holder) -> bool {
        if self.stack.is_empty() || other.stack.is_empty() {
            self.tag == other.tag
        } else {
            self.stack == other.stack && self.logical == other.logical
        }
    }
}

/// What was in place before a Create took it: put back if that Create failed and its write
/// landed after the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior {
    /// Who held it, if anyone did.
    pub holder: Option<Holder>,
    /// The statement (or policy) as it was, compact JSON.
    pub text: String,
}

/// A version the provider wrote and then replaced, and when it was replaced (milliseconds
/// since the epoch): a lagging read may still show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub text: String,
    pub at_ms: u64,
}

/// A Sid a statement resource holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub holder: Holder,
    /// The statement as last written, compact JSON; `None` in a format-1 record (then the
    /// live read is all there is).
    pub statement: Option<String>,
    /// What a Create of this Sid replaced.
    pub prior: Option<Prior>,
    /// The `Force` the holder asked for.
    pub force: bool,
    /// Versions written before this one, replaced in the last [`REMOVED_KEPT_MS`].
    pub earlier: Vec<Version>,
}

/// A whole policy a whole-policy resource owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    pub holder: Holder,
    /// The policy as last written, compact JSON.
    pub policy: String,
    /// What the owner's Create replaced.
    pub prior: Option<Prior>,
    /// The `Force` the owner asked for.
    pub force: bool,
    /// Versions written before this one, replaced in the last [`REMOVED_KEPT_MS`].
    pub earlier: Vec<Version>,
}

/// A statement (or a whole policy) the provider removed, and when (milliseconds since the
/// epoch), with the other versions of it the provider wrote lately: a lagging read may show
/// any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub statement: String,
    pub at_ms: u64,
    pub also: Vec<String>,
}

impl Removed {
    /// Every version removed: the last and the earlier ones.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.statement.as_str()).chain(self.also.iter().map(String::as_str))
    }
}

/// A resource whose Sid or whole policy another took over (by `Adopt`, a renamed logical id
/// or a replacement), with what it declares now, kept current by its Updates: handed back to
/// it if the one that took over is deleted first (CONTRACT 11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Displaced {
    pub holder: Holder,
    /// The Sid it held; `None`: it owned the whole policy.
    pub sid: Option<String>,
    /// The statement (or the whole policy) it declares, compact JSON.
    pub text: String,
    /// The `Force` it asked for.
    pub force: bool,
    /// The resource that took it over: its Delete hands it back, if nobody holds it then
    /// (or leaves it taken by whoever does). `None` in an entry stored before takers were
    /// recorded: handed back by whichever resource holds it when that one is deleted.
    pub by: Option<Holder>,
    /// A whole policy whose ownership a statement ended: it is never handed back whole, and
    /// gets back only the Sids of its policy whose holders are deleted.
    pub ended: bool,
    /// What the whole policy's Create replaced, with nobody holding it (the statements its
    /// Create adopted): put back if that Create failed and its Delete comes.
    pub prior: Option<Prior>,
}

/// The record of one target (CONTRACT 11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Who holds each Sid, and the statement as last written.
    pub statements: BTreeMap<String, Held>,
    /// The whole policy's owner, and the policy as last written.
    pub owner: Option<Owned>,
    /// Statements removed lately, by Sid.
    pub removed: BTreeMap<String, Removed>,
    /// The whole policy the provider deleted lately.
    pub removed_policy: Option<Removed>,
    /// Resources displaced by another, oldest first.
    pub displaced: Vec<Displaced>,
    /// When the provider last wrote (or deleted) the target's policy.
    pub written_ms: Option<u64>,
    /// The policy as the provider last wrote it (compact JSON; none after a delete): a read
    /// less than a minute later that lacks one of its statements may lag behind that write.
    pub written: Option<String>,
    /// Displaced resources whose Delete came lately: a duplicate delivery of that Delete
    /// does what the first did (nothing for them), not a Delete without a record. In a
    /// prefix statements' index item: the prefix statements whose Delete came, kept 30 days
    /// (`lifecycle::arrivals::end`).
    pub gone: Vec<Gone>,
    /// Creates answered FAILED lately whose write may have landed (the record still
    /// announces it, for their Delete to take out): they took nothing over by the rename
    /// exception, so an equivalent statement of their stack is not theirs to take.
    pub failed: Vec<Gone>,
}

/// A displaced resource whose Delete came, and when (milliseconds since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gone {
    pub holder: Holder,
    pub at_ms: u64,
}

impl Record {
    /// Whether the request tagged `tag` is a Create answered FAILED whose write may have
    /// landed.
    pub fn failed_create(&self, tag: &str) -> bool {
        self.failed.iter().any(|f| f.holder.tag == tag)
    }

    /// The tag of the resource holding `sid`, if any.
    pub fn holder_of(&self, sid: &str) -> Option<&str> {
        self.statements.get(sid).map(|h| h.holder.tag.as_str())
    }

    /// Whether the record holds anything that must outlive idleness (a held Sid, an owned
    /// policy, a displaced resource that may be handed something back): such an item never
    /// expires.
    pub fn holds_anything(&self) -> bool {
        !self.statements.is_empty() || self.owner.is_some() || !self.displaced.is_empty()
    }

    /// Whether writing the record back asks ECR to force the write: the whole policy's owner
    /// asked for `Force`, or, without an owner, one of the statement resources did.
    pub fn force(&self) -> bool {
        match &self.owner {
            Some(owned) => owned.force,
            None => self.statements.values().any(|held| held.force),
        }
    }
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

/// The lock table: conditional writes to take a lease, to store the record under it, and to
/// give it back.
pub trait LockStore: Send + Sync {
    /// Takes the lease on `key` for `owner` until `until_ms` (milliseconds since the epoch),
    /// if no one else holds an unexpired one at `now_ms` (a lease `owner` already holds is
    /// taken again: a retried acquire whose first answer was lost succeeds), and removes any
    /// pending expiry of the item; returns the record.
    fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> impl Future<Output = Result<Record, LockError>> + Send;

    /// Stores `record` if `owner` still holds the lease.
    fn store(
        &self,
        key: &str,
        owner: &str,
        record: &Record,
    ) -> impl Future<Output = Result<(), LockError>> + Send;

    /// Gives the lease back if `owner` still holds it. `idle`: the record holds nothing, so
    /// the item may expire after a while.
    fn release(
        &self,
        key: &str,
        owner: &str,
        idle: bool,
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
    fn store(
        &self,
        key: &str,
        owner: &str,
        record: &Record,
    ) -> impl Future<Output = Result<(), LockError>> + Send {
        (**self).store(key, owner, record)
    }
    fn release(
        &self,
        key: &str,
        owner: &str,
        idle: bool,
    ) -> impl Future<Output = Result<(), LockError>> + Send {
        (**self).release(key, owner, idle)
    }
}

/// Times the lock calls made through it, for the logs and the benchmark: from the first
/// try to take a lease to the last (the pauses between tries while another request holds
/// it included), plus storing the record and giving the lease back.
pub struct Timed<'a, L> {
    inner: &'a L,
    stats: std::sync::Mutex<TimedStats>,
}

#[derive(Debug, Default, Clone, Copy)]
struct TimedStats {
    calls: u32,
    first_try: Option<std::time::Instant>,
    last_try_done: Option<std::time::Instant>,
    after_taking: std::time::Duration,
}

impl<'a, L> Timed<'a, L> {
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

    /// Calls made, and the time taken by the lock: taking the lease (waiting included),
    /// storing the record and giving the lease back.
    pub fn stats(&self) -> (u32, std::time::Duration) {
        let stats = *self.stats_mut();
        let taking = match (stats.first_try, stats.last_try_done) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => std::time::Duration::ZERO,
        };
        (stats.calls, taking + stats.after_taking)
    }

    async fn timed<T>(&self, call: impl Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let result = call.await;
        let mut stats = self.stats_mut();
        stats.calls += 1;
        stats.after_taking += started.elapsed();
        result
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

    async fn store(&self, key: &str, owner: &str, record: &Record) -> Result<(), LockError> {
        self.timed(self.inner.store(key, owner, record)).await
    }

    async fn release(&self, key: &str, owner: &str, idle: bool) -> Result<(), LockError> {
        self.timed(self.inner.release(key, owner, idle)).await
    }
}

impl<L: RecordReader> RecordReader for Timed<'_, L> {
    async fn read(&self, key: &str) -> Result<Option<Snapshot>, LockError> {
        self.timed(self.inner.read(key)).await
    }

    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        self.timed(self.inner.scan()).await
    }
}

/// One item of the lock table as a reader sees it, without taking the lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub record: Record,
    /// Until when a request holds the lease (milliseconds since the epoch), if one does.
    pub leased_until_ms: Option<u64>,
}

impl Snapshot {
    /// Whether a request holds the lease at `now_ms`: its writes may not have landed yet.
    pub fn leased_at(&self, now_ms: u64) -> bool {
        self.leased_until_ms.is_some_and(|until| until >= now_ms)
    }
}

/// Reads the record without taking the lease (CONTRACT 13's drift checks): one item, or
/// every item.
pub trait RecordReader: Send + Sync {
    /// The item for `key`, if there is one.
    fn read(&self, key: &str) -> impl Future<Output = Result<Option<Snapshot>, LockError>> + Send;

    /// Every item, as `(key, snapshot)`.
    fn scan(&self) -> impl Future<Output = Result<Vec<(String, Snapshot)>, LockError>> + Send;
}

impl<T: RecordReader> RecordReader for std::sync::Arc<T> {
    fn read(&self, key: &str) -> impl Future<Output = Result<Option<Snapshot>, LockError>> + Send {
        (**self).read(key)
    }
    fn scan(&self) -> impl Future<Output = Result<Vec<(String, Snapshot)>, LockError>> + Send {
        (**self).scan()
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
    async fn store(&self, _: &str, _: &str, _: &Record) -> Result<(), LockError> {
        Ok(())
    }
    async fn release(&self, _: &str, _: &str, _: bool) -> Result<(), LockError> {
        Ok(())
    }
}

impl RecordReader for NoLock {
    async fn read(&self, _: &str) -> Result<Option<Snapshot>, LockError> {
        Err(LockError::NoTable {
            table: String::new(),
        })
    }
    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        Err(LockError::NoTable {
            table: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(tag: &str, stack: &str, logical: &str) -> Holder {
        Holder {
            tag: tag.into(),
            stack: stack.into(),
            logical: logical.into(),
        }
    }

    #[test]
    fn a_key_names_its_target_and_back() {
        let targets = [
            Target::Registry {
                region: "eu-west-1".into(),
            },
            Target::Repository {
                region: "us-east-1".into(),
                name: "team/app".into(),
            },
            Target::Template {
                region: "us-east-1".into(),
                prefix: "team/".into(),
            },
        ];
        for target in targets {
            assert_eq!(target_of(&key(&target)), Some(target));
        }
        for bad in [
            "",
            "registry/",
            "registry/a/b",
            "repository/us-east-1",
            "repository//app",
            "template/us-east-1",
            "template/us-east-1/",
            "repository/us-east-1/",
            "other/us-east-1",
        ] {
            assert_eq!(target_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_lease_counts_until_its_last_millisecond() {
        let mut snapshot = Snapshot::default();
        assert!(!snapshot.leased_at(5));
        snapshot.leased_until_ms = Some(5);
        assert!(snapshot.leased_at(5));
        assert!(!snapshot.leased_at(6));
    }

    #[test]
    fn a_resource_is_known_by_its_stack_and_logical_id_or_else_by_its_tag() {
        let a = holder("t1", "stack-1", "Grant");
        assert!(a.same_resource(&holder("t2", "stack-1", "Grant")));
        assert!(!a.same_resource(&holder("t1", "stack-1", "Other")));
        assert!(!a.same_resource(&holder("t1", "stack-2", "Grant")));
        // A format-1 record knows only the tag, on either side.
        let legacy = holder("t1", "", "");
        assert!(legacy.same_resource(&a) && a.same_resource(&legacy));
        assert!(!holder("t9", "", "").same_resource(&a));
    }

    #[test]
    fn a_restore_forces_what_the_owner_or_any_holder_asked_to_force() {
        let mut record = Record::default();
        assert!(!record.force());
        record.statements.insert("A".into(), Held::default());
        assert!(!record.force());
        record.statements.insert(
            "B".into(),
            Held {
                force: true,
                ..Held::default()
            },
        );
        assert!(record.force(), "one holder asked for it");
        // An owner decides for the whole policy.
        record.owner = Some(Owned::default());
        assert!(!record.force());
        record.owner = Some(Owned {
            force: true,
            ..Owned::default()
        });
        assert!(record.force());
    }

    #[test]
    fn only_a_record_that_holds_nothing_may_expire() {
        let mut record = Record::default();
        assert!(!record.holds_anything());
        record.removed.insert("Gone".into(), Removed::default());
        assert!(!record.holds_anything(), "removals alone may expire");
        record.statements.insert("A".into(), Held::default());
        assert!(record.holds_anything());
        record.statements.clear();
        record.owner = Some(Owned::default());
        assert!(record.holds_anything());
    }

    /// A lock table whose every call takes 20 ms.
    struct Slow;

    impl LockStore for Slow {
        async fn acquire(&self, _: &str, _: &str, _: u64, _: u64) -> Result<Record, LockError> {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Err(LockError::Busy)
        }
        async fn store(&self, _: &str, _: &str, _: &Record) -> Result<(), LockError> {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(())
        }
        async fn release(&self, _: &str, _: &str, _: bool) -> Result<(), LockError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_time_taken_runs_from_the_first_try_to_the_last_plus_the_rest() {
        let timed = Timed::new(&Slow);
        let _ = timed.acquire("k", "o", 1, 2).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // a pause between tries
        let _ = timed.acquire("k", "o", 1, 2).await;
        timed
            .store("k", "o", &Record::default())
            .await
            .expect("stored");
        let (calls, took) = timed.stats();
        assert_eq!(calls, 3);
        // 20 + 100 + 20 ms taking the lease (the pause included), 20 ms storing.
        assert!(took >= std::time::Duration::from_millis(160), "{took:?}");
    }

    #[tokio::test]
    async fn every_lock_call_is_counted_and_timed() {
        let timed = Timed::new(&NoLock);
        let _ = timed.acquire("k", "o", 1, 2).await;
        timed
            .store("k", "o", &Record::default())
            .await
            .expect("stored");
        timed.release("k", "o", true).await.expect("released");
        let (calls, _) = timed.stats();
        assert_eq!(calls, 3);
    }
}
