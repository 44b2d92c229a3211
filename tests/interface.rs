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
            ("written_policy", attr::WRITTEN_POLICY),
            ("gone", attr::GONE),
            ("failed", attr::FAILED),
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

/// The pinned log lines of prefix statements (`operations_log`), by name.
fn operations_lines() -> BTreeMap<String, Value> {
    interface()["operations_log"]["lines"]
        .as_object()
        .expect("lines by name")
        .iter()
        .map(|(name, line)| (name.clone(), line.clone()))
        .collect()
}

/// A line as pinned or as found in the source: message, level, fields.
type Pinned = (String, String, BTreeSet<String>);

fn pinned(line: &Value) -> Pinned {
    (
        line["message"].as_str().expect("message").to_owned(),
        line["level"].as_str().expect("level").to_owned(),
        names(&line["fields"]),
    )
}

/// Every `tracing::<level>!(...)` call of a Rust source: its message (the last argument, a
/// string literal), its level as the JSON line writes it, and its field names (`name = …`,
/// or `name`, `%name`, `?name` alone).
fn logged_in(source: &str) -> Vec<Pinned> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("tracing::") {
        rest = &rest[at + "tracing::".len()..];
        let Some((level, after)) = rest.split_once("!(") else {
            break;
        };
        if !["trace", "debug", "info", "warn", "error"].contains(&level) {
            continue;
        }
        // The arguments, split at the commas outside brackets and strings.
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut args = vec![String::new()];
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                args.last_mut().expect("an argument").push(c);
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' | '[' | '{' => depth += 1,
                ')' if depth == 0 => {
                    end = i;
                    break;
                }
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            args.last_mut().expect("an argument").push(c);
        }
        rest = &after[end..];
        let args: Vec<&str> = args
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect();
        let Some((message, fields)) = args.split_last() else {
            continue;
        };
        let message = message
            .strip_prefix('"')
            .and_then(|m| m.strip_suffix('"'))
            .unwrap_or_else(|| panic!("a message literal: {message}"));
        let fields = fields
            .iter()
            .map(|f| {
                let name = f.split('=').next().expect("a name").trim();
                name.trim_start_matches(['%', '?']).to_owned()
            })
            .collect();
        found.push((message.to_owned(), level.to_ascii_uppercase(), fields));
    }
    found
}

#[test]
fn the_prefix_log_lines_are_logged_as_pinned_and_every_one_is_pinned() {
    let i = interface();
    let lines = operations_lines();
    assert!(lines.len() >= 20, "{} lines", lines.len());
    let complete: BTreeSet<String> = names(&i["operations_log"]["complete_sources"]);
    let sources: BTreeSet<String> = lines
        .values()
        .map(|l| l["source"].as_str().expect("source").to_owned())
        .chain(complete.iter().cloned())
        .collect();
    for source in sources {
        let path = format!("{}/{source}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let logged: BTreeSet<Pinned> = logged_in(&text).into_iter().collect();
        let here: BTreeSet<Pinned> = lines
            .values()
            .filter(|l| l["source"] == source.as_str())
            .map(pinned)
            .collect();
        let missing: Vec<&Pinned> = here.difference(&logged).collect();
        assert!(
            missing.is_empty(),
            "pinned but not logged in {source}: {missing:?}"
        );
        if complete.contains(&source) {
            let unpinned: Vec<&Pinned> = logged.difference(&here).collect();
            assert!(
                unpinned.is_empty(),
                "logged in {source} but not pinned: {unpinned:?}"
            );
        }
    }
    // The operators' list names every one, with its level and fields.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/troubleshooting.md");
    let docs = std::fs::read_to_string(path).expect("docs/troubleshooting.md");
    for (name, line) in &lines {
        let (message, level, _) = pinned(line);
        let fields: Vec<String> = line["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| format!("`{}`", f.as_str().expect("a name")))
            .collect();
        let row = format!("| `{message}` | {level} | {} |", fields.join(", "));
        assert!(
            docs.contains(&row),
            "{name}: docs/troubleshooting.md lacks {row}"
        );
    }
}

#[test]
fn a_source_with_a_renamed_field_or_message_no_longer_matches_its_pin() {
    let source = r#"tracing::info!(work, done = n, paused_ms = p.as_millis() as u64, "prefix statement progress");
        tracing::error!(target_key = %crate::lock::key(&t), error = %f, "a target (of the prefix), refused");"#;
    let logged = logged_in(source);
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        logged,
        [
            (
                "prefix statement progress".to_owned(),
                "INFO".to_owned(),
                set(&["work", "done", "paused_ms"])
            ),
            (
                "a target (of the prefix), refused".to_owned(),
                "ERROR".to_owned(),
                set(&["target_key", "error"])
            ),
        ]
    );
}

mod operations {
    use super::*;
    use ecr_policy_provider::ecr::EcrError;
    use ecr_policy_provider::lock::memory::MemoryLock;
    use ecr_policy_provider::provider::{Config, Provider};
    use ecr_policy_provider::relay::{Handing, Relay};
    use ecr_policy_provider::response::{Sender, UrlPolicy};
    use ecr_policy_provider::retry::Clock;
    use serde_json::json;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ecr-policy-provider";
    const URL: &str = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/r?X-Amz-Signature=0";
    /// Repositories under `team/`: more than one 40 s invocation reaches at a read a second.
    const UNDER: usize = 200;

    /// The self-invoke's stand-in: the events handed over, in order.
    #[derive(Default)]
    struct Queue(Mutex<VecDeque<String>>);

    impl Relay for Queue {
        fn hand_over<'a>(&'a self, _: &'a str, payload: String) -> Handing<'a> {
            self.0.lock().expect("lock").push_back(payload);
            Box::pin(async { Ok(()) })
        }
    }

    impl Queue {
        fn next(&self) -> Option<String> {
            self.0.lock().expect("lock").pop_front()
        }
    }

    fn denied() -> EcrError {
        support::denied("DeleteRepositoryPolicy", "not allowed")
    }

    /// A prefix statement's life on tokio's paused clock, through every path that logs:
    /// a fan-out over 200 repositories at a read a second (progress lines, a throttled
    /// read, a repository deleted meanwhile, continued in the next invocation, a step
    /// delivered twice), a Create refused by one repository whose take-out fails, a new
    /// repository's event (first not found), one no prefix covers, the sweep, and a Delete
    /// failing on one repository.
    async fn life() {
        let clock = Clock::starting_at(1_795_392_000_000);
        let store = Arc::new(MemoryEcr::new());
        for n in 0..UNDER {
            store.create_repository("us-east-1", &format!("team/r{n:03}"));
        }
        for name in ["other/x", "other/y", "beside"] {
            store.create_repository("us-east-1", name);
        }
        let theirs = json!({"Sid": "OtherPull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": ["ecr:BatchGetImage"]});
        let doc = json!({"Version": "2012-10-17", "Statement": [theirs]});
        store.seed(&support::repo("other/x"), &doc.to_string());
        store.delay_reads(Duration::from_secs(1));
        let lock = Arc::new(MemoryLock::with_clock(clock));
        let (sender, _capture) = Sender::capturing();
        let config = Config {
            urls: UrlPolicy::default(),
            settings: support::world::settings(),
            default_budget: Duration::from_secs(180),
            logs: None,
            drift: Default::default(),
            clock,
        };
        let queue = Arc::new(Queue::default());
        let provider = Provider::new(store.clone(), sender, config)
            .with_lock(Some(lock))
            .with_relay(queue.clone());
        let within = |seconds: u64| clock.now_ms() + seconds * 1000;
        let request = |event: Value| {
            let mut event = event;
            event["ResponseURL"] = URL.into();
            event
        };

        // The Create over `team/`: one read throttled, one repository deleted meanwhile.
        store.fail_reads([EcrError::Throttled {
            operation: "GetRepositoryPolicy",
            detail: "Rate exceeded".into(),
        }]);
        store.delete_after_listing("us-east-1", "team/r007");
        let create = request(support::sample("repository-prefix-statement-create.json"));
        provider
            .handle_as(create.clone(), within(40), "inv-0", ARN)
            .await
            .expect("handed over");
        let mut n = 1;
        let mut first = true;
        while let Some(next) = queue.next() {
            let next: Value = serde_json::from_str(&next).expect("JSON");
            provider
                .handle_as(next.clone(), within(40), &format!("inv-{n}"), ARN)
                .await
                .expect("handled");
            if first {
                // Lambda delivers it once more.
                provider
                    .handle_as(next, within(40), &format!("inv-{n}-again"), ARN)
                    .await
                    .expect("a duplicate");
                first = false;
            }
            n += 1;
        }

        // A Create on `other/`, refused by `other/x`; taking it out of `other/y` fails.
        let mut other = create.clone();
        other["RequestId"] = "other-create".into();
        other["LogicalResourceId"] = "OtherPull".into();
        other["ResourceProperties"]["RepositoryPrefix"] = "other".into();
        other["ResourceProperties"]["Statement"][0]["Sid"] = "OtherPull".into();
        store.fail_deletes([denied()]);
        provider
            .handle_as(other, within(40), "inv-other", ARN)
            .await
            .expect("answered");
        store.delay_reads(Duration::ZERO);

        // A new repository under `team/` (not found at first), and one beside every prefix.
        for name in ["team/new", "beside/new"] {
            store.create_repository("us-east-1", name);
            let mut e = support::sample("drift/create-repository.json");
            e["detail"]["requestParameters"]["repositoryName"] = name.into();
            e["detail"]["responseElements"]["repository"]["repositoryName"] = name.into();
            store.fail_reads([EcrError::RepositoryNotFound {
                name: name.into(),
                region: "us-east-1".into(),
            }]);
            provider
                .invoke(&e.to_string(), within(60), "inv-event")
                .await
                .expect("handled");
        }
        store.fail_reads([]);
        provider
            .invoke(
                &support::sample("drift/sweep.json").to_string(),
                within(120),
                "inv-sweep",
            )
            .await
            .expect("swept");

        // The Delete of `team/`, failing on one repository.
        let mut delete = create;
        delete["RequestType"] = "Delete".into();
        delete["RequestId"] = "delete-1".into();
        delete["PhysicalResourceId"] = format!(
            "ecr-policy-statements/6a2f0c4e-9b1d-4e7a-8c3f-2d5b7e9a1c02/PullForTeamConsumers/repository-prefix:us-east-1:{}:team/",
            ecr_policy_provider::ecr::memory::ACCOUNT_ID
        )
        .into();
        store.fail_deletes([denied()]);
        provider
            .handle_as(delete, within(120), "inv-delete", ARN)
            .await
            .expect("answered");
    }

    #[test]
    fn the_prefix_log_lines_carry_their_pinned_level_and_fields() {
        let text = support::capture_logs_paused("info", life);
        let lines = operations_lines();
        let mut seen = BTreeSet::new();
        for line in text.lines() {
            let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let Some((name, pin)) = lines.iter().find(|(_, p)| p["message"] == line["message"])
            else {
                continue;
            };
            let own: BTreeSet<String> = line
                .as_object()
                .expect("object")
                .keys()
                .filter(|k| !["timestamp", "level", "message", "span"].contains(&k.as_str()))
                .cloned()
                .collect();
            assert_eq!(own, names(&pin["fields"]), "{name}: {line}");
            assert_eq!(line["level"], pin["level"], "{name}: {line}");
            seen.insert(name.clone());
        }
        let expected = [
            "prefix_progress",
            "prefix_done",
            "prefix_target_gone",
            "prefix_target_refused",
            "prefix_not_taken_out",
            "prefix_target_failed",
            "ecr_throttled",
            "continued",
            "step_duplicate",
            "arrival_applied",
            "arrival_not_yet",
            "arrival_not_covered",
            "swept",
        ];
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|name| !seen.contains(*name))
            .collect();
        assert!(missing.is_empty(), "never logged: {missing:?}\n{text}");
    }
}
