//! What a resource manages and how it is named: the target (a registry or a repository in a
//! region), ECR's naming rules, partitions and ARNs, and the PhysicalResourceId of every kind
//! of resource (CONTRACT 4 and 9). The bottom layer: it imports nothing else of this crate.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The prefix of the PhysicalResourceId a failed Create answers with.
pub const FAILED_CREATE_PREFIX: &str = "failed-create:";
/// The prefix of a registry policy's PhysicalResourceId.
const REGISTRY_PREFIX: &str = "registry-policy:";
/// The prefix of a statement resource's PhysicalResourceId.
const STATEMENTS_PREFIX: &str = "ecr-policy-statements/";
/// How a prefix statement's PhysicalResourceId names its repositories:
/// `repository-prefix:<region>:<account>:<prefix>`.
const REPOSITORY_PREFIX_ID: &str = "repository-prefix:";
/// The repository prefix that matches every repository, as ECR's creation templates name it.
pub const ROOT_PREFIX: &str = "ROOT";
/// The longest PhysicalResourceId CloudFormation accepts.
pub const MAX_PHYSICAL_ID_BYTES: usize = 1024;

/// What a resource manages: one account's registry policy in a region, one repository's
/// policy, or the `repositoryPolicy` of one repository creation template (a prefix
/// statement's target, CONTRACT 15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Registry {
        region: String,
    },
    Repository {
        region: String,
        name: String,
    },
    /// A repository creation template, by its prefix as ECR lists it; its policy is the one
    /// each repository it creates starts with, a repository policy.
    Template {
        region: String,
        prefix: String,
    },
}

impl Target {
    pub fn region(&self) -> &str {
        match self {
            Target::Registry { region }
            | Target::Repository { region, .. }
            | Target::Template { region, .. } => region,
        }
    }

    pub fn repository_name(&self) -> Option<&str> {
        match self {
            Target::Registry { .. } | Target::Template { .. } => None,
            Target::Repository { name, .. } => Some(name),
        }
    }

    /// Whether its policy is a repository policy (a repository's or a creation template's),
    /// rather than the registry's.
    pub fn holds_repository_policy(&self) -> bool {
        !matches!(self, Target::Registry { .. })
    }

    /// How a person would name it in a message.
    pub fn describe(&self) -> String {
        match self {
            Target::Registry { region } => format!("the registry in {region}"),
            Target::Repository { region, name } => format!("repository {name:?} in {region}"),
            Target::Template { region, prefix } => {
                format!("repository creation template {prefix:?} in {region}")
            }
        }
    }
}

/// `us-east-1`, `cn-north-1`, `us-gov-west-1`, `eu-isoe-west-1`, ...
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 5
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| n > 0 && !parts[parts.len() - 1].starts_with('0'))
}

/// ECR's rule: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 256
/// characters.
pub fn valid_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|component| {
            !component.is_empty()
                && component.split(['.', '_', '-']).all(|run| {
                    !run.is_empty()
                        && run
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

/// A repository prefix as ECR's repository creation templates take it (botocore's `Prefix`
/// shape, 1 to 256 characters): `ROOT`, or
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*/?`.
pub fn valid_repository_prefix(prefix: &str) -> bool {
    if prefix == ROOT_PREFIX {
        return true;
    }
    if !(1..=256).contains(&prefix.len()) {
        return false;
    }
    let path = prefix.strip_suffix('/').unwrap_or(prefix);
    path.split('/').all(valid_prefix_component)
}

/// One `/`-separated part of a prefix: lowercase letters and digits, in runs separated by
/// `.`, `_`, `__` or any number of `-`.
fn valid_prefix_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(|b| alnum(*b)) || !bytes.last().is_some_and(|b| alnum(*b)) {
        return false;
    }
    let mut separators = component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    separators.all(|run| {
        matches!(run, "" | "." | "_" | "__") || (!run.is_empty() && run.bytes().all(|b| b == b'-'))
    })
}

/// Whether repository `name` is under `prefix`, read as ECR's creation templates read it
/// (CONTRACT 15): a `/` is assumed after the prefix, so `team` and `team/` both match
/// `team/app` and `team/a/b`, never `team` itself nor `team-x`; `ROOT` matches every
/// repository.
pub fn prefix_matches(prefix: &str, name: &str) -> bool {
    if prefix == ROOT_PREFIX {
        return true;
    }
    let path = prefix.strip_suffix('/').unwrap_or(prefix);
    name.strip_prefix(path)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether the repository creation template of `template` (a prefix as ECR lists it) is
/// reached by a prefix statement on `prefix` (CONTRACT 15): the same prefix, or one under
/// it. The `ROOT` template serves the repositories outside every narrower template, so only
/// a `ROOT` statement reaches it (a `team` grant there would leak beyond `team/`).
pub fn template_matches(prefix: &str, template: &str) -> bool {
    if template == ROOT_PREFIX {
        return prefix == ROOT_PREFIX;
    }
    same_prefix(prefix, template)
        || prefix_matches(prefix, template.strip_suffix('/').unwrap_or(template))
}

/// Two prefixes that match the same repositories (`team` and `team/`).
pub fn same_prefix(a: &str, b: &str) -> bool {
    a.strip_suffix('/').unwrap_or(a) == b.strip_suffix('/').unwrap_or(b)
}

/// An AWS account id: twelve digits.
pub fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// The colon-separated fields of an ARN (`arn:<partition>:<service>:<region>:<account>:
/// <resource>`), at most six, the last taking the rest. A colon inside a policy variable
/// (`${aws:PrincipalAccount}`) does not separate fields. The one place ARNs are split.
pub fn arn_fields(arn: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut in_variable = false;
    let mut previous = '\0';
    for (at, c) in arn.char_indices() {
        match c {
            '{' if previous == '$' => in_variable = true,
            '}' => in_variable = false,
            ':' if !in_variable && fields.len() < 5 => {
                fields.push(&arn[start..at]);
                start = at + 1;
            }
            _ => {}
        }
        previous = c;
    }
    fields.push(&arn[start..]);
    fields
}

/// The partition of the stack's ARN, else the one the region belongs to.
pub fn partition(stack_id: &str, region: &str) -> String {
    match arn_fields(stack_id).as_slice() {
        ["arn", partition, ..] if partition.starts_with("aws") => (*partition).to_owned(),
        _ if region.starts_with("cn-") => "aws-cn".to_owned(),
        _ if region.starts_with("us-gov-") => "aws-us-gov".to_owned(),
        _ => "aws".to_owned(),
    }
}

/// The account in a stack's ARN (`arn:aws:cloudformation:<region>:<account>:stack/...`);
/// empty when the id is not an ARN.
pub fn account_of_stack(stack_id: &str) -> &str {
    arn_fields(stack_id).get(4).copied().unwrap_or_default()
}

/// The stack's name, from its StackId (`arn:…:stack/<name>/<uuid>`); the id itself when it
/// has no name in it.
pub fn stack_name(stack_id: &str) -> &str {
    stack_id
        .split(':')
        .nth(5)
        .and_then(|resource| resource.split('/').nth(1))
        .filter(|name| !name.is_empty())
        .unwrap_or(stack_id)
}

/// `arn:<partition>:ecr:<region>:<account>:repository/<name>`.
pub fn repository_arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:ecr:{region}:{account}:repository/{name}")
}

/// The id a failed Create answers with; CloudFormation's follow-up Delete of it touches
/// nothing (CONTRACT 4).
pub fn failed_create_id(request_id: &str) -> String {
    format!("{FAILED_CREATE_PREFIX}{request_id}")
}

/// What a PhysicalResourceId names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhysicalId {
    /// A whole policy this provider manages, in the account that owns it.
    Policy { target: Target, account: String },
    /// Some statements, by Sid, inside a policy (CONTRACT 9). `tag` tells apart two resources
    /// that name the same Sids on one target.
    Statements {
        target: Target,
        account: String,
        tag: String,
        sids: Vec<String>,
    },
    /// Some statements, by Sid, in every repository under a prefix (CONTRACT 15).
    Prefix {
        region: String,
        prefix: String,
        account: String,
        tag: String,
        sids: Vec<String>,
    },
    /// The id of a failed Create, naming its request.
    FailedCreate { request_id: String },
    /// Not an id this provider issues.
    Foreign,
}

impl PhysicalId {
    /// Reads a PhysicalResourceId back into what it names.
    pub fn parse(id: &str) -> Self {
        if let Some(request_id) = id.strip_prefix(FAILED_CREATE_PREFIX) {
            return PhysicalId::FailedCreate {
                request_id: request_id.to_owned(),
            };
        }
        if let Some(rest) = id.strip_prefix(STATEMENTS_PREFIX) {
            return parse_statements(rest).unwrap_or(PhysicalId::Foreign);
        }
        match parse_policy(id) {
            Some((target, account)) => PhysicalId::Policy { target, account },
            None => PhysicalId::Foreign,
        }
    }

    /// The id's text. `partition` only shows in repository ids (they are the repository's
    /// ARN). `None` for the ids that carry no target.
    pub fn format(&self, partition: &str) -> Option<String> {
        match self {
            PhysicalId::Policy { target, account } => Some(policy_id(target, account, partition)),
            PhysicalId::Statements {
                target,
                account,
                tag,
                sids,
            } => Some(statements_id(
                tag,
                sids,
                &policy_id(target, account, partition),
            )),
            PhysicalId::Prefix {
                region,
                prefix,
                account,
                tag,
                sids,
            } => Some(statements_id(
                tag,
                sids,
                &format!("{REPOSITORY_PREFIX_ID}{region}:{account}:{prefix}"),
            )),
            PhysicalId::FailedCreate { .. } | PhysicalId::Foreign => None,
        }
    }
}

/// `ecr-policy-statements/<tag>/<sid>,<sid>/<what they are in>`.
fn statements_id(tag: &str, sids: &[String], within: &str) -> String {
    let sids: Vec<String> = sids.iter().map(|s| encode_sid(s)).collect();
    format!("{STATEMENTS_PREFIX}{tag}/{}/{within}", sids.join(","))
}

/// The id of a whole policy: `registry-policy:<region>:<account>`, or the repository's ARN.
fn policy_id(target: &Target, account: &str, partition: &str) -> String {
    match target {
        Target::Registry { region } => format!("{REGISTRY_PREFIX}{region}:{account}"),
        Target::Repository { region, name } => repository_arn(partition, region, account, name),
        // Never a resource's own target: named for messages only, and read back as foreign.
        Target::Template { region, prefix } => {
            format!("repository-creation-template:{region}:{account}:{prefix}")
        }
    }
}

fn parse_policy(id: &str) -> Option<(Target, String)> {
    let account_ok = |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = id.strip_prefix(REGISTRY_PREFIX) {
        let (region, account) = rest.split_once(':')?;
        return (account_ok(account) && valid_region(region)).then(|| {
            let target = Target::Registry {
                region: region.to_owned(),
            };
            (target, account.to_owned())
        });
    }
    let ["arn", partition, "ecr", region, account, resource] = arn_fields(id)[..] else {
        return None;
    };
    let name = resource.strip_prefix("repository/")?;
    (partition.starts_with("aws")
        && valid_region(region)
        && account_ok(account)
        && valid_repository_name(name))
    .then(|| {
        let target = Target::Repository {
            region: region.to_owned(),
            name: name.to_owned(),
        };
        (target, account.to_owned())
    })
}

/// `<tag>/<sid>,<sid>/<policy id>`; the policy id may itself hold `/` (a repository name).
fn parse_statements(rest: &str) -> Option<PhysicalId> {
    let mut parts = rest.splitn(3, '/');
    let (tag, sids, policy) = (parts.next()?, parts.next()?, parts.next()?);
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let sids = sids
        .split(',')
        .map(decode_sid)
        .collect::<Option<Vec<String>>>()?;
    if sids.iter().any(String::is_empty) {
        return None;
    }
    if let Some(rest) = policy.strip_prefix(REPOSITORY_PREFIX_ID) {
        let mut fields = rest.splitn(3, ':');
        let (region, account, prefix) = (fields.next()?, fields.next()?, fields.next()?);
        let account_ok = !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit());
        return (valid_region(region) && account_ok && valid_repository_prefix(prefix)).then(
            || PhysicalId::Prefix {
                region: region.to_owned(),
                prefix: prefix.to_owned(),
                account: account.to_owned(),
                tag: tag.to_owned(),
                sids,
            },
        );
    }
    let (target, account) = parse_policy(policy)?;
    Some(PhysicalId::Statements {
        target,
        account,
        tag: tag.to_owned(),
        sids,
    })
}

/// Sids are free text to ECR; in an id, every byte outside `[A-Za-z0-9._-]` is written as
/// `%XX`, so `,` and `/` can separate.
const SID_KEPT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

fn encode_sid(sid: &str) -> String {
    utf8_percent_encode(sid, SID_KEPT).to_string()
}

/// The Sid an id holds; `None` when a `%` is not followed by two hex digits (which
/// `percent_decode_str` would keep as it is) or the bytes are not UTF-8.
fn decode_sid(encoded: &str) -> Option<String> {
    let escapes_well_formed = encoded.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_well_formed {
        return None;
    }
    let decoded = percent_decode_str(encoded).decode_utf8().ok()?;
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn registry() -> Target {
        Target::Registry {
            region: "us-west-2".into(),
        }
    }

    fn repo() -> Target {
        Target::Repository {
            region: "eu-central-1".into(),
            name: "team/app".into(),
        }
    }

    #[test]
    fn policy_ids_round_trip() {
        for target in [registry(), repo()] {
            let id = PhysicalId::Policy {
                target,
                account: ACCOUNT.into(),
            };
            let text = id.format("aws").expect("a target id");
            assert!(text.len() <= MAX_PHYSICAL_ID_BYTES);
            assert_eq!(PhysicalId::parse(&text), id);
        }
        let registry_id = PhysicalId::Policy {
            target: registry(),
            account: ACCOUNT.into(),
        };
        assert_eq!(
            registry_id.format("aws").as_deref(),
            Some("registry-policy:us-west-2:123456789012")
        );
        let repo_id = PhysicalId::Policy {
            target: repo(),
            account: ACCOUNT.into(),
        };
        assert_eq!(
            repo_id.format("aws-cn").as_deref(),
            Some("arn:aws-cn:ecr:eu-central-1:123456789012:repository/team/app")
        );
    }

    #[test]
    fn statement_ids_round_trip_whatever_the_sids_hold() {
        for target in [registry(), repo()] {
            let id = PhysicalId::Statements {
                target,
                account: ACCOUNT.into(),
                tag: "5f0c2a9e".into(),
                sids: vec!["AllowPull".into(), "a,b/c %d é".into()],
            };
            let text = id.format("aws").expect("a target id");
            assert!(text.starts_with("ecr-policy-statements/5f0c2a9e/AllowPull,a%2Cb%2Fc"));
            assert_eq!(PhysicalId::parse(&text), id, "{text}");
        }
    }

    #[test]
    fn prefix_ids_round_trip() {
        for prefix in ["team", "team/", "a/b__c--d", ROOT_PREFIX] {
            let id = PhysicalId::Prefix {
                region: "eu-west-1".into(),
                prefix: prefix.into(),
                account: ACCOUNT.into(),
                tag: "5f0c2a9e".into(),
                sids: vec!["Pull".into(), "a,b/c".into()],
            };
            let text = id.format("aws").expect("an id");
            assert_eq!(
                text,
                format!(
                    "ecr-policy-statements/5f0c2a9e/Pull,a%2Cb%2Fc/repository-prefix:eu-west-1:{ACCOUNT}:{prefix}"
                )
            );
            assert_eq!(PhysicalId::parse(&text), id, "{text}");
        }
        for foreign in [
            "ecr-policy-statements/t/S/repository-prefix:eu-west-1:123456789012:Team",
            "ecr-policy-statements/t/S/repository-prefix:eu-west-1:123456789012:",
            "ecr-policy-statements/t/S/repository-prefix:nowhere:123456789012:team",
            "ecr-policy-statements/t/S/repository-prefix:eu-west-1::team",
        ] {
            assert_eq!(PhysicalId::parse(foreign), PhysicalId::Foreign, "{foreign}");
        }
    }

    #[test]
    fn prefixes_follow_the_creation_templates_pattern() {
        let long = "a".repeat(256);
        for ok in [
            "a",
            "team",
            "team/",
            "team/app",
            "a.b_c__d-e---f/g",
            "ROOT",
            "1/2/3/",
            &long,
        ] {
            assert!(valid_repository_prefix(ok), "{ok}");
        }
        let too_long = "a".repeat(257);
        for bad in [
            "",
            "/",
            "team//app",
            "/team",
            "Team",
            "Root",
            "team-",
            "-team",
            "a___b",
            "a..b",
            "a._b",
            "team//",
            "a b",
            "team/*",
            &too_long,
        ] {
            assert!(!valid_repository_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn a_prefix_matches_what_lies_under_it_and_nothing_beside_it() {
        for prefix in ["team", "team/"] {
            assert!(prefix_matches(prefix, "team/app"), "{prefix}");
            assert!(prefix_matches(prefix, "team/a/b"), "{prefix}");
            assert!(!prefix_matches(prefix, "team"), "{prefix}");
            assert!(!prefix_matches(prefix, "team-x"), "{prefix}");
            assert!(!prefix_matches(prefix, "teams/app"), "{prefix}");
            assert!(!prefix_matches(prefix, "other/team/app"), "{prefix}");
        }
        assert!(prefix_matches("team/a", "team/a/b"));
        assert!(!prefix_matches("team/a", "team/ab"));
        for name in ["team", "team/app", "x", "a/b/c"] {
            assert!(prefix_matches(ROOT_PREFIX, name), "{name}");
        }
        assert!(same_prefix("team", "team/") && !same_prefix("team", "team/a"));
    }

    proptest::proptest! {
        /// Whatever the names: a prefix matches exactly the names that continue it past a
        /// `/`, and `team` and `team/` always agree.
        #[test]
        fn matching_is_the_slash_rule(
            prefix in "[a-z0-9]{1,3}(/[a-z0-9]{1,3}){0,2}",
            name in "[a-z0-9-]{1,3}(/[a-z0-9]{1,3}){0,3}",
        ) {
            let slashed = format!("{prefix}/");
            let under = format!("{prefix}/{name}");
            let expected = name.len() > slashed.len() && name.starts_with(&slashed);
            proptest::prop_assert_eq!(prefix_matches(&prefix, &name), expected);
            proptest::prop_assert_eq!(
                prefix_matches(&slashed, &name),
                prefix_matches(&prefix, &name)
            );
            proptest::prop_assert!(prefix_matches(ROOT_PREFIX, &name));
            proptest::prop_assert!(valid_repository_prefix(&prefix));
            proptest::prop_assert!(valid_repository_prefix(&slashed));
            proptest::prop_assert!(prefix_matches(&prefix, &under));
        }
    }

    #[test]
    fn a_template_is_reached_by_its_own_prefix_and_the_ones_above_it_and_root_only_by_root() {
        for statement in ["team", "team/"] {
            for template in ["team", "team/", "team/app", "team/a/b/"] {
                assert!(
                    template_matches(statement, template),
                    "{statement} {template}"
                );
            }
            for template in ["ROOT", "team-x", "teams", "other/team", "tea"] {
                assert!(
                    !template_matches(statement, template),
                    "{statement} {template}"
                );
            }
        }
        assert!(template_matches("team/a", "team/a/b"));
        assert!(!template_matches("team/a", "team"));
        for template in ["ROOT", "team", "x/y/"] {
            assert!(template_matches(ROOT_PREFIX, template), "{template}");
        }
        let template = Target::Template {
            region: "eu-west-1".into(),
            prefix: "team/".into(),
        };
        assert!(template.holds_repository_policy() && template.repository_name().is_none());
        let id = PhysicalId::Statements {
            target: template,
            account: ACCOUNT.into(),
            tag: "t".into(),
            sids: vec!["S".into()],
        };
        assert_eq!(
            PhysicalId::parse(&id.format("aws").expect("text")),
            PhysicalId::Foreign
        );
    }

    #[test]
    fn ids_this_provider_does_not_issue_are_foreign() {
        for id in [
            "",
            "registry-policy:nowhere:1",
            "arn:aws:s3:::bucket",
            "arn:aws:ecr:us-east-1:123456789012:repository/UPPER",
            "my-policy",
            "ecr-policy-statements/t/S/my-policy",
            "ecr-policy-statements//S/registry-policy:us-east-1:123456789012",
            "ecr-policy-statements/t//registry-policy:us-east-1:123456789012",
            "ecr-policy-statements/t/%ZZ/registry-policy:us-east-1:123456789012",
            "ecr-policy-statements/t/S%2/registry-policy:us-east-1:123456789012",
            "ecr-policy-statements/t/S%FF/registry-policy:us-east-1:123456789012",
            "ecr-policy-statements/t/S",
        ] {
            assert_eq!(PhysicalId::parse(id), PhysicalId::Foreign, "{id}");
        }
        assert_eq!(
            PhysicalId::parse(&failed_create_id("5f0c")),
            PhysicalId::FailedCreate {
                request_id: "5f0c".into()
            }
        );
    }

    #[test]
    fn names_and_regions_follow_ecr_rules() {
        for ok in ["ab", "team/app", "a.b_c-d/e1", &"a".repeat(256)] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "a",
            "App",
            "a//b",
            "/a",
            "a-",
            "-a",
            "a..b",
            &"a".repeat(257),
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
        for ok in ["us-east-1", "cn-north-1", "us-gov-west-1", "eu-isoe-west-1"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "us-east-01",
            "US-EAST-1",
            "us_east_1",
            "us-east-1/../x",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
        assert!(valid_account(ACCOUNT));
        assert!(!valid_account("12345678901"));
    }

    #[test]
    fn arn_fields_keep_policy_variables_whole() {
        assert_eq!(
            arn_fields("arn:aws:ecr:us-east-1:${aws:PrincipalAccount}:repository/a:b"),
            [
                "arn",
                "aws",
                "ecr",
                "us-east-1",
                "${aws:PrincipalAccount}",
                "repository/a:b"
            ]
        );
        assert_eq!(arn_fields("*"), ["*"]);
        assert_eq!(
            arn_fields("arn:aws:ecr:us-east-1:1:repository/team/app"),
            ["arn", "aws", "ecr", "us-east-1", "1", "repository/team/app"]
        );
    }

    #[test]
    fn partition_comes_from_the_stack_or_the_region() {
        assert_eq!(
            partition(
                "arn:aws-cn:cloudformation:cn-north-1:1:stack/s/x",
                "cn-north-1"
            ),
            "aws-cn"
        );
        assert_eq!(partition("", "us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("", "us-east-1"), "aws");
        assert_eq!(
            account_of_stack("arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"),
            ACCOUNT
        );
        assert_eq!(account_of_stack("not an arn"), "");
    }
}
