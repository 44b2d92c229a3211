//! Pins what the Python tooling reads of the provider (`tests/interface.json`, read by the
//! rig in `tests/rig`): the "response sent" log line's message and fields, and the numbers
//! the end-to-end suite times against.

mod support;

use ecr_policy_provider::ecr::memory::MemoryEcr;
use ecr_policy_provider::ecr::{ATTEMPT_TIMEOUT, SDK_MAX_ATTEMPTS};
use ecr_policy_provider::provider::DEFAULT_BUDGET;
use ecr_policy_provider::response::MAX_BODY_BYTES;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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
    use ecr_policy_provider::lifecycle::LEASE_MARGIN;
    use ecr_policy_provider::lock::dynamo::attr;
    use ecr_policy_provider::lock::{RECORD_FORMAT, REMOVED_KEPT_MS, TABLE_VARIABLE, key};
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
            .replace("{prefix}", "team/")
    };
    let template = Target::Template {
        region: "eu-west-1".into(),
        prefix: "team/".into(),
    };
    assert_eq!(format("registry"), key(&registry));
    assert_eq!(format("repository"), key(&repository));
    assert_eq!(format("template"), key(&template));
    assert_eq!(lock["format"], RECORD_FORMAT);
    assert_eq!(lock["lease_margin_seconds"], LEASE_MARGIN.as_secs());
    assert_eq!(lock["removed_kept_seconds"], REMOVED_KEPT_MS / 1000);
    let table = |section: &str| -> BTreeMap<String, String> {
        lock[section]
            .as_object()
            .expect("a table")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("a name").to_owned()))
            .collect()
    };
    let pinned = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        table("attributes"),
        pinned(&[
            ("key", attr::KEY),
            ("lease_owner", attr::LEASE_OWNER),
            ("lease_until_ms", attr::LEASE_UNTIL),
            ("expires_at", attr::EXPIRES_AT),
            ("format", attr::FORMAT),
            ("statements", attr::STATEMENTS),
            ("owner", attr::OWNER),
            ("removed", attr::REMOVED),
            ("removed_policy", attr::REMOVED_POLICY),
            ("displaced", attr::DISPLACED),
            ("written_at_ms", attr::WRITTEN_AT),
        ])
    );
    assert_eq!(
        table("entry_attributes"),
        pinned(&[
            ("holder", attr::HOLDER),
            ("stack", attr::STACK),
            ("logical", attr::LOGICAL),
            ("statement", attr::STATEMENT),
            ("policy", attr::POLICY),
            ("prior", attr::PRIOR),
            ("prior_text", attr::PRIOR_TEXT),
            ("removed_at_ms", attr::REMOVED_AT),
            ("force", attr::FORCE),
            ("earlier", attr::EARLIER),
            ("also", attr::ALSO),
            ("sid", attr::SID),
            ("by", attr::BY),
            ("ended", attr::ENDED),
        ])
    );
    assert_eq!(
        table("format_1_attributes"),
        pinned(&[
            ("holders", attr::LEGACY_HOLDERS),
            ("digest", attr::LEGACY_DIGEST)
        ])
    );
}

#[test]
fn the_physical_ids_the_rig_builds_are_the_providers() {
    use ecr_policy_provider::identity::{PhysicalId, Target, failed_create_id};
    let ids = &interface()["physical_ids"];
    let pattern = |kind: &str| ids[kind].as_str().expect("a format").to_owned();
    let registry = Target::Registry {
        region: "eu-west-1".into(),
    };
    let repository = Target::Repository {
        region: "eu-west-1".into(),
        name: "team/app".into(),
    };
    let account = "123456789012".to_owned();
    let registry_id = PhysicalId::Policy {
        target: registry.clone(),
        account: account.clone(),
    }
    .format("aws")
    .expect("an id");
    assert_eq!(
        pattern("registry")
            .replace("{region}", "eu-west-1")
            .replace("{account}", &account),
        registry_id
    );
    let repository_id = PhysicalId::Policy {
        target: repository,
        account: account.clone(),
    }
    .format("aws-cn")
    .expect("an id");
    assert_eq!(
        pattern("repository")
            .replace("{partition}", "aws-cn")
            .replace("{region}", "eu-west-1")
            .replace("{account}", &account)
            .replace("{name}", "team/app"),
        repository_id
    );
    let statements = PhysicalId::Statements {
        target: registry,
        account,
        tag: "4c9e1a20-7b3d".into(),
        sids: vec!["A".into(), "B".into()],
    }
    .format("aws")
    .expect("an id");
    assert_eq!(
        pattern("statements")
            .replace("{tag}", "4c9e1a20-7b3d")
            .replace("{sids}", "A,B")
            .replace("{target_id}", &registry_id),
        statements
    );
    assert_eq!(
        pattern("failed_create").replace("{request_id}", "5f0c"),
        failed_create_id("5f0c")
    );
    for prefix in ["team/", "ROOT"] {
        let prefix_statements = PhysicalId::Prefix {
            region: "eu-west-1".into(),
            prefix: prefix.into(),
            account: "123456789012".into(),
            tag: "4c9e1a20-7b3d".into(),
            sids: vec!["A".into(), "B".into()],
        }
        .format("aws")
        .expect("an id");
        let target_id = pattern("prefix")
            .replace("{region}", "eu-west-1")
            .replace("{account}", "123456789012")
            .replace("{prefix}", prefix);
        assert_eq!(
            pattern("statements")
                .replace("{tag}", "4c9e1a20-7b3d")
                .replace("{sids}", "A,B")
                .replace("{target_id}", &target_id),
            prefix_statements
        );
    }
}

#[test]
fn the_drift_line_metric_and_result_are_the_ones_the_rig_reads() {
    use ecr_policy_provider::drift::{self, Finding, Summary, compare::Difference};
    let i = &interface()["drift"];
    assert_eq!(i["metric_namespace"], drift::METRIC_NAMESPACE);
    assert_eq!(i["metric_name"], drift::METRIC_NAME);
    assert_eq!(i["action_variable"], drift::ACTION_VARIABLE);
    assert_eq!(i["role_variable"], drift::ROLE_VARIABLE);
    let finding = Finding {
        target: support::repo("app"),
        difference: Difference::default(),
        by: None,
        restored: false,
        not_restored: Some("busy".into()),
    };
    let line: Value = serde_json::from_str(&drift::drift_line(&finding, "t")).expect("JSON");
    assert_eq!(line["message"], i["message"]);
    let keys: BTreeSet<String> = line
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| !["timestamp", "level", "message"].contains(&k.as_str()))
        .cloned()
        .collect();
    let declared: BTreeSet<String> = names(&i["fields"])
        .union(&names(&i["optional_fields"]))
        .cloned()
        .collect();
    assert_eq!(keys, declared);
    let result: BTreeSet<String> = Summary::default()
        .result()
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(result, names(&i["result"]));
}
