//! The logs of a whole lifecycle: JSON lines, every one of them carrying the request's ids,
//! and never the presigned query string.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::{Recorder, capture_logs, deadline_in, event, provider};

const EVENTS: [&str; 4] = [
    "repository-create.json",
    "repository-update.json",
    "bad-input.json",
    "repository-delete.json",
];

#[test]
fn a_lifecycle_logs_json_lines_with_ids_and_no_presigned_query() {
    let text = capture_logs("debug", || async {
        let store = Arc::new(MemoryEcr::new());
        store.create_repository("us-east-1", "app");
        let recorder = Recorder::start(Vec::new()).await;
        let provider = provider(store, &recorder);
        for name in EVENTS {
            provider
                .handle(
                    event(name, &recorder.url),
                    deadline_in(Duration::from_secs(30)),
                )
                .await
                .expect("delivered");
        }
    });
    assert!(
        !text.contains("secret-signature"),
        "the presigned signature leaked"
    );
    assert!(
        !text.contains("AKIDSECRET"),
        "the presigned credential leaked"
    );
    assert!(
        !text.contains("X-Amz-"),
        "a presigned query parameter leaked"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 8, "{} lines from events", lines.len());
    // Every line, not only those inside a span: a line logged outside the event's span
    // would carry no ids, and that is what this catches.
    for line in &lines {
        let span = &line["span"];
        for field in [
            "request_id",
            "stack_id",
            "logical_resource_id",
            "request_type",
        ] {
            assert!(
                span.get(field)
                    .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())),
                "{field} missing in {line}"
            );
        }
    }
    let logged: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["span"]["request_id"].as_str())
        .collect();
    let sent: Vec<Value> = EVENTS.iter().map(|name| event(name, "")).collect();
    let expected: BTreeSet<&str> = sent
        .iter()
        .map(|e| e["RequestId"].as_str().expect("RequestId"))
        .collect();
    assert_eq!(
        logged, expected,
        "the request ids logged are the events' own"
    );
    let received: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "event received")
        .collect();
    assert_eq!(received.len(), 4);
    assert!(
        received[0]["response_url"]
            .as_str()
            .expect("url")
            .ends_with("/cloudformation-responses/stack%7CLogical%7Crequest")
    );
    assert!(lines.iter().any(|l| {
        l["level"] == "ERROR"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("RepositoryNmae"))
    }));
}
