//! Sentry's REST API: where it is and who may read it (`config`), the numbers the status and
//! digest read about the app (`stats`), and what every answer shares: page links and error
//! bodies.

mod config;
mod stats;

pub use config::{DEFAULT_API_URL, SentryProject, WrittenFields};
pub use stats::{APP_TRANSACTIONS, READ_SECRET_TEMPLATE, SentryAccess, SentryReadError, SentryReader};

use serde_json::Value;

/// The cursor of the `rel="next"` link when it says `results="true"`.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let params: Vec<(String, String)> = part
            .split(';')
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
            .collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        (param("rel") == Some("next") && param("results") == Some("true"))
            .then(|| param("cursor").map(str::to_owned))
            .flatten()
    })
}

/// A short, value-free account of Sentry's error body: `{"detail": ...}`, field errors
/// (`{"timeWindow": ["..."]}`) or a list of messages.
pub fn error_detail(body: &str) -> String {
    fn texts(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(texts).collect(),
            Value::Object(map) => {
                map.iter().flat_map(|(field, v)| texts(v).into_iter().map(move |t| format!("{field}: {t}"))).collect()
            }
            other => vec![other.to_string()],
        }
    }
    let detail = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) if map.len() == 1 && map.contains_key("detail") => texts(&map["detail"]).join("; "),
        Ok(value) => texts(&value).join("; "),
        Err(_) => body.trim().chars().take(200).collect(),
    };
    if detail.is_empty() { "no detail".to_owned() } else { detail.chars().take(500).collect() }
}
