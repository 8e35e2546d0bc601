//! Secrets Manager's double: versions and staging labels.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret_versions::{SecretDescription, SecretVersions, StoreError};
use crate::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretError, SecretValue};

/// One secret's versions: id, value (none yet while a rotation has only staged the version)
/// and staging labels, in the order they were made.
#[derive(Default, Clone)]
struct MemorySecret {
    tags: HashMap<String, String>,
    rotation_enabled: bool,
    last_rotated: Option<chrono::DateTime<chrono::Utc>>,
    next_rotation: Option<chrono::DateTime<chrono::Utc>>,
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
            last_rotated: None,
            next_rotation: None,
            versions: vec![("v1".to_owned(), Some(value.to_owned()), vec![AWSCURRENT.to_owned()])],
        };
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.insert(name.to_owned(), secret);
        }
    }

    /// The dates DescribeSecret gives: the last rotation and the next one Secrets Manager plans.
    pub fn set_rotation_dates(
        &self,
        name: &str,
        last: Option<chrono::DateTime<chrono::Utc>>,
        next: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        if let Ok(mut secrets) = self.secrets.lock()
            && let Some(secret) = secrets.get_mut(name)
        {
            (secret.last_rotated, secret.next_rotation) = (last, next);
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
    /// Versions here have no creation time: none is old enough to be judged abandoned.
    async fn history(&self, name: &str) -> Result<Vec<crate::secret_versions::VersionInfo>, StoreError> {
        let secrets = self.secrets.lock().map_err(|_| Self::missing("ListSecretVersionIds", name))?;
        let secret = secrets.get(name).ok_or_else(|| Self::missing("ListSecretVersionIds", name))?;
        Ok(secret
            .versions
            .iter()
            .map(|(id, _, stages)| crate::secret_versions::VersionInfo {
                id: id.clone(),
                created: None,
                stages: stages.clone(),
            })
            .collect())
    }

    async fn describe(&self, name: &str) -> Result<SecretDescription, StoreError> {
        let secrets = self.secrets.lock().map_err(|_| Self::missing("DescribeSecret", name))?;
        let secret = secrets.get(name).ok_or_else(|| Self::missing("DescribeSecret", name))?;
        Ok(SecretDescription {
            name: name.to_owned(),
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"),
            rotation_enabled: secret.rotation_enabled,
            last_rotated: secret.last_rotated,
            next_rotation: secret.next_rotation,
            tags: secret.tags.clone(),
            versions: secret.versions.iter().map(|(id, _, stages)| (id.clone(), stages.clone())).collect(),
            ..SecretDescription::default()
        })
    }

    async fn value_of(&self, name: &str, version: &str, stage: &str) -> Result<Option<SecretValue>, SecretError> {
        let secrets =
            self.secrets.lock().map_err(|_| SecretError::Unavailable { id: name.into(), detail: "".into() })?;
        Ok(secrets.get(name).and_then(|secret| {
            secret.versions.iter().find(|(id, _, stages)| id == version && stages.iter().any(|s| s == stage)).and_then(
                |(id, value, _)| Some(SecretValue { version_id: Some(id.clone()), value: value.clone()?, arn: None }),
            )
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
            .and_then(|(id, value, _)| {
                Some(SecretValue { version_id: Some(id.clone()), value: value.clone()?, arn: None })
            })
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
