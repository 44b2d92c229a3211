//! The lock table in DynamoDB: one item per target, keyed by `target`, taken, written and
//! given back with conditional `UpdateItem` calls; read without the lease (drift, CONTRACT
//! 13) with `Query` for one item and `Scan` for all. Those are the operations the function's
//! role may use on the table. The client is made on the first use, so start-up pays nothing for
//! it. The item's format is pinned in `tests/interface.json` (`record`).

use super::{
    Displaced, Gone, Held, Holder, LockError, LockStore, Owned, Prior, RECORD_FORMAT, Record,
    RecordReader, Removed, Snapshot, Version,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// How long an item that holds nothing is kept after its last use (the table's TTL
/// attribute): its removed statements only matter while ECR's reads may lag.
const IDLE_ITEM_SECONDS: u64 = 30 * 24 * 3600;

/// The item's attribute names.
pub mod attr {
    pub const KEY: &str = "target";
    pub const LEASE_OWNER: &str = "lease_owner";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const FORMAT: &str = "format";
    pub const STATEMENTS: &str = "statements";
    pub const OWNER: &str = "owner";
    pub const REMOVED: &str = "removed";
    pub const HOLDER: &str = "holder";
    pub const STACK: &str = "stack";
    pub const LOGICAL: &str = "logical";
    pub const STATEMENT: &str = "statement";
    pub const POLICY: &str = "policy";
    pub const PRIOR: &str = "prior";
    pub const PRIOR_TEXT: &str = "text";
    pub const REMOVED_AT: &str = "at";
    /// Format 3: the deleted whole policy, the displaced resources, the last write's date.
    pub const REMOVED_POLICY: &str = "removed_policy";
    pub const DISPLACED: &str = "displaced";
    pub const WRITTEN_AT: &str = "written_at";
    /// Format 3: the policy as last written (absent after a delete, and in items stored
    /// before it was recorded).
    pub const WRITTEN_POLICY: &str = "written_policy";
    /// Format 3: displaced resources whose Delete came lately (in a prefix index item: the
    /// prefix statements whose Delete came), a list of `{holder, stack, logical, at}`
    /// (absent when empty).
    pub const GONE: &str = "gone";
    /// Format 3: Creates answered FAILED lately whose write may have landed, a list of
    /// `{holder, stack, logical, at}` (absent when empty).
    pub const FAILED: &str = "failed";
    /// Format 3, in an entry: `Force`, stored only when true.
    pub const FORCE: &str = "force";
    /// Format 3, in an entry: earlier versions, a list of `{text, at}`.
    pub const EARLIER: &str = "earlier";
    /// Format 3, in a removal: the other versions removed with it, a list of strings.
    pub const ALSO: &str = "also";
    /// Format 3, in a displaced entry: its Sid (absent: the whole policy).
    pub const SID: &str = "sid";
    /// Format 3, in a displaced entry: the resource that took it over, `{holder, stack,
    /// logical}` (absent in entries stored before it was recorded).
    pub const BY: &str = "by";
    /// Format 3, in a displaced whole policy: a statement ended its ownership (stored only
    /// when true).
    pub const ENDED: &str = "ended";
    /// Format 1: who holds each Sid (Sid to tag), and a digest of the last write.
    pub const LEGACY_HOLDERS: &str = "holders";
    pub const LEGACY_DIGEST: &str = "digest";
}

/// The conditional expressions of the three calls, pinned by `tests/lock_requests.rs`.
pub mod expr {
    pub const ACQUIRE_UPDATE: &str =
        "SET lease_owner = :owner, lease_until = :until REMOVE expires_at";
    pub const ACQUIRE_CONDITION: &str =
        "attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner";
    /// Storing a record always sets these, and removes the format-1 attributes; each of
    /// [`STORE_OPTIONAL`] is set when the record has it and removed otherwise.
    pub const STORE_SET: &str = "#format = :format, #statements = :statements, \
        #removed = :removed, #displaced = :displaced";
    pub const STORE_REMOVE: &str = "#holders, #digest";
    /// The optional attributes: (name placeholder, value placeholder).
    pub const STORE_OPTIONAL: [(&str, &str); 6] = [
        ("#owner", ":whole"),
        ("#removed_policy", ":removed_policy"),
        ("#written", ":written"),
        ("#written_policy", ":written_policy"),
        ("#gone", ":gone"),
        ("#failed", ":failed"),
    ];
    pub const HELD_CONDITION: &str = "lease_owner = :owner";
    pub const RELEASE_UPDATE: &str = "REMOVE lease_owner, lease_until";
    pub const RELEASE_IDLE_UPDATE: &str =
        "SET expires_at = :expires REMOVE lease_owner, lease_until";
    pub const READ_KEY: &str = "#target = :target";
}

/// The lock table, reached through the SDK's shared configuration (`AWS_ENDPOINT_URL`
/// points it at a local emulator).
pub struct DynamoLock {
    table: String,
    config: Option<aws_config::SdkConfig>,
    client: OnceLock<Client>,
}

impl DynamoLock {
    pub fn new(table: String, config: &aws_config::SdkConfig) -> Self {
        Self {
            table,
            config: Some(config.clone()),
            client: OnceLock::new(),
        }
    }

    /// The lock table behind a client made elsewhere (tests, with canned answers).
    pub fn from_client(table: String, client: Client) -> Self {
        Self {
            table,
            config: None,
            client: OnceLock::from(client),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let mut conf = aws_sdk_dynamodb::config::Builder::from(
                self.config
                    .as_ref()
                    .unwrap_or(&aws_config::SdkConfig::builder().build()),
            );
            conf.set_timeout_config(Some(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            ));
            Client::from_conf(conf.build())
        })
    }

    fn error<E>(
        &self,
        operation: &'static str,
        err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> LockError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let table = self.table.clone();
        let message = err.message().unwrap_or_default().to_owned();
        match err.code().unwrap_or_default() {
            "ConditionalCheckFailedException" => LockError::Busy,
            "ResourceNotFoundException" => LockError::NoTable { table },
            "AccessDeniedException" | "UnrecognizedClientException" => LockError::AccessDenied {
                table,
                operation,
                message,
            },
            _ => LockError::Unavailable {
                table,
                operation,
                detail: if message.is_empty() {
                    crate::text::error_chain(&err)
                } else {
                    message
                },
            },
        }
    }

    fn update(
        &self,
        key: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client()
            .update_item()
            .table_name(&self.table)
            .key(attr::KEY, string(key))
    }
}

type Item = HashMap<String, AttributeValue>;

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn map<'a>(item: &'a Item, name: &str) -> Option<&'a Item> {
    item.get(name).and_then(|v| v.as_m().ok())
}

fn holder_item(holder: &Holder) -> Item {
    HashMap::from([
        (attr::HOLDER.to_owned(), string(&holder.tag)),
        (attr::STACK.to_owned(), string(&holder.stack)),
        (attr::LOGICAL.to_owned(), string(&holder.logical)),
    ])
}

fn holder_of(item: &Item) -> Option<Holder> {
    Some(Holder {
        tag: text(item, attr::HOLDER)?,
        stack: text(item, attr::STACK).unwrap_or_default(),
        logical: text(item, attr::LOGICAL).unwrap_or_default(),
    })
}

fn prior_item(prior: &Prior) -> AttributeValue {
    let mut item = prior.holder.as_ref().map(holder_item).unwrap_or_default();
    item.insert(attr::PRIOR_TEXT.to_owned(), string(&prior.text));
    AttributeValue::M(item)
}

fn prior_of(item: &Item) -> Option<Prior> {
    let prior = map(item, attr::PRIOR)?;
    Some(Prior {
        holder: holder_of(prior),
        text: text(prior, attr::PRIOR_TEXT)?,
    })
}

fn flag(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn number_of(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn list<'a>(item: &'a Item, name: &str) -> &'a [AttributeValue] {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn versions_of(item: &Item) -> Vec<Version> {
    list(item, attr::EARLIER)
        .iter()
        .filter_map(|v| v.as_m().ok())
        .filter_map(|v| {
            Some(Version {
                text: text(v, attr::PRIOR_TEXT)?,
                at_ms: number_of(v, attr::REMOVED_AT)?,
            })
        })
        .collect()
}

fn removed_of(item: &Item, text_name: &str) -> Option<Removed> {
    Some(Removed {
        statement: text(item, text_name)?,
        at_ms: number_of(item, attr::REMOVED_AT)?,
        also: list(item, attr::ALSO)
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
    })
}

/// Adds `force` (only when true) and the earlier versions (only when there are any).
fn with_extras(item: &mut Item, force: bool, earlier: &[Version]) {
    if force {
        item.insert(attr::FORCE.to_owned(), AttributeValue::Bool(true));
    }
    if !earlier.is_empty() {
        let versions = earlier
            .iter()
            .map(|v| {
                AttributeValue::M(HashMap::from([
                    (attr::PRIOR_TEXT.to_owned(), string(&v.text)),
                    (attr::REMOVED_AT.to_owned(), number(v.at_ms)),
                ]))
            })
            .collect();
        item.insert(attr::EARLIER.to_owned(), AttributeValue::L(versions));
    }
}

fn removed_item(gone: &Removed, text_name: &str) -> AttributeValue {
    let mut item = HashMap::from([
        (text_name.to_owned(), string(&gone.statement)),
        (attr::REMOVED_AT.to_owned(), number(gone.at_ms)),
    ]);
    if !gone.also.is_empty() {
        let also = gone.also.iter().map(|t| string(t)).collect();
        item.insert(attr::ALSO.to_owned(), AttributeValue::L(also));
    }
    AttributeValue::M(item)
}

/// The record an item holds: format 3 or 2, or format 1 read as holders without statements.
pub fn record_of(item: Option<&Item>) -> Record {
    let Some(item) = item else {
        return Record::default();
    };
    let mut record = Record::default();
    if let Some(statements) = map(item, attr::STATEMENTS) {
        for (sid, held) in statements {
            let Some(held) = held.as_m().ok() else {
                continue;
            };
            let Some(holder) = holder_of(held) else {
                continue;
            };
            record.statements.insert(
                sid.clone(),
                Held {
                    holder,
                    statement: text(held, attr::STATEMENT),
                    prior: prior_of(held),
                    force: flag(held, attr::FORCE),
                    earlier: versions_of(held),
                },
            );
        }
    } else if let Some(holders) = map(item, attr::LEGACY_HOLDERS) {
        for (sid, tag) in holders {
            let Ok(tag) = tag.as_s() else { continue };
            let holder = Holder {
                tag: tag.clone(),
                ..Holder::default()
            };
            record.statements.insert(
                sid.clone(),
                Held {
                    holder,
                    ..Held::default()
                },
            );
        }
    }
    record.owner = map(item, attr::OWNER).and_then(|owner| {
        Some(Owned {
            holder: holder_of(owner)?,
            policy: text(owner, attr::POLICY)?,
            prior: prior_of(owner),
            force: flag(owner, attr::FORCE),
            earlier: versions_of(owner),
        })
    });
    if let Some(removed) = map(item, attr::REMOVED) {
        for (sid, gone) in removed {
            if let Some(gone) = gone
                .as_m()
                .ok()
                .and_then(|g| removed_of(g, attr::STATEMENT))
            {
                record.removed.insert(sid.clone(), gone);
            }
        }
    }
    record.removed_policy =
        map(item, attr::REMOVED_POLICY).and_then(|g| removed_of(g, attr::POLICY));
    record.displaced = list(item, attr::DISPLACED)
        .iter()
        .filter_map(|entry| entry.as_m().ok())
        .filter_map(|entry| {
            let sid = text(entry, attr::SID);
            let body = if sid.is_some() {
                attr::STATEMENT
            } else {
                attr::POLICY
            };
            Some(Displaced {
                holder: holder_of(entry)?,
                text: text(entry, body)?,
                sid,
                force: flag(entry, attr::FORCE),
                by: map(entry, attr::BY).and_then(holder_of),
                ended: flag(entry, attr::ENDED),
                prior: prior_of(entry),
            })
        })
        .collect();
    record.written_ms = number_of(item, attr::WRITTEN_AT);
    record.written = text(item, attr::WRITTEN_POLICY);
    record.gone = dated_holders(item, attr::GONE);
    record.failed = dated_holders(item, attr::FAILED);
    record
}

/// A list of `{holder, stack, logical, at}`.
fn dated_holders(item: &Item, name: &str) -> Vec<Gone> {
    list(item, name)
        .iter()
        .filter_map(|entry| entry.as_m().ok())
        .filter_map(|entry| {
            Some(Gone {
                holder: holder_of(entry)?,
                at_ms: number_of(entry, attr::REMOVED_AT)?,
            })
        })
        .collect()
}

fn dated_holders_item(entries: &[Gone]) -> Option<AttributeValue> {
    (!entries.is_empty()).then(|| {
        AttributeValue::L(
            entries
                .iter()
                .map(|gone| {
                    let mut item = holder_item(&gone.holder);
                    item.insert(attr::REMOVED_AT.to_owned(), number(gone.at_ms));
                    AttributeValue::M(item)
                })
                .collect(),
        )
    })
}

/// The attribute values of a record, in the item's format.
struct Values {
    statements: AttributeValue,
    removed: AttributeValue,
    displaced: AttributeValue,
    /// The optional ones, in the order of [`expr::STORE_OPTIONAL`].
    optional: [Option<AttributeValue>; 6],
}

fn record_values(record: &Record) -> Values {
    let statements = record
        .statements
        .iter()
        .map(|(sid, held)| {
            let mut item = holder_item(&held.holder);
            if let Some(statement) = &held.statement {
                item.insert(attr::STATEMENT.to_owned(), string(statement));
            }
            if let Some(prior) = &held.prior {
                item.insert(attr::PRIOR.to_owned(), prior_item(prior));
            }
            with_extras(&mut item, held.force, &held.earlier);
            (sid.clone(), AttributeValue::M(item))
        })
        .collect();
    let removed = record
        .removed
        .iter()
        .map(|(sid, gone)| (sid.clone(), removed_item(gone, attr::STATEMENT)))
        .collect();
    let owner = record.owner.as_ref().map(|owned| {
        let mut item = holder_item(&owned.holder);
        item.insert(attr::POLICY.to_owned(), string(&owned.policy));
        if let Some(prior) = &owned.prior {
            item.insert(attr::PRIOR.to_owned(), prior_item(prior));
        }
        with_extras(&mut item, owned.force, &owned.earlier);
        AttributeValue::M(item)
    });
    let displaced = record
        .displaced
        .iter()
        .map(|entry| {
            let mut item = holder_item(&entry.holder);
            match &entry.sid {
                Some(sid) => {
                    item.insert(attr::SID.to_owned(), string(sid));
                    item.insert(attr::STATEMENT.to_owned(), string(&entry.text));
                }
                None => {
                    item.insert(attr::POLICY.to_owned(), string(&entry.text));
                }
            }
            with_extras(&mut item, entry.force, &[]);
            if let Some(by) = &entry.by {
                item.insert(attr::BY.to_owned(), AttributeValue::M(holder_item(by)));
            }
            if entry.ended {
                item.insert(attr::ENDED.to_owned(), AttributeValue::Bool(true));
            }
            if let Some(prior) = &entry.prior {
                item.insert(attr::PRIOR.to_owned(), prior_item(prior));
            }
            AttributeValue::M(item)
        })
        .collect();
    Values {
        statements: AttributeValue::M(statements),
        removed: AttributeValue::M(removed),
        displaced: AttributeValue::L(displaced),
        optional: [
            owner,
            record
                .removed_policy
                .as_ref()
                .map(|gone| removed_item(gone, attr::POLICY)),
            record.written_ms.map(number),
            record.written.as_deref().map(string),
            dated_holders_item(&record.gone),
            dated_holders_item(&record.failed),
        ],
    }
}

/// The store's update expression for a record: the optional attributes it has set, the
/// others removed.
pub fn store_expression(has: [bool; 6]) -> String {
    let mut set = vec![expr::STORE_SET.to_owned()];
    let mut remove = vec![expr::STORE_REMOVE.to_owned()];
    for ((name, value), present) in expr::STORE_OPTIONAL.iter().zip(has) {
        if present {
            set.push(format!("{name} = {value}"));
        } else {
            remove.push((*name).to_owned());
        }
    }
    format!("SET {} REMOVE {}", set.join(", "), remove.join(", "))
}

impl LockStore for DynamoLock {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        let out = self
            .update(key)
            .update_expression(expr::ACQUIRE_UPDATE)
            .condition_expression(expr::ACQUIRE_CONDITION)
            .expression_attribute_values(":owner", string(owner))
            .expression_attribute_values(":until", number(until_ms))
            .expression_attribute_values(":now", number(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        Ok(record_of(out.attributes()))
    }

    async fn store(&self, key: &str, owner: &str, record: &Record) -> Result<(), LockError> {
        let values = record_values(record);
        let has = values.optional.each_ref().map(Option::is_some);
        let mut request = self
            .update(key)
            .condition_expression(expr::HELD_CONDITION)
            .update_expression(store_expression(has))
            .expression_attribute_names("#format", attr::FORMAT)
            .expression_attribute_names("#statements", attr::STATEMENTS)
            .expression_attribute_names("#removed", attr::REMOVED)
            .expression_attribute_names("#displaced", attr::DISPLACED)
            .expression_attribute_names("#owner", attr::OWNER)
            .expression_attribute_names("#removed_policy", attr::REMOVED_POLICY)
            .expression_attribute_names("#written", attr::WRITTEN_AT)
            .expression_attribute_names("#written_policy", attr::WRITTEN_POLICY)
            .expression_attribute_names("#gone", attr::GONE)
            .expression_attribute_names("#failed", attr::FAILED)
            .expression_attribute_names("#holders", attr::LEGACY_HOLDERS)
            .expression_attribute_names("#digest", attr::LEGACY_DIGEST)
            .expression_attribute_values(":owner", string(owner))
            .expression_attribute_values(":format", number(RECORD_FORMAT.into()))
            .expression_attribute_values(":statements", values.statements)
            .expression_attribute_values(":removed", values.removed)
            .expression_attribute_values(":displaced", values.displaced);
        for ((_, placeholder), value) in expr::STORE_OPTIONAL.iter().zip(values.optional) {
            if let Some(value) = value {
                request = request.expression_attribute_values(*placeholder, value);
            }
        }
        request
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        Ok(())
    }

    async fn release(&self, key: &str, owner: &str, idle: bool) -> Result<(), LockError> {
        let request = self
            .update(key)
            .condition_expression(expr::HELD_CONDITION)
            .expression_attribute_values(":owner", string(owner));
        let request = if idle {
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
                + IDLE_ITEM_SECONDS;
            request
                .update_expression(expr::RELEASE_IDLE_UPDATE)
                .expression_attribute_values(":expires", number(expires))
        } else {
            request.update_expression(expr::RELEASE_UPDATE)
        };
        request
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", e))?;
        Ok(())
    }
}

/// What a reader sees of an item: its record and its lease's end.
fn snapshot_of(item: &Item) -> Snapshot {
    Snapshot {
        record: record_of(Some(item)),
        leased_until_ms: item
            .get(attr::LEASE_UNTIL)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .filter(|_| item.contains_key(attr::LEASE_OWNER)),
    }
}

impl RecordReader for DynamoLock {
    async fn read(&self, key: &str) -> Result<Option<Snapshot>, LockError> {
        let out = self
            .client()
            .query()
            .table_name(&self.table)
            .key_condition_expression(expr::READ_KEY)
            .expression_attribute_names("#target", attr::KEY)
            .expression_attribute_values(":target", string(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("Query", e))?;
        Ok(out.items().first().map(snapshot_of))
    }

    async fn scan(&self) -> Result<Vec<(String, Snapshot)>, LockError> {
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("Scan", e))?;
            for item in out.items() {
                if let Some(key) = text(item, attr::KEY) {
                    all.push((key, snapshot_of(item)));
                }
            }
            match out.last_evaluated_key() {
                Some(next) if !next.is_empty() => start = Some(next.clone()),
                _ => break,
            }
        }
        Ok(all)
    }
}
