//! One test world: the real provider over the in-memory ECR and lock table, on tokio's clock,
//! with a virtual time of day, responses kept instead of sent, and fault switches on every
//! outside call. Build stacks' events, send them, read the answers and the record.
//!
//! Run it on a current-thread runtime with the clock paused
//! (`Builder::new_current_thread().enable_all().start_paused(true)`): nothing in it touches
//! a socket or the system clock, so with `fastrand::seed` one seed replays one history.

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::ecr::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore};
use ecr_policy_provider::identity::Target;
use ecr_policy_provider::lifecycle::{LEASE_MARGIN, Settings};
use ecr_policy_provider::lock::memory::MemoryLock;
use ecr_policy_provider::lock::{LockError, LockStore, Record, RecordReader, Snapshot, key};
use ecr_policy_provider::provider::{Config, InvocationError, Invoked, Provider};
use ecr_policy_provider::response::{Capture, Sender, UrlPolicy};
use ecr_policy_provider::retry::Clock;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The time of day a world starts at: 2026-11-23T00:00:00Z.
pub const EPOCH_MS: u64 = 1_795_392_000_000;
/// The account every stack and registry of the world belongs to.
pub const ACCOUNT: &str = ecr_policy_provider::ecr::memory::ACCOUNT_ID;
pub const REGION: &str = "us-east-1";
/// The function's timeout in `template.yaml`: each invocation's deadline.
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(180);

/// One fault of an ECR call, taken by the next call of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcrFault {
    /// A read answers this error (throttling or a 500 after the SDK's retries).
    FailRead(EcrError),
    /// A write is refused with this error and does not land.
    FailWrite(EcrError),
    /// A write lands, and its answer is this error (the answer was lost).
    LoseWriteAnswer(EcrError),
    /// A write is never answered and lands this long after it was sent.
    LateWrite(Duration),
    /// A delete is refused with this error.
    FailDelete(EcrError),
    /// A delete lands, and its answer is this error.
    LoseDeleteAnswer(EcrError),
    /// The next call of any kind never returns.
    Hang,
    /// The next call of any kind panics.
    Panic,
}

/// One fault of a lock table call, taken by the next call of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFault {
    /// An acquire lands and its answer is lost: the SDK sends it again.
    LoseAcquireAnswer,
    /// An acquire is throttled past the SDK's retries.
    ThrottleAcquire,
    /// A store's condition fails (another owner, as DynamoDB would say).
    FailStoreCondition,
    /// A store lands and its answer is lost (the SDK's retries gave up).
    LoseStoreAnswer,
    /// A store is throttled past the SDK's retries.
    ThrottleStore,
    /// Giving the lease back fails.
    FailRelease,
}

/// ECR's "failed after retries" answer, as throttling or a 500 end.
pub fn unavailable(operation: &'static str) -> EcrError {
    EcrError::Unavailable {
        operation,
        detail: "injected: ThrottlingException after 3 attempts".into(),
    }
}

fn lock_unavailable(operation: &'static str) -> LockError {
    LockError::Unavailable {
        table: "locks".into(),
        operation,
        detail: "injected: ProvisionedThroughputExceededException".into(),
    }
}

/// The in-memory ECR behind fault switches.
#[derive(Default)]
pub struct FaultyEcr {
    pub inner: Arc<MemoryEcr>,
    faults: Mutex<VecDeque<EcrFault>>,
    fired: AtomicU64,
    /// When each late write lands, for [`FaultyEcr::landing_after`].
    late: Mutex<Vec<tokio::time::Instant>>,
}

impl FaultyEcr {
    /// Arms faults, each for the next call of its kind.
    pub fn arm(&self, faults: impl IntoIterator<Item = EcrFault>) {
        self.faults.lock().expect("faults").extend(faults);
    }

    /// Disarms the faults no call took.
    pub fn disarm(&self) {
        self.faults.lock().expect("faults").clear();
    }

    /// How many faults calls have taken so far.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    /// The latest instant a late write still lands at, if one is still on its way.
    pub fn landing_after(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        self.late
            .lock()
            .expect("late")
            .iter()
            .copied()
            .filter(|at| *at >= now)
            .max()
    }

    fn take(&self, fits: impl Fn(&EcrFault) -> bool) -> Option<EcrFault> {
        let mut faults = self.faults.lock().expect("faults");
        let at = faults.iter().position(fits)?;
        self.fired.fetch_add(1, Ordering::SeqCst);
        faults.remove(at)
    }

    async fn any_call(&self) {
        match self.take(|f| matches!(f, EcrFault::Hang | EcrFault::Panic)) {
            Some(EcrFault::Panic) => panic!("injected fault: a panic inside an ECR call"),
            Some(_) => std::future::pending::<()>().await,
            None => {}
        }
    }
}

/// With `SIM_TRACE=1`, every write and delete the provider sends, at its virtual instant
/// (for reading one replayed history closely).
fn trace_call(what: std::fmt::Arguments<'_>) {
    if std::env::var_os("SIM_TRACE")
        .is_some_and(|v| ["1", "2", "3", "4"].contains(&v.to_str().unwrap_or_default()))
    {
        eprintln!("      [ecr {:?}] {what}", tokio::time::Instant::now());
    }
}

/// With `SIM_TRACE=2`, also every record the provider stores (who holds which Sid, who
/// owns the policy, who is displaced by whom); with `SIM_TRACE=3`, also what it remembers
/// removing (by Sid, and the policies it deleted); with `SIM_TRACE=4`, the whole record as
/// it is stored.
fn trace_record(key: &str, record: &Record) {
    let level = std::env::var("SIM_TRACE").unwrap_or_default();
    if level == "4" {
        let now = tokio::time::Instant::now();
        eprintln!("      [lock {now:?}] store {key}: {record:?}");
    }
    if level == "3" {
        let removed: Vec<String> = record
            .removed
            .iter()
            .map(|(sid, gone)| {
                format!(
                    "{sid}:{}",
                    sids_of(&format!("{{\"Statement\":[{}]}}", gone.statement))
                )
            })
            .collect();
        let policy = record
            .removed_policy
            .as_ref()
            .map(|gone| gone.versions().map(sids_of).collect::<Vec<_>>().join(" | "));
        eprintln!("      [lock] removed {removed:?} policy {policy:?}");
    }
    if level == "2" || level == "3" {
        let who = |h: &ecr_policy_provider::lock::Holder| {
            let stack = h.stack.split('/').nth(1).unwrap_or_default();
            let tag = &h.tag;
            format!("{stack}/{}#{tag}", h.logical)
        };
        let holders: Vec<String> = record
            .statements
            .iter()
            .map(|(sid, held)| format!("{sid}:{}", who(&held.holder)))
            .collect();
        let owner = record.owner.as_ref().map(|o| who(&o.holder));
        let displaced: Vec<String> = record
            .displaced
            .iter()
            .map(|d| {
                format!(
                    "{}/{}{}<-{}",
                    who(&d.holder),
                    d.sid.as_deref().unwrap_or("*"),
                    if d.ended { "(ended)" } else { "" },
                    d.by.as_ref().map(who).unwrap_or_default()
                )
            })
            .collect();
        eprintln!(
            "      [lock {:?}] store {key}: held {holders:?} owner {owner:?} displaced {displaced:?}",
            tokio::time::Instant::now()
        );
    }
}

/// The Sids of a policy text, for [`trace_call`].
fn sids_of(text: &str) -> String {
    let doc: Value = serde_json::from_str(text).unwrap_or_default();
    let items: Vec<&Value> = match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let sids: Vec<String> = items
        .iter()
        .map(|s| {
            let who = s["Principal"]["AWS"].as_str().unwrap_or_default();
            let digits: String = who.chars().filter(char::is_ascii_digit).collect();
            let tail = &digits[digits.len().saturating_sub(4)..];
            format!("{}@{tail}", s["Sid"].as_str().unwrap_or("?"))
        })
        .collect();
    format!("[{}]", sids.join(" "))
}

impl PolicyStore for FaultyEcr {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        self.any_call().await;
        if let Some(EcrFault::FailRead(error)) = self.take(|f| matches!(f, EcrFault::FailRead(_))) {
            return Err(error);
        }
        self.inner.get(target).await
    }

    async fn put(&self, target: &Target, text: &str, force: bool) -> Result<String, EcrError> {
        self.any_call().await;
        trace_call(format_args!("put {target:?}: {}", sids_of(text)));
        let fault = self.take(|f| {
            matches!(
                f,
                EcrFault::FailWrite(_) | EcrFault::LoseWriteAnswer(_) | EcrFault::LateWrite(_)
            )
        });
        match fault {
            Some(EcrFault::FailWrite(error)) => Err(error),
            Some(EcrFault::LoseWriteAnswer(error)) => {
                self.inner.put(target, text, force).await?;
                Err(error)
            }
            Some(EcrFault::LateWrite(after)) => {
                self.late
                    .lock()
                    .expect("late")
                    .push(tokio::time::Instant::now() + after);
                self.inner.land_writes_late([after]);
                self.inner.put(target, text, force).await
            }
            _ => self.inner.put(target, text, force).await,
        }
    }

    async fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> Result<Deleted, EcrError> {
        self.any_call().await;
        trace_call(format_args!("delete {target:?}"));
        let fault =
            self.take(|f| matches!(f, EcrFault::FailDelete(_) | EcrFault::LoseDeleteAnswer(_)));
        match fault {
            Some(EcrFault::FailDelete(error)) => Err(error),
            Some(EcrFault::LoseDeleteAnswer(error)) => {
                self.inner.delete(target, registry_id).await?;
                Err(error)
            }
            _ => self.inner.delete(target, registry_id).await,
        }
    }

    async fn policy_scope(&self, region: &str) -> Result<PolicyScope, EcrError> {
        self.any_call().await;
        self.inner.policy_scope(region).await
    }

    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.any_call().await;
        self.inner.repositories(region).await
    }

    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.any_call().await;
        self.inner.templates(region).await
    }
}

/// The in-memory lock table behind fault switches; it notes the lease every acquire asks
/// for. Its [`MemoryLock`]'s own methods (`record`, `lease`, `hold`, ...) are reached through
/// it.
pub struct FaultyLock {
    pub inner: MemoryLock,
    faults: Mutex<VecDeque<LockFault>>,
    fired: AtomicU64,
    asked: Mutex<Vec<(u64, u64)>>,
}

impl std::ops::Deref for FaultyLock {
    type Target = MemoryLock;

    fn deref(&self) -> &MemoryLock {
        &self.inner
    }
}

impl FaultyLock {
    pub fn new(clock: Clock) -> Self {
        Self {
            inner: MemoryLock::with_clock(clock),
            faults: Mutex::new(VecDeque::new()),
            fired: AtomicU64::new(0),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// The leases the acquires asked for so far: (now, until), in milliseconds.
    pub fn asked(&self) -> Vec<(u64, u64)> {
        self.asked.lock().expect("asked").clone()
    }

    /// Arms faults, each for the next call of its kind.
    pub fn arm(&self, faults: impl IntoIterator<Item = LockFault>) {
        self.faults.lock().expect("faults").extend(faults);
    }

    pub fn disarm(&self) {
        self.faults.lock().expect("faults").clear();
    }

    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    fn take(&self, kinds: &[LockFault]) -> Option<LockFault> {
        let mut faults = self.faults.lock().expect("faults");
        let at = faults.iter().position(|f| kinds.contains(f))?;
        self.fired.fetch_add(1, Ordering::SeqCst);
        faults.remove(at)
    }
}

impl LockStore for FaultyLock {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        use LockFault::*;
        self.asked.lock().expect("asked").push((now_ms, until_ms));
        match self.take(&[LoseAcquireAnswer, ThrottleAcquire]) {
            Some(ThrottleAcquire) => Err(lock_unavailable("UpdateItem")),
            Some(_) => {
                // The first try lands; its answer is lost; the SDK sends it again.
                let _ = self.inner.acquire(key, owner, now_ms, until_ms).await;
                self.inner.acquire(key, owner, now_ms, until_ms).await
            }
            None => self.inner.acquire(key, owner, now_ms, until_ms).await,
        }
    }

    async fn store(&self, key: &str, owner: &str, record: &Record) -> Result<(), LockError> {
        use LockFault::*;
        match self.take(&[FailStoreCondition, LoseStoreAnswer, ThrottleStore]) {
            Some(FailStoreCondition) => Err(LockError::Busy),
            Some(ThrottleStore) => Err(lock_unavailable("UpdateItem")),
            Some(_) => {
                self.inner.store(key, owner, record).await?;
                trace_record(key, record);
                Err(lock_unavailable("UpdateItem"))
            }
            None => {
                self.inner.store(key, owner, record).await?;
                trace_record(key, record);
                Ok(())
            }
        }
    }

    async fn release(&self, key: &str, owner: &str, idle: bool) -> Result<(), LockError> {
        if self.take(&[LockFault::FailRelease]).is_some() {
            return Err(lock_unavailable("UpdateItem"));
        }
        self.inner.release(key, owner, idle).await
    }
}

impl RecordReader for FaultyLock {
    async fn read(&self, key: &str) -> Result<Option<Snapshot>, LockError> {
        self.inner.read(key).await
    }

    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        self.inner.scan().await
    }
}

/// What one invocation came to.
#[derive(Debug)]
pub struct Sent {
    /// The invocation's result: a request answered, a drift summary, or an error.
    pub result: Result<Invoked, InvocationError>,
    /// Every response body given for this invocation's ResponseURL (exactly one is right).
    pub responses: Vec<Value>,
}

impl Sent {
    /// The one response, if exactly one was given.
    pub fn response(&self) -> Option<&Value> {
        match self.responses.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// The world: one provider process, the in-memory ECR and lock table, a virtual clock.
pub struct World {
    pub ecr: Arc<FaultyEcr>,
    pub lock: Arc<FaultyLock>,
    pub clock: Clock,
    provider: Provider<Arc<FaultyEcr>, Arc<FaultyLock>>,
    /// The same function deployed before the lock table existed (an earlier version).
    without_lock_table: Provider<Arc<FaultyEcr>>,
    capture: Capture,
    capture_without_lock_table: Capture,
    invocations: AtomicU64,
}

/// The provider's settings in a world: the IAM retry short, everything else as deployed.
pub fn settings() -> Settings {
    Settings {
        default_region: Some(REGION.into()),
        iam_propagation_timeout: Duration::from_secs(2),
        iam_retry_base: Duration::from_millis(10),
        lease_margin: LEASE_MARGIN,
        public_access: Default::default(),
        prefix_concurrency: ecr_policy_provider::lifecycle::DEFAULT_PREFIX_CONCURRENCY,
    }
}

impl World {
    /// A world at [`EPOCH_MS`] with these repositories, drift checks doing `drift`. Call it
    /// inside the paused runtime: the clock starts at the runtime's now.
    pub fn new(repositories: &[&str], drift: ecr_policy_provider::drift::Settings) -> Self {
        let clock = Clock::starting_at(EPOCH_MS);
        let ecr = Arc::new(FaultyEcr::default());
        for name in repositories {
            ecr.inner.create_repository(REGION, name);
        }
        let lock = Arc::new(FaultyLock::new(clock));
        let config = Config {
            urls: UrlPolicy::default(),
            settings: settings(),
            default_budget: LAMBDA_TIMEOUT,
            logs: None,
            drift,
            clock,
        };
        let (sender, capture_without_lock_table) = Sender::capturing();
        let without_lock_table = Provider::new(ecr.clone(), sender, config.clone());
        let (sender, capture) = Sender::capturing();
        let provider = Provider::new(ecr.clone(), sender, config)
            .with_lock(Some(lock.clone()))
            .without_drift_lines();
        Self {
            ecr,
            lock,
            clock,
            provider,
            without_lock_table,
            capture,
            capture_without_lock_table,
            invocations: AtomicU64::new(0),
        }
    }

    /// The ECR of the world, without faults.
    pub fn memory(&self) -> &MemoryEcr {
        &self.ecr.inner
    }

    /// The record of `target`.
    pub fn record(&self, target: &Target) -> Record {
        self.lock.inner.record(&key(target))
    }

    /// Invokes the function once with `event` (a request gets its own ResponseURL), with
    /// `timeout` to run.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Sent {
        self.invoke_with(event, timeout, true).await
    }

    /// Invokes the function as it was deployed before the lock table existed.
    pub async fn invoke_without_lock_table(&self, event: Value, timeout: Duration) -> Sent {
        self.invoke_with(event, timeout, false).await
    }

    async fn invoke_with(&self, mut event: Value, timeout: Duration, lock_table: bool) -> Sent {
        let n = self.invocations.fetch_add(1, Ordering::SeqCst);
        let url = format!(
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/invocation-{n}?X-Amz-Signature=0"
        );
        if event.get("RequestType").is_some() {
            event["ResponseURL"] = url.clone().into();
        }
        let deadline_ms = self.clock.now_ms() + timeout.as_millis() as u64;
        let (payload, invocation) = (event.to_string(), format!("lambda-{n}"));
        let (result, capture) = if lock_table {
            let result = self
                .provider
                .invoke(&payload, deadline_ms, &invocation)
                .await;
            (result, &self.capture)
        } else {
            let result = self
                .without_lock_table
                .invoke(&payload, deadline_ms, &invocation)
                .await;
            (result, &self.capture_without_lock_table)
        };
        let responses = capture
            .sent()
            .into_iter()
            .filter(|(to, _)| *to == url)
            .map(|(_, body)| serde_json::from_slice(&body).expect("a JSON response"))
            .collect();
        Sent { result, responses }
    }
}

/// The StackId of stack `name`, generation `generation` (a stack deleted and created again
/// under its name gets a new one).
pub fn stack_id(name: &str, generation: u32) -> String {
    format!(
        "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{generation:08x}-c8e1-11ee-9c2a-0a1b2c3d4e5f"
    )
}

/// The kinds of resource a stack declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A whole registry or repository policy.
    Whole,
    /// Statements (by Sid) inside one.
    Statements,
}

/// The `ResourceType` of a resource of `kind` on `target`.
pub fn resource_type(kind: Kind, target: &Target) -> &'static str {
    match (kind, target) {
        (Kind::Whole, Target::Registry { .. }) => "Custom::ECRRegistryPolicy",
        (Kind::Whole, Target::Repository { .. }) => "Custom::ECRRepositoryPolicy",
        (Kind::Statements, Target::Registry { .. }) => "Custom::ECRRegistryPolicyStatement",
        (Kind::Statements, Target::Repository { .. }) => "Custom::ECRRepositoryPolicyStatement",
        (_, Target::Template { .. }) => {
            unreachable!("a creation template is only ever a prefix statement's target")
        }
    }
}

/// The properties of a resource of `kind` on `target`: `statements` are the whole policy's
/// or the resource's own.
pub fn properties(kind: Kind, target: &Target, statements: &[Value], adopt: bool) -> Value {
    let mut props = json!({"ServiceToken": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecr-policy-provider")});
    match kind {
        Kind::Whole => {
            props["PolicyText"] = json!({"Version": "2012-10-17", "Statement": statements});
        }
        Kind::Statements => props["Statement"] = json!(statements),
    }
    if let Target::Repository { name, .. } = target {
        props["RepositoryName"] = name.clone().into();
    }
    if adopt {
        props["Adopt"] = "true".into();
    }
    props
}

/// One custom-resource request as CloudFormation sends it.
pub struct Request<'a> {
    pub request_type: &'a str,
    pub resource_type: &'a str,
    pub stack_id: &'a str,
    pub logical_id: &'a str,
    pub request_id: &'a str,
    /// Update and Delete only.
    pub physical_id: Option<&'a str>,
    pub properties: &'a Value,
    /// Update only.
    pub old_properties: Option<&'a Value>,
}

impl Request<'_> {
    pub fn event(&self) -> Value {
        let mut event = json!({
            "RequestType": self.request_type,
            "ServiceToken": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecr-policy-provider"),
            "ResponseURL": "",
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type,
            "ResourceProperties": self.properties,
        });
        if let Some(id) = self.physical_id {
            event["PhysicalResourceId"] = id.into();
        }
        if let Some(old) = self.old_properties {
            event["OldResourceProperties"] = old.clone();
        }
        event
    }
}

/// ECR's policy call as CloudTrail records it and EventBridge delivers it: `text` set, or
/// the policy deleted (`None`), by a person at the console, at `at_ms` (recorded, as
/// CloudTrail does, to the second).
pub fn cloudtrail(target: &Target, text: Option<&str>, at_ms: u64) -> Value {
    let (name, mut parameters) = match (target, text) {
        (Target::Registry { .. }, Some(_)) => ("PutRegistryPolicy", json!({})),
        (Target::Registry { .. }, None) => ("DeleteRegistryPolicy", Value::Null),
        (Target::Repository { name, .. }, Some(_)) => {
            ("SetRepositoryPolicy", json!({"repositoryName": name}))
        }
        (Target::Repository { name, .. }, None) => {
            ("DeleteRepositoryPolicy", json!({"repositoryName": name}))
        }
        (Target::Template { .. }, _) => {
            unreachable!("the world has no repository creation templates")
        }
    };
    if let Some(text) = text {
        parameters["policyText"] = text.into();
    }
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEID0000001:alice",
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice"),
                "accountId": ACCOUNT,
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{ACCOUNT}:role/Admin")}}
            },
            "eventSource": "ecr.amazonaws.com",
            "eventTime": event_time(at_ms),
            "eventName": name,
            "awsRegion": REGION,
            "requestParameters": parameters,
        }
    })
}

/// ECR's `CreateRepository` or `DeleteRepository` of repository `name`, as CloudTrail
/// records it and EventBridge delivers it, at `at_ms`.
pub fn repository_call(event_name: &str, name: &str, at_ms: u64) -> Value {
    let mut event = cloudtrail(
        &Target::Repository {
            region: REGION.into(),
            name: name.into(),
        },
        None,
        at_ms,
    );
    event["detail"]["eventName"] = event_name.into();
    if event_name == "CreateRepository" {
        event["detail"]["responseElements"] = json!({"repository": {
            "repositoryArn": format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"),
            "registryId": ACCOUNT,
            "repositoryName": name,
        }});
    }
    event
}

/// A time as CloudTrail's `eventTime` gives it: `2026-11-23T09:14:03Z`, to the second.
pub fn event_time(at_ms: u64) -> String {
    aws_smithy_types::DateTime::from_secs((at_ms / 1000) as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .expect("a time CloudTrail can give")
}

/// The daily scheduled sweep.
pub fn sweep() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/ecr-policy-provider-DriftSweep")],
        "detail": {}
    })
}
