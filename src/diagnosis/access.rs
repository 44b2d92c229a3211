//! Who gets in (CONTRACT 12): every `Allow` statement classified by whom it lets in, the way
//! IAM Access Analyzer reads resource policies (its public-access check does not take ECR).
//!
//! A statement is **public** when its principal is everyone (`"*"`, `{"AWS": "*"}`, a list
//! holding `"*"`, or `NotPrincipal` with `Allow`) and no condition limits it to named
//! accounts or an organization. A condition limits only when all of these hold:
//! - its key is one of [`LIMITING_KEYS`] (compared without case, as IAM compares keys);
//! - its operator is `StringEquals`, `StringLike`, `ArnEquals` or `ArnLike`, optionally
//!   with `ForAnyValue:`, never with `IfExists` (true when the key is absent) nor with
//!   `ForAllValues:` (true when the key is absent, so it limits nothing: the trap that
//!   scanners miss);
//! - none of its values lets everyone through: a value made of wildcards only (`*`, `?*`),
//!   a policy variable (`${aws:PrincipalAccount}` is every caller's own account), or an ARN
//!   whose account field is such a value (`arn:aws:iam::*:role/ci`); under the operators that
//!   read wildcards (`StringLike`, and `ArnLike` and `ArnEquals`, which IAM reads alike), a
//!   `*` or `?` anywhere in the account or organization id (`"*1"`, `"o-*"`,
//!   `arn:aws:iam::1111*:role/ci`) lets in others too.
//!
//! The conditions count for every kind of principal: a service principal limited by
//! `aws:SourceAccount`, or by an `aws:SourceArn` that names an account, lets that account in
//! (and by `aws:SourceOrgID`/`aws:SourceOrgPaths`, that organization).
//!
//! `Deny` statements are never classified: they take access away.

use crate::identity::valid_account;
use crate::policy::one_or_many;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;

/// The condition keys that can limit a public statement, lowercase.
pub const LIMITING_KEYS: [&str; 8] = [
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
];

/// The operators under which a limiting key limits.
const LIMITING_OPERATORS: [&str; 4] = ["StringEquals", "StringLike", "ArnEquals", "ArnLike"];

/// Keys that hold several values in one request (`ForAnyValue:` is their operator prefix).
const MULTI_VALUED_KEYS: [&str; 2] = ["aws:principalorgpaths", "aws:sourceorgpaths"];

/// Whether the provider refuses public statements (CONTRACT 8, `PUBLIC_ACCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicAccess {
    /// Refuse them unless the resource sets `AllowPublicAccess: true` (the default).
    #[default]
    Block,
    /// Accept them.
    Allow,
}

impl PublicAccess {
    /// Reads `PUBLIC_ACCESS`: `Block` or `Allow` (any case); `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "block" => Some(Self::Block),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// Who one `Allow` statement lets in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementAccess {
    /// 1-based position in the statement list.
    pub position: usize,
    pub sid: Option<String>,
    /// Why it is public, in words; `None` when it is not.
    pub public: Option<String>,
    /// Whether it is public because of `ForAllValues:` on a single-valued key.
    pub for_all_values: bool,
    pub organizations: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub services: BTreeSet<String>,
    /// Service principals without an `aws:SourceAccount`/`aws:SourceArn` limit.
    pub unlimited_services: Vec<String>,
}

impl StatementAccess {
    /// "statement 2 (Sid \"Pull\")".
    pub fn name(&self) -> String {
        match &self.sid {
            Some(sid) => format!(
                "statement {} (Sid {})",
                self.position,
                crate::text::quote(sid)
            ),
            None => format!("statement {}", self.position),
        }
    }
}

/// Who a resource's statements let in, together: `Data.Access` is its `Display`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub public: bool,
    pub organizations: BTreeSet<String>,
    pub accounts: BTreeSet<String>,
    pub services: BTreeSet<String>,
}

impl Access {
    /// The union of the statements' access.
    pub fn of(statements: &[StatementAccess]) -> Self {
        let mut access = Self::default();
        for statement in statements {
            access.public |= statement.public.is_some();
            access
                .organizations
                .extend(statement.organizations.iter().cloned());
            access.accounts.extend(statement.accounts.iter().cloned());
            access.services.extend(statement.services.iter().cloned());
        }
        access
    }
}

/// `public;organization:<ids>;accounts:<ids>;services:<hosts>`, the terms that apply, or
/// `account` when none does (CONTRACT 12).
impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        let mut terms = Vec::new();
        if self.public {
            terms.push("public".to_owned());
        }
        for (name, set) in [
            ("organization", &self.organizations),
            ("accounts", &self.accounts),
            ("services", &self.services),
        ] {
            if !set.is_empty() {
                terms.push(format!("{name}:{}", join(set)));
            }
        }
        if terms.is_empty() {
            f.write_str("account")
        } else {
            f.write_str(&terms.join(";"))
        }
    }
}

/// Classifies every `Allow` statement, numbered from 1 in the order given. `own_account`:
/// the registry's account, whose principals are no external access (`None` when unknown:
/// then every account counts as another).
pub fn analyze(statements: &[Value], own_account: Option<&str>) -> Vec<StatementAccess> {
    statements
        .iter()
        .enumerate()
        .filter_map(|(index, statement)| classify(index + 1, statement.as_object()?, own_account))
        .collect()
}

/// Who one statement lets in; `None` for a `Deny` (or anything but an `Allow`).
pub fn classify(
    position: usize,
    statement: &Map<String, Value>,
    own_account: Option<&str>,
) -> Option<StatementAccess> {
    if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return None;
    }
    let mut out = StatementAccess {
        position,
        sid: statement
            .get("Sid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..StatementAccess::default()
    };
    let conditions = Conditions::read(statement.get("Condition"));
    let external = |account: &str| own_account != Some(account);
    let mut everyone = None;
    if statement.contains_key("NotPrincipal") {
        everyone = Some("it uses NotPrincipal with Allow, which lets in everyone it does not name");
    }
    match statement.get("Principal") {
        Some(Value::String(text)) if text == "*" => everyone = Some("its Principal is \"*\""),
        Some(Value::Object(principal)) => {
            for entry in principal.get("AWS").map(one_or_many).unwrap_or(&[]) {
                let text = match entry {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    _ => continue,
                };
                if text == "*" {
                    everyone = Some("its Principal names AWS \"*\"");
                } else if let Some(account) = account_of_principal(&text)
                    && external(account)
                {
                    out.accounts.insert(account.to_owned());
                }
            }
            for entry in principal.get("Service").map(one_or_many).unwrap_or(&[]) {
                if let Some(host) = entry.as_str() {
                    out.services.insert(host.to_owned());
                }
            }
        }
        _ => {}
    }
    if !out.services.is_empty() {
        // The conditions count for a service principal as for everyone: a service acting for
        // named accounts (or an organization) lets those in.
        let accounts = conditions.source_accounts();
        if accounts.is_empty() {
            out.organizations.extend(conditions.source_organizations());
        }
        out.accounts
            .extend(accounts.into_iter().filter(|a| external(a)));
        if !conditions.limits_source() {
            out.unlimited_services = out.services.iter().cloned().collect();
        }
    }
    if let Some(why) = everyone {
        let accounts: BTreeSet<String> = conditions.accounts().into_iter().collect();
        let organizations: BTreeSet<String> = conditions.organizations().into_iter().collect();
        if !accounts.is_empty() {
            out.accounts
                .extend(accounts.into_iter().filter(|a| external(a)));
        } else if !organizations.is_empty() {
            out.organizations.extend(organizations);
        } else {
            let unlimited = if conditions.ignored.is_empty() {
                "no condition limits it to named accounts or an organization".to_owned()
            } else {
                conditions.ignored.join("; ")
            };
            out.public = Some(format!("{why}, and {unlimited}"));
            out.for_all_values = conditions.for_all_values;
        }
    }
    Some(out)
}

/// The account a principal names: a 12-digit id, or the account field of an IAM or STS
/// ARN (`arn:aws:iam::111122223333:root`, `arn:aws:sts::111122223333:assumed-role/r/s`).
fn account_of_principal(text: &str) -> Option<&str> {
    if valid_account(text) {
        return Some(text);
    }
    let fields: Vec<&str> = text.splitn(6, ':').collect();
    match fields[..] {
        ["arn", _, "iam" | "sts", "", account, _] if valid_account(account) => Some(account),
        _ => None,
    }
}

/// Whether a value names an account or an organization: `None` when it lets everyone
/// through (empty, wildcards only, or a policy variable), or, where `wildcards` are read as
/// such, when it holds one at all (`"*1"` is every account ending in 1, `"o-*"` every
/// organization), with why.
fn limiting_value(value: &str, wildcards: bool) -> Result<&str, &'static str> {
    if value.is_empty() || value.chars().all(|c| c == '*' || c == '?') || value.contains("${") {
        Err("")
    } else if wildcards && value.contains(['*', '?']) {
        Err(" (a wildcard inside an account or organization id matches others too)")
    } else {
        Ok(value)
    }
}

/// The limits a statement's `Condition` sets, and why the conditions that look like
/// limits are not.
#[derive(Debug, Default)]
struct Conditions {
    /// (lowercase key, the account or organization each value names).
    limits: Vec<(String, Vec<String>)>,
    /// Why a condition on a limiting key limits nothing, in words.
    ignored: Vec<String>,
    /// One of them is `ForAllValues:` on a single-valued key.
    for_all_values: bool,
}

impl Conditions {
    fn read(condition: Option<&Value>) -> Self {
        let mut out = Self::default();
        let Some(Value::Object(operators)) = condition else {
            return out;
        };
        for (operator, keys) in operators {
            let Value::Object(keys) = keys else { continue };
            let (prefix, rest) = match operator.split_once(':') {
                Some((prefix, rest)) => (Some(prefix), rest),
                None => (None, operator.as_str()),
            };
            let (base, if_exists) = match rest.strip_suffix("IfExists") {
                Some(base) => (base, true),
                None => (rest, false),
            };
            for (key, values) in keys {
                let lower = key.to_ascii_lowercase();
                if !LIMITING_KEYS.contains(&lower.as_str()) {
                    continue;
                }
                let multi = MULTI_VALUED_KEYS.contains(&lower.as_str());
                if prefix == Some("ForAllValues") {
                    let fix = if multi {
                        format!("use ForAnyValue:{base}")
                    } else {
                        out.for_all_values = true;
                        format!("{key} has one value, so use {base}")
                    };
                    out.ignored.push(format!(
                        "its condition {operator} on {key} limits nothing (ForAllValues is true \
                         when the key is absent): {fix}"
                    ));
                    continue;
                }
                if !LIMITING_OPERATORS.contains(&base)
                    || !matches!(prefix, None | Some("ForAnyValue"))
                {
                    continue;
                }
                if if_exists {
                    out.ignored.push(format!(
                        "its condition {operator} on {key} limits nothing when the key is \
                         absent: use {base}"
                    ));
                    continue;
                }
                // These operators read `*` and `?` as wildcards (the ARN ones in each field of
                // the ARN); under the others they are plain characters.
                let wildcards = matches!(base, "StringLike" | "ArnLike" | "ArnEquals");
                match named_by(&lower, values, wildcards) {
                    Ok(named) => out.limits.push((lower, named)),
                    Err((value, why)) => out.ignored.push(format!(
                        "its condition {operator} on {key} lets everyone through with {}{why}",
                        crate::text::quote(&value)
                    )),
                }
            }
        }
        out
    }

    /// The accounts the account-limiting conditions name.
    fn accounts(&self) -> Vec<String> {
        self.named(&[
            "aws:principalaccount",
            "aws:sourceaccount",
            "aws:principalarn",
            "aws:sourcearn",
        ])
    }

    /// The organizations the organization-limiting conditions name.
    fn organizations(&self) -> Vec<String> {
        self.named(&[
            "aws:principalorgid",
            "aws:principalorgpaths",
            "aws:sourceorgid",
            "aws:sourceorgpaths",
        ])
    }

    /// The accounts a service principal acts for, by `aws:SourceAccount` and `aws:SourceArn`.
    fn source_accounts(&self) -> Vec<String> {
        self.named(&["aws:sourceaccount", "aws:sourcearn"])
    }

    /// The organizations a service principal acts for, by `aws:SourceOrgID` and
    /// `aws:SourceOrgPaths`.
    fn source_organizations(&self) -> Vec<String> {
        self.named(&["aws:sourceorgid", "aws:sourceorgpaths"])
    }

    fn named(&self, keys: &[&str]) -> Vec<String> {
        self.limits
            .iter()
            .filter(|(key, _)| keys.contains(&key.as_str()))
            .flat_map(|(_, named)| named.iter().cloned())
            .collect()
    }

    /// Whether `aws:SourceAccount` or `aws:SourceArn` limits a service principal.
    fn limits_source(&self) -> bool {
        self.limits
            .iter()
            .any(|(key, _)| key == "aws:sourceaccount" || key == "aws:sourcearn")
    }
}

/// The account or organization each value of a limiting key names, or the first value that
/// lets everyone through, with why when it is not plain. `wildcards`: whether the operator
/// reads `*` and `?` as wildcards.
fn named_by(
    key: &str,
    values: &Value,
    wildcards: bool,
) -> Result<Vec<String>, (String, &'static str)> {
    let mut named = Vec::new();
    let values = one_or_many(values);
    if values.is_empty() {
        return Err((String::new(), ""));
    }
    for value in values {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => return Err((other.to_string(), "")),
        };
        let name = match key {
            "aws:principalarn" | "aws:sourcearn" => text.split(':').nth(4).unwrap_or(""),
            // An organization path starts with its organization: o-a1b2c3d4e5/r-ab12/ou-…
            "aws:principalorgpaths" | "aws:sourceorgpaths" => text.split('/').next().unwrap_or(""),
            _ => text.as_str(),
        };
        // Only the field that names the account or organization has to be fixed: a policy
        // variable elsewhere in an ARN (a role name from a tag) still limits to that account.
        match limiting_value(name, wildcards) {
            Ok(name) => named.push(name.to_owned()),
            Err(why) => return Err((text, why)),
        }
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWN: &str = "123456789012";

    /// The table shared with the comparison against checkov (scripts/checkov_access.py).
    const CASES: &str = include_str!("../../tests/access-cases.json");

    /// A case's statement: its principal (or `not_principal`), `condition` and `effect`.
    fn statement_of(case: &Value) -> Value {
        let mut statement = json!({
            "Effect": case.get("effect").cloned().unwrap_or_else(|| json!("Allow")),
            "Action": "ecr:BatchGetImage",
        });
        for (field, key) in [
            ("principal", "Principal"),
            ("not_principal", "NotPrincipal"),
            ("condition", "Condition"),
        ] {
            if let Some(value) = case.get(field) {
                statement[key] = value.clone();
            }
        }
        statement
    }

    #[test]
    fn every_statement_is_classified_as_the_contract_says() {
        let table: Value = serde_json::from_str(CASES).expect("tests/access-cases.json");
        let cases = table["cases"].as_array().expect("cases");
        assert!(cases.len() >= 60, "{} cases", cases.len());
        // Every case is read before the first difference fails the test, so that one run
        // names them all.
        let mut wrong = Vec::new();
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let found = analyze(&[statement_of(case)], Some(OWN));
            let access = Access::of(&found).to_string();
            let expected = case["access"].as_str().expect("access");
            if access != expected {
                wrong.push(format!("{name}: {access:?}, not {expected:?}"));
                continue;
            }
            // Where checkov's verdict on public differs from ours, the table says why.
            let ours = if access.starts_with("public") {
                "FAILED"
            } else {
                "PASSED"
            };
            assert_eq!(
                case["checkov"] != ours,
                case.get("checkov_wrong").is_some(),
                "{name}: checkov {} and ours {ours}: explain a disagreement, and only that",
                case["checkov"]
            );
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn deny_statements_are_never_classified() {
        let statements = [
            json!({"Effect": "Deny", "Principal": "*", "Action": "ecr:*"}),
            json!({"Effect": "Deny", "NotPrincipal": {"AWS": "111122223333"}, "Action": "ecr:*"}),
            json!("not a statement"),
        ];
        let found = analyze(&statements, Some(OWN));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(Access::of(&found).to_string(), "account");
    }

    #[test]
    fn a_public_statement_says_why_by_position_and_sid() {
        let statements = [
            json!({"Sid": "Mine", "Effect": "Allow", "Principal": {"AWS": OWN}, "Action": "ecr:*"}),
            json!({"Sid": "Pull", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
                   "Condition": {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}),
        ];
        let found = analyze(&statements, Some(OWN));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].public, None);
        let public = &found[1];
        assert_eq!(public.name(), "statement 2 (Sid \"Pull\")");
        assert!(public.for_all_values);
        assert_eq!(
            public.public.as_deref(),
            Some(
                "its Principal is \"*\", and its condition ForAllValues:StringEquals on \
                 aws:PrincipalOrgID limits nothing (ForAllValues is true when the key is \
                 absent): aws:PrincipalOrgID has one value, so use StringEquals"
            )
        );
        let plain = analyze(
            &[json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"})],
            None,
        );
        assert_eq!(
            plain[0].public.as_deref(),
            Some(
                "its Principal is \"*\", and no condition limits it to named accounts or an organization"
            )
        );
        assert!(!plain[0].for_all_values);
        assert_eq!(plain[0].name(), "statement 1");
    }

    #[test]
    fn an_unknown_registry_account_counts_every_account_as_another() {
        let found = analyze(
            &[json!({"Effect": "Allow", "Principal": {"AWS": OWN}, "Action": "ecr:*"})],
            None,
        );
        assert_eq!(Access::of(&found).to_string(), format!("accounts:{OWN}"));
    }

    #[test]
    fn service_principals_without_a_source_condition_are_noted() {
        let unlimited = |condition: Value| {
            let mut statement = json!({"Effect": "Allow", "Principal": {"Service": ["b.amazonaws.com", "a.amazonaws.com"]}, "Action": "ecr:BatchGetImage"});
            if !condition.is_null() {
                statement["Condition"] = condition;
            }
            analyze(&[statement], Some(OWN))[0]
                .unlimited_services
                .clone()
        };
        assert_eq!(
            unlimited(Value::Null),
            ["a.amazonaws.com", "b.amazonaws.com"]
        );
        assert!(unlimited(json!({"StringEquals": {"aws:SourceAccount": OWN}})).is_empty());
        assert!(unlimited(json!({"ArnLike": {"aws:SourceArn": "arn:aws:codebuild:us-east-1:123456789012:project/*"}})).is_empty());
        assert_eq!(
            unlimited(json!({"StringEqualsIfExists": {"aws:SourceAccount": OWN}})).len(),
            2
        );
        assert_eq!(
            unlimited(json!({"StringEquals": {"aws:PrincipalOrgID": "o-a"}})).len(),
            2
        );
        // A wildcard inside the account id limits nothing, under StringLike; under
        // StringEquals it is a plain character.
        assert_eq!(
            unlimited(json!({"StringLike": {"aws:SourceAccount": "1111*"}})).len(),
            2
        );
        assert!(unlimited(json!({"StringEquals": {"aws:SourceAccount": "1111*"}})).is_empty());
    }

    #[test]
    fn a_wildcard_inside_an_id_says_why_it_limits_nothing() {
        let found = analyze(
            &[
                json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
                     "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}}}),
            ],
            Some(OWN),
        );
        assert_eq!(
            found[0].public.as_deref(),
            Some(
                "its Principal is \"*\", and its condition StringLike on aws:PrincipalOrgID lets \
                 everyone through with \"o-*\" (a wildcard inside an account or organization id \
                 matches others too)"
            )
        );
        // Outside the id, in the rest of an ARN or of an organization path, a wildcard limits.
        for condition in [
            json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/ci-?"}}),
            json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-*"}}),
        ] {
            let found = analyze(
                &[
                    json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Condition": condition.clone()}),
                ],
                Some(OWN),
            );
            assert_eq!(found[0].public, None, "{condition}");
        }
    }

    #[test]
    fn a_policy_variable_outside_the_account_field_still_limits_to_that_account() {
        let everyone_with = |condition: Value| {
            let statement = json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Condition": condition});
            Access::of(&analyze(&[statement], Some(OWN))).to_string()
        };
        // The role's name comes from the caller's tag; its account is fixed.
        assert_eq!(
            everyone_with(
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/${aws:PrincipalTag/team}"}})
            ),
            "accounts:111122223333"
        );
        assert_eq!(
            everyone_with(
                json!({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-ab12/${aws:PrincipalTag/ou}/*"}})
            ),
            "organization:o-a1b2c3d4e5"
        );
        // A variable in the account field itself limits nothing.
        assert_eq!(
            everyone_with(
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/ci"}})
            ),
            "public"
        );
        assert_eq!(
            everyone_with(
                json!({"StringEquals": {"aws:PrincipalAccount": "${aws:ResourceAccount}"}})
            ),
            "public"
        );
    }

    #[test]
    fn principals_that_name_no_account_let_no_one_in() {
        // A string Principal other than "*" (refused by the diagnosis) is nobody, not everyone;
        // an ARN whose account field is not 12 digits names no account.
        for principal in [
            json!("arn:aws:iam::111122223333:root"),
            json!({"AWS": ["arn:aws:iam::12345:root", "arn:aws:sts::1111222233334:assumed-role/r/s"]}),
            json!({"AWS": "arn:aws:s3:::111122223333"}),
        ] {
            let found = analyze(
                &[json!({"Effect": "Allow", "Principal": principal.clone(), "Action": "ecr:*"})],
                Some(OWN),
            );
            assert_eq!(found[0].public, None, "{principal}");
            assert_eq!(Access::of(&found).to_string(), "account", "{principal}");
        }
    }

    #[test]
    fn the_setting_reads_block_and_allow() {
        assert_eq!(PublicAccess::parse("Block"), Some(PublicAccess::Block));
        assert_eq!(PublicAccess::parse(" allow "), Some(PublicAccess::Allow));
        assert_eq!(PublicAccess::parse("yes"), None);
        assert_eq!(PublicAccess::default(), PublicAccess::Block);
    }
}
