//! Work that one invocation cannot finish continues in the next (CONTRACT 15): a prefix
//! statement over more repositories than one invocation reaches stops starting targets
//! before its deadline ([`stop_at`]), and the function invokes itself, asynchronously, with
//! the original event and how far it got ([`Progress`], under
//! [`crate::event::progress::PROGRESS_KEY`]); the last invocation answers CloudFormation.
//!
//! The targets of a prefix are worked on in one order (repositories by name, then
//! templates by prefix) and started in that order, and an invocation waits for every target
//! it started: what is done is always every target up to one ([`Progress::after`]). Each
//! invocation lists the matches again and goes on after it. A target done twice (an
//! invocation delivered twice) is done as a retried request does it, by the record: its
//! statements already held under this request's tag are kept as they are. And each
//! invocation after the first claims its step in the lock table ([`claim`]), so that a
//! second delivery of it does nothing at all: one chain, one answer.

#[cfg(doc)]
use crate::event::progress::Progress;
use crate::lock::{LockError, LockStore, Record};
use std::time::Duration;
use tokio::time::Instant;

/// The most time an invocation keeps, at its end, for the targets under way and the
/// handover: it stops starting targets this long (or a quarter of its time, if less) before
/// its deadline.
pub const HANDOVER_RESERVE: Duration = Duration::from_secs(60);

/// When an invocation whose work must end at `deadline` stops starting targets.
pub fn stop_at(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline - (left / 4).min(HANDOVER_RESERVE)
}

/// The lock item that claims step `step` of request `request_id`.
pub fn claim_key(request_id: &str, step: u32) -> String {
    format!("continuation/{request_id}/{step}")
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This invocation carries the step.
    Taken,
    /// Another delivery of the same step carries it, or carried it already.
    Duplicate,
}

/// Claims step `step` of a request for `owner`, until `until_ms`: a second delivery of the
/// same step finds it taken (or done) and does nothing.
pub async fn claim<L: LockStore>(
    lock: &L,
    key: &str,
    owner: &str,
    now_ms: u64,
    until_ms: u64,
) -> Result<Claim, LockError> {
    match lock.acquire(key, owner, now_ms, until_ms).await {
        Ok(record) if record.written_ms.is_some() => {
            // Done: the lease just taken goes back at once.
            lock.release(key, owner, true).await?;
            Ok(Claim::Duplicate)
        }
        Ok(_) => Ok(Claim::Taken),
        Err(LockError::Busy) => Ok(Claim::Duplicate),
        Err(other) => Err(other),
    }
}

/// Marks a claimed step done (its answer sent or its work handed on) and gives the claim
/// back; the item expires after a while.
pub async fn settle<L: LockStore>(
    lock: &L,
    key: &str,
    owner: &str,
    now_ms: u64,
) -> Result<(), LockError> {
    let done = Record {
        written_ms: Some(now_ms),
        ..Record::default()
    };
    lock.store(key, owner, &done).await?;
    lock.release(key, owner, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_stops_starting_a_quarter_of_its_time_before_the_end_at_most_a_minute() {
        let now = Instant::now();
        let at = |left: u64| stop_at(now + Duration::from_secs(left), now) - now;
        assert_eq!(at(8), Duration::from_secs(6));
        assert_eq!(at(900), Duration::from_secs(840));
    }
}
