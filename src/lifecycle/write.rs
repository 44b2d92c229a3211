//! The write (CONTRACT 7 and 10): ECR's refusals that IAM's propagation may explain are
//! retried, the registry scope is read when it can explain one, and a Create's write whose
//! outcome is unclear is undone. Every ECR write and delete goes through [`InFlight`], so
//! that abandoned work knows whether one may still land.

use super::HeldLease;
use super::pace::Pace;
use crate::diagnosis::{self};
use crate::ecr::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore};
use crate::error::{Failure, Undo};
use crate::identity::Target;
use crate::lifecycle::Settings;
use crate::plan::{self, Next};
use crate::policy::Policy;
use crate::retry::{self, Attempt, Backoff};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// The store with every write and delete marked in flight until it answers, every call at
/// ECR's pace ([`Pace`]: a throttled call waits and is tried again).
pub struct InFlight<'a, S> {
    inner: &'a S,
    held: &'a HeldLease,
    pace: &'a Pace,
}

impl<'a, S: PolicyStore> InFlight<'a, S> {
    pub fn new(inner: &'a S, held: &'a HeldLease, pace: &'a Pace) -> Self {
        Self { inner, held, pace }
    }
}

impl<S: PolicyStore> InFlight<'_, S> {
    /// Counts a write to `target` as sent (`true`) or answered (`false`).
    fn writing(&self, target: &Target, sent: bool) {
        self.held.writing(&crate::lock::key(target), sent);
    }
}

impl<S: PolicyStore> PolicyStore for InFlight<'_, S> {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        self.pace.paced(|| self.inner.get(target)).await
    }

    async fn put(
        &self,
        target: &Target,
        policy_text: &str,
        force: bool,
    ) -> Result<String, EcrError> {
        self.writing(target, true);
        let put = || self.inner.put(target, policy_text, force);
        let result = self.pace.paced(put).await;
        self.writing(target, false);
        result
    }

    async fn delete(
        &self,
        target: &Target,
        registry_id: Option<&str>,
    ) -> Result<Deleted, EcrError> {
        self.writing(target, true);
        let delete = || self.inner.delete(target, registry_id);
        let result = self.pace.paced(delete).await;
        self.writing(target, false);
        result
    }

    async fn policy_scope(&self, region: &str) -> Result<PolicyScope, EcrError> {
        self.pace.paced(|| self.inner.policy_scope(region)).await
    }

    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.pace.paced(|| self.inner.repositories(region)).await
    }

    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.pace.paced(|| self.inner.templates(region)).await
    }
}

/// The least and most time kept back from a Create's write to undo it.
const UNDO_RESERVE_MIN: Duration = Duration::from_millis(250);
const UNDO_RESERVE_MAX: Duration = Duration::from_secs(5);

/// Writes for a Create. A write that ECR refused changed nothing; one whose outcome is
/// unclear (ECR unreachable or failing, or no answer in the time allowed) may have landed,
/// so the time kept back puts back what was there before.
pub async fn write_or_undo<S: PolicyStore>(
    store: &S,
    target: &Target,
    text: &str,
    force: bool,
    undo: &Next,
    settings: &Settings,
    deadline: Instant,
) -> Result<String, Failure> {
    let now = Instant::now();
    let reserve =
        (deadline.saturating_duration_since(now) / 4).clamp(UNDO_RESERVE_MIN, UNDO_RESERVE_MAX);
    let write_until = deadline.checked_sub(reserve).unwrap_or(now).max(now);
    let writing = write_policy(store, target, text, force, settings, write_until);
    let failure = match tokio::time::timeout_at(write_until, writing).await {
        Ok(Ok(registry_id)) => return Ok(registry_id),
        Ok(Err(Failure::Ecr(e))) if e.unanswered() => Failure::Ecr(e),
        Ok(Err(failure)) => return Err(failure),
        Err(_) => Failure::TimedOut(write_until - now),
    };
    tracing::warn!(error = %failure, "the write's outcome is unclear; undoing it");
    let undo = undo_write(store, target, text, force, undo).await;
    Err(Failure::Undone {
        failure: Box::new(failure),
        undo,
    })
}

/// Puts the target back as it was before a Create's write of `text` (`undo`: the document
/// the merge started from), if that write landed. A read that does not show the write
/// cannot tell that it did not land (ECR's reads may lag behind it, and the write may still
/// be in flight): the outcome is then unknown, never "as it was" (CONTRACT 11).
async fn undo_write<S: PolicyStore>(
    store: &S,
    target: &Target,
    text: &str,
    force: bool,
    undo: &Next,
) -> Undo {
    let written = Policy::from_live(text);
    let landed = match store.get(target).await {
        Ok(Some(now)) => written
            .as_ref()
            .is_some_and(|w| plan::equivalent(w, &now.text)),
        Ok(None) => false,
        Err(e) => return Undo::Unknown(e.to_string()),
    };
    if !landed {
        return Undo::Unknown(
            "a read right after the write does not show it, but ECR's reads can lag behind \
             its writes"
                .to_owned(),
        );
    }
    let result = match undo {
        Next::Keep => return Undo::Restored,
        Next::Delete => store.delete(target, None).await.map(|_| Undo::Removed),
        Next::Write(previous) => store
            .put(target, previous, force)
            .await
            .map(|_| Undo::Restored),
    };
    result.unwrap_or_else(|e| Undo::Unknown(e.to_string()))
}

/// Why ECR refused a write, as far as the provider can tell (CONTRACT 10).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// A principal IAM has not propagated yet may explain it: worth retrying. `scope_unread`:
    /// the policy grants actions beyond V1 and the registry's scope could not be read.
    MaybeIam { scope_unread: bool },
    /// No principal could be waiting on IAM.
    NotIam,
    /// The registry's policy scope is V1 and the policy grants these actions beyond it.
    ScopeV1(Vec<String>),
    /// A repository policy that grants `ecr:GetAuthorizationToken` in these statements,
    /// which ECR has been reported to refuse (CONTRACT 12).
    AuthToken(Vec<String>),
}

/// Works out, once per write, what can explain ECR's "invalid policy" answer: the registry
/// policy scope (read when the policy grants actions beyond V1), else a principal.
async fn explain<S: PolicyStore>(store: &S, target: &Target, policy: Option<&Policy>) -> Why {
    if let (true, Some(policy)) = (target.holds_repository_policy(), policy) {
        let named = super::judge::auth_token_statements(policy.statements());
        if !named.is_empty() {
            return Why::AuthToken(named);
        }
    }
    let beyond_v1 = match (target, policy) {
        (Target::Registry { .. }, Some(policy)) => diagnosis::actions_beyond_v1(policy.document()),
        _ => Vec::new(),
    };
    if !beyond_v1.is_empty() {
        match store.policy_scope(target.region()).await {
            Ok(PolicyScope::V1) => return Why::ScopeV1(beyond_v1),
            Ok(PolicyScope::V2) => {}
            Err(error) => {
                tracing::warn!(error = %error, "could not read the registry policy scope; retrying in case IAM explains the refusal");
                return Why::MaybeIam { scope_unread: true };
            }
        }
    }
    if policy.is_some_and(names_iam_principal) {
        Why::MaybeIam {
            scope_unread: false,
        }
    } else {
        Why::NotIam
    }
}

/// Whether the policy names an AWS principal other than everyone: an account, user or role
/// that IAM could still be propagating.
fn names_iam_principal(policy: &Policy) -> bool {
    policy.statements().iter().any(|statement| {
        ["Principal", "NotPrincipal"].iter().any(|key| {
            let aws = statement.get(*key).and_then(|p| p.get("AWS"));
            let list = match aws {
                Some(Value::Array(items)) => items.as_slice(),
                Some(single) => std::slice::from_ref(single),
                None => &[],
            };
            list.iter().any(|p| p.as_str() != Some("*"))
        })
    })
}

/// Writes the policy. ECR's "invalid policy" answer is retried, with backoff, until
/// `IAM_PROPAGATION_TIMEOUT_SECONDS` or the deadline, only when a principal IAM has not yet
/// propagated is the one explanation left (CONTRACT 7 and 10).
pub async fn write_policy<S: PolicyStore>(
    store: &S,
    target: &Target,
    text: &str,
    force: bool,
    settings: &Settings,
    deadline: Instant,
) -> Result<String, Failure> {
    let started = Instant::now();
    let give_up = deadline.min(started + settings.iam_propagation_timeout);
    let backoff = Backoff {
        first: settings.iam_retry_base,
        max: settings.iam_retry_base * 16,
        jitter: 1.0..1.5,
    };
    let policy = Policy::from_live(text);
    let why: tokio::sync::OnceCell<Why> = tokio::sync::OnceCell::new();
    let write = |_| async {
        let error = match store.put(target, text, force).await {
            Ok(registry_id) => return Attempt::Done(registry_id),
            Err(error) if error.may_be_iam_propagation() => error,
            Err(error) => return Attempt::Stop(error),
        };
        let why = why
            .get_or_init(|| explain(store, target, policy.as_ref()))
            .await;
        match why {
            Why::MaybeIam { .. } => Attempt::Retry(error),
            Why::NotIam | Why::ScopeV1(_) | Why::AuthToken(_) => Attempt::Stop(error),
        }
    };
    let retried = |error: &EcrError, attempt: u32| {
        tracing::warn!(attempt, error = %error, "ECR rejected the policy; retrying in case IAM has not propagated a principal yet");
    };
    let gave_up = match retry::until(&backoff, give_up, write, retried).await {
        Ok(registry_id) => return Ok(registry_id),
        Err(gave_up) => gave_up,
    };
    if !matches!(gave_up.error, EcrError::InvalidPolicy { .. }) {
        return Err(Failure::Ecr(gave_up.error));
    }
    let mut auth_token = Vec::new();
    let (iam_possible, v1_actions) = match why.get() {
        Some(Why::ScopeV1(actions)) => return Err(Failure::RegistryScopeV1(actions.clone())),
        Some(Why::NotIam) => (false, Vec::new()),
        Some(Why::AuthToken(named)) => {
            auth_token = named.clone();
            (false, Vec::new())
        }
        // The scope could not be read: the V1 hint stays.
        Some(Why::MaybeIam { scope_unread: true }) => (
            true,
            policy
                .as_ref()
                .map(|p| diagnosis::actions_beyond_v1(p.document()))
                .unwrap_or_default(),
        ),
        Some(Why::MaybeIam {
            scope_unread: false,
        })
        | None => (true, Vec::new()),
    };
    Err(Failure::PolicyRejected {
        error: gave_up.error,
        attempts: gave_up.attempts,
        waited: started.elapsed(),
        v1_actions,
        iam_possible,
        auth_token: auth_token.into_boxed_slice(),
    })
}
