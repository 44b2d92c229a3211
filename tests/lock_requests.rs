//! The DynamoDB lock adapter against canned answers (aws-smithy-mocks): the exact
//! `UpdateItem` requests it sends to take a lease, store the record and give the lease back
//! (CONTRACT 11), and how it reads an item back. moto serves these expressions too, but its
//! conditional writes are not atomic, so the expressions themselves are pinned here.

mod support;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use ecr_policy_provider::lock::dynamo::{DynamoLock, record_of};
use ecr_policy_provider::lock::{
    Displaced, Gone, Held, Holder, LockError, LockStore, Owned, Prior, Record, RecordReader,
    Removed, Version,
};
use std::collections::HashMap;

const TABLE: &str = "locks";
const KEY: &str = "registry/us-east-1";
const OWNER: &str = "8f1d2c3b-4a5e/lambda-request-1";
const WHOLE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"ecr:BatchGetImage"}]}"#;

fn lock(rules: &[&Rule]) -> DynamoLock {
    let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules);
    DynamoLock::from_client(TABLE.into(), client)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn value<'a>(req: &'a UpdateItemInput, name: &str) -> Option<&'a AttributeValue> {
    req.expression_attribute_values()
        .and_then(|values| values.get(name))
}

fn keyed(req: &UpdateItemInput) -> bool {
    req.table_name() == Some(TABLE) && req.key().and_then(|k| k.get("target")) == Some(&s(KEY))
}

fn record() -> Record {
    let holder = Holder {
        tag: "8f1d2c3b-4a5e".into(),
        stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/platform/5b3c".into(),
        logical: "GrantA".into(),
    };
    let mut record = Record::default();
    record.statements.insert(
        "A".into(),
        Held {
            holder: holder.clone(),
            statement: Some(r#"{"Sid":"A","Effect":"Allow"}"#.into()),
            prior: Some(Prior {
                holder: None,
                text: r#"{"Sid":"A","Effect":"Deny"}"#.into(),
            }),
            force: true,
            earlier: vec![Version {
                text: r#"{"Sid":"A","Effect":"Allow","Action":"ecr:*"}"#.into(),
                at_ms: 1_795_999_000_000,
            }],
        },
    );
    record.owner = Some(Owned {
        holder: holder.clone(),
        policy: WHOLE.into(),
        prior: None,
        force: false,
        earlier: Vec::new(),
    });
    record.removed.insert(
        "Old".into(),
        Removed {
            statement: r#"{"Sid":"Old"}"#.into(),
            at_ms: 1_796_000_000_000,
            also: vec![r#"{"Sid":"Old","Effect":"Deny"}"#.into()],
        },
    );
    record.removed_policy = Some(Removed {
        statement: WHOLE.into(),
        at_ms: 1_796_000_000_001,
        also: Vec::new(),
    });
    record.displaced.push(Displaced {
        holder: Holder {
            tag: "0a1b".into(),
            ..holder.clone()
        },
        sid: Some("A".into()),
        text: r#"{"Sid":"A","Effect":"Allow","Principal":"*"}"#.into(),
        force: false,
        by: Some(Holder {
            tag: "9f8e".into(),
            ..holder.clone()
        }),
        ended: false,
        prior: None,
    });
    record.displaced.push(Displaced {
        holder: holder.clone(),
        sid: None,
        text: WHOLE.into(),
        force: true,
        by: Some(holder),
        ended: true,
        prior: Some(Prior {
            holder: None,
            text: r#"{"Statement":[{"Sid":"Console"}]}"#.into(),
        }),
    });
    record.written_ms = Some(1_796_000_000_002);
    record.written = Some(WHOLE.into());
    record.failed.push(Gone {
        holder: Holder {
            tag: "5e4f".into(),
            stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1".into(),
            logical: "Failed".into(),
        },
        at_ms: 1_796_000_000_004,
    });
    record.gone.push(Gone {
        holder: Holder {
            tag: "7c6d".into(),
            stack: "arn:aws:cloudformation:us-east-1:123456789012:stack/other/1".into(),
            logical: "Old".into(),
        },
        at_ms: 1_796_000_000_003,
    });
    record
}

#[tokio::test]
async fn taking_the_lease_accepts_its_own_and_clears_the_expiry() {
    let acquire = mock!(Client::update_item)
        .match_requests(|req| {
            keyed(req)
                && req.update_expression()
                    == Some("SET lease_owner = :owner, lease_until = :until REMOVE expires_at")
                && req.condition_expression()
                    == Some(
                        "attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner",
                    )
                && value(req, ":owner") == Some(&s(OWNER))
                && value(req, ":until") == Some(&n(2_000))
                && value(req, ":now") == Some(&n(1_000))
                && req.return_values() == Some(&ReturnValue::AllNew)
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lock = lock(&[&acquire]);
    assert_eq!(
        lock.acquire(KEY, OWNER, 1_000, 2_000).await,
        Ok(Record::default())
    );
    assert_eq!(acquire.num_calls(), 1);
}

/// DynamoDB's error answer with `code`.
fn dynamo_error(code: &'static str, message: &'static str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(400).expect("status"),
        SdkBody::from(format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
        )),
    )
}

#[tokio::test]
async fn a_missing_table_and_a_denied_role_say_what_to_fix() {
    let missing = mock!(Client::update_item).then_http_response(|| {
        dynamo_error("ResourceNotFoundException", "Requested resource not found")
    });
    let lock = lock(&[&missing]);
    assert_eq!(
        lock.acquire(KEY, OWNER, 1_000, 2_000).await,
        Err(LockError::NoTable {
            table: TABLE.into()
        })
    );
    let denied = mock!(Client::update_item).then_http_response(|| {
        dynamo_error(
            "AccessDeniedException",
            "not authorized to perform dynamodb:UpdateItem",
        )
    });
    let lock = self::lock(&[&denied]);
    assert_eq!(
        lock.release(KEY, OWNER, false).await,
        Err(LockError::AccessDenied {
            table: TABLE.into(),
            operation: "UpdateItem",
            message: "not authorized to perform dynamodb:UpdateItem".into()
        })
    );
}

#[tokio::test]
async fn a_lease_someone_else_holds_is_busy() {
    let busy = mock!(Client::update_item).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(400).expect("status"),
            SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#,
            ),
        )
    });
    let lock = lock(&[&busy]);
    assert_eq!(
        lock.acquire(KEY, OWNER, 1_000, 2_000).await,
        Err(LockError::Busy)
    );
}

#[tokio::test]
async fn the_record_is_stored_under_the_lease_in_its_pinned_format() {
    let expected = record();
    let store = mock!(Client::update_item)
        .match_requests(|req| {
            let names = req
                .expression_attribute_names()
                .cloned()
                .unwrap_or_default();
            let statements = value(req, ":statements").and_then(|v| v.as_m().ok());
            let a = statements
                .and_then(|m| m.get("A"))
                .and_then(|v| v.as_m().ok());
            let whole = value(req, ":whole").and_then(|v| v.as_m().ok());
            let removed = value(req, ":removed")
                .and_then(|v| v.as_m().ok())
                .and_then(|m| m.get("Old"))
                .and_then(|v| v.as_m().ok());
            let displaced = value(req, ":displaced").and_then(|v| v.as_l().ok());
            let first = displaced
                .and_then(|l| l.first())
                .and_then(|v| v.as_m().ok());
            keyed(req)
                && req.update_expression()
                    == Some(
                        "SET #format = :format, #statements = :statements, #removed = :removed, \
                         #displaced = :displaced, #owner = :whole, \
                         #removed_policy = :removed_policy, #written = :written, \
                         #written_policy = :written_policy, #gone = :gone, \
                         #failed = :failed REMOVE #holders, #digest",
                    )
                && req.condition_expression() == Some("lease_owner = :owner")
                && names
                    == HashMap::from(
                        [
                            ("#format", "format"),
                            ("#statements", "statements"),
                            ("#removed", "removed"),
                            ("#displaced", "displaced"),
                            ("#owner", "owner"),
                            ("#removed_policy", "removed_policy"),
                            ("#written", "written_at"),
                            ("#written_policy", "written_policy"),
                            ("#gone", "gone"),
                            ("#failed", "failed"),
                            ("#holders", "holders"),
                            ("#digest", "digest"),
                        ]
                        .map(|(k, v)| (k.to_owned(), v.to_owned())),
                    )
                && a.and_then(|a| a.get("force")) == Some(&AttributeValue::Bool(true))
                && a.and_then(|a| a.get("earlier"))
                    .and_then(|e| e.as_l().ok())
                    .map(Vec::len)
                    == Some(1)
                && whole.and_then(|w| w.get("force")).is_none()
                && displaced.map(Vec::len) == Some(2)
                && first.and_then(|d| d.get("sid")) == Some(&s("A"))
                && first.and_then(|d| d.get("holder")) == Some(&s("0a1b"))
                && first
                    .and_then(|d| d.get("by"))
                    .and_then(|b| b.as_m().ok())
                    .and_then(|b| b.get("holder"))
                    == Some(&s("9f8e"))
                && first.and_then(|d| d.get("ended")).is_none()
                && displaced
                    .and_then(|l| l.get(1))
                    .and_then(|v| v.as_m().ok())
                    .and_then(|d| d.get("ended"))
                    == Some(&AttributeValue::Bool(true))
                && value(req, ":written") == Some(&n(1_796_000_000_002))
                && value(req, ":written_policy") == Some(&s(WHOLE))
                && value(req, ":gone")
                    .and_then(|v| v.as_l().ok())
                    .and_then(|l| l.first())
                    .and_then(|v| v.as_m().ok())
                    .is_some_and(|g| {
                        g.get("holder") == Some(&s("7c6d"))
                            && g.get("logical") == Some(&s("Old"))
                            && g.get("at") == Some(&n(1_796_000_000_003))
                    })
                && value(req, ":failed")
                    .and_then(|v| v.as_l().ok())
                    .and_then(|l| l.first())
                    .and_then(|v| v.as_m().ok())
                    .is_some_and(|f| {
                        f.get("holder") == Some(&s("5e4f"))
                            && f.get("logical") == Some(&s("Failed"))
                            && f.get("at") == Some(&n(1_796_000_000_004))
                    })
                && value(req, ":removed_policy")
                    .and_then(|v| v.as_m().ok())
                    .and_then(|m| m.get("policy"))
                    == Some(&s(WHOLE))
                && value(req, ":owner") == Some(&s(OWNER))
                && value(req, ":format") == Some(&n(3))
                && a.and_then(|a| a.get("holder")) == Some(&s("8f1d2c3b-4a5e"))
                && a.and_then(|a| a.get("logical")) == Some(&s("GrantA"))
                && a.and_then(|a| a.get("statement")) == Some(&s(r#"{"Sid":"A","Effect":"Allow"}"#))
                && a.and_then(|a| a.get("prior"))
                    == Some(&AttributeValue::M(HashMap::from([(
                        "text".to_owned(),
                        s(r#"{"Sid":"A","Effect":"Deny"}"#),
                    )])))
                && whole.and_then(|w| w.get("policy")) == Some(&s(WHOLE))
                && removed.and_then(|r| r.get("at")) == Some(&n(1_796_000_000_000))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lock = lock(&[&store]);
    assert_eq!(lock.store(KEY, OWNER, &expected).await, Ok(()));
    assert_eq!(store.num_calls(), 1);
    // With no whole-policy owner, no deleted policy and no write yet, those attributes are
    // removed.
    let unowned = mock!(Client::update_item)
        .match_requests(|req| {
            req.update_expression()
                == Some(
                    "SET #format = :format, #statements = :statements, #removed = :removed, \
                     #displaced = :displaced REMOVE #holders, #digest, #owner, \
                     #removed_policy, #written, #written_policy, #gone, #failed",
                )
                && value(req, ":whole").is_none()
                && value(req, ":written").is_none()
                && value(req, ":written_policy").is_none()
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lock = self::lock(&[&unowned]);
    let without_owner = Record {
        owner: None,
        removed_policy: None,
        written_ms: None,
        written: None,
        gone: Vec::new(),
        failed: Vec::new(),
        ..expected
    };
    assert_eq!(lock.store(KEY, OWNER, &without_owner).await, Ok(()));
    assert_eq!(unowned.num_calls(), 1);
}

#[tokio::test]
async fn giving_the_lease_back_sets_an_expiry_only_on_an_idle_item() {
    let release = mock!(Client::update_item)
        .match_requests(|req| {
            keyed(req)
                && req.update_expression() == Some("REMOVE lease_owner, lease_until")
                && req.condition_expression() == Some("lease_owner = :owner")
                && value(req, ":owner") == Some(&s(OWNER))
                && value(req, ":expires").is_none()
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let idle = mock!(Client::update_item)
        .match_requests(|req| {
            req.update_expression()
                == Some("SET expires_at = :expires REMOVE lease_owner, lease_until")
                && req.condition_expression() == Some("lease_owner = :owner")
                && value(req, ":expires")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|at| {
                        // 30 days from now, in seconds.
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("after the epoch")
                            .as_secs();
                        (now + 30 * 24 * 3600..=now + 30 * 24 * 3600 + 60).contains(&at)
                    })
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lock = lock(&[&release, &idle]);
    assert_eq!(lock.release(KEY, OWNER, false).await, Ok(()));
    assert_eq!(lock.release(KEY, OWNER, true).await, Ok(()));
    assert_eq!((release.num_calls(), idle.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_stored_record_reads_back_as_it_was_and_a_format_1_item_still_reads() {
    let expected = record();
    // What store sends becomes the item acquire answers with.
    let sent = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
    let seen = sent.clone();
    let capture = mock!(Client::update_item)
        .match_requests(move |req| {
            let values = req
                .expression_attribute_values()
                .cloned()
                .unwrap_or_default();
            let mut item = HashMap::new();
            for (attr, value) in [
                ("statements", ":statements"),
                ("owner", ":whole"),
                ("removed", ":removed"),
                ("removed_policy", ":removed_policy"),
                ("displaced", ":displaced"),
                ("written_at", ":written"),
                ("written_policy", ":written_policy"),
                ("gone", ":gone"),
                ("failed", ":failed"),
            ] {
                if let Some(v) = values.get(value) {
                    item.insert(attr.to_owned(), v.clone());
                }
            }
            *seen.lock().expect("lock") = item;
            true
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lock = lock(&[&capture]);
    lock.store(KEY, OWNER, &expected).await.expect("stored");
    let item = sent.lock().expect("lock").clone();
    assert_eq!(record_of(Some(&item)), expected);
    // `Force` is stored only when asked for, as a boolean; absent reads as not forced.
    let entry = |attr: &str| -> HashMap<String, AttributeValue> {
        let value = &item[attr];
        match value.as_m() {
            Ok(map) if attr == "statements" => map["A"].as_m().expect("an entry").clone(),
            Ok(map) => map.clone(),
            Err(_) => panic!("{attr} is not a map: {value:?}"),
        }
    };
    assert_eq!(
        entry("statements").get("force"),
        Some(&AttributeValue::Bool(true))
    );
    assert_eq!(entry("owner").get("force"), None);
    // Format 1: a digest and holders (Sid to tag).
    let legacy = HashMap::from([
        ("digest".to_owned(), s("abc")),
        (
            "holders".to_owned(),
            AttributeValue::M(HashMap::from([("A".to_owned(), s("t1"))])),
        ),
    ]);
    let read = record_of(Some(&legacy));
    assert_eq!(read.holder_of("A"), Some("t1"));
    assert_eq!(read.statements["A"].statement, None);
    assert_eq!(read.owner, None);
}

/// An item as the table holds it: `statements` with one held Sid, and a lease when given.
fn stored_item(key: &str, lease: Option<(&str, u64)>) -> HashMap<String, AttributeValue> {
    let holder = HashMap::from([
        ("holder".to_owned(), s("t1")),
        (
            "stack".to_owned(),
            s("arn:aws:cloudformation:us-east-1:1:stack/s/1"),
        ),
        ("logical".to_owned(), s("Grant")),
        ("statement".to_owned(), s(r#"{"Sid":"A"}"#)),
    ]);
    let mut item = HashMap::from([
        ("target".to_owned(), s(key)),
        ("format".to_owned(), n(2)),
        (
            "statements".to_owned(),
            AttributeValue::M(HashMap::from([("A".to_owned(), AttributeValue::M(holder))])),
        ),
    ]);
    if let Some((owner, until)) = lease {
        item.insert("lease_owner".into(), s(owner));
        item.insert("lease_until".into(), n(until));
    }
    item
}

#[tokio::test]
async fn drift_reads_one_item_with_a_consistent_query_and_sees_its_lease() {
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    let query = mock!(Client::query)
        .match_requests(|req| {
            req.table_name() == Some(TABLE)
                && req.key_condition_expression() == Some("#target = :target")
                && req
                    .expression_attribute_names()
                    .and_then(|n| n.get("#target"))
                    == Some(&"target".to_owned())
                && req
                    .expression_attribute_values()
                    .and_then(|v| v.get(":target"))
                    == Some(&s(KEY))
                && req.consistent_read() == Some(true)
        })
        .then_output(|| {
            QueryOutput::builder()
                .items(stored_item(KEY, Some((OWNER, 5_000))))
                .build()
        });
    let lock = lock(&[&query]);
    let snapshot = lock.read(KEY).await.expect("read").expect("an item");
    assert_eq!(snapshot.leased_until_ms, Some(5_000));
    assert_eq!(snapshot.record.holder_of("A"), Some("t1"));
    assert_eq!(
        snapshot.record.statements["A"].statement.as_deref(),
        Some(r#"{"Sid":"A"}"#)
    );
    assert_eq!(query.num_calls(), 1);

    let none = mock!(Client::query).then_output(|| QueryOutput::builder().build());
    assert_eq!(self::lock(&[&none]).read(KEY).await, Ok(None));
}

#[tokio::test]
async fn a_lease_until_without_an_owner_is_no_lease() {
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    let query = mock!(Client::query).then_output(|| {
        let mut item = stored_item(KEY, None);
        item.insert("lease_until".into(), n(5_000));
        QueryOutput::builder().items(item).build()
    });
    let snapshot = lock(&[&query])
        .read(KEY)
        .await
        .expect("read")
        .expect("an item");
    assert_eq!(snapshot.leased_until_ms, None);
}

#[tokio::test]
async fn the_sweep_scans_every_page_consistently() {
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    let next = HashMap::from([("target".to_owned(), s("repository/us-east-1/b"))]);
    let after = next.clone();
    let first = mock!(Client::scan)
        .match_requests(|req| {
            req.table_name() == Some(TABLE)
                && req.consistent_read() == Some(true)
                && req.exclusive_start_key().is_none()
        })
        .then_output(move || {
            ScanOutput::builder()
                .items(stored_item("repository/us-east-1/a", None))
                .items(stored_item("repository/us-east-1/b", Some((OWNER, 9))))
                .set_last_evaluated_key(Some(next.clone()))
                .build()
        });
    let second = mock!(Client::scan)
        .match_requests(move |req| req.exclusive_start_key() == Some(&after))
        .then_output(|| {
            ScanOutput::builder()
                .items(stored_item("registry/eu-west-1", None))
                // An item without its key is not a target.
                .items(HashMap::from([("format".to_owned(), n(2))]))
                .set_last_evaluated_key(Some(HashMap::new()))
                .build()
        });
    let lock = lock(&[&first, &second]);
    let all = lock.scan().await.expect("scanned");
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "repository/us-east-1/a",
            "repository/us-east-1/b",
            "registry/eu-west-1"
        ]
    );
    assert_eq!(all[1].1.leased_until_ms, Some(9));
    assert_eq!(all[0].1.record.holder_of("A"), Some("t1"));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_denied_read_names_the_operation() {
    let denied = mock!(Client::scan).then_http_response(|| {
        dynamo_error(
            "AccessDeniedException",
            "not authorized to perform dynamodb:Scan",
        )
    });
    assert_eq!(
        lock(&[&denied]).scan().await,
        Err(LockError::AccessDenied {
            table: TABLE.into(),
            operation: "Scan",
            message: "not authorized to perform dynamodb:Scan".into()
        })
    );
    let denied = mock!(Client::query).then_http_response(|| {
        dynamo_error(
            "AccessDeniedException",
            "not authorized to perform dynamodb:Query",
        )
    });
    assert!(matches!(
        lock(&[&denied]).read(KEY).await,
        Err(LockError::AccessDenied {
            operation: "Query",
            ..
        })
    ));
}
