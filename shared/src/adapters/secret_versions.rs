//! The Secrets Manager calls a rotation makes, behind a small trait so the protocol can be
//! exercised without AWS; [`SecretsManagerVersions`] is the AWS adapter.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use crate::adapters::aws::{describe_sdk_error, sdk_error_code};
use crate::adapters::secrets::{SecretError, SecretValue, read_stage};
use crate::runtime::scrub::Scrubber;

/// What DescribeSecret tells a rotation.
#[derive(Debug, Clone, Default)]
pub struct SecretDescription {
    pub name: String,
    pub arn: String,
    pub rotation_enabled: bool,
    pub rotation_days: Option<i64>,
    pub rotation_schedule: Option<String>,
    pub last_rotated: Option<chrono::DateTime<chrono::Utc>>,
    pub next_rotation: Option<chrono::DateTime<chrono::Utc>>,
    pub tags: HashMap<String, String>,
    /// version id -> staging labels
    pub versions: HashMap<String, Vec<String>>,
}

impl SecretDescription {
    pub fn stages_of(&self, version: &str) -> Option<&[String]> {
        self.versions.get(version).map(Vec::as_slice)
    }

    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions.iter().find(|(_, stages)| stages.iter().any(|s| s == stage)).map(|(v, _)| v.as_str())
    }
}

/// One version of a secret, deprecated ones (no staging label) included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub id: String,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    pub stages: Vec<String>,
}

impl VersionInfo {
    /// Whether the version was made at least `age` ago (false when it is not known when).
    pub fn older_than(&self, age: std::time::Duration) -> bool {
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        self.created.is_some_and(|at| chrono::Utc::now() - at >= age)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("Secrets Manager {operation} on {secret} failed: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub secret: String,
    pub detail: String,
}

fn to_utc(at: &aws_sdk_secretsmanager::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

/// The secret-version operations of the rotation protocol.
pub trait SecretVersions: Send + Sync {
    fn describe(&self, secret: &str) -> impl Future<Output = Result<SecretDescription, StoreError>> + Send;
    /// The value of `version` if it holds `stage`; `Ok(None)` when it has no such value.
    fn value_of(
        &self,
        secret: &str,
        version: &str,
        stage: &str,
    ) -> impl Future<Output = Result<Option<SecretValue>, SecretError>> + Send;
    fn value_at(&self, secret: &str, stage: &str) -> impl Future<Output = Result<SecretValue, SecretError>> + Send;
    fn put_pending(
        &self,
        secret: &str,
        token: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn move_current(
        &self,
        secret: &str,
        to_version: &str,
        from_version: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn random_password(&self, length: i64, exclude: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Every version of the secret, deprecated ones included (DescribeSecret lists only those
    /// with a staging label).
    fn history(&self, secret: &str) -> impl Future<Output = Result<Vec<VersionInfo>, StoreError>> + Send;
}

#[derive(Clone, Debug)]
pub struct SecretsManagerVersions {
    client: Client,
    scrubber: Scrubber,
}

impl SecretsManagerVersions {
    pub fn new(client: Client) -> Self {
        SecretsManagerVersions { client, scrubber: Scrubber::default() }
    }

    /// Registers every value read or written (old and new credentials alike) with `scrubber`,
    /// so no Sentry event or error message can carry one.
    pub fn with_scrubber(mut self, scrubber: Scrubber) -> Self {
        self.scrubber = scrubber;
        self
    }
}

impl SecretVersions for SecretsManagerVersions {
    async fn describe(&self, secret: &str) -> Result<SecretDescription, StoreError> {
        let out = self.client.describe_secret().secret_id(secret).send().await.map_err(|err| StoreError {
            operation: "DescribeSecret",
            secret: secret.to_owned(),
            detail: describe_sdk_error(&err),
        })?;
        Ok(SecretDescription {
            name: out.name().unwrap_or(secret).to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            rotation_days: out.rotation_rules().and_then(|r| r.automatically_after_days()),
            rotation_schedule: out.rotation_rules().and_then(|r| r.schedule_expression()).map(str::to_owned),
            last_rotated: out.last_rotated_date().and_then(to_utc),
            next_rotation: out.next_rotation_date().and_then(to_utc),
            tags: out.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect(),
            versions: out.version_ids_to_stages().cloned().unwrap_or_default(),
        })
    }

    async fn value_of(&self, secret: &str, version: &str, stage: &str) -> Result<Option<SecretValue>, SecretError> {
        let result =
            self.client.get_secret_value().secret_id(secret).version_id(version).version_stage(stage).send().await;
        match result {
            Ok(out) => Ok(out.secret_string.map(|value| {
                self.scrubber.register(&value);
                SecretValue { version_id: out.version_id, value, arn: out.arn }
            })),
            Err(err) if sdk_error_code(&err) == Some("ResourceNotFoundException") => Ok(None),
            Err(err) => Err(SecretError::Unavailable { id: secret.to_owned(), detail: describe_sdk_error(&err) }),
        }
    }

    async fn value_at(&self, secret: &str, stage: &str) -> Result<SecretValue, SecretError> {
        let value = read_stage(&self.client, secret, stage).await?;
        self.scrubber.register(&value.value);
        Ok(value)
    }

    async fn put_pending(
        &self,
        secret: &str,
        token: &str,
        value: &str,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(crate::adapters::secrets::AWSPENDING);
        if let Some(rotation_token) = rotation_token {
            request = request.rotation_token(rotation_token);
        }
        request.send().await.map_err(|err| StoreError {
            operation: "PutSecretValue",
            secret: secret.to_owned(),
            detail: describe_sdk_error(&err),
        })?;
        Ok(())
    }

    async fn move_current(&self, secret: &str, to_version: &str, from_version: &str) -> Result<(), StoreError> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(crate::adapters::secrets::AWSCURRENT)
            .move_to_version_id(to_version)
            .remove_from_version_id(from_version)
            .send()
            .await
            .map_err(|err| StoreError {
                operation: "UpdateSecretVersionStage",
                secret: secret.to_owned(),
                detail: describe_sdk_error(&err),
            })?;
        Ok(())
    }

    async fn history(&self, secret: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let mut versions = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secret_version_ids()
                .secret_id(secret)
                .include_deprecated(true)
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|err| StoreError {
                    operation: "ListSecretVersionIds",
                    secret: secret.to_owned(),
                    detail: describe_sdk_error(&err),
                })?;
            versions.extend(out.versions().iter().filter_map(|v| {
                Some(VersionInfo {
                    id: v.version_id()?.to_owned(),
                    created: v.created_date().and_then(to_utc),
                    stages: v.version_stages().to_vec(),
                })
            }));
            // moto answers an empty token on the last page; AWS leaves it out.
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(versions),
            }
        }
    }

    async fn random_password(&self, length: i64, exclude: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .get_random_password()
            .password_length(length)
            .exclude_characters(exclude)
            .send()
            .await
            .map_err(|err| StoreError {
                operation: "GetRandomPassword",
                secret: String::new(),
                detail: describe_sdk_error(&err),
            })?;
        out.random_password.ok_or_else(|| StoreError {
            operation: "GetRandomPassword",
            secret: String::new(),
            detail: "no password returned".to_owned(),
        })
    }
}
