//! Where Sentry's REST API is and who may read it: a secret holding JSON `{organization,
//! project, auth_token, environment?, api_url?}`. `opsctl sentry apply` adds `sentry_app_id` to
//! the same fields in its own secret; both are read field by field here, so that a message
//! names the field at fault and never quotes a value.

use reqwest::Url;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::runtime::redacted::Redacted;

/// Sentry's SaaS API; a self-hosted Sentry or another region sets `api_url`.
pub const DEFAULT_API_URL: &str = "https://sentry.io";

/// One Sentry project of one organization, and a token for it. `Debug` hides the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryProject {
    /// The secret it was read from, for messages.
    pub secret: String,
    /// `api_url`, default `https://sentry.io`, without a trailing slash.
    pub api_url: String,
    pub organization: String,
    pub project: String,
    pub auth_token: Redacted<String>,
    /// Only events of this environment count; `None`: every environment.
    pub environment: Option<String>,
}

/// The secret's fields as written: each is judged on its own (a null counts as written, and is
/// not a string).
#[derive(Deserialize)]
pub struct WrittenFields {
    #[serde(default, deserialize_with = "written")]
    organization: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    project: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    auth_token: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    pub sentry_app_id: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    api_url: Option<Value>,
    #[serde(default, deserialize_with = "written")]
    environment: Option<Value>,
}

fn written<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl WrittenFields {
    /// The fields of a secret's value; the problem says what is wrong without quoting it.
    pub fn parse(value: &str) -> Result<WrittenFields, String> {
        let json: Value = serde_json::from_str(value).map_err(|e| {
            format!("is not JSON ({:?} error at line {} column {})", e.classify(), e.line(), e.column())
        })?;
        if !json.is_object() {
            return Err("is not a JSON object".to_owned());
        }
        serde_json::from_value(json).map_err(|_| "is not a JSON object".to_owned())
    }

    /// The project's fields, for the secret `secret`.
    pub fn project(self, secret: &str) -> Result<SentryProject, String> {
        Ok(SentryProject {
            secret: secret.to_owned(),
            organization: text("organization", self.organization)?,
            project: text("project", self.project)?,
            auth_token: text("auth_token", self.auth_token)?.into(),
            api_url: api_url(self.api_url)?,
            environment: environment(self.environment)?,
        })
    }
}

impl SentryProject {
    /// Parses a secret's value. The problem names the field at fault and never quotes a value.
    pub fn parse(secret: &str, value: &str) -> Result<SentryProject, String> {
        WrittenFields::parse(value)?.project(secret)
    }

    /// `{api_url}/api/0/{segments...}/`, each segment escaped as a path segment.
    pub fn url(&self, segments: &[&str]) -> Result<Url, String> {
        let mut url = Url::parse(&self.api_url).map_err(|e| format!("has an api_url that is not a URL ({e})"))?;
        url.path_segments_mut()
            .map_err(|()| "has an api_url that cannot take a path".to_owned())?
            .pop_if_empty()
            .extend(["api", "0"])
            .extend(segments)
            .push("");
        Ok(url)
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
