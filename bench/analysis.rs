//! The analysis's own cost per event (docs/performance.md): what the provider works out from a
//! request's policy before any ECR call, the diagnosis (CONTRACT 10) and who gets in (CONTRACT
//! 12), exactly as `lifecycle::judge::judge` runs them for every Create and Update.
//!
//! Timed over every sample event of `events/` that asks for a policy (Creates and Updates;
//! parsing the event is not counted: the provider does it once, for everything) and over the
//! 51 one-statement repository policies of `tests/access-cases.json`. Every call is timed on
//! its own, `--rounds` times per input after one round not counted; the figures are
//! microseconds per call. Prints one JSON object for bench/bench.py:
//! `{"events": {"count", "calls", "median_us", "p99_us", "slowest": {"name", "median_us"}},
//! "access_cases": {…}, "rounds"}`.
//!
//! Built in release by scripts/bench (`--features bench`, like the floor, so that it shares the
//! function's dependencies and profile); run from the repository root:
//! `cargo build --release --features bench --bin analysis-cost && target/release/analysis-cost`.

use ecr_policy_provider::diagnosis::access::PublicAccess;
use ecr_policy_provider::event::{Desired, desired_state};
use ecr_policy_provider::lifecycle::Settings;
use ecr_policy_provider::lifecycle::judge::judge;
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEFAULT_ROUNDS: usize = 2_000;
const REGION: &str = "us-east-1";

/// One request's analysis input: what `judge` reads.
struct Input {
    name: String,
    desired: Desired,
    stack_id: String,
}

fn main() -> ExitCode {
    let rounds = match rounds(std::env::args().skip(1)) {
        Ok(rounds) => rounds,
        Err(usage) => {
            eprintln!("analysis-cost: {usage}");
            return ExitCode::from(2);
        }
    };
    let (events, cases) = match (sample_events(Path::new("events")), access_cases()) {
        (Ok(events), Ok(cases)) => (events, cases),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("analysis-cost: {e} (run it from the repository root)");
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        default_region: Some(REGION.to_owned()),
        iam_propagation_timeout: Duration::from_secs(60),
        iam_retry_base: Duration::from_millis(500),
        lease_margin: Duration::from_secs(30),
        public_access: PublicAccess::Block,
        prefix_concurrency: ecr_policy_provider::lifecycle::DEFAULT_PREFIX_CONCURRENCY,
    };
    let report = json!({
        "rounds": rounds,
        "events": summary(&events, rounds, &settings),
        "access_cases": summary(&cases, rounds, &settings),
    });
    println!("{report}");
    ExitCode::SUCCESS
}

fn rounds(mut args: impl Iterator<Item = String>) -> Result<usize, String> {
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(DEFAULT_ROUNDS),
        (Some("--rounds"), Some(n)) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--rounds takes a whole number above 0, not {n:?}")),
        _ => Err("usage: analysis-cost [--rounds N]".to_owned()),
    }
}

/// Every Create and Update of `dir` whose properties give a desired state.
fn sample_events(dir: &Path) -> Result<Vec<Input>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut inputs = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let event: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let field = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default();
        if !matches!(field("RequestType"), "Create" | "Update") {
            continue;
        }
        let properties = event.get("ResourceProperties").unwrap_or(&Value::Null);
        // The bad-input sample is refused before any analysis: nothing to time.
        let Ok(desired) = desired_state(field("ResourceType"), properties, Some(REGION)) else {
            continue;
        };
        inputs.push(Input {
            name: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
            desired,
            stack_id: field("StackId").to_owned(),
        });
    }
    Ok(inputs)
}

/// Each case of `tests/access-cases.json` as the one statement of a repository policy, in the
/// repository Create of `events/`.
fn access_cases() -> Result<Vec<Input>, String> {
    let read = |path: &str| -> Result<Value, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    };
    let table = read("tests/access-cases.json")?;
    let create = read("events/repository-create.json")?;
    let resource_type = create["ResourceType"].as_str().unwrap_or_default();
    let stack_id = create["StackId"].as_str().unwrap_or_default();
    let cases = table["cases"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut inputs = Vec::new();
    for case in cases {
        let mut statement = Map::new();
        statement.insert(
            "Effect".into(),
            case.get("effect").cloned().unwrap_or("Allow".into()),
        );
        statement.insert("Action".into(), "ecr:BatchGetImage".into());
        for (field, key) in [
            ("principal", "Principal"),
            ("not_principal", "NotPrincipal"),
            ("condition", "Condition"),
        ] {
            if let Some(value) = case.get(field) {
                statement.insert(key.into(), value.clone());
            }
        }
        let mut properties = create["ResourceProperties"].clone();
        properties["PolicyText"] = json!({"Version": "2012-10-17", "Statement": [statement]});
        let name = case["name"].as_str().unwrap_or_default().to_owned();
        let desired = desired_state(resource_type, &properties, Some(REGION))
            .map_err(|e| format!("access case {name:?}: {e}"))?;
        inputs.push(Input {
            name,
            desired,
            stack_id: stack_id.to_owned(),
        });
    }
    Ok(inputs)
}

/// Times `judge` on every input, `rounds` times each after a round not counted.
fn summary(inputs: &[Input], rounds: usize, settings: &Settings) -> Value {
    let call = |input: &Input| -> Duration {
        let started = Instant::now();
        black_box(judge(
            black_box(&input.desired),
            black_box(&input.stack_id),
            settings,
        ));
        started.elapsed()
    };
    for input in inputs {
        call(input);
    }
    let mut all = Vec::with_capacity(inputs.len() * rounds);
    let mut slowest = (String::new(), 0.0);
    for input in inputs {
        let mut own: Vec<f64> = (0..rounds).map(|_| micros(call(input))).collect();
        let median = percentile(&mut own, 50.0);
        if median > slowest.1 {
            slowest = (input.name.clone(), median);
        }
        all.extend(own);
    }
    json!({
        "count": inputs.len(),
        "calls": all.len(),
        "median_us": two_places(percentile(&mut all, 50.0)),
        "p99_us": two_places(percentile(&mut all, 99.0)),
        "slowest": {"name": slowest.0, "median_us": two_places(slowest.1)},
    })
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn two_places(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The nearest-rank percentile; 0 for no values.
fn percentile(values: &mut [f64], percent: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (percent / 100.0 * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}
