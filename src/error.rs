//! Why a request failed. `Display` is the `Reason` CloudFormation shows, so every message
//! says what is wrong and what to do about it.

use crate::diagnosis::{Defects, V1_REGISTRY_ACTIONS};
use crate::ecr::EcrError;
use crate::event::{PropertyError, RequestError};
use crate::lock::{Holder, LockError, TABLE_VARIABLE};
use crate::policy::MAX_POLICY_CHARS;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Request(#[from] RequestError),
    #[error("{0}")]
    Property(#[from] PropertyError),
    #[error("{0}")]
    Ecr(#[from] EcrError),
    /// A policy that can never work (CONTRACT 10), refused before any write.
    #[error("property {property} {defects}")]
    Defective {
        property: &'static str,
        defects: Defects,
    },
    /// A statement that lets in every AWS account, without `AllowPublicAccess: true`
    /// (CONTRACT 12). `statements`: each public statement's name and why it is public.
    #[error(
        "{target} allows public access: {}. Limit {} to named accounts or your organization \
         (a condition such as \"Condition\": {{\"StringEquals\": {{\"aws:PrincipalOrgID\": \
         \"o-xxxxxxxxxx\"}}}}, or the accounts as principals), or, if every AWS account is \
         meant to get in, set AllowPublicAccess: true on the resource. Nothing was written.",
        public_statements(.statements),
        if .statements.len() == 1 { "it" } else { "them" }
    )]
    Public {
        target: String,
        statements: Vec<(String, String)>,
    },
    #[error(
        "ECR refused the registry policy because the registry's policy scope is V1, where a \
         registry policy may grant only {}; this one also grants {}. Switch the registry to \
         V2 with `aws ecr put-account-setting --name REGISTRY_POLICY_SCOPE --value V2` (see it \
         with `aws ecr get-account-setting --name REGISTRY_POLICY_SCOPE`), or drop those \
         actions.",
        V1_REGISTRY_ACTIONS.join(", "),
        crate::text::quote_all(.0)
    )]
    RegistryScopeV1(Vec<String>),
    #[error(
        "{target} already has a policy that differs from PolicyText; set Adopt: true to take it \
         over (it is then replaced, and deleted with the stack), or remove it first"
    )]
    AlreadyHasPolicy { target: String },
    /// Another resource owns the whole policy (CONTRACT 11).
    #[error(
        "{target} already has a policy {}, managed by {}; set Adopt: true to take it over \
         (the other resource's Delete then leaves it in place), or remove it from that stack \
         first",
        if *.differs { "that differs from PolicyText" } else { "equivalent to PolicyText" },
        describe(.holder)
    )]
    OwnedBy {
        target: String,
        holder: Holder,
        differs: bool,
    },
    /// Other resources hold these Sids (CONTRACT 11).
    #[error(
        "{target} already has statements with Sid {} that other resources hold: {}; set \
         Adopt: true to take them over (the other resource's Delete then leaves them in \
         place), or give this resource's statements other Sids",
        crate::text::quote_all(&.held.iter().map(|(sid, _)| sid.clone()).collect::<Vec<_>>()),
        held_by(.held)
    )]
    HeldBy {
        target: String,
        held: Vec<(String, Holder)>,
    },
    /// A statement Create on a target a whole-policy resource owns (CONTRACT 11).
    #[error(
        "{target} has a policy managed as a whole by {}; a statement resource joins it only \
         with Adopt: true, which ends that ownership (the rest of the policy stays, as \
         statements nobody holds, and that resource's Delete then leaves what it no longer \
         holds), or remove the whole policy from that stack first",
        describe(.holder)
    )]
    OwnedWhole { target: String, holder: Holder },
    /// A whole-policy Create on a target statement resources share (CONTRACT 11).
    #[error(
        "{target} has a policy shared by statement resources ({}); a whole-policy resource \
         takes it over only with Adopt: true (their Deletes then leave it in place), or \
         remove those statement resources first",
        held_by(.held)
    )]
    HeldByStatements {
        target: String,
        held: Vec<(String, Holder)>,
    },
    #[error(
        "PhysicalResourceId {} was not issued by this provider, so it cannot be updated; \
         replace the resource (give it a new logical id) to let this provider manage it",
        crate::text::quote(.0)
    )]
    ForeignPhysicalId(String),
    #[error(
        "PhysicalResourceId {} is that of a create that failed, so there is nothing to \
         update; delete the resource and create it again",
        crate::text::quote(.0)
    )]
    UpdateOfFailedCreate(String),
    #[error(
        "PhysicalResourceId {} names a whole policy or statements, and the properties now \
         ask for the other kind; a resource cannot change kind: give it a new logical id",
        crate::text::quote(.0)
    )]
    KindChanged(String),
    #[error(
        "{target} already has statements with Sid {} that differ from this resource's; set \
         Adopt: true to take them over (they are then replaced, and removed with the stack), \
         or give this resource's statements other Sids",
        crate::text::quote_all(.sids)
    )]
    SidsDiffer { target: String, sids: Vec<String> },
    #[error(
        "with these statements the policy of {target} would be {chars} characters long; ECR \
         accepts at most {MAX_POLICY_CHARS}, so the statements do not fit: shorten them, \
         merge them, or move grants to IAM policies. Nothing was written."
    )]
    MergedTooLong { target: String, chars: usize },
    #[error(
        "the live policy of {0} is not a JSON object, so no statement can be merged into it; \
         replace it with a whole-policy resource (Adopt: true) or delete it first"
    )]
    LiveNotJson(String),
    #[error(
        "statement resources need the lock table: set the function's {TABLE_VARIABLE} \
         environment variable to the DynamoDB table that template.yaml creates (deploying \
         with template.yaml sets it)"
    )]
    NoLockTable,
    #[error(
        "another change to {target} held its lock for all of the {} s this request could \
         wait; nothing was changed. Retry the stack operation.",
        .waited.as_secs()
    )]
    Busy { target: String, waited: Duration },
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error(
        "the PhysicalResourceId naming these Sids would be {0} bytes long; CloudFormation \
         allows 1024: split the statements over several resources, or shorten their Sids"
    )]
    IdTooLong(usize),
    #[error("{}", rejected_message(.error, *.attempts, .waited, .v1_actions, *.iam_possible, .auth_token))]
    PolicyRejected {
        error: EcrError,
        attempts: u32,
        waited: Duration,
        /// Actions outside the V1 registry scope, for a registry policy whose scope could
        /// not be read.
        v1_actions: Vec<String>,
        /// Whether a principal not yet propagated by IAM could explain the refusal (the
        /// only case that is retried).
        iam_possible: bool,
        /// The statements of a repository policy that grant `ecr:GetAuthorizationToken`,
        /// the likely cause (CONTRACT 12). Boxed: it keeps every `Failure` small.
        auth_token: Box<[String]>,
    },
    #[error(
        "the request did not finish within the {} s left before the function's timeout; \
         ECR did not answer in time. Nothing more will be changed by this request; retry the \
         stack operation, and if this repeats raise the function's Timeout.",
        .0.as_secs()
    )]
    TimedOut(Duration),
    #[error("{}", sentences(&.failure.to_string(), &.undo.to_string()))]
    Undone { failure: Box<Failure>, undo: Undo },
    /// A prefix statement's request that failed in one of its targets (CONTRACT 15):
    /// `failure` names that repository or creation template, `outcome` says what became of
    /// the others. `total` counts the matching repositories, `templates` the templates.
    #[error(
        "prefix {} ({}): {}",
        crate::text::quote(.prefix),
        matches_of_prefix(*.total, *.templates),
        sentences(&.failure.to_string(), .outcome)
    )]
    InPrefix {
        prefix: String,
        total: usize,
        templates: usize,
        failure: Box<Failure>,
        outcome: String,
    },
    /// Not a failure: the work goes on in the next invocation, which is handed this
    /// progress (CONTRACT 15); never a Reason.
    #[error("the work continues in the next invocation of the function")]
    Continues(Box<crate::event::progress::Progress>),
    /// The next invocation could not be started.
    #[error(
        "the work could not continue in the next invocation of the function ({0}); the \
         function's execution role needs lambda:InvokeFunction on the function itself (see \
         IAM permissions in the README). Retry the stack operation"
    )]
    NotContinued(String),
    /// A failure an earlier invocation of the same request met, in its words.
    #[error("{0}")]
    Earlier(String),
    /// Another delivery of the same Create was answered FAILED (the record says so): this
    /// one changes nothing.
    #[error(
        "another delivery of this request was answered FAILED already, and CloudFormation acts on the first answer; this one changed nothing"
    )]
    AnsweredFailed,
    #[error(
        "internal error: the provider panicked ({0}); nothing more will be changed by this request. Please report it with the logs"
    )]
    Panicked(String),
}

/// `20 matching repositories`, with `and 1 creation template` when templates match.
fn matches_of_prefix(repositories: usize, templates: usize) -> String {
    let mut text = format!(
        "{repositories} matching repositor{}",
        if repositories == 1 { "y" } else { "ies" }
    );
    if templates > 0 {
        let s = if templates == 1 { "" } else { "s" };
        text.push_str(&format!(" and {templates} creation template{s}"));
    }
    text
}

/// What became of a Create's write whose outcome was unclear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undo {
    #[error("The new policy had landed after all and was removed again: ECR is as it was.")]
    Removed,
    #[error(
        "The new policy had landed after all and the previous one was put back: ECR is as it was."
    )]
    Restored,
    #[error(
        "Whether the new policy landed could not be checked ({0}): the target may hold it \
         now; look with `aws ecr get-registry-policy` or `get-repository-policy` before retrying."
    )]
    Unknown(String),
}

fn rejected_message(
    error: &EcrError,
    attempts: u32,
    waited: &Duration,
    v1_actions: &[String],
    iam_possible: bool,
    auth_token: &[String],
) -> String {
    let mut message = if !auth_token.is_empty() {
        format!(
            "{error}. The likely cause: {} grant{} ecr:GetAuthorizationToken, which is not a \
             repository action (ECR has been reported to refuse it in a repository policy): \
             remove it there and grant it in the principal's IAM policy instead.",
            auth_token.join(", "),
            if auth_token.len() == 1 { "s" } else { "" }
        )
    } else if iam_possible {
        format!(
            "{error} (tried {attempts} time{} over {} s). If the policy names IAM users, roles \
             or accounts that were just created, IAM may not have propagated them yet: check \
             that every principal exists, or raise IAM_PROPAGATION_TIMEOUT_SECONDS.",
            if attempts == 1 { "" } else { "s" },
            waited.as_secs()
        )
    } else {
        format!(
            "{error}. It names no IAM principal that could still be propagating, so it was not \
             retried: check each Condition and principal against the ECR documentation."
        )
    };
    if !v1_actions.is_empty() {
        message.push_str(&format!(
            " If the registry's policy scope is V1, a registry policy may grant only {}, and \
             this one also grants {}: switch the registry to V2 with `aws ecr \
             put-account-setting --name REGISTRY_POLICY_SCOPE --value V2`, or drop those actions \
             (the function could not read the scope: its role needs ecr:GetAccountSetting).",
            V1_REGISTRY_ACTIONS.join(", "),
            crate::text::quote_all(v1_actions)
        ));
    }
    message
}

/// A holder in the user's words: its logical id and stack name.
pub fn describe(holder: &Holder) -> String {
    if holder.logical.is_empty() {
        format!(
            "another statement resource (created by request {})",
            crate::text::quote(&holder.tag)
        )
    } else {
        format!(
            "{} of stack {}",
            crate::text::quote(&holder.logical),
            crate::text::quote(crate::identity::stack_name(&holder.stack))
        )
    }
}

fn public_statements(statements: &[(String, String)]) -> String {
    let shown = crate::diagnosis::SHOWN_DEFECTS;
    let mut listed: Vec<String> = statements
        .iter()
        .take(shown)
        .map(|(name, why)| format!("{name} lets in every AWS account: {why}"))
        .collect();
    if statements.len() > shown {
        listed.push(format!("and {} more", statements.len() - shown));
    }
    listed.join("; ")
}

fn held_by(held: &[(String, Holder)]) -> String {
    held.iter()
        .map(|(sid, holder)| {
            format!(
                "Sid {} is held by {}",
                crate::text::quote(sid),
                describe(holder)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Two messages as two sentences: the first ends with a full stop before the second starts.
fn sentences(first: &str, second: &str) -> String {
    let first = first.trim_end();
    if first.ends_with('.') {
        format!("{first} {second}")
    } else {
        format!("{first}. {second}")
    }
}
