//! The state table's double.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::state::{StateError, StateStore, Versioned};

/// A state table: versioned documents and counters, with DynamoDB's conditional-write rules.
/// Clones share the table.
#[derive(Default, Clone)]
pub struct MemoryState {
    items: Arc<Mutex<HashMap<(String, String), Versioned>>>,
}

impl MemoryState {
    fn error(operation: &'static str, pk: &str, sk: &str) -> StateError {
        StateError {
            table: "memory".into(),
            operation,
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            detail: "lock poisoned".into(),
        }
    }

    /// The document at `pk`/`sk`, if any.
    pub fn document(&self, pk: &str, sk: &str) -> Option<Value> {
        self.items.lock().ok()?.get(&(pk.to_owned(), sk.to_owned())).map(|item| item.data.clone())
    }

    /// Stores `data` as it is, as a corrupted or older-format record would be.
    pub fn overwrite(&self, pk: &str, sk: &str, data: Value) {
        if let Ok(mut items) = self.items.lock() {
            let version = items.get(&(pk.to_owned(), sk.to_owned())).map_or(1, |item| item.version + 1);
            items.insert((pk.to_owned(), sk.to_owned()), Versioned { version, data });
        }
    }
}

impl StateStore for MemoryState {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Versioned>, StateError> {
        let items = self.items.lock().map_err(|_| Self::error("GetItem", pk, sk))?;
        Ok(items.get(&(pk.to_owned(), sk.to_owned())).cloned())
    }

    async fn put(
        &self,
        pk: &str,
        sk: &str,
        data: &Value,
        expected: Option<u64>,
        _expires_at: i64,
    ) -> Result<bool, StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("PutItem", pk, sk))?;
        let key = (pk.to_owned(), sk.to_owned());
        if items.get(&key).map(|item| item.version) != expected {
            return Ok(false);
        }
        items.insert(key, Versioned { version: expected.unwrap_or(0) + 1, data: data.clone() });
        Ok(true)
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("DeleteItem", pk, sk))?;
        items.remove(&(pk.to_owned(), sk.to_owned()));
        Ok(())
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<(String, String, Value)>, StateError> {
        let items = self.items.lock().map_err(|_| Self::error("Scan", pk_prefix, "*"))?;
        let mut found: Vec<(String, String, Value)> = items
            .iter()
            .filter(|((pk, _), _)| pk.starts_with(pk_prefix))
            .map(|((pk, sk), item)| (pk.clone(), sk.clone(), item.data.clone()))
            .collect();
        found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(found)
    }

    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        counters: &[(&str, i64)],
        _expires_at: i64,
    ) -> Result<(), StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("UpdateItem", pk, sk))?;
        let item = items
            .entry((pk.to_owned(), sk.to_owned()))
            .or_insert_with(|| Versioned { version: 0, data: Value::Object(Default::default()) });
        for (name, by) in counters {
            let now = item.data.get(*name).and_then(Value::as_i64).unwrap_or(0);
            item.data[*name] = Value::from(now + by);
        }
        Ok(())
    }
}
