//! Which kind of event an invocation carries (CONTRACT 13): a custom-resource request, one
//! of ECR's policy calls as CloudTrail records them (or a creation that brings a prefix
//! statement a new target, CONTRACT 15), or the scheduled sweep. Decided here once, from the
//! event's shape, before anything else reads it.

use crate::identity::Target;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::Value;

/// The `detail-type` EventBridge gives a CloudTrail record of an API call.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// The `detail-type` of a scheduled rule's event.
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// ECR's calls that change or remove a policy: the ones the template's rule routes here.
pub const POLICY_CALLS: [&str; 5] = [
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "PutRegistryPolicy",
    "DeleteRegistryPolicy",
    "DeleteRepository",
];

/// ECR's calls that bring a new target a prefix statement may reach (CONTRACT 15): a new
/// repository or creation template gets the statements that cover it; a template's update is
/// a drift check of that template. Routed here by the same rule.
pub const CREATION_CALLS: [&str; 3] = [
    "CreateRepository",
    "CreateRepositoryCreationTemplate",
    "UpdateRepositoryCreationTemplate",
];

/// What an invocation is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A custom-resource request (or something that claims to be one: the request path
    /// answers it, or refuses it when it has no usable `ResponseURL`).
    CustomResource,
    /// An ECR policy call CloudTrail recorded.
    Call(Call),
    /// The scheduled sweep of every target in the record.
    Sweep,
}

/// One ECR policy call, as CloudTrail recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `SetRepositoryPolicy`, `DeleteRegistryPolicy`, ...
    pub name: String,
    pub target: Target,
    /// Who made it: the caller's ARN (`userIdentity.arn`), or, for a caller without one (a
    /// cross-account caller, an AWS service), what CloudTrail says of it (see [`caller`]).
    pub by: Option<String>,
    /// The role the caller's session was issued from (`sessionIssuer.arn`), if any.
    pub role: Option<String>,
    /// What the call left, as the record says: the policy it set, or none; `None` when the
    /// record does not say (a call that failed, or a set without its text).
    pub after: Option<After>,
    /// Whether the call failed (the record has an `errorCode`).
    pub failed: bool,
    /// When it was made (`eventTime`), in milliseconds since the epoch; CloudTrail gives it
    /// to the second, so the call came within the second that follows.
    pub at_ms: Option<u64>,
}

impl Call {
    /// A call that created the target (a repository, a creation template): the prefix
    /// statements that cover it are applied there, rather than a drift check.
    pub fn creates(&self) -> bool {
        self.name == "CreateRepository" || self.name == "CreateRepositoryCreationTemplate"
    }

    /// Whether the call was surely made before `written_ms`, when the provider last stored
    /// the record, and so before its write: what the call left says nothing of that write
    /// (CONTRACT 13). A call without a time, or within the same second, may have come after.
    pub fn came_before(&self, written_ms: u64) -> bool {
        self.at_ms.is_some_and(|at| at + 1000 <= written_ms)
    }
}

/// What a policy call left in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// The policy text it set.
    Policy(String),
    /// No policy (a delete, or the repository deleted).
    Nothing,
}

impl After {
    pub fn text(&self) -> Option<&str> {
        match self {
            After::Policy(text) => Some(text),
            After::Nothing => None,
        }
    }
}

/// An EventBridge event that is neither of the two the function takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event: {what}; the function takes CloudFormation custom-resource requests, \
     ECR's policy calls from CloudTrail (detail-type \"AWS API Call via CloudTrail\", source \
     aws.ecr, eventName one of {}, {}) and its scheduled sweep (detail-type \"Scheduled \
     Event\")",
    POLICY_CALLS.join(", "),
    CREATION_CALLS.join(", ")
)]
pub struct UnknownShape {
    pub what: String,
}

/// The event's shape. An object with a `ResponseURL` or a `RequestType` is a custom-resource
/// request whatever else it holds; an object with EventBridge's `detail-type` must be one of
/// the two drift events; anything else goes to the request path, which refuses what it
/// cannot answer.
pub fn shape_of(event: &Value) -> Result<Shape, UnknownShape> {
    let Some(object) = event.as_object() else {
        return Ok(Shape::CustomResource);
    };
    if object.contains_key("ResponseURL") || object.contains_key("RequestType") {
        return Ok(Shape::CustomResource);
    }
    let Some(detail_type) = object.get("detail-type") else {
        return Ok(Shape::CustomResource);
    };
    let source = object.get("source").and_then(Value::as_str).unwrap_or("");
    match (detail_type.as_str(), source) {
        (Some(SCHEDULE_DETAIL_TYPE), "aws.events") => Ok(Shape::Sweep),
        (Some(CLOUDTRAIL_DETAIL_TYPE), "aws.ecr") => call_of(object).map(Shape::Call),
        _ => Err(UnknownShape {
            what: format!("detail-type {detail_type} from source {source:?}"),
        }),
    }
}

fn call_of(event: &serde_json::Map<String, Value>) -> Result<Call, UnknownShape> {
    let detail = event.get("detail").and_then(Value::as_object);
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let field = |path: &[&str]| {
        let mut value = detail.and_then(|d| d.get(path[0]));
        for key in &path[1..] {
            value = value.and_then(|v| v.get(key));
        }
        text(value)
    };
    let name = field(&["eventName"]).unwrap_or_default();
    if !POLICY_CALLS.contains(&name.as_str()) && !CREATION_CALLS.contains(&name.as_str()) {
        return Err(UnknownShape {
            what: format!("an ECR call {name:?} that changes no policy"),
        });
    }
    let region = field(&["awsRegion"])
        .or_else(|| text(event.get("region")))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| UnknownShape {
            what: format!("a {name} record without awsRegion"),
        })?;
    let target = if name.contains("Registry") {
        Target::Registry { region }
    } else if name.contains("CreationTemplate") {
        let prefix = field(&["requestParameters", "prefix"])
            .filter(|p| !p.is_empty())
            .ok_or_else(|| UnknownShape {
                what: format!("a {name} record without requestParameters.prefix"),
            })?;
        Target::Template { region, prefix }
    } else {
        let repository = field(&["requestParameters", "repositoryName"])
            .filter(|n| !n.is_empty())
            .ok_or_else(|| UnknownShape {
                what: format!("a {name} record without requestParameters.repositoryName"),
            })?;
        Target::Repository {
            region,
            name: repository,
        }
    };
    let failed = field(&["errorCode"]).is_some();
    let after = if failed || name.starts_with("Create") {
        None
    } else if name.starts_with("Delete") {
        Some(After::Nothing)
    } else if name == "UpdateRepositoryCreationTemplate" {
        field(&["requestParameters", "repositoryPolicy"]).map(After::Policy)
    } else {
        field(&["requestParameters", "policyText"]).map(After::Policy)
    };
    Ok(Call {
        name,
        target,
        by: caller(detail.and_then(|d| d.get("userIdentity"))),
        role: field(&["userIdentity", "sessionContext", "sessionIssuer", "arn"]),
        after,
        failed,
        at_ms: field(&["eventTime"]).as_deref().and_then(epoch_ms_of),
    })
}

/// CloudTrail's `eventTime` (`2026-11-23T09:14:03Z`), in milliseconds since the epoch.
fn epoch_ms_of(time: &str) -> Option<u64> {
    let parsed = DateTime::from_str(time, Format::DateTime).ok()?;
    u64::try_from(parsed.to_millis().ok()?).ok()
}

/// Who made a call, from CloudTrail's `userIdentity`: its `arn`; for a caller without one,
/// its `accountId`, `type`, `principalId` and (for a service) `invokedBy`, as
/// `accountId=111122223333 type=AWSAccount principalId=AIDAEXAMPLE`; `None` when it says
/// none of these.
pub fn caller(identity: Option<&Value>) -> Option<String> {
    let identity = identity?;
    let text = |name: &str| {
        identity
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(arn) = text("arn") {
        return Some(arn.to_owned());
    }
    let parts: Vec<String> = ["accountId", "type", "principalId", "invokedBy"]
        .into_iter()
        .filter_map(|name| text(name).map(|value| format!("{name}={value}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(name: &str, parameters: Value) -> Value {
        json!({
            "version": "0",
            "detail-type": CLOUDTRAIL_DETAIL_TYPE,
            "source": "aws.ecr",
            "account": "111122223333",
            "region": "eu-west-1",
            "detail": {
                "eventSource": "ecr.amazonaws.com",
                "eventName": name,
                "awsRegion": "us-east-1",
                "userIdentity": {
                    "type": "AssumedRole",
                    "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/Admin"}}
                },
                "requestParameters": parameters
            }
        })
    }

    #[test]
    fn a_call_is_dated_to_the_second_cloudtrail_gives() {
        let mut event = record("SetRepositoryPolicy", json!({"repositoryName": "app"}));
        let undated = |event: &Value| match shape_of(event) {
            Ok(Shape::Call(call)) => call,
            other => panic!("{other:?}"),
        };
        assert_eq!(undated(&event).at_ms, None);
        assert!(
            !undated(&event).came_before(u64::MAX),
            "no time: maybe after"
        );
        event["detail"]["eventTime"] = "2026-11-23T09:14:03Z".into();
        let call = undated(&event);
        assert_eq!(call.at_ms, Some(1_795_425_243_000));
        // Made within 09:14:03: surely before 09:14:04, maybe after anything earlier.
        assert!(call.came_before(1_795_425_244_000));
        assert!(!call.came_before(1_795_425_243_999));
        event["detail"]["eventTime"] = "yesterday".into();
        assert_eq!(undated(&event).at_ms, None);
    }

    #[test]
    fn each_policy_call_names_its_target_and_caller() {
        for name in POLICY_CALLS {
            let Ok(Shape::Call(call)) =
                shape_of(&record(name, json!({"repositoryName": "team/app"})))
            else {
                panic!("{name} is a call")
            };
            assert_eq!(call.name, name);
            let expected = if name.contains("Registry") {
                Target::Registry {
                    region: "us-east-1".into(),
                }
            } else {
                Target::Repository {
                    region: "us-east-1".into(),
                    name: "team/app".into(),
                }
            };
            assert_eq!(
                call.target, expected,
                "{name}: awsRegion, not the bus's region"
            );
            assert_eq!(
                call.by.as_deref(),
                Some("arn:aws:sts::111122223333:assumed-role/Admin/alice")
            );
            assert_eq!(
                call.role.as_deref(),
                Some("arn:aws:iam::111122223333:role/Admin")
            );
        }
    }

    #[test]
    fn a_call_says_what_it_left_unless_it_failed() {
        let shape = |name: &str, parameters: Value| match shape_of(&record(name, parameters)) {
            Ok(Shape::Call(call)) => call.after,
            other => panic!("{other:?}"),
        };
        let text = r#"{"Version":"2012-10-17","Statement":[]}"#;
        assert_eq!(
            shape(
                "SetRepositoryPolicy",
                json!({"repositoryName": "a", "policyText": text})
            ),
            Some(After::Policy(text.into()))
        );
        assert_eq!(
            shape("PutRegistryPolicy", json!({"policyText": text})),
            Some(After::Policy(text.into()))
        );
        assert_eq!(shape("PutRegistryPolicy", json!({})), None);
        for name in [
            "DeleteRepositoryPolicy",
            "DeleteRegistryPolicy",
            "DeleteRepository",
        ] {
            assert_eq!(
                shape(name, json!({"repositoryName": "a"})),
                Some(After::Nothing)
            );
        }
        let mut failed = record("DeleteRepository", json!({"repositoryName": "a"}));
        failed["detail"]["errorCode"] = "RepositoryNotEmptyException".into();
        let Ok(Shape::Call(call)) = shape_of(&failed) else {
            panic!("a call")
        };
        assert_eq!(call.after, None);
        assert_eq!(After::Policy("p".into()).text(), Some("p"));
        assert_eq!(After::Nothing.text(), None);
    }

    #[test]
    fn a_custom_resource_request_is_never_taken_for_a_drift_event() {
        let request = json!({
            "RequestType": "Create",
            "ResponseURL": "https://example.com",
            "detail-type": SCHEDULE_DETAIL_TYPE,
            "source": "aws.events"
        });
        assert_eq!(shape_of(&request), Ok(Shape::CustomResource));
        let mut only_url = request.clone();
        only_url.as_object_mut().unwrap().remove("RequestType");
        assert_eq!(shape_of(&only_url), Ok(Shape::CustomResource));
        let mut only_type = request;
        only_type.as_object_mut().unwrap().remove("ResponseURL");
        assert_eq!(shape_of(&only_type), Ok(Shape::CustomResource));
        // Neither side's keys: the request path refuses it (no ResponseURL).
        assert_eq!(shape_of(&json!({})), Ok(Shape::CustomResource));
        assert_eq!(shape_of(&json!([1])), Ok(Shape::CustomResource));
    }

    #[test]
    fn the_schedule_is_a_sweep() {
        let event =
            json!({"detail-type": SCHEDULE_DETAIL_TYPE, "source": "aws.events", "detail": {}});
        assert_eq!(shape_of(&event), Ok(Shape::Sweep));
    }

    #[test]
    fn any_other_eventbridge_event_is_refused_with_what_it_was() {
        let other_source = json!({"detail-type": SCHEDULE_DETAIL_TYPE, "source": "aws.s3"});
        let other_type = json!({"detail-type": "ECR Image Action", "source": "aws.ecr"});
        let not_text = json!({"detail-type": 5, "source": "aws.ecr"});
        for event in [other_source, other_type, not_text] {
            let error = shape_of(&event).expect_err("unknown");
            assert!(
                error.to_string().starts_with("unknown event: detail-type"),
                "{error}"
            );
        }
        let image_push = record("PutImage", json!({"repositoryName": "app"}));
        let error = shape_of(&image_push).expect_err("not a policy call");
        assert!(error.what.contains("\"PutImage\""), "{error}");
        let nameless = record("SetRepositoryPolicy", json!({}));
        assert!(
            shape_of(&nameless)
                .expect_err("no repository")
                .what
                .contains("repositoryName")
        );
        let mut regionless = record("PutRegistryPolicy", json!({}));
        regionless["detail"]
            .as_object_mut()
            .unwrap()
            .remove("awsRegion");
        regionless.as_object_mut().unwrap().remove("region");
        assert!(
            shape_of(&regionless)
                .expect_err("no region")
                .what
                .contains("awsRegion")
        );
    }

    #[test]
    fn a_creation_names_the_new_repository_or_template() {
        // CloudTrail's records of these calls (requestParameters as ECR takes them).
        let repository = record(
            "CreateRepository",
            json!({"repositoryName": "team/app", "imageTagMutability": "MUTABLE"}),
        );
        let Ok(Shape::Call(call)) = shape_of(&repository) else {
            panic!("a call")
        };
        assert!(call.creates());
        assert_eq!(
            call.target,
            Target::Repository {
                region: "us-east-1".into(),
                name: "team/app".into()
            }
        );
        assert_eq!(call.after, None);
        let template = record(
            "CreateRepositoryCreationTemplate",
            json!({"prefix": "team/", "appliedFor": ["PULL_THROUGH_CACHE"]}),
        );
        let Ok(Shape::Call(call)) = shape_of(&template) else {
            panic!("a call")
        };
        assert!(call.creates());
        assert_eq!(
            call.target,
            Target::Template {
                region: "us-east-1".into(),
                prefix: "team/".into()
            }
        );
        let update = record(
            "UpdateRepositoryCreationTemplate",
            json!({"prefix": "team/", "repositoryPolicy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}),
        );
        let Ok(Shape::Call(call)) = shape_of(&update) else {
            panic!("a call")
        };
        assert!(!call.creates());
        assert_eq!(
            call.after,
            Some(After::Policy(
                "{\"Version\":\"2012-10-17\",\"Statement\":[]}".into()
            ))
        );
        let mut failed = record("CreateRepository", json!({"repositoryName": "team/app"}));
        failed["detail"]["errorCode"] = "RepositoryAlreadyExistsException".into();
        let Ok(Shape::Call(call)) = shape_of(&failed) else {
            panic!("a call")
        };
        assert!(call.failed);
        let prefixless = record("UpdateRepositoryCreationTemplate", json!({}));
        assert!(
            shape_of(&prefixless)
                .expect_err("no prefix")
                .what
                .contains("prefix")
        );
    }

    #[test]
    fn a_caller_without_an_arn_is_named_by_what_cloudtrail_says_of_it() {
        let by = |identity: Value| {
            let mut event = record("DeleteRepositoryPolicy", json!({"repositoryName": "app"}));
            event["detail"]["userIdentity"] = identity;
            match shape_of(&event) {
                Ok(Shape::Call(call)) => call.by,
                other => panic!("{other:?}"),
            }
        };
        // Another account's caller: CloudTrail gives its account and principal, no ARN.
        assert_eq!(
            by(
                json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "444455556666"})
            ),
            Some("accountId=444455556666 type=AWSAccount principalId=AIDAEXAMPLE".into())
        );
        // An AWS service acting on its own.
        assert_eq!(
            by(json!({"type": "AWSService", "invokedBy": "ecr.amazonaws.com"})),
            Some("type=AWSService invokedBy=ecr.amazonaws.com".into())
        );
        // An ARN, when there is one, says it all.
        assert_eq!(
            by(
                json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob", "accountId": "111122223333"})
            ),
            Some("arn:aws:iam::111122223333:user/bob".into())
        );
        assert_eq!(
            by(json!({"type": "", "arn": "", "accountId": "111122223333"})),
            Some("accountId=111122223333".into()),
            "empty values say nothing"
        );
        assert_eq!(by(json!({})), None);
        assert_eq!(by(Value::Null), None);
    }

    #[test]
    fn the_bus_region_stands_in_for_a_missing_aws_region() {
        let mut event = record("PutRegistryPolicy", json!({}));
        event["detail"].as_object_mut().unwrap().remove("awsRegion");
        let Ok(Shape::Call(call)) = shape_of(&event) else {
            panic!("a call")
        };
        assert_eq!(
            call.target,
            Target::Registry {
                region: "eu-west-1".into()
            }
        );
    }
}
