//! Silences (Alertmanager's): for a planned deploy or a disaster-recovery drill, alerts that
//! match every matcher of an active silence are held back instead of sent, counted, and
//! summed up in one notice when the silence ends. An alert about the alert pipeline itself is
//! never held back.
//!
//! All silences are one record of the state table (`SILENCES`), so the forwarder reads them
//! with a single GetItem per delivery, and writes to it are conditional (`state::update`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, Severity, Status};

/// The state table's key of the silences' record.
pub const SILENCES: (&str, &str) = ("silences", "all");
/// How long an ended silence is kept, for `silence list` and the status.
pub const KEEP_ENDED_SECS: i64 = 30 * 24 * 3600;
/// Alert keys remembered per silence; the count goes on beyond.
const MAX_HELD_KEYS: usize = 100;

/// `name=value`: the alert's `source`, `severity`, `status`, `dedup_key` or `title`, or one of
/// its details (`target=app`), equal to `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, String> {
        match text.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
                Ok(Matcher { name: name.trim().to_owned(), value: value.trim().to_owned() })
            }
            _ => Err(format!("{text:?} is not name=value (e.g. source=health-checker, target=app)")),
        }
    }

    fn matches(&self, alert: &Alert) -> bool {
        let actual = match self.name.as_str() {
            "source" => Some(alert.source.clone()),
            "severity" => Some(alert.severity.as_str().to_owned()),
            "status" => Some(alert.status.as_str().to_owned()),
            "dedup_key" => Some(alert.dedup_key.clone()),
            "title" => Some(alert.title.clone()),
            detail => alert.details.get(detail).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
        };
        actual.as_deref() == Some(self.value.as_str())
    }
}

/// What a silence held back of one alert key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub count: u64,
    pub title: String,
    pub severity: Severity,
    /// The status of the last delivery held back: firing means it may still fire.
    pub last_status: Status,
    pub last_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: String,
    /// Alerts held back, by key.
    #[serde(default)]
    pub held: BTreeMap<String, Held>,
    /// Deliveries held back in all (beyond the keys remembered too).
    #[serde(default)]
    pub held_count: u64,
    /// Its end has been told to ops.
    #[serde(default)]
    pub summarized: bool,
}

impl Silence {
    pub fn is_active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether it holds `alert` back at `now`.
    pub fn silences(&self, alert: &Alert, now: i64) -> bool {
        self.is_active(now) && !is_pipeline(alert) && self.matchers.iter().all(|m| m.matches(alert))
    }

    /// Counts `alert` as held back at `now`.
    pub fn hold(&mut self, alert: &Alert, now: i64) {
        self.held_count += 1;
        if let Some(held) = self.held.get_mut(&alert.dedup_key) {
            held.count += 1;
            (held.last_status, held.last_at, held.severity) = (alert.status, now, alert.severity);
        } else if self.held.len() < MAX_HELD_KEYS {
            let held = Held {
                count: 1,
                title: alert.title.clone(),
                severity: alert.severity,
                last_status: alert.status,
                last_at: now,
            };
            self.held.insert(alert.dedup_key.clone(), held);
        }
    }

    /// `source=health-checker target=app`.
    pub fn matchers_text(&self) -> String {
        self.matchers.iter().map(|m| format!("{}={}", m.name, m.value)).collect::<Vec<_>>().join(" ")
    }

    /// The notice of its end: what it held back, and what may still fire.
    pub fn summary_alert(&self, source: &str) -> Alert {
        let firing: Vec<&String> =
            self.held.iter().filter(|(_, h)| h.last_status == Status::Firing).map(|(key, _)| key).collect();
        let title = format!("Silence {} ended: {} alert(s) held back", self.id, self.held_count);
        let mut text = format!(
            "The silence {} ({}) for \"{}\", set by {}, ended. It held back {} alert(s) of {} key(s).\n",
            self.id,
            self.matchers_text(),
            self.reason,
            self.created_by,
            self.held_count,
            self.held.len()
        );
        for (key, held) in &self.held {
            text.push_str(&format!(
                "- {key}: {} x \"{}\" ({}), last {}\n",
                held.count,
                held.title,
                held.severity.as_str(),
                held.last_status.as_str()
            ));
        }
        if firing.is_empty() {
            text.push_str("Nothing held back was still firing when it ended.\n");
        } else {
            let keys: Vec<&str> = firing.iter().map(|k| k.as_str()).collect();
            text.push_str(&format!(
                "Still firing at its end: {}. Health checks remind every hour; an alarm or a Sentry alert is not sent \
                 again until it changes state: look at each now (opsctl status).\n",
                keys.join(", ")
            ));
        }
        // As severe as the worst alert still firing: a critical one pages now.
        let severity = self
            .held
            .values()
            .filter(|h| h.last_status == Status::Firing)
            .map(|h| h.severity)
            .max()
            .unwrap_or(Severity::Info);
        Alert::new(source, severity, format!("{source}:silence:{}", self.id), title).summary(text)
    }
}

/// An alert about the alert pipeline itself (the forwarder's own, or an alarm on it): never
/// held back, or a broken pipeline could hide behind a silence.
pub fn is_pipeline(alert: &Alert) -> bool {
    alert.source == "alert-forwarder" || alert.dedup_key.contains("alert-forwarder")
}

/// Every silence of the stack, ended ones kept `KEEP_ENDED_SECS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silences {
    #[serde(default)]
    pub silences: Vec<Silence>,
}

impl Silences {
    /// The active silence that holds `alert` back at `now`, if any.
    pub fn silencing(&self, alert: &Alert, now: i64) -> Option<&Silence> {
        self.silences.iter().find(|s| s.silences(alert, now))
    }

    /// Forgets silences that ended long ago.
    pub fn prune(&mut self, now: i64) {
        self.silences.retain(|s| s.ends_at + KEEP_ENDED_SECS > now || !s.summarized);
    }

    /// When the record may expire: a while after its last silence ends.
    pub fn expires_at(&self, now: i64) -> i64 {
        self.silences.iter().map(|s| s.ends_at).max().unwrap_or(now) + KEEP_ENDED_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: &[&str]) -> Silence {
        Silence {
            id: "s1".into(),
            matchers: matchers.iter().map(|m| Matcher::parse(m).expect("matcher")).collect(),
            starts_at: 100,
            ends_at: 200,
            reason: "deploy 4.2".into(),
            created_by: "ops".into(),
            held: BTreeMap::new(),
            held_count: 0,
            summarized: false,
        }
    }

    #[test]
    fn a_silence_holds_back_what_matches_while_active_but_never_the_pipeline() {
        let s = silence(&["source=health-checker", "target=app"]);
        let app = Alert::new("health-checker", Severity::Critical, "health-checker:app", "app is down")
            .detail("target", "app");
        let engine = Alert::new("health-checker", Severity::Critical, "health-checker:ai-engine", "down")
            .detail("target", "ai-engine");
        assert!(s.silences(&app, 150));
        assert!(!s.silences(&app, 99) && !s.silences(&app, 200), "only while active");
        assert!(!s.silences(&engine, 150), "every matcher must match");
        let everything = silence(&["severity=critical"]);
        let pipeline = Alert::new("cloudwatch", Severity::Critical, "cloudwatch:cineview-alert-forwarder-errors", "x");
        assert!(!everything.silences(&pipeline, 150), "a pipeline alarm is never silenced");
        assert!(Matcher::parse("source").is_err() && Matcher::parse("=x").is_err() && Matcher::parse("a=").is_err());
    }

    #[test]
    fn its_end_sums_up_what_it_held_and_what_still_fires() {
        let mut s = silence(&["source=health-checker"]);
        let down = Alert::new("health-checker", Severity::Critical, "health-checker:app", "app is down");
        s.hold(&down, 110);
        s.hold(&down, 170);
        let slow = Alert::new("health-checker", Severity::Warning, "health-checker:app:latency", "slow");
        s.hold(&slow, 120);
        s.hold(&slow.clone().resolved(), 130);
        let alert = s.summary_alert("alert-forwarder");
        assert_eq!(alert.title, "Silence s1 ended: 4 alert(s) held back");
        assert_eq!(alert.severity, Severity::Critical, "a critical alert still fires: the notice pages");
        assert!(alert.summary.contains("- health-checker:app: 2 x \"app is down\" (critical), last firing"));
        assert!(alert.summary.contains("Still firing at its end: health-checker:app. "), "{}", alert.summary);
    }
}
