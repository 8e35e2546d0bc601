//! Sentry webhooks on the Function URL: HMAC-SHA256 of the raw body with the integration's
//! client secret, compared in constant time; stale timestamps refused; issue and metric alerts
//! made into our alert, with a delivery key taken from the payload: Sentry sends a fresh
//! `Request-ID` on every attempt, so that header cannot tell a redelivery from a new alert.

use hmac::{Hmac, Mac};
use ops_shared::alert::{Alert, Severity};
use serde_json::Value;
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: missing or wrong signature, stale or missing timestamp.
    Unauthorized(String),
    /// 400: not JSON, or not a Sentry payload.
    Malformed(String),
    /// 413
    TooLarge(usize),
}

impl Refusal {
    pub fn status(&self) -> i64 {
        match self {
            Refusal::Unauthorized(_) => 401,
            Refusal::Malformed(_) => 400,
            Refusal::TooLarge(_) => 413,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Unauthorized(why) | Refusal::Malformed(why) => why.clone(),
            Refusal::TooLarge(bytes) => format!("body of {bytes} bytes is too large"),
        }
    }
}

/// True if `signature_hex` is the HMAC-SHA256 of `body` under `secret` (constant time).
pub fn signature_valid(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// The signature Sentry sends for `body` (for stand-ins and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// The timestamp header (Unix seconds, fractions allowed) must be within `max_skew_secs` of
/// `now`, before or after. `NaN` and infinities parse as numbers but are no moment: refused.
pub fn timestamp_fresh(header: Option<&str>, now: i64, max_skew_secs: i64) -> Result<(), Refusal> {
    let raw = header.ok_or_else(|| Refusal::Unauthorized("Sentry-Hook-Timestamp is missing".into()))?;
    let at = raw
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|at| at.is_finite())
        .ok_or_else(|| Refusal::Unauthorized(format!("Sentry-Hook-Timestamp {raw:?} is not a time")))?;
    let skew = now as f64 - at;
    if skew > max_skew_secs as f64 {
        return Err(Refusal::Unauthorized(format!("Sentry-Hook-Timestamp {raw} is stale")));
    }
    if -skew > max_skew_secs as f64 {
        return Err(Refusal::Unauthorized(format!("Sentry-Hook-Timestamp {raw} is in the future")));
    }
    Ok(())
}

/// The resources Sentry's integration platform sends ("Webhooks" and a page per resource), each
/// with the member of `data` its body carries. An activity alert carries `data.issue` as well.
const RESOURCES: [(&str, &str); 7] = [
    ("installation", "installation"),
    ("event_alert", "event"),
    ("issue", "issue"),
    ("metric_alert", "metric_alert"),
    ("error", "error"),
    ("comment", "comment"),
    ("activity_alert", "activity"),
];

/// The resource `data` is the body of, by the member it carries.
fn body_resource(data: &Value) -> Result<&'static str, Refusal> {
    let mut found: Vec<&str> =
        RESOURCES.iter().filter(|(_, member)| data.get(member).is_some()).map(|(resource, _)| *resource).collect();
    if found.contains(&"activity_alert") {
        found.retain(|resource| *resource != "issue");
    }
    match found.as_slice() {
        [resource] => Ok(resource),
        [] => Err(Refusal::Malformed("the body is no Sentry resource: data has none of their members".into())),
        several => Err(Refusal::Malformed(format!("the body mixes the members of {}", several.join(", ")))),
    }
}

/// An alert Sentry sent, and the key that is the same for every delivery of it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub alert: Alert,
    pub key: String,
}

/// The delivery key: the resource, the action, the alert's own ids and its state and time, so
/// that a redelivery matches and a change of state (critical, then resolved) does not. Without
/// those ids, the body's own hash.
fn delivery_key(resource: &str, action: &str, parts: &[Option<String>], body: &[u8]) -> String {
    use sha2::Digest;
    let mut hash = Sha256::new();
    if parts.iter().any(Option::is_none) {
        hash.update(body);
    } else {
        for part in [Some(resource.to_owned()), Some(action.to_owned())].iter().chain(parts).flatten() {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
    }
    format!("sentry:{}", &hex::encode(hash.finalize())[..40])
}

/// A JSON value as text: ids arrive as strings, statuses as numbers.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Issue alerts (`event_alert`) and metric alerts (`metric_alert`); the other resources Sentry
/// documents are acknowledged but not forwarded (`Ok(None)`). A resource Sentry does not
/// document, or a body that is another resource's than `Sentry-Hook-Resource` names, is refused.
pub fn to_alert(resource: &str, body: &[u8]) -> Result<Option<Delivery>, Refusal> {
    if !RESOURCES.iter().any(|(known, _)| *known == resource) {
        return Err(Refusal::Malformed(format!("Sentry-Hook-Resource {resource:?} is no Sentry webhook resource")));
    }
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| Refusal::Malformed(format!("body is not JSON: {e}")))?;
    let action = payload.get("action").and_then(Value::as_str).unwrap_or_default();
    let data = payload.get("data").ok_or_else(|| Refusal::Malformed("no data object".into()))?;
    let carried = body_resource(data)?;
    if carried != resource {
        return Err(Refusal::Malformed(format!("Sentry-Hook-Resource says {resource} but the body is {carried}")));
    }
    match resource {
        "event_alert" => issue_alert(data, action, body).map(Some),
        "metric_alert" => metric_alert(data, action, body).map(Some),
        _ => Ok(None),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// An issue alert rule fired for an event.
fn issue_alert(data: &Value, action: &str, body: &[u8]) -> Result<Delivery, Refusal> {
    let event = data.get("event").ok_or_else(|| Refusal::Malformed("event_alert without data.event".into()))?;
    let rule = text(data.get("triggered_rule")).unwrap_or_else(|| "an issue alert rule".into());
    let title = text(event.get("title")).unwrap_or_else(|| "Sentry issue".into());
    let level = text(event.get("level")).unwrap_or_else(|| "error".into());
    let severity = match level.as_str() {
        "fatal" => Severity::Critical,
        "error" | "warning" => Severity::Warning,
        _ => Severity::Info,
    };
    let issue = scalar(event.get("issue_id"));
    let key = delivery_key("event_alert", action, &[Some(rule.clone()), scalar(event.get("event_id"))], body);
    let issue = issue.unwrap_or_else(|| key.clone());
    let mut alert = Alert::new("sentry", severity, format!("sentry:issue:{issue}"), format!("Sentry: {title}"))
        .summary(format!("Sentry rule \"{rule}\" fired for {level} event \"{title}\"."))
        .detail("rule", rule)
        .detail("level", level);
    if let Some(culprit) = text(event.get("culprit")) {
        alert = alert.detail("culprit", culprit);
    }
    if let Some(url) = text(event.get("web_url")).or_else(|| text(event.get("url"))) {
        alert = alert.link("event in Sentry", url);
    }
    Ok(Delivery { alert, key })
}

/// A metric alert's incident changed state: critical, warning or resolved.
fn metric_alert(data: &Value, action: &str, body: &[u8]) -> Result<Delivery, Refusal> {
    let metric = data.get("metric_alert");
    let rule = metric
        .and_then(|m| m.get("alert_rule"))
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .or_else(|| data.get("description_title").and_then(Value::as_str))
        .unwrap_or("metric alert")
        .to_owned();
    let incident = metric.and_then(|m| m.get("id"));
    let id = scalar(incident).unwrap_or_else(|| rule.clone());
    let field = |name: &str| metric.and_then(|m| m.get(name));
    let since = scalar(field("date_closed")).or_else(|| scalar(field("date_detected")));
    let key = delivery_key("metric_alert", action, &[scalar(incident), scalar(field("status")), since], body);
    let (severity, resolved) = match action {
        "critical" | "triggered" => (Severity::Critical, false),
        "warning" => (Severity::Warning, false),
        "resolved" => (Severity::Critical, true),
        other => return Err(Refusal::Malformed(format!("unknown metric alert action {other:?}"))),
    };
    let description = text(data.get("description_text")).unwrap_or_else(|| format!("{rule} is {action}"));
    let mut alert = Alert::new("sentry", severity, format!("sentry:metric:{id}"), format!("Sentry: {rule}"))
        .summary(description)
        .detail("rule", rule)
        .detail("action", action.to_owned());
    if let Some(url) = text(data.get("web_url")) {
        alert = alert.link("alert in Sentry", url);
    }
    Ok(Delivery { alert: if resolved { alert.resolved() } else { alert }, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let body = br#"{"action":"triggered"}"#;
        let signature = sign(b"client-secret", body).expect("any key length");
        assert!(signature_valid(b"client-secret", body, &signature));
        assert!(!signature_valid(b"other-secret", body, &signature));
        assert!(!signature_valid(b"client-secret", b"{}", &signature));
        assert!(!signature_valid(b"client-secret", body, "not hex"));
    }

    #[test]
    fn timestamps_must_be_fresh() {
        assert!(timestamp_fresh(Some("1000"), 1100, 300).is_ok());
        assert!(timestamp_fresh(Some("1000.5"), 900, 300).is_ok());
        assert!(timestamp_fresh(Some("1000"), 2000, 300).is_err());
        assert!(timestamp_fresh(None, 0, 300).is_err());
        for hostile in ["NaN", "inf", "-inf", "1e999", "3000", ""] {
            assert!(timestamp_fresh(Some(hostile), 1000, 300).is_err(), "{hostile}");
        }
    }
}
