//! The alert message every function publishes, version 1 of its contract: a JSON body with
//! `version` (1), `source` (the function), `severity` (`info`, `warning`, `critical`), `status`
//! (`firing`, `resolved`), `title`, `summary`, `dedup_key` (one condition across repeats),
//! `occurred_at` (RFC 3339, UTC, whole seconds), `details` (an object) and `links` (`title`,
//! `url`); the SNS subject is `[SEVERITY] title` (or `[RESOLVED] title`) in at most 99 ASCII
//! characters, and the message carries `severity` and `source` attributes, which the
//! subscriptions filter on. alert-forwarder reads every message in this shape. Bodies are kept
//! under the SNS size limit; the SNS publisher itself is in `adapters::sns`.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// SNS refuses messages over 256 KiB (body, subject and attributes together).
pub const SNS_MAX_BYTES: usize = 256 * 1024;
/// What the JSON body may use, leaving room for the subject and the message attributes.
pub const MAX_BODY_BYTES: usize = SNS_MAX_BYTES - 4 * 1024;
/// SNS subjects: ASCII, at most 100 characters; we keep one in reserve.
pub(crate) const MAX_SUBJECT_CHARS: usize = 99;

/// The state table partition of alert-forwarder's records, one per dedup key.
pub const ALERT_RECORDS: &str = "alert-forwarder#alert";

/// Dedup-key prefixes of the reports (the daily status, the weekly digest, the notices of ended
/// silences): read by everyone, never a condition that fires and resolves.
pub const REPORT_KEYS: &[&str] =
    &["health-checker:daily-status", "health-checker:weekly-digest", "alert-forwarder:silence"];
/// Dedup-key prefix of the disaster-recovery notices (`opsctl dr`), and of the write freeze,
/// the one among them that fires and resolves.
pub const DR_NOTICES: &str = "opsctl:dr";
pub const DR_FREEZE: &str = "opsctl:dr-freeze:";

/// Whether `dedup_key` is news rather than a condition: a report, or a disaster-recovery
/// notice other than the write freeze.
pub fn is_notice(dedup_key: &str) -> bool {
    REPORT_KEYS.iter().any(|prefix| dedup_key.starts_with(prefix))
        || (dedup_key.starts_with(DR_NOTICES) && !dedup_key.starts_with(DR_FREEZE))
}

/// What alert-forwarder recorded of an alert key: its last status and severity, when ops were
/// last told, and whether a firing parent mutes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertRecord {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub last_sent: i64,
    /// The highest severity ops were sent since the alert began firing: where its resolve goes
    /// (a critical alert that eased to warning before resolving paged, so its resolve pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_severity: Option<Severity>,
    pub muted: bool,
    pub muted_children: usize,
    /// Set while an invocation publishes this alert; cleared once SNS has accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Sending>,
    /// The firing alert a firing parent muted: sent when the parent resolves, if it still fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Alert>,
}

/// A publish under way: the delivery publishing, the deadline of its invocation (epoch
/// milliseconds), and the record as it was before.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sending {
    pub delivery: String,
    pub until_ms: i64,
    pub before: Box<AlertRecord>,
}

impl AlertRecord {
    /// The record as it stands at `now_ms`. A publish still unconfirmed after its invocation's
    /// deadline never reached SNS (Lambda stopped that invocation): the record is what it was
    /// before it, so the alert is sent again rather than taken for a repeat.
    pub fn settled(&self, now_ms: i64) -> AlertRecord {
        match &self.sending {
            Some(sending) if now_ms > sending.until_ms => sending.before.settled(now_ms),
            _ => self.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub version: u32,
    pub source: String,
    pub severity: Severity,
    pub status: Status,
    pub title: String,
    pub summary: String,
    pub dedup_key: String,
    pub occurred_at: String,
    #[serde(default)]
    pub details: Map<String, Value>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Alert {
    /// Starts a firing alert; `dedup_key` identifies the condition across repeats.
    pub fn new(source: &str, severity: Severity, dedup_key: impl Into<String>, title: impl Into<String>) -> Self {
        Alert {
            version: 1,
            source: source.to_owned(),
            severity,
            status: Status::Firing,
            title: title.into(),
            summary: String::new(),
            dedup_key: dedup_key.into(),
            occurred_at: rfc3339(Utc::now()),
            details: Map::new(),
            links: Vec::new(),
        }
    }

    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    pub fn resolved(mut self) -> Self {
        self.status = Status::Resolved;
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn link(mut self, title: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.push(Link { title: title.into(), url: url.into() });
        self
    }

    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = rfc3339(at);
        self
    }

    /// `[CRITICAL] title` (or `[RESOLVED] ...`): ASCII, at most 99 characters, severity first.
    pub fn subject(&self) -> String {
        let prefix = match self.status {
            Status::Resolved => "[RESOLVED]".to_owned(),
            Status::Firing => format!("[{}]", self.severity.as_str().to_ascii_uppercase()),
        };
        ascii_subject(&format!("{prefix} {}", self.title))
    }

    /// The JSON body, truncated to fit SNS: details first, then the summary; the body says so.
    pub fn to_body(&self) -> String {
        let body = serde_json::to_string(self).unwrap_or_default();
        if body.len() <= MAX_BODY_BYTES {
            return body;
        }
        let mut trimmed = self.clone();
        let original = body.len();
        let details_text = Value::Object(std::mem::take(&mut trimmed.details)).to_string();
        trimmed.details.insert("truncated".into(), Value::Bool(true));
        trimmed.details.insert("original_bytes".into(), Value::from(original));
        let skeleton = serde_json::to_string(&trimmed).unwrap_or_default().len();
        let room = MAX_BODY_BYTES.saturating_sub(skeleton + 64);
        if room > 0 {
            // The excerpt is escaped again inside a JSON string; halve the room for safety.
            trimmed.details.insert("excerpt".into(), Value::String(cut_at_char(&details_text, room / 2).to_owned()));
        }
        if serde_json::to_string(&trimmed).map(|b| b.len()).unwrap_or(usize::MAX) > MAX_BODY_BYTES {
            trimmed.details.remove("excerpt");
            let summary_room = MAX_BODY_BYTES.saturating_sub(skeleton - trimmed.summary.len() + 256) / 2;
            trimmed.summary = format!("{} [summary truncated]", cut_at_char(&trimmed.summary, summary_room));
        }
        if !trimmed.summary.ends_with("[summary truncated]") {
            trimmed.summary.push_str(&format!(" [details truncated from {original} bytes to fit SNS]"));
        }
        serde_json::to_string(&trimmed).unwrap_or_default()
    }
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A string cut to at most `max` bytes on a character boundary.
pub fn cut_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Printable ASCII only (others become `?`, line breaks a space), at most 99 characters.
pub(crate) fn ascii_subject(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            '\n' | '\r' | '\t' => ' ',
            _ => '?',
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() <= MAX_SUBJECT_CHARS {
        cleaned.to_owned()
    } else {
        format!("{}...", &cleaned[..MAX_SUBJECT_CHARS - 3])
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not publish alert {dedup_key:?} to {topic}: {detail}")]
pub struct PublishError {
    pub topic: String,
    pub dedup_key: String,
    pub detail: String,
}

/// Where alerts go. Implemented by SNS in production and by a recorder in tests.
pub trait AlertSink: Send + Sync {
    /// Publishes `alert` as a ready-made message: the alert forwarder sends plain text.
    fn publish_message(
        &self,
        subject: &str,
        body: &str,
        alert: &Alert,
    ) -> impl std::future::Future<Output = Result<(), PublishError>> + Send;

    /// Publishes `alert` as its JSON body (what every function sends the forwarder).
    fn publish(&self, alert: &Alert) -> impl std::future::Future<Output = Result<(), PublishError>> + Send {
        async move { self.publish_message(&alert.subject(), &alert.to_body(), alert).await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_with_the_contract_fields() {
        let alert = Alert::new("scheduled-backup", Severity::Critical, "backup:db", "Backup failed")
            .summary("pg_dump exited 1")
            .detail("database", "postgres")
            .link("runbook", "https://example.com");
        let body: Value = serde_json::from_str(&alert.to_body()).expect("json");
        for field in [
            "version",
            "source",
            "severity",
            "status",
            "title",
            "summary",
            "dedup_key",
            "occurred_at",
            "details",
            "links",
        ] {
            assert!(body.get(field).is_some(), "missing {field}");
        }
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["status"], "firing");
        let back: Alert = serde_json::from_value(body).expect("parses back");
        assert_eq!(back, alert);
    }

    #[test]
    fn oversized_details_are_truncated_and_said_so() {
        let alert = Alert::new("x", Severity::Warning, "k", "t").detail("log", "é".repeat(400_000));
        let body = alert.to_body();
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        let parsed: Alert = serde_json::from_str(&body).expect("still valid JSON");
        assert_eq!(parsed.details["truncated"], Value::Bool(true));
        assert!(parsed.summary.contains("truncated"));
    }

    #[test]
    fn oversized_summary_is_truncated_too() {
        let alert = Alert::new("x", Severity::Warning, "k", "t").summary("\"".repeat(300_000));
        let body = alert.to_body();
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        assert!(serde_json::from_str::<Alert>(&body).is_ok());
    }

    #[test]
    fn subjects_are_ascii_and_short() {
        let alert = Alert::new(
            "x",
            Severity::Critical,
            "k",
            format!("Datenbank \u{2013} nicht erreichbar\n{}", "z".repeat(200)),
        );
        let subject = alert.subject();
        assert!(subject.is_ascii());
        assert!(subject.len() <= MAX_SUBJECT_CHARS);
        assert!(subject.starts_with("[CRITICAL] Datenbank ? nicht"));
        assert!(Alert::new("x", Severity::Warning, "k", "ok").resolved().subject().starts_with("[RESOLVED]"));
    }
}
