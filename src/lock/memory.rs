//! An in-memory lock table with the same conditional semantics as the DynamoDB one, and
//! counters for tests.

use super::{LockError, LockStore, Record};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Default)]
struct Item {
    lease: Option<(String, u64)>,
    record: Record,
}

/// Calls counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockCalls {
    pub acquired: usize,
    pub busy: usize,
    pub released: usize,
}

#[derive(Default)]
pub struct MemoryLock {
    items: Mutex<HashMap<String, Item>>,
    calls: Mutex<LockCalls>,
}

impl MemoryLock {
    pub fn new() -> Self {
        Self::default()
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

    /// Who holds the lease on `key`, and until when, if anyone.
    pub fn lease(&self, key: &str) -> Option<(String, u64)> {
        self.items().get(key).and_then(|item| item.lease.clone())
    }

    /// Takes the lease as a crashed invocation would have: held until `until_ms`.
    pub fn hold(&self, key: &str, owner: &str, until_ms: u64) {
        self.items().entry(key.to_owned()).or_default().lease = Some((owner.to_owned(), until_ms));
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
            .is_some_and(|(_, until)| *until >= now_ms)
        {
            drop(items);
            self.count(|c| c.busy += 1);
            return Err(LockError::Busy);
        }
        item.lease = Some((owner.to_owned(), until_ms));
        let record = item.record.clone();
        drop(items);
        self.count(|c| c.acquired += 1);
        Ok(record)
    }

    async fn release(
        &self,
        key: &str,
        owner: &str,
        record: Option<&Record>,
    ) -> Result<(), LockError> {
        let mut items = self.items();
        let item = items.entry(key.to_owned()).or_default();
        if item
            .lease
            .as_ref()
            .is_none_or(|(holder, _)| holder != owner)
        {
            return Err(LockError::Busy);
        }
        item.lease = None;
        if let Some(record) = record {
            item.record = record.clone();
        }
        drop(items);
        self.count(|c| c.released += 1);
        Ok(())
    }
}
