//! Where an alert goes, as the runbook routes production incidents ("ops@cineview.ai
//! (critical), team Slack (non-critical)"): critical alerts to the ops topic (its e-mail, and the
//! pager, which subscribes to critical ones); warning and info to the team's Slack when a
//! webhook is configured, else to the ops topic; a resolve goes where the alert it resolves
//! went. The reports (daily status, weekly digest, disaster-recovery notices, silence
//! summaries) always go to the ops topic, and to Slack as well.
//!
//! Nothing is dropped: an alert meant for Slack only goes to the ops topic when Slack cannot
//! take it, saying why.

use ops_shared::alert::{Alert, AlertSink, DR_NOTICES, REPORT_KEYS, Severity};
use serde_json::json;

use crate::format;
use crate::forward::{ForwardError, Forwarder, forwarded_metrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The ops topic: e-mail, and the pager for critical ones.
    pub ops: bool,
    pub slack: bool,
}

/// The route of `alert`, routed as `severity` (a resolve's is the alert it resolves), with or
/// without a Slack webhook.
pub fn route(alert: &Alert, severity: Severity, slack: bool) -> Route {
    // The reports and every disaster-recovery notice (the freeze's too) reach the e-mail.
    let always_emailed =
        alert.dedup_key.starts_with(DR_NOTICES) || REPORT_KEYS.iter().any(|p| alert.dedup_key.starts_with(p));
    if always_emailed {
        Route { ops: true, slack }
    } else if severity == Severity::Critical || !slack {
        Route { ops: true, slack: false }
    } else {
        Route { ops: false, slack: true }
    }
}

impl<S, A: AlertSink> Forwarder<S, A> {
    /// Sends `alert` where its route says, as `severity` (the ops topic's `severity` attribute,
    /// which the pager's subscription filters on, is the routed one). `Err` when it reached no
    /// channel it had to: the delivery is then retried.
    pub(crate) async fn deliver(
        &self,
        alert: &Alert,
        severity: Severity,
        muted_children: usize,
    ) -> Result<(), ForwardError> {
        let subject = format::subject(alert);
        let mut body = format::body(alert, muted_children);
        let route = route(alert, severity, self.config.slack_secret_arn.is_some());
        let mut routed = alert.clone();
        routed.severity = severity;
        // The ops topic first: its failure is retried, and a retry must not post to Slack twice.
        if route.ops {
            self.ops.publish_message(&subject, &body, &routed).await?;
        }
        if route.slack
            && let Err(problem) = self.post_to_slack(&subject, &body).await
        {
            tracing::error!(error = %problem, dedup_key = %alert.dedup_key, "Slack did not take the alert");
            if !route.ops {
                body.push_str(&format!("\n\nSent by e-mail because Slack did not take it: {problem}\n"));
                self.ops.publish_message(&subject, &body, &routed).await?;
            }
        }
        forwarded_metrics(severity).emit();
        Ok(())
    }

    /// Posts to the team's Slack incoming webhook; the reason when it did not take the text.
    async fn post_to_slack(&self, subject: &str, body: &str) -> Result<(), String> {
        let Some(secret) = &self.config.slack_secret_arn else { return Err("no Slack webhook".to_owned()) };
        let url = self.secrets.get(secret).await.map_err(|e| format!("its webhook secret is unreadable ({e})"))?.value;
        let text = format!("*{}*\n{}", format::slack_escape(subject), format::slack_escape(body));
        match self.http.post(url.trim()).json(&json!({"text": text})).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                let answer: String = response.text().await.unwrap_or_default().chars().take(100).collect();
                Err(format!("Slack answered HTTP {status} {answer}"))
            }
            // The webhook URL is the credential: no error text may carry it.
            Err(err) => {
                Err(format!("Slack could not be reached: {}", ops_shared::lambda::error_chain(&err.without_url())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_goes_to_ops_the_rest_to_slack_and_reports_to_both() {
        let alert = |key: &str| Alert::new("health-checker", Severity::Warning, key, "t");
        let (ops, slack, both) =
            (Route { ops: true, slack: false }, Route { ops: false, slack: true }, Route { ops: true, slack: true });
        assert_eq!(route(&alert("health-checker:app"), Severity::Critical, true), ops);
        assert_eq!(route(&alert("health-checker:app"), Severity::Warning, true), slack);
        assert_eq!(route(&alert("health-checker:app"), Severity::Info, true), slack);
        assert_eq!(route(&alert("health-checker:app"), Severity::Warning, false), ops, "no Slack: e-mail as before");
        assert_eq!(route(&alert("health-checker:daily-status"), Severity::Info, true), both);
        assert_eq!(route(&alert("opsctl:dr-freeze:arn"), Severity::Warning, true), both);
        assert_eq!(route(&alert("health-checker:weekly-digest"), Severity::Info, false), ops);
    }
}
