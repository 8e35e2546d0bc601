//! The incident log at the forwarder: each alert it handles is recorded in its incident (see
//! `ops_shared::incident`), and a closed incident is written to the backup bucket. Recording
//! never fails a delivery: the alert has reached ops by then; a failure is logged, and a closed
//! incident that could not be written stays in the state table until the sweep writes it.

use ops_shared::alert::{Alert, AlertSink, Status, is_notice};
use ops_shared::incident::{
    Handling, Incident, OPEN_FOR_AT_MOST_SECS, OPEN_INCIDENTS, OpenIncident, is_incident_alert, named_incident,
};
use ops_shared::objects::ObjectStore;
use ops_shared::state::{self, StateError, StateStore};

use crate::forward::{Decision, ForwardError, Forwarder, WRITE_ATTEMPTS};

impl<S: StateStore, A: AlertSink> Forwarder<S, A> {
    /// Records `decision` on `alert` (held back by `silence`, if one) at `now`.
    pub(crate) async fn record_incident(&self, alert: &Alert, decision: Decision, silence: Option<&str>, now: i64) {
        let handling = match decision {
            Decision::Sent => Handling::Sent,
            Decision::Muted => Handling::Muted,
            Decision::Silenced => Handling::Silenced,
            Decision::Repeat | Decision::Duplicate => return,
        };
        if !is_incident_alert(alert) {
            return;
        }
        // The timeline is of when things happened, not of when they reached the forwarder.
        let at = chrono::DateTime::parse_from_rfc3339(&alert.occurred_at).map_or(now, |t| t.timestamp());
        if let Err(err) = self.record(alert, handling, silence, at).await {
            tracing::error!(error = %err, dedup_key = %alert.dedup_key, "the incident log could not record the alert");
        }
    }

    async fn record(
        &self,
        alert: &Alert,
        handling: Handling,
        silence: Option<&str>,
        now: i64,
    ) -> Result<(), ForwardError> {
        let Some(group) = self.incident_key(alert).await? else { return Ok(()) };
        let key = (OPEN_INCIDENTS, group.as_str());
        let committed =
            state::update(&self.state, key, now + OPEN_FOR_AT_MOST_SECS, WRITE_ATTEMPTS, |stored: &OpenIncident| {
                let mut record = stored.clone();
                if record.incident.as_ref().is_some_and(|i| i.closed_at.is_some()) {
                    record.unwritten.extend(record.incident.take());
                }
                match (&mut record.incident, alert.status) {
                    (Some(incident), _) => incident.record(alert, handling, silence, now),
                    (None, Status::Firing) => {
                        let mut incident = Incident::open(alert, now);
                        incident.record(alert, handling, silence, now);
                        record.incident = Some(incident);
                    }
                    (None, Status::Resolved) => {}
                }
                (record, ())
            })
            .await?
            .ok_or_else(|| ForwardError::Contended(group.clone()))?;
        self.write_closed(&group, &committed.after).await
    }

    /// The key of the incident `alert` belongs to: the one it names or that of an inhibition
    /// parent, whose incident is open, else its own; none for a notice whose incident is not
    /// open (an assessment without a freeze is news, not an incident of its own).
    async fn incident_key(&self, alert: &Alert) -> Result<Option<String>, StateError> {
        if let Some(named) = named_incident(alert) {
            if self.is_open(named).await? {
                return Ok(Some(named.to_owned()));
            }
            if is_notice(&alert.dedup_key) {
                return Ok(None);
            }
        }
        for rule in
            self.config.inhibit_rules.iter().filter(|r| r.mutes(&alert.dedup_key) && r.parent != alert.dedup_key)
        {
            if self.is_open(&rule.parent).await? {
                return Ok(Some(rule.parent.clone()));
            }
        }
        Ok(Some(alert.dedup_key.clone()))
    }

    async fn is_open(&self, key: &str) -> Result<bool, StateError> {
        let open = self.state.get(OPEN_INCIDENTS, key).await?;
        let record: Option<OpenIncident> = open.and_then(|item| serde_json::from_value(item.data).ok());
        Ok(record.and_then(|r| r.incident).is_some_and(|i| i.closed_at.is_none()))
    }

    /// Writes the closed incidents of `record` to the bucket, then forgets those written, from
    /// what is stored by then (another delivery may have written the key meanwhile).
    async fn write_closed(&self, group: &str, record: &OpenIncident) -> Result<(), ForwardError> {
        let closed = record.unwritten.iter().chain(record.incident.iter().filter(|i| i.closed_at.is_some()));
        let closed: Vec<&Incident> = closed.collect();
        if closed.is_empty() {
            return Ok(());
        }
        let Some(bucket) = &self.incidents else {
            tracing::info!(incident = %group, "no BACKUP_BUCKET here: the sweep writes the closed incident");
            return Ok(());
        };
        let mut written: Vec<String> = Vec::new();
        for incident in closed {
            let body = serde_json::to_vec_pretty(incident).unwrap_or_default();
            if let Err(err) = bucket.put(&incident.object_key(), body, "application/json").await {
                tracing::error!(error = %err, incident = %incident.id, "the closed incident could not be written; the sweep tries again");
                break;
            }
            written.push(incident.id.clone());
        }
        if written.is_empty() {
            return Ok(());
        }
        let expires = chrono::Utc::now().timestamp() + OPEN_FOR_AT_MOST_SECS;
        state::update(&self.state, (OPEN_INCIDENTS, group), expires, WRITE_ATTEMPTS, |stored: &OpenIncident| {
            let mut record = stored.clone();
            record.unwritten.retain(|i| !written.contains(&i.id));
            if record.incident.as_ref().is_some_and(|i| i.closed_at.is_some() && written.contains(&i.id)) {
                record.incident = None;
            }
            (record, ())
        })
        .await?;
        Ok(())
    }

    /// Writes the closed incidents a failed write left in the state table; how many keys.
    pub async fn flush_closed_incidents(&self) -> Result<usize, ForwardError> {
        let mut flushed = 0;
        for (_, group, data) in self.state.scan_prefix(OPEN_INCIDENTS).await? {
            let Ok(record) = serde_json::from_value::<OpenIncident>(data) else { continue };
            if !record.unwritten.is_empty() || record.incident.as_ref().is_some_and(|i| i.closed_at.is_some()) {
                self.write_closed(&group, &record).await?;
                flushed += 1;
            }
        }
        Ok(flushed)
    }
}
