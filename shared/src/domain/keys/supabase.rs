//! Supabase's Management API for secret API keys (bearer management token):
//! `GET /v1/projects/{ref}/api-keys` lists every kind of key (legacy `anon` and `service_role`,
//! publishable and secret ones) without their plaintext (masked), `GET
//! .../api-keys/{id}?reveal=true` shows one, `POST .../api-keys?reveal=true` creates one (no
//! idempotency key), `DELETE .../api-keys/{id}` revokes one.

use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::error::KeyError;
use super::provider::{Admin, Call, CreateError, Found, KeyProvider, Upstream};
use super::secret::{KeySecret, base_url};

pub const DEFAULT_API_URL: &str = "https://api.supabase.com";
/// testSecret's endpoint: Supabase Auth's health check. The project's gateway serves it only
/// to a valid key in the `apikey` header (Auth's OpenAPI, `APIKeyAuth`), and Auth runs whether
/// or not the Data API is on; `/rest/v1/` fails once the Data API is turned off.
pub(crate) const CHECK_PATH: &str = "/auth/v1/health";

pub struct Supabase<'a> {
    upstream: Upstream<'a>,
    keys_url: String,
    check_url: String,
}

/// One entry of the key list; every field but `name` may be absent or null.
#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Revealed {
    id: Option<String>,
    api_key: Option<String>,
}

impl<'a> Supabase<'a> {
    pub fn new(upstream: Upstream<'a>, secret: &'a KeySecret) -> Option<Supabase<'a>> {
        let project_ref = secret.field("project_ref")?;
        let api_url = base_url(secret, "api_url", DEFAULT_API_URL);
        let project_url = secret
            .field("project_url")
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{project_ref}.supabase.co"));
        Some(Supabase {
            upstream,
            keys_url: format!("{api_url}/v1/projects/{project_ref}/api-keys"),
            check_url: format!("{project_url}{CHECK_PATH}"),
        })
    }

    async fn revealed(&self, response: reqwest::Response, operation: &str) -> Result<(String, String), KeyError> {
        let key: Revealed =
            response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
        match (key.id, key.api_key) {
            (Some(id), Some(api_key)) if is_secret_key(&api_key) => Ok((id, api_key)),
            (Some(_), Some(_)) => Err(self.upstream.failed(
                operation,
                "answered a masked or malformed key instead of its value (does the management token \
                 have the right to reveal secret keys?)",
            )),
            _ => Err(self.upstream.failed(operation, "answered without the secret key's id and value")),
        }
    }
}

/// A secret key's value as revealed: `sb_secret_` and at least 20 characters of URL-safe
/// base64. An unrevealed one is its prefix followed by `·` (as Supabase's CLI recorded it) or
/// the prefix alone, and is never taken for a key.
fn is_secret_key(value: &str) -> bool {
    value
        .strip_prefix("sb_secret_")
        .is_some_and(|rest| rest.len() >= 20 && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

impl KeyProvider for Supabase<'_> {
    fn admin_field(&self) -> &'static str {
        "token_secret_arn"
    }

    fn find<'a>(&'a self, admin: &'a Admin, name: &'a str) -> Call<'a, Vec<Found>> {
        Box::pin(async move {
            let operation = "list keys";
            let response = self
                .upstream
                .send(operation, || self.upstream.http.get(&self.keys_url).bearer_auth(&admin.bearer))
                .await?;
            if response.status() != StatusCode::OK {
                return Err(self.upstream.failed(operation, format!("answered HTTP {}", response.status())));
            }
            let keys: Vec<Listed> =
                response.json().await.map_err(|_| self.upstream.failed(operation, "answered an unexpected body"))?;
            Ok(keys
                .into_iter()
                .filter(|k| k.name.as_deref() == Some(name) && k.kind.as_deref() == Some("secret"))
                .filter_map(|k| Some(Found { id: k.id?, key: None }))
                .collect())
        })
    }

    fn reveal<'a>(&'a self, admin: &'a Admin, found: &'a Found) -> Call<'a, String> {
        Box::pin(async move {
            let operation = "reveal a key";
            let url = format!("{}/{}", self.keys_url, found.id);
            let request = || self.upstream.http.get(&url).query(&[("reveal", "true")]).bearer_auth(&admin.bearer);
            let response = self.upstream.send(operation, request).await?;
            if response.status() != StatusCode::OK {
                return Err(self.upstream.failed(operation, format!("answered HTTP {}", response.status())));
            }
            Ok(self.revealed(response, operation).await?.1)
        })
    }

    fn create<'a>(&'a self, admin: &'a Admin, name: &'a str) -> BoxFuture<'a, Result<(String, String), CreateError>> {
        Box::pin(async move {
            let body = json!({"type": "secret", "name": name, "secret_jwt_template": {"role": "service_role"}});
            let request = || {
                self.upstream
                    .http
                    .post(&self.keys_url)
                    .query(&[("reveal", "true")])
                    .json(&body)
                    .bearer_auth(&admin.bearer)
            };
            let response = self.upstream.send_create(request, &[StatusCode::CREATED, StatusCode::OK]).await?;
            self.revealed(response, "create a key").await.map_err(CreateError::Unknown)
        })
    }

    fn revoke<'a>(&'a self, admin: &'a Admin, id: &'a str) -> Call<'a, ()> {
        Box::pin(async move { self.upstream.delete_key(&self.keys_url, id, &admin.bearer).await })
    }

    fn check<'a>(&'a self, key: &'a str) -> Call<'a, ()> {
        Box::pin(async move { self.upstream.check(&self.check_url, "apikey", key).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_revealed_secret_key_is_a_key() {
        assert!(is_secret_key("sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"));
        assert!(!is_secret_key("sb_secret_N7UND··························"), "masked, as listed");
        assert!(!is_secret_key("sb_secret_N7UND"), "the prefix alone");
        assert!(!is_secret_key("sb_secret_"));
        assert!(!is_secret_key("sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"));
    }
}
