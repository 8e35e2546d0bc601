//! `SecretCache`: the runbook's `getSecret()`. Reads Secrets Manager by name or ARN, always with
//! an explicit version stage, caches for a TTL, and can be refreshed after an auth failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::adapters::aws::{describe_sdk_error, sdk_error_code};
use crate::runtime::config::{ConfigError, Env};
use crate::runtime::scrub::Scrubber;

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id} does not exist or has no version staged {stage}")]
    NotFound { id: String, stage: String },
    #[error("secret {id} ({stage}) holds binary data, not a string")]
    NotString { id: String, stage: String },
    #[error("secret {id} ({stage}) is not the expected JSON: {problem}")]
    Malformed { id: String, stage: String, problem: String },
    #[error("access to secret {id} was denied: {detail}")]
    AccessDenied { id: String, detail: String },
    #[error("could not read secret {id}: {detail}")]
    Unavailable { id: String, detail: String },
}

/// One read secret version.
#[derive(Debug, Clone)]
pub struct SecretValue {
    pub version_id: Option<String>,
    pub value: String,
    /// The secret's ARN, which Secrets Manager returns whether it was asked by name or ARN.
    pub arn: Option<String>,
}

impl SecretValue {
    pub fn json<T: DeserializeOwned>(&self, id: &str, stage: &str) -> Result<T, SecretError> {
        serde_json::from_str(&self.value).map_err(|e| SecretError::Malformed {
            id: id.to_owned(),
            stage: stage.to_owned(),
            // serde's message may quote the input: keep only the position and the category.
            problem: format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()),
        })
    }
}

/// Development fallback: read secrets from environment variables instead of Secrets Manager.
/// Off unless `SECRETS_ENV_FALLBACK=true`; the variable for `cineview-gemini-api` is
/// `CINEVIEW_GEMINI_API`.
#[derive(Debug, Clone, Default)]
pub struct EnvFallback {
    env: Option<Env>,
}

impl EnvFallback {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let enabled = env.parse_or("SECRETS_ENV_FALLBACK", false)?;
        Ok(EnvFallback { env: enabled.then(|| env.clone()) })
    }

    pub(crate) fn variable_for(id: &str) -> String {
        // For an ARN, the name is the 7th field; drop the 6-character suffix Secrets Manager adds.
        let name = match id.strip_prefix("arn:") {
            Some(_) => {
                let name = id.splitn(7, ':').nth(6).unwrap_or(id);
                match name.rsplit_once('-') {
                    Some((base, suffix)) if suffix.len() == 6 => base,
                    _ => name,
                }
            }
            None => id,
        };
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    }

    fn lookup(&self, id: &str) -> Option<String> {
        self.env.as_ref()?.optional(&Self::variable_for(id))
    }
}

struct Entry {
    value: SecretValue,
    fetched: Instant,
}

/// Where the cache reads the time: the system's monotonic clock, or one a test moves.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

pub struct SecretCache {
    client: Client,
    ttl: Duration,
    clock: Box<dyn Clock>,
    entries: Mutex<HashMap<(String, String), Entry>>,
    scrubber: Scrubber,
    fallback: EnvFallback,
}

impl SecretCache {
    pub fn new(client: Client, scrubber: Scrubber) -> Self {
        SecretCache {
            client,
            ttl: DEFAULT_TTL,
            clock: Box::new(SystemClock),
            entries: Mutex::new(HashMap::new()),
            scrubber,
            fallback: EnvFallback::default(),
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn with_fallback(mut self, fallback: EnvFallback) -> Self {
        self.fallback = fallback;
        self
    }

    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// The AWSCURRENT value of `id` (name or ARN).
    pub async fn get(&self, id: &str) -> Result<SecretValue, SecretError> {
        self.get_stage(id, AWSCURRENT).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, id: &str) -> Result<T, SecretError> {
        self.get(id).await?.json(id, AWSCURRENT)
    }

    /// The value staged `stage`, from the cache while it is younger than the TTL.
    pub async fn get_stage(&self, id: &str, stage: &str) -> Result<SecretValue, SecretError> {
        if let Some(value) = self.fallback.lookup(id) {
            self.scrubber.register(&value);
            return Ok(SecretValue { version_id: None, value, arn: None });
        }
        let key = (id.to_owned(), stage.to_owned());
        let mut entries = self.entries.lock().await;
        if let Some(entry) = entries.get(&key)
            && self.clock.now().saturating_duration_since(entry.fetched) < self.ttl
        {
            return Ok(entry.value.clone());
        }
        let value = read_stage(&self.client, id, stage).await?;
        self.scrubber.register(&value.value);
        entries.insert(key, Entry { value: value.clone(), fetched: self.clock.now() });
        Ok(value)
    }

    /// Forgets every cached stage of `id`, so the next read goes to Secrets Manager.
    pub async fn invalidate(&self, id: &str) {
        self.entries.lock().await.retain(|(cached, _), _| cached != id);
    }

    /// Reads the current value fresh, bypassing and replacing the cache.
    pub async fn refresh(&self, id: &str) -> Result<SecretValue, SecretError> {
        self.invalidate(id).await;
        self.get(id).await
    }

    /// [`SecretCache::refresh`], unless the cached current value was read less than `min_age`
    /// ago: then that value. For refreshes anyone can cause (a forged signature), so that they
    /// cost at most one read per `min_age`.
    pub async fn refresh_unless_younger_than(&self, id: &str, min_age: Duration) -> Result<SecretValue, SecretError> {
        let key = (id.to_owned(), AWSCURRENT.to_owned());
        if let Some(entry) = self.entries.lock().await.get(&key)
            && self.clock.now().saturating_duration_since(entry.fetched) < min_age
        {
            return Ok(entry.value.clone());
        }
        self.refresh(id).await
    }

    /// Runs `call` with the current value; if it fails with an auth failure (the credential was
    /// rotated since it was cached), refreshes the secret and tries once more.
    pub async fn with_refresh_on_auth_failure<T, E, F, Fut>(
        &self,
        id: &str,
        is_auth_failure: impl Fn(&E) -> bool,
        call: F,
    ) -> Result<T, E>
    where
        E: From<SecretError>,
        F: Fn(SecretValue) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let value = self.get(id).await?;
        match call(value).await {
            Err(err) if is_auth_failure(&err) => {
                tracing::info!(secret = id, "credential refused; re-reading the secret once");
                let fresh = self.refresh(id).await?;
                call(fresh).await
            }
            other => other,
        }
    }
}

/// One uncached read of `id` at `stage`, the only place this crate calls GetSecretValue.
pub async fn read_stage(client: &Client, id: &str, stage: &str) -> Result<SecretValue, SecretError> {
    let output = client.get_secret_value().secret_id(id).version_stage(stage).send().await.map_err(|err| {
        let detail = describe_sdk_error(&err);
        match sdk_error_code(&err) {
            Some("ResourceNotFoundException") => SecretError::NotFound { id: id.to_owned(), stage: stage.to_owned() },
            Some("AccessDeniedException") | Some("UnrecognizedClientException") => {
                SecretError::AccessDenied { id: id.to_owned(), detail }
            }
            _ => SecretError::Unavailable { id: id.to_owned(), detail },
        }
    })?;
    let value =
        output.secret_string.ok_or_else(|| SecretError::NotString { id: id.to_owned(), stage: stage.to_owned() })?;
    Ok(SecretValue { version_id: output.version_id, value, arn: output.arn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_variable_names() {
        assert_eq!(EnvFallback::variable_for("cineview-gemini-api"), "CINEVIEW_GEMINI_API");
        assert_eq!(
            EnvFallback::variable_for(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:cineview-ai-engine-api-AbCdEf"
            ),
            "CINEVIEW_AI_ENGINE_API"
        );
    }

    #[test]
    fn fallback_is_off_unless_configured() {
        let env = Env::from_pairs([("CINEVIEW_GEMINI_API", "dev-key")]);
        assert!(EnvFallback::from_env(&env).expect("valid").lookup("cineview-gemini-api").is_none());
        let env = Env::from_pairs([("CINEVIEW_GEMINI_API", "dev-key"), ("SECRETS_ENV_FALLBACK", "true")]);
        assert_eq!(
            EnvFallback::from_env(&env).expect("valid").lookup("cineview-gemini-api").as_deref(),
            Some("dev-key")
        );
        let env = Env::from_pairs([("SECRETS_ENV_FALLBACK", "maybe")]);
        assert_eq!(EnvFallback::from_env(&env).expect_err("malformed").var(), Some("SECRETS_ENV_FALLBACK"));
    }
}
