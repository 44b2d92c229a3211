//! One event in, exactly one response out: the glue between the Lambda runtime, the
//! lifecycle and the response.

use crate::diagnosis::access::PublicAccess;
use crate::drift::{self, DriftError, Shape, UnknownShape};
use crate::ecr::{CallStats, Metered, PolicyStore};
use crate::error::Failure;
use crate::event::progress::{PROGRESS_KEY, Progress};
use crate::event::{Envelope, Request, RequestError, parse_event};
use crate::guard::{Budget, Interrupted, guarded};
use crate::lifecycle::continuation::{self, Claim};
use crate::lifecycle::pace::Pace;
use crate::lifecycle::{self, Applied, Context, HeldLease, LEASE_MARGIN, Settings};
use crate::lock::{LockStore, NoLock, RecordReader, Timed};
use crate::relay::{Relay, RelayError};
use crate::response::{Data, Response, SendError, Sender, Status, UrlPolicy, UrlRefused, redact};
use crate::retry::Clock;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use url::Url;

/// The budget used when the invocation's deadline is missing or implausible (local
/// emulators).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

/// The function's configuration (CONTRACT 8).
#[derive(Debug, Clone)]
pub struct Config {
    pub urls: UrlPolicy,
    pub settings: Settings,
    pub default_budget: Duration,
    /// Where this function's logs are, for the Reason: the log group and stream.
    pub logs: Option<(String, String)>,
    /// What drift checks do (CONTRACT 13).
    pub drift: drift::Settings,
    /// The time of day: the system's, or a simulation's.
    pub clock: Clock,
}

impl Config {
    /// Reads the environment; `default_region` is the SDK's (`AWS_REGION`).
    pub fn from_env(default_region: Option<String>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let iam_seconds = match var("IAM_PROPAGATION_TIMEOUT_SECONDS") {
            None => 120,
            Some(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
                tracing::warn!(value = %v, "IAM_PROPAGATION_TIMEOUT_SECONDS is not a whole number of seconds; using 120");
                120
            }),
        };
        let prefix_concurrency = match var("PREFIX_CONCURRENCY") {
            None => lifecycle::DEFAULT_PREFIX_CONCURRENCY,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    tracing::warn!(value = %v, default = lifecycle::DEFAULT_PREFIX_CONCURRENCY, "PREFIX_CONCURRENCY is not a whole number above 0; using the default");
                    lifecycle::DEFAULT_PREFIX_CONCURRENCY
                }
            },
        };
        let public_access = match var("PUBLIC_ACCESS") {
            None => PublicAccess::Block,
            Some(v) => PublicAccess::parse(&v).unwrap_or_else(|| {
                tracing::warn!(value = %v, "PUBLIC_ACCESS is neither Block nor Allow; using Block");
                PublicAccess::Block
            }),
        };
        Self {
            urls: UrlPolicy::from_allowed_hosts(
                &var("RESPONSE_URL_ALLOWED_HOSTS").unwrap_or_default(),
            ),
            settings: Settings {
                default_region,
                iam_propagation_timeout: Duration::from_secs(iam_seconds),
                iam_retry_base: Duration::from_secs(1),
                lease_margin: LEASE_MARGIN,
                public_access,
                prefix_concurrency,
            },
            default_budget: DEFAULT_BUDGET,
            logs: var("AWS_LAMBDA_LOG_GROUP_NAME").zip(var("AWS_LAMBDA_LOG_STREAM_NAME")),
            drift: drift::Settings::from_env(),
            clock: Clock::System,
        }
    }

    fn reason_tail(&self) -> String {
        match &self.logs {
            Some((group, stream)) => {
                format!(" (logs: CloudWatch log group {group}, stream {stream})")
            }
            None => " (logs: this function's CloudWatch log group)".to_owned(),
        }
    }
}

/// The SDK's endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) that are
/// set but empty: unset in effect (CONTRACT 8), but the SDK would take one for a URL.
pub fn empty_endpoint_overrides(
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<std::ffi::OsString> {
    vars.filter(|(name, value)| {
        name.to_string_lossy().starts_with("AWS_ENDPOINT_URL") && value.is_empty()
    })
    .map(|(name, _)| name)
    .collect()
}

/// Why an invocation ends in error instead of a response.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("no response sent: {0}")]
    Url(#[from] UrlRefused),
    #[error("the response could not be delivered: {0}")]
    Send(#[from] SendError),
    #[error(transparent)]
    UnknownShape(#[from] UnknownShape),
    #[error("drift check failed: {0}")]
    Drift(#[from] DriftError),
}

/// What an invocation did: the response, how its delivery went and where the time went.
#[derive(Debug)]
pub struct Outcome {
    /// The response sent; when `unsent` says why none was, an empty SUCCESS that was not
    /// sent.
    pub response: Response,
    pub attempts: u32,
    pub timing: Timing,
    /// Why this invocation sent no response, when it did not: another invocation answers.
    pub unsent: Option<Unsent>,
}

/// Why an invocation of a custom-resource request sent no response (CONTRACT 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The work goes on in the next invocation of the function, which answers (or hands on).
    HandedOver,
    /// A second delivery of a step another invocation carries (or carried).
    Duplicate,
}

/// One invocation as the runtime hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The event, as the JSON text the runtime received.
    pub payload: &'a str,
    /// When the invocation ends, in milliseconds since the epoch (0 when unknown).
    pub deadline_ms: u64,
    /// Lambda's request id of the invocation.
    pub invocation_id: &'a str,
    /// The function's own ARN, as invoked (the context's); `None` when unknown (then work
    /// cannot continue in another invocation).
    pub function_arn: Option<&'a str>,
}

/// Where an invocation's time went.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// From the event's arrival to the response's delivery.
    pub total: Duration,
    /// Calls made to ECR, and the time spent waiting on them.
    pub ecr: CallStats,
    /// Sending the response, retries included.
    pub response: Duration,
    /// Calls to the lock table, and the time the lock took: from the first try to take the
    /// lease to the last (the pauses while another request held it included), plus giving
    /// it back.
    pub lock_calls: u32,
    pub lock: Duration,
}

impl Timing {
    /// The provider's own time: everything but waiting on ECR, the lock table and the
    /// response URL.
    pub fn own(&self) -> Duration {
        self.total
            .saturating_sub(self.ecr.waited)
            .saturating_sub(self.response)
            .saturating_sub(self.lock)
    }
}

/// The provider: built once per process, then handles every event.
pub struct Provider<S, L = NoLock> {
    store: S,
    /// The lock table, when one is configured (CONTRACT 9).
    lock: Option<L>,
    sender: Sender,
    config: Config,
    /// How the function invokes itself to continue (CONTRACT 15), when it can.
    relay: Option<Arc<dyn Relay>>,
    /// Test support: drift's log lines are left out (a simulation runs thousands of checks).
    #[cfg(feature = "test-util")]
    quiet_drift: bool,
}

impl<S: PolicyStore> Provider<S, NoLock> {
    /// A provider without a lock table: whole-policy resources only.
    pub fn new(store: S, sender: Sender, config: Config) -> Self {
        Self {
            store,
            lock: None,
            sender,
            config,
            relay: None,
            #[cfg(feature = "test-util")]
            quiet_drift: false,
        }
    }
}

impl<S: PolicyStore, L: LockStore + RecordReader> Provider<S, L> {
    /// The same provider with a lock table (or none, for `None`).
    pub fn with_lock<L2: LockStore>(self, lock: Option<L2>) -> Provider<S, L2> {
        Provider {
            store: self.store,
            lock,
            sender: self.sender,
            config: self.config,
            relay: self.relay,
            #[cfg(feature = "test-util")]
            quiet_drift: self.quiet_drift,
        }
    }

    /// The same provider, able to continue work in the next invocation of the function
    /// through `relay` (CONTRACT 15).
    pub fn with_relay(mut self, relay: Arc<dyn Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The same provider without drift's log lines on stdout, for a simulation.
    #[cfg(feature = "test-util")]
    pub fn without_drift_lines(mut self) -> Self {
        self.quiet_drift = true;
        self
    }

    fn prints_drift_lines(&self) -> bool {
        #[cfg(feature = "test-util")]
        return !self.quiet_drift;
        #[cfg(not(feature = "test-util"))]
        true
    }

    /// The store it acts on, for tests to inspect.
    #[cfg(feature = "test-util")]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles one event, given as a JSON value, as a new invocation would.
    #[cfg(feature = "test-util")]
    pub async fn handle(
        &self,
        payload: Value,
        deadline_ms: u64,
    ) -> Result<Outcome, InvocationError> {
        static INVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = INVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.handle_raw(
            &payload.to_string(),
            deadline_ms,
            &format!("invocation-{n}"),
        )
        .await
    }

    /// Handles one event, given as a JSON value, as a new invocation of the function
    /// `function_arn` would.
    #[cfg(feature = "test-util")]
    pub async fn handle_as(
        &self,
        payload: Value,
        deadline_ms: u64,
        invocation_id: &str,
        function_arn: &str,
    ) -> Result<Outcome, InvocationError> {
        let payload = payload.to_string();
        let invocation = Invocation {
            payload: &payload,
            deadline_ms,
            invocation_id,
            function_arn: Some(function_arn),
        };
        self.handle_parsed(parse_event(&payload), &invocation).await
    }

    /// Handles one event, given as the JSON text the runtime received, whose invocation
    /// (`invocation_id`: Lambda's request id) ends at `deadline_ms` (milliseconds since the
    /// epoch; 0 when unknown). The text is parsed once; an event that does not parse still
    /// has its envelope read, and is answered.
    pub async fn handle_raw(
        &self,
        payload: &str,
        deadline_ms: u64,
        invocation_id: &str,
    ) -> Result<Outcome, InvocationError> {
        let invocation = Invocation {
            payload,
            deadline_ms,
            invocation_id,
            function_arn: None,
        };
        self.handle_parsed(parse_event(payload), &invocation).await
    }

    async fn handle_parsed(
        &self,
        parsed: Result<Value, RequestError>,
        invocation: &Invocation<'_>,
    ) -> Result<Outcome, InvocationError> {
        let envelope = match &parsed {
            Ok(event) => Envelope::from_payload(event),
            Err(_) => Envelope::from_raw(invocation.payload),
        };
        let span = tracing::info_span!(
            "event",
            request_id = %envelope.request_id,
            stack_id = %envelope.stack_id,
            logical_resource_id = %envelope.logical_resource_id,
            request_type = envelope.request_type.as_deref().unwrap_or(""),
        );
        self.handle_in_span(parsed, envelope, invocation)
            .instrument(span)
            .await
    }

    async fn handle_in_span(
        &self,
        parsed: Result<Value, RequestError>,
        envelope: Envelope,
        invocation: &Invocation<'_>,
    ) -> Result<Outcome, InvocationError> {
        let (url, budget) = self.admit(&envelope, invocation.deadline_ms)?;
        let started = std::time::Instant::now();
        let ecr = Metered::new(&self.store);
        let lock = self.lock.as_ref().map(Timed::new);
        // The progress an earlier invocation of the request handed over (CONTRACT 15).
        let (parsed, progress) = match parsed {
            Ok(mut event) => {
                let progress = Progress::take_from(&mut event);
                (Ok(event), progress)
            }
            Err(error) => (Err(error), Ok(None)),
        };
        let (parsed, progress) = match progress {
            Ok(progress) => (parsed, progress),
            Err(unreadable) => (Err(RequestError::Malformed(unreadable)), None),
        };
        let owner = format!("{}/{}", envelope.request_id, invocation.invocation_id);
        let claim = match (&progress, lock.as_ref()) {
            (Some(progress), Some(timed)) => {
                let key = continuation::claim_key(&envelope.request_id, progress.step);
                let now_ms = self.config.clock.now_ms();
                let until_ms = now_ms + self.lease_for(&budget).as_millis() as u64;
                match continuation::claim(timed, &key, &owner, now_ms, until_ms).await {
                    Ok(Claim::Taken) => Some(key),
                    Ok(Claim::Duplicate) => {
                        tracing::info!(
                            step = progress.step,
                            "this step of the request is carried by another delivery of it; nothing to do"
                        );
                        return Ok(self.unsent(
                            &envelope,
                            started,
                            &ecr,
                            lock.as_ref(),
                            Unsent::Duplicate,
                        ));
                    }
                    Err(error) => {
                        // Carried on unclaimed: every target is done by its record anyway.
                        tracing::warn!(error = %error, "could not claim this step of the request");
                        None
                    }
                }
            }
            _ => None,
        };
        let stop_at = (self.relay.is_some() && invocation.function_arn.is_some())
            .then(|| continuation::stop_at(budget.work_until, tokio::time::Instant::now()));
        let work = Work {
            parsed,
            progress: progress.as_ref(),
            stop_at,
            invocation_id: invocation.invocation_id,
        };
        let (result, mut done) = self
            .work(&ecr, lock.as_ref(), work, &envelope, &budget)
            .await;
        // The leases of work done are given back while the answer is sent; before, when no
        // answer is sent.
        let give_back = |done| {
            let left = budget
                .respond_until
                .saturating_duration_since(tokio::time::Instant::now());
            lifecycle::lease::give_back_done(lock.as_ref(), done, left / 3)
        };
        let result = match result {
            Err(Failure::Continues(next)) => {
                give_back(std::mem::take(&mut done)).await;
                match self.hand_over(invocation, &next, &budget).await {
                    Ok(()) => {
                        if let (Some(key), Some(lock)) = (&claim, lock.as_ref()) {
                            self.settle(lock, key, &owner).await;
                        }
                        let why = Unsent::HandedOver;
                        let outcome = self.unsent(&envelope, started, &ecr, lock.as_ref(), why);
                        log_handed_over(&next, &outcome.timing);
                        return Ok(outcome);
                    }
                    Err(error) => Err(Failure::NotContinued(error.to_string())),
                }
            }
            other => other,
        };
        let response = self.response(&envelope, result);
        let sending = std::time::Instant::now();
        let send = self
            .sender
            .send(&url, response.to_body(), budget.respond_until);
        let (sent, ()) = tokio::join!(send, give_back(done));
        if let (Some(key), Some(lock)) = (&claim, lock.as_ref()) {
            self.settle(lock, key, &owner).await;
        }
        let (lock_calls, lock_time) = lock.as_ref().map(Timed::stats).unwrap_or_default();
        let timing = Timing {
            total: started.elapsed(),
            ecr: ecr.stats(),
            response: sending.elapsed(),
            lock_calls,
            lock: lock_time,
        };
        match sent {
            Ok(attempts) => {
                log_sent(&response, attempts, &timing);
                Ok(Outcome {
                    response,
                    attempts,
                    timing,
                    unsent: None,
                })
            }
            Err(error) => {
                tracing::error!(status = ?response.status, error = %error, "response not delivered");
                Err(error.into())
            }
        }
    }

    /// How long a lease taken now lasts: to the answer's deadline and the margin after it.
    fn lease_for(&self, budget: &Budget) -> Duration {
        let left = budget
            .respond_until
            .saturating_duration_since(tokio::time::Instant::now());
        left + self.config.settings.lease_margin
    }

    /// Starts the next invocation with the event and `next`, before the answer's deadline.
    async fn hand_over(
        &self,
        invocation: &Invocation<'_>,
        next: &Progress,
        budget: &Budget,
    ) -> Result<(), RelayError> {
        let (Some(relay), Some(arn)) = (&self.relay, invocation.function_arn) else {
            return Err(RelayError("the function cannot invoke itself here".into()));
        };
        let mut event = parse_event(invocation.payload).map_err(|e| RelayError(e.to_string()))?;
        let progress = serde_json::to_value(next).map_err(|e| RelayError(e.to_string()))?;
        match event.as_object_mut() {
            Some(object) => object.insert(PROGRESS_KEY.to_owned(), progress),
            None => return Err(RelayError("the event is not a JSON object".into())),
        };
        let handing = relay.hand_over(arn, event.to_string());
        match tokio::time::timeout_at(budget.respond_until, handing).await {
            Ok(result) => result,
            Err(_) => Err(RelayError("Lambda did not answer in time".into())),
        }
    }

    /// Marks a claimed step done; a failure only leaves the claim to expire.
    async fn settle<K: LockStore>(&self, lock: &K, key: &str, owner: &str) {
        let now_ms = self.config.clock.now_ms();
        if let Err(error) = continuation::settle(lock, key, owner, now_ms).await {
            tracing::warn!(error = %error, "could not mark this step of the request done");
        }
    }

    /// The outcome of an invocation that sends no response.
    fn unsent<E: PolicyStore, K: LockStore>(
        &self,
        envelope: &Envelope,
        started: std::time::Instant,
        ecr: &Metered<'_, E>,
        lock: Option<&Timed<'_, K>>,
        why: Unsent,
    ) -> Outcome {
        let (lock_calls, lock_time) = lock.map(Timed::stats).unwrap_or_default();
        Outcome {
            response: Response {
                status: Status::Success,
                reason: None,
                reason_tail: String::new(),
                physical_resource_id: String::new(),
                stack_id: envelope.stack_id.clone(),
                request_id: envelope.request_id.clone(),
                logical_resource_id: envelope.logical_resource_id.clone(),
                data: Data::default(),
            },
            attempts: 0,
            timing: Timing {
                total: started.elapsed(),
                ecr: ecr.stats(),
                response: Duration::ZERO,
                lock_calls,
                lock: lock_time,
            },
            unsent: Some(why),
        }
    }

    /// Nothing is done with an event before its ResponseURL is known to be safe; then its
    /// time is budgeted.
    fn admit(&self, envelope: &Envelope, deadline_ms: u64) -> Result<(Url, Budget), UrlRefused> {
        let url = match self.config.urls.check(envelope.response_url.as_deref()) {
            Ok(url) => url,
            Err(refused) => {
                tracing::error!(error = %refused, "refusing the event: nothing is sent and ECR is not called");
                return Err(refused);
            }
        };
        let budget = Budget::new(deadline_ms, &self.config.clock, self.config.default_budget);
        tracing::info!(
            response_url = %redact(&url),
            deadline_fallback = budget.fallback,
            "event received"
        );
        Ok((url, budget))
    }

    /// Decodes and carries out the request within the budget, whatever it does: a hang or
    /// a panic becomes a failure.
    async fn work<E: PolicyStore, K: LockStore + RecordReader>(
        &self,
        ecr: &E,
        lock: Option<&K>,
        work: Work<'_>,
        envelope: &Envelope,
        budget: &Budget,
    ) -> (Result<Applied, Failure>, Vec<(String, String, bool)>) {
        let Work {
            parsed,
            progress,
            stop_at,
            invocation_id,
        } = work;
        let held = HeldLease::default();
        let pace = Pace::new(budget.work_until);
        let cx = Context {
            stack_id: &envelope.stack_id,
            logical_id: &envelope.logical_resource_id,
            request_id: &envelope.request_id,
            lease_owner: format!("{}/{invocation_id}", envelope.request_id),
            settings: &self.config.settings,
            deadline: budget.work_until,
            clock: self.config.clock,
            lease_until_ms: self.config.clock.now_ms() + self.lease_for(budget).as_millis() as u64,
            lock,
            held: &held,
            pace: &pace,
            progress,
            stop_at,
        };
        let work = async {
            let request = Request::decode(parsed?)?;
            lifecycle::execute(ecr, &request, &cx).await
        };
        let result = match guarded(work, budget.work_until).await {
            Ok(result) => result,
            Err(Interrupted::TimedOut(allowed)) => Err(Failure::TimedOut(allowed)),
            Err(Interrupted::Panicked(message)) => Err(Failure::Panicked(message)),
        };
        // Work that was abandoned (a timeout or a panic) may still hold the lease: give it
        // back within part of the margin kept for the answer, unless a write may still land.
        let margin = budget
            .respond_until
            .saturating_duration_since(tokio::time::Instant::now());
        let at = (self.config.clock.now_ms(), cx.lease_until_ms);
        lifecycle::lease::give_back_abandoned(lock, &held, at, margin / 3).await;
        (result, held.take_done())
    }

    fn response(&self, envelope: &Envelope, result: Result<Applied, Failure>) -> Response {
        let (status, reason, physical_resource_id, data) = match result {
            Ok(applied) => {
                tracing::info!(changed = applied.changed, "request carried out");
                (Status::Success, None, applied.physical_id, applied.data)
            }
            Err(failure) => {
                tracing::error!(reason = %failure, "request failed");
                (
                    Status::Failed,
                    Some(failure.to_string()),
                    envelope.failure_physical_id(),
                    Data::default(),
                )
            }
        };
        Response {
            status,
            reason,
            reason_tail: self.config.reason_tail(),
            physical_resource_id,
            stack_id: envelope.stack_id.clone(),
            request_id: envelope.request_id.clone(),
            logical_resource_id: envelope.logical_resource_id.clone(),
            data,
        }
    }
}

/// A request's work, as one invocation has it.
struct Work<'a> {
    parsed: Result<Value, RequestError>,
    /// How far earlier invocations got.
    progress: Option<&'a Progress>,
    /// When to stop starting targets and hand over.
    stop_at: Option<tokio::time::Instant>,
    invocation_id: &'a str,
}

/// What one invocation did: a custom-resource request answered, or a drift check.
#[derive(Debug)]
pub enum Invoked {
    Request(Box<Outcome>),
    Drift(drift::Summary),
}

impl Invoked {
    /// The invocation's result as Lambda returns it: `null` for a request (its answer went
    /// to the ResponseURL), `{"targets", "drifted", "restored"}` for a drift check.
    pub fn result(&self) -> Value {
        match self {
            Invoked::Request(_) => Value::Null,
            Invoked::Drift(summary) => summary.result(),
        }
    }
}

impl<S: PolicyStore, L: LockStore + RecordReader> Provider<S, L> {
    /// Handles one invocation, whatever it carries: the event's shape decides, here and
    /// nowhere else, whether it is a custom-resource request or a drift event (CONTRACT 13).
    pub async fn invoke(
        &self,
        payload: &str,
        deadline_ms: u64,
        invocation_id: &str,
    ) -> Result<Invoked, InvocationError> {
        let invocation = Invocation {
            payload,
            deadline_ms,
            invocation_id,
            function_arn: None,
        };
        self.invoke_as(&invocation).await
    }

    /// [`Provider::invoke`], knowing the function's own ARN: a prefix statement's work can
    /// then continue in the next invocation (CONTRACT 15).
    pub async fn invoke_as(&self, invocation: &Invocation<'_>) -> Result<Invoked, InvocationError> {
        let Invocation {
            payload,
            deadline_ms,
            invocation_id,
            ..
        } = *invocation;
        let parsed = parse_event(payload);
        let shape = match &parsed {
            Ok(event) => drift::shape_of(event),
            Err(_) => Ok(Shape::CustomResource),
        };
        match shape {
            Ok(Shape::CustomResource) => self
                .handle_parsed(parsed, invocation)
                .await
                .map(|outcome| Invoked::Request(Box::new(outcome))),
            Ok(shape) => {
                let budget =
                    Budget::new(deadline_ms, &self.config.clock, self.config.default_budget);
                self.drift(&shape, invocation_id, &budget)
                    .await
                    .map(Invoked::Drift)
            }
            Err(unknown) => {
                tracing::error!(error = %unknown, "refusing the event");
                Err(unknown.into())
            }
        }
    }

    async fn drift(
        &self,
        shape: &Shape,
        invocation_id: &str,
        budget: &Budget,
    ) -> Result<drift::Summary, InvocationError> {
        let until = budget.work_until;
        let span = tracing::info_span!("drift", invocation_id = %invocation_id);
        async {
            let settings = &self.config.drift;
            let started = std::time::Instant::now();
            let ecr = Metered::new(&self.store);
            // A hang or a panic ends the check with an error before the invocation's
            // deadline, as for a request.
            let interrupted = |stop: Interrupted| {
                let why = match stop {
                    Interrupted::TimedOut(allowed) => {
                        format!("it was still running after {allowed:?}")
                    }
                    Interrupted::Panicked(message) => format!("it panicked: {message}"),
                };
                Err(DriftError::Interrupted(why))
            };
            let (result, (lock_calls, lock_time)) = match &self.lock {
                Some(lock) => {
                    let lock = Timed::new(lock);
                    let work = lifecycle::arrivals::run(
                        &ecr,
                        &lock,
                        shape,
                        settings,
                        &self.config.settings,
                        &self.config.clock,
                        invocation_id,
                        until,
                    );
                    let result = guarded(work, budget.respond_until)
                        .await
                        .unwrap_or_else(interrupted);
                    (result, lock.stats())
                }
                None => (
                    // No lock table, no prefix statements (they need its record and index).
                    drift::run(
                        &ecr,
                        &NoLock,
                        shape,
                        settings,
                        &self.config.clock,
                        invocation_id,
                        until,
                    )
                    .await,
                    Default::default(),
                ),
            };
            let (total, ecr) = (started.elapsed(), ecr.stats());
            let summary = match result {
                Ok(summary) => summary,
                Err(error) => {
                    tracing::error!(error = %error, "drift check failed");
                    return Err(error.into());
                }
            };
            if self.prints_drift_lines() {
                let timestamp = now_rfc3339();
                let mut out = std::io::stdout().lock();
                for finding in &summary.findings {
                    let _ = writeln!(out, "{}", drift::drift_line(finding, &timestamp));
                }
                if summary.targets > 0 {
                    let metric = drift::metric_line(
                        summary.drifted(),
                        settings.function_name.as_deref(),
                        self.config.clock.now_ms(),
                    );
                    let _ = writeln!(out, "{metric}");
                }
            }
            tracing::info!(
                targets = summary.targets,
                drifted = summary.drifted(),
                restored = summary.restored(),
                busy = summary.busy,
                unchecked = summary.unchecked,
                total_us = total.as_micros() as u64,
                ecr_us = ecr.waited.as_micros() as u64,
                ecr_reads = ecr.reads,
                ecr_writes = ecr.writes,
                lock_us = lock_time.as_micros() as u64,
                lock_calls,
                "drift checked"
            );
            Ok(summary)
        }
        .instrument(span)
        .await
    }
}

/// Now, as the JSON log lines write it.
fn now_rfc3339() -> String {
    use tracing_subscriber::fmt::time::FormatTime;
    let mut text = String::new();
    let _ = tracing_subscriber::fmt::time::SystemTime
        .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut text));
    text
}

/// The "response sent" line: the one the benchmark and the end-to-end suite read
/// (`tests/interface.json` names its fields; `tests/interface.rs` pins them).
fn log_sent(response: &Response, attempts: u32, timing: &Timing) {
    tracing::info!(
        status = ?response.status,
        physical_resource_id = %response.physical_resource_id,
        attempts,
        total_us = timing.total.as_micros() as u64,
        own_us = timing.own().as_micros() as u64,
        ecr_us = timing.ecr.waited.as_micros() as u64,
        response_us = timing.response.as_micros() as u64,
        ecr_reads = timing.ecr.reads,
        ecr_writes = timing.ecr.writes,
        ecr_deletes = timing.ecr.deletes,
        lock_us = timing.lock.as_micros() as u64,
        lock_calls = timing.lock_calls,
        "response sent"
    );
}

/// The "continued in the next invocation" line: how far the work got, and what this
/// invocation spent (the benchmark adds it up over the invocations of a request).
fn log_handed_over(next: &Progress, timing: &Timing) {
    tracing::info!(
        step = next.step,
        repositories = next.repositories,
        total_us = timing.total.as_micros() as u64,
        ecr_us = timing.ecr.waited.as_micros() as u64,
        ecr_reads = timing.ecr.reads,
        ecr_writes = timing.ecr.writes,
        ecr_deletes = timing.ecr.deletes,
        lock_us = timing.lock.as_micros() as u64,
        lock_calls = timing.lock_calls,
        "continued in the next invocation"
    );
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(error: InvocationError) -> Self {
        let error_type = match error {
            InvocationError::Url(_) => "ResponseUrlRefused",
            InvocationError::Send(_) => "ResponseNotDelivered",
            InvocationError::UnknownShape(_) => "UnknownEvent",
            InvocationError::Drift(_) => "DriftCheckFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn only_empty_endpoint_overrides_are_dropped() {
        let vars = [
            ("AWS_ENDPOINT_URL", ""),
            ("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", ""),
            ("RESPONSE_URL_ALLOWED_HOSTS", ""),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        assert_eq!(
            empty_endpoint_overrides(vars.into_iter()),
            [
                OsString::from("AWS_ENDPOINT_URL"),
                OsString::from("AWS_ENDPOINT_URL_DYNAMODB")
            ]
        );
    }
}
