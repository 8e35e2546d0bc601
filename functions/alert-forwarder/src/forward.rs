//! Routing: de-duplicate on the source's own id, suppress repeats of a `dedup_key` within the
//! repeat interval (unless severity rises or it resolves), mute children of a firing parent,
//! then publish to the ops topic. State changes are conditional writes, so concurrent
//! deliveries of the same alert notify once.

use std::sync::Arc;

use chrono::Utc;
use ops_shared::SecretCache;
use ops_shared::alert::{ALERT_RECORDS, Alert, AlertRecord, AlertSink, PublishError, Status};
use ops_shared::state::{self, StateError, StateStore};
use serde::Serialize;
use serde_json::json;

use crate::config::ForwarderConfig;
use crate::format;

pub const SOURCE: &str = "alert-forwarder";
const SEEN: &str = "alert-forwarder#seen";
const DAY: i64 = 24 * 3600;
/// A claim older than this was left by a crashed invocation and may be taken over.
const STALE_CLAIM_SECS: i64 = 300;
const WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("alert state for {0} kept changing under concurrent deliveries")]
    Contended(String),
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
}

pub struct Forwarder<S, A> {
    pub state: S,
    /// The ops topic.
    pub ops: A,
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
    /// Handles one delivery. `Err` means nothing was sent and the delivery must be retried.
    pub async fn forward(&self, source_id: &str, alert: &Alert) -> Result<Decision, ForwardError> {
        let now = Utc::now().timestamp();
        if !self.claim(source_id, now).await? {
            return Ok(Decision::Duplicate);
        }
        match self.route(alert, now).await {
            Ok(decision) => {
                self.mark_done(source_id, now).await?;
                tracing::info!(dedup_key = %alert.dedup_key, ?decision, "alert routed");
                Ok(decision)
            }
            Err(err) => {
                // Release the claim so the retry of this delivery is not taken for a duplicate.
                if let Err(release) = self.state.delete(SEEN, source_id).await {
                    tracing::error!(error = %release, "could not release the delivery claim");
                }
                Err(err)
            }
        }
    }

    async fn claim(&self, source_id: &str, now: i64) -> Result<bool, ForwardError> {
        let claim = json!({"state": "claimed", "at": now});
        if self.state.put(SEEN, source_id, &claim, None, now + DAY).await? {
            return Ok(true);
        }
        match self.state.get(SEEN, source_id).await? {
            None => Ok(self.state.put(SEEN, source_id, &claim, None, now + DAY).await?),
            Some(item) => {
                let stale = item.data["state"] == "claimed"
                    && item.data["at"].as_i64().is_some_and(|at| now - at > STALE_CLAIM_SECS);
                if stale {
                    Ok(self.state.put(SEEN, source_id, &claim, Some(item.version), now + DAY).await?)
                } else {
                    Ok(false)
                }
            }
        }
    }

    async fn mark_done(&self, source_id: &str, now: i64) -> Result<(), ForwardError> {
        if let Some(item) = self.state.get(SEEN, source_id).await? {
            self.state
                .put(SEEN, source_id, &json!({"state": "done", "at": now}), Some(item.version), now + DAY)
                .await?;
        }
        Ok(())
    }

    async fn route(&self, alert: &Alert, now: i64) -> Result<Decision, ForwardError> {
        let repeat = self.config.repeat_interval.as_secs() as i64;
        let parent = self.firing_parent(alert, now).await?;
        let key = (ALERT_RECORDS, alert.dedup_key.as_str());
        let expires = now + 30 * DAY;
        let committed = state::update(&self.state, key, expires, WRITE_ATTEMPTS, |previous: &AlertRecord| {
            let decision = decide(alert, previous, parent.is_some(), now, repeat);
            let record = AlertRecord {
                status: Some(alert.status),
                severity: Some(alert.severity),
                last_sent: if decision == Decision::Sent { now } else { previous.last_sent },
                muted: decision == Decision::Muted,
                muted_children: previous.muted_children,
            };
            (record, decision)
        })
        .await?
        .ok_or_else(|| ForwardError::Contended(alert.dedup_key.clone()))?;
        match committed.decision {
            Decision::Sent => {
                if let Err(err) = self.publish(alert, committed.after.muted_children).await {
                    // Restore the record so the retried delivery is not taken for a repeat.
                    if let Err(rollback) = state::roll_back(&self.state, key, expires, &committed).await {
                        tracing::error!(error = %rollback, "could not restore the alert record after a failed publish");
                    }
                    return Err(err);
                }
            }
            Decision::Muted => {
                if let Some(parent) = &parent {
                    tracing::info!(dedup_key = %alert.dedup_key, parent = %parent, "muted by a firing parent");
                }
            }
            Decision::Repeat | Decision::Duplicate => {}
        }
        Ok(committed.decision)
    }

    /// The parent key of an inhibition rule that mutes `alert` and is firing now.
    async fn firing_parent(&self, alert: &Alert, now: i64) -> Result<Option<String>, ForwardError> {
        for rule in
            self.config.inhibit_rules.iter().filter(|r| r.mutes(&alert.dedup_key) && r.parent != alert.dedup_key)
        {
            if let Some(item) = self.state.get(ALERT_RECORDS, &rule.parent).await? {
                let record: AlertRecord = serde_json::from_value(item.data).unwrap_or_default();
                // A parent firing for longer than a day without news is not trusted to mute.
                if record.status == Some(Status::Firing) && now - record.last_sent < DAY {
                    return Ok(Some(rule.parent.clone()));
                }
            }
        }
        Ok(None)
    }

    async fn publish(&self, alert: &Alert, muted_children: usize) -> Result<(), ForwardError> {
        let subject = format::subject(alert);
        let body = format::body(alert, muted_children);
        self.ops.publish_message(&subject, &body, alert).await?;
        if let Some(secret) = &self.config.slack_secret_arn {
            let url = match self.secrets.get(secret).await {
                Ok(url) => url.value,
                Err(err) => {
                    tracing::error!(error = %err, "the Slack webhook secret is unreadable (e-mail was sent)");
                    return Ok(());
                }
            };
            let text = format!("*{}*\n{}", format::slack_escape(&subject), format::slack_escape(&body));
            match self.http.post(url.trim()).json(&json!({"text": text})).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::error!(status = %response.status(), "Slack refused the notification (e-mail was sent)")
                }
                // The webhook URL is the credential: no error text may carry it into the logs.
                Err(err) => tracing::error!(
                    error = %ops_shared::lambda::error_chain(&err.without_url()),
                    "Slack could not be reached (e-mail was sent)"
                ),
            }
        }
        Ok(())
    }
}
