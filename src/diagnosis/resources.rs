//! The `Resource` of a statement (CONTRACT 10): none in a repository policy, which applies to
//! its own repository; in a registry policy, repository ARNs of this registry (partition,
//! service `ecr`, its region and account, `repository/…`, wildcards and policy variables
//! allowed), since ECR accepts some others and replication then fails with nothing to show why.

use super::{Check, PolicyKind, Scope, strings};
use crate::identity::arn_fields;
use crate::text::{quote, wildcard_match};
use serde_json::{Map, Value};

/// The defects of a statement's `Resource` and `NotResource` in `scope`, in the order written.
pub(super) fn resource_defects(
    statement: &Map<String, Value>,
    scope: &Scope,
) -> Vec<(Check, String)> {
    let mut defects = Vec::new();
    for key in ["Resource", "NotResource"] {
        let Some(value) = statement.get(key) else {
            continue;
        };
        match scope.kind {
            PolicyKind::Repository => defects.push((
                Check::ResourceInRepositoryPolicy,
                format!(
                    "has {key} {}, but a repository policy applies to its own repository and \
                     ECR refuses {key} in it: remove {key}",
                    describe(value)
                ),
            )),
            // What a statement leaves out may lie anywhere: a Deny over every region but
            // some lists other regions' repositories on purpose.
            PolicyKind::Registry if key == "NotResource" => {}
            PolicyKind::Registry => {
                for entry in strings(value) {
                    if let Err(why) = registry_resource(entry, scope) {
                        defects.push((
                            Check::ForeignResource,
                            format!(
                                "has {key} {}, which is not a repository of this registry \
                                 ({why}); use {} (or \"*\")",
                                quote(entry),
                                expected_resource(scope)
                            ),
                        ));
                    }
                }
            }
        }
    }
    defects
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

#[cfg(test)]
mod tests {
    use crate::diagnosis::testing::{REGISTRY, REPOSITORY, UNKNOWN_ACCOUNT, accepted, refused};
    use serde_json::json;

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
        // Two entries are both shown, with nothing left out; other values, shortened.
        refused(
            &REPOSITORY,
            json!({"Resource": ["a", 12]}),
            "has Resource [\"a\", 12], but",
        );
        refused(
            &REPOSITORY,
            json!({"Resource": {"x": "y".repeat(40)}}),
            "has Resource {\"x\":\"yyyyyyyyyyyyyy, but",
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
            (
                "urn:aws:ecr:us-east-1:123456789012:repository/*",
                "(it is not an ARN)",
            ),
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
}
