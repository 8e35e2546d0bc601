//! API-key rotation, the same for every service: a key is created upstream under a name
//! derived from the rotation token (so a retried step finds it instead of making another), the
//! key two generations old is revoked in setSecret (so the previous key works until the next
//! rotation), and testSecret calls the service with the new key.

use ops_shared::secrets::SecretValue;
use serde_json::{Map, Value};

use crate::error::RotationError;
use crate::providers::{self, Admin, CreateError, Found, KeyProvider};
use crate::strategy::KeyService;

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
    pub fn parse(
        service: KeyService,
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
        if service == KeyService::Supabase && api_key.starts_with("eyJ") {
            return Err(malformed("holds a legacy JWT key (service_role), which cannot be rotated alone: migrate to a secret API key (sb_secret_...) and store that".to_owned()));
        }
        let key_id = take("key_id")?;
        let required = match service {
            KeyService::AiEngine => providers::ai_engine::FIELDS,
            KeyService::Supabase => providers::supabase::FIELDS,
            KeyService::Google => {
                if !providers::google::is_key_name(&key_id) {
                    return Err(malformed(
                        "key_id is not the key's resource name, projects/<project>/locations/global/keys/<id>"
                            .to_owned(),
                    ));
                }
                providers::google::FIELDS
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

/// The key named `name`: the one an earlier attempt made, else a new one. A create whose
/// outcome is unknown is never repeated blindly: the name is looked up first. Should two live
/// keys carry the name, the first is kept and the others revoked before this returns.
pub async fn obtain(provider: &dyn KeyProvider, admin: &Admin, name: &str) -> Result<(String, String), RotationError> {
    let mut attempt = 1;
    loop {
        let found = provider.find(admin, name).await?;
        if let Some((keep, extra)) = found.split_first() {
            revoke_all(provider, admin, extra).await?;
            return Ok((keep.id.clone(), provider.reveal(admin, keep).await?));
        }
        match provider.create(admin, name).await {
            Ok((id, key)) => {
                let others: Vec<Found> = provider.find(admin, name).await?.into_iter().filter(|f| f.id != id).collect();
                revoke_all(provider, admin, &others).await?;
                return Ok((id, key));
            }
            Err(CreateError::Refused(err)) => return Err(err),
            Err(CreateError::Unknown(err)) if attempt >= providers::ATTEMPTS => return Err(err),
            Err(CreateError::Unknown(err)) => {
                tracing::warn!(error = %err, attempt, "a key create ended without a clear answer; looking it up before trying again");
                tokio::time::sleep(providers::BACKOFF * 2_u32.saturating_pow(attempt - 1)).await;
                attempt += 1;
            }
        }
    }
}

async fn revoke_all(provider: &dyn KeyProvider, admin: &Admin, keys: &[Found]) -> Result<(), RotationError> {
    for duplicate in keys {
        tracing::warn!(key_id = %duplicate.id, "revoking a second key made under the same rotation name");
        provider.revoke(admin, &duplicate.id).await?;
    }
    Ok(())
}
