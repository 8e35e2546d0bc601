//! Silences at the forwarder: an alert an active silence matches is held back and counted in
//! the silence instead of sent; a scheduled sweep tells ops of each silence that has ended,
//! within minutes of its end (DynamoDB's TTL deletes items days late, so it cannot be what
//! notices).

use ops_shared::alert::{ALERT_RECORDS, Alert, AlertRecord, AlertSink, Status};
use ops_shared::silence::{SILENCES, Silence, Silences};
use ops_shared::state::{self, StateStore};

use crate::forward::{ForwardError, Forwarder, SOURCE, WRITE_ATTEMPTS};

impl<S: StateStore, A: AlertSink> Forwarder<S, A> {
    /// Holds `alert` back if an active silence matches it at `now`; the silence that did.
    pub(crate) async fn hold_if_silenced(&self, alert: &Alert, now: i64) -> Result<Option<String>, ForwardError> {
        let Some(item) = self.state.get(SILENCES.0, SILENCES.1).await? else { return Ok(None) };
        let silences: Silences = serde_json::from_value(item.data).unwrap_or_default();
        if silences.silencing(alert, now).is_none() || self.resolves_what_ops_were_told(alert).await? {
            return Ok(None);
        }
        let committed =
            state::update(&self.state, SILENCES, silences.expires_at(now), WRITE_ATTEMPTS, |stored: &Silences| {
                let mut silences = stored.clone();
                let silence = silences.silences.iter_mut().find(|s| s.silences(alert, now));
                let held = silence.map(|s| {
                    s.hold(alert, now);
                    s.id.clone()
                });
                (silences, held)
            })
            .await?
            .ok_or_else(|| ForwardError::Contended(SILENCES.0.to_owned()))?;
        if let Some(id) = &committed.decision {
            tracing::info!(dedup_key = %alert.dedup_key, silence = %id, "held back by a silence");
        }
        Ok(committed.decision)
    }

    /// A resolve of an alert ops were sent (before the silence began) is never held back: what
    /// paged must be told resolved, and the record must not stay firing.
    async fn resolves_what_ops_were_told(&self, alert: &Alert) -> Result<bool, ForwardError> {
        if alert.status != Status::Resolved {
            return Ok(false);
        }
        let Some(item) = self.state.get(ALERT_RECORDS, &alert.dedup_key).await? else { return Ok(false) };
        let record: AlertRecord = serde_json::from_value(item.data).unwrap_or_default();
        Ok(record.status == Some(Status::Firing) && record.last_sent > 0 && !record.muted)
    }

    /// Sends one notice for each silence that has ended and not been told yet; how many.
    pub async fn sweep_silences(&self, now: i64) -> Result<usize, ForwardError> {
        let Some(item) = self.state.get(SILENCES.0, SILENCES.1).await? else { return Ok(0) };
        let silences: Silences = serde_json::from_value(item.data).unwrap_or_default();
        let ended: Vec<String> =
            silences.silences.iter().filter(|s| s.ends_at <= now && !s.summarized).map(|s| s.id.clone()).collect();
        let mut sent = 0;
        for id in ended {
            // Marked told first, so that of two sweeps at once only one sends; put back if the
            // notice cannot be sent, so that the next sweep tries again.
            let expires = silences.expires_at(now);
            let committed = state::update(&self.state, SILENCES, expires, WRITE_ATTEMPTS, |stored: &Silences| {
                let mut silences = stored.clone();
                let claimed: Option<Silence> =
                    silences.silences.iter_mut().find(|s| s.id == id && !s.summarized).map(|s| {
                        s.summarized = true;
                        s.clone()
                    });
                silences.prune(now);
                (silences, claimed)
            })
            .await?
            .ok_or_else(|| ForwardError::Contended(SILENCES.0.to_owned()))?;
            let Some(silence) = &committed.decision else { continue };
            let notice = silence.summary_alert(SOURCE);
            if let Err(err) = self.deliver(&notice, notice.severity, 0).await {
                // From what is stored now (other writers may have come between), so that the
                // next sweep sends the notice.
                let put_back = state::update(&self.state, SILENCES, expires, WRITE_ATTEMPTS, |stored: &Silences| {
                    let mut silences = stored.clone();
                    if let Some(s) = silences.silences.iter_mut().find(|s| s.id == id) {
                        s.summarized = false;
                    }
                    (silences, ())
                })
                .await;
                if !matches!(put_back, Ok(Some(_))) {
                    tracing::error!(silence = %id, "could not put back the silence whose notice failed; it is not sent");
                }
                return Err(err);
            }
            sent += 1;
        }
        Ok(sent)
    }
}
