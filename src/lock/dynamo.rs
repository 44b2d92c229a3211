//! The lock table in DynamoDB: one item per target, keyed by `target`, taken and given
//! back with conditional `UpdateItem` calls (the only operation the function's role may use
//! on the table). The client is made on the first use, so start-up pays nothing for it.

use super::{LockError, LockStore, Record};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// How long an item with no Sid holder is kept after its last use (the table's TTL
/// attribute): its digest only matters while ECR's reads may lag a write.
const IDLE_ITEM_SECONDS: u64 = 30 * 24 * 3600;

/// The lock table, reached through the SDK's shared configuration (`AWS_ENDPOINT_URL`
/// points it at a local emulator).
pub struct DynamoLock {
    table: String,
    config: aws_config::SdkConfig,
    client: OnceLock<Client>,
}

impl DynamoLock {
    pub fn new(table: String, config: &aws_config::SdkConfig) -> Self {
        Self {
            table,
            config: config.clone(),
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let conf = aws_sdk_dynamodb::config::Builder::from(&self.config)
                .timeout_config(
                    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(3))
                        .operation_attempt_timeout(Duration::from_secs(5))
                        .build(),
                )
                .build();
            Client::from_conf(conf)
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
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn record_of(item: Option<&HashMap<String, AttributeValue>>) -> Record {
    let Some(item) = item else {
        return Record::default();
    };
    let digest = item.get("digest").and_then(|v| v.as_s().ok()).cloned();
    let holders = item
        .get("holders")
        .and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(sid, tag)| Some((sid.clone(), tag.as_s().ok()?.clone())))
                .collect()
        })
        .unwrap_or_default();
    Record { digest, holders }
}

impl LockStore for DynamoLock {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<Record, LockError> {
        const OP: &str = "UpdateItem";
        let out = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("target", string(key))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression("attribute_not_exists(lease_owner) OR lease_until < :now")
            .expression_attribute_values(":owner", string(owner))
            .expression_attribute_values(":until", number(until_ms))
            .expression_attribute_values(":now", number(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.error(OP, e))?;
        Ok(record_of(out.attributes()))
    }

    async fn release(
        &self,
        key: &str,
        owner: &str,
        record: Option<&Record>,
    ) -> Result<(), LockError> {
        const OP: &str = "UpdateItem";
        let request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("target", string(key))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", string(owner));
        let request = match record {
            None => request.update_expression("REMOVE lease_owner, lease_until"),
            Some(record) => {
                let holders: HashMap<String, AttributeValue> = record
                    .holders
                    .iter()
                    .map(|(sid, tag)| (sid.clone(), string(tag)))
                    .collect();
                let digest = record.digest.as_deref().unwrap_or(super::NO_POLICY);
                let request = request
                    .expression_attribute_values(":digest", string(digest))
                    .expression_attribute_values(":holders", AttributeValue::M(holders));
                if record.holders.is_empty() {
                    let expires = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default()
                        + IDLE_ITEM_SECONDS;
                    request
                        .update_expression(
                            "SET digest = :digest, holders = :holders, expires_at = :expires \
                             REMOVE lease_owner, lease_until",
                        )
                        .expression_attribute_values(":expires", number(expires))
                } else {
                    // An item that records who holds a Sid must never expire.
                    request.update_expression(
                        "SET digest = :digest, holders = :holders \
                         REMOVE lease_owner, lease_until, expires_at",
                    )
                }
            }
        };
        request.send().await.map_err(|e| self.error(OP, e))?;
        Ok(())
    }
}
