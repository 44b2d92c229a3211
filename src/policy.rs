//! Policy documents: parsing, the limits ECR enforces, and equivalence (CONTRACT 3 and 5).
//!
//! Documents stay `serde_json::Value`s on purpose: ECR must receive exactly what the user
//! wrote (compacted, key order kept, CloudFormation's stringified scalars untouched), and a
//! typed IAM model would re-serialise it. Equivalence works on a canonical form instead.

pub mod duplicates;

use crate::identity::{arn_fields, valid_account};
use duplicates::{Duplicate, Step};
use serde_json::{Map, Value};
use std::fmt;

/// The longest policy ECR accepts, in characters of the compact form.
pub const MAX_POLICY_CHARS: usize = 10_240;

/// How deep a policy may nest: the deepest IAM element, a condition's value list, sits six
/// levels down; beyond ten is not a policy.
pub const MAX_DEPTH: usize = 10;

const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];
/// The `Version` of a policy this provider starts (CONTRACT 9).
pub const NEW_POLICY_VERSION: &str = "2012-10-17";

/// Keys whose values are sets: order and a single value versus a one-element list do not
/// matter.
const SET_KEYS: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];
const PRINCIPAL_KEYS: [&str; 2] = ["Principal", "NotPrincipal"];

/// Why a `PolicyText` is not a policy ECR could take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("is not valid JSON ({0}); give a JSON object, or a string holding one")]
    NotJson(String),
    #[error("must be a JSON object (or a string holding one), got {0}")]
    NotObject(&'static str),
    #[error(
        "is {chars} characters long in compact form; ECR accepts at most {MAX_POLICY_CHARS}: \
         merge statements or move grants to IAM policies"
    )]
    TooLong { chars: usize },
    #[error(
        "nests deeper than {MAX_DEPTH} levels; an IAM policy needs six at most \
         (document, statements, statement, Condition, operator, values)"
    )]
    TooDeep,
    #[error("has Version {0}; use \"2012-10-17\" (or the older \"2008-10-17\")")]
    BadVersion(String),
    #[error("has no Statement; add a Statement list with at least one statement")]
    NoStatement,
    #[error("has an empty Statement list; add at least one statement")]
    EmptyStatement,
    #[error("has a Statement that is {0}; use a statement object or a list of them")]
    StatementNotListOrObject(&'static str),
    #[error("{0}")]
    Statement(StatementError),
    #[error("is an empty list; give at least one statement")]
    NoStatements,
    #[error(
        "statement {position} has no Sid; a statement resource names its statements by Sid: \
         give each a unique, non-empty \"Sid\""
    )]
    NoSid { position: usize },
    #[error("statement {position} repeats Sid {}; give each statement its own Sid", crate::text::quote(.sid))]
    RepeatedSid { position: usize, sid: String },
    /// A key given twice in one object of a string (CONTRACT 12).
    #[error(
        "has key {} twice in {place}; a JSON parser keeps only one of them, so the policy \
         written would not be the one you wrote: merge the two into one",
        crate::text::quote(.key)
    )]
    DuplicateKey { place: String, key: String },
}

/// A problem with one statement, naming it by position and `Sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    /// 1-based position in the `Statement` list.
    pub position: usize,
    pub sid: Option<String>,
    pub problem: String,
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statement {}", self.position)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {})", crate::text::quote(sid))?;
        }
        write!(f, " {}", self.problem)
    }
}

/// A validated policy document, with the compact text that is sent to ECR.
#[derive(Debug, Clone)]
pub struct Policy {
    document: Map<String, Value>,
    compact: String,
}

impl Policy {
    /// Parses and checks a `PolicyText` property value: a JSON object, or a string holding
    /// one (CONTRACT 3). Which actions and principals are valid is left to ECR.
    pub fn from_property(value: &Value) -> Result<Self, PolicyError> {
        let document = match value {
            Value::Object(map) => map.clone(),
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    if let Some(duplicate) = duplicates::find(text) {
                        return Err(duplicate_key(duplicate, statements_of(&map), true));
                    }
                    map
                }
                Ok(other) => return Err(PolicyError::NotObject(kind_of(&other))),
                Err(e) => return Err(PolicyError::NotJson(e.to_string())),
            },
            other => return Err(PolicyError::NotObject(kind_of(other))),
        };
        let compact = Value::Object(document.clone()).to_string();
        let chars = compact.chars().count();
        if chars > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLong { chars });
        }
        if 1 + document.values().map(depth).max().unwrap_or(0) > MAX_DEPTH {
            return Err(PolicyError::TooDeep);
        }
        validate(&document)?;
        Ok(Self { document, compact })
    }

    /// Reads a policy as ECR returns it. No validation: what is live is what it is.
    /// `None` when the text is not a JSON object, which then never counts as equivalent.
    pub fn from_live(text: &str) -> Option<Self> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(document)) => {
                let compact = Value::Object(document.clone()).to_string();
                Some(Self { document, compact })
            }
            _ => None,
        }
    }

    /// The compact JSON sent to ECR.
    pub fn compact(&self) -> &str {
        &self.compact
    }

    /// The parsed document.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }

    /// Every action string named in `Action` or `NotAction`, in document order.
    pub fn actions(&self) -> Vec<&str> {
        self.statements()
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|s| ["Action", "NotAction"].into_iter().filter_map(|k| s.get(k)))
            .flat_map(one_or_many)
            .filter_map(Value::as_str)
            .collect()
    }

    /// True when both documents grant the same thing (CONTRACT 5).
    pub fn equivalent(&self, other: &Policy) -> bool {
        let partition = partition_of(self.statements().iter().chain(other.statements()));
        canonical_document(&self.document, partition)
            == canonical_document(&other.document, partition)
    }

    /// A document built by this provider (a merge of statements): its compact form, or how
    /// long that form would be when it is over ECR's limit.
    pub fn from_document(document: Map<String, Value>) -> Result<Self, PolicyError> {
        let compact = Value::Object(document.clone()).to_string();
        let chars = compact.chars().count();
        if chars > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLong { chars });
        }
        Ok(Self { document, compact })
    }

    /// The statements, as a list whether the document holds a list or one object.
    pub fn statements(&self) -> &[Value] {
        statements_of(&self.document)
    }
}

/// True when two statements grant the same thing (CONTRACT 5, statement by statement).
pub fn statement_equivalent(a: &Value, b: &Value) -> bool {
    let partition = partition_of([a, b].into_iter());
    canonical_statement(a, partition) == canonical_statement(b, partition)
}

/// The partition the statements' AWS principals name (`arn:<partition>:…`), `aws` when
/// none does: a bare account id stands for that partition's root ARN, as ECR writes it back.
fn partition_of<'a>(statements: impl Iterator<Item = &'a Value>) -> &'a str {
    statements
        .filter_map(|statement| statement.as_object())
        .flat_map(|map| PRINCIPAL_KEYS.iter().filter_map(|key| map.get(*key)))
        .filter_map(|principal| principal.get("AWS"))
        .flat_map(one_or_many)
        .filter_map(Value::as_str)
        .find_map(|text| {
            text.strip_prefix("arn:")
                .and_then(|rest| rest.split(':').next())
        })
        .unwrap_or("aws")
}

/// The `Sid` of a statement, when it has a string one.
pub fn sid_of(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// The statements of a statement resource (CONTRACT 9): each checked as in a whole policy,
/// each with its own non-empty `Sid`, in the order given.
#[derive(Debug, Clone)]
pub struct Statements {
    items: Vec<Value>,
}

impl Statements {
    /// Parses a `Statement` property: a statement object, a non-empty list of them, or a
    /// string holding either.
    pub fn from_property(value: &Value) -> Result<Self, PolicyError> {
        let parsed;
        let value = match value {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|e| PolicyError::NotJson(e.to_string()))?;
                if let Some(duplicate) = duplicates::find(text) {
                    return Err(duplicate_key(duplicate, statement_list(&parsed), false));
                }
                &parsed
            }
            other => other,
        };
        let items = match value {
            Value::Array(items) if items.is_empty() => return Err(PolicyError::NoStatements),
            Value::Array(items) => items.clone(),
            single @ Value::Object(_) => vec![single.clone()],
            other => return Err(PolicyError::StatementNotListOrObject(kind_of(other))),
        };
        let chars = Value::Array(items.clone()).to_string().chars().count();
        if chars > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLong { chars });
        }
        if items.iter().map(depth).max().unwrap_or(0) + 2 > MAX_DEPTH {
            return Err(PolicyError::TooDeep);
        }
        let mut seen: Vec<&str> = Vec::new();
        for (index, statement) in items.iter().enumerate() {
            let position = index + 1;
            validate_statement(position, statement).map_err(PolicyError::Statement)?;
            match sid_of(statement) {
                None | Some("") => return Err(PolicyError::NoSid { position }),
                Some(sid) if seen.contains(&sid) => {
                    return Err(PolicyError::RepeatedSid {
                        position,
                        sid: sid.to_owned(),
                    });
                }
                Some(sid) => seen.push(sid),
            }
        }
        Ok(Self { items })
    }

    /// The statements, in the order given.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// Those of them whose Sid `keep` accepts, in the order given; `None` when none is.
    pub fn only(&self, keep: impl Fn(&str) -> bool) -> Option<Self> {
        let items: Vec<Value> = self
            .items
            .iter()
            .filter(|statement| sid_of(statement).is_some_and(&keep))
            .cloned()
            .collect();
        (!items.is_empty()).then_some(Self { items })
    }

    /// Their Sids, in the order given.
    pub fn sids(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(sid_of)
            .map(str::to_owned)
            .collect()
    }
}

/// Names where a key given twice is: the statement (position and `Sid`) and the keys down
/// to it. `in_document`: the path starts at a whole document, else at the statement list.
fn duplicate_key(duplicate: Duplicate, statements: &[Value], in_document: bool) -> PolicyError {
    let mut path = duplicate.path.as_slice();
    if in_document {
        match path.first() {
            Some(Step::Key(key)) if key == "Statement" => path = &path[1..],
            _ => {
                let place = match path {
                    [] => "the document".to_owned(),
                    _ => format!("the document's {}", keys(path)),
                };
                return PolicyError::DuplicateKey {
                    place,
                    key: duplicate.key,
                };
            }
        }
    }
    let index = match path.first() {
        Some(Step::Index(index)) => {
            path = &path[1..];
            *index
        }
        _ => 0,
    };
    let mut place = format!("statement {}", index + 1);
    if let Some(sid) = statements.get(index).and_then(sid_of) {
        place.push_str(&format!(" (Sid {})", crate::text::quote(sid)));
    }
    if !path.is_empty() {
        place.push_str(&format!(", in its {}", keys(path)));
    }
    PolicyError::DuplicateKey {
        place,
        key: duplicate.key,
    }
}

/// `Condition.StringEquals`, `Action[2]`.
fn keys(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&crate::text::shorten(key, 40));
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Nesting depth, counting objects and lists.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A value that is one item or a list of them (an `Action`, a `Principal`'s `AWS`, a
/// condition's values), as a list.
pub fn one_or_many(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// The statements of a policy document, as a slice: the one reading of `Statement` that every
/// module uses (see [`statement_list`]).
pub fn statements_of(document: &Map<String, Value>) -> &[Value] {
    document.get("Statement").map(statement_list).unwrap_or(&[])
}

/// The statements a `Statement` value holds, as IAM reads it: one object is one statement, a
/// list is its items (each still judged: the validators refuse an item that is not an object,
/// and the checks skip it), and anything else (a string, a number, a boolean, `null`) holds
/// none. That last shape is no policy at all: [`Policy::from_property`] and
/// [`Statements::from_property`] refuse it by name ("has a Statement that is a string") and ECR
/// refuses it too, so reading it as no statements only keeps every check, merge and
/// classification from taking a bare string for a statement.
pub fn statement_list(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => std::slice::from_ref(single),
        _ => &[],
    }
}

fn validate(document: &Map<String, Value>) -> Result<(), PolicyError> {
    if let Some(version) = document.get("Version")
        && !version.as_str().is_some_and(|v| VERSIONS.contains(&v))
    {
        return Err(PolicyError::BadVersion(crate::text::shorten(
            &version.to_string(),
            80,
        )));
    }
    let list = match document.get("Statement") {
        None => return Err(PolicyError::NoStatement),
        Some(Value::Array(items)) if items.is_empty() => return Err(PolicyError::EmptyStatement),
        Some(Value::Array(items)) => items.as_slice(),
        Some(single @ Value::Object(_)) => std::slice::from_ref(single),
        Some(other) => return Err(PolicyError::StatementNotListOrObject(kind_of(other))),
    };
    for (index, statement) in list.iter().enumerate() {
        validate_statement(index + 1, statement).map_err(PolicyError::Statement)?;
    }
    Ok(())
}

fn validate_statement(position: usize, statement: &Value) -> Result<(), StatementError> {
    let fail = |sid: Option<&str>, problem: String| StatementError {
        position,
        sid: sid.map(str::to_owned),
        problem,
    };
    let Some(map) = statement.as_object() else {
        return Err(fail(
            None,
            format!("is {}, not an object", kind_of(statement)),
        ));
    };
    let sid = map.get("Sid").and_then(Value::as_str);
    match map.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        Some(other) => {
            return Err(fail(
                sid,
                format!(
                    "has Effect {}; use \"Allow\" or \"Deny\"",
                    crate::text::quote(other)
                ),
            ));
        }
        None => return Err(fail(sid, "has no Effect; add \"Effect\": \"Allow\"".into())),
    }
    match (map.get("Action"), map.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(fail(
                sid,
                "has both Action and NotAction; keep only one".into(),
            ));
        }
        (None, None) => {
            return Err(fail(
                sid,
                "has no Action; add the ECR actions it grants or denies".into(),
            ));
        }
        (Some(actions), None) | (None, Some(actions)) => {
            check_action_list(actions).map_err(|problem| fail(sid, problem))?
        }
    }
    if !PRINCIPAL_KEYS.iter().any(|k| map.contains_key(*k)) {
        return Err(fail(
            sid,
            "has no Principal; ECR policies are resource policies and must name who they apply \
             to, e.g. \"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:root\"}"
                .into(),
        ));
    }
    Ok(())
}

fn check_action_list(actions: &Value) -> Result<(), String> {
    match actions {
        Value::String(_) => Ok(()),
        Value::Array(items) if items.is_empty() => {
            Err("has an empty action list; name at least one action".into())
        }
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
        other => Err(format!(
            "has actions given as {}; use a string or a list of strings",
            kind_of(other)
        )),
    }
}

/// The canonical form behind equivalence: object keys sorted, sets sorted and deduplicated,
/// statements sorted, scalars compared as the strings IAM reads them as.
fn canonical_document(document: &Map<String, Value>, partition: &str) -> String {
    let mut out = Map::new();
    let mut keys: Vec<&String> = document.keys().collect();
    keys.sort();
    for key in keys {
        let value = &document[key];
        let canonical = if key == "Statement" {
            let mut list: Vec<String> = one_or_many(value)
                .iter()
                .map(|s| canonical_statement(s, partition).to_string())
                .collect();
            list.sort();
            Value::Array(list.into_iter().map(Value::String).collect())
        } else {
            canonical_plain(value)
        };
        out.insert(key.clone(), canonical);
    }
    Value::Object(out).to_string()
}

fn canonical_statement(statement: &Value, partition: &str) -> Value {
    let Some(map) = statement.as_object() else {
        return canonical_plain(statement);
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Map::new();
    for key in keys {
        let value = &map[key];
        let canonical = if SET_KEYS.contains(&key.as_str()) {
            canonical_set(value, canonical_scalar)
        } else if PRINCIPAL_KEYS.contains(&key.as_str()) {
            canonical_principal(value, partition)
        } else if key == "Condition" {
            canonical_condition(value)
        } else {
            canonical_plain(value)
        };
        out.insert(key.clone(), canonical);
    }
    Value::Object(out)
}

fn canonical_principal(value: &Value, partition: &str) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                let canonical = if key == "AWS" {
                    canonical_set(&map[key], |v| canonical_aws_principal(v, partition))
                } else {
                    canonical_set(&map[key], canonical_scalar)
                };
                out.insert(key.clone(), canonical);
            }
            Value::Object(out)
        }
        other => canonical_plain(other),
    }
}

/// IAM reads a bare account id and that account's root ARN (in the policy's `partition`) as
/// the same principal, and ECR may return one for the other; a root ARN of another
/// partition is another principal.
fn canonical_aws_principal(value: &Value, partition: &str) -> String {
    let text = canonical_scalar(value);
    if valid_account(&text) {
        return format!("account:{partition}:{text}");
    }
    if let ["arn", partition, "iam", "", account, "root"] = arn_fields(&text)[..]
        && valid_account(account)
    {
        return format!("account:{partition}:{account}");
    }
    text
}

fn canonical_condition(value: &Value) -> Value {
    let Some(operators) = value.as_object() else {
        return canonical_plain(value);
    };
    let mut names: Vec<&String> = operators.keys().collect();
    names.sort();
    let mut out = Map::new();
    for name in names {
        let canonical = match &operators[name] {
            Value::Object(keys) => {
                let mut key_names: Vec<&String> = keys.keys().collect();
                key_names.sort();
                let mut inner = Map::new();
                for key in key_names {
                    inner.insert(key.clone(), canonical_set(&keys[key], canonical_scalar));
                }
                Value::Object(inner)
            }
            other => canonical_plain(other),
        };
        out.insert(name.clone(), canonical);
    }
    Value::Object(out)
}

/// A set of values: sorted, deduplicated, a single value the same as a one-element list.
fn canonical_set(value: &Value, normalise: impl Fn(&Value) -> String) -> Value {
    let mut items: Vec<String> = one_or_many(value).iter().map(normalise).collect();
    items.sort();
    items.dedup();
    Value::Array(items.into_iter().map(Value::String).collect())
}

/// Scalars as IAM reads them: `3600`, `"3600"`, `true` and `"true"` are the same value.
fn canonical_scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => canonical_plain(other).to_string(),
    }
}

/// Any other value: keys sorted, list order kept, scalars as strings.
fn canonical_plain(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical_plain(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_plain).collect()),
        scalar => Value::String(canonical_scalar(scalar)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> Policy {
        Policy::from_property(&v).expect("valid policy")
    }

    #[test]
    fn statements_are_read_from_an_object_or_a_list_and_from_nothing_else() {
        let one = json!({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"});
        let two = json!([one.clone(), "not an object"]);
        let statements = |document: Value| -> Vec<Value> {
            statements_of(document.as_object().expect("object")).to_vec()
        };
        // GIVEN one statement object, a list, an empty list THEN one, every item, none.
        assert_eq!(
            statements(json!({"Statement": one.clone()})),
            vec![one.clone()]
        );
        assert_eq!(
            statements(json!({"Statement": two.clone()})),
            [one.clone(), json!("not an object")]
        );
        assert!(statements(json!({"Statement": []})).is_empty());
        // GIVEN no Statement, or one that is neither THEN no statements.
        assert!(statements(json!({"Version": "2012-10-17"})).is_empty());
        for other in [json!("a string"), json!(42), json!(true), json!(null)] {
            assert!(
                statements(json!({"Statement": other.clone()})).is_empty(),
                "{other}"
            );
            assert!(statement_list(&other).is_empty(), "{other}");
            // The validators refuse such a document by name.
            let refused = Policy::from_property(&json!({"Statement": other.clone()}));
            assert!(
                matches!(refused, Err(PolicyError::StatementNotListOrObject(_))),
                "{other}: {refused:?}"
            );
        }
        assert_eq!(statement_list(&one), std::slice::from_ref(&one));
        assert_eq!(statement_list(&two).len(), 2);
        // A policy reads its statements the same way, live ones included.
        let live = Policy::from_live(r#"{"Statement":"x"}"#).expect("an object");
        assert!(live.statements().is_empty());
        assert!(live.actions().is_empty());
        assert_eq!(
            policy(json!({"Statement": one.clone()})).statements(),
            [one]
        );
    }

    #[test]
    fn values_given_once_or_as_a_list_read_as_a_list() {
        assert_eq!(one_or_many(&json!("ecr:*")), [json!("ecr:*")]);
        assert_eq!(one_or_many(&json!(["a", "b"])), [json!("a"), json!("b")]);
        assert!(one_or_many(&json!([])).is_empty());
        assert_eq!(one_or_many(&json!(null)), [json!(null)]);
    }

    #[test]
    fn string_and_object_forms_parse_to_the_same_compact_text() {
        let doc = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]});
        let from_object = policy(doc.clone());
        let from_string = policy(Value::String(doc.to_string()));
        assert_eq!(from_object.compact(), from_string.compact());
        assert!(from_object.compact().starts_with("{\"Version\""));
    }

    #[test]
    fn reports_each_structural_problem_by_statement() {
        let cases = [
            (json!("not json"), "is not valid JSON"),
            (json!([1]), "must be a JSON object"),
            (json!({"Statement": []}), "empty Statement"),
            (
                json!({"Version": "2020-01-01", "Statement": {}}),
                "Version \"2020-01-01\"",
            ),
            (
                json!({"Statement": [{"Effect":"Permit","Principal":"*","Action":"x"}]}),
                "Effect \"Permit\"",
            ),
            (
                json!({"Statement": [{"Sid":"A","Effect":"Allow","Principal":"*","Action":"x","NotAction":"y"}]}),
                "statement 1 (Sid \"A\") has both Action and NotAction",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Principal":"*"}]}),
                "has no Action",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Action":"ecr:*"}]}),
                "has no Principal",
            ),
            // Every kind of JSON value is named where it does not belong.
            (
                json!([1]),
                "must be a JSON object (or a string holding one), got a list",
            ),
            (
                json!("7"),
                "must be a JSON object (or a string holding one), got a number",
            ),
            (json!(null), "got null"),
            (json!(true), "got a boolean"),
            (json!("\"text\""), "got a string"),
            (json!({"Statement": 7}), "has a Statement that is a number;"),
            (
                json!({"Statement": [[]]}),
                "statement 1 is a list, not an object",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Principal":"*","Action":[]}]}),
                "statement 1 has an empty action list",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Principal":"*","Action":{}}]}),
                "has actions given as an object; use a string or a list of strings",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Principal":"*","Action":["ecr:*", 1]}]}),
                "has actions given as a list;",
            ),
            (
                json!({"Statement": [{"Effect":"Allow","Principal":"*","NotAction":null}]}),
                "has actions given as null;",
            ),
        ];
        for (input, expected) in cases {
            let err = Policy::from_property(&input)
                .expect_err("must be refused")
                .to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn repeated_sids_and_not_principal_are_accepted() {
        let p = policy(json!({"Statement": [
            {"Sid":"S","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},
            {"Sid":"S","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"NotAction":"ecr:BatchGetImage"}
        ]}));
        let statements = p.document()["Statement"].as_array().expect("list");
        assert_eq!(statements.len(), 2, "both statements kept");
        assert!(statements.iter().all(|s| s["Sid"] == "S"));
        assert!(statements[1].get("NotPrincipal").is_some());
    }

    #[test]
    fn the_size_limit_counts_characters_of_the_compact_form() {
        let pad = "x".repeat(MAX_POLICY_CHARS);
        let err = Policy::from_property(
            &json!({"Statement":[{"Effect":"Allow","Principal":"*","Action":pad}]}),
        )
        .expect_err("too long");
        assert!(matches!(err, PolicyError::TooLong { .. }));
        // Pretty-printed input is measured after compaction.
        let doc = json!({"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]});
        let pretty = serde_json::to_string_pretty(&doc).expect("serialises");
        policy(Value::String(pretty));
    }

    /// A statement whose `aws:PrincipalAccount` condition value is `levels` lists deep: a
    /// document holding it nests 5 + `levels` deep.
    fn nested_statement(levels: usize) -> Value {
        let mut value = json!("111122223333");
        for _ in 0..levels {
            value = json!([value]);
        }
        json!({"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "ecr:*",
               "Condition": {"StringEquals": {"aws:PrincipalAccount": value}}})
    }

    #[test]
    fn ten_levels_of_nesting_pass_and_eleven_do_not() {
        for (levels, deep) in [(5, false), (6, true), (7, true)] {
            let statement = nested_statement(levels);
            let document = Policy::from_property(&json!({"Statement": [statement.clone()]}));
            let property = Statements::from_property(&json!([statement]));
            if deep {
                assert!(
                    matches!(document, Err(PolicyError::TooDeep)),
                    "{levels}: {document:?}"
                );
                assert!(
                    matches!(property, Err(PolicyError::TooDeep)),
                    "{levels}: {property:?}"
                );
            } else {
                assert!(document.is_ok(), "{levels}: {document:?}");
                assert!(property.is_ok(), "{levels}: {property:?}");
            }
        }
    }

    #[test]
    fn exactly_the_size_limit_passes_and_one_character_more_does_not() {
        // GIVEN a document padded to MAX_POLICY_CHARS characters of compact form (é: two bytes
        // each, so its bytes are over the limit).
        let with_action = |action: String| json!({"Statement": [{"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": action}]});
        let bare = with_action(String::new()).to_string().chars().count();
        let at_limit = with_action("é".repeat(MAX_POLICY_CHARS - bare));
        let over = with_action("é".repeat(MAX_POLICY_CHARS - bare + 1));
        assert!(at_limit.to_string().len() > MAX_POLICY_CHARS);
        // THEN the first is a policy, from a property or built by the provider, and the second
        // is not, with its length.
        assert_eq!(
            policy(at_limit.clone()).compact().chars().count(),
            MAX_POLICY_CHARS
        );
        let built = Policy::from_document(at_limit.as_object().expect("object").clone());
        assert!(built.is_ok(), "{built:?}");
        let too_long = PolicyError::TooLong {
            chars: MAX_POLICY_CHARS + 1,
        };
        assert_eq!(
            Policy::from_property(&over).expect_err("over"),
            too_long.clone()
        );
        let built = Policy::from_document(over.as_object().expect("object").clone());
        assert_eq!(built.expect_err("over"), too_long);
        // A statement property counts its list: `{"Statement":` and `}` are not in it.
        let list = over["Statement"].clone();
        let list_chars = list.to_string().chars().count();
        let padded = |extra: usize| {
            let mut list = list.clone();
            let action = "é".repeat(MAX_POLICY_CHARS - bare + 1 + extra);
            list[0]["Action"] = json!(action);
            list
        };
        let fits = MAX_POLICY_CHARS - list_chars;
        assert!(Statements::from_property(&padded(fits)).is_ok());
        assert_eq!(
            Statements::from_property(&padded(fits + 1)).expect_err("over"),
            too_long
        );
        assert!(matches!(
            Statements::from_property(&padded(fits + 100)),
            Err(PolicyError::TooLong { chars }) if chars == MAX_POLICY_CHARS + 100
        ));
    }

    #[test]
    fn a_statement_property_is_one_statement_or_a_non_empty_list_each_with_its_own_sid() {
        let a = json!({"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "ecr:*"});
        let b = json!({"Sid": "B", "Effect": "Deny", "Principal": "*", "Action": "ecr:*"});
        let read = |value: Value| Statements::from_property(&value);
        let one = read(a.clone()).expect("one statement");
        assert_eq!(one.items(), std::slice::from_ref(&a));
        let two = read(Value::String(json!([a, b]).to_string())).expect("a list in a string");
        assert_eq!(two.sids(), ["A", "B"]);
        assert_eq!(two.items().len(), 2);
        for (value, expected) in [
            (json!([]), PolicyError::NoStatements),
            (json!("[]"), PolicyError::NoStatements),
            (
                json!(7),
                PolicyError::StatementNotListOrObject(kind_of(&json!(7))),
            ),
            (
                json!([a, {"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]),
                PolicyError::NoSid { position: 2 },
            ),
            (
                json!([b, {"Sid": "", "Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]),
                PolicyError::NoSid { position: 2 },
            ),
            (
                json!([a, b, a]),
                PolicyError::RepeatedSid {
                    position: 3,
                    sid: "A".into(),
                },
            ),
        ] {
            assert_eq!(
                read(value.clone()).expect_err("refused"),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn ecr_reformatting_is_equivalent() {
        let ours = policy(
            json!({"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666"]},
            "Action":["ecr:ReplicateImage","ecr:CreateRepository"],
            "Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}}]}),
        );
        let live = Policy::from_live(
            r#"{
  "Statement" : [ {
    "Action" : [ "ecr:CreateRepository", "ecr:ReplicateImage" ],
    "Condition" : { "NumericLessThan" : { "aws:MultiFactorAuthAge" : 3600 } },
    "Principal" : { "AWS" : [ "arn:aws:iam::444455556666:root", "arn:aws:iam::111122223333:root" ] },
    "Effect" : "Allow",
    "Sid" : "A"
  } ],
  "Version" : "2012-10-17"
}"#,
        )
        .expect("json object");
        assert!(ours.equivalent(&live));
    }

    #[test]
    fn sid_version_and_condition_keys_compare_exactly() {
        let base = json!({"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]});
        let p = policy(base.clone());
        for (pointer, replacement) in [
            ("/Version", json!("2008-10-17")),
            ("/Statement/0/Sid", json!("a")),
            ("/Statement/0/Effect", json!("Deny")),
        ] {
            let mut other = base.clone();
            *other.pointer_mut(pointer).expect("exists") = replacement;
            assert!(!p.equivalent(&policy(other)), "{pointer}");
        }
        let renamed_key = json!({"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:principalorgid":"o-1"}}}]});
        assert!(!p.equivalent(&policy(renamed_key)));
    }

    #[test]
    fn numbers_reach_ecr_exactly_as_written() {
        // Found by fuzzing: without arbitrary precision a long number was rounded to a float.
        let text = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"NumericLessThan":{"n":[1111011111111111111111111115111,1.0,3600]}}}]}"#;
        let p = policy(Value::String(text.into()));
        assert_eq!(p.compact(), text);
        let reformatted =
            serde_json::to_string_pretty(&Value::Object(p.document().clone())).expect("serialises");
        assert!(p.equivalent(&Policy::from_live(&reformatted).expect("object")));
    }

    #[test]
    fn actions_lists_action_and_not_action() {
        let p = policy(json!({"Statement":[
            {"Effect":"Allow","Principal":"*","Action":["ecr:ReplicateImage","ecr:CreateRepository"]},
            {"Effect":"Deny","Principal":"*","NotAction":"ecr:BatchGetImage"}]}));
        assert_eq!(
            p.actions(),
            [
                "ecr:ReplicateImage",
                "ecr:CreateRepository",
                "ecr:BatchGetImage"
            ]
        );
    }

    #[test]
    fn a_key_given_twice_in_a_string_is_refused_naming_statement_and_key() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"ecr:*"},{"Sid":"Pull","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"},"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}}]}"#;
        let err = Policy::from_property(&Value::String(text.into())).expect_err("duplicate");
        assert_eq!(
            err.to_string(),
            "has key \"StringEquals\" twice in statement 2 (Sid \"Pull\"), in its Condition; a \
             JSON parser keeps only one of them, so the policy written would not be the one you \
             wrote: merge the two into one"
        );
        let top = r#"{"Version":"2012-10-17","Statement":[],"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}"#;
        let err = Policy::from_property(&Value::String(top.into())).expect_err("duplicate");
        assert!(
            err.to_string()
                .starts_with("has key \"Statement\" twice in the document;"),
            "{err}"
        );
        let single =
            r#"{"Statement":{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"ecr:*"}}"#;
        let err = Policy::from_property(&Value::String(single.into())).expect_err("duplicate");
        assert!(
            err.to_string()
                .starts_with("has key \"Effect\" twice in statement 1;"),
            "{err}"
        );
        // A statement resource's Statement, a list or one object.
        let list = r#"[{"Sid":"A","Effect":"Allow","Principal":{"AWS":["1","2"]},"Action":"ecr:*"},{"Sid":"B","Effect":"Allow","Principal":{"AWS":"1","AWS":"2"},"Action":"ecr:*"}]"#;
        let err = Statements::from_property(&Value::String(list.into())).expect_err("duplicate");
        assert!(
            err.to_string()
                .starts_with("has key \"AWS\" twice in statement 2 (Sid \"B\"), in its Principal;"),
            "{err}"
        );
        // Outside Statement, the place is the document's keys down to the object.
        let elsewhere = r#"{"Extra":{"a":1,"a":2},"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}"#;
        let err = Policy::from_property(&Value::String(elsewhere.into())).expect_err("duplicate");
        assert!(
            err.to_string()
                .starts_with("has key \"a\" twice in the document's Extra;"),
            "{err}"
        );
        // The same keys in separate objects, and an object given directly, are fine.
        let fine = r#"{"Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"B","Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#;
        assert!(Policy::from_property(&Value::String(fine.into())).is_ok());
    }

    #[test]
    fn an_account_root_keeps_its_partition() {
        let with = |principal: Value| {
            policy(
                json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "ecr:BatchGetImage"}]}),
            )
        };
        let china = with(json!("arn:aws-cn:iam::111122223333:root"));
        let global = with(json!("arn:aws:iam::111122223333:root"));
        let bare = with(json!("111122223333"));
        // An Update that fixes the partition is a change.
        assert!(!china.equivalent(&global));
        assert!(!statement_equivalent(
            &china.statements()[0],
            &global.statements()[0]
        ));
        // A bare id is the root of the partition the other side names, as ECR writes it back.
        assert!(bare.equivalent(&global) && global.equivalent(&bare));
        assert!(bare.equivalent(&china) && china.equivalent(&bare));
        assert!(statement_equivalent(
            &bare.statements()[0],
            &china.statements()[0]
        ));
        assert!(bare.equivalent(&bare));
    }
}
