//! In-memory stand-ins for the shared crate's traits, so decisions (de-duplication, repeats,
//! inhibition, rollback after a failed publish, races between overlapping runs) are tested in
//! milliseconds, without moto. The moto tests stay as contract tests of the real adapters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_shared::alert::{Alert, AlertSink, PublishError};
use ops_shared::secrets::Clock;
use ops_shared::state::{StateError, StateStore, Versioned};
use serde_json::Value;

/// A state table: versioned documents and counters, with DynamoDB's conditional-write rules.
#[derive(Default)]
pub struct MemoryState {
    items: Mutex<HashMap<(String, String), Versioned>>,
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

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub body: String,
    pub alert: Alert,
}

/// An alert topic that records what it is given, and fails the next publishes on request.
#[derive(Default)]
pub struct RecordingAlerts {
    published: Mutex<Vec<Published>>,
    failures: Mutex<usize>,
}

impl RecordingAlerts {
    pub fn published(&self) -> Vec<Published> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.published().into_iter().map(|p| p.subject).collect()
    }

    /// The next `count` publishes fail, as SNS does when the topic is gone or throttled.
    pub fn fail_next(&self, count: usize) {
        if let Ok(mut failures) = self.failures.lock() {
            *failures = count;
        }
    }
}

impl AlertSink for RecordingAlerts {
    async fn publish_message(&self, subject: &str, body: &str, alert: &Alert) -> Result<(), PublishError> {
        let failed = self.failures.lock().map(|mut left| {
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        });
        if failed.unwrap_or(true) {
            return Err(PublishError {
                topic: "memory".into(),
                dedup_key: alert.dedup_key.clone(),
                detail: "publish refused (injected)".into(),
            });
        }
        if let Ok(mut published) = self.published.lock() {
            published.push(Published { subject: subject.to_owned(), body: body.to_owned(), alert: alert.clone() });
        }
        Ok(())
    }
}

/// A clock that moves only when told, shared by its clones.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.lock().map(|now| *now).unwrap_or_else(|_| Instant::now())
    }
}
