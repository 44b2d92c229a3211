//! Pins what the Python tooling reads of the provider (`tests/interface.json`, read by the
//! rig in `tests/rig`): the "response sent" log line's message and fields, and the numbers
//! the end-to-end suite times against.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::ecr::{ATTEMPT_TIMEOUT, SDK_MAX_ATTEMPTS};
use ecr_policy_provider::provider::DEFAULT_BUDGET;
use ecr_policy_provider::response::MAX_BODY_BYTES;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::{Recorder, capture_logs, deadline_in, event, provider};

fn interface() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interface.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON")
}

fn names(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list of names")
        .iter()
        .map(|v| v.as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn the_numbers_the_rig_reads_are_the_providers() {
    let i = interface();
    assert_eq!(i["default_budget_seconds"], DEFAULT_BUDGET.as_secs());
    assert_eq!(i["sdk_max_attempts"], SDK_MAX_ATTEMPTS);
    assert_eq!(i["ecr_attempt_timeout_seconds"], ATTEMPT_TIMEOUT.as_secs());
    assert_eq!(i["max_response_bytes"], MAX_BODY_BYTES);
}

#[test]
fn the_response_sent_line_has_exactly_the_fields_the_rig_reads() {
    let i = interface();
    let message = i["response_sent"]["message"].as_str().expect("message");
    let text = capture_logs("info", || async {
        let store = Arc::new(MemoryEcr::new());
        let recorder = Recorder::start(Vec::new()).await;
        provider(store, &recorder)
            .handle(
                event("registry-create.json", &recorder.url),
                deadline_in(Duration::from_secs(30)),
            )
            .await
            .expect("delivered");
    });
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|l: &Value| l["message"] == message)
        .collect();
    assert_eq!(lines.len(), 1, "one {message:?} line in {text}");
    let line = lines[0].as_object().expect("object");
    let own: BTreeSet<String> = line
        .keys()
        .filter(|k| !["timestamp", "level", "message", "span"].contains(&k.as_str()))
        .cloned()
        .collect();
    assert_eq!(own, names(&i["response_sent"]["fields"]));
    let span: BTreeSet<String> = line["span"]
        .as_object()
        .expect("span")
        .keys()
        .filter(|k| *k != "name")
        .cloned()
        .collect();
    assert_eq!(span, names(&i["response_sent"]["span_fields"]));
    assert!(line["ecr_writes"].as_u64() == Some(1), "{line:?}");
}

#[test]
fn the_lock_item_the_rig_reads_is_the_providers() {
    use ecr_policy_provider::identity::Target;
    use ecr_policy_provider::lock::{NO_POLICY, TABLE_VARIABLE, key};
    let lock = &interface()["lock_item"];
    assert_eq!(lock["table_variable"], TABLE_VARIABLE);
    let registry = Target::Registry {
        region: "eu-west-1".into(),
    };
    let repository = Target::Repository {
        region: "eu-west-1".into(),
        name: "team/app".into(),
    };
    let format = |kind: &str| {
        lock["key"][kind]
            .as_str()
            .expect("a key format")
            .replace("{region}", "eu-west-1")
            .replace("{name}", "team/app")
    };
    assert_eq!(format("registry"), key(&registry));
    assert_eq!(format("repository"), key(&repository));
    assert_eq!(lock["digest_after_delete"], NO_POLICY);
    // The attribute names are the DynamoDB expressions' own: each must be in them as the
    // key, or as a name the lease or the record is written under.
    let source = include_str!("../src/lock/dynamo.rs");
    let attributes = lock["attributes"].as_object().expect("attributes");
    assert_eq!(
        attributes
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["key", "lease_owner", "lease_until_ms", "digest", "holders"])
    );
    for (meaning, name) in attributes {
        let name = name.as_str().expect("a name");
        let used = if meaning == "key" {
            source.contains(&format!(".key(\"{name}\""))
        } else {
            source.contains(&format!("SET {name} = "))
                || source.contains(&format!(", {name} = "))
                || source.contains(&format!("get(\"{name}\")"))
        };
        assert!(
            used,
            "{meaning}: {name:?} is not an attribute of src/lock/dynamo.rs"
        );
    }
}
