//! Principals that cannot exist (CONTRACT 10): an `AWS` principal must be `*`, a 12-digit
//! account id, or an IAM or STS ARN of a 12-digit account; a `Service` principal must be a
//! service's host name; a `Principal` given as a string can only be `"*"`. `Federated` and
//! `CanonicalUser` principals, and shapes not recognised here, are left for ECR to judge.

use super::strings;
use crate::identity::{arn_fields, valid_account};
use crate::policy::one_or_many;
use crate::text::quote;
use serde_json::{Map, Value};

/// The problems with a statement's `Principal` and `NotPrincipal`, in the order written; the
/// fixes name ARNs of `partition`.
pub(super) fn impossible_principals(
    statement: &Map<String, Value>,
    partition: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["Principal", "NotPrincipal"] {
        match statement.get(key) {
            Some(Value::String(text)) if text != "*" => problems.push(format!(
                "has {key} {}, which cannot exist: a {key} given as a string can only be \
                 \"*\"; name an account, user or role as {{\"AWS\": {}}}",
                quote(text),
                quote(text)
            )),
            Some(Value::Object(map)) => {
                let place = if key == "Principal" {
                    String::new()
                } else {
                    format!(" in {key}")
                };
                impossible_aws(map, &place, partition, &mut problems);
                impossible_services(map, &place, &mut problems);
            }
            _ => {}
        }
    }
    problems
}

fn impossible_aws(
    principal: &Map<String, Value>,
    place: &str,
    partition: &str,
    out: &mut Vec<String>,
) {
    for entry in principal.get("AWS").map(one_or_many).into_iter().flatten() {
        let text = match entry {
            Value::String(text) => text.clone(),
            // CloudFormation sends numbers as strings; IAM reads both the same.
            Value::Number(number) => number.to_string(),
            _ => continue,
        };
        if let Err(why) = aws_principal(&text) {
            out.push(format!(
                "has AWS principal {}{place}, which cannot exist ({why}); use \
                 \"*\", a 12-digit account id, or an IAM or STS ARN such as \
                 \"arn:{partition}:iam::111122223333:root\"",
                quote(&text),
            ));
        }
    }
}

fn impossible_services(principal: &Map<String, Value>, place: &str, out: &mut Vec<String>) {
    for entry in principal.get("Service").map(strings).into_iter().flatten() {
        if let Err(why) = service_principal(entry) {
            out.push(format!(
                "has Service principal {}{place}, which cannot exist ({why}); \
                 a service principal is the service's host name, such as \
                 \"codebuild.amazonaws.com\"",
                quote(entry)
            ));
        }
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
    use crate::diagnosis::testing::{REGISTRY, REPOSITORY, accepted, refused};
    use crate::text::quote;
    use serde_json::json;

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
}
