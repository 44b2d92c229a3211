//! Deadline and panic safety (CONTRACT 7): the work on an event is bounded so that a FAILED
//! answer still fits before the invocation's deadline, whatever the work does.

use crate::retry::Clock;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The longest a Lambda invocation can run; a deadline further out is not believed.
const MAX_INVOCATION: Duration = Duration::from_secs(15 * 60);
/// The least time kept for the response PUT.
const MIN_MARGIN: Duration = Duration::from_millis(750);
/// The most time kept for the response PUT.
const MAX_MARGIN: Duration = Duration::from_secs(10);
/// Not spent at all: the PUT must be done before the runtime freezes the process.
const SAFETY: Duration = Duration::from_millis(100);

/// The time one event may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When the work on the event is abandoned and FAILED is sent instead.
    pub work_until: Instant,
    /// When the response must have been sent.
    pub respond_until: Instant,
    /// Whether the invocation's own deadline was missing or implausible.
    pub fallback: bool,
}

impl Budget {
    /// The budget for an invocation whose deadline is `deadline_ms` (milliseconds since the
    /// epoch, as the Runtime API sends it). A deadline that is missing, already past or more
    /// than 15 minutes away is replaced by `default`.
    /// `clock` tells the time of day the deadline is measured against.
    pub fn new(deadline_ms: u64, clock: &Clock, default: Duration) -> Self {
        Self::at(deadline_ms, clock.now(), Instant::now(), default)
    }

    fn at(deadline_ms: u64, wall_now: SystemTime, now: Instant, default: Duration) -> Self {
        let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let (total, fallback) = match deadline.duration_since(wall_now) {
            Ok(left) if left > SAFETY * 2 && left <= MAX_INVOCATION + Duration::from_secs(60) => {
                (left, false)
            }
            _ => (default, true),
        };
        let usable = total.saturating_sub(SAFETY);
        let margin = (usable / 5).clamp(MIN_MARGIN, MAX_MARGIN).min(usable / 2);
        Self {
            work_until: now + usable - margin,
            respond_until: now + usable,
            fallback,
        }
    }
}

/// Why the work did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// It was still running at the budget's end; it has been dropped.
    TimedOut(Duration),
    Panicked(String),
}

/// Runs `work` until `until`, turning a panic into [`Interrupted::Panicked`].
pub async fn guarded<T>(work: impl Future<Output = T>, until: Instant) -> Result<T, Interrupted> {
    let allowed = until.saturating_duration_since(Instant::now());
    match tokio::time::timeout_at(until, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(Interrupted::Panicked(panic_message(panic.as_ref()))),
        Err(_) => Err(Interrupted::TimedOut(allowed)),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH)
            .expect("after epoch")
            .as_millis() as u64
    }

    #[test]
    fn a_real_deadline_keeps_a_margin_for_the_response() {
        let wall = SystemTime::now();
        let now = Instant::now();
        let b = Budget::at(
            ms(wall + Duration::from_secs(30)),
            wall,
            now,
            Duration::from_secs(60),
        );
        assert!(!b.fallback);
        let work = b.work_until - now;
        let respond = b.respond_until - now;
        assert!(
            work >= Duration::from_secs(23) && work <= Duration::from_secs(24),
            "{work:?}"
        );
        assert!(respond < Duration::from_secs(30) && respond > work);
    }

    #[test]
    fn missing_past_or_absurd_deadlines_fall_back_to_the_default() {
        let wall = SystemTime::now();
        let now = Instant::now();
        for deadline in [0, ms(wall) - 1000, ms(wall + Duration::from_secs(3600))] {
            let b = Budget::at(deadline, wall, now, Duration::from_secs(20));
            assert!(b.fallback, "{deadline}");
            assert!(b.respond_until - now <= Duration::from_secs(20));
            assert!(b.work_until - now >= Duration::from_secs(15));
        }
    }

    #[test]
    fn a_tiny_budget_still_splits_between_work_and_answer() {
        let wall = SystemTime::now();
        let now = Instant::now();
        let b = Budget::at(
            ms(wall + Duration::from_secs(1)),
            wall,
            now,
            Duration::from_secs(60),
        );
        assert!(b.work_until > now && b.work_until < b.respond_until);
    }

    #[tokio::test]
    async fn a_panic_and_a_hang_are_both_reported() {
        let until = Instant::now() + Duration::from_millis(50);
        let panicked = guarded(async { panic!("boom") }, until).await;
        assert_eq!(panicked, Err::<(), _>(Interrupted::Panicked("boom".into())));
        let hung = guarded(std::future::pending::<()>(), until).await;
        assert!(matches!(hung, Err(Interrupted::TimedOut(_))));
        assert_eq!(guarded(async { 7 }, until).await, Ok(7));
    }
}
