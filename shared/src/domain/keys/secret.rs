//! An API-key secret: its shape, checked the same way by the rotation and by `opsctl
//! check-env`, and the fields each service needs besides the key.

use serde_json::{Map, Value};

use super::error::KeyError;
use super::google::names::is_key_name;
use crate::adapters::secrets::SecretValue;
use crate::domain::rotation::KeyService;
use crate::runtime::redacted::Redacted;

/// The fields a secret of `service` holds besides `api_key` and `key_id`: where its admin API
/// is and which secret holds the admin credential.
fn required_fields(service: KeyService) -> &'static [&'static str] {
    match service {
        KeyService::AiEngine => &["admin_url", "check_url", "admin_secret_arn"],
        KeyService::Supabase => &["project_ref", "token_secret_arn"],
        KeyService::Google => &["project", "service_account_secret_arn"],
    }
}

/// An API-key secret: `api_key`, `key_id`, and the service's own fields, kept as they are.
#[derive(Clone, PartialEq, Debug)]
pub struct KeySecret {
    pub api_key: Redacted<String>,
    pub key_id: String,
    pub fields: Map<String, Value>,
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
        if service == KeyService::Google && !is_key_name(&key_id) {
            return Err(malformed(
                "key_id is not the key's resource name, projects/<project>/locations/global/keys/<id>".to_owned(),
            ));
        }
        let parsed = KeySecret { api_key: Redacted::new(api_key), key_id, fields };
        let missing: Vec<&str> =
            required_fields(service).iter().copied().filter(|name| parsed.field(name).is_none()).collect();
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
        KeySecret { api_key: Redacted::new(api_key), key_id, fields: self.fields.clone() }
    }

    pub fn to_json(&self) -> Value {
        let mut map = self.fields.clone();
        map.insert("api_key".into(), Value::String(self.api_key.expose().clone()));
        map.insert("key_id".into(), Value::String(self.key_id.clone()));
        Value::Object(map)
    }
}

/// A base URL from the secret's field `field`, else `default`, without a trailing slash.
pub(crate) fn base_url(secret: &KeySecret, field: &str, default: &str) -> String {
    secret.field(field).unwrap_or(default).trim_end_matches('/').to_owned()
}
