//! ECR's pace for a prefix statement's fan-out (CONTRACT 15): ECR documents no rate for the
//! policy calls, and answers `ThrottlingException` when a registry is called too fast. The
//! SDK retries a throttled call a few times ([`crate::ecr::SDK_MAX_ATTEMPTS`]); a call still
//! throttled after that makes every worker of the fan-out pause, for a step that doubles
//! while ECR keeps throttling (up to [`MAX_PAUSE`]) and halves again as calls go through,
//! and is then tried again, until the deadline. A throttled call is one ECR did not carry
//! out, so trying it again changes nothing else.

use crate::ecr::EcrError;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The first pause after a throttled call.
pub const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause.
pub const MAX_PAUSE: Duration = Duration::from_secs(20);

#[derive(Debug)]
struct State {
    /// No call starts before this.
    resume_at: Instant,
    /// The next pause.
    step: Duration,
    /// When the last pause was set: a throttle of a call sent before it is part of the
    /// same burst, and does not double the step again.
    paused_at: Option<Instant>,
    /// Wall-clock time during which a pause was in force.
    paused: Duration,
    /// Calls ECR throttled (after the SDK's retries).
    throttled: u32,
}

/// ECR's pace for one request: once armed (by a prefix statement's fan-out), every call waits
/// while a pause is in force, and a throttled call is tried again after one, until `until`.
/// [`super::write::InFlight`] sends every call of the request through it.
pub struct Pace {
    until: Instant,
    /// Whether throttles are paced: only in a prefix statement's fan-out; elsewhere the
    /// SDK's retries are all (CONTRACT 7).
    armed: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

/// What the pacing cost: the calls ECR throttled, and the time paused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    pub throttled: u32,
    pub paused: Duration,
}

impl Pace {
    pub fn new(until: Instant) -> Self {
        Self {
            until,
            armed: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                resume_at: Instant::now(),
                step: FIRST_PAUSE,
                paused_at: None,
                paused: Duration::ZERO,
                throttled: 0,
            }),
        }
    }

    /// From now on, throttled calls are paced and tried again.
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// What the pacing cost so far.
    pub fn pacing(&self) -> Pacing {
        let state = self.state();
        Pacing {
            throttled: state.throttled,
            paused: state.paused,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A throttle of a call sent at `sent`: the pause it sets, if the call may be tried
    /// again after it (`None`: the pause would outlast the deadline).
    fn throttled(&self, sent: Instant) -> Option<Instant> {
        let mut state = self.state();
        state.throttled += 1;
        let now = Instant::now();
        let same_burst = state.paused_at.is_some_and(|at| sent <= at);
        if !same_burst {
            let pause = state.step.mul_f64(1.0 + fastrand::f64() / 2.0);
            let resume_at = (now + pause).max(state.resume_at);
            let from = state.resume_at.max(now);
            state.paused += resume_at.saturating_duration_since(from);
            state.resume_at = resume_at;
            state.paused_at = Some(now);
            state.step = (state.step * 2).min(MAX_PAUSE);
        }
        (state.resume_at < self.until).then_some(state.resume_at)
    }

    /// A call that ECR carried out: the step halves, down to the first.
    fn went_through(&self) {
        let mut state = self.state();
        state.step = (state.step / 2).max(FIRST_PAUSE);
    }

    /// Makes `call` at ECR's pace.
    pub async fn paced<T, Fut>(&self, call: impl Fn() -> Fut) -> Result<T, EcrError>
    where
        Fut: Future<Output = Result<T, EcrError>>,
    {
        loop {
            // A pause set while this one waited is waited out too.
            loop {
                let resume_at = self.state().resume_at;
                if Instant::now() >= resume_at {
                    break;
                }
                tokio::time::sleep_until(resume_at).await;
            }
            let sent = Instant::now();
            match call().await {
                Err(error) if error.throttled() && self.armed() => match self.throttled(sent) {
                    Some(resume_at) => {
                        let pause_ms = resume_at.saturating_duration_since(Instant::now());
                        let pause_ms = pause_ms.as_millis() as u64;
                        tracing::info!(error = %error, pause_ms, "ECR throttled; pausing");
                    }
                    None => return Err(error),
                },
                result => {
                    self.went_through();
                    return result;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A call whose first `throttles` answers are throttled.
    struct Throttling {
        throttles: AtomicU32,
        calls: AtomicU32,
    }

    impl Throttling {
        fn new(throttles: u32) -> Self {
            Self {
                throttles: AtomicU32::new(throttles),
                calls: AtomicU32::new(0),
            }
        }

        async fn call(&self) -> Result<(), EcrError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // ECR takes a while to answer: calls sent together are all under way.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let left = self.throttles.load(Ordering::SeqCst);
            if left > 0 {
                self.throttles.store(left - 1, Ordering::SeqCst);
                return Err(throttle());
            }
            Ok(())
        }
    }

    fn throttle() -> EcrError {
        EcrError::Throttled {
            operation: "GetRepositoryPolicy",
            detail: "HTTP 400 ThrottlingException: Rate exceeded".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_call_is_tried_again_after_a_doubling_pause() {
        let ecr = Throttling::new(3);
        let pace = Pace::new(Instant::now() + Duration::from_secs(60));
        pace.arm();
        let started = Instant::now();
        assert_eq!(pace.paced(|| ecr.call()).await, Ok(()));
        assert_eq!(ecr.calls.load(Ordering::SeqCst), 4);
        // 0.5 s, 1 s and 2 s, each up to half again as long, and 10 ms for each answer.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(3540) && took <= Duration::from_millis(5290),
            "{took:?}"
        );
        let pacing = pace.pacing();
        assert_eq!(pacing.throttled, 3);
        // Paused all along but for the four answers (the paused clock wakes on whole
        // milliseconds).
        let answers = Duration::from_millis(40);
        assert!(
            (took - answers).abs_diff(pacing.paused) < Duration::from_millis(5),
            "{took:?} {pacing:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_that_outlasts_the_deadline_is_the_error() {
        let ecr = Throttling::new(u32::MAX);
        let pace = Pace::new(Instant::now() + Duration::from_secs(10));
        pace.arm();
        assert_eq!(pace.paced(|| ecr.call()).await, Err(throttle()));
        assert!(Instant::now() < pace.until);
        // 0.5 + 1 + 2 + 4 s at least; the next pause (8 s or more) would pass the deadline.
        assert!(ecr.calls.load(Ordering::SeqCst) <= 5);
    }

    #[tokio::test(start_paused = true)]
    async fn unarmed_a_throttle_is_the_error_at_once() {
        let ecr = Throttling::new(1);
        let pace = Pace::new(Instant::now() + Duration::from_secs(60));
        assert_eq!(pace.paced(|| ecr.call()).await, Err(throttle()));
        assert_eq!(ecr.calls.load(Ordering::SeqCst), 1);
        assert_eq!(pace.pacing().paused, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_of_one_burst_pause_once_and_every_worker_waits() {
        let ecr = Throttling::new(4);
        let pace = Pace::new(Instant::now() + Duration::from_secs(60));
        pace.arm();
        let started = Instant::now();
        let call = || pace.paced(|| ecr.call());
        let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
        for result in [a, b, c, d] {
            assert_eq!(result, Ok(()));
        }
        // Four throttles of calls sent together: one pause of 0.5 to 0.75 s, not four
        // doublings (then 10 ms for each answer).
        let took = started.elapsed();
        assert!(took <= Duration::from_millis(775), "{took:?}");
        assert_eq!(pace.pacing().throttled, 4);
        assert_eq!(ecr.calls.load(Ordering::SeqCst), 8);
    }
}
