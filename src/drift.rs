//! Drift (CONTRACT 13): out-of-band changes to the policies this provider manages, noticed
//! from ECR's policy calls as CloudTrail records them and by a scheduled sweep of every
//! target in the record; reported, and with `DRIFT_ACTION=Restore` undone under the lease.
//! The record is the truth (CONTRACT 11): what it holds is what should be live.

use crate::ecr::{EcrError, PolicyStore};
use crate::identity::Target;
use crate::lock::{self, LockError, LockStore, RecordReader, Snapshot};
use crate::plan::{self, Next};
use crate::retry::{self, Attempt, Backoff, Clock};
use compare::Difference;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

pub mod compare;
pub mod trigger;

pub use trigger::{After, Call, Shape, UnknownShape, shape_of};

/// The environment variable that chooses what drift does (`template.yaml`: `DriftAction`).
pub const ACTION_VARIABLE: &str = "DRIFT_ACTION";
/// How long after its own write the provider takes a sweep's read that lacks the write for a
/// lagging one (whole seconds; default 60, CONTRACT 11's minute).
pub const READ_LAG_VARIABLE: &str = "DRIFT_READ_LAG_SECONDS";
/// The environment variable naming the function's own role: its calls are not drift.
pub const ROLE_VARIABLE: &str = "FUNCTION_ROLE_ARN";
/// The metric's namespace and name (embedded metric format).
pub const METRIC_NAMESPACE: &str = "ECRPolicyProvider";
pub const METRIC_NAME: &str = "DriftedTargets";

/// How many targets a sweep reads at once, and how many reads it starts a second. ECR
/// publishes no rate for its policy reads, and its throttles are per account and region,
/// shared with every other caller (pushes, pulls, CI): a sweep paces itself at the lowest
/// sustained rate ECR does publish (20 a second, `GetAuthorizationToken`), which checks
/// 1,000 targets in 50 s and leaves the account's budget to the workloads. Throttling is
/// still retried by the SDK.
pub const SWEEP_CONCURRENCY: usize = 4;
pub const SWEEP_READS_PER_SECOND: u32 = 20;

/// How long a restore holds the lease: long enough for one read and one write with the
/// SDK's retries.
const RESTORE_LEASE: Duration = Duration::from_secs(60);

/// How a check waits for a request's lease to end: read again after pauses doubling from a
/// quarter of a second up to 5 s, until the invocation's time is up.
const LEASE_WAIT: Backoff = Backoff {
    first: Duration::from_millis(250),
    max: Duration::from_secs(5),
    jitter: 0.8..1.0,
};

/// How many times a check reads a target whose record keeps changing under it (the
/// provider writing it meanwhile) before it leaves the target for later.
const STABLE_LOOKS: usize = 3;

/// ECR's reads can lag a write by seconds, a minute at most (CONTRACT 11): when a CloudTrail
/// record says a call left drift but the read shows none, the read is tried again after each
/// of these pauses (61 s in all, while the invocation has time) before it is believed (a
/// later change may have put things right meanwhile).
pub const LAGGING_READ_PAUSES: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(30),
];

/// What drift does once found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// Report only (the default).
    #[default]
    Report,
    /// Write the record back.
    Restore,
}

impl Action {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "Report" => Some(Action::Report),
            "Restore" => Some(Action::Restore),
            _ => None,
        }
    }
}

/// Drift's configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub action: Action,
    /// The function's own role (`FUNCTION_ROLE_ARN`): a call made from it is the
    /// provider's own write.
    pub own_role: Option<String>,
    /// The metric's `FunctionName` dimension (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: Option<String>,
    /// Reads a sweep starts a second (0: unpaced, for tests).
    pub reads_per_second: u32,
    /// How long after the provider's own write a sweep's read that lacks it may be a read
    /// lagging behind it (CONTRACT 11's minute); such a target is looked at again once that
    /// time has passed. Zero (tests whose reads never lag) judges at once.
    pub own_write_lag: Duration,
}

impl Settings {
    /// From the function's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `lookup` (a variable's value by name); an empty value is unset.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let action = match var(ACTION_VARIABLE) {
            None => Action::Report,
            Some(v) => Action::parse(&v).unwrap_or_else(|| {
                tracing::warn!(value = %v, "DRIFT_ACTION is neither Report nor Restore; using Report");
                Action::Report
            }),
        };
        Self {
            action,
            own_role: var(ROLE_VARIABLE),
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            reads_per_second: SWEEP_READS_PER_SECOND,
            own_write_lag: match var(READ_LAG_VARIABLE) {
                None => Duration::from_millis(crate::lock::READ_LAG_MS),
                Some(v) => v.trim().parse().map(Duration::from_secs).unwrap_or_else(|_| {
                    tracing::warn!(value = %v, "DRIFT_READ_LAG_SECONDS is not a whole number of seconds; using 60");
                    Duration::from_millis(crate::lock::READ_LAG_MS)
                }),
            },
        }
    }
}

/// One drifted target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub target: Target,
    pub difference: Difference,
    /// Who made the change, when CloudTrail says.
    pub by: Option<String>,
    pub restored: bool,
    /// Why a restore did not happen, when one was asked for.
    pub not_restored: Option<String>,
}

/// What an invocation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Targets compared with the record.
    pub targets: usize,
    pub findings: Vec<Finding>,
    /// Targets a request still held the lease on when a sweep's time was up: their writes
    /// may not have landed, so they were not judged (the next sweep does).
    pub busy: usize,
    /// Targets that could not be read, with why.
    pub failed: Vec<(String, String)>,
    /// Targets a sweep did not reach before the invocation's time was up (not counted in
    /// `targets`).
    pub unchecked: usize,
}

impl Summary {
    pub fn drifted(&self) -> usize {
        self.findings.len()
    }

    pub fn restored(&self) -> usize {
        self.findings.iter().filter(|f| f.restored).count()
    }

    /// The invocation's result (CONTRACT 13).
    pub fn result(&self) -> Value {
        json!({"targets": self.targets, "drifted": self.drifted(), "restored": self.restored()})
    }
}

/// Why a drift invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("the record could not be read: {0}")]
    Record(#[from] LockError),
    #[error("the check did not finish: {0}")]
    Interrupted(String),
    /// A request held the target's lease until the invocation's time was up: the event
    /// fails, so that Lambda's asynchronous retry (then the dead-letter queue) delivers it
    /// again, and it is checked then.
    #[error(
        "a request held the lease on {target} until this invocation's time was up; the event \
         is checked when Lambda delivers it again"
    )]
    Leased { target: String },
    /// The target's read still lagged behind the provider's own write of moments ago when
    /// the invocation's time was up: delivered again by Lambda, it is checked then.
    #[error(
        "the read of {target} still lacked what the provider wrote there less than \
         DRIFT_READ_LAG_SECONDS ago when this invocation's time was up; the event is checked \
         when Lambda delivers it again"
    )]
    Lagging { target: String },
    #[error(
        "{} of {targets} targets could not be checked; the first, {}: {}",
        .failed.len(), .failed[0].0, .failed[0].1
    )]
    Targets {
        targets: usize,
        failed: Vec<(String, String)>,
    },
}

/// Checks what `shape` concerns: one call's target, or every target in the record.
pub async fn run<E, L>(
    ecr: &E,
    lock: &L,
    shape: &Shape,
    settings: &Settings,
    clock: &Clock,
    invocation_id: &str,
    until: tokio::time::Instant,
) -> Result<Summary, DriftError>
where
    E: PolicyStore,
    L: LockStore + RecordReader,
{
    let owner = format!("drift/{invocation_id}");
    let checker = Checker {
        ecr,
        lock,
        settings,
        clock,
        owner: &owner,
        until,
    };
    let summary = match shape {
        Shape::CustomResource => Summary::default(),
        Shape::Call(call) => checker.call(call).await?,
        Shape::Sweep => checker.sweep().await?,
    };
    if !summary.failed.is_empty() {
        return Err(DriftError::Targets {
            targets: summary.targets,
            failed: summary.failed,
        });
    }
    Ok(summary)
}

struct Checker<'a, E, L> {
    ecr: &'a E,
    lock: &'a L,
    settings: &'a Settings,
    /// The time of day: whether a lease is still held, the record's dates.
    clock: &'a Clock,
    owner: &'a str,
    /// No new target is started after this: the invocation's time is up.
    until: tokio::time::Instant,
}

enum Checked {
    Clean,
    Busy,
    /// The read lacked the provider's own write of moments ago: looked at again later.
    Lagging,
    /// Not reached before the invocation's time was up.
    Unchecked,
    Drift(Finding),
    Failed(String),
}

impl<E: PolicyStore, L: LockStore + RecordReader> Checker<'_, E, L> {
    async fn call(&self, call: &Call) -> Result<Summary, DriftError> {
        let key = lock::key(&call.target);
        if call.role.is_some() && call.role == self.settings.own_role {
            tracing::info!(target_key = %key, event = %call.name, "the provider's own write: not drift");
            return Ok(Summary::default());
        }
        loop {
            // A target under a request's lease is checked once the lease is given back (or
            // has expired), never dropped: a console edit during a deployment still counts.
            let settled = self.settled(&key).await?;
            let Some(snapshot) = settled.filter(|s| s.record.holds_anything()) else {
                tracing::info!(target_key = %key, event = %call.name, "no resource of this provider manages the target");
                return Ok(Summary::default());
            };
            match self
                .check(
                    &call.target,
                    &key,
                    snapshot,
                    Some(call),
                    call.after.as_ref(),
                )
                .await
            {
                // A request took the lease while the target was read, or the read lagged the
                // provider's own write: look again.
                Checked::Busy | Checked::Lagging if tokio::time::Instant::now() < self.until => {
                    continue;
                }
                Checked::Busy => return Err(DriftError::Leased { target: key }),
                Checked::Lagging => return Err(DriftError::Lagging { target: key }),
                checked => return Ok(summarise(vec![(key, checked)])),
            }
        }
    }

    async fn sweep(&self) -> Result<Summary, DriftError> {
        let items = self.lock.scan().await?;
        let mut targets = Vec::new();
        for (key, snapshot) in items {
            // The prefix statements' index (CONTRACT 15) is no target.
            if !snapshot.record.holds_anything() || key.starts_with(lock::INDEX_KEY_PREFIX) {
                continue;
            }
            match lock::target_of(&key) {
                Some(target) => targets.push((key, target, snapshot)),
                None => {
                    tracing::warn!(target_key = %key, "a lock item whose key names no target: skipped")
                }
            }
        }
        let pacer = Pacer::new(self.settings.reads_per_second);
        let results = futures_util::stream::iter(targets)
            .map(|(key, target, snapshot)| {
                let pacer = &pacer;
                async move {
                    pacer.wait().await;
                    if tokio::time::Instant::now() >= self.until {
                        return (key, Checked::Unchecked);
                    }
                    let checked = self.check(&target, &key, snapshot, None, None).await;
                    (key, checked)
                }
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        // Targets under a request's lease are looked at again once the others are done, as
        // soon as their lease ends and while the invocation has time; those still leased then
        // are left to the next sweep (or to their CloudTrail event).
        let (busy, mut results): (Vec<_>, Vec<_>) = results
            .into_iter()
            .partition(|(_, checked)| matches!(checked, Checked::Busy | Checked::Lagging));
        for (key, _) in busy {
            if tokio::time::Instant::now() >= self.until {
                results.push((key, Checked::Busy));
                continue;
            }
            let checked = match (self.settled(&key).await, lock::target_of(&key)) {
                (Ok(Some(snapshot)), Some(target)) => {
                    self.check(&target, &key, snapshot, None, None).await
                }
                // No item there any more.
                (Ok(_), _) => Checked::Clean,
                (Err(DriftError::Leased { .. }), _) => Checked::Busy,
                (Err(error), _) => Checked::Failed(error.to_string()),
            };
            results.push((key, checked));
        }
        let summary = summarise(results);
        if summary.unchecked > 0 {
            tracing::warn!(
                unchecked = summary.unchecked,
                "the sweep ran out of time; the next one checks the rest"
            );
        }
        Ok(summary)
    }

    /// The item for `key` once no request holds its lease: read again, with backoff, while
    /// one does, until the invocation's time is up ([`DriftError::Leased`]).
    async fn settled(&self, key: &str) -> Result<Option<Snapshot>, DriftError> {
        let read = retry::until(
            &LEASE_WAIT,
            self.until,
            |_| async {
                match self.lock.read(key).await {
                    Ok(Some(snapshot)) if snapshot.leased_at(self.clock.now_ms()) => {
                        Attempt::Retry(DriftError::Leased {
                            target: key.to_owned(),
                        })
                    }
                    Ok(snapshot) => Attempt::Done(snapshot),
                    Err(error) => Attempt::Stop(DriftError::Record(error)),
                }
            },
            |_, attempt| {
                tracing::info!(target_key = %key, attempt, "a request holds the lease: checked once it is given back");
            },
        )
        .await;
        read.map_err(|gave_up| gave_up.error)
    }

    /// Compares the target with its record. The live policy is judged against a record that
    /// stood while it was read: when the record read again after the live read differs (the
    /// provider wrote meanwhile), the live policy is judged against the new record too, and
    /// read again against it if it still differs (CONTRACT 13: the provider's own writes are
    /// never drift). `Busy` when a request holds the lease.
    async fn check(
        &self,
        target: &Target,
        key: &str,
        mut snapshot: Snapshot,
        call: Option<&Call>,
        after: Option<&After>,
    ) -> Checked {
        let by = call.and_then(|c| c.by.clone());
        let mut stable = None;
        for _ in 0..STABLE_LOOKS {
            if snapshot.leased_at(self.clock.now_ms()) {
                tracing::info!(target_key = %key, "a request holds the lease: its write may not have landed; not judged yet");
                return Checked::Busy;
            }
            if !snapshot.record.holds_anything() {
                return Checked::Clean;
            }
            // A call made before the provider's last write left a policy that says nothing
            // of that write: the target is judged by what a read shows, as a sweep judges it.
            let before_write = call
                .zip(snapshot.record.written_ms)
                .is_some_and(|(c, w)| c.came_before(w));
            let after = after.filter(|_| !before_write);
            let (live, difference) = match self.judge(target, key, &snapshot, after).await {
                Ok(judged) => judged,
                Err(error) => return Checked::Failed(error),
            };
            if !difference.is_drift() {
                return Checked::Clean;
            }
            let now = match self.lock.read(key).await {
                Ok(now) => now.unwrap_or_default(),
                Err(error) => return Checked::Failed(error.to_string()),
            };
            if now == snapshot {
                stable = Some((difference, live));
                break;
            }
            if !now.leased_at(self.clock.now_ms())
                && !compare::difference(&now.record, live.as_deref()).is_drift()
            {
                tracing::info!(target_key = %key, "the provider wrote the target while it was read: not drift");
                return Checked::Clean;
            }
            snapshot = now;
        }
        let Some((difference, live)) = stable else {
            tracing::info!(target_key = %key, "the record kept changing while the target was read: not judged yet");
            return Checked::Busy;
        };
        let now_ms = self.clock.now_ms();
        let window = self.settings.own_write_lag.as_millis() as u64;
        if let Some(written) = snapshot.record.written_ms
            && call.is_none_or(|c| c.came_before(written))
            && now_ms.saturating_sub(written) < window
            && plan::read_lags(&snapshot.record, live.as_deref(), now_ms)
        {
            // A sweep (no call known to have changed anything), or a call made before the
            // provider's last write, whose read lacks what the provider wrote moments ago: a
            // read lagging behind the provider's own write is not drift (CONTRACT 11 and 13).
            // Looked at again once that time has passed, or left to the next sweep. (A
            // CloudTrail event of a later call is itself the evidence of a change made out of
            // band, and is judged at once.)
            tracing::info!(target_key = %key, "the read lacks the provider's own write of moments ago: looked at again once a read can have caught up");
            let wait = Duration::from_millis(window - now_ms.saturating_sub(written));
            let until = self.until.min(tokio::time::Instant::now() + wait);
            tokio::time::sleep_until(until).await;
            return Checked::Lagging;
        }
        let mut finding = Finding {
            target: target.clone(),
            difference,
            by,
            restored: false,
            not_restored: None,
        };
        if self.settings.action == Action::Restore {
            match self.restore(target, key).await {
                Ok(()) => finding.restored = true,
                Err(why) => {
                    tracing::warn!(target_key = %key, reason = %why, "drift not restored");
                    finding.not_restored = Some(why);
                }
            }
        }
        Checked::Drift(finding)
    }

    /// The live policy text and how it differs from the snapshot's record. When the
    /// CloudTrail record says the call left drift but the read shows none, the read may lag:
    /// it is tried again after each of [`LAGGING_READ_PAUSES`] before it is believed.
    async fn judge(
        &self,
        target: &Target,
        key: &str,
        snapshot: &Snapshot,
        after: Option<&After>,
    ) -> Result<(Option<String>, Difference), String> {
        let record = &snapshot.record;
        let said = after.map(|after| compare::difference(record, after.text()));
        if let Some(said) = said.as_ref().filter(|said| !said.is_drift()) {
            // The call left nothing held changed: whatever a read shows now is a read
            // lagging behind the provider's own write, or a later change, which its own
            // CloudTrail record (or the sweep) brings (CONTRACT 13).
            tracing::info!(target_key = %key, "the CloudTrail record says the call left the held statements as they are: not drift");
            return Ok((
                after.and_then(|a| a.text().map(str::to_owned)),
                said.clone(),
            ));
        }
        let mut pauses = LAGGING_READ_PAUSES.iter();
        loop {
            let live = self.live(target).await.map_err(|e| e.to_string())?;
            let difference = compare::difference(record, live.as_deref());
            let lagging = !difference.is_drift() && said.as_ref().is_some_and(Difference::is_drift);
            match pauses.next() {
                Some(pause) if lagging && tokio::time::Instant::now() + *pause < self.until => {
                    tracing::info!(target_key = %key, pause_ms = pause.as_millis() as u64, "the read shows no drift where the CloudTrail record says the call left some: read again");
                    tokio::time::sleep(*pause).await;
                }
                _ => return Ok((live, difference)),
            }
        }
    }

    /// The live policy text; a repository (or creation template) that no longer exists has
    /// none.
    async fn live(&self, target: &Target) -> Result<Option<String>, EcrError> {
        match self.ecr.get(target).await {
            Ok(live) => Ok(live.map(|l| l.text)),
            Err(gone) if gone.target_gone() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes the record back under the lease, from a fresh read of both.
    async fn restore(&self, target: &Target, key: &str) -> Result<(), String> {
        let now = self.clock.now_ms();
        let until = now + RESTORE_LEASE.as_millis() as u64;
        let record = match self.lock.acquire(key, self.owner, now, until).await {
            Ok(record) => record,
            Err(LockError::Busy) => {
                return Err(
                    "a request holds the lease; the next event or sweep looks again".into(),
                );
            }
            Err(error) => return Err(error.to_string()),
        };
        let outcome = async {
            let live = self.live(target).await.map_err(|e| (e.to_string(), true))?;
            let now_ms = self.clock.now_ms();
            match plan::restore(live.as_deref(), &record, now_ms) {
                // With the `Force` the owning resources asked for (CONTRACT 13). The record
                // says when the provider wrote first, so that a read lagging behind this write
                // is not taken for drift again (CONTRACT 11, 13).
                Next::Write(text) => {
                    let mut dated = record.clone();
                    dated.written_ms = Some(now_ms);
                    dated.written = Some(text.clone());
                    self.lock
                        .store(key, self.owner, &dated)
                        .await
                        .map_err(|e| (e.to_string(), true))?;
                    match self.ecr.put(target, &text, record.force()).await {
                        Ok(_) => Ok(()),
                        // The write may still land: the lease is left to expire.
                        Err(error) if error.unanswered() => Err((error.to_string(), false)),
                        Err(error) => Err((error.to_string(), true)),
                    }
                }
                // Put right meanwhile, or nothing of ours to write.
                Next::Keep | Next::Delete => Ok(()),
            }
        }
        .await;
        let give_back = outcome
            .as_ref()
            .map_or_else(|(_, settled)| *settled, |_| true);
        if give_back && let Err(error) = self.lock.release(key, self.owner, false).await {
            tracing::warn!(target_key = %key, error = %error, "the lease could not be given back; it expires by itself");
        }
        outcome.map_err(|(why, _)| why)
    }
}

fn summarise(results: Vec<(String, Checked)>) -> Summary {
    let mut summary = Summary::default();
    for (key, checked) in results {
        match checked {
            Checked::Clean => summary.targets += 1,
            Checked::Busy | Checked::Lagging => {
                summary.targets += 1;
                summary.busy += 1;
            }
            Checked::Unchecked => summary.unchecked += 1,
            Checked::Drift(finding) => {
                summary.targets += 1;
                summary.findings.push(finding);
            }
            Checked::Failed(why) => {
                summary.targets += 1;
                summary.failed.push((key, why));
            }
        }
    }
    summary.findings.sort_by_key(|f| lock::key(&f.target));
    summary
}

/// Spaces the starts of a sweep's reads.
struct Pacer {
    gap: Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    fn new(per_second: u32) -> Self {
        let gap = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / per_second
        };
        Self {
            gap,
            next: tokio::sync::Mutex::new(None),
        }
    }

    async fn wait(&self) {
        if self.gap.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.gap);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The "policy drift" log line of one finding (CONTRACT 13), a JSON object.
pub fn drift_line(finding: &Finding, timestamp: &str) -> String {
    let mut line = json!({
        "timestamp": timestamp,
        "level": "WARN",
        "message": "policy drift",
        "target": lock::key(&finding.target),
        "missing": finding.difference.missing,
        "changed": finding.difference.changed,
        "whole_policy": finding.difference.whole_policy.map(compare::Whole::as_str),
        "by": finding.by,
        "restored": finding.restored,
    });
    if let Some(why) = &finding.not_restored {
        line["not_restored"] = json!(why);
    }
    line.to_string()
}

/// The embedded-metric-format line for `DriftedTargets`: CloudWatch Logs turns it into the
/// metric, with no SDK client and no call.
pub fn metric_line(drifted: usize, function_name: Option<&str>, now_ms: u64) -> String {
    let dimensions: Vec<&str> = function_name.map(|_| "FunctionName").into_iter().collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": METRIC_NAME, "Unit": "Count"}],
            }],
        },
        METRIC_NAME: drifted,
    });
    if let Some(name) = function_name {
        line["FunctionName"] = json!(name);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            target: Target::Repository {
                region: "us-east-1".into(),
                name: "app".into(),
            },
            difference: Difference {
                missing: vec!["PullA".into()],
                changed: vec![],
                whole_policy: None,
            },
            by: Some("arn:aws:sts::111122223333:assumed-role/Admin/alice".into()),
            restored: true,
            not_restored: None,
        }
    }

    #[test]
    fn the_drift_line_has_the_contract_fields() {
        let line: Value =
            serde_json::from_str(&drift_line(&finding(), "2026-12-02T10:00:00Z")).expect("JSON");
        assert_eq!(
            line,
            json!({
                "timestamp": "2026-12-02T10:00:00Z",
                "level": "WARN",
                "message": "policy drift",
                "target": "repository/us-east-1/app",
                "missing": ["PullA"],
                "changed": [],
                "whole_policy": null,
                "by": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                "restored": true,
            })
        );
        let mut refused = finding();
        refused.restored = false;
        refused.not_restored = Some("busy".into());
        refused.difference.whole_policy = Some(compare::Whole::Deleted);
        let line: Value = serde_json::from_str(&drift_line(&refused, "t")).expect("JSON");
        assert_eq!(line["not_restored"], "busy");
        assert_eq!(line["whole_policy"], "deleted");
        assert_eq!(line["restored"], false);
    }

    #[test]
    fn the_metric_line_is_embedded_metric_format() {
        let line: Value = serde_json::from_str(&metric_line(
            3,
            Some("provider-Function-1"),
            1_700_000_000_000,
        ))
        .expect("JSON");
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "ECRPolicyProvider",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [{"Name": "DriftedTargets", "Unit": "Count"}],
                    }],
                },
                "DriftedTargets": 3,
                "FunctionName": "provider-Function-1",
            })
        );
        let bare: Value = serde_json::from_str(&metric_line(0, None, 1)).expect("JSON");
        assert_eq!(
            bare["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(bare["DriftedTargets"], 0);
        assert!(bare.get("FunctionName").is_none());
    }

    #[test]
    fn the_settings_come_from_the_environment_and_empty_is_unset() {
        let from = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Settings::from_vars(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        let deployed = from(&[
            ("DRIFT_ACTION", "Restore"),
            ("FUNCTION_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_LAMBDA_FUNCTION_NAME", "provider"),
        ]);
        assert_eq!(deployed.action, Action::Restore);
        assert_eq!(deployed.own_role.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert_eq!(deployed.function_name.as_deref(), Some("provider"));
        assert_eq!(deployed.reads_per_second, SWEEP_READS_PER_SECOND);
        let bare = from(&[("FUNCTION_ROLE_ARN", ""), ("DRIFT_ACTION", "restore")]);
        assert_eq!(bare.action, Action::Report, "a value that is not spelt out");
        assert_eq!(bare.own_role, None, "empty is unset");
        assert_eq!(from(&[]).action, Action::Report);
    }

    #[test]
    fn the_action_is_report_unless_restore_is_spelt_out() {
        assert_eq!(Action::parse("Restore"), Some(Action::Restore));
        assert_eq!(Action::parse(" Report "), Some(Action::Report));
        assert_eq!(Action::parse("restore"), None);
        assert_eq!(Action::default(), Action::Report);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_starts_by_its_rate() {
        let pacer = Pacer::new(20);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        let unpaced = Pacer::new(0);
        let start = tokio::time::Instant::now();
        unpaced.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn the_result_counts_targets_drifts_and_restores() {
        let mut not_restored = finding();
        not_restored.restored = false;
        let summary = Summary {
            targets: 5,
            findings: vec![finding(), not_restored],
            busy: 1,
            failed: vec![],
            unchecked: 0,
        };
        assert_eq!(
            summary.result(),
            json!({"targets": 5, "drifted": 2, "restored": 1})
        );
    }
}
