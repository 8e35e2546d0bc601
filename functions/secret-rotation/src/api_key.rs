//! API-key strategies. A key is created upstream under a name derived from the rotation token
//! (so a retried step finds it instead of making another), the key two generations old is
//! revoked in setSecret (so the previous key works until the next rotation), and testSecret
//! calls the provider with the new key. Each provider supplies only those four calls.

use std::time::Duration;

use ops_shared::http::send_with_retry;
use ops_shared::secrets::SecretValue;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::RotationError;
use crate::google;
use crate::strategy::Strategy;

/// Every provider call: at most this many attempts, waiting `BACKOFF`, then twice that.
pub(crate) const ATTEMPTS: u32 = 3;
pub(crate) const BACKOFF: Duration = Duration::from_millis(200);

/// An API-key secret: `api_key`, `key_id`, and the provider's own fields, kept as they are.
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
    /// A secret of API-key `strategy`, with everything checked that can be known without asking
    /// the provider (`opsctl check-env` runs the same checks). Problems name fields, never values.
    pub fn parse(
        strategy: Strategy,
        secret: &str,
        stage: &str,
        value: &SecretValue,
    ) -> Result<KeySecret, RotationError> {
        let malformed = |problem: String| RotationError::MalformedSecret {
            secret: secret.to_owned(),
            stage: stage.to_owned(),
            problem,
        };
        let mut fields: Map<String, Value> = value.json(secret, stage).map_err(|e| malformed(e.to_string()))?;
        let mut take = |name: &str| match fields.remove(name) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
            _ => Err(malformed(format!("{name} is missing or empty"))),
        };
        let api_key = take("api_key")?;
        if strategy == Strategy::SupabaseApiKey && api_key.starts_with("eyJ") {
            return Err(malformed("holds a legacy JWT key (service_role), which cannot be rotated alone: migrate to a secret API key (sb_secret_...) and store that".to_owned()));
        }
        let key_id = take("key_id")?;
        if strategy == Strategy::GoogleApiKey && !google::is_key_name(&key_id) {
            return Err(malformed(
                "key_id is not the key's resource name, projects/<project>/locations/global/keys/<id>".to_owned(),
            ));
        }
        let parsed = KeySecret { api_key, key_id, fields };
        let required = match strategy {
            Strategy::SupabaseApiKey => SUPABASE_FIELDS,
            Strategy::GoogleApiKey => GOOGLE_FIELDS,
            _ => AI_ENGINE_FIELDS,
        };
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

/// Which API and where; built from the secret's own fields.
pub enum Provider<'a> {
    /// The AI engine's admin API: `admin_url`, `check_url`.
    AiEngine { admin_url: &'a str, check_url: &'a str },
    /// Supabase's Management API: `project_ref`, `api_url` (default `https://api.supabase.com`),
    /// `rest_url` (default `https://<ref>.supabase.co`).
    Supabase { api_url: String, project_ref: &'a str, rest_url: String },
    /// Google's API Keys API v2: `project`, `api_url` (default `https://apikeys.googleapis.com`),
    /// `check_url` (default Gemini's model list), `token_url` (default the key file's).
    Google { api_url: String, project: &'a str, check_url: String, token_url: Option<&'a str> },
}

pub const AI_ENGINE_FIELDS: &[&str] = &["admin_url", "check_url", "admin_secret_arn"];
pub const SUPABASE_FIELDS: &[&str] = &["project_ref", "token_secret_arn"];
pub const GOOGLE_FIELDS: &[&str] = &["project", "service_account_secret_arn"];

fn base_url(secret: &KeySecret, field: &str, default: &str) -> String {
    secret.field(field).unwrap_or(default).trim_end_matches('/').to_owned()
}

impl<'a> Provider<'a> {
    pub fn ai_engine(secret: &'a KeySecret) -> Option<Provider<'a>> {
        Some(Provider::AiEngine { admin_url: secret.field("admin_url")?, check_url: secret.field("check_url")? })
    }

    pub fn supabase(secret: &'a KeySecret) -> Option<Provider<'a>> {
        let project_ref = secret.field("project_ref")?;
        Some(Provider::Supabase {
            api_url: base_url(secret, "api_url", "https://api.supabase.com"),
            project_ref,
            rest_url: secret
                .field("rest_url")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("https://{project_ref}.supabase.co")),
        })
    }

    pub fn google(secret: &'a KeySecret) -> Option<Provider<'a>> {
        Some(Provider::Google {
            api_url: base_url(secret, "api_url", google::DEFAULT_API_URL),
            project: secret.field("project")?,
            check_url: base_url(secret, "check_url", google::DEFAULT_CHECK_URL),
            token_url: secret.field("token_url"),
        })
    }

    /// The secret field naming the secret that holds the admin token (for Google, the
    /// service-account key file the token is issued for).
    pub fn token_field(&self) -> &'static str {
        match self {
            Provider::AiEngine { .. } => "admin_secret_arn",
            Provider::Supabase { .. } => "token_secret_arn",
            Provider::Google { .. } => "service_account_secret_arn",
        }
    }

    fn keys_url(&self) -> String {
        match self {
            Provider::AiEngine { admin_url, .. } => format!("{}/api-keys", admin_url.trim_end_matches('/')),
            Provider::Supabase { api_url, project_ref, .. } => format!("{api_url}/v1/projects/{project_ref}/api-keys"),
            Provider::Google { api_url, project, .. } => {
                format!("{api_url}/v2/projects/{project}/locations/global/keys")
            }
        }
    }
}

/// The provider's key API, authenticated with its admin token.
pub struct KeyApi<'a> {
    pub http: &'a reqwest::Client,
    pub secret: &'a str,
    pub provider: Provider<'a>,
    pub token: String,
    /// How long a long-running operation (Google) may take before the step gives up.
    pub operation_timeout: Duration,
}

#[derive(Deserialize)]
struct UpstreamKey {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(alias = "api_key")]
    key: Option<String>,
}

#[derive(Deserialize)]
struct AiEngineList {
    keys: Vec<UpstreamKey>,
}

impl KeyApi<'_> {
    fn failed(&self, operation: &str, detail: impl std::fmt::Display) -> RotationError {
        RotationError::Upstream {
            secret: self.secret.to_owned(),
            operation: operation.to_owned(),
            detail: detail.to_string(),
        }
    }

    async fn send(
        &self,
        operation: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RotationError> {
        send_with_retry(build, ATTEMPTS, BACKOFF)
            .await
            .map_err(|e| self.failed(operation, ops_shared::lambda::error_chain(&e)))
    }

    /// The key an earlier attempt created under `name`: `(id, key)`.
    pub async fn find(&self, name: &str) -> Result<Option<(String, String)>, RotationError> {
        let mut url = reqwest::Url::parse(&self.provider.keys_url()).map_err(|e| self.failed("list keys", e))?;
        match &self.provider {
            Provider::Google { api_url, .. } => return self.google_find(api_url, name).await,
            Provider::AiEngine { .. } => url.query_pairs_mut().append_pair("name", name),
            Provider::Supabase { .. } => url.query_pairs_mut().append_pair("reveal", "true"),
        };
        let response = self.send("list keys", || self.http.get(url.clone()).bearer_auth(&self.token)).await?;
        if response.status() != StatusCode::OK {
            return Err(self.failed("list keys", format!("answered HTTP {}", response.status())));
        }
        let keys = if matches!(self.provider, Provider::AiEngine { .. }) {
            response.json::<AiEngineList>().await.map(|l| l.keys)
        } else {
            response.json::<Vec<UpstreamKey>>().await
        }
        .map_err(|_| self.failed("list keys", "answered an unexpected body"))?;
        Ok(keys.into_iter().find(|k| k.name.as_deref() == Some(name)).and_then(|k| Some((k.id, k.key?))))
    }

    pub async fn create(&self, name: &str) -> Result<(String, String), RotationError> {
        let (url, body) = match &self.provider {
            Provider::Google { api_url, .. } => return self.google_create(api_url, name).await,
            Provider::AiEngine { .. } => (self.provider.keys_url(), json!({ "name": name })),
            Provider::Supabase { .. } => (
                format!("{}?reveal=true", self.provider.keys_url()),
                json!({"type": "secret", "name": name, "secret_jwt_template": {"role": "service_role"}}),
            ),
        };
        let response = self.send("create a key", || self.http.post(&url).json(&body).bearer_auth(&self.token)).await?;
        if !matches!(response.status(), StatusCode::CREATED | StatusCode::OK) {
            return Err(self.failed("create a key", format!("answered HTTP {}", response.status())));
        }
        let created: UpstreamKey =
            response.json().await.map_err(|_| self.failed("create a key", "answered an unexpected body"))?;
        let key = created.key.ok_or_else(|| self.failed("create a key", "answered without the key"))?;
        Ok((created.id, key))
    }

    /// Revokes key `id`; one already gone is fine.
    pub async fn delete(&self, id: &str) -> Result<(), RotationError> {
        if let Provider::Google { api_url, .. } = &self.provider {
            return self.google_delete(api_url, id).await;
        }
        let url = format!("{}/{id}", self.provider.keys_url());
        let response = self.send("revoke a key", || self.http.delete(&url).bearer_auth(&self.token)).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.failed("revoke a key", format!("answered HTTP {status}"))),
        }
    }
}

/// Google addresses a key by the id given at creation, so a retry looks it up directly.
impl KeyApi<'_> {
    async fn google_find(&self, api_url: &str, name: &str) -> Result<Option<(String, String)>, RotationError> {
        let url = format!("{}/{}", self.provider.keys_url(), google::key_id(name));
        let response = self.send("look up a key", || self.http.get(&url).bearer_auth(&self.token)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => {
                let key: Map<String, Value> =
                    response.json().await.map_err(|_| self.failed("look up a key", "answered an unexpected body"))?;
                let key_name = self.key_resource(&key, "look up a key")?;
                Ok(Some((key_name.to_owned(), self.google_key_string(api_url, key_name).await?)))
            }
            _ => Err(self.failed("look up a key", google::refusal(response).await)),
        }
    }

    /// Creates the key restricted to the Generative Language API and waits for the operation.
    async fn google_create(&self, api_url: &str, name: &str) -> Result<(String, String), RotationError> {
        let operation = "create a key";
        let mut url = reqwest::Url::parse(&self.provider.keys_url()).map_err(|e| self.failed(operation, e))?;
        url.query_pairs_mut().append_pair("keyId", &google::key_id(name));
        let body = json!({"displayName": name, "restrictions": {"apiTargets": [{"service": google::GEMINI_SERVICE}]}});
        let response =
            self.send(operation, || self.http.post(url.clone()).json(&body).bearer_auth(&self.token)).await?;
        match response.status() {
            StatusCode::OK => {}
            // An earlier attempt created it after all.
            StatusCode::CONFLICT => {
                return self
                    .google_find(api_url, name)
                    .await?
                    .ok_or_else(|| self.failed(operation, "answered 409 for a key it then could not find"));
            }
            _ => return Err(self.failed(operation, google::refusal(response).await)),
        }
        let pending: google::Operation =
            response.json().await.map_err(|_| self.failed(operation, "answered an unexpected body"))?;
        let key = google::wait(self.http, api_url, &self.token, pending, self.operation_timeout)
            .await
            .map_err(|e| self.failed(operation, e))?;
        let key_name = self.key_resource(&key, operation)?;
        Ok((key_name.to_owned(), self.google_key_string(api_url, key_name).await?))
    }

    fn key_resource<'k>(&self, key: &'k Map<String, Value>, operation: &str) -> Result<&'k str, RotationError> {
        key.get("name")
            .and_then(Value::as_str)
            .filter(|name| google::is_key_name(name))
            .ok_or_else(|| self.failed(operation, "answered without a key resource name"))
    }

    async fn google_key_string(&self, api_url: &str, key_name: &str) -> Result<String, RotationError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct KeyString {
            key_string: String,
        }
        let url = format!("{api_url}/v2/{key_name}/keyString");
        let response = self.send("read the key string", || self.http.get(&url).bearer_auth(&self.token)).await?;
        if response.status() != StatusCode::OK {
            return Err(self.failed("read the key string", google::refusal(response).await));
        }
        let key: KeyString =
            response.json().await.map_err(|_| self.failed("read the key string", "answered an unexpected body"))?;
        Ok(key.key_string)
    }

    async fn google_delete(&self, api_url: &str, id: &str) -> Result<(), RotationError> {
        let operation = "revoke a key";
        if !google::is_key_name(id) {
            return Err(
                self.failed(operation, format!("{id} is not a key name (projects/<p>/locations/global/keys/<id>)"))
            );
        }
        let url = format!("{api_url}/v2/{id}");
        let response = self.send(operation, || self.http.delete(&url).bearer_auth(&self.token)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            StatusCode::OK => {
                let pending: google::Operation =
                    response.json().await.map_err(|_| self.failed(operation, "answered an unexpected body"))?;
                google::wait(self.http, api_url, &self.token, pending, self.operation_timeout)
                    .await
                    .map_err(|e| self.failed(operation, e))?;
                Ok(())
            }
            _ => Err(self.failed(operation, google::refusal(response).await)),
        }
    }
}

/// testSecret: the provider accepts the new key (AI engine: `GET check_url` with a bearer
/// token; Supabase: `GET <rest_url>/rest/v1/` with the `apikey` header; Google: Gemini's model
/// list with the key in `x-goog-api-key`, which keeps it out of URLs and so out of error texts).
pub async fn key_works(
    http: &reqwest::Client,
    secret: &str,
    provider: &Provider<'_>,
    key: &str,
) -> Result<(), RotationError> {
    let failed = |problem: String| RotationError::TestFailed { secret: secret.to_owned(), problem };
    let (url, header, value) = match provider {
        Provider::AiEngine { check_url, .. } => ((*check_url).to_owned(), "authorization", format!("Bearer {key}")),
        Provider::Supabase { rest_url, .. } => (format!("{rest_url}/rest/v1/"), "apikey", key.to_owned()),
        Provider::Google { check_url, .. } => (check_url.clone(), "x-goog-api-key", key.to_owned()),
    };
    let response = send_with_retry(|| http.get(&url).header(header, &value), ATTEMPTS, BACKOFF)
        .await
        .map_err(|e| failed(ops_shared::lambda::error_chain(&e)))?;
    match response.status() {
        StatusCode::OK => Ok(()),
        status => Err(failed(format!("{url} answered HTTP {status}"))),
    }
}
