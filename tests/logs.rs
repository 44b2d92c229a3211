//! The logs of a whole lifecycle: JSON lines carrying the request's ids, and never the
//! presigned query string.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::{Recorder, capture_logs, deadline_in, event, provider};

#[test]
fn a_lifecycle_logs_json_lines_with_ids_and_no_presigned_query() {
    let text = capture_logs("debug", || async {
        let store = Arc::new(MemoryEcr::new());
        store.create_repository("us-east-1", "app");
        let recorder = Recorder::start(Vec::new()).await;
        let provider = provider(store, &recorder);
        for name in [
            "repository-create.json",
            "repository-update.json",
            "bad-input.json",
            "repository-delete.json",
        ] {
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
    let ours: Vec<&Value> = lines.iter().filter(|l| l.get("span").is_some()).collect();
    assert!(ours.len() >= 8, "{} lines from events", ours.len());
    for line in &ours {
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
    let received: Vec<&Value> = ours
        .iter()
        .filter(|l| l["message"] == "event received")
        .copied()
        .collect();
    assert_eq!(received.len(), 4);
    assert!(
        received[0]["response_url"]
            .as_str()
            .expect("url")
            .ends_with("/cloudformation-responses/stack%7CLogical%7Crequest")
    );
    assert!(ours.iter().any(|l| {
        l["level"] == "ERROR"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("RepositoryNmae"))
    }));
}
