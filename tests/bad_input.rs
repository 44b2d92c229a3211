//! The bad-input corpus in `tests/bad-events/`: every case gets a FAILED response whose
//! Reason carries the expected fragment (or, for a ResponseURL that cannot be trusted, no
//! response at all: the invocation ends in the URL's refusal, whose text carries the case's
//! `refused` fragment), and none writes to ECR or panics.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::provider::InvocationError;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::{Recorder, deadline_in, event, provider};

fn apply(event: &mut Value, case: &Value) {
    for pointer in case["remove"].as_array().expect("remove list") {
        let pointer = pointer.as_str().expect("pointer");
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        event
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("parent object")
            .remove(key);
    }
    for (pointer, value) in case["set"].as_object().expect("set map") {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer");
        let target = if parent.is_empty() {
            &mut *event
        } else {
            event.pointer_mut(parent).expect("parent exists")
        };
        target
            .as_object_mut()
            .expect("parent object")
            .insert(key.to_owned(), value.clone());
    }
}

#[tokio::test]
async fn every_bad_event_is_answered_as_the_corpus_says_without_touching_ecr() {
    let dir = format!("{}/tests/bad-events", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 40, "{} cases", paths.len());
    for path in paths {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .expect("case JSON");
        let store = Arc::new(MemoryEcr::new());
        store.create_repository("us-east-1", "app");
        let recorder = Recorder::start(Vec::new()).await;
        let mut e = event(case["base"].as_str().expect("base"), &recorder.url);
        apply(&mut e, &case);
        let result = provider(store.clone(), &recorder)
            .handle(e, deadline_in(Duration::from_secs(30)))
            .await;
        let calls = store.calls();
        assert_eq!(calls.writes + calls.deletes, 0, "{name} changed ECR");
        let requests = recorder.requests();
        if case["response"] == false {
            let fragment = case["refused"]
                .as_str()
                .expect("refused: the refusal's text");
            match &result {
                Err(InvocationError::Url(refusal)) => assert!(
                    refusal.to_string().contains(fragment),
                    "{name}: refused with {refusal:?}, not {fragment:?}"
                ),
                other => panic!("{name}: the ResponseURL must be refused, got {other:?}"),
            }
            assert!(requests.is_empty(), "{name}: nothing may be sent");
            assert_eq!(calls.reads, 0, "{name}: ECR must not be called");
            continue;
        }
        assert!(result.is_ok(), "{name}: {result:?}");
        assert_eq!(requests.len(), 1, "{name}: exactly one response");
        let r = requests[0].json();
        assert!(requests[0].body.len() <= 4096, "{name}");
        let status = case
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("FAILED");
        assert_eq!(r["Status"], status, "{name}: {r}");
        if let Some(fragment) = case.get("reason").and_then(Value::as_str) {
            let reason = r["Reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains(fragment),
                "{name}: {reason:?} lacks {fragment:?}"
            );
            assert!(!reason.contains("panicked"), "{name}: {reason}");
        }
        assert!(
            !r["PhysicalResourceId"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{name}"
        );
    }
}
