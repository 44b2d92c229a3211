//! Replays every fuzz seed and every input a fuzzer once crashed on (`fuzz/regressions/`)
//! through the same entry points the fuzz targets use.

use ecr_policy_provider::fuzzing;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("read input");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} broke an invariant", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn event_decoding_inputs() {
    assert!(replay("event_decoding", fuzzing::event_decoding) > 0);
}

#[test]
fn property_validation_inputs() {
    assert!(replay("property_validation", fuzzing::property_validation) > 0);
}

#[test]
fn policy_equivalence_inputs() {
    assert!(replay("policy_equivalence", fuzzing::policy_equivalence) > 0);
}

#[test]
fn response_body_inputs() {
    assert!(replay("response_body", fuzzing::response_body) > 0);
}
