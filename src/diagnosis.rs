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
//!
//! One room per part of a statement: [`actions`] (the catalog, unknown actions, the V1
//! registry scope), `resources` (`Resource` and registry ARNs), `principals`; and [`access`],
//! who gets in (CONTRACT 12).

pub mod access;
pub mod actions;
mod principals;
mod resources;
#[cfg(test)]
mod testing;

pub use crate::text::wildcard_match;
pub use actions::{V1_REGISTRY_ACTIONS, actions_beyond_v1, statements_beyond_v1};

use crate::policy::{one_or_many, statements_of};
use crate::text::quote;
use serde_json::{Map, Value};
use std::fmt;

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

/// The defects of one statement, each room's check in turn: actions, resources, principals.
fn check_statement(
    position: usize,
    statement: &Map<String, Value>,
    scope: &Scope,
    out: &mut Vec<Defect>,
) {
    let sid = statement.get("Sid").and_then(Value::as_str);
    let actions = actions::unknown_actions(statement)
        .into_iter()
        .map(|problem| (Check::UnknownAction, problem));
    let resources = resources::resource_defects(statement, scope);
    let principals = principals::impossible_principals(statement, scope.partition)
        .into_iter()
        .map(|problem| (Check::ImpossiblePrincipal, problem));
    out.extend(
        actions
            .chain(resources)
            .chain(principals)
            .map(|(check, problem)| Defect {
                position,
                sid: sid.map(str::to_owned),
                check,
                problem,
            }),
    );
}

/// The string entries of a value that is a string or a list.
fn strings(value: &Value) -> impl Iterator<Item = &str> {
    one_or_many(value).iter().filter_map(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::testing::{REGISTRY, REPOSITORY};
    use serde_json::json;

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
    fn three_defects_are_all_spelt_out_and_none_counted() {
        let statements =
            [json!({"Effect": "Allow", "Principal": "*", "Action": ["ecr:A", "ecr:B", "ecr:C"]})];
        let reason = check_statements(&statements, &REPOSITORY)
            .expect_err("defects")
            .to_string();
        assert_eq!(reason.matches("; statement").count(), 2, "{reason}");
        assert!(!reason.contains("more)"), "{reason}");
        assert!(reason.contains("\"ecr:C\""), "{reason}");
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
}
