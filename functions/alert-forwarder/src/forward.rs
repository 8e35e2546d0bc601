//! Routing: de-duplicate on the source's own id, suppress repeats of a `dedup_key` within the
//! repeat interval (unless severity rises or it resolves), mute children of a firing parent,
//! then deliver where `routing` says. State changes are conditional writes, so concurrent
//! deliveries of the same alert notify once.
//!
//! Nothing an invocation holds outlives it: a delivery's claim and an alert's "being sent" mark
//! last until the invocation's deadline. Lambda stops an invocation at its timeout (a publish
//! that hangs, say) without letting it clean up, and retries the delivery about a minute later;
//! by then the claim has lapsed and the alert counts as unsent, so the retry sends it.

use std::sync::Arc;

use chrono::Utc;
use ops_shared::SecretCache;
use ops_shared::alert::{ALERT_RECORDS, Alert, AlertRecord, AlertSink, PublishError, Sending, Severity, Status};
use ops_shared::objects::S3Objects;
use ops_shared::state::{self, StateError, StateStore};
use ops_shared::telemetry::{Metrics, Unit};
use serde::Serialize;
use serde_json::json;

use crate::config::ForwarderConfig;

pub const SOURCE: &str = "alert-forwarder";
const SEEN: &str = "alert-forwarder#seen";
const DAY: i64 = 24 * 3600;
/// Lambda's longest timeout: how long a claim made without a deadline (a direct call) lasts.
pub const MAX_INVOCATION_MS: i64 = 15 * 60 * 1000;
/// What an invocation keeps for itself before its deadline, so it can still answer.
const ANSWER_MARGIN_MS: i64 = 1000;
/// How often an invocation looks again at a delivery another one is handling.
const IN_FLIGHT_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// How long at most an invocation waits for another one handling the same delivery, whatever
/// its own deadline: then it fails, and the delivery is retried later.
const IN_FLIGHT_WAIT_MS: i64 = 10_000;
pub(crate) const WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("alert state for {0} kept changing under concurrent deliveries")]
    Contended(String),
    #[error("delivery {0} is still being handled by another invocation; retry")]
    InFlight(String),
}

/// Where a delivery stands when an invocation asks for it.
enum Claim {
    /// This invocation handles it.
    Taken,
    /// It was handled before.
    Done,
    /// Another invocation handles it, at most until its own deadline.
    Held,
}

/// What happened to one inbound alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Sent,
    /// The same delivery (SNS MessageId, the Sentry payload's delivery key) was handled before.
    Duplicate,
    /// The same alert was sent within the repeat interval.
    Repeat,
    /// A firing parent mutes it.
    Muted,
    /// An active silence holds it back.
    Silenced,
}

pub struct Forwarder<S, A> {
    pub state: S,
    /// The ops topic.
    pub ops: A,
    /// The backup bucket, where closed incidents are written.
    pub incidents: Option<S3Objects>,
    pub secrets: Arc<SecretCache>,
    pub http: reqwest::Client,
    pub config: ForwarderConfig,
}

/// Whether `alert` goes to ops, given what was recorded of its key: a new key, a change of
/// status or a rise in severity is sent, so is a repeat once the interval has passed; a firing
/// alert with a firing parent is muted, and so is the resolve of an alert ops never heard of.
fn decide(alert: &Alert, previous: &AlertRecord, has_firing_parent: bool, now: i64, repeat_secs: i64) -> Decision {
    let first = previous.status.is_none();
    let changed = previous.status != Some(alert.status);
    let escalated = alert.status == Status::Firing && previous.severity.is_some_and(|s| alert.severity > s);
    let due = now - previous.last_sent >= repeat_secs;
    let muted = alert.status == Status::Firing && has_firing_parent;
    let muted_resolve = alert.status == Status::Resolved && previous.muted && previous.status == Some(Status::Firing);
    if muted || muted_resolve {
        Decision::Muted
    } else if first || changed || escalated || due {
        Decision::Sent
    } else {
        Decision::Repeat
    }
}

impl<S: StateStore, A: AlertSink> Forwarder<S, A> {
    /// Handles one delivery within an invocation whose deadline is `deadline_ms` (epoch
    /// milliseconds). `Err` means the delivery must be retried.
    pub async fn forward(&self, source_id: &str, alert: &Alert, deadline_ms: i64) -> Result<Decision, ForwardError> {
        let wait_until_ms = (deadline_ms - ANSWER_MARGIN_MS).min(Utc::now().timestamp_millis() + IN_FLIGHT_WAIT_MS);
        loop {
            let now_ms = Utc::now().timestamp_millis();
            match self.claim(source_id, now_ms, deadline_ms).await? {
                Claim::Done => return Ok(Decision::Duplicate),
                Claim::Taken => break,
                // The other invocation finishes, or its deadline passes and the delivery is free;
                // this one waits a while for either while it can still answer.
                Claim::Held if now_ms >= wait_until_ms => {
                    return Err(ForwardError::InFlight(source_id.to_owned()));
                }
                Claim::Held => tokio::time::sleep(IN_FLIGHT_POLL).await,
            }
        }
        let now = Utc::now().timestamp();
        let silence = match self.hold_if_silenced(alert, now).await {
            Ok(silence) => silence,
            Err(err) => {
                self.release_claim(source_id).await;
                return Err(err);
            }
        };
        let decided = match &silence {
            Some(_) => Ok(Decision::Silenced),
            None => self.route(source_id, alert, now, deadline_ms).await,
        };
        // Recorded as soon as decided: a retry of this delivery is a repeat, never recorded.
        if let Ok(decision) = &decided {
            self.record_incident(alert, *decision, silence.as_deref(), now).await;
        }
        let routed = match decided {
            // A parent that resolved lets go of the children it held back; a failure there
            // retries the whole delivery (the parent's resolve is then a repeat, not re-sent).
            Ok(decision @ (Decision::Sent | Decision::Repeat)) if alert.status == Status::Resolved => {
                self.release_held(source_id, &alert.dedup_key, now, deadline_ms).await.map(|()| decision)
            }
            other => other,
        };
        match routed {
            Ok(decision) => {
                self.mark_done(source_id, now).await?;
                tracing::info!(dedup_key = %alert.dedup_key, ?decision, "alert routed");
                Ok(decision)
            }
            Err(err) => {
                self.release_claim(source_id).await;
                Err(err)
            }
        }
    }

    /// Releases the delivery's claim so that its retry is not taken for a duplicate.
    async fn release_claim(&self, source_id: &str) {
        if let Err(release) = self.state.delete(SEEN, source_id).await {
            tracing::error!(error = %release, "could not release the delivery claim");
        }
    }

    /// Takes the delivery until `deadline_ms`, unless it is done or held by a live invocation. A
    /// claim whose invocation's deadline has passed was left by an invocation Lambda stopped.
    async fn claim(&self, source_id: &str, now_ms: i64, deadline_ms: i64) -> Result<Claim, ForwardError> {
        let now = now_ms / 1000;
        let claim = json!({"state": "claimed", "at": now, "until_ms": deadline_ms});
        if self.state.put(SEEN, source_id, &claim, None, now + DAY).await? {
            return Ok(Claim::Taken);
        }
        let Some(item) = self.state.get(SEEN, source_id).await? else {
            let taken = self.state.put(SEEN, source_id, &claim, None, now + DAY).await?;
            return Ok(if taken { Claim::Taken } else { Claim::Held });
        };
        if item.data["state"] != "claimed" {
            return Ok(Claim::Done);
        }
        // Claims written before they carried a deadline last as long as the longest invocation.
        let until_ms = item.data["until_ms"]
            .as_i64()
            .or_else(|| item.data["at"].as_i64().map(|at| at * 1000 + MAX_INVOCATION_MS))
            .unwrap_or(0);
        if now_ms <= until_ms {
            return Ok(Claim::Held);
        }
        let taken = self.state.put(SEEN, source_id, &claim, Some(item.version), now + DAY).await?;
        Ok(if taken { Claim::Taken } else { Claim::Held })
    }

    async fn mark_done(&self, source_id: &str, now: i64) -> Result<(), ForwardError> {
        if let Some(item) = self.state.get(SEEN, source_id).await? {
            self.state
                .put(SEEN, source_id, &json!({"state": "done", "at": now}), Some(item.version), now + DAY)
                .await?;
        }
        Ok(())
    }

    async fn route(
        &self,
        source_id: &str,
        alert: &Alert,
        now: i64,
        deadline_ms: i64,
    ) -> Result<Decision, ForwardError> {
        let repeat = self.config.repeat_interval.as_secs() as i64;
        let parent = self.firing_parent(alert, now).await?;
        let key = (ALERT_RECORDS, alert.dedup_key.as_str());
        let expires = now + 30 * DAY;
        let now_ms = Utc::now().timestamp_millis();
        let committed = state::update(&self.state, key, expires, WRITE_ATTEMPTS, |stored: &AlertRecord| {
            let previous = stored.settled(now_ms);
            let decision = decide(alert, &previous, parent.is_some(), now, repeat);
            // A resolve goes where the alert it resolves went: to the highest severity sent.
            let routed = match alert.status {
                Status::Resolved => previous.routed_severity.or(previous.severity).unwrap_or(alert.severity),
                Status::Firing => alert.severity,
            };
            let routed_severity = match (alert.status, decision, previous.status, previous.routed_severity) {
                (Status::Firing, Decision::Sent, Some(Status::Firing), Some(sent)) => Some(sent.max(alert.severity)),
                (Status::Firing, Decision::Sent, _, _) => Some(alert.severity),
                (_, _, _, kept) => kept,
            };
            // Recorded as sent now, so concurrent deliveries of the alert take it for a repeat;
            // it counts as sent for good only once SNS has accepted it (`confirm_sent`).
            let sending = match decision {
                Decision::Sent => Some(Sending {
                    delivery: source_id.to_owned(),
                    until_ms: deadline_ms,
                    before: Box::new(previous.clone()),
                }),
                _ => previous.sending.clone(),
            };
            let record = AlertRecord {
                status: Some(alert.status),
                severity: Some(alert.severity),
                last_sent: if decision == Decision::Sent { now } else { previous.last_sent },
                routed_severity,
                muted: decision == Decision::Muted,
                muted_children: previous.muted_children,
                sending,
                held: (decision == Decision::Muted && alert.status == Status::Firing).then(|| alert.clone()),
            };
            (record, (decision, routed))
        })
        .await?
        .ok_or_else(|| ForwardError::Contended(alert.dedup_key.clone()))?;
        let (decision, routed) = committed.decision;
        match decision {
            Decision::Sent => {
                if let Err(err) = self.deliver(alert, routed, committed.after.muted_children).await {
                    // Restore the record so the retried delivery is not taken for a repeat.
                    if let Err(rollback) = state::roll_back(&self.state, key, expires, &committed).await {
                        tracing::error!(error = %rollback, "could not restore the alert record after a failed publish");
                    }
                    return Err(err);
                }
                self.confirm_sent(source_id, key, expires).await;
            }
            Decision::Muted => {
                if let Some(parent) = &parent {
                    tracing::info!(dedup_key = %alert.dedup_key, parent = %parent, "muted by a firing parent");
                }
            }
            Decision::Repeat | Decision::Duplicate | Decision::Silenced => {}
        }
        Ok(decision)
    }

    /// SNS accepted the alert: it counts as sent whatever happens to this invocation now. If the
    /// mark cannot be cleared, the alert may be sent once more after the deadline, never lost.
    async fn confirm_sent(&self, source_id: &str, key: (&str, &str), expires: i64) {
        let confirmed = state::update(&self.state, key, expires, WRITE_ATTEMPTS, |stored: &AlertRecord| {
            let mut record = stored.clone();
            if record.sending.as_ref().is_some_and(|sending| sending.delivery == source_id) {
                record.sending = None;
            }
            (record, ())
        })
        .await;
        let problem = match confirmed {
            Ok(Some(_)) => return,
            Ok(None) => "its record kept changing under concurrent deliveries".to_owned(),
            Err(err) => err.to_string(),
        };
        tracing::error!(dedup_key = key.1, error = %problem, "could not record that the alert was sent; it may be sent again");
    }

    /// Routes again each alert that `parent` muted and that still fires, now that the parent
    /// has resolved: it goes to ops unless it is a repeat of what ops already heard.
    async fn release_held(
        &self,
        source_id: &str,
        parent: &str,
        now: i64,
        deadline_ms: i64,
    ) -> Result<(), ForwardError> {
        let rules: Vec<_> = self.config.inhibit_rules.iter().filter(|r| r.parent == parent).collect();
        if rules.is_empty() {
            return Ok(());
        }
        for (pk, key, data) in self.state.scan_prefix(ALERT_RECORDS).await? {
            if pk != ALERT_RECORDS || key == parent || !rules.iter().any(|r| r.mutes(&key)) {
                continue;
            }
            let record = serde_json::from_value::<AlertRecord>(data).unwrap_or_default().settled(now * 1000);
            let Some(held) = record.held.filter(|_| record.muted && record.status == Some(Status::Firing)) else {
                continue;
            };
            let released = held.detail("held_back_while_firing", parent.to_owned());
            let decision = self.route(&format!("{source_id}:released:{key}"), &released, now, deadline_ms).await?;
            tracing::info!(dedup_key = %key, parent = %parent, ?decision, "held back while its parent fired");
        }
        Ok(())
    }

    /// The parent key of an inhibition rule that mutes `alert` and is firing now.
    async fn firing_parent(&self, alert: &Alert, now: i64) -> Result<Option<String>, ForwardError> {
        for rule in
            self.config.inhibit_rules.iter().filter(|r| r.mutes(&alert.dedup_key) && r.parent != alert.dedup_key)
        {
            if let Some(item) = self.state.get(ALERT_RECORDS, &rule.parent).await? {
                let record = serde_json::from_value::<AlertRecord>(item.data).unwrap_or_default().settled(now * 1000);
                // A parent firing for longer than a day without news is not trusted to mute.
                if record.status == Some(Status::Firing) && now - record.last_sent < DAY {
                    return Ok(Some(rule.parent.clone()));
                }
            }
        }
        Ok(None)
    }
}

/// One alert sent to the ops topic, by its severity: the dashboard's alerts-by-severity widget.
pub fn forwarded_metrics(severity: Severity) -> Metrics {
    Metrics::new("CineView/Ops").dimension("Severity", severity.as_str()).value("AlertsForwarded", 1.0, Unit::Count)
}
