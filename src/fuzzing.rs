//! Entry points shared by the `cargo fuzz` targets in `fuzz/` and the regression test that
//! replays their findings (`tests/fuzz_regressions.rs`). Each panics only on a broken
//! invariant.

use crate::event::{Envelope, Request, desired_state, parse_event};
use crate::policy::Policy;
use crate::response::{Data, Response, Status, UrlPolicy};
use serde_json::{Map, Value};

const RESOURCE_TYPES: [&str; 4] = [
    "Custom::ECRRegistryPolicy",
    "Custom::ECRRepositoryPolicy",
    "AWS::CloudFormation::CustomResource",
    "Custom::Other",
];

/// Any bytes as an event: decoding never panics; the envelope read from the raw text (the
/// path for events that do not parse) agrees with the one read from the parsed event; a
/// decoded request has the envelope's type and a PhysicalResourceId where it needs one; an
/// accepted ResponseURL is an allowed one.
pub fn event_decoding(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let envelope = Envelope::from_raw(text);
    let Ok(parsed) = parse_event(text) else {
        return;
    };
    assert_eq!(
        envelope,
        Envelope::from_payload(&parsed),
        "envelope readers disagree"
    );
    match Request::decode(parsed) {
        Ok(Request::Create { .. }) => assert_eq!(envelope.request_type.as_deref(), Some("Create")),
        Ok(Request::Update { physical_id, .. }) => {
            assert_eq!(envelope.request_type.as_deref(), Some("Update"));
            assert_eq!(envelope.physical_resource_id, Some(physical_id));
        }
        Ok(Request::Delete { physical_id, .. }) => {
            assert_eq!(envelope.request_type.as_deref(), Some("Delete"));
            assert_eq!(envelope.physical_resource_id, Some(physical_id));
        }
        Err(_) => {}
    }
    let urls = UrlPolicy::from_allowed_hosts("127.0.0.1:5000");
    if let Ok(url) = urls.check(envelope.response_url.as_deref()) {
        let local = url.host_str() == Some("127.0.0.1") && url.port() == Some(5000);
        assert!(
            local || (url.scheme() == "https" && url.port().is_none()),
            "{url}"
        );
    }
}

/// Any JSON as resource properties, under each resource type: validation never panics, and
/// what it accepts is a policy ECR could take, whose compact form reads back as the same
/// policy and which is equivalent to a reordered copy of itself.
pub fn property_validation(data: &[u8]) {
    let Ok(properties) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for resource_type in RESOURCE_TYPES {
        let desired = desired_state(resource_type, &properties, Some("us-east-1"));
        if let Some(policy) = desired.as_ref().ok().and_then(|d| d.policy()) {
            assert!(policy.compact().chars().count() <= crate::policy::MAX_POLICY_CHARS);
            let read_back = Policy::from_live(policy.compact()).expect("compact form parses");
            assert_eq!(
                read_back.compact(),
                policy.compact(),
                "compact form changed"
            );
            assert!(policy.equivalent(&read_back), "compact form not equivalent");
            let reordered = Policy::from_live(&reordered(policy.document()).to_string())
                .expect("a reordered document parses");
            assert!(
                policy.equivalent(&reordered),
                "reordering changed the meaning"
            );
        }
    }
}

/// The document with its keys, statements and set values in reverse order: the same grant.
fn reordered(document: &Map<String, Value>) -> Value {
    let reverse_set = |value: &Value| match value {
        Value::Array(items) => Value::Array(items.iter().rev().cloned().collect()),
        other => other.clone(),
    };
    let statement = |s: &Value| match s {
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| {
                    let v = if ["Action", "NotAction", "Resource", "NotResource"]
                        .contains(&k.as_str())
                    {
                        reverse_set(v)
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Value::Object(
        document
            .iter()
            .rev()
            .map(|(k, v)| {
                let v = match (k.as_str(), v) {
                    ("Statement", Value::Array(items)) => {
                        Value::Array(items.iter().rev().map(statement).collect())
                    }
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// Any text as a policy: parsing never panics; a valid policy is equivalent to itself
/// however ECR reformats it, and equivalence is symmetric.
pub fn policy_equivalence(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (left, right) = text.split_once('\u{0}').unwrap_or((text, text));
    let Ok(policy) = Policy::from_property(&Value::String(left.to_owned())) else {
        return;
    };
    let pretty = serde_json::to_string_pretty(&Value::Object(policy.document().clone()))
        .expect("a parsed document serialises");
    let reformatted = Policy::from_live(&pretty).expect("a parsed document reparses");
    assert!(
        policy.equivalent(&reformatted),
        "reformatting changed the meaning"
    );
    let reordered = Policy::from_live(&reordered(policy.document()).to_string())
        .expect("a reordered document parses");
    assert!(
        policy.equivalent(&reordered),
        "reordering changed the meaning"
    );
    if let Some(other) = Policy::from_live(right) {
        assert_eq!(
            policy.equivalent(&other),
            other.equivalent(&policy),
            "asymmetric"
        );
    }
}

/// Any reason text and data: the body is valid JSON and within 4,096 bytes.
pub fn response_body(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let middle = (0..=text.len() / 2)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let (reason, policy) = text.split_at(middle);
    let data = Data {
        policy_text: Some(policy.to_owned()),
        ..Data::default()
    };
    let response = Response {
        status: Status::Failed,
        reason: Some(reason.to_owned()),
        reason_tail: " (logs: group, stream)".into(),
        physical_resource_id: "failed-create:r".into(),
        stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1".into(),
        request_id: "r".into(),
        logical_resource_id: "Policy".into(),
        data,
    };
    let body = response.to_body();
    assert!(
        body.len() <= crate::response::MAX_BODY_BYTES,
        "{} bytes",
        body.len()
    );
    serde_json::from_slice::<Value>(&body).expect("the body is JSON");
}
