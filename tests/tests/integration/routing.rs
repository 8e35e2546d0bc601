//! Routing as the runbook says ("ops@cineview.ai (critical), team Slack (non-critical)"), each
//! severity through the forwarder against the local stack's ops topic and a Slack stand-in:
//! where each one arrived, and nothing dropped when Slack refuses.

use std::time::Duration;

use axum::http::StatusCode;
use ops_shared::alert::{Alert, Severity};
use ops_testkit::aws::{Aws, unique};
use ops_testkit::slack::Slack;

use super::alerts::{Fixture, fixture_configured, sns_event};

async fn with_slack() -> (Fixture, Slack) {
    let slack = Slack::start().await;
    let aws = Aws::new(ops_testkit::shared()).await;
    let secret = unique("slack-webhook");
    aws.secrets.create_secret().name(&secret).secret_string(&slack.url).send().await.expect("slack secret");
    (fixture_configured(None, |config| config.slack_secret_arn = Some(secret)).await, slack)
}

impl Fixture {
    async fn send(&self, alert: &Alert) {
        let message = serde_json::to_string(alert).expect("alert");
        let answer = self.invoke(sns_event(&unique("msg"), &message, None)).await.expect("forwarded");
        assert_eq!(answer["records"][0]["decision"], "sent", "{answer}");
    }

    async fn no_email(&self, what: &str) {
        let notes = self.ops.receive(0, Duration::from_millis(700)).await;
        assert!(
            notes.is_empty(),
            "{what} went to the ops topic: {:?}",
            notes.iter().map(|n| &n.subject).collect::<Vec<_>>()
        );
    }
}

fn alert(key: &str, severity: Severity, title: &str) -> Alert {
    Alert::new("health-checker", severity, key, title).summary("the app answers HTTP 500")
}

#[tokio::test]
async fn each_severity_lands_where_the_runbook_says() {
    let (f, slack) = with_slack().await;
    let (down, slow, note) =
        (unique("health-checker:app"), unique("health-checker:slow"), unique("health-checker:tls"));

    f.send(&alert(&down, Severity::Critical, "App is down")).await;
    let email = f.one_notification().await;
    assert_eq!(email.attribute("severity"), Some("critical"), "the pager's filter matches it");
    assert!(slack.texts().is_empty(), "critical goes to the ops e-mail and the pager, not Slack");

    f.send(&alert(&slow, Severity::Warning, "App is slow")).await;
    f.send(&alert(&note, Severity::Info, "Certificate renews in 20 days")).await;
    f.no_email("warning and info").await;
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].contains("App is slow") && texts[1].contains("Certificate renews in 20 days"), "{texts:?}");

    // A resolve follows the alert it resolves, whatever severity it carries itself, and even when
    // the alert eased to warning before resolving (a repeat, not sent).
    let eased = serde_json::to_string(&alert(&down, Severity::Warning, "App is down")).expect("alert");
    let answer = f.invoke(sns_event(&unique("msg"), &eased, None)).await.expect("forwarded");
    assert_eq!(answer["records"][0]["decision"], "repeat", "{answer}");
    f.send(&alert(&down, Severity::Info, "App is down").resolved()).await;
    let resolved = f.one_notification().await;
    assert_eq!(resolved.attribute("severity"), Some("critical"), "the pager hears the resolve too");
    assert!(resolved.subject.as_deref().is_some_and(|s| s.contains("RESOLVED")), "{:?}", resolved.subject);
    f.send(&alert(&slow, Severity::Warning, "App is slow").resolved()).await;
    f.no_email("the resolve of a warning").await;
    assert_eq!(slack.texts().len(), 3);

    // The reports always reach the e-mail, and Slack as well.
    let daily = Alert::new("health-checker", Severity::Info, "health-checker:daily-status", "Daily ops status: ok");
    f.send(&daily).await;
    assert!(f.one_notification().await.message.contains("Daily ops status"));
    assert!(slack.texts().last().is_some_and(|t| t.contains("Daily ops status")));
}

/// Slack refusing (an archived channel) or unreachable: the warning goes to the ops e-mail,
/// saying why, instead of nowhere.
#[tokio::test]
async fn a_warning_slack_refuses_is_emailed_with_the_reason() {
    let (f, slack) = with_slack().await;
    slack.fail_with(Some((StatusCode::GONE, "channel_is_archived")));
    f.send(&alert(&unique("health-checker:slow"), Severity::Warning, "App is slow")).await;
    let email = f.one_notification().await;
    assert!(
        email
            .message
            .contains("Sent by e-mail because Slack did not take it: Slack answered HTTP 410 Gone channel_is_archived"),
        "{}",
        email.message
    );
    assert!(slack.texts().is_empty());
}
