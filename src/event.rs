//! The CloudFormation request: decoding, resource types and properties (CONTRACT 2 and 3).

pub mod progress;

use crate::identity::{
    ROOT_PREFIX, Target, failed_create_id, valid_region, valid_repository_name,
    valid_repository_prefix,
};
use crate::policy::{Policy, PolicyError, Statements};
use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Properties CloudFormation adds itself; never an error.
const CLOUDFORMATION_PROPERTIES: [&str; 2] = ["ServiceToken", "ServiceTimeout"];
const KNOWN_PROPERTIES: [&str; 6] = [
    "PolicyText",
    "Adopt",
    "Region",
    "RepositoryName",
    "Force",
    "AllowPublicAccess",
];
const STATEMENT_PROPERTIES: [&str; 7] = [
    "Statement",
    "Adopt",
    "Region",
    "RepositoryName",
    "RepositoryPrefix",
    "Force",
    "AllowPublicAccess",
];
const GENERIC_TYPE: &str = "AWS::CloudFormation::CustomResource";

/// The fields every response needs, read leniently from any payload so that even an event
/// that fails to decode still gets its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub response_url: Option<String>,
    pub request_type: Option<String>,
    pub request_id: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
}

/// The envelope's fields, borrowed raw: reading them never descends into the properties, so
/// even an event nested past the JSON parser's depth limit still yields its `ResponseURL`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawFields<'a> {
    #[serde(rename = "ResponseURL", borrow, default)]
    response_url: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stack_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    logical_resource_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    physical_resource_id: Option<&'a RawValue>,
}

impl Envelope {
    /// Reads the envelope from the event's raw JSON text.
    pub fn from_raw(raw: &str) -> Self {
        let Ok(fields) = serde_json::from_str::<RawFields<'_>>(raw) else {
            // Duplicate keys, say: fall back to a full parse, where the last key wins.
            return serde_json::from_str::<Value>(raw)
                .map(|payload| Self::from_payload(&payload))
                .unwrap_or_default();
        };
        let text = |field: Option<&RawValue>| {
            field.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
        };
        Self {
            response_url: text(fields.response_url),
            request_type: text(fields.request_type),
            request_id: text(fields.request_id).unwrap_or_default(),
            stack_id: text(fields.stack_id).unwrap_or_default(),
            logical_resource_id: text(fields.logical_resource_id).unwrap_or_default(),
            physical_resource_id: text(fields.physical_resource_id).filter(|id| !id.is_empty()),
        }
    }

    pub fn from_payload(payload: &Value) -> Self {
        let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            response_url: text("ResponseURL"),
            request_type: text("RequestType"),
            request_id: text("RequestId").unwrap_or_default(),
            stack_id: text("StackId").unwrap_or_default(),
            logical_resource_id: text("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: text("PhysicalResourceId").filter(|id| !id.is_empty()),
        }
    }

    /// The id a failed Create answers with; CloudFormation's follow-up Delete of it touches
    /// nothing (CONTRACT 4).
    pub fn failed_create_id(&self) -> String {
        failed_create_id(&self.request_id)
    }

    /// The PhysicalResourceId a FAILED response carries: the request's own for Update and
    /// Delete, the failed-create id otherwise.
    pub fn failure_physical_id(&self) -> String {
        match (self.request_type.as_deref(), &self.physical_resource_id) {
            (Some("Update" | "Delete"), Some(id)) => id.clone(),
            _ => self.failed_create_id(),
        }
    }
}

/// A decoded request.
#[derive(Debug, Clone)]
pub enum Request {
    Create {
        resource_type: String,
        properties: Value,
    },
    Update {
        resource_type: String,
        physical_id: String,
        properties: Value,
        /// The properties before this Update (in a rollback: those of the update that
        /// failed).
        old_properties: Value,
    },
    /// The properties name the target of a failed Create's id, which names only its
    /// request (CONTRACT 11).
    Delete {
        physical_id: String,
        resource_type: String,
        properties: Value,
    },
}

/// Why an event is not a request this provider can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("RequestType {} is not one CloudFormation sends; expected Create, Update or Delete", crate::text::quote(.0))]
    UnknownRequestType(String),
    #[error("the event is not a CloudFormation custom-resource request: {}", crate::text::shorten(.0, 300))]
    Malformed(String),
    #[error("the event is not JSON this provider can read: {0}")]
    Unreadable(String),
    #[error("the {0} request has no PhysicalResourceId")]
    MissingPhysicalId(&'static str),
}

impl Request {
    /// Decodes the event's raw JSON text.
    pub fn decode_raw(raw: &str) -> Result<Self, RequestError> {
        Self::decode(parse_event(raw)?)
    }

    /// Decodes a parsed event, taking it over (nothing is copied).
    pub fn decode(payload: Value) -> Result<Self, RequestError> {
        let request_type = payload.get("RequestType").and_then(Value::as_str);
        match request_type {
            Some("Create" | "Update" | "Delete") => {}
            Some(other) => return Err(RequestError::UnknownRequestType(other.to_owned())),
            None => return Err(RequestError::Malformed("RequestType is missing".into())),
        }
        for kind in ["Update", "Delete"] {
            let id = payload.get("PhysicalResourceId").and_then(Value::as_str);
            if request_type == Some(kind) && id.is_none_or(str::is_empty) {
                return Err(RequestError::MissingPhysicalId(kind));
            }
        }
        let request: CloudFormationCustomResourceRequest =
            serde_json::from_value(payload).map_err(|e| RequestError::Malformed(e.to_string()))?;
        Ok(match request {
            CloudFormationCustomResourceRequest::Create(r) => Request::Create {
                resource_type: r.resource_type,
                properties: r.resource_properties,
            },
            CloudFormationCustomResourceRequest::Update(r) => Request::Update {
                resource_type: r.resource_type,
                physical_id: r.physical_resource_id,
                properties: r.resource_properties,
                old_properties: r.old_resource_properties,
            },
            CloudFormationCustomResourceRequest::Delete(r) => Request::Delete {
                physical_id: r.physical_resource_id,
                resource_type: r.resource_type,
                properties: r.resource_properties,
            },
            other => {
                return Err(RequestError::Malformed(format!(
                    "unsupported request {other:?}"
                )));
            }
        })
    }
}

/// Parses the event's JSON text, once. An event that does not parse (not JSON, or nested
/// past the parser's limit) still has its envelope read by [`Envelope::from_raw`].
pub fn parse_event(raw: &str) -> Result<Value, RequestError> {
    serde_json::from_str(raw).map_err(|e| RequestError::Unreadable(e.to_string()))
}

/// The resource's desired state, from validated properties.
#[derive(Debug, Clone)]
pub struct Desired {
    pub target: Target,
    pub content: Content,
    pub adopt: bool,
    pub force: bool,
    /// `AllowPublicAccess`: accept a statement that lets in every AWS account (CONTRACT 12).
    pub allow_public: bool,
}

/// What a resource asks for: one target's policy, or statements in every repository under
/// a prefix (CONTRACT 15).
#[derive(Debug, Clone)]
pub enum Wanted {
    One(Desired),
    Prefix(Prefixed),
}

/// A prefix statement: the same statements, held in every repository under `prefix`.
#[derive(Debug, Clone)]
pub struct Prefixed {
    /// As the property gives it (`team`, `team/` or `ROOT`).
    pub prefix: String,
    /// The desired state on each repository; its target names the repositories as a
    /// pattern (`team/*`, `*` for `ROOT`), for the checks that judge the statements alone.
    pub each: Desired,
}

impl Prefixed {
    pub fn region(&self) -> &str {
        self.each.target.region()
    }

    /// The desired state on one repository under the prefix: exactly a
    /// `Custom::ECRRepositoryPolicyStatement` on it.
    pub fn on(&self, name: &str) -> Desired {
        Desired {
            target: Target::Repository {
                region: self.region().to_owned(),
                name: name.to_owned(),
            },
            ..self.each.clone()
        }
    }

    /// The statements, by Sid.
    pub fn statements(&self) -> &Statements {
        match &self.each.content {
            Content::Statements(statements) => statements,
            // Built only with statements (see `wanted`).
            Content::Policy(_) => unreachable!("a prefix statement holds statements"),
        }
    }
}

impl Wanted {
    /// One target's desired state; a prefix statement's on the repositories' pattern.
    pub fn into_desired(self) -> Desired {
        match self {
            Wanted::One(desired) => desired,
            Wanted::Prefix(prefixed) => prefixed.each,
        }
    }
}

/// The pattern a prefix's repositories are named by in messages: `team/*`, `*` for `ROOT`.
fn prefix_pattern(prefix: &str) -> String {
    if prefix == ROOT_PREFIX {
        "*".to_owned()
    } else {
        format!("{}/*", prefix.strip_suffix('/').unwrap_or(prefix))
    }
}

/// What a resource owns of its target's policy.
#[derive(Debug, Clone)]
pub enum Content {
    /// The whole document (`PolicyText`).
    Policy(Policy),
    /// Some statements, by Sid; the rest of the document belongs to others (CONTRACT 9).
    Statements(Statements),
}

impl Desired {
    /// The whole policy, for a whole-policy resource.
    pub fn policy(&self) -> Option<&Policy> {
        match &self.content {
            Content::Policy(policy) => Some(policy),
            Content::Statements(_) => None,
        }
    }

    /// The statements, for a statement resource.
    pub fn statements(&self) -> Option<&Statements> {
        match &self.content {
            Content::Policy(_) => None,
            Content::Statements(statements) => Some(statements),
        }
    }
}

/// Why the properties cannot be used. Each message names the property and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    #[error(
        "ResourceType {} is not supported; use Custom::ECRRegistryPolicy, \
         Custom::ECRRepositoryPolicy (any Custom:: name ending in RegistryPolicy or \
         RepositoryPolicy), Custom::ECRRegistryPolicyStatement, \
         Custom::ECRRepositoryPolicyStatement (ending in RegistryPolicyStatement or \
         RepositoryPolicyStatement) or AWS::CloudFormation::CustomResource",
        crate::text::quote(.0)
    )]
    UnsupportedResourceType(String),
    #[error("ResourceProperties must be an object of properties, got {}", crate::text::shorten(.0, 80))]
    NotAnObject(String),
    #[error("unknown property {}{hint}", crate::text::quote(.name))]
    Unknown { name: String, hint: String },
    #[error("property PolicyText is required: give the whole policy document")]
    MissingPolicyText,
    #[error("property PolicyText {0}")]
    Policy(#[from] PolicyError),
    #[error(
        "property Statement is required: give the statement, or a list of them, that this \
         resource adds to the policy"
    )]
    MissingStatement,
    #[error("property Statement {0}")]
    Statement(PolicyError),
    #[error("property {name} must be true or false, got {}", crate::text::shorten(.value, 80))]
    NotBoolean { name: &'static str, value: String },
    #[error("property {name} must be a string, got {}", crate::text::shorten(.value, 80))]
    NotString { name: &'static str, value: String },
    #[error(
        "property RepositoryName is required for {0}: name the repository whose policy it manages"
    )]
    MissingRepositoryName(String),
    #[error(
        "property RepositoryName or RepositoryPrefix is required for {0}: name the repository \
         whose policy it adds to, or the prefix of the repositories"
    )]
    MissingNameOrPrefix(String),
    #[error(
        "property {0} applies to repository policies only; remove it, or use \
         Custom::ECRRepositoryPolicy with a RepositoryName"
    )]
    RepositoryOnly(&'static str),
    #[error(
        "property RepositoryName {} is not a valid ECR repository name: 2 to 256 lowercase \
         letters, digits and . _ - / (for example team/app)",
        crate::text::quote(.0)
    )]
    BadRepositoryName(String),
    #[error(
        "give exactly one of RepositoryName (one repository) and RepositoryPrefix (every \
         repository under a prefix, such as team/ or ROOT), not both"
    )]
    NameAndPrefix,
    #[error(
        "property RepositoryPrefix applies to Custom::ECRRepositoryPolicyStatement only; \
         remove it, or give the statements with Statement on that resource type"
    )]
    PrefixStatementsOnly,
    #[error(
        "property RepositoryPrefix {} is not a prefix ECR's repository creation templates \
         take: ROOT, or 1 to 256 lowercase letters, digits and . _ - / (for example team or \
         team/app/)",
        crate::text::quote(.0)
    )]
    BadRepositoryPrefix(String),
    #[error("property Region {} is not an AWS region name such as us-east-1", crate::text::quote(.0))]
    BadRegion(String),
    #[error("no region: set the Region property, or run the function where AWS_REGION is set")]
    NoRegion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Registry,
    Repository,
}

/// Which kind of target a resource type manages, and whether it owns the whole policy or
/// some statements of it (CONTRACT 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResourceKind {
    target: Kind,
    statements: bool,
}

impl ResourceKind {
    fn of(resource_type: &str, properties: &Map<String, Value>) -> Result<Self, PropertyError> {
        if resource_type == GENERIC_TYPE {
            let repository = ["RepositoryName", "RepositoryPrefix"]
                .iter()
                .any(|name| properties.contains_key(*name));
            let target = if repository {
                Kind::Repository
            } else {
                Kind::Registry
            };
            let statements = properties.contains_key("Statement");
            return Ok(Self { target, statements });
        }
        let custom = resource_type.starts_with("Custom::");
        let kind = |target, statements| Ok(Self { target, statements });
        match resource_type {
            t if custom && t.ends_with("RegistryPolicy") => kind(Kind::Registry, false),
            t if custom && t.ends_with("RepositoryPolicy") => kind(Kind::Repository, false),
            t if custom && t.ends_with("RegistryPolicyStatement") => kind(Kind::Registry, true),
            t if custom && t.ends_with("RepositoryPolicyStatement") => kind(Kind::Repository, true),
            _ => Err(PropertyError::UnsupportedResourceType(
                resource_type.to_owned(),
            )),
        }
    }

    fn properties(&self) -> &'static [&'static str] {
        if self.statements {
            &STATEMENT_PROPERTIES
        } else {
            &KNOWN_PROPERTIES
        }
    }
}

/// Validates a resource's properties into its desired state (CONTRACT 3); a prefix
/// statement's on the pattern of its repositories (see [`Prefixed::each`]). Nothing here
/// calls ECR.
pub fn desired_state(
    resource_type: &str,
    properties: &Value,
    default_region: Option<&str>,
) -> Result<Desired, PropertyError> {
    wanted(resource_type, properties, default_region).map(Wanted::into_desired)
}

/// Validates a resource's properties into what it asks for (CONTRACT 3 and 15). Nothing
/// here calls ECR.
pub fn wanted(
    resource_type: &str,
    properties: &Value,
    default_region: Option<&str>,
) -> Result<Wanted, PropertyError> {
    let map = match properties {
        Value::Object(map) => map,
        Value::Null => &Map::new(),
        other => return Err(PropertyError::NotAnObject(other.to_string())),
    };
    let kind = ResourceKind::of(resource_type, map)?;
    if !kind.statements && map.contains_key("RepositoryPrefix") {
        return Err(PropertyError::PrefixStatementsOnly);
    }
    check_known(map, kind.properties())?;
    let adopt = boolean(map, "Adopt")?;
    let force = boolean(map, "Force")?;
    let allow_public = boolean(map, "AllowPublicAccess")?;
    let prefix = string(map, "RepositoryPrefix")?;
    if prefix.is_some() && !(kind.statements && kind.target == Kind::Repository) {
        return Err(PropertyError::PrefixStatementsOnly);
    }
    let target = match prefix {
        None => target(kind.target, resource_type, map, default_region)?,
        Some(prefix) => {
            if map.contains_key("RepositoryName") {
                return Err(PropertyError::NameAndPrefix);
            }
            if !valid_repository_prefix(prefix) {
                return Err(PropertyError::BadRepositoryPrefix(prefix.to_owned()));
            }
            Target::Repository {
                region: region(map, default_region)?,
                name: prefix_pattern(prefix),
            }
        }
    };
    let content = if kind.statements {
        let statement = map
            .get("Statement")
            .ok_or(PropertyError::MissingStatement)?;
        Content::Statements(Statements::from_property(statement).map_err(PropertyError::Statement)?)
    } else {
        let policy_text = map
            .get("PolicyText")
            .ok_or(PropertyError::MissingPolicyText)?;
        Content::Policy(Policy::from_property(policy_text)?)
    };
    let desired = Desired {
        target,
        content,
        adopt,
        force,
        allow_public,
    };
    Ok(match prefix {
        None => Wanted::One(desired),
        Some(prefix) => Wanted::Prefix(Prefixed {
            prefix: prefix.to_owned(),
            each: desired,
        }),
    })
}

/// Every property is one this provider knows, or one CloudFormation adds itself.
fn check_known(map: &Map<String, Value>, known: &[&str]) -> Result<(), PropertyError> {
    let unknown = map.keys().find(|name| {
        !known.contains(&name.as_str()) && !CLOUDFORMATION_PROPERTIES.contains(&name.as_str())
    });
    match unknown {
        Some(name) => Err(PropertyError::Unknown {
            name: name.clone(),
            hint: unknown_property_hint(name, known),
        }),
        None => Ok(()),
    }
}

/// The target the properties name: the region, and the repository for repository policies.
fn target(
    kind: Kind,
    resource_type: &str,
    map: &Map<String, Value>,
    default_region: Option<&str>,
) -> Result<Target, PropertyError> {
    let repository_name = string(map, "RepositoryName")?;
    let region = region(map, default_region)?;
    match kind {
        Kind::Registry => {
            if repository_name.is_some() {
                return Err(PropertyError::RepositoryOnly("RepositoryName"));
            }
            if map.contains_key("Force") {
                return Err(PropertyError::RepositoryOnly("Force"));
            }
            Ok(Target::Registry { region })
        }
        Kind::Repository => {
            let name = repository_name.ok_or_else(|| {
                if map.contains_key("Statement") {
                    PropertyError::MissingNameOrPrefix(resource_type.to_owned())
                } else {
                    PropertyError::MissingRepositoryName(resource_type.to_owned())
                }
            })?;
            if !valid_repository_name(name) {
                return Err(PropertyError::BadRepositoryName(name.to_owned()));
            }
            Ok(Target::Repository {
                region,
                name: name.to_owned(),
            })
        }
    }
}

/// The `Region` property, else the function's own.
fn region(map: &Map<String, Value>, default_region: Option<&str>) -> Result<String, PropertyError> {
    match string(map, "Region")?.or(default_region) {
        Some(region) if valid_region(region) => Ok(region.to_owned()),
        Some(region) => Err(PropertyError::BadRegion(region.to_owned())),
        None => Err(PropertyError::NoRegion),
    }
}

/// CloudFormation sends every scalar as a string, so `true` and `"true"` are both accepted;
/// this is the one place that rule lives.
fn boolean(map: &Map<String, Value>, name: &'static str) -> Result<bool, PropertyError> {
    match map.get(name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => Err(PropertyError::NotBoolean {
            name,
            value: other.to_string(),
        }),
    }
}

fn string<'a>(
    map: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, PropertyError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(PropertyError::NotString {
            name,
            value: other.to_string(),
        }),
    }
}

fn unknown_property_hint(name: &str, known_properties: &[&str]) -> String {
    match crate::text::closest(name, known_properties.iter().copied()) {
        Some((known, _)) => format!("; did you mean {known}?"),
        None => format!("; the properties are {}", known_properties.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;

    fn desired(resource_type: &str, props: Value) -> Result<Desired, PropertyError> {
        desired_state(resource_type, &props, Some("us-east-1"))
    }

    #[test]
    fn stringified_booleans_are_accepted_and_others_named() {
        let ok = desired(
            "Custom::ECRRepositoryPolicy",
            json!({"PolicyText": POLICY, "RepositoryName": "app", "Adopt": "true", "Force": false}),
        )
        .expect("valid");
        assert!(ok.adopt && !ok.force);
        let err = desired(
            "Custom::ECRRegistryPolicy",
            json!({"PolicyText": POLICY, "Adopt": "yes"}),
        )
        .expect_err("yes is not a boolean");
        assert_eq!(
            err.to_string(),
            "property Adopt must be true or false, got \"yes\""
        );
    }

    #[test]
    fn a_typo_is_named_with_the_property_it_meant() {
        let err = desired(
            "AWS::CloudFormation::CustomResource",
            json!({"PolicyText": POLICY, "RepositoryNmae": "app"}),
        )
        .expect_err("typo");
        assert_eq!(
            err.to_string(),
            "unknown property \"RepositoryNmae\"; did you mean RepositoryName?"
        );
    }

    #[test]
    fn the_generic_type_picks_the_target_from_repository_name() {
        let repo = desired(
            GENERIC_TYPE,
            json!({"PolicyText": POLICY, "RepositoryName": "team/app"}),
        )
        .expect("repository");
        assert_eq!(
            repo.target,
            Target::Repository {
                region: "us-east-1".into(),
                name: "team/app".into()
            }
        );
        let registry = desired(
            GENERIC_TYPE,
            json!({"PolicyText": POLICY, "Region": "eu-west-1", "ServiceToken": "arn"}),
        )
        .expect("registry");
        assert_eq!(
            registry.target,
            Target::Registry {
                region: "eu-west-1".into()
            }
        );
    }

    #[test]
    fn statement_types_and_the_generic_type_with_statement_own_statements() {
        let statement =
            json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
        for (resource_type, props, repository) in [
            (
                "Custom::ECRRegistryPolicyStatement",
                json!({"Statement": statement}),
                false,
            ),
            (
                "Custom::TeamRepositoryPolicyStatement",
                json!({"Statement": [statement], "RepositoryName": "app"}),
                true,
            ),
            (
                GENERIC_TYPE,
                json!({"Statement": statement.to_string()}),
                false,
            ),
            (
                GENERIC_TYPE,
                json!({"Statement": statement, "RepositoryName": "app"}),
                true,
            ),
        ] {
            let d = desired(resource_type, props).expect(resource_type);
            assert_eq!(d.statements().expect("statements").sids(), ["S"]);
            assert_eq!(d.target.repository_name().is_some(), repository);
            assert!(d.policy().is_none());
        }
        // A statement type names its own properties in a typo's hint.
        let err = desired(
            "Custom::ECRRegistryPolicyStatement",
            json!({"Statement": statement, "PolicyText": {}}),
        )
        .expect_err("PolicyText is not a statement resource's");
        assert!(
            err.to_string().contains("the properties are Statement"),
            "{err}"
        );
        let err = desired("Custom::ECRRegistryPolicyStatement", json!({}))
            .expect_err("missing Statement");
        assert!(err.to_string().contains("property Statement is required"));
    }

    #[test]
    fn resource_types_outside_the_contract_are_refused() {
        for t in ["Custom::Bucket", "AWS::ECR::RepositoryPolicy", ""] {
            let err = desired(t, json!({"PolicyText": POLICY})).expect_err("unsupported");
            assert!(
                err.to_string().contains("Custom::ECRRegistryPolicy"),
                "{err}"
            );
        }
    }

    #[test]
    fn repository_properties_on_a_registry_policy_are_refused() {
        let err = desired(
            "Custom::ECRRegistryPolicy",
            json!({"PolicyText": POLICY, "RepositoryName": "app"}),
        )
        .expect_err("repository name on registry");
        assert!(
            err.to_string()
                .contains("RepositoryName applies to repository policies only")
        );
        let err = desired("Custom::ECRRepositoryPolicy", json!({"PolicyText": POLICY}))
            .expect_err("missing name");
        assert!(err.to_string().contains("RepositoryName is required"));
    }

    fn wanted_of(resource_type: &str, props: Value) -> Result<Wanted, PropertyError> {
        wanted(resource_type, &props, Some("us-east-1"))
    }

    #[test]
    fn a_repository_statement_takes_a_prefix_instead_of_a_name() {
        let statement =
            json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
        for resource_type in ["Custom::ECRRepositoryPolicyStatement", GENERIC_TYPE] {
            for prefix in ["team", "team/", "ROOT"] {
                let wanted = wanted_of(
                    resource_type,
                    json!({"Statement": statement, "RepositoryPrefix": prefix}),
                )
                .expect(prefix);
                let Wanted::Prefix(prefixed) = wanted else {
                    panic!("{prefix}: not a prefix statement");
                };
                assert_eq!(prefixed.prefix, prefix);
                assert_eq!(prefixed.statements().sids(), ["S"]);
                assert_eq!(
                    prefixed.on("team/app").target,
                    Target::Repository {
                        region: "us-east-1".into(),
                        name: "team/app".into()
                    }
                );
            }
        }
        let pattern = |prefix: &str| {
            desired_state(
                "Custom::ECRRepositoryPolicyStatement",
                &json!({"Statement": statement, "RepositoryPrefix": prefix}),
                Some("eu-west-1"),
            )
            .expect("valid")
            .target
        };
        assert_eq!(pattern("team/").repository_name(), Some("team/*"));
        assert_eq!(pattern("ROOT").repository_name(), Some("*"));
        assert!(matches!(
            wanted_of(
                "Custom::ECRRepositoryPolicyStatement",
                json!({"Statement": statement, "RepositoryName": "app"})
            ),
            Ok(Wanted::One(_))
        ));
    }

    #[test]
    fn a_prefix_is_refused_beside_a_name_where_it_does_not_apply_or_when_malformed() {
        let statement =
            json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
        let refusal = |resource_type: &str, props: Value| {
            wanted_of(resource_type, props)
                .expect_err("refused")
                .to_string()
        };
        for props in [
            json!({"Statement": statement, "RepositoryName": "team/app", "RepositoryPrefix": "team"}),
            json!({"Statement": statement}),
        ] {
            let reason = refusal("Custom::ECRRepositoryPolicyStatement", props);
            assert!(
                reason.contains("RepositoryName") && reason.contains("RepositoryPrefix"),
                "{reason}"
            );
        }
        let reason = refusal(
            GENERIC_TYPE,
            json!({"Statement": statement, "RepositoryName": "a/b", "RepositoryPrefix": "a"}),
        );
        assert!(reason.contains("exactly one of RepositoryName"), "{reason}");
        for (resource_type, props) in [
            (
                "Custom::ECRRegistryPolicyStatement",
                json!({"Statement": statement, "RepositoryPrefix": "team"}),
            ),
            (
                "Custom::ECRRepositoryPolicy",
                json!({"PolicyText": POLICY, "RepositoryPrefix": "team"}),
            ),
            (
                GENERIC_TYPE,
                json!({"PolicyText": POLICY, "RepositoryPrefix": "team"}),
            ),
        ] {
            let reason = refusal(resource_type, props);
            assert!(
                reason.contains(
                    "RepositoryPrefix applies to Custom::ECRRepositoryPolicyStatement only"
                ),
                "{resource_type}: {reason}"
            );
        }
        for bad in ["Team", "team//app", "/", "", "Root", "team/*"] {
            let reason = refusal(
                "Custom::ECRRepositoryPolicyStatement",
                json!({"Statement": statement, "RepositoryPrefix": bad}),
            );
            assert!(reason.contains("is not a prefix"), "{bad}: {reason}");
        }
    }

    #[test]
    fn envelope_survives_a_payload_that_does_not_decode() {
        let payload = json!({"RequestType": "Upsert", "ResponseURL": "https://x", "RequestId": "r1", "StackId": 5});
        let envelope = Envelope::from_payload(&payload);
        assert_eq!(envelope.response_url.as_deref(), Some("https://x"));
        assert_eq!(envelope.failure_physical_id(), "failed-create:r1");
        assert_eq!(
            Request::decode(payload).expect_err("unknown type"),
            RequestError::UnknownRequestType("Upsert".into())
        );
    }
}
