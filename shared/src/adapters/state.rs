//! Small JSON documents in the state table, written with optimistic concurrency: each item
//! carries a version and a write succeeds only if the version is still the one read. That is
//! what keeps two overlapping invocations from both acting on the same change.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::adapters::aws::describe_sdk_error;

#[derive(Debug, thiserror::Error)]
#[error("state table {table}: {operation} {pk}/{sk} failed: {detail}")]
pub struct StateError {
    pub table: String,
    pub operation: &'static str,
    pub pk: String,
    pub sk: String,
    pub detail: String,
}

/// A document and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub data: Value,
}

pub trait StateStore: Send + Sync {
    fn get(&self, pk: &str, sk: &str) -> impl Future<Output = Result<Option<Versioned>, StateError>> + Send;
    /// Writes `data` as version `expected + 1` (or 1 when `expected` is `None`, meaning the item
    /// must not exist yet). `Ok(false)` when someone else wrote first.
    fn put(
        &self,
        pk: &str,
        sk: &str,
        data: &Value,
        expected: Option<u64>,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StateError>> + Send;
    fn delete(&self, pk: &str, sk: &str) -> impl Future<Output = Result<(), StateError>> + Send;
    /// Every item whose partition key starts with `pk_prefix`, as `(pk, sk, data)`: a document
    /// item's `data`, a counter item's counters as a JSON object. For status reports only: it
    /// reads the whole table.
    fn scan_prefix(
        &self,
        pk_prefix: &str,
    ) -> impl Future<Output = Result<Vec<(String, String, Value)>, StateError>> + Send;
    /// Adds to numeric counters (creating them at zero).
    fn increment(
        &self,
        pk: &str,
        sk: &str,
        counters: &[(&str, i64)],
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// A change [`update`] wrote: the record before and after, and the version now stored.
#[derive(Debug, Clone)]
pub struct Committed<T, D> {
    pub before: T,
    pub after: T,
    /// What `decide` concluded, besides the new record.
    pub decision: D,
    /// `None` when the record did not exist before.
    pub(crate) previous_version: Option<u64>,
}

impl<T, D> Committed<T, D> {
    pub fn version(&self) -> u64 {
        self.previous_version.unwrap_or(0) + 1
    }
}

/// Reads the record at `pk`/`sk`, lets `decide` compute the new one from it, and writes it
/// only if nobody wrote in between; on a lost race it reads and decides again, at most
/// `attempts` times (`Ok(None)` when every attempt lost). `decide` may run several times.
///
/// A record missing or unreadable as `T` counts as `T::default()` and is overwritten: the
/// state is derived from what the functions observe and is learned again, while refusing it
/// would stop alerts for that key for good. An unreadable one is logged.
pub async fn update<S, T, D>(
    store: &S,
    (pk, sk): (&str, &str),
    expires_at: i64,
    attempts: usize,
    mut decide: impl FnMut(&T) -> (T, D),
) -> Result<Option<Committed<T, D>>, StateError>
where
    S: StateStore,
    T: Default + Serialize + DeserializeOwned,
{
    for _ in 0..attempts {
        let current = store.get(pk, sk).await?;
        let previous_version = current.as_ref().map(|item| item.version);
        let before = match current {
            None => T::default(),
            Some(item) => serde_json::from_value(item.data).unwrap_or_else(|err| {
                tracing::warn!(pk, sk, error = %err, "unreadable state record; starting it afresh");
                T::default()
            }),
        };
        let (after, decision) = decide(&before);
        let data = to_data(&after, pk, sk)?;
        if store.put(pk, sk, &data, previous_version, expires_at).await? {
            return Ok(Some(Committed { before, after, decision, previous_version }));
        }
    }
    Ok(None)
}

/// Undoes `committed` after what it should have caused (an alert, say) failed: the record goes
/// back to what it was unless someone wrote since, or away if it did not exist before.
pub async fn roll_back<S, T, D>(
    store: &S,
    (pk, sk): (&str, &str),
    expires_at: i64,
    committed: &Committed<T, D>,
) -> Result<(), StateError>
where
    S: StateStore,
    T: Serialize,
{
    match committed.previous_version {
        None => store.delete(pk, sk).await,
        Some(_) => {
            let data = to_data(&committed.before, pk, sk)?;
            store.put(pk, sk, &data, Some(committed.version()), expires_at).await.map(|_| ())
        }
    }
}

fn to_data(record: &impl Serialize, pk: &str, sk: &str) -> Result<Value, StateError> {
    serde_json::to_value(record).map_err(|e| StateError {
        table: String::new(),
        operation: "serialise",
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        detail: e.to_string(),
    })
}

#[derive(Clone, Debug)]
pub struct DynamoState {
    client: Client,
    table: String,
}

impl DynamoState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoState { client, table: table.into() }
    }

    fn error(&self, operation: &'static str, pk: &str, sk: &str, detail: String) -> StateError {
        StateError { table: self.table.clone(), operation, pk: pk.to_owned(), sk: sk.to_owned(), detail }
    }

    fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }
}

impl StateStore for DynamoState {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Versioned>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", pk, sk, describe_sdk_error(&e)))?;
        let Some(item) = out.item else { return Ok(None) };
        let version = match item.get("version") {
            Some(AttributeValue::N(n)) => {
                n.parse().map_err(|_| self.error("GetItem", pk, sk, format!("bad version {n}")))?
            }
            _ => 0,
        };
        let data = match item.get("data") {
            Some(AttributeValue::S(text)) => {
                serde_json::from_str(text).map_err(|e| self.error("GetItem", pk, sk, format!("bad data: {e}")))?
            }
            _ => Value::Null,
        };
        Ok(Some(Versioned { version, data }))
    }

    async fn put(
        &self,
        pk: &str,
        sk: &str,
        data: &Value,
        expected: Option<u64>,
        expires_at: i64,
    ) -> Result<bool, StateError> {
        let mut item = Self::key(pk, sk);
        item.insert("data".into(), AttributeValue::S(data.to_string()));
        item.insert("version".into(), AttributeValue::N((expected.unwrap_or(0) + 1).to_string()));
        item.insert("expires_at".into(), AttributeValue::N(expires_at.to_string()));
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(self.error("PutItem", pk, sk, describe_sdk_error(&err))),
        }
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .send()
            .await
            .map_err(|e| self.error("DeleteItem", pk, sk, describe_sdk_error(&e)))?;
        Ok(())
    }

    async fn increment(&self, pk: &str, sk: &str, counters: &[(&str, i64)], expires_at: i64) -> Result<(), StateError> {
        let mut expression = String::from("SET expires_at = :expires_at ADD ");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .expression_attribute_values(":expires_at", AttributeValue::N(expires_at.to_string()));
        for (i, (name, by)) in counters.iter().enumerate() {
            if i > 0 {
                expression.push_str(", ");
            }
            expression.push_str(&format!("#c{i} :c{i}"));
            request = request
                .expression_attribute_names(format!("#c{i}"), *name)
                .expression_attribute_values(format!(":c{i}"), AttributeValue::N(by.to_string()));
        }
        request
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", pk, sk, describe_sdk_error(&e)))?;
        Ok(())
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<(String, String, Value)>, StateError> {
        let mut items = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(pk_prefix.to_owned()))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.error("Scan", pk_prefix, "*", describe_sdk_error(&e)))?;
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(text)) => text.clone(),
                _ => String::new(),
            };
            let (pk, sk) = (text("pk"), text("sk"));
            let data = match item.get("data") {
                Some(AttributeValue::S(json)) => {
                    serde_json::from_str(json).map_err(|e| self.error("Scan", &pk, &sk, format!("bad data: {e}")))?
                }
                _ => Value::Object(
                    item.iter()
                        .filter(|(name, _)| !["pk", "sk", "version", "expires_at"].contains(&name.as_str()))
                        .filter_map(|(name, value)| match value {
                            AttributeValue::N(n) => Some((name.clone(), n.parse::<i64>().ok()?.into())),
                            _ => None,
                        })
                        .collect(),
                ),
            };
            items.push((pk, sk, data));
        }
        Ok(items)
    }
}
