//! Google's API Keys API v2 for Gemini keys: the OAuth2 service-account flow (a JWT signed
//! with the account's RSA key, exchanged for a bearer access token), keys created with a
//! caller-chosen `keyId` (so a retry finds them), long-running operations polled with a bound.
//! Gemini accepts only authorization keys, bound to a service account (`serviceAccountEmail`
//! on the `Key`), restricted here to the Generative Language API.

pub(crate) mod names;
pub(crate) mod oauth;
pub(crate) mod operation;

use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use names::is_key_name;
pub use names::{is_standard_key, key_id};
pub use oauth::{ServiceAccount, access_token};
pub use operation::{Operation, Status, refusal, wait};

use super::error::KeyError;
use super::provider::{Admin, Call, CreateError, Found, KeyProvider, Upstream};
use super::secret::{KeySecret, base_url};

pub const DEFAULT_API_URL: &str = "https://apikeys.googleapis.com";
/// testSecret asks the model the app calls to count a prompt's tokens (`POST
/// {check_url}/{check_model}:countTokens`, "Gemini API reference, models.countTokens"): the
/// Generative Language service itself, at no cost. A model listing is not enough: keys that list
/// models have been refused by GenerativeService with 401 `ACCESS_TOKEN_TYPE_UNSUPPORTED`
/// (google-gemini/gemini-cli #28538).
pub(crate) const DEFAULT_CHECK_URL: &str = "https://generativelanguage.googleapis.com/v1beta/models";
pub(crate) const DEFAULT_CHECK_MODEL: &str = "gemini-2.5-flash";
/// The only API a rotated Gemini key may call.
pub const GEMINI_SERVICE: &str = "generativelanguage.googleapis.com";
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
