//! The Sentry API settings: the secret `<prefix>-sentry-api` (JSON).

use ops_shared::Redacted;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::{AWSCURRENT, SecretError};
use ops_shared::sentry::WrittenFields;
use serde_json::Value;

use super::{SentryError, secret_name};

/// What the `<prefix>-sentry-api` secret holds (JSON). Its `Debug` hides the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryApiConfig {
    /// The secret it was read from, for messages.
    pub secret: String,
    /// `api_url`, default `https://sentry.io`, without a trailing slash.
    pub api_url: String,
    pub organization: String,
    pub project: String,
    pub auth_token: Redacted<String>,
    /// The internal integration's numeric id (`sentryAppId` of a trigger action).
    pub sentry_app_id: u64,
    /// Only events of this environment count; `None`: every environment.
    pub environment: Option<String>,
}

/// The JSON to put into the secret, for messages (no real values).
pub fn secret_template() -> &'static str {
    r#"{"organization": "<org slug>", "project": "<project slug>", "auth_token": "<token>", "sentry_app_id": <id>}"#
}

impl SentryApiConfig {
    /// Parses the secret's value. Messages name the field at fault and never quote a value.
    pub fn parse(secret: &str, value: &str) -> Result<SentryApiConfig, SentryError> {
        let problem = |problem: String| SentryError::Secret { secret: secret.to_owned(), problem };
        let mut fields = WrittenFields::parse(value).map_err(problem)?;
        let app_id_field = fields.sentry_app_id.take();
        let project = fields.project(secret).map_err(problem)?;
        Ok(SentryApiConfig {
            secret: project.secret,
            organization: project.organization,
            project: project.project,
            auth_token: project.auth_token,
            sentry_app_id: app_id(app_id_field).map_err(problem)?,
            api_url: project.api_url,
            environment: project.environment,
        })
    }
}

fn app_id(value: Option<Value>) -> Result<u64, String> {
    match value {
        Some(Value::Number(n)) => n.as_u64().filter(|id| *id > 0),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok().filter(|id| *id > 0),
        None => return Err("has no sentry_app_id".to_owned()),
        Some(_) => None,
    }
    .ok_or_else(|| {
        "sentry_app_id is not the internal integration's numeric id (Sentry's API for custom integrations answers \
         with the slug and uuid only, so a slug cannot be turned into the id; `opsctl sentry apply --help` says \
         where to find it)"
            .to_owned()
    })
}

/// Reads the Sentry API settings from `<prefix>-sentry-api` (AWSCURRENT).
pub async fn read_config(store: &impl SecretVersions, prefix: &str) -> Result<SentryApiConfig, SentryError> {
    let secret = secret_name(prefix);
    let value = store.value_at(&secret, AWSCURRENT).await.map_err(|err| {
        let problem = match err {
            SecretError::NotFound { .. } => format!(
                "does not exist (or has no current value): create it, \
                 aws secretsmanager create-secret --name {secret} --secret-string '{}'",
                secret_template()
            ),
            SecretError::AccessDenied { detail, .. } => {
                let fix = "allow secretsmanager:GetSecretValue on it";
                format!("cannot be read with these AWS credentials ({detail}): {fix}")
            }
            SecretError::NotString { .. } => format!("holds binary data, not the JSON {}", secret_template()),
            SecretError::Malformed { problem, .. } => problem,
            SecretError::Unavailable { detail, .. } => format!("could not be read ({detail})"),
        };
        SentryError::Secret { secret: secret.clone(), problem }
    })?;
    SentryApiConfig::parse(&secret, &value.value)
}
