//! One retry-with-backoff-until-a-deadline, for every retry of the provider's own: the
//! IAM-propagation retry of a policy write (CONTRACT 7) and the response PUT (CONTRACT 6).
//! (The SDK retries ECR's throttling and 5xx itself.)
//!
//! Our own rather than `backon`: both callers stop when the next pause would end past a
//! deadline, which backon's builders cannot express (their limits count attempts or the
//! sum of pauses, not the time spent in the attempts themselves).

use std::future::Future;
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;

/// Milliseconds since the epoch by the system clock. Decisions never read it directly: they
/// take the time from a [`Clock`], which a test can hand in.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Where the time of day comes from: the lease's expiry, the record's dates, the invocation's
/// deadline. The function reads the system clock; a simulation hands in a virtual one that
/// tokio's clock moves (paused, it moves only when every task waits), so that one seed
/// replays one history exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// `epoch_ms` at `start`, moved on by tokio's clock since then.
    Virtual { epoch_ms: u64, start: Instant },
}

impl Clock {
    /// A virtual clock that reads `epoch_ms` now.
    pub fn starting_at(epoch_ms: u64) -> Self {
        Clock::Virtual {
            epoch_ms,
            start: Instant::now(),
        }
    }

    /// Milliseconds since the epoch, now.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => epoch_ms(),
            Clock::Virtual { epoch_ms, start } => {
                epoch_ms + Instant::now().saturating_duration_since(*start).as_millis() as u64
            }
        }
    }

    /// Now, as a [`std::time::SystemTime`].
    pub fn now(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }
}

/// Exponential backoff with jitter: each pause is drawn from `jitter` times the current
/// step, which starts at `first` and doubles up to `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub jitter: Range<f64>,
}

impl Backoff {
    fn pause(&self, step: Duration) -> Duration {
        let spread = self.jitter.end - self.jitter.start;
        step.mul_f64(self.jitter.start + fastrand::f64() * spread)
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    Done(T),
    /// Worth another attempt, if there is time for one.
    Retry(E),
    /// Not worth another attempt.
    Stop(E),
}

/// Why the attempts ended without a result: the last error and how many attempts were made.
#[derive(Debug, PartialEq, Eq)]
pub struct GaveUp<E> {
    pub error: E,
    pub attempts: u32,
}

/// Runs `attempt` (given its 1-based number) until it is done, it stops, or the next pause
/// would end at or after `until`. `on_retry` hears each error that is retried, with the
/// attempt's number, before the pause.
pub async fn until<T, E, F, Fut>(
    backoff: &Backoff,
    until: Instant,
    mut attempt: F,
    mut on_retry: impl FnMut(&E, u32),
) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut step = backoff.first;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt(attempts).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Stop(error) => return Err(GaveUp { error, attempts }),
            Attempt::Retry(error) => error,
        };
        let pause = backoff.pause(step);
        if Instant::now() + pause >= until {
            return Err(GaveUp { error, attempts });
        }
        on_retry(&error, attempts);
        tokio::time::sleep(pause).await;
        step = (step * 2).min(backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            jitter: 1.0..1.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done_with_doubling_pauses_up_to_the_max() {
        let started = Instant::now();
        let mut retried = Vec::new();
        let result = until(
            &backoff(),
            started + Duration::from_secs(10),
            |n| async move {
                if n < 5 {
                    Attempt::Retry(n)
                } else {
                    Attempt::Done("ok")
                }
            },
            |e, n| retried.push((*e, n)),
        )
        .await;
        assert_eq!(result, Ok("ok"));
        assert_eq!(retried, [(1, 1), (2, 2), (3, 3), (4, 4)]);
        // 10 + 20 + 40 + 40 ms: the step doubled, then held at the max.
        assert_eq!(started.elapsed(), Duration::from_millis(110));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_next_pause_would_pass_the_deadline() {
        let started = Instant::now();
        let result: Result<(), _> = until(
            &backoff(),
            started + Duration::from_millis(25),
            |n| async move { Attempt::Retry(n) },
            |_, _| {},
        )
        .await;
        // Attempt 1, a 10 ms pause, attempt 2; a 20 ms pause would end at 30 ms.
        assert_eq!(
            result,
            Err(GaveUp {
                error: 2,
                attempts: 2
            })
        );
        assert_eq!(started.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_is_not_retried() {
        let result: Result<(), _> = until(
            &backoff(),
            Instant::now() + Duration::from_secs(10),
            |n| async move { Attempt::Stop(n) },
            |_, _| panic!("not retried"),
        )
        .await;
        assert_eq!(
            result,
            Err(GaveUp {
                error: 1,
                attempts: 1
            })
        );
    }

    #[test]
    fn pauses_stay_within_the_jitter_range() {
        let b = Backoff {
            jitter: 0.5..1.5,
            ..backoff()
        };
        for _ in 0..1000 {
            let p = b.pause(Duration::from_millis(100));
            assert!(p >= Duration::from_millis(50) && p < Duration::from_millis(150));
        }
    }
}
