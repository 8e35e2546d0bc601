//! `http-api-key`: the AI engine's admin API. A key is created upstream under a name derived
//! from the rotation token (so a retried step finds it instead of making another), and the key
//! two generations old is revoked in setSecret, so the previous key works until the next one.

use std::time::Duration;

use ops_shared::http::send_with_retry;
use ops_shared::secrets::SecretValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RotationError;

const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(200);

/// The secret's JSON; unknown fields are kept through rotations.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpApiKey {
    pub api_key: String,
    pub key_id: String,
    pub admin_url: String,
    pub check_url: String,
    pub admin_secret_arn: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

// Never print the key.
impl std::fmt::Debug for HttpApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApiKey")
            .field("key_id", &self.key_id)
            .field("admin_url", &self.admin_url)
            .finish_non_exhaustive()
    }
}

pub fn parse(secret: &str, stage: &str, value: &SecretValue) -> Result<HttpApiKey, RotationError> {
    let key: HttpApiKey = value.json(secret, stage).map_err(|e| RotationError::MalformedSecret {
        secret: secret.to_owned(),
        stage: stage.to_owned(),
        problem: e.to_string(),
    })?;
    if key.admin_url.trim().is_empty() || key.check_url.trim().is_empty() || key.admin_secret_arn.trim().is_empty() {
        return Err(RotationError::MalformedSecret {
            secret: secret.to_owned(),
            stage: stage.to_owned(),
            problem: "admin_url, check_url and admin_secret_arn must be set".to_owned(),
        });
    }
    Ok(key)
}

/// The upstream key name for a rotation token.
pub fn key_name(token: &str) -> String {
    format!("rotation-{token}")
}

#[derive(Deserialize)]
struct Created {
    id: String,
    key: String,
}

#[derive(Deserialize)]
struct Listed {
    keys: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    id: String,
    name: String,
    key: String,
}

/// The admin API of one secret, authenticated with the admin token.
pub struct AdminApi<'a> {
    pub http: &'a reqwest::Client,
    pub secret: &'a str,
    pub base: &'a str,
    pub token: &'a str,
}

impl AdminApi<'_> {
    fn failed(&self, operation: &str, detail: impl std::fmt::Display) -> RotationError {
        RotationError::Upstream {
            secret: self.secret.to_owned(),
            operation: operation.to_owned(),
            detail: detail.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.trim_end_matches('/'))
    }

    /// The key created for `name`, if an earlier attempt made it: `(id, key)`.
    pub async fn find(&self, name: &str) -> Result<Option<(String, String)>, RotationError> {
        let mut url = reqwest::Url::parse(&self.url("/api-keys")).map_err(|e| self.failed("list keys", e))?;
        url.query_pairs_mut().append_pair("name", name);
        let response = send_with_retry(|| self.http.get(url.clone()).bearer_auth(self.token), ATTEMPTS, BACKOFF)
            .await
            .map_err(|e| self.failed("list keys", ops_shared::lambda::error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(self.failed("list keys", format!("answered HTTP {}", response.status())));
        }
        let listed: Listed =
            response.json().await.map_err(|_| self.failed("list keys", "answered an unexpected body"))?;
        Ok(listed.keys.into_iter().find(|k| k.name == name).map(|k| (k.id, k.key)))
    }

    pub async fn create(&self, name: &str) -> Result<(String, String), RotationError> {
        let url = self.url("/api-keys");
        let body = serde_json::json!({ "name": name });
        let response = send_with_retry(|| self.http.post(&url).json(&body).bearer_auth(self.token), ATTEMPTS, BACKOFF)
            .await
            .map_err(|e| self.failed("create a key", ops_shared::lambda::error_chain(&e)))?;
        if response.status() != reqwest::StatusCode::CREATED {
            return Err(self.failed("create a key", format!("answered HTTP {}", response.status())));
        }
        let created: Created =
            response.json().await.map_err(|_| self.failed("create a key", "answered an unexpected body"))?;
        Ok((created.id, created.key))
    }

    /// Revokes key `id`; one already gone is fine.
    pub async fn delete(&self, id: &str) -> Result<(), RotationError> {
        let url = self.url(&format!("/api-keys/{id}"));
        let response = send_with_retry(|| self.http.delete(&url).bearer_auth(self.token), ATTEMPTS, BACKOFF)
            .await
            .map_err(|e| self.failed("revoke a key", ops_shared::lambda::error_chain(&e)))?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT | reqwest::StatusCode::OK | reqwest::StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.failed("revoke a key", format!("answered HTTP {status}"))),
        }
    }
}

/// testSecret: `GET check_url` with the key answers 200.
pub async fn key_works(http: &reqwest::Client, secret: &str, check_url: &str, key: &str) -> Result<(), RotationError> {
    let response = send_with_retry(|| http.get(check_url).bearer_auth(key), ATTEMPTS, BACKOFF).await.map_err(|e| {
        RotationError::TestFailed { secret: secret.to_owned(), problem: ops_shared::lambda::error_chain(&e) }
    })?;
    match response.status() {
        reqwest::StatusCode::OK => Ok(()),
        status => Err(RotationError::TestFailed {
            secret: secret.to_owned(),
            problem: format!("{check_url} answered HTTP {status}"),
        }),
    }
}
