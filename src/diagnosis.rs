//! Diagnosis: refuse, before any write, what ECR can never accept or what could never work
//! (CONTRACT 10).
//!
//! ECR answers most bad policies with one opaque `Invalid ... policy provided`, the same one it
//! gives for a principal IAM has not propagated yet; and it accepts some registry policies that
//! then break replication in silence. These checks find such defects in the statements
//! themselves, name each by statement (position and `Sid`), value and fix, and serve every
//! resource type: whole documents through [`check`], statement resources through
//! [`check_statements`].
//!
//! They must never refuse what IAM and ECR accept: actions outside the `ecr:` prefix and
//! `Condition` blocks are not judged, `Federated` and `CanonicalUser` principals are left
//! alone, and every shape they do not recognise is left for ECR to judge. The structure
//! (Effect, Action, Principal present) is `policy`'s to check, before these run.

pub mod access;
pub mod actions;

use crate::identity::{arn_fields, valid_account};
use crate::policy::{one_or_many, statements_of};
use crate::text::quote;
use serde_json::{Map, Value};
use std::fmt;

/// The actions a registry policy may grant while the registry's policy scope is V1
/// (ECR user guide, "Private registry permissions").
pub const V1_REGISTRY_ACTIONS: [&str; 3] = [
    "ecr:ReplicateImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];

/// How many defects a `Reason` spells out; the rest are counted.
pub const SHOWN_DEFECTS: usize = 3;

/// Which policy the statements belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A registry permissions policy: `Resource` names repositories of the registry.
    Registry,
    /// A repository policy: it applies to its own repository and has no `Resource`.
    Repository,
}

/// Where the statements will live: the kind of policy and the registry it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub kind: PolicyKind,
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    pub region: &'a str,
    /// The registry's account; `None` when it is not known yet, and then any 12-digit
    /// account (or a wildcard that may match one) is accepted.
    pub account: Option<&'a str>,
}

/// Which of CONTRACT 10's checks found a defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// An `ecr:` action (or wildcard) that names no ECR action.
    UnknownAction,
    /// `Resource` or `NotResource` in a repository policy.
    ResourceInRepositoryPolicy,
    /// A registry policy `Resource` that is not a repository ARN of this registry.
    ForeignResource,
    /// An `AWS` or `Service` principal that cannot exist.
    ImpossiblePrincipal,
}

/// One defect: the statement (1-based position and `Sid`), the check, and the problem with
/// its fix, every value in it quoted through [`quote`] and so shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub position: usize,
    pub sid: Option<String>,
    pub check: Check,
    pub problem: String,
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statement {}", self.position)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {})", quote(sid))?;
        }
        write!(f, " {}", self.problem)
    }
}

/// Every defect found, in statement order. `Display` spells out the first
/// [`SHOWN_DEFECTS`], `"; "`-joined, and counts the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defects(pub Vec<Defect>);

impl fmt::Display for Defects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, defect) in self.0.iter().take(SHOWN_DEFECTS).enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{defect}")?;
        }
        if self.0.len() > SHOWN_DEFECTS {
            write!(f, " (and {} more)", self.0.len() - SHOWN_DEFECTS)?;
        }
        Ok(())
    }
}

impl std::error::Error for Defects {}

/// Checks a whole policy document: its `Statement`, an object or a list.
pub fn check(document: &Map<String, Value>, scope: &Scope) -> Result<(), Defects> {
    check_statements(statements_of(document), scope)
}

/// Checks statements, numbered from 1 in the order given. Anything that is not an object is
/// skipped: structure is checked before.
pub fn check_statements(statements: &[Value], scope: &Scope) -> Result<(), Defects> {
    let mut defects = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        if let Some(map) = statement.as_object() {
            check_statement(index + 1, map, scope, &mut defects);
        }
    }
    if defects.is_empty() {
        Ok(())
    } else {
        Err(Defects(defects))
    }
}

/// The `Action` entries, as written, of a registry policy that reach beyond what a V1 policy
/// scope allows ([`V1_REGISTRY_ACTIONS`]): an `ecr:` wildcard counts when one of the catalog
/// actions it matches is beyond V1 (`ecr:*` is, `ecr:Replicate*` is not); any other service's
/// action, and `*`, are beyond V1. A `NotAction` statement grants everything it does not
/// list, so it is reported as `everything but <its entries> (NotAction)` unless it lists
/// `*`. Entries appear once, in document order.
pub fn actions_beyond_v1(document: &Map<String, Value>) -> Vec<String> {
    statements_beyond_v1(statements_of(document))
}

/// [`actions_beyond_v1`] for a list of statements.
pub fn statements_beyond_v1(statements: &[Value]) -> Vec<String> {
    let mut beyond: Vec<String> = Vec::new();
    let mut push = |entry: String| {
        if !beyond.contains(&entry) {
            beyond.push(entry);
        }
    };
    for map in statements.iter().filter_map(Value::as_object) {
        if let Some(listed) = map.get("Action") {
            for entry in strings(listed) {
                if action_beyond_v1(entry) {
                    push(entry.to_owned());
                }
            }
        }
        if let Some(excluded) = map.get("NotAction") {
            let entries: Vec<&str> = strings(excluded).collect();
            if !entries.contains(&"*") {
                push(format!("everything but {} (NotAction)", entries.join(", ")));
            }
        }
    }
    beyond
}

fn action_beyond_v1(entry: &str) -> bool {
    if !actions::has_ecr_prefix(entry) {
        return true;
    }
    actions::matching(entry)
        .iter()
        .any(|action| !V1_REGISTRY_ACTIONS.contains(action))
}

/// `*` and `?` wildcard matching, as IAM matches actions and ARNs: `*` stands for any run of
/// characters (colons included), `?` for exactly one. Case-sensitive: callers fold case
/// where IAM does.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The string entries of a value that is a string or a list.
fn strings(value: &Value) -> impl Iterator<Item = &str> {
    one_or_many(value).iter().filter_map(Value::as_str)
}

fn check_statement(
    position: usize,
    statement: &Map<String, Value>,
    scope: &Scope,
    out: &mut Vec<Defect>,
) {
    let sid = statement.get("Sid").and_then(Value::as_str);
    let mut push = |check: Check, problem: String| {
        out.push(Defect {
            position,
            sid: sid.map(str::to_owned),
            check,
            problem,
        })
    };
    for key in ["Action", "NotAction"] {
        for entry in statement.get(key).map(strings).into_iter().flatten() {
            if let Some(problem) = unknown_action(key, entry) {
                push(Check::UnknownAction, problem);
            }
        }
    }
    for key in ["Resource", "NotResource"] {
        let Some(value) = statement.get(key) else {
            continue;
        };
        match scope.kind {
            PolicyKind::Repository => push(
                Check::ResourceInRepositoryPolicy,
                format!(
                    "has {key} {}, but a repository policy applies to its own repository and \
                     ECR refuses {key} in it: remove {key}",
                    describe(value)
                ),
            ),
            // What a statement leaves out may lie anywhere: a Deny over every region but
            // some lists other regions' repositories on purpose.
            PolicyKind::Registry if key == "NotResource" => {}
            PolicyKind::Registry => {
                for entry in strings(value) {
                    if let Err(why) = registry_resource(entry, scope) {
                        push(
                            Check::ForeignResource,
                            format!(
                                "has {key} {}, which is not a repository of this registry \
                                 ({why}); use {} (or \"*\")",
                                quote(entry),
                                expected_resource(scope)
                            ),
                        );
                    }
                }
            }
        }
    }
    for key in ["Principal", "NotPrincipal"] {
        let Some(value) = statement.get(key) else {
            continue;
        };
        let place = if key == "Principal" {
            String::new()
        } else {
            format!(" in {key}")
        };
        match value {
            Value::String(text) if text == "*" => {}
            Value::String(text) => push(
                Check::ImpossiblePrincipal,
                format!(
                    "has {key} {}, which cannot exist: a {key} given as a string can only be \
                     \"*\"; name an account, user or role as {{\"AWS\": {}}}",
                    quote(text),
                    quote(text)
                ),
            ),
            Value::Object(map) => {
                for entry in map.get("AWS").map(one_or_many).into_iter().flatten() {
                    let text = match entry {
                        Value::String(text) => text.clone(),
                        // CloudFormation sends numbers as strings; IAM reads both the same.
                        Value::Number(number) => number.to_string(),
                        _ => continue,
                    };
                    if let Err(why) = aws_principal(&text) {
                        push(
                            Check::ImpossiblePrincipal,
                            format!(
                                "has AWS principal {}{place}, which cannot exist ({why}); use \
                                 \"*\", a 12-digit account id, or an IAM or STS ARN such as \
                                 \"arn:{}:iam::111122223333:root\"",
                                quote(&text),
                                scope.partition
                            ),
                        );
                    }
                }
                for entry in map.get("Service").map(strings).into_iter().flatten() {
                    if let Err(why) = service_principal(entry) {
                        push(
                            Check::ImpossiblePrincipal,
                            format!(
                                "has Service principal {}{place}, which cannot exist ({why}); \
                                 a service principal is the service's host name, such as \
                                 \"codebuild.amazonaws.com\"",
                                quote(entry)
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn unknown_action(key: &str, action: &str) -> Option<String> {
    if !actions::has_ecr_prefix(action) || actions::is_known(action) {
        return None;
    }
    let quoted = quote(action);
    Some(if action.contains(['*', '?']) {
        format!(
            "has {key} {quoted}, which matches no ECR action; correct the pattern, or list the \
             actions (the Service Authorization Reference for Amazon ECR names them all)"
        )
    } else if let Some(meant) = actions::closest(action) {
        format!("has {key} {quoted}, which is not an ECR action; did you mean {meant:?}?")
    } else {
        format!(
            "has {key} {quoted}, which is not an ECR action; use one the Service \
             Authorization Reference for Amazon ECR names, such as \"ecr:BatchGetImage\""
        )
    })
}

/// A short, shortened rendering of a `Resource` value for a message.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => quote(text),
        Value::Array(items) => {
            let mut shown: Vec<String> = items
                .iter()
                .take(2)
                .map(|item| match item {
                    Value::String(text) => quote(text),
                    other => other.to_string().chars().take(20).collect(),
                })
                .collect();
            if items.len() > 2 {
                shown.push("…".to_owned());
            }
            format!("[{}]", shown.join(", "))
        }
        other => other.to_string().chars().take(20).collect(),
    }
}

fn expected_resource(scope: &Scope) -> String {
    format!(
        "\"arn:{}:ecr:{}:{}:repository/<name or prefix*>\"",
        scope.partition,
        scope.region,
        scope.account.unwrap_or("<account id>")
    )
}

/// Why a registry policy `Resource` entry is not a repository ARN of the scope's registry.
fn registry_resource(entry: &str, scope: &Scope) -> Result<(), String> {
    if entry == "*" {
        return Ok(());
    }
    let fields = arn_fields(entry);
    if fields.len() == 5 && fields[0] == "arn" {
        return Err(format!(
            "it has 5 colon-separated fields, not 6: is \"ecr\" missing after {}?",
            quote(fields[1])
        ));
    }
    if fields.len() != 6 || !field_matches(fields[0], "arn") {
        return Err("it is not an ARN".to_owned());
    }
    let [_, partition, service, region, account, resource] = fields[..] else {
        return Err("it is not an ARN".to_owned());
    };
    if !field_matches(partition, scope.partition) {
        return Err(format!(
            "its partition is {}, not {}",
            quote(partition),
            scope.partition
        ));
    }
    if !field_matches(service, "ecr") {
        return Err(format!("its service is {}, not ecr", quote(service)));
    }
    if !field_matches(region, scope.region) {
        return Err(format!(
            "its region is {}, but the registry is in {}",
            quote(region),
            scope.region
        ));
    }
    match scope.account {
        Some(registry) if !field_matches(account, registry) => {
            return Err(format!(
                "its account is {}, but the registry is account {registry}",
                quote(account)
            ));
        }
        None if !may_be_account(account) => {
            return Err(format!(
                "its account {} is not a 12-digit account id",
                quote(account)
            ));
        }
        _ => {}
    }
    match resource.strip_prefix("repository/") {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(format!(
            "it names {}, not repositories (repository/…)",
            quote(resource)
        )),
    }
}

/// A field matches when its wildcard pattern matches the value; a policy variable can stand
/// for anything, so it is not judged.
fn field_matches(field: &str, value: &str) -> bool {
    field.contains("${") || wildcard_match(field, value)
}

/// True when an account field may match some 12-digit account id.
fn may_be_account(field: &str) -> bool {
    if field.contains("${") {
        return true;
    }
    let fixed = field.chars().filter(|&c| c != '*').count();
    field
        .chars()
        .all(|c| c.is_ascii_digit() || c == '*' || c == '?')
        && if field.contains('*') {
            fixed <= 12
        } else {
            fixed == 12
        }
}

/// Why an `AWS` principal cannot exist: it must be `*`, a 12-digit account id, or an IAM or
/// STS ARN of a 12-digit account.
fn aws_principal(text: &str) -> Result<(), String> {
    if text == "*" || valid_account(text) {
        return Ok(());
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "an account id has 12 digits, this one {}",
            text.len()
        ));
    }
    let [arn, partition, service, region, account, resource] = arn_fields(text)[..] else {
        if service_principal(text).is_ok() {
            return Err("it is a service's host name: write it as {\"Service\": …}".to_owned());
        }
        return Err("it is neither an account id nor an ARN".to_owned());
    };
    if arn != "arn" || partition.is_empty() {
        return Err("it is not an ARN".to_owned());
    }
    if service != "iam" && service != "sts" {
        return Err(format!(
            "it is an ARN of service {}, not of iam or sts",
            quote(service)
        ));
    }
    if !region.is_empty() {
        return Err(format!(
            "an {service} ARN has no region, this one has {}",
            quote(region)
        ));
    }
    if !valid_account(account) {
        return Err(format!(
            "its account id {} is not 12 digits",
            quote(account)
        ));
    }
    if resource.is_empty() {
        return Err("it names no user, role or root after the account id".to_owned());
    }
    Ok(())
}

/// Why a `Service` principal cannot exist: it must be a host name, lowercase labels of
/// letters, digits and hyphens joined by at least one dot (`codebuild.amazonaws.com`).
/// A bare `"*"` is let through: IAM documents `"*"` only as the whole `Principal`, but
/// whether ECR refuses `{"Service": "*"}` is not documented, so ECR judges it.
fn service_principal(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    if text.starts_with("arn:") {
        return Err(
            "it is an ARN: name accounts, users and roles as {\"AWS\": …}, not as Service"
                .to_owned(),
        );
    }
    let labels: Vec<&str> = text.split('.').collect();
    let well_formed = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if well_formed {
        Ok(())
    } else {
        Err("it is not a host name of lowercase letters, digits, hyphens and dots".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REGISTRY: Scope<'static> = Scope {
        kind: PolicyKind::Registry,
        partition: "aws",
        region: "us-east-1",
        account: Some("123456789012"),
    };
    const REPOSITORY: Scope<'static> = Scope {
        kind: PolicyKind::Repository,
        ..REGISTRY
    };
    const UNKNOWN_ACCOUNT: Scope<'static> = Scope {
        account: None,
        ..REGISTRY
    };

    fn statement(extra: Value) -> Value {
        let mut s =
            json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
        for (k, v) in extra.as_object().expect("object") {
            s[k] = v.clone();
        }
        s
    }

    /// The defects one statement gets in a scope, as `Reason` text.
    fn defects(scope: &Scope, extra: Value) -> Result<(), String> {
        check_statements(&[statement(extra)], scope).map_err(|d| d.to_string())
    }

    fn refused(scope: &Scope, extra: Value, fragment: &str) {
        let reason = defects(scope, extra.clone()).expect_err(&format!("{extra} is refused"));
        assert!(reason.contains(fragment), "{extra}: {reason}");
        assert!(reason.starts_with("statement 1 (Sid \"S\") "), "{reason}");
    }

    fn accepted(scope: &Scope, extra: Value) {
        if let Err(reason) = defects(scope, extra.clone()) {
            panic!("{extra} was refused: {reason}");
        }
    }

    #[test]
    fn a_misspelt_action_is_refused_with_the_nearest_real_one() {
        refused(
            &REPOSITORY,
            json!({"Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImages"]}),
            "has Action \"ecr:BatchGetImages\", which is not an ECR action; did you mean \"ecr:BatchGetImage\"?",
        );
        refused(
            &REGISTRY,
            json!({"NotAction": "ecr:ReplicateImages"}),
            "has NotAction \"ecr:ReplicateImages\", which is not an ECR action; did you mean \"ecr:ReplicateImage\"?",
        );
        refused(
            &REPOSITORY,
            json!({"Action": "ecr:DoEverything"}),
            "which is not an ECR action; use one the Service Authorization Reference",
        );
        refused(
            &REPOSITORY,
            json!({"Action": "ECR:Bacth*"}),
            "has Action \"ECR:Bacth*\", which matches no ECR action",
        );
        // The nearest valid forms.
        accepted(&REPOSITORY, json!({"Action": ["ecr:BatchGetImage"]}));
        accepted(&REGISTRY, json!({"NotAction": "ecr:ReplicateImage"}));
        accepted(&REPOSITORY, json!({"Action": "ECR:batchgetimage"}));
        accepted(
            &REPOSITORY,
            json!({"Action": ["ecr:Batch*", "ecr:*", "ecr:Put?mage"]}),
        );
    }

    #[test]
    fn other_services_actions_are_not_judged() {
        accepted(
            &REPOSITORY,
            json!({"Action": ["s3:GetObjectz", "*", "ecr-public:Nothing", "sts:AssumeRole", " ecr:x"]}),
        );
    }

    #[test]
    fn a_repository_policy_with_resource_is_refused() {
        refused(
            &REPOSITORY,
            json!({"Resource": "*"}),
            "has Resource \"*\", but a repository policy applies to its own repository and ECR refuses Resource in it: remove Resource",
        );
        refused(
            &REPOSITORY,
            json!({"NotResource": ["arn:aws:ecr:us-east-1:123456789012:repository/a", "b", "c"]}),
            "has NotResource [\"arn:aws:ecr:us-east-1:123456789012:repository/a\", \"b\", …]",
        );
        // The nearest valid form: the same statement without Resource.
        accepted(&REPOSITORY, json!({}));
    }

    #[test]
    fn registry_resources_must_be_repositories_of_this_registry() {
        let cases = [
            (
                "arn:aws:us-east-1:123456789012:repository/*",
                "(it has 5 colon-separated fields, not 6: is \"ecr\" missing after \"aws\"?)",
            ),
            (
                "arn:aws:ecr:us-west-2:123456789012:repository/*",
                "(its region is \"us-west-2\", but the registry is in us-east-1)",
            ),
            (
                "arn:aws:ecr:us-east-1:444455556666:repository/*",
                "(its account is \"444455556666\", but the registry is account 123456789012)",
            ),
            (
                "arn:aws:ecr:us-east-1:123456789012:*",
                "(it names \"*\", not repositories (repository/…))",
            ),
            (
                "arn:aws:ecr:us-east-1:123456789012:repository/",
                "it names \"repository/\"",
            ),
            (
                "arn:aws:s3:us-east-1:123456789012:repository/*",
                "(its service is \"s3\", not ecr)",
            ),
            (
                "arn:aws-cn:ecr:us-east-1:123456789012:repository/*",
                "(its partition is \"aws-cn\", not aws)",
            ),
            ("repository/*", "(it is not an ARN)"),
            ("arn:aws:ecr", "(it is not an ARN)"),
        ];
        for (resource, why) in cases {
            refused(&REGISTRY, json!({"Resource": resource}), why);
            refused(
                &REGISTRY,
                json!({"Resource": resource}),
                "; use \"arn:aws:ecr:us-east-1:123456789012:repository/<name or prefix*>\" (or \"*\")",
            );
        }
        // NotResource names what is left out, which may be anywhere.
        accepted(
            &REGISTRY,
            json!({"Effect": "Deny", "NotResource": ["arn:aws:ecr:eu-west-1:123456789012:repository/*", "arn:aws:ecr:us-west-2:444455556666:repository/*"]}),
        );
        // The nearest valid forms.
        for resource in [
            "*",
            "arn:aws:ecr:us-east-1:123456789012:repository/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/prod-*",
            "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/amazonlinux/amazonlinux",
            "arn:*:ecr:*:*:repository/*",
            "arn:aws:ecr:us-*:1234567890??:repository/a?",
            "arn:aws:ecr:us-east-1:${aws:PrincipalAccount}:repository/${aws:username}/*",
        ] {
            accepted(&REGISTRY, json!({"Resource": [resource]}));
            accepted(&REGISTRY, json!({"NotResource": resource}));
        }
    }

    #[test]
    fn an_unknown_account_accepts_any_12_digit_account_or_wildcard() {
        for resource in [
            "arn:aws:ecr:us-east-1:444455556666:repository/*",
            "arn:aws:ecr:us-east-1:*:repository/*",
            "arn:aws:ecr:us-east-1:4444*:repository/*",
            "arn:aws:ecr:us-east-1:44445555666?:repository/*",
        ] {
            accepted(&UNKNOWN_ACCOUNT, json!({"Resource": resource}));
        }
        for (resource, why) in [
            (
                "arn:aws:ecr:us-east-1:44445555666:repository/*",
                "its account \"44445555666\" is not a 12-digit account id",
            ),
            (
                "arn:aws:ecr:us-east-1::repository/*",
                "its account \"\" is not a 12-digit account id",
            ),
            (
                "arn:aws:ecr:us-east-1:my-account:repository/*",
                "its account \"my-account\"",
            ),
            (
                "arn:aws:ecr:us-east-1:1234567890123*:repository/*",
                "is not a 12-digit",
            ),
        ] {
            refused(&UNKNOWN_ACCOUNT, json!({"Resource": resource}), why);
        }
        refused(
            &UNKNOWN_ACCOUNT,
            json!({"Resource": "arn:aws:ecr:us-east-1:44445555666:repository/*"}),
            "use \"arn:aws:ecr:us-east-1:<account id>:repository/<name or prefix*>\"",
        );
    }

    #[test]
    fn aws_principals_that_cannot_exist_are_refused() {
        let cases = [
            ("12345678901", "(an account id has 12 digits, this one 11)"),
            (
                "arn:aws:iam::12345678901:root",
                "(its account id \"12345678901\" is not 12 digits)",
            ),
            (
                "arn:aws:sts::1234567890123:assumed-role/r/s",
                "(its account id \"1234567890123\" is not 12 digits)",
            ),
            (
                "arn:aws:s3:::bucket",
                "(it is an ARN of service \"s3\", not of iam or sts)",
            ),
            (
                "arn:aws:iam:us-east-1:123456789012:root",
                "(an iam ARN has no region, this one has \"us-east-1\")",
            ),
            (
                "arn:aws:iam::123456789012:",
                "(it names no user, role or root after the account id)",
            ),
            ("root", "(it is neither an account id nor an ARN)"),
            ("", "(it is neither an account id nor an ARN)"),
            (
                "codebuild.amazonaws.com",
                "(it is a service's host name: write it as {\"Service\": …})",
            ),
            ("ARN:aws:iam::123456789012:root", "(it is not an ARN)"),
        ];
        for (principal, why) in cases {
            refused(
                &REPOSITORY,
                json!({"Principal": {"AWS": ["arn:aws:iam::123456789012:root", principal]}}),
                &format!(
                    "has AWS principal {}, which cannot exist {why}",
                    quote(principal)
                ),
            );
        }
        refused(
            &REGISTRY,
            json!({"Principal": {"AWS": 12345678901u64}}),
            "has AWS principal \"12345678901\", which cannot exist",
        );
        refused(
            &REGISTRY,
            json!({"Principal": null, "NotPrincipal": {"AWS": "arn:aws:iam::12345678901:root"}}),
            "has AWS principal \"arn:aws:iam::12345678901:root\" in NotPrincipal, which cannot exist",
        );
        refused(
            &REPOSITORY,
            json!({"Principal": "arn:aws:iam::123456789012:root"}),
            "has Principal \"arn:aws:iam::123456789012:root\", which cannot exist: a Principal given as a string can only be \"*\"; name an account, user or role as {\"AWS\": \"arn:aws:iam::123456789012:root\"}",
        );
        // The nearest valid forms.
        for principal in [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": "123456789012"}),
            json!({"AWS": 123456789012u64}),
            json!({"AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::111122223333:user/push-pull-user-1"]}),
            json!({"AWS": "arn:aws:iam::123456789012:role/service-role/my-role"}),
            json!({"AWS": "arn:aws:sts::123456789012:assumed-role/my-role/session"}),
            json!({"AWS": "arn:aws-cn:iam::123456789012:root"}),
            json!({"AWS": "arn:aws-us-gov:iam::123456789012:root"}),
        ] {
            accepted(&REPOSITORY, json!({"Principal": principal.clone()}));
            accepted(
                &REGISTRY,
                json!({"Principal": null, "NotPrincipal": principal}),
            );
        }
    }

    #[test]
    fn service_principals_must_be_host_names() {
        for (service, why) in [
            ("codebuild", "(it is not a host name"),
            ("CodeBuild.amazonaws.com", "(it is not a host name"),
            ("codebuild.amazonaws.com ", "(it is not a host name"),
            ("codebuild..amazonaws.com", "(it is not a host name"),
            ("", "(it is not a host name"),
            (
                "arn:aws:iam::123456789012:role/x",
                "(it is an ARN: name accounts, users and roles as {\"AWS\": …}, not as Service)",
            ),
        ] {
            refused(
                &REPOSITORY,
                json!({"Principal": {"Service": [service]}}),
                &format!(
                    "has Service principal {}, which cannot exist {why}",
                    quote(service)
                ),
            );
        }
        refused(
            &REPOSITORY,
            json!({"Principal": {"Service": "codebuild"}}),
            "a service principal is the service's host name, such as \"codebuild.amazonaws.com\"",
        );
        // The nearest valid forms, and `*` (see service_principal).
        for service in [
            "codebuild.amazonaws.com",
            "ecs-tasks.amazonaws.com",
            "replication.ecr.amazonaws.com",
            "lambda.amazonaws.com.cn",
            "*",
        ] {
            accepted(&REPOSITORY, json!({"Principal": {"Service": service}}));
        }
    }

    #[test]
    fn federated_canonical_user_and_conditions_are_not_judged() {
        accepted(
            &REPOSITORY,
            json!({"Principal": {"Federated": "not even a provider", "CanonicalUser": "?"},
                   "Condition": {"StringEquals": {"ecr:nonsense": "x", "aws:SourceAccount": "1"}}}),
        );
        accepted(&REPOSITORY, json!({"Principal": {"AWS": [true, null, {}]}}));
        accepted(&REPOSITORY, json!({"Principal": ["list", "not", "judged"]}));
    }

    #[test]
    fn every_defect_names_its_statement_and_is_counted_past_three() {
        let statements = [
            json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}),
            json!({"Sid": "Two", "Effect": "Allow", "Principal": {"AWS": "12345678901"}, "Action": ["ecr:PutImages", "ecr:BatchGetImages"]}),
            "not an object".into(),
            json!({"Effect": "Deny", "Principal": "*", "Action": "ecr:Nope", "Resource": "*"}),
        ];
        let found = check_statements(&statements, &REPOSITORY).expect_err("defects");
        let summary: Vec<(usize, Option<&str>, Check)> = found
            .0
            .iter()
            .map(|d| (d.position, d.sid.as_deref(), d.check))
            .collect();
        assert_eq!(
            summary,
            [
                (2, Some("Two"), Check::UnknownAction),
                (2, Some("Two"), Check::UnknownAction),
                (2, Some("Two"), Check::ImpossiblePrincipal),
                (4, None, Check::UnknownAction),
                (4, None, Check::ResourceInRepositoryPolicy),
            ]
        );
        let reason = found.to_string();
        assert!(
            reason.starts_with(
                "statement 2 (Sid \"Two\") has Action \"ecr:PutImages\", which is not an ECR action; did you mean \"ecr:PutImage\"?; statement 2 (Sid \"Two\") has Action \"ecr:BatchGetImages\""
            ),
            "{reason}"
        );
        assert!(reason.ends_with(" (and 2 more)"), "{reason}");
        assert_eq!(reason.matches("; statement").count(), 2, "{reason}");
    }

    #[test]
    fn long_values_are_shortened_in_the_reason() {
        let sid = "S".repeat(2500);
        let action = format!("ecr:{}", "x".repeat(9000));
        let statements = [
            json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": "1".repeat(3000)}, "Action": action, "Resource": "r".repeat(4000)}),
        ];
        let reason = check_statements(&statements, &REPOSITORY)
            .expect_err("defects")
            .to_string();
        assert!(reason.len() < 1500, "{}: {reason}", reason.len());
        assert!(reason.contains(&format!("(Sid \"{}…\")", "S".repeat(79))));
        assert!(reason.contains("has Resource"), "{reason}");
    }

    #[test]
    fn check_reads_a_single_statement_object_or_a_list() {
        let bad = json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:Nope"});
        for document in [
            json!({"Statement": bad.clone()}),
            json!({"Version": "2012-10-17", "Statement": [bad]}),
        ] {
            let map = document.as_object().expect("object");
            let found = check(map, &REPOSITORY).expect_err("defect");
            assert_eq!(found.0.len(), 1);
            assert_eq!(found.0[0].position, 1);
        }
        let empty = json!({"Version": "2012-10-17"});
        assert_eq!(check(empty.as_object().expect("object"), &REGISTRY), Ok(()));
    }

    #[test]
    fn wildcards_match_as_iam_matches() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "anything:at/all"),
            ("a*", "a"),
            ("a*c", "abbbc"),
            ("a?c", "abc"),
            ("*b*", "abc"),
            ("a*b*c", "aXbYbZc"),
            ("us-*", "us-east-1"),
            ("repository/*", "repository/a/b"),
            ("??????????12", "123456789012"),
            ("é?", "éü"),
        ] {
            assert!(wildcard_match(pattern, text), "{pattern} ~ {text}");
        }
        for (pattern, text) in [
            ("", "a"),
            ("a", ""),
            ("a?c", "ac"),
            ("a*c", "abcd"),
            ("A", "a"),
            ("us-*-2", "us-east-1"),
            ("?", ""),
        ] {
            assert!(!wildcard_match(pattern, text), "{pattern} !~ {text}");
        }
    }

    #[test]
    fn actions_beyond_v1_expand_wildcards_against_the_catalog() {
        let document = json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["ecr:ReplicateImage", "ECR:createrepository", "ecr:Replicate*", "ecr:BatchImportUpstreamImage"]},
            {"Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:*", "ecr:Create*", "s3:GetObject", "*", "ecr:BatchGetImage"]},
            {"Effect": "Allow", "Principal": "*", "NotAction": ["ecr:PutImage", "ecr:DeleteRepository"]},
            {"Effect": "Deny", "Principal": "*", "NotAction": "*"},
        ]});
        assert_eq!(
            actions_beyond_v1(document.as_object().expect("object")),
            [
                "ecr:BatchGetImage",
                "ecr:*",
                "ecr:Create*",
                "s3:GetObject",
                "*",
                "everything but ecr:PutImage, ecr:DeleteRepository (NotAction)",
            ]
        );
        let v1 = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": V1_REGISTRY_ACTIONS}});
        assert!(actions_beyond_v1(v1.as_object().expect("object")).is_empty());
    }
}
