//! The incident log: every warning or critical alert that fires becomes part of an incident,
//! grouped by its `dedup_key` or, while an inhibition parent's incident is open, by that parent;
//! opened at its first firing, closed when the alert that opened it resolves. An open incident is
//! a record of the state table; a closed one is written to the backup bucket under
//! `reports/incidents/YYYY/MM/<id>.json` (reports are kept 400 days), for the monthly review.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::adapters::objects::ObjectStore;
use crate::adapters::state::StateStore;
use crate::domain::alert::{Alert, Severity, Status, is_notice};
use crate::domain::status::read_json;

/// The state table's partition of open incidents (sort key: the incident's key).
pub const OPEN_INCIDENTS: &str = "incident#open";
/// Where closed incidents are written in the backup bucket.
pub const INCIDENT_PREFIX: &str = "reports/incidents/";
/// An open incident nobody closes (its alert never resolves) is forgotten after this long.
pub const OPEN_FOR_AT_MOST_SECS: i64 = 90 * 24 * 3600;
/// Timeline entries kept per incident; the counts go on beyond.
const MAX_ENTRIES: usize = 500;

/// The state record of an incident key: the open incident, and those closed but not yet written
/// to the bucket (a write failed, or the function has no bucket), which a new firing of the key
/// must not overwrite.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenIncident {
    #[serde(default)]
    pub incident: Option<Incident>,
    #[serde(default)]
    pub unwritten: Vec<Incident>,
}

/// What the forwarder did with an alert of the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    Sent,
    Muted,
    Silenced,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: i64,
    pub dedup_key: String,
    pub status: Status,
    pub severity: Severity,
    pub title: String,
    pub handling: Handling,
    /// The silence that held it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The alert key that opened it; its resolve closes it.
    pub key: String,
    pub title: String,
    pub severity: Severity,
    pub opened_at: i64,
    #[serde(default)]
    pub closed_at: Option<i64>,
    /// Every alert key that was part of it.
    pub alerts: BTreeSet<String>,
    /// Critical alerts sent (each paged).
    pub pages: u32,
    /// Alerts sent to ops, pages included.
    pub notifications: u32,
    pub silences: BTreeSet<String>,
    pub timeline: Vec<Entry>,
}

impl Incident {
    /// Opened by `alert`, firing at `now`.
    pub fn open(alert: &Alert, now: i64) -> Incident {
        let day = DateTime::from_timestamp(now, 0).map(|t| t.format("%Y%m%d").to_string()).unwrap_or_default();
        Incident {
            id: format!("inc-{day}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            key: alert.dedup_key.clone(),
            title: alert.title.clone(),
            severity: alert.severity,
            opened_at: now,
            closed_at: None,
            alerts: BTreeSet::new(),
            pages: 0,
            notifications: 0,
            silences: BTreeSet::new(),
            timeline: Vec::new(),
        }
    }

    /// Adds what happened to `alert` at `now`; closes the incident when its own key resolves.
    pub fn record(&mut self, alert: &Alert, handling: Handling, silence: Option<&str>, now: i64) {
        self.alerts.insert(alert.dedup_key.clone());
        self.severity = self.severity.max(alert.severity);
        if handling == Handling::Sent {
            self.notifications += 1;
            if alert.severity == Severity::Critical && alert.status == Status::Firing {
                self.pages += 1;
            }
        }
        if let Some(silence) = silence {
            self.silences.insert(silence.to_owned());
        }
        if self.timeline.len() < MAX_ENTRIES {
            self.timeline.push(Entry {
                at: now,
                dedup_key: alert.dedup_key.clone(),
                status: alert.status,
                severity: alert.severity,
                title: alert.title.clone(),
                handling,
                silence: silence.map(str::to_owned),
            });
        }
        if alert.status == Status::Resolved && alert.dedup_key == self.key {
            self.closed_at = Some(now);
        }
    }

    pub fn duration_secs(&self, now: i64) -> i64 {
        self.closed_at.unwrap_or(now) - self.opened_at
    }

    /// `reports/incidents/2026/12/inc-20261203-1a2b3c.json`.
    pub fn object_key(&self) -> String {
        let month = DateTime::from_timestamp(self.opened_at, 0).map(|t| t.format("%Y/%m").to_string());
        format!("{INCIDENT_PREFIX}{}/{}.json", month.unwrap_or_default(), self.id)
    }

    /// One line: id, severity, title, when, how long, pages.
    pub fn line(&self, now: i64) -> String {
        let state = if self.closed_at.is_some() { "closed" } else { "OPEN" };
        format!(
            "{}  {:<8} {:<6} {}  opened {}, {}, {} page(s), {} notification(s), {} alert key(s)",
            self.id,
            self.severity.as_str(),
            state,
            self.title,
            time(self.opened_at),
            duration(self.duration_secs(now)),
            self.pages,
            self.notifications,
            self.alerts.len()
        )
    }

    /// The timeline as a post-mortem wants it: what happened when, and what ops were told.
    pub fn render_timeline(&self, now: i64) -> String {
        let mut out = format!("# Incident {}: {}\n\n", self.id, self.title);
        out.push_str(&format!("- Severity: {}\n- Opened: {}\n", self.severity.as_str(), time(self.opened_at)));
        match self.closed_at {
            Some(closed) => {
                out.push_str(&format!("- Closed: {} (lasted {})\n", time(closed), duration(closed - self.opened_at)))
            }
            None => out.push_str(&format!("- Still open ({} so far)\n", duration(now - self.opened_at))),
        }
        out.push_str(&format!("- Pages sent: {}; notifications: {}\n", self.pages, self.notifications));
        let keys: Vec<&str> = self.alerts.iter().map(String::as_str).collect();
        out.push_str(&format!("- Alerts: {}\n", keys.join(", ")));
        if !self.silences.is_empty() {
            let ids: Vec<&str> = self.silences.iter().map(String::as_str).collect();
            out.push_str(&format!("- Silences that applied: {}\n", ids.join(", ")));
        }
        out.push_str("\n## Timeline (UTC)\n\n");
        for entry in &self.timeline {
            let handling = match (entry.handling, &entry.silence) {
                (Handling::Silenced, Some(id)) => format!("held back by silence {id}"),
                (Handling::Silenced, None) => "held back by a silence".to_owned(),
                (Handling::Muted, _) => "muted by its parent".to_owned(),
                (Handling::Sent, _) if entry.severity == Severity::Critical && entry.status == Status::Firing => {
                    "sent, paged".to_owned()
                }
                (Handling::Sent, _) => "sent".to_owned(),
            };
            out.push_str(&format!(
                "- {} {} {} ({}): {} [{handling}]\n",
                time(entry.at),
                entry.status.as_str(),
                entry.dedup_key,
                entry.severity.as_str(),
                entry.title
            ));
        }
        out
    }
}

fn time(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// `1 h 05 min`, `12 min`, `40 s`.
fn duration(secs: i64) -> String {
    match secs {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Every incident opened from `since` on, closed ones from the bucket and open ones from the
/// state table, newest first.
pub async fn since(
    objects: &impl ObjectStore,
    state: &impl StateStore,
    since: DateTime<Utc>,
) -> Result<Vec<Incident>, String> {
    let first_month = since.format("%Y/%m").to_string();
    let listed =
        objects.list(INCIDENT_PREFIX).await.map_err(|e| format!("{e} (allow s3:ListBucket on {INCIDENT_PREFIX})"))?;
    let mut all = Vec::new();
    for object in &listed {
        // `reports/incidents/YYYY/MM/<id>.json`: months before `since` are not read.
        let month = object.key.strip_prefix(INCIDENT_PREFIX).and_then(|rest| rest.get(..7)).unwrap_or_default();
        if month < first_month.as_str() || !object.key.ends_with(".json") {
            continue;
        }
        let incident: Incident = read_json(objects, &object.key).await.map_err(|e| e.to_string())?;
        all.push(incident);
    }
    let open =
        state.scan_prefix(OPEN_INCIDENTS).await.map_err(|e| format!("{e} (allow dynamodb:Scan on the state table)"))?;
    for (_, _, data) in open {
        if let Ok(record) = serde_json::from_value::<OpenIncident>(data) {
            all.extend(record.unwritten.into_iter().chain(record.incident));
        }
    }
    all.retain(|i| i.opened_at >= since.timestamp());
    all.sort_by_key(|i| std::cmp::Reverse(i.opened_at));
    all.dedup_by(|a, b| a.id == b.id);
    Ok(all)
}

/// The detail by which an alert names the incident it belongs to (the key that opened it), as a
/// disaster-recovery assessment names the write freeze of its database.
pub const JOINS_DETAIL: &str = "incident";

/// The incident key `alert` names, if any.
pub fn named_incident(alert: &Alert) -> Option<&str> {
    alert.details.get(JOINS_DETAIL).and_then(serde_json::Value::as_str)
}

/// Whether `alert` can be part of an incident: a warning or critical alert that is a condition
/// (not a report or a notice), or a notice that names its incident (a disaster-recovery
/// assessment names the write freeze's).
pub fn is_incident_alert(alert: &Alert) -> bool {
    alert.severity >= Severity::Warning && (!is_notice(&alert.dedup_key) || named_incident(alert).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_incident_from_its_first_firing_to_its_resolve() {
        let down = Alert::new("health-checker", Severity::Critical, "health-checker:app", "app is down");
        let mut incident = Incident::open(&down, 1_000);
        incident.record(&down, Handling::Sent, None, 1_000);
        let still = Alert::new("health-checker", Severity::Critical, "health-checker:app", "app is still down");
        incident.record(&still, Handling::Sent, None, 4_600);
        let child = Alert::new("health-checker", Severity::Warning, "health-checker:app:latency", "slow");
        incident.record(&child, Handling::Silenced, Some("s-1"), 4_700);
        incident.record(&child.clone().resolved(), Handling::Silenced, Some("s-1"), 4_800);
        assert_eq!(incident.closed_at, None, "a child's resolve does not close it");
        incident.record(&down.clone().resolved(), Handling::Sent, None, 8_200);
        assert_eq!(incident.closed_at, Some(8_200));
        assert_eq!((incident.pages, incident.notifications), (2, 3));
        assert_eq!(incident.alerts.len(), 2);
        let text = incident.render_timeline(9_000);
        assert!(text.contains("- Closed: 1970-01-01 02:16:40 (lasted 2 h 00 min)"), "{text}");
        assert!(text.contains("firing health-checker:app (critical): app is still down [sent, paged]"), "{text}");
        assert!(text.contains("[held back by silence s-1]") && text.contains("- Silences that applied: s-1"), "{text}");
        assert!(incident.object_key().starts_with("reports/incidents/1970/01/inc-19700101-"));
    }
}
