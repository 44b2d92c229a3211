//! The checks before the write (CONTRACT 10 and 12): what refuses a policy, what is only a
//! warning, and whether the live policy already holds what a resource asks for, so that a
//! refusal judges only what would be written and never wedges a stack.

use super::Settings;
use crate::diagnosis::access::{self, PublicAccess};
use crate::diagnosis::{self, PolicyKind, Scope};
use crate::error::Failure;
use crate::event::{Content, Desired};
use crate::identity::{Target, account_of_stack, partition, repository_arn, valid_account};
use crate::policy::{Policy, one_or_many, sid_of, statement_equivalent};
use crate::text::shorten;
use serde_json::Value;

/// The action that has no effect in a repository policy (it is not a repository action).
pub const AUTH_TOKEN_ACTION: &str = "ecr:GetAuthorizationToken";

/// The longest warning `Data.Warnings` carries, in characters, and how many it lists.
const MAX_WARNING_CHARS: usize = 600;
const MAX_WARNINGS: usize = 5;

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Why the policy must not be written, unless the live one already holds it.
    pub refusal: Option<Failure>,
    /// What is noticed and not refused.
    pub warnings: Vec<String>,
}

impl Findings {
    /// The refusal, kept as a warning: the live policy already holds what is asked for.
    pub fn forgive(&mut self) {
        if let Some(refusal) = self.refusal.take() {
            self.warnings.push(format!(
                "kept as it is, because the live policy already holds it: {refusal}"
            ));
        }
    }

    /// `Data.Warnings`: the warnings, each shortened, `"; "`-joined; `None` without any.
    pub fn data(&self) -> Option<String> {
        if self.warnings.is_empty() {
            return None;
        }
        let mut listed: Vec<String> = self
            .warnings
            .iter()
            .take(MAX_WARNINGS)
            .map(|w| shorten(w, MAX_WARNING_CHARS))
            .collect();
        if self.warnings.len() > MAX_WARNINGS {
            listed.push(format!("and {} more", self.warnings.len() - MAX_WARNINGS));
        }
        Some(listed.join("; "))
    }

    /// One log line per warning.
    pub fn log(&self) {
        for warning in &self.warnings {
            tracing::warn!(warning = %warning, "policy warning");
        }
    }
}

/// Checks what a resource asks for, before any ECR call: the defects of CONTRACT 10, then
/// public access (CONTRACT 12); warnings for service principals without a source condition
/// and for `ecr:GetAuthorizationToken` in a repository policy.
pub fn judge(desired: &Desired, stack_id: &str, settings: &Settings) -> Findings {
    let target = &desired.target;
    let account = Some(account_of_stack(stack_id)).filter(|a| valid_account(a));
    let partition = partition(stack_id, target.region());
    let kind = if target.holds_repository_policy() {
        PolicyKind::Repository
    } else {
        PolicyKind::Registry
    };
    let scope = Scope {
        kind,
        partition: &partition,
        region: target.region(),
        account,
    };
    let (property, statements) = match &desired.content {
        Content::Policy(policy) => ("PolicyText", policy.statements()),
        Content::Statements(statements) => ("Statement", statements.items()),
    };
    let mut findings = Findings::default();
    if let Err(defects) = diagnosis::check_statements(statements, &scope) {
        findings.refusal = Some(Failure::Defective { property, defects });
    }
    let analyzed = access::analyze(statements, account);
    let public: Vec<(String, String)> = analyzed
        .iter()
        .filter_map(|s| Some((s.name(), s.public.clone()?)))
        .collect();
    let allowed = desired.allow_public || settings.public_access == PublicAccess::Allow;
    if !public.is_empty() && !allowed && findings.refusal.is_none() {
        findings.refusal = Some(Failure::Public {
            target: target_name(target, account, &partition),
            statements: public,
        });
    }
    for statement in &analyzed {
        for service in &statement.unlimited_services {
            findings.warnings.push(format!(
                "{} lets in service {} with no aws:SourceAccount or aws:SourceArn condition, so \
                 that service acting for any account can reach it; add a condition such as \
                 \"StringEquals\": {{\"aws:SourceAccount\": \"{}\"}}",
                statement.name(),
                crate::text::quote(service),
                account.unwrap_or("<your account id>")
            ));
        }
    }
    if kind == PolicyKind::Repository {
        for name in auth_token_statements(statements) {
            findings.warnings.push(format!(
                "{name} grants {AUTH_TOKEN_ACTION}, which is not a repository action and has \
                 no effect in a repository policy (grant it in the principal's IAM policy); \
                 ECR has been reported to refuse it there"
            ));
        }
    }
    findings
}

/// The statements (by position and Sid) whose `Action` names `ecr:GetAuthorizationToken`.
pub fn auth_token_statements(statements: &[Value]) -> Vec<String> {
    statements
        .iter()
        .enumerate()
        .filter(|(_, statement)| {
            let actions = statement.get("Action").map(one_or_many);
            actions.unwrap_or(&[]).iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(AUTH_TOKEN_ACTION))
            })
        })
        .map(|(index, statement)| statement_name(index, statement))
        .collect()
}

/// "statement 2 (Sid \"Pull\")", from its 0-based index.
fn statement_name(index: usize, statement: &Value) -> String {
    match sid_of(statement) {
        Some(sid) => format!("statement {} (Sid {})", index + 1, crate::text::quote(sid)),
        None => format!("statement {}", index + 1),
    }
}

/// The target as Access Analyzer names it: the repository's ARN; the registry by account
/// and region (a registry has no ARN).
fn target_name(target: &Target, account: Option<&str>, partition: &str) -> String {
    match (target, account) {
        (Target::Repository { region, name }, Some(account)) => {
            repository_arn(partition, region, account, name)
        }
        (Target::Registry { region }, Some(account)) => {
            format!("the registry policy of account {account} in {region}")
        }
        _ => target.describe(),
    }
}

/// A statement resource's statements that use policy variables (`${aws:username}`) going
/// into a live policy whose `Version` is `2008-10-17` or absent, where IAM reads them as
/// literal text: a warning for each (CONTRACT 12).
pub fn variables_in_old_version(desired: &Desired, live: Option<&str>) -> Vec<String> {
    let (Content::Statements(statements), Some(live)) =
        (&desired.content, live.and_then(Policy::from_live))
    else {
        return Vec::new();
    };
    let version = live.document().get("Version").and_then(Value::as_str);
    if version == Some(crate::policy::NEW_POLICY_VERSION) {
        return Vec::new();
    }
    statements
        .items()
        .iter()
        .enumerate()
        .filter(|(_, statement)| statement.to_string().contains("${"))
        .map(|(index, statement)| {
            let name = statement_name(index, statement);
            format!(
                "{name} uses policy variables, but the policy it joins has Version {}, where IAM \
                 reads them as literal text; the policy's Version is not this resource's to \
                 change: set it to \"2012-10-17\" where the policy is managed",
                version.map_or_else(|| "none".to_owned(), crate::text::quote)
            )
        })
        .collect()
}

/// Whether the live policy already holds what the resource asks for: the whole policy
/// equivalent, or each of its statements there once, equivalent (CONTRACT 5).
pub fn unchanged(desired: &Desired, live: Option<&str>) -> bool {
    let Some(live) = live.and_then(Policy::from_live) else {
        return false;
    };
    match &desired.content {
        Content::Policy(policy) => policy.equivalent(&live),
        Content::Statements(statements) => statements.items().iter().all(|ours| {
            let sid = sid_of(ours);
            let there: Vec<&Value> = live
                .statements()
                .iter()
                .filter(|s| sid_of(s) == sid)
                .collect();
            matches!(there.as_slice(), [one] if statement_equivalent(one, ours))
        }),
    }
}
