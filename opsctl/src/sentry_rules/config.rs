//! The Sentry API settings: the secret `<prefix>-sentry-api` (JSON).

use ops_shared::Redacted;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::{AWSCURRENT, SecretError};
use reqwest::Url;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{DEFAULT_API_URL, SentryError, secret_name};

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

/// Written by hand so that the token never shows.
/// The JSON to put into the secret, for messages (no real values).
pub fn secret_template() -> &'static str {
    r#"{"organization": "<org slug>", "project": "<project slug>", "auth_token": "<token>", "sentry_app_id": <id>}"#
}

/// The secret's fields as written: each is judged on its own, so that a message names the
/// field at fault (a null counts as written, and is not a string).
#[derive(Deserialize)]
struct Written {
    #[serde(default, deserialize_with = "written")]
    organization: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    project: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    auth_token: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    sentry_app_id: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    api_url: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    environment: Option<Value>,
}

fn written<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl SentryApiConfig {
    /// Parses the secret's value. Messages name the field at fault and never quote a value.
    pub fn parse(secret: &str, value: &str) -> Result<SentryApiConfig, SentryError> {
        let problem = |problem: String| SentryError::Secret { secret: secret.to_owned(), problem };
        let json: Value = serde_json::from_str(value).map_err(|e| {
            problem(format!("is not JSON ({:?} error at line {} column {})", e.classify(), e.line(), e.column()))
        })?;
        if !json.is_object() {
            return Err(problem("is not a JSON object".to_owned()));
        }
        let fields: Written = serde_json::from_value(json).map_err(|_| problem("is not a JSON object".to_owned()))?;
        Ok(SentryApiConfig {
            secret: secret.to_owned(),
            organization: text("organization", fields.organization).map_err(problem)?,
            project: text("project", fields.project).map_err(problem)?,
            auth_token: text("auth_token", fields.auth_token).map_err(problem)?.into(),
            sentry_app_id: app_id(fields.sentry_app_id).map_err(problem)?,
            api_url: api_url(fields.api_url).map_err(problem)?,
            environment: environment(fields.environment).map_err(problem)?,
        })
    }
}

/// A required, non-empty string, trimmed.
fn text(field: &str, value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::String(_)) => Err(format!("{field} is empty")),
        Some(_) => Err(format!("{field} is not a string")),
        None => Err(format!("has no {field}")),
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

fn api_url(value: Option<Value>) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_API_URL.to_owned()),
        Some(Value::String(url)) => {
            let url = url.trim().trim_end_matches('/').to_owned();
            match Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => Ok(url),
                _ => Err("api_url is not an http(s) URL".to_owned()),
            }
        }
        Some(_) => Err("api_url is not a string".to_owned()),
    }
}

fn environment(value: Option<Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(e)) if !e.trim().is_empty() => Ok(Some(e.trim().to_owned())),
        Some(Value::String(_)) => Ok(None),
        Some(_) => Err("environment is not a string".to_owned()),
    }
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
