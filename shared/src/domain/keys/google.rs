//! Google's API Keys API v2 for Gemini keys: the OAuth2 service-account flow (a JWT signed
//! with the account's RSA key, exchanged for a bearer access token), keys created with a
//! caller-chosen `keyId` (so a retry finds them), long-running operations polled with a bound.
//! Gemini accepts only authorization keys, bound to a service account (`serviceAccountEmail`
//! on the `Key`), restricted here to the Generative Language API.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::adapters::http::{Repeat, send_with_retry};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ATTEMPTS, Admin, BACKOFF, Call, CreateError, Found, KeyError, KeyProvider, KeySecret, Upstream, base_url};

pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_API_URL: &str = "https://apikeys.googleapis.com";
/// testSecret asks the model the app calls to count a prompt's tokens (`POST
/// {check_url}/{check_model}:countTokens`, "Gemini API reference, models.countTokens"): the
/// Generative Language service itself, at no cost. A model listing is not enough: keys that list
/// models have been refused by GenerativeService with 401 `ACCESS_TOKEN_TYPE_UNSUPPORTED`
/// (google-gemini/gemini-cli #28538).
pub const DEFAULT_CHECK_URL: &str = "https://generativelanguage.googleapis.com/v1beta/models";
pub const DEFAULT_CHECK_MODEL: &str = "gemini-2.5-flash";
/// The only API a rotated Gemini key may call.
pub const GEMINI_SERVICE: &str = "generativelanguage.googleapis.com";
/// Managing API keys needs the cloud-platform scope.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// The fields of a service-account key file that the flow needs. No `Debug`: it holds the
/// private key.
pub struct ServiceAccount {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccount {
    /// Parses the key file JSON stored in `secret`; problems name the field, never its value.
    pub fn parse(secret: &str, json: &str) -> Result<ServiceAccount, KeyError> {
        let malformed = |problem: &str| KeyError::Malformed {
            secret: secret.to_owned(),
            stage: crate::adapters::secrets::AWSCURRENT.to_owned(),
            problem: format!("not a Google service-account key file: {problem}"),
        };
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(json) else {
            return Err(malformed("not a JSON object"));
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|v| !v.trim().is_empty());
        if text("type") != Some("service_account") {
            return Err(malformed("type is not \"service_account\""));
        }
        Ok(ServiceAccount {
            client_email: text("client_email").ok_or_else(|| malformed("client_email is missing"))?.to_owned(),
            private_key: text("private_key").ok_or_else(|| malformed("private_key is missing"))?.to_owned(),
            private_key_id: text("private_key_id").map(str::to_owned),
            token_uri: text("token_uri").map(str::to_owned),
        })
    }

    /// The signed JWT assertion for `audience` (the token endpoint), valid for an hour.
    fn assertion(&self, secret: &str, audience: &str, now: u64) -> Result<String, KeyError> {
        let malformed = |problem: &str| KeyError::Malformed {
            secret: secret.to_owned(),
            stage: crate::adapters::secrets::AWSCURRENT.to_owned(),
            problem: format!("private_key {problem}"),
        };
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({"iss": self.client_email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600});
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let key = PrivateKeyDer::from_pem_slice(self.private_key.as_bytes())
            .map_err(|_| malformed("is not a PEM private key"))?;
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
            .ok()
            .and_then(|key| key.choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256]))
            .ok_or_else(|| malformed("is not an RSA key that can sign RS256"))?;
        let signature = signer.sign(signing_input.as_bytes()).map_err(|_| malformed("could not sign the assertion"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Exchanges the service account's signed assertion for an access token. The token endpoint is
/// `token_url` when the secret sets one, else the key file's `token_uri`, else Google's.
pub async fn access_token(
    http: &reqwest::Client,
    account_secret: &str,
    account: &ServiceAccount,
    token_url: Option<&str>,
) -> Result<String, KeyError> {
    let url = token_url.or(account.token_uri.as_deref()).unwrap_or(DEFAULT_TOKEN_URL);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let body = format!("grant_type={GRANT_TYPE}&assertion={}", account.assertion(account_secret, url, now)?);
    let failed = |detail: String| KeyError::Upstream {
        secret: account_secret.to_owned(),
        operation: "issue an access token for the service account".to_owned(),
        detail,
    };
    let response = send_with_retry(
        || http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body.clone()),
        ATTEMPTS,
        BACKOFF,
        Repeat::Idempotent,
    )
    .await
    .map_err(|e| failed(crate::runtime::lambda::error_chain(&e.without_url())))?;
    let status = response.status();
    if status != StatusCode::OK {
        let refusal: OAuthError = response.json().await.unwrap_or_default();
        return Err(failed(format!("{url} answered HTTP {status} {} {}", refusal.error, refusal.error_description)));
    }
    let token: TokenResponse =
        response.json().await.map_err(|_| failed(format!("{url} answered an unexpected body")))?;
    Ok(token.access_token)
}

/// A long-running operation of a Google API (`google.longrunning.Operation`).
#[derive(Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub error: Option<Status>,
    #[serde(default)]
    pub response: Option<Map<String, Value>>,
}

/// `google.rpc.Status`, as operations and error bodies carry it.
#[derive(Deserialize, Default)]
pub struct Status {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message: String = self.message.chars().take(300).collect();
        write!(f, "{} {} {message}", self.code, self.status)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Status,
}

/// What a refusing Google API said: its status and message (never a key), or the HTTP status.
pub async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => format!("answered HTTP {status}: {}", body.error),
        Err(_) => format!("answered HTTP {status}"),
    }
}

/// Polls `operation` (`GET {api_url}/v2/{name}`) until it is done or `timeout` has passed,
/// waiting a little longer between polls each time. Returns the operation's `response`.
pub async fn wait(
    http: &reqwest::Client,
    api_url: &str,
    token: &str,
    mut operation: Operation,
    timeout: Duration,
) -> Result<Map<String, Value>, String> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    while !operation.done {
        if started.elapsed() + pause > timeout {
            return Err(format!("operation {} did not finish within {} s", operation.name, timeout.as_secs_f32()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        let url = format!("{api_url}/v2/{}", operation.name);
        let response = send_with_retry(|| http.get(&url).bearer_auth(token), ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| crate::runtime::lambda::error_chain(&e))?;
        if response.status() != StatusCode::OK {
            return Err(format!("polling operation {}: {}", operation.name, refusal(response).await));
        }
        operation = response.json().await.map_err(|_| "polling answered an unexpected body".to_owned())?;
    }
    if let Some(error) = operation.error {
        return Err(format!("operation {} failed: {error}", operation.name));
    }
    Ok(operation.response.unwrap_or_default())
}

/// A key resource name this strategy may delete: `projects/<p>/locations/global/keys/<id>`, so
/// that a tampered secret cannot point the DELETE elsewhere.
pub fn is_key_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let safe =
        |part: &&str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "locations"
        && parts[3] == "global"
        && parts[4] == "keys"
        && parts.iter().all(safe)
}

/// Google key ids: lowercase letters, digits and hyphens, starting with a letter, at most 63.
pub fn key_id(name: &str) -> String {
    let id: String = name.replace('_', "-").chars().take(63).collect();
    id.trim_end_matches('-').to_owned()
}

pub const FIELDS: &[&str] = &["project", "service_account_secret_arn"];

/// A Google API key whose `api_key` is a standard key (`AIza...`), which Gemini refuses since
/// September 2026; keys bound to a service account start with `AQ.`.
pub fn is_standard_key(key: &str) -> bool {
    key.starts_with("AIza")
}

pub struct Google<'a> {
    upstream: Upstream<'a>,
    api_url: String,
    keys_url: String,
    /// `{check_url}/{model}:countTokens`.
    count_tokens_url: String,
    token_url: Option<&'a str>,
    /// The service account new keys are bound to; the managing account's own when unset.
    bind_to: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyString {
    key_string: String,
}

impl<'a> Google<'a> {
    pub fn new(upstream: Upstream<'a>, secret: &'a KeySecret) -> Option<Google<'a>> {
        let api_url = base_url(secret, "api_url", DEFAULT_API_URL);
        let project = secret.field("project")?;
        Some(Google {
            upstream,
            keys_url: format!("{api_url}/v2/projects/{project}/locations/global/keys"),
            api_url,
            count_tokens_url: format!(
                "{}/{}:countTokens",
                base_url(secret, "check_url", DEFAULT_CHECK_URL),
                secret.field("check_model").unwrap_or(DEFAULT_CHECK_MODEL).trim_start_matches("models/")
            ),
            token_url: secret.field("token_url"),
            bind_to: secret.field("service_account_email"),
        })
    }

    fn key_resource<'k>(&self, key: &'k Map<String, Value>, operation: &str) -> Result<&'k str, KeyError> {
        key.get("name")
            .and_then(Value::as_str)
            .filter(|name| is_key_name(name))
            .ok_or_else(|| self.upstream.failed(operation, "answered without a key resource name"))
    }

    async fn key_string(&self, admin: &Admin, key_name: &str) -> Result<String, KeyError> {
        let operation = "read the key string";
        let url = format!("{}/v2/{key_name}/keyString", self.api_url);
        let response =
            self.upstream.send(operation, || self.upstream.http.get(&url).bearer_auth(&admin.bearer)).await?;
        if response.status() != StatusCode::OK {
            return Err(self.upstream.failed(operation, refusal(response).await));
        }
        let key: KeyString =
            response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
        Ok(key.key_string)
    }

    async fn wait(
        &self,
        admin: &Admin,
        operation: &str,
        response: reqwest::Response,
    ) -> Result<Map<String, Value>, KeyError> {
        let pending: Operation =
            response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
        wait(self.upstream.http, &self.api_url, &admin.bearer, pending, self.upstream.operation_timeout)
            .await
            .map_err(|e| self.upstream.failed(operation, e))
    }
}

/// What Google says of a key string: its resource name and, for a bound key, its service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    pub name: String,
    pub service_account: Option<String>,
    pub deleted: bool,
}

impl Google<'_> {
    /// `keys.lookupKey` then `keys.get`: which key `key_string` is, whether it is bound to a
    /// service account and whether it was deleted. The key string travels in the query, as the
    /// API wants; errors never carry the URL.
    pub async fn identify(&self, admin: &Admin, key_string: &str) -> Result<KeyIdentity, KeyError> {
        #[derive(Deserialize)]
        struct Lookup {
            #[serde(default)]
            name: String,
        }
        let operation = "look up the key string";
        let url = format!("{}/v2/keys:lookupKey", self.api_url);
        let request = || self.upstream.http.get(&url).query(&[("keyString", key_string)]).bearer_auth(&admin.bearer);
        let response = self.upstream.send(operation, request).await?;
        if response.status() != StatusCode::OK {
            return Err(self.upstream.failed(operation, refusal(response).await));
        }
        let found: Lookup =
            response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
        if !is_key_name(&found.name) {
            return Err(self.upstream.failed(operation, "knows no live key with this key string (purged?)"));
        }
        let operation = "read the key";
        let url = format!("{}/v2/{}", self.api_url, found.name);
        let response =
            self.upstream.send(operation, || self.upstream.http.get(&url).bearer_auth(&admin.bearer)).await?;
        let key: Map<String, Value> = match response.status() {
            StatusCode::OK => {
                response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?
            }
            StatusCode::NOT_FOUND => Map::new(),
            _ => return Err(self.upstream.failed(operation, refusal(response).await)),
        };
        let text = |field: &str| key.get(field).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(KeyIdentity {
            service_account: text("serviceAccountEmail"),
            deleted: key.is_empty() || text("deleteTime").is_some(),
            name: found.name,
        })
    }
}

impl KeyProvider for Google<'_> {
    fn admin_field(&self) -> &'static str {
        "service_account_secret_arn"
    }

    fn admin<'a>(&'a self, stored: &'a str, source: &'a str) -> Call<'a, Admin> {
        Box::pin(async move {
            let account = ServiceAccount::parse(source, stored)?;
            let bearer = access_token(self.upstream.http, source, &account, self.token_url).await?;
            Ok(Admin { bearer, account: Some(account.client_email) })
        })
    }

    /// Google addresses a key by the id given at creation, so a retry looks it up directly.
    fn find<'a>(&'a self, admin: &'a Admin, name: &'a str) -> Call<'a, Vec<Found>> {
        Box::pin(async move {
            let operation = "look up a key";
            let url = format!("{}/{}", self.keys_url, key_id(name));
            let response =
                self.upstream.send(operation, || self.upstream.http.get(&url).bearer_auth(&admin.bearer)).await?;
            match response.status() {
                StatusCode::NOT_FOUND => Ok(Vec::new()),
                StatusCode::OK => {
                    let key: Map<String, Value> = response
                        .json()
                        .await
                        .map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
                    // A key deleted within the last 30 days is still readable but no longer works.
                    if key.get("deleteTime").is_some_and(|t| !t.is_null()) {
                        return Err(self
                            .upstream
                            .failed(operation, format!("key {} was deleted; start a new rotation", key_id(name))));
                    }
                    Ok(vec![Found { id: self.key_resource(&key, operation)?.to_owned(), key: None }])
                }
                _ => Err(self.upstream.failed(operation, refusal(response).await)),
            }
        })
    }

    fn reveal<'a>(&'a self, admin: &'a Admin, found: &'a Found) -> Call<'a, String> {
        Box::pin(async move { self.key_string(admin, &found.id).await })
    }

    /// Creates the key bound to the service account, restricted to the Generative Language API,
    /// and waits for the operation.
    fn create<'a>(&'a self, admin: &'a Admin, name: &'a str) -> BoxFuture<'a, Result<(String, String), CreateError>> {
        Box::pin(async move {
            let operation = "create a key";
            let account = self.bind_to.or(admin.account.as_deref()).unwrap_or_default();
            let body = json!({"displayName": name, "serviceAccountEmail": account,
                "restrictions": {"apiTargets": [{"service": GEMINI_SERVICE}]}});
            let request = || {
                self.upstream
                    .http
                    .post(&self.keys_url)
                    .query(&[("keyId", key_id(name))])
                    .json(&body)
                    .bearer_auth(&admin.bearer)
            };
            let response = self.upstream.send_create(request, &[StatusCode::OK, StatusCode::CONFLICT]).await?;
            if response.status() == StatusCode::CONFLICT {
                // An earlier attempt created it after all: the caller finds it.
                return Err(CreateError::Unknown(self.upstream.failed(operation, "answered 409: the key id exists")));
            }
            if !response.status().is_success() {
                return Err(CreateError::Refused(self.upstream.failed(operation, refusal(response).await)));
            }
            // An operation that does not finish in time may still create the key.
            let key = self.wait(admin, operation, response).await.map_err(CreateError::Unknown)?;
            let key_name = self.key_resource(&key, operation).map_err(CreateError::Unknown)?;
            let key_string = self.key_string(admin, key_name).await.map_err(CreateError::Unknown)?;
            Ok((key_name.to_owned(), key_string))
        })
    }

    fn revoke<'a>(&'a self, admin: &'a Admin, id: &'a str) -> Call<'a, ()> {
        Box::pin(async move {
            let operation = "revoke a key";
            if !is_key_name(id) {
                return Err(self
                    .upstream
                    .failed(operation, format!("{id} is not a key name (projects/<p>/locations/global/keys/<id>)")));
            }
            let url = format!("{}/v2/{id}", self.api_url);
            let response =
                self.upstream.send(operation, || self.upstream.http.delete(&url).bearer_auth(&admin.bearer)).await?;
            match response.status() {
                StatusCode::NOT_FOUND => Ok(()),
                StatusCode::OK => self.wait(admin, operation, response).await.map(|_| ()),
                _ => Err(self.upstream.failed(operation, refusal(response).await)),
            }
        })
    }

    /// Gemini's countTokens with the key in `x-goog-api-key`, which keeps it out of URLs and so
    /// out of error texts.
    fn check<'a>(&'a self, key: &'a str) -> Call<'a, ()> {
        Box::pin(async move {
            let url = &self.count_tokens_url;
            let prompt = serde_json::json!({"contents": [{"parts": [{"text": "ping"}]}]});
            self.upstream
                .check_with(url, || self.upstream.http.post(url).header("x-goog-api-key", key).json(&prompt))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_checked_before_a_delete() {
        assert!(is_key_name("projects/123456/locations/global/keys/rotation-abc"));
        for bad in [
            "projects/123456/locations/global/keys",
            "projects/1/locations/global/keys/a/b",
            "projects/../locations/global/keys/a",
            "projects/1/locations/global/keys/a?x=1",
            "operations/abc",
        ] {
            assert!(!is_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn key_ids_follow_googles_rule() {
        let id = key_id(&crate::domain::keys::key_name(&"ab12".repeat(20)));
        assert!(id.len() <= 63 && id.starts_with("rotation-"), "{id}");
        assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn a_key_file_without_its_fields_is_refused_by_name() {
        let err = ServiceAccount::parse("sa", r#"{"type":"service_account","client_email":"a@b"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("private_key is missing"), "{err}");
        let err = ServiceAccount::parse("sa", r#"{"type":"authorized_user"}"#).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("service_account"));
    }
}
