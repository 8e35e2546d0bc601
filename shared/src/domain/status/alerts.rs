//! The alerts line: what reached ops in the past 24 hours (the runbook's daily check "no
//! critical alerts in past 24 hours") and what is still firing. Ops hear of an alert two ways:
//! through alert-forwarder, which records each alert in the state table, and straight from the
//! CloudWatch alarms that watch the forwarder itself (their action is the ops topic), which
//! only CloudWatch's alarm history remembers.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::verdict::Verdict;
use crate::domain::alert::{AlertRecord, Severity, Status as AlertStatus, is_notice};

/// The stack's alarms whose action is the ops topic itself (template.yaml), by name after the
/// stack's prefix: they page when the forwarder cannot, so it never records them.
pub const DIRECT_TO_OPS: &[&str] =
    &["alert-forwarder-dead-letters", "alert-forwarder-errors", "alert-forwarder-throttles"];

/// The runbook's window: "no critical alerts in past 24 hours".
pub(crate) const WINDOW_HOURS: i64 = 24;

/// An alarm that went to ALARM, and when (CloudWatch's alarm history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub name: String,
    pub at: DateTime<Utc>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertsLine {
    /// Alerts ops were told of in the past 24 hours, by severity.
    pub(crate) last_24h: BTreeMap<Severity, usize>,
    /// The critical alerts of the past 24 hours, firing or since resolved, and when each was
    /// last sent.
    pub critical_24h: Vec<(String, DateTime<Utc>)>,
    /// Alert keys still firing, with their severity.
    pub firing: Vec<(String, Severity)>,
    pub verdict: Verdict,
}

pub(super) fn alerts_line(items: &[(String, String, serde_json::Value)], now: DateTime<Utc>) -> AlertsLine {
    let mut last_24h = BTreeMap::new();
    let mut critical_24h = Vec::new();
    let mut firing = Vec::new();
    for (_, key, data) in items {
        // Reports and notices are news, never still firing.
        if is_notice(key) {
            continue;
        }
        let Ok(record) = serde_json::from_value::<AlertRecord>(data.clone()) else { continue };
        // As the forwarder reads it: a publish SNS never accepted did not happen.
        let record = record.settled(now.timestamp_millis());
        let severity = record.severity.unwrap_or(Severity::Warning);
        let sent = DateTime::from_timestamp(record.last_sent, 0);
        if let Some(sent) = sent.filter(|at| now - *at < Duration::hours(WINDOW_HOURS)) {
            *last_24h.entry(severity).or_insert(0) += 1;
            if severity == Severity::Critical {
                critical_24h.push((key.clone(), sent));
            }
        }
        if record.status == Some(AlertStatus::Firing) {
            firing.push((key.clone(), severity));
        }
    }
    firing.sort();
    critical_24h.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let worst_firing = match firing.iter().map(|(_, s)| *s).max() {
        Some(Severity::Critical) => Verdict::Critical,
        Some(Severity::Warning) => Verdict::Warning,
        Some(Severity::Info) | None => Verdict::Ok,
    };
    // A critical alert of the past 24 hours fails the daily check even if it has resolved.
    let verdict = if critical_24h.is_empty() { worst_firing } else { Verdict::Critical };
    AlertsLine { last_24h, critical_24h, firing, verdict }
}

/// The names of the alarms that page ops without the forwarder, for the stack `prefix`.
pub(super) fn direct_alarm_names(prefix: &str) -> Vec<String> {
    DIRECT_TO_OPS.iter().map(|name| format!("{prefix}-{name}")).collect()
}
