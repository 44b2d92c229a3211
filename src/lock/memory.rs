//! An in-memory lock table with the same conditional semantics as the DynamoDB one, and
//! counters for tests.

use super::{LockError, LockStore, Record, RecordReader, Snapshot};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
struct Item {
    lease: Option<(String, u64)>,
    record: Record,
    /// The item's pending expiry (TTL), in milliseconds since the epoch.
    expires: Option<u64>,
}

/// Calls counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockCalls {
    pub acquired: usize,
    pub busy: usize,
    pub stored: usize,
    pub released: usize,
}

#[derive(Default)]
pub struct MemoryLock {
    items: Mutex<HashMap<String, Item>>,
    calls: Mutex<LockCalls>,
    /// Dates a released item's expiry.
    clock: crate::retry::Clock,
}

impl MemoryLock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A lock table that dates expiries by `clock` (a simulation's).
    pub fn with_clock(clock: crate::retry::Clock) -> Self {
        Self {
            clock,
            ..Self::default()
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut LockCalls)) {
        f(&mut self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub fn calls(&self) -> LockCalls {
        *self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The record kept for `key`.
    pub fn record(&self, key: &str) -> Record {
        self.items()
            .get(key)
            .map(|item| item.record.clone())
            .unwrap_or_default()
    }

    /// Sets the record kept for `key`, as an earlier version or another invocation left it.
    pub fn set_record(&self, key: &str, record: Record) {
        self.items().entry(key.to_owned()).or_default().record = record;
    }

    /// Who holds the lease on `key`, and until when, if anyone.
    pub fn lease(&self, key: &str) -> Option<(String, u64)> {
        self.items().get(key).and_then(|item| item.lease.clone())
    }

    /// The item's pending expiry, if it has one.
    pub fn expiry(&self, key: &str) -> Option<u64> {
        self.items().get(key).and_then(|item| item.expires)
    }

    /// Gives the item an expiry, as a give-back of an idle item does.
    pub fn set_expiry(&self, key: &str, at_ms: u64) {
        self.items().entry(key.to_owned()).or_default().expires = Some(at_ms);
    }

    /// Takes the lease as a crashed invocation would have: held until `until_ms`.
    pub fn hold(&self, key: &str, owner: &str, until_ms: u64) {
        self.items().entry(key.to_owned()).or_default().lease = Some((owner.to_owned(), until_ms));
    }

    fn held_by(&self, key: &str, owner: &str, f: impl FnOnce(&mut Item)) -> Result<(), LockError> {
        let mut items = self.items();
        let item = items.entry(key.to_owned()).or_default();
        if item
            .lease
            .as_ref()
            .is_none_or(|(holder, _)| holder != owner)
        {
            return Err(LockError::Busy);
        }
        f(item);
        Ok(())
    }
}

impl LockStore for MemoryLock {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        let mut items = self.items();
        let item = items.entry(key.to_owned()).or_default();
        if item
            .lease
            .as_ref()
            .is_some_and(|(holder, until)| *until >= now_ms && holder != owner)
        {
            drop(items);
            self.count(|c| c.busy += 1);
            return Err(LockError::Busy);
        }
        item.lease = Some((owner.to_owned(), until_ms));
        item.expires = None;
        let record = item.record.clone();
        drop(items);
        self.count(|c| c.acquired += 1);
        Ok(record)
    }

    async fn store(&self, key: &str, owner: &str, record: &Record) -> Result<(), LockError> {
        self.held_by(key, owner, |item| item.record = record.clone())?;
        self.count(|c| c.stored += 1);
        Ok(())
    }

    async fn release(&self, key: &str, owner: &str, idle: bool) -> Result<(), LockError> {
        let now_ms = self.clock.now_ms();
        self.held_by(key, owner, |item| {
            item.lease = None;
            if idle {
                item.expires = Some(now_ms + 30 * 24 * 3600 * 1000);
            }
        })?;
        self.count(|c| c.released += 1);
        Ok(())
    }
}

impl MemoryLock {
    fn snapshot(item: &Item) -> Snapshot {
        Snapshot {
            record: item.record.clone(),
            leased_until_ms: item.lease.as_ref().map(|(_, until)| *until),
        }
    }
}

impl RecordReader for MemoryLock {
    async fn read(&self, key: &str) -> Result<Option<Snapshot>, LockError> {
        Ok(self.items().get(key).map(Self::snapshot))
    }

    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        let mut all: Vec<(String, Snapshot)> = self
            .items()
            .iter()
            .map(|(key, item)| (key.clone(), Self::snapshot(item)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}
