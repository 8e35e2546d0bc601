//! What every key service offers the rotation ([`KeyProvider`]) and how every provider
//! reaches its service ([`Upstream`]): one HTTP client, bounded retries, and errors that name
//! the secret, never a key.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::error::KeyError;
use crate::adapters::http::{Repeat, outcome_unknown, send_with_retry};
use crate::runtime::errors::error_chain;

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
        KeyError::Malformed {
            secret: self.secret.to_owned(),
            stage: crate::adapters::secrets::AWSCURRENT.to_owned(),
            problem,
        }
    }

    /// An idempotent call (read, delete), retried within the bounds.
    pub async fn send(
        &self,
        operation: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, KeyError> {
        send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| self.failed(operation, error_chain(&e.without_url())))
    }

    /// A create: repeated only where the service surely did not act on it. An answer of
    /// `expected` status is returned; anything else is a [`CreateError`] saying whether a key
    /// may have been made.
    pub(crate) async fn send_create(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        expected: &[reqwest::StatusCode],
    ) -> Result<reqwest::Response, CreateError> {
        let operation = "create a key";
        let result = send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::NotIdempotent).await;
        let unknown = outcome_unknown(&result);
        let error = match result {
            Ok(response) if expected.contains(&response.status()) => return Ok(response),
            Ok(response) => self.failed(operation, format!("answered HTTP {}", response.status())),
            Err(err) => self.failed(operation, error_chain(&err.without_url())),
        };
        Err(if unknown { CreateError::Unknown(error) } else { CreateError::Refused(error) })
    }

    /// `DELETE {keys_url}/{id}`; a key already gone (404) is fine. `id` comes from the secret,
    /// so it must be one path segment: a tampered value cannot aim the DELETE elsewhere.
    pub(crate) async fn delete_key(&self, keys_url: &str, id: &str, bearer: &str) -> Result<(), KeyError> {
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
    pub(crate) async fn check_with(
        &self,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(), KeyError> {
        let failed = |problem: String| KeyError::TestFailed { secret: self.secret.to_owned(), problem };
        let response = send_with_retry(build, ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| failed(error_chain(&e.without_url())))?;
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
