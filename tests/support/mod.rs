//! Shared test fixtures: a recording HTTP server standing in for the S3 response URL, the
//! sample events, a provider over the in-memory ECR, and [`Harness`], the handler's tests'
//! one harness (the simulator's world is in [`world`]).
#![allow(dead_code)]

pub mod world;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::ecr::{EcrError, PolicyStore};
use ecr_policy_provider::identity::Target;
use ecr_policy_provider::lifecycle::Settings;
use ecr_policy_provider::lock::{LockStore, Record, RecordReader, key};
use ecr_policy_provider::provider::{Config, Provider};
use ecr_policy_provider::response::{Sender, UrlPolicy};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived, byte for byte.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request_line: String,
    /// Header names lowercased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with; `None` when the server never answered it.
    pub status: Option<u16>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the response body is JSON")
    }
}

/// How the server answers each request, in order; after the list it answers 200.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// A status with a body, as a service's refusal carries its message.
    StatusWith(u16, &'static str),
    /// 307 Temporary Redirect to this URL.
    RedirectTo(&'static str),
    /// Accept the connection and never answer.
    Hang,
}

/// A loopback HTTP server that records every request.
pub struct Recorder {
    pub host_port: String,
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub async fn start(answers: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let host_port = listener.local_addr().expect("address").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, seen, answers).await;
                });
            }
        });
        Self {
            url: format!(
                "http://{host_port}/cloudformation-responses/stack%7CLogical%7Crequest?X-Amz-Signature=secret-signature&X-Amz-Credential=AKIDSECRET"
            ),
            host_port,
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// The one response that was delivered (answered with a 2xx), failing if there was not
    /// exactly one: a second delivery is as wrong as none.
    pub fn delivered(&self) -> Value {
        let requests = self.requests();
        let delivered: Vec<&Recorded> = requests
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .collect();
        assert_eq!(
            delivered.len(),
            1,
            "{} responses delivered, expected exactly 1 (of {} sent)",
            delivered.len(),
            requests.len()
        );
        delivered[0].json()
    }
}

async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<std::vec::IntoIter<Answer>>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let answer = answers.lock().expect("lock").next();
    let (status, reply_body, location) = match answer {
        Some(Answer::Hang) => (None, "", None),
        Some(Answer::Status(status)) => (Some(status), "", None),
        Some(Answer::StatusWith(status, body)) => (Some(status), body, None),
        Some(Answer::RedirectTo(url)) => (Some(307), "", Some(url)),
        None => (Some(200), "", None),
    };
    seen.lock().expect("lock").push(Recorded {
        request_line,
        headers,
        body,
        status,
    });
    let Some(status) = status else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    };
    let location = location.map_or(String::new(), |url| format!("location: {url}\r\n"));
    let reply = format!(
        "HTTP/1.1 {status} X\r\n{location}content-length: {}\r\nconnection: close\r\n\r\n{reply_body}",
        reply_body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// A sample event from `events/`, as it is there.
pub fn sample(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("event JSON")
}

/// A sample event from `events/`, answering to `response_url`.
pub fn event(name: &str, response_url: &str) -> Value {
    let mut event = sample(name);
    event["ResponseURL"] = response_url.into();
    event
}

/// The deadline the Runtime API would send for an invocation with `left` to run.
pub fn deadline_in(left: Duration) -> u64 {
    (SystemTime::now() + left)
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_millis() as u64
}

pub const LOG_GROUP: &str = "/aws/lambda/ecr-policy-provider";
pub const LOG_STREAM: &str = "2026/11/23/[$LATEST]0123456789abcdef";

pub fn config(recorder: &Recorder) -> Config {
    Config {
        urls: UrlPolicy::from_allowed_hosts(&recorder.host_port),
        settings: Settings {
            default_region: Some("us-east-1".into()),
            iam_propagation_timeout: Duration::from_secs(2),
            iam_retry_base: Duration::from_millis(10),
            lease_margin: ecr_policy_provider::lifecycle::LEASE_MARGIN,
            public_access: Default::default(),
            prefix_concurrency: ecr_policy_provider::lifecycle::DEFAULT_PREFIX_CONCURRENCY,
        },
        default_budget: Duration::from_secs(30),
        logs: Some((LOG_GROUP.into(), LOG_STREAM.into())),
        drift: Default::default(),
        clock: Default::default(),
    }
}

pub fn provider(store: Arc<MemoryEcr>, recorder: &Recorder) -> Provider<Arc<MemoryEcr>> {
    provider_with(store, config(recorder))
}

pub fn provider_with(store: Arc<MemoryEcr>, config: Config) -> Provider<Arc<MemoryEcr>> {
    let sender = Sender::new().with_base_pause(Duration::from_millis(10));
    Provider::new(store, sender, config)
}

/// A log writer that keeps what it is given.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on a fresh runtime under the provider's own JSON log subscriber at `level`,
/// and returns everything it logged.
pub fn capture_logs<F: std::future::Future<Output = ()>>(
    level: &str,
    work: impl FnOnce() -> F,
) -> String {
    capture_logs_on(level, false, work)
}

/// As [`capture_logs`], on tokio's paused clock (its timers run at once when nothing else
/// can).
pub fn capture_logs_paused<F: std::future::Future<Output = ()>>(
    level: &str,
    work: impl FnOnce() -> F,
) -> String {
    capture_logs_on(level, true, work)
}

fn capture_logs_on<F: std::future::Future<Output = ()>>(
    level: &str,
    paused: bool,
    work: impl FnOnce() -> F,
) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = ecr_policy_provider::logging::subscriber(
        move || writer.clone(),
        level
            .parse::<tracing_subscriber::filter::Targets>()
            .expect("a level"),
    );
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(paused)
            .build()
            .expect("runtime")
            .block_on(work())
    });
    let text = captured.0.lock().expect("lock").clone();
    String::from_utf8(text).expect("utf-8")
}

/// Sends one event through `provider`, within 30 s, and returns the one response the
/// recorder received for it.
pub async fn send_one<S, L>(provider: &Provider<S, L>, recorder: &Recorder, event: Value) -> Value
where
    S: PolicyStore,
    L: LockStore + RecordReader,
{
    send_one_within(provider, recorder, event, Duration::from_secs(30)).await
}

/// Sends one event through `provider`, with `left` to run, and returns the one response the
/// recorder received for it.
pub async fn send_one_within<S, L>(
    provider: &Provider<S, L>,
    recorder: &Recorder,
    event: Value,
    left: Duration,
) -> Value
where
    S: PolicyStore,
    L: LockStore + RecordReader,
{
    let before = recorder.requests().len();
    provider
        .handle(event, deadline_in(left))
        .await
        .expect("a response was delivered");
    let requests = recorder.requests();
    assert_eq!(requests.len(), before + 1, "exactly one response per event");
    requests[before].json()
}

/// The registry policy of the test account in us-east-1.
pub fn registry() -> Target {
    Target::Registry {
        region: "us-east-1".into(),
    }
}

/// The policy of repository `name` in us-east-1.
pub fn repo(name: &str) -> Target {
    Target::Repository {
        region: "us-east-1".into(),
        name: name.into(),
    }
}

/// The provider over the in-memory ECR and lock table, answering to a [`Recorder`]: build
/// events, send them (each gets exactly one response), read ECR and the record.
pub struct Harness {
    pub store: Arc<MemoryEcr>,
    /// The lock table: the in-memory one, with fault switches (none armed).
    pub lock: Arc<world::FaultyLock>,
    pub recorder: Recorder,
    /// The provider's configuration: a test changes it before it sends.
    pub config: Config,
    /// Whether the provider has the lock table (`false`: as deployed before it existed).
    pub lock_table: bool,
    requests: std::sync::atomic::AtomicU32,
}

impl Harness {
    /// A provider with a lock table, over an ECR with `repositories` in us-east-1.
    pub async fn new(repositories: &[&str]) -> Self {
        let store = Arc::new(MemoryEcr::new());
        for name in repositories {
            store.create_repository("us-east-1", name);
        }
        let recorder = Recorder::start(Vec::new()).await;
        Self {
            store,
            lock: Arc::new(world::FaultyLock::new(Default::default())),
            config: config(&recorder),
            recorder,
            lock_table: true,
            requests: Default::default(),
        }
    }

    /// The same, as deployed before the lock table existed.
    pub async fn without_lock_table(repositories: &[&str]) -> Self {
        Self {
            lock_table: false,
            ..Self::new(repositories).await
        }
    }

    /// The provider as configured now.
    pub fn provider(&self) -> Provider<Arc<MemoryEcr>, Arc<world::FaultyLock>> {
        self.provider_with(self.config.clone())
    }

    /// The provider with `config` instead.
    pub fn provider_with(
        &self,
        config: Config,
    ) -> Provider<Arc<MemoryEcr>, Arc<world::FaultyLock>> {
        provider_with(self.store.clone(), config)
            .with_lock(self.lock_table.then(|| self.lock.clone()))
    }

    /// The provider as deployed before the lock table existed.
    pub fn provider_without_lock_table(&self) -> Provider<Arc<MemoryEcr>> {
        provider_with(self.store.clone(), self.config.clone())
    }

    /// A sample event from `events/`, answering to the recorder.
    pub fn event(&self, name: &str) -> Value {
        event(name, &self.recorder.url)
    }

    /// A sample event as stack `stack`'s resource `logical` sends it, request `request`.
    pub fn event_from(&self, name: &str, stack: &str, logical: &str, request: &str) -> Value {
        let mut e = self.event(name);
        e["StackId"] = stack.into();
        e["LogicalResourceId"] = logical.into();
        e["RequestId"] = request.into();
        e
    }

    /// A RequestId no other event of this harness has.
    pub fn request_id(&self) -> String {
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        format!("{n:08}-7b3d-4f5e-8a6b-1c2d3e4f5a01")
    }

    /// Sends one event, within 30 s: the one response CloudFormation received.
    pub async fn send(&self, event: Value) -> Value {
        self.send_within(event, Duration::from_secs(30)).await
    }

    /// Sends one event, with `left` to run: the one response CloudFormation received.
    pub async fn send_within(&self, event: Value, left: Duration) -> Value {
        send_one_within(&self.provider(), &self.recorder, event, left).await
    }

    /// Handles one event with `left` to run: the one response delivered (answered 2xx; a
    /// second delivery is as wrong as none), and how long the handling took.
    pub async fn deliver_within(&self, event: Value, left: Duration) -> (Value, Duration) {
        let started = std::time::Instant::now();
        self.provider()
            .handle(event, deadline_in(left))
            .await
            .expect("delivered");
        let took = started.elapsed();
        (self.recorder.delivered(), took)
    }

    /// Sends one event to the provider as deployed before the lock table existed, within
    /// 30 s: the one response CloudFormation received.
    pub async fn send_without_lock_table(&self, event: Value) -> Value {
        send_one(&self.provider_without_lock_table(), &self.recorder, event).await
    }

    /// Sends one event, within 30 s: the one response, and how long it took to come.
    pub async fn send_timed(&self, event: Value) -> (Value, Duration) {
        let started = std::time::Instant::now();
        let response = self.send(event).await;
        (response, started.elapsed())
    }

    /// Sends one event among others in flight: the response is this invocation's own (the
    /// test counts the responses received once all are done).
    pub async fn send_concurrently(&self, event: Value) -> Value {
        let outcome = self
            .provider()
            .handle(event, deadline_in(Duration::from_secs(30)))
            .await
            .expect("a response was delivered");
        serde_json::from_slice(&outcome.response.to_body()).expect("JSON")
    }

    /// The live policy of `target`, as ECR holds it now.
    pub fn live(&self, target: &Target) -> Option<Value> {
        self.store
            .live(target)
            .map(|t| serde_json::from_str(&t).expect("live policy is JSON"))
    }

    /// The statements of `target`'s live policy (none without one).
    pub fn statements(&self, target: &Target) -> Vec<Value> {
        self.live(target)
            .map(|p| p["Statement"].as_array().expect("a list").clone())
            .unwrap_or_default()
    }

    /// The Sids of `target`'s live policy, in its order.
    pub fn sids(&self, target: &Target) -> Vec<String> {
        self.statements(target)
            .iter()
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Sets `target`'s policy out of band to `statements` (Version 2008-10-17).
    pub fn seed(&self, target: &Target, statements: &[Value]) {
        self.seed_policy(
            target,
            &json!({"Version": "2008-10-17", "Statement": statements}),
        );
    }

    /// Sets `target`'s policy out of band to `policy`.
    pub fn seed_policy(&self, target: &Target, policy: &Value) {
        self.store.seed(target, &policy.to_string());
    }

    /// The record of `target`.
    pub fn record(&self, target: &Target) -> Record {
        self.lock.record(&key(target))
    }

    /// Whether nobody holds the lease on `target`.
    pub fn lease_free(&self, target: &Target) -> bool {
        self.lock.lease(&key(target)).is_none()
    }

    /// What `work` comes to, and the ECR calls it made: reads, and writes with deletes.
    pub async fn calls_of<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> (T, (usize, usize)) {
        let (reads, writes) = self.calls();
        let outcome = work.await;
        let (reads_after, writes_after) = self.calls();
        (outcome, (reads_after - reads, writes_after - writes))
    }

    /// The ECR calls so far: reads, and writes with deletes.
    pub fn calls(&self) -> (usize, usize) {
        let calls = self.store.calls();
        (calls.reads, calls.writes + calls.deletes)
    }
}

/// A pull grant to `account` under `sid`.
pub fn grant(sid: &str, account: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    })
}

/// A follow-up of `created` (an Update or Delete of the same resource), request `request`.
pub fn follow_up(created: &Value, request_type: &str, physical_id: &str, request: &str) -> Value {
    let mut e = created.clone();
    if request_type == "Update" {
        e["OldResourceProperties"] = created["ResourceProperties"].clone();
    }
    e["RequestType"] = request_type.into();
    e["PhysicalResourceId"] = physical_id.into();
    e["RequestId"] = request.into();
    e
}

/// ECR's AccessDenied of `operation`, saying `message`.
pub fn denied(operation: &'static str, message: &str) -> EcrError {
    EcrError::AccessDenied {
        operation,
        message: message.into(),
    }
}

/// A response's Reason (empty without one).
pub fn reason(r: &Value) -> &str {
    r["Reason"].as_str().unwrap_or_default()
}
