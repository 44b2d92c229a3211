//! No false refusal (CONTRACT 10): every policy the project shows or uses passes every
//! diagnosis check, under the scope its context implies (registry or repository from the
//! resource type; region and account as the document or its event says):
//! - the reference documents' examples (`fixtures`);
//! - the `PolicyText` (or `Statement`) of every template in `examples/`, its CloudFormation
//!   tags resolved as a deployment would;
//! - every sample event in `events/` but `bad-input.json`, old properties included;
//! - the policies the tests write, listed here by name: a policy a test means to succeed is
//!   added to `written_policies`; one it means to be refused is not, and is never found by
//!   accident (nothing here scans the test sources for policies).
//!
//! And the other way round: a bad policy per check is refused by the same walk, and every
//! action the project names is in the catalog. (The bad-event corpus, `tests/bad_input.rs`,
//! runs one event per check through the provider.)

mod fixtures;

use ecr_policy_provider::diagnosis::{self, Check, PolicyKind, Scope, access, actions};
use ecr_policy_provider::policy::Policy;
use serde_json::{Map, Value, json};
use serde_norway::Value as Yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// A policy found in the project, with the scope its context implies.
#[derive(Debug, Clone)]
struct Found {
    origin: String,
    kind: PolicyKind,
    region: String,
    /// `None` where the context does not say.
    account: Option<String>,
    /// A `PolicyText` value: a JSON object, or a string holding one.
    text: Value,
    /// `AllowPublicAccess: true`: public statements are meant (CONTRACT 12).
    allow_public: bool,
}

impl Found {
    fn new(origin: impl Into<String>, kind: PolicyKind, text: Value) -> Self {
        Self {
            origin: origin.into(),
            kind,
            region: REGION.into(),
            account: Some(ACCOUNT.into()),
            text,
            allow_public: false,
        }
    }

    /// The same, with `AllowPublicAccess: true`.
    fn public(self) -> Self {
        Self {
            allow_public: true,
            ..self
        }
    }

    fn verdict(&self) -> Result<(), String> {
        let policy =
            Policy::from_property(&self.text).map_err(|e| format!("not a valid policy: {e}"))?;
        let scope = Scope {
            kind: self.kind,
            partition: "aws",
            region: &self.region,
            account: self.account.as_deref(),
        };
        diagnosis::check(policy.document(), &scope).map_err(|defects| defects.to_string())?;
        let public: Vec<String> = access::analyze(policy.statements(), scope.account)
            .into_iter()
            .filter(|s| s.public.is_some() && !self.allow_public)
            .map(|s| format!("{} is public", s.name()))
            .collect();
        if public.is_empty() {
            Ok(())
        } else {
            Err(public.join("; "))
        }
    }
}

/// Every refused policy as "origin: reason".
fn refusals(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter_map(|f| f.verdict().err().map(|why| format!("{}: {why}", f.origin)))
        .collect()
}

fn assert_all_pass(found: &[Found]) {
    let refused = refusals(found);
    assert!(
        refused.is_empty(),
        "falsely refused:\n{}",
        refused.join("\n")
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files under `dir` (and its folders) that end in `.extension`.
fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut folders = vec![root().join(dir)];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

fn name_of(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The policy kind a `ResourceType` names (CONTRACT 2); `None` for anything else.
fn kind_of(resource_type: &str, properties: &Value) -> Option<PolicyKind> {
    let registry = ["RegistryPolicy", "RegistryPolicyStatement"];
    let repository = ["RepositoryPolicy", "RepositoryPolicyStatement"];
    if registry.iter().any(|s| resource_type.ends_with(s)) {
        Some(PolicyKind::Registry)
    } else if repository.iter().any(|s| resource_type.ends_with(s)) {
        Some(PolicyKind::Repository)
    } else if resource_type == "AWS::CloudFormation::CustomResource" {
        Some(if properties.get("RepositoryName").is_some() {
            PolicyKind::Repository
        } else {
            PolicyKind::Registry
        })
    } else {
        None
    }
}

/// The documents a resource's properties hold: `PolicyText`, or the `Statement` of a
/// statement resource as a document of its own.
fn documents(properties: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(text) = properties.get("PolicyText") {
        out.push(text.clone());
    }
    if let Some(statement) = properties.get("Statement") {
        let statement = match statement {
            Value::String(text) => serde_json::from_str(text).expect("Statement holds JSON"),
            other => other.clone(),
        };
        out.push(json!({"Version": "2012-10-17", "Statement": statement}));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The reference documents.

fn reference_policies() -> Vec<Found> {
    fixtures::references()
        .into_iter()
        .map(|r| {
            // Public access is the point of some ("Allow all AWS accounts to pull images"):
            // tests/access.rs shows it refused without AllowPublicAccess.
            let mut found = Found::new(
                format!("reference {} ({})", r.name, r.file),
                PolicyKind::Repository,
                r.document,
            )
            .public();
            if let Some((region, account)) = r.registry {
                found.kind = PolicyKind::Registry;
                found.region = region.into();
                found.account = Some(account.into());
            }
            found
        })
        .collect()
}

#[test]
fn every_reference_policy_passes_but_the_one_ecr_refuses() {
    let (pulumi, others): (Vec<Found>, Vec<Found>) = reference_policies()
        .into_iter()
        .partition(|f| f.origin.contains("pulumi"));
    assert!(others.len() >= 14, "{} references", others.len());
    assert_all_pass(&others);

    // Pulumi's page puts Resource in a repository policy, which ECR refuses: the checks say
    // so, and the same policy without it passes.
    let [pulumi] = pulumi.as_slice() else {
        panic!("one Pulumi reference")
    };
    let policy = Policy::from_property(&pulumi.text).expect("valid");
    let scope = Scope {
        kind: PolicyKind::Repository,
        partition: "aws",
        region: REGION,
        account: Some(ACCOUNT),
    };
    let defects = diagnosis::check(policy.document(), &scope).expect_err("refused");
    let checks: Vec<Check> = defects.0.iter().map(|d| d.check).collect();
    assert_eq!(checks, [Check::ResourceInRepositoryPolicy]);
    let mut fixed = pulumi.clone();
    fixed.text["Statement"][0]
        .as_object_mut()
        .expect("statement")
        .remove("Resource");
    assert_eq!(fixed.verdict(), Ok(()));
}

// ---------------------------------------------------------------------------------------
// The example templates.

/// What a template's references resolve to in a plausible deployment.
struct Template {
    parameters: BTreeMap<String, String>,
    /// Logical id to resource type.
    resources: BTreeMap<String, String>,
}

impl Template {
    fn new(yaml: &Yaml) -> Self {
        let accounts = ["111122223333", "444455556666", "777788889999"];
        let mut next_account = accounts.iter();
        let mut parameters = BTreeMap::new();
        for (name, spec) in mapping(&yaml["Parameters"]) {
            let value = match &spec["Default"] {
                Yaml::String(text) => text.clone(),
                Yaml::Null => {
                    if name.ends_with("AccountId") {
                        (*next_account.next().expect("enough accounts")).to_owned()
                    } else if name.ends_with("RepositoryName") {
                        "app".to_owned()
                    } else {
                        "example".to_owned()
                    }
                }
                other => scalar(other),
            };
            parameters.insert(name, value);
        }
        let resources = mapping(&yaml["Resources"])
            .map(|(id, resource)| {
                let kind = resource["Type"].as_str().expect("Type").to_owned();
                (id, kind)
            })
            .collect();
        Self {
            parameters,
            resources,
        }
    }

    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::Region" => REGION.into(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => "example-stack".into(),
            _ => {
                if let Some(value) = self.parameters.get(name) {
                    return value.clone();
                }
                match self.resources.get(name).map(String::as_str) {
                    // A repository's Ref is its (generated) name.
                    Some("AWS::ECR::Repository") => name.to_ascii_lowercase(),
                    Some(_) => name.to_owned(),
                    None => panic!("!Ref {name}: neither a parameter nor a resource"),
                }
            }
        }
    }

    fn attribute(&self, logical: &str, attribute: &str) -> String {
        let kind = self.resources.get(logical).map(String::as_str);
        match (kind, attribute) {
            (Some("AWS::IAM::Role"), "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{logical}"),
            (Some("AWS::IAM::User"), "Arn") => format!("arn:aws:iam::{ACCOUNT}:user/{logical}"),
            (Some("AWS::ECR::Repository"), "Arn") => format!(
                "arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{}",
                logical.to_ascii_lowercase()
            ),
            _ => panic!(
                "!GetAtt {logical}.{attribute} ({kind:?}): teach tests/no_false_refusal.rs what \
                 it resolves to"
            ),
        }
    }

    fn substitute(&self, text: &str, variables: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("closing brace");
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(value);
            } else if let Some((logical, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(logical, attribute));
            } else {
                out.push_str(&self.reference(name));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn intrinsic(&self, function: &str, argument: &Yaml) -> Value {
        let text = match function {
            "Ref" => self.reference(argument.as_str().expect("!Ref name")),
            "Sub" => match argument {
                Yaml::String(text) => self.substitute(text, &BTreeMap::new()),
                Yaml::Sequence(items) => {
                    let variables = mapping(&items[1])
                        .map(|(k, v)| (k, as_string(&self.resolve(v))))
                        .collect();
                    self.substitute(items[0].as_str().expect("!Sub text"), &variables)
                }
                other => panic!("!Sub {other:?}"),
            },
            "GetAtt" => {
                let joined = match argument {
                    Yaml::String(text) => text.clone(),
                    Yaml::Sequence(items) => items
                        .iter()
                        .map(|i| i.as_str().expect("name"))
                        .collect::<Vec<_>>()
                        .join("."),
                    other => panic!("!GetAtt {other:?}"),
                };
                let (logical, attribute) = joined.split_once('.').expect("Logical.Attribute");
                self.attribute(logical, attribute)
            }
            "ImportValue" => "arn:aws:lambda:us-east-1:123456789012:function:imported".into(),
            "Join" => {
                let Yaml::Sequence(items) = argument else {
                    panic!("!Join {argument:?}")
                };
                let separator = items[0].as_str().expect("separator");
                match self.resolve(&items[1]) {
                    Value::Array(parts) => parts
                        .iter()
                        .map(as_string)
                        .collect::<Vec<_>>()
                        .join(separator),
                    other => panic!("!Join list {other}"),
                }
            }
            other => panic!("!{other}: teach tests/no_false_refusal.rs this function"),
        };
        Value::String(text)
    }

    /// The value CloudFormation would send: intrinsics resolved, every scalar a string.
    fn resolve(&self, yaml: &Yaml) -> Value {
        match yaml {
            Yaml::Null => Value::Null,
            Yaml::Bool(_) | Yaml::Number(_) | Yaml::String(_) => Value::String(scalar(yaml)),
            Yaml::Sequence(items) => Value::Array(items.iter().map(|i| self.resolve(i)).collect()),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Yaml::Mapping(_) => {
                let entries: Vec<(String, &Yaml)> = mapping(yaml).collect();
                if let [(key, argument)] = entries.as_slice() {
                    if let Some(function) = key.strip_prefix("Fn::") {
                        return self.intrinsic(function, argument);
                    }
                    if key == "Ref" {
                        return self.intrinsic("Ref", argument);
                    }
                }
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k, self.resolve(v)))
                        .collect::<Map<String, Value>>(),
                )
            }
        }
    }
}

fn mapping(yaml: &Yaml) -> impl Iterator<Item = (String, &Yaml)> {
    yaml.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().expect("string key").to_owned(), v))
}

fn scalar(yaml: &Yaml) -> String {
    match yaml {
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.clone(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn as_string(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

fn example_policies() -> Vec<Found> {
    let mut found = Vec::new();
    for path in files("examples", "yaml") {
        let yaml: Yaml = serde_norway::from_str(&read(&path)).expect("YAML");
        let template = Template::new(&yaml);
        for (id, resource) in mapping(&yaml["Resources"]) {
            let properties = template.resolve(&resource["Properties"]);
            let resource_type = resource["Type"].as_str().expect("Type");
            let Some(kind) = kind_of(resource_type, &properties) else {
                continue;
            };
            for text in documents(&properties) {
                let mut f = Found::new(format!("{} {id}", name_of(&path)), kind, text);
                f.allow_public = properties["AllowPublicAccess"] == "true";
                if let Some(region) = properties["Region"].as_str() {
                    f.region = region.into();
                }
                found.push(f);
            }
        }
    }
    found
}

#[test]
fn every_example_template_policy_passes() {
    let found = example_policies();
    assert_eq!(
        found.len(),
        files("examples", "yaml").len(),
        "one policy per example: {:?}",
        found.iter().map(|f| &f.origin).collect::<Vec<_>>()
    );
    assert_all_pass(&found);
}

#[test]
fn templates_resolve_as_cloudformation_would() {
    let found = example_policies();
    let cache = found
        .iter()
        .find(|f| f.origin.contains("registry-pull-through-cache"))
        .expect("pull through cache example");
    assert_eq!(
        cache.text["Statement"][0]["Resource"],
        "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/amazonlinux/amazonlinux"
    );
    assert_eq!(
        cache.text["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:role/CacheUserRole"
    );
    let codebuild = found
        .iter()
        .find(|f| f.origin.contains("repository-service-principal"))
        .expect("service principal example");
    assert_eq!(
        codebuild.text["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        ACCOUNT
    );
    assert_eq!(codebuild.kind, PolicyKind::Repository);
}

// ---------------------------------------------------------------------------------------
// The sample events.

/// The policy a drift sample's CloudTrail record shows being set (`requestParameters.policyText`),
/// in the record's region.
fn drift_event_policies(event: &Value, origin: &str) -> Vec<Found> {
    let detail = &event["detail"];
    let Some(text) = detail["requestParameters"]["policyText"].as_str() else {
        return Vec::new();
    };
    let kind = if detail["eventName"] == "PutRegistryPolicy" {
        PolicyKind::Registry
    } else {
        PolicyKind::Repository
    };
    let mut f = Found::new(
        format!("{origin} policyText"),
        kind,
        serde_json::from_str(text).expect("policyText holds JSON"),
    );
    f.region = detail["awsRegion"].as_str().expect("awsRegion").into();
    vec![f]
}

/// The scope an event implies: its resource type, and the region and account of the
/// function its ServiceToken names (the `Region` property overrides the region).
fn event_policies(event: &Value, origin: &str) -> Vec<Found> {
    let token: Vec<&str> = event["ServiceToken"]
        .as_str()
        .expect("ServiceToken")
        .split(':')
        .collect();
    let mut found = Vec::new();
    for key in ["ResourceProperties", "OldResourceProperties"] {
        let Some(properties) = event.get(key) else {
            continue;
        };
        let resource_type = event["ResourceType"].as_str().expect("ResourceType");
        let kind = kind_of(resource_type, properties).expect("a policy resource type");
        for text in documents(properties) {
            let mut f = Found::new(format!("{origin} {key}"), kind, text);
            f.allow_public = properties["AllowPublicAccess"] == "true";
            f.region = properties["Region"].as_str().unwrap_or(token[3]).into();
            f.account = Some(token[4].into());
            found.push(f);
        }
    }
    found
}

#[test]
fn every_sample_event_policy_passes() {
    let mut found = Vec::new();
    for path in files("events", "json") {
        if path.ends_with("bad-input.json") {
            continue;
        }
        let event: Value = serde_json::from_str(&read(&path)).expect("event JSON");
        if event.get("detail-type").is_some() {
            found.extend(drift_event_policies(&event, &name_of(&path)));
        } else {
            found.extend(event_policies(&event, &name_of(&path)));
        }
    }
    assert!(found.len() >= 9, "{} policies", found.len());
    assert_all_pass(&found);
}

// ---------------------------------------------------------------------------------------
// The policies the tests write.

/// A policy as a test writes it, in JSON text (numbers kept as written).
fn text(policy: &str) -> Value {
    serde_json::from_str(policy).expect("a JSON policy")
}

/// The policies the tests write that are meant to succeed, each with where it is written.
/// A test that writes a new one adds it here.
fn written_policies() -> Vec<Found> {
    use PolicyKind::{Registry, Repository};
    let registry_resource = json!(["arn:aws:ecr:us-east-1:123456789012:repository/*"]);
    vec![
        Found::new(
            "tests/handler.rs: someone else's legacy repository policy",
            Repository,
            text(
                r#"{"Version":"2008-10-17","Statement":[{"Sid":"Legacy","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#,
            ),
        ),
        Found::new(
            "src/event.rs: a PolicyText given as a string",
            Repository,
            text(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#,
            ),
        ),
        Found::new(
            "src/plan/tests.rs: the live registry policy, reordered",
            Registry,
            text(
                r#"{"Statement":[{"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Effect":"Allow"}],"Version":"2012-10-17"}"#,
            ),
        ),
        Found::new(
            "src/plan/tests.rs: another registry policy",
            Registry,
            text(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}"#,
            ),
        ),
        Found::new(
            "src/policy.rs: ECR's reformatting, a number for a string",
            Registry,
            text(
                r#"{"Statement":[{"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":3600}},"Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::111122223333:root"]},"Effect":"Allow","Sid":"A"}],"Version":"2012-10-17"}"#,
            ),
        ),
        Found::new(
            "src/policy.rs: numbers kept exact",
            Repository,
            text(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"NumericLessThan":{"n":[1111011111111111111111111115111,1.0,3600]}}}]}"#,
            ),
        ),
        Found::new(
            "tests/handler.rs: the reordered update",
            Repository,
            json!({"Statement":[{"Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","ecr:BatchCheckLayerAvailability"],"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Effect":"Allow","Sid":"AllowPull"}],"Version":"2012-10-17"}),
        ),
        Found::new(
            "tests/handler.rs: deny everything",
            Repository,
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}),
        ),
        Found::new(
            "tests/handler.rs: pull-through-cache registry policy",
            Registry,
            json!({"Version":"2012-10-17","Statement":[{"Sid":"ReplicationAccessCrossAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:ReplicateImage","ecr:BatchImportUpstreamImage"],"Resource":registry_resource}]}),
        ),
        Found::new(
            "src/lifecycle.rs: the desired registry policy",
            Registry,
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":["ecr:ReplicateImage","ecr:CreateRepository"]}]}),
        ),
        Found::new(
            "src/policy.rs: NotPrincipal and NotAction",
            Repository,
            json!({"Statement": [
                {"Sid":"S","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},
                {"Sid":"S","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"NotAction":"ecr:BatchGetImage"}
            ]}),
        )
        .public(),
        Found::new(
            "src/policy.rs: ECR's reformatting",
            Registry,
            json!({"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666"]},
            "Action":["ecr:ReplicateImage","ecr:CreateRepository"],
            "Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}}]}),
        ),
        Found::new(
            "tests/equivalence.rs: a generated policy",
            Repository,
            json!({"Version":"2012-10-17","Statement":[{"Sid":"A1","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::100000000000:root","arn:aws:iam::999999999998:root"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:ReplicateImage"],"Condition":{"StringEquals":{"aws:PrincipalOrgID":["o-1"]}}},{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}),
        ),
    ]
}

/// Files whose action names are deliberately bad (the diagnosis' own tests and the fuzz
/// targets' invariants), or are this walk's own.
const NOT_SCANNED: [&str; 4] = [
    "tests/no_false_refusal.rs",
    "src/diagnosis.rs",
    "src/diagnosis/actions.rs",
    "src/fuzzing.rs",
];

#[test]
fn every_policy_the_tests_write_passes() {
    // Fixtures of the checks below the provider: public access is judged there by the
    // events that carry them, which say AllowPublicAccess where it is the point.
    let written: Vec<Found> = written_policies()
        .into_iter()
        .map(|mut f| {
            f.allow_public = true;
            f
        })
        .collect();
    assert_all_pass(&written);
}

// ---------------------------------------------------------------------------------------
// The walk can fail.

#[test]
fn the_walk_refuses_a_bad_policy_for_each_check() {
    use PolicyKind::{Registry, Repository};
    let statement = |extra: Value| {
        let mut s = json!({"Sid": "Bad", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
        for (k, v) in extra.as_object().expect("object") {
            s[k] = v.clone();
        }
        json!({"Version": "2012-10-17", "Statement": [s]})
    };
    let cases = [
        (
            Found::new(
                "misspelt action",
                Repository,
                statement(json!({"Action": "ecr:BatchGetImages"})),
            ),
            "did you mean \"ecr:BatchGetImage\"?",
        ),
        (
            Found::new(
                "Resource in a repository policy",
                Repository,
                statement(json!({"Resource": "*"})),
            ),
            "remove Resource",
        ),
        (
            Found::new(
                "another region's repositories",
                Registry,
                statement(json!({"Resource": "arn:aws:ecr:us-west-2:123456789012:repository/*"})),
            ),
            "its region is \"us-west-2\"",
        ),
        (
            Found::new(
                "an 11-digit account",
                Registry,
                statement(
                    json!({"Principal": {"AWS": "arn:aws:iam::12345678901:root"}, "Resource": "*"}),
                ),
            ),
            "is not 12 digits",
        ),
        (
            Found::new(
                "a service that is no host",
                Repository,
                statement(json!({"Principal": {"Service": "codebuild"}})),
            ),
            "has Service principal \"codebuild\"",
        ),
        (
            Found::new("everyone", Repository, statement(json!({}))),
            "is public",
        ),
    ];
    for (found, fragment) in cases {
        let refused = refusals(std::slice::from_ref(&found));
        assert_eq!(refused.len(), 1, "{}", found.origin);
        assert!(
            refused[0].starts_with(&format!("{}: statement 1 (Sid \"Bad\") ", found.origin))
                && refused[0].contains(fragment),
            "{}",
            refused[0]
        );
    }
}

// ---------------------------------------------------------------------------------------
// The catalog knows every action the project names.

/// Action-like names that are not actions, on purpose. Add one here (with why) when a
/// document shows a mistake, such as a troubleshooting entry for a misspelt action.
const NOT_ACTIONS: [(&str, &str); 2] = [
    (
        "ecr:BatchGetImages",
        "the misspelling the tests, docs/troubleshooting.md and the corpus show being refused",
    ),
    (
        "ecr:Bacth*",
        "the wildcard matching nothing that docs/troubleshooting.md shows being refused",
    ),
];

/// Where an action is named: documents, templates, events, scripts and test code, but not
/// the deliberately bad corpora or the diagnosis' own tests.
fn action_sources() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ["README.md", "template.yaml"]
        .iter()
        .map(|p| root().join(p))
        .collect();
    paths.extend(files("docs", "md"));
    paths.extend(files("examples", "yaml"));
    paths.extend(files("events", "json"));
    paths.extend(files("tests", "rs"));
    paths.extend(files("tests/e2e", "py"));
    paths.extend(files("src", "rs"));
    paths.retain(|p| !NOT_SCANNED.contains(&name_of(p).as_str()));
    paths
}

/// Every `ecr:Name` token in a text that is not inside an ARN (`arn:aws:ecr:us-east-1:…`).
fn ecr_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for (at, _) in text.match_indices("ecr:") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || ":-_./".contains(c)) {
            continue;
        }
        let name: String = text[at + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '*' || *c == '?')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_uppercase() || c == '*') {
            tokens.push(format!("ecr:{name}"));
        }
    }
    tokens
}

#[test]
fn every_action_the_project_names_is_in_the_catalog() {
    let mut seen = 0;
    let mut unknown = Vec::new();
    for path in action_sources() {
        for token in ecr_tokens(&read(&path)) {
            seen += 1;
            let excused = NOT_ACTIONS
                .iter()
                .any(|(prefix, _)| token.starts_with(prefix));
            if !excused && !actions::is_known(&token) {
                unknown.push(format!("{}: {token}", name_of(&path)));
            }
        }
    }
    assert!(
        seen >= 100,
        "only {seen} actions found: is the scan broken?"
    );
    assert!(
        unknown.is_empty(),
        "not in the catalog:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_token_scan_skips_arns_and_reads_wildcards() {
    assert_eq!(
        ecr_tokens(
            "\"ecr:BatchGetImage\", arn:aws:ecr:us-east-1:1:repository/x `ecr:*` ecr:Get*Policy"
        ),
        ["ecr:BatchGetImage", "ecr:*", "ecr:Get*Policy"]
    );
}

// ---------------------------------------------------------------------------------------
// The drafted bad events: each is refused by the checks with the fragment it expects.
