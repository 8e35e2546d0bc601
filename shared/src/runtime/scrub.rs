//! Removes secret values from anything that leaves the process (Sentry events, alert details).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use serde_json::Value;

pub(crate) const FILTERED: &str = "[Filtered]";

/// Field names whose values are credentials wherever they appear.
const CREDENTIAL_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "key",
    "authorization",
    "auth",
    "private_key",
    "client_secret",
    "access_token",
    "refresh_token",
    "cookie",
    "set-cookie",
    "x-api-key",
    "sentry-hook-signature",
    "dsn",
    "connection_string",
    "database_url",
];

/// Values shorter than this are not registered from JSON leaves: ports, engine names and the
/// like would otherwise be blanked everywhere.
const MIN_LEAF_LEN: usize = 12;

/// Every secret value handed out by this process, shared by the secret cache and the telemetry
/// hooks. Cloning shares the same set.
#[derive(Clone, Default, Debug)]
pub struct Scrubber {
    values: Arc<RwLock<BTreeSet<String>>>,
}

pub(crate) fn is_credential_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_FIELDS.iter().any(|f| lower == *f || lower.ends_with(&format!("_{f}")))
}

impl Scrubber {
    /// Remembers a secret's value: the whole string, and for JSON secrets the credential fields
    /// and every long string leaf.
    pub fn register(&self, secret: &str) {
        let mut found = Vec::new();
        if !secret.is_empty() {
            found.push(secret.to_owned());
        }
        if let Ok(json) = serde_json::from_str::<Value>(secret) {
            collect_leaves(&json, None, &mut found);
        }
        if found.is_empty() {
            return;
        }
        let mut values = match self.values.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        values.extend(found);
    }

    /// Replaces every registered value inside `text`.
    pub fn scrub_str(&self, text: &str) -> String {
        let values = match self.values.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Longest first, so a value containing another is replaced whole.
        let mut ordered: Vec<&String> = values.iter().collect();
        ordered.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for value in ordered {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), FILTERED);
            }
        }
        out
    }

    /// Scrubs a JSON document: credential-named fields are blanked and registered values are
    /// replaced in every string.
    pub(crate) fn scrub_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                let scrubbed = self.scrub_str(s);
                if scrubbed != *s {
                    *s = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if is_credential_field(key) && !matches!(v, Value::Null | Value::Bool(_)) && !v.is_object() {
                        *v = Value::String(FILTERED.to_owned());
                    } else {
                        self.scrub_json(v);
                    }
                }
            }
            _ => {}
        }
    }
}

fn collect_leaves(value: &Value, key: Option<&str>, found: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() && (s.len() >= MIN_LEAF_LEN || key.is_some_and(is_credential_field)) => {
            found.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_leaves(v, key, found)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_leaves(v, Some(k), found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_and_credential_fields_are_removed() {
        let scrubber = Scrubber::default();
        scrubber.register(r#"{"username":"app","password":"pw","host":"db.internal.example.com","port":5432}"#);
        scrubber.register("sk-live-1234567890");
        let mut doc = serde_json::json!({
            "message": "login with sk-live-1234567890 failed for db.internal.example.com",
            "extra": {"api_key": "other", "user": "app", "nested": ["pw is short but a credential field value"]},
        });
        scrubber.scrub_json(&mut doc);
        let text = doc.to_string();
        assert!(!text.contains("sk-live-1234567890"));
        assert!(!text.contains("db.internal.example.com"));
        assert!(!text.contains("other"));
        assert!(text.contains("\"user\":\"app\""), "non-secret short values stay: {text}");
    }
}
