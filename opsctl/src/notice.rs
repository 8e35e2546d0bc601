//! Alerts opsctl sends to ops while it works (a freeze, a thaw, a restore): each one is sent or
//! said to be unsent, never dropped silently.

use ops_shared::alert::{Alert, AlertSink};

/// Publishes `alert`; says whether it went, for the command's output.
pub async fn publish(alerts: &impl AlertSink, alert: &Alert) -> String {
    match alerts.publish(alert).await {
        Ok(()) => "sent".to_owned(),
        Err(err) => {
            tracing::error!(error = %err, title = %alert.title, "an alert could not be published");
            format!("NOT sent: {err}")
        }
    }
}
