//! API keys and the services that issue them: the secret's shape ([`KeySecret`], checked the
//! same way by the rotation and by `opsctl check-env`), and one [`KeyProvider`] per service;
//! [`for_service`] is the one place that picks one.

pub mod ai_engine;
pub mod google;
pub mod supabase;

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::adapters::http::{Repeat, send_with_retry};
use crate::domain::rotation::KeyService;
use crate::adapters::secrets::SecretValue;

/// What can go wrong with an API key or its service. Messages name the secret, never a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secret {secret} ({stage}) is malformed: {problem}")]
    Malformed { secret: String, stage: String, problem: String },
    #[error("the provider refused to {operation} for secret {secret}: {detail}")]
    Upstream { secret: String, operation: String, detail: String },
    #[error("the pending credential of secret {secret} does not work: {problem}")]
    TestFailed { secret: String, problem: String },
}

/// Every provider call: at most this many attempts, waiting `BACKOFF`, then twice that.
pub const ATTEMPTS: u32 = 3;
pub const BACKOFF: Duration = Duration::from_millis(200);

pub type Call<'a, T> = BoxFuture<'a, Result<T, KeyError>>;

/// A live key found upstream. `key` is its plaintext where the listing carries it.
pub struct Found {
    pub id: String,
    pub key: Option<String>,
}

/// A failed create: `Refused` surely made nothing; after `Unknown` (a timeout, a lost
/// connection, a 5xx, a 409) the key may exist, so the caller looks it up before trying again.
pub enum CreateError {
    Refused(KeyError),
    Unknown(KeyError),
}

/// The credentials of the admin API: a bearer token and, for Google, the service account it
/// was issued to.
pub struct Admin {
    pub bearer: String,
    pub account: Option<String>,
}

/// What the rotation needs of a key service. Keys are created under a name derived from the
/// rotation token; no call repeats a create whose outcome is unknown.
pub trait KeyProvider: Send + Sync {
    /// The secret field naming the secret that holds the admin credential.
    fn admin_field(&self) -> &'static str;
    /// The admin credential from the value stored in secret `source`: by default the value
    /// itself, a bearer token as a plain string.
    fn admin<'a>(&'a self, stored: &'a str, _source: &'a str) -> Call<'a, Admin> {
        Box::pin(async move { Ok(Admin { bearer: stored.trim().to_owned(), account: None }) })
    }
    /// The live keys named `name`, oldest first.
    fn find<'a>(&'a self, admin: &'a Admin, name: &'a str) -> Call<'a, Vec<Found>>;
    /// The plaintext of one found key.
    fn reveal<'a>(&'a self, admin: &'a Admin, found: &'a Found) -> Call<'a, String>;
    /// Creates a key named `name`: `(id, key)`.
    fn create<'a>(&'a self, admin: &'a Admin, name: &'a str) -> BoxFuture<'a, Result<(String, String), CreateError>>;
    /// Revokes key `id`; one already gone is fine.
    fn revoke<'a>(&'a self, admin: &'a Admin, id: &'a str) -> Call<'a, ()>;
    /// testSecret: the service accepts `key`.
    fn check<'a>(&'a self, key: &'a str) -> Call<'a, ()>;
}

/// The provider of `service`, addressed by the secret's own fields.
pub fn for_service<'a>(
    service: KeyService,
    upstream: Upstream<'a>,
    secret: &'a KeySecret,
) -> Result<Box<dyn KeyProvider + 'a>, KeyError> {
    let missing = || upstream.malformed(format!("the fields {} needs are missing", service.strategy().as_str()));
    Ok(match service {
        KeyService::AiEngine => Box::new(ai_engine::AiEngine::new(upstream, secret).ok_or_else(missing)?),
        KeyService::Supabase => Box::new(supabase::Supabase::new(upstream, secret).ok_or_else(missing)?),
        KeyService::Google => Box::new(google::Google::new(upstream, secret).ok_or_else(missing)?),
    })
}

/// How every provider reaches its service: the one HTTP client, the secret being rotated (for
/// error messages) and how long a long-running operation may take.
#[derive(Clone, Copy)]
pub struct Upstream<'a> {
    pub http: &'a reqwest::Client,
    pub secret: &'a str,
    pub operation_timeout: Duration,
}

impl Upstream<'_> {
    pub fn failed(&self, operation: &str, detail: impl std::fmt::Display) -> KeyError {
        KeyError::Upstream {
            secret: self.secret.to_owned(),
            operation: operation.to_owned(),
            detail: detail.to_string(),
        }
    }

    pub fn malformed(&self, problem: String) -> KeyError {
        KeyError::Malformed { secret: self.secret.to_owned(), stage: crate::adapters::secrets::AWSCURRENT.to_owned(), problem }
    }

    /// An idempotent call (read, delete), retried within the bounds.
    pub async fn send(
        &self,
        operation: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, KeyError> {
        send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| self.failed(operation, crate::runtime::lambda::error_chain(&e.without_url())))
    }

    /// A create: repeated only where the service surely did not act on it. An answer of
    /// `expected` status is returned; anything else is a [`CreateError`] saying whether a key
    /// may have been made.
    pub async fn send_create(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        expected: &[reqwest::StatusCode],
    ) -> Result<reqwest::Response, CreateError> {
        let operation = "create a key";
        let result = send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::NotIdempotent).await;
        let unknown = crate::adapters::http::outcome_unknown(&result);
        let error = match result {
            Ok(response) if expected.contains(&response.status()) => return Ok(response),
            Ok(response) => self.failed(operation, format!("answered HTTP {}", response.status())),
            Err(err) => self.failed(operation, crate::runtime::lambda::error_chain(&err.without_url())),
        };
        Err(if unknown { CreateError::Unknown(error) } else { CreateError::Refused(error) })
    }

    /// `DELETE {keys_url}/{id}`; a key already gone (404) is fine. `id` comes from the secret,
    /// so it must be one path segment: a tampered value cannot aim the DELETE elsewhere.
    pub async fn delete_key(&self, keys_url: &str, id: &str, bearer: &str) -> Result<(), KeyError> {
        let operation = "revoke a key";
        let segment = !id.is_empty() && id != ".." && !id.contains(['/', '?', '#', '%', '\\']);
        if !segment {
            return Err(self.failed(operation, format!("key id {id:?} is not a single path segment")));
        }
        let url = format!("{keys_url}/{id}");
        let response = self.send(operation, || self.http.delete(&url).bearer_auth(bearer)).await?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT | reqwest::StatusCode::OK | reqwest::StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.failed(operation, format!("answered HTTP {status}"))),
        }
    }

    /// testSecret's request: `GET url` with the key in `header`; 200 means the key works.
    pub async fn check(&self, url: &str, header: &str, value: &str) -> Result<(), KeyError> {
        self.check_with(url, || self.http.get(url).header(header, value)).await
    }

    /// testSecret's request as `build` makes it (to `url`, named in the error); 200 means the
    /// key works, anything else is the failure with the service's own reason where it gives one.
    pub async fn check_with(&self, url: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Result<(), KeyError> {
        let failed = |problem: String| KeyError::TestFailed { secret: self.secret.to_owned(), problem };
        let response = send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| failed(crate::runtime::lambda::error_chain(&e.without_url())))?;
        match response.status() {
            reqwest::StatusCode::OK => Ok(()),
            status => {
                let reason = response.json::<Value>().await.ok().and_then(|body| google_error_reason(&body));
                let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                Err(failed(format!("{url} answered HTTP {status}{reason}")))
            }
        }
    }
}

/// The `status` and `ErrorInfo` reason of a Google API error body (`{error: {status, details:
/// [{reason}]}}`, "Google API errors", AIP-193); they never carry the key.
fn google_error_reason(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let status = error.get("status").and_then(Value::as_str);
    let reason = error
        .get("details")
        .and_then(Value::as_array)
        .and_then(|details| details.iter().find_map(|d| d.get("reason").and_then(Value::as_str)));
    match (status, reason) {
        (Some(status), Some(reason)) => Some(format!("{status}, {reason}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

/// An API-key secret: `api_key`, `key_id`, and the service's own fields, kept as they are.
#[derive(Clone, PartialEq)]
pub struct KeySecret {
    pub api_key: String,
    pub key_id: String,
    pub fields: Map<String, Value>,
}

// Never print the key.
impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySecret").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl KeySecret {
    /// A secret of `service`, with everything checked that can be known without asking the
    /// service (`opsctl check-env` runs the same checks). Problems name fields, never values.
    pub fn parse(service: KeyService, secret: &str, stage: &str, value: &SecretValue) -> Result<KeySecret, KeyError> {
        let malformed =
            |problem: String| KeyError::Malformed { secret: secret.to_owned(), stage: stage.to_owned(), problem };
        let mut fields: Map<String, Value> = value.json(secret, stage).map_err(|e| malformed(e.to_string()))?;
        let mut take = |name: &str| match fields.remove(name) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
            _ => Err(malformed(format!("{name} is missing or empty"))),
        };
        let api_key = take("api_key")?;
        if service == KeyService::Supabase && api_key.starts_with("eyJ") {
            return Err(malformed(
                "holds a legacy JWT key (service_role), which cannot be rotated alone: \
                 migrate to a secret API key (sb_secret_...) and store that"
                    .to_owned(),
            ));
        }
        let key_id = take("key_id")?;
        let required = match service {
            KeyService::AiEngine => ai_engine::FIELDS,
            KeyService::Supabase => supabase::FIELDS,
            KeyService::Google => {
                if !google::is_key_name(&key_id) {
                    return Err(malformed(
                        "key_id is not the key's resource name, projects/<project>/locations/global/keys/<id>"
                            .to_owned(),
                    ));
                }
                google::FIELDS
            }
        };
        let parsed = KeySecret { api_key, key_id, fields };
        let missing: Vec<&str> = required.iter().copied().filter(|name| parsed.field(name).is_none()).collect();
        if !missing.is_empty() {
            return Err(malformed(format!("missing or empty: {}", missing.join(", "))));
        }
        Ok(parsed)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str).filter(|v| !v.trim().is_empty())
    }

    /// The same secret holding another key.
    pub fn with_key(&self, key_id: String, api_key: String) -> KeySecret {
        KeySecret { api_key, key_id, fields: self.fields.clone() }
    }

    pub fn to_json(&self) -> Value {
        let mut map = self.fields.clone();
        map.insert("api_key".into(), Value::String(self.api_key.clone()));
        map.insert("key_id".into(), Value::String(self.key_id.clone()));
        Value::Object(map)
    }
}

/// The upstream key name for a rotation token (letters, digits and `_` only, as Supabase wants;
/// short enough for Google's 63-character key ids).
pub fn key_name(token: &str) -> String {
    let safe: String = token.chars().filter(char::is_ascii_alphanumeric).take(54).collect();
    format!("rotation_{}", safe.to_ascii_lowercase())
}

/// A base URL from the secret's field `field`, else `default`, without a trailing slash.
pub fn base_url(secret: &KeySecret, field: &str, default: &str) -> String {
    secret.field(field).unwrap_or(default).trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_id_cannot_aim_the_delete_elsewhere() {
        let http = reqwest::Client::new();
        let upstream = Upstream { http: &http, secret: "s", operation_timeout: Duration::from_secs(1) };
        for id in ["../admin", "a/b", "x?all=true", "", "..", "%2e%2e"] {
            let err = upstream.delete_key("http://127.0.0.1:9/keys", id, "t").await.expect_err(id).to_string();
            assert!(err.contains("not a single path segment"), "{id}: {err}");
        }
    }
}
