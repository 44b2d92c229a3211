//! Entry points shared by the `cargo fuzz` targets in `fuzz/` and the regression test that
//! replays their findings (`tests/fuzz_regressions.rs`). Each panics only on a broken
//! invariant.

use crate::event::{Envelope, Request, desired_state};
use crate::policy::Policy;
use crate::response::{Response, Status, UrlPolicy};
use serde_json::{Map, Value};

const RESOURCE_TYPES: [&str; 4] = [
    "Custom::ECRRegistryPolicy",
    "Custom::ECRRepositoryPolicy",
    "AWS::CloudFormation::CustomResource",
    "Custom::Other",
];

/// Any bytes as an event: decoding never panics, and the envelope always yields an id to
/// answer with.
pub fn event_decoding(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let envelope = Envelope::from_raw(text);
    assert!(!envelope.failure_physical_id().is_empty());
    if let Ok(Request::Update { physical_id, .. } | Request::Delete { physical_id }) =
        Request::decode_raw(text)
    {
        assert!(!physical_id.is_empty());
    }
    let _ = UrlPolicy::from_allowed_hosts("127.0.0.1:5000").check(envelope.response_url.as_deref());
}

/// Any JSON as resource properties, under each resource type: validation never panics, and
/// what it accepts is a policy ECR could take.
pub fn property_validation(data: &[u8]) {
    let Ok(properties) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for resource_type in RESOURCE_TYPES {
        if let Ok(desired) = desired_state(resource_type, &properties, Some("us-east-1")) {
            assert!(desired.policy.compact().chars().count() <= crate::policy::MAX_POLICY_CHARS);
            assert!(desired.policy.equivalent(&desired.policy));
        }
    }
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
    let mut data = Map::new();
    data.insert("PolicyText".into(), policy.into());
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
