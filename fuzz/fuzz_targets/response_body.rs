#![no_main]
//! See `ecr_policy_provider::fuzzing::response_body` for the invariants.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecr_policy_provider::fuzzing::response_body(data));
