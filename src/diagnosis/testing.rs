//! What the tests of every diagnosis room share: the scopes, and a statement judged alone.

use super::{PolicyKind, Scope, check_statements};
use serde_json::{Value, json};

pub(super) const REGISTRY: Scope<'static> = Scope {
    kind: PolicyKind::Registry,
    partition: "aws",
    region: "us-east-1",
    account: Some("123456789012"),
};
pub(super) const REPOSITORY: Scope<'static> = Scope {
    kind: PolicyKind::Repository,
    ..REGISTRY
};
pub(super) const UNKNOWN_ACCOUNT: Scope<'static> = Scope {
    account: None,
    ..REGISTRY
};

pub(super) fn statement(extra: Value) -> Value {
    let mut s =
        json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"});
    for (k, v) in extra.as_object().expect("object") {
        s[k] = v.clone();
    }
    s
}

/// The defects one statement gets in a scope, as `Reason` text.
pub(super) fn defects(scope: &Scope, extra: Value) -> Result<(), String> {
    check_statements(&[statement(extra)], scope).map_err(|d| d.to_string())
}

pub(super) fn refused(scope: &Scope, extra: Value, fragment: &str) {
    let reason = defects(scope, extra.clone()).expect_err(&format!("{extra} is refused"));
    assert!(reason.contains(fragment), "{extra}: {reason}");
    assert!(reason.starts_with("statement 1 (Sid \"S\") "), "{reason}");
}

pub(super) fn accepted(scope: &Scope, extra: Value) {
    if let Err(reason) = defects(scope, extra.clone()) {
        panic!("{extra} was refused: {reason}");
    }
}
