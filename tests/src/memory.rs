//! In-memory stand-ins for the shared crate's traits, so decisions (de-duplication, repeats,
//! inhibition, rollback after a failed publish, races between overlapping runs) are tested in
//! milliseconds, without moto. The moto tests stay as contract tests of the real adapters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ops_shared::alert::{Alert, AlertSink, PublishError};
use ops_shared::secret_versions::{SecretDescription, SecretVersions, StoreError};
use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Clock, SecretError, SecretValue};
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

/// One secret's versions: id, value (none yet while a rotation has only staged the version)
/// and staging labels, in the order they were made.
#[derive(Default, Clone)]
struct MemorySecret {
    tags: HashMap<String, String>,
    rotation_enabled: bool,
    versions: Vec<(String, Option<String>, Vec<String>)>,
}

/// Secrets Manager's versions and staging labels, with its rules: a label is on one version at
/// a time, moving AWSCURRENT puts AWSPREVIOUS on the version it left, and a version id once
/// used cannot take another value.
#[derive(Default)]
pub struct MemorySecrets {
    secrets: Mutex<HashMap<String, MemorySecret>>,
    writes: Mutex<usize>,
}

impl MemorySecrets {
    /// A secret whose only version, `v1`, holds `value` as AWSCURRENT.
    pub fn add(&self, name: &str, value: &str, tags: &[(&str, &str)], rotation_enabled: bool) {
        let secret = MemorySecret {
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            rotation_enabled,
            versions: vec![("v1".to_owned(), Some(value.to_owned()), vec![AWSCURRENT.to_owned()])],
        };
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.insert(name.to_owned(), secret);
        }
    }

    /// Stages `version` AWSPENDING with `value`, as a rotation's createSecret would have, or
    /// with none, as Secrets Manager does when it starts a rotation.
    pub fn add_pending(&self, name: &str, version: &str, value: Option<&str>) {
        if let Ok(mut secrets) = self.secrets.lock()
            && let Some(secret) = secrets.get_mut(name)
        {
            Self::take_label(secret, AWSPENDING);
            secret.versions.push((version.to_owned(), value.map(str::to_owned), vec![AWSPENDING.to_owned()]));
        }
    }

    /// The value staged `stage`, if any.
    pub fn value(&self, name: &str, stage: &str) -> Option<String> {
        let secrets = self.secrets.lock().ok()?;
        let secret = secrets.get(name)?;
        secret.versions.iter().find(|(_, _, stages)| stages.iter().any(|s| s == stage)).and_then(|(_, v, _)| v.clone())
    }

    /// How many versions the secret has.
    pub fn version_count(&self, name: &str) -> usize {
        self.secrets.lock().ok().and_then(|s| s.get(name).map(|secret| secret.versions.len())).unwrap_or(0)
    }

    /// How many writes (PutSecretValue, UpdateSecretVersionStage) were made.
    pub fn writes(&self) -> usize {
        self.writes.lock().map(|w| *w).unwrap_or(0)
    }

    fn take_label(secret: &mut MemorySecret, label: &str) {
        for (_, _, stages) in &mut secret.versions {
            stages.retain(|s| s != label);
        }
    }

    fn wrote(&self) {
        if let Ok(mut writes) = self.writes.lock() {
            *writes += 1;
        }
    }

    fn missing(operation: &'static str, secret: &str) -> StoreError {
        StoreError { operation, secret: secret.to_owned(), detail: "ResourceNotFoundException".to_owned() }
    }
}

impl SecretVersions for MemorySecrets {
    async fn describe(&self, name: &str) -> Result<SecretDescription, StoreError> {
        let secrets = self.secrets.lock().map_err(|_| Self::missing("DescribeSecret", name))?;
        let secret = secrets.get(name).ok_or_else(|| Self::missing("DescribeSecret", name))?;
        Ok(SecretDescription {
            name: name.to_owned(),
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"),
            rotation_enabled: secret.rotation_enabled,
            tags: secret.tags.clone(),
            versions: secret.versions.iter().map(|(id, _, stages)| (id.clone(), stages.clone())).collect(),
            ..SecretDescription::default()
        })
    }

    async fn value_of(&self, name: &str, version: &str, stage: &str) -> Result<Option<SecretValue>, SecretError> {
        let secrets =
            self.secrets.lock().map_err(|_| SecretError::Unavailable { id: name.into(), detail: "".into() })?;
        Ok(secrets.get(name).and_then(|secret| {
            secret
                .versions
                .iter()
                .find(|(id, _, stages)| id == version && stages.iter().any(|s| s == stage))
                .and_then(|(id, value, _)| Some(SecretValue { version_id: Some(id.clone()), value: value.clone()? }))
        }))
    }

    async fn value_at(&self, name: &str, stage: &str) -> Result<SecretValue, SecretError> {
        let not_found = || SecretError::NotFound { id: name.to_owned(), stage: stage.to_owned() };
        let secrets = self.secrets.lock().map_err(|_| not_found())?;
        let secret = secrets.get(name).ok_or_else(not_found)?;
        secret
            .versions
            .iter()
            .find(|(_, _, stages)| stages.iter().any(|s| s == stage))
            .and_then(|(id, value, _)| Some(SecretValue { version_id: Some(id.clone()), value: value.clone()? }))
            .ok_or_else(not_found)
    }

    async fn put_pending(
        &self,
        name: &str,
        token: &str,
        value: &str,
        _rotation: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut secrets = self.secrets.lock().map_err(|_| Self::missing("PutSecretValue", name))?;
        let secret = secrets.get_mut(name).ok_or_else(|| Self::missing("PutSecretValue", name))?;
        match secret.versions.iter_mut().find(|(id, _, _)| id == token) {
            Some((_, Some(existing), _)) if existing == value => return Ok(()),
            Some((_, Some(_), _)) => {
                let detail = "ResourceExistsException: the version exists with another value".to_owned();
                return Err(StoreError { operation: "PutSecretValue", secret: name.to_owned(), detail });
            }
            Some((_, empty, _)) => *empty = Some(value.to_owned()),
            None => {
                Self::take_label(secret, AWSPENDING);
                secret.versions.push((token.to_owned(), Some(value.to_owned()), vec![AWSPENDING.to_owned()]));
            }
        }
        drop(secrets);
        self.wrote();
        Ok(())
    }

    async fn move_current(&self, name: &str, to_version: &str, from_version: &str) -> Result<(), StoreError> {
        let mut secrets = self.secrets.lock().map_err(|_| Self::missing("UpdateSecretVersionStage", name))?;
        let secret = secrets.get_mut(name).ok_or_else(|| Self::missing("UpdateSecretVersionStage", name))?;
        let holds_current =
            |id: &str| secret.versions.iter().any(|(v, _, stages)| v == id && stages.iter().any(|s| s == AWSCURRENT));
        if !holds_current(from_version) || !secret.versions.iter().any(|(v, _, _)| v == to_version) {
            let detail = "InvalidParameterException: AWSCURRENT is not on the version to remove it from".to_owned();
            return Err(StoreError { operation: "UpdateSecretVersionStage", secret: name.to_owned(), detail });
        }
        Self::take_label(secret, AWSCURRENT);
        Self::take_label(secret, AWSPREVIOUS);
        for (id, _, stages) in &mut secret.versions {
            if id == to_version {
                stages.push(AWSCURRENT.to_owned());
            } else if id == from_version {
                stages.push(AWSPREVIOUS.to_owned());
            }
        }
        drop(secrets);
        self.wrote();
        Ok(())
    }

    async fn random_password(&self, length: i64, _exclude: &str) -> Result<String, StoreError> {
        Ok("x".repeat(usize::try_from(length).unwrap_or(32)))
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
