//! alert-forwarder's routing decisions against in-memory state and a recording topic: no
//! moto, no sleeping; each test runs in milliseconds. The moto tests in `alerts.rs` cover the
//! same paths end to end through DynamoDB and SNS.

use std::sync::Arc;
use std::time::Duration;

use alert_forwarder::{Decision, Forwarder, ForwarderConfig, InhibitRule};
use ops_shared::test_util::{MemoryState, RecordingAlerts, offline_secrets};
use ops_shared::{Alert, Severity};

fn forwarder(repeat: Duration, inhibit_rules: Vec<InhibitRule>) -> Forwarder<MemoryState, RecordingAlerts> {
    // Never called: no test configures Slack, the only secret the routing reads.
    Forwarder {
        state: MemoryState::default(),
        ops: RecordingAlerts::default(),
        incidents: None,
        secrets: Arc::new(offline_secrets()),
        http: ops_shared::http::client(Duration::from_secs(1)).expect("http"),
        config: ForwarderConfig {
            ops_topic_arn: "arn:aws:sns:us-east-1:123456789012:ops".into(),
            sentry_secret_arn: "sentry".into(),
            slack_secret_arn: None,
            repeat_interval: repeat,
            inhibit_rules,
            max_clock_skew: Duration::from_secs(300),
            max_body_bytes: alert_forwarder::config::MAX_BODY_BYTES,
        },
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// An invocation's deadline as Lambda gives it: the template's 15 s timeout from now.
fn deadline() -> i64 {
    chrono::Utc::now().timestamp_millis() + 15_000
}

fn alert(key: &str, severity: Severity, title: &str) -> Alert {
    Alert::new("health-checker", severity, key, title)
}

#[tokio::test]
async fn the_same_delivery_is_handled_once() {
    let f = forwarder(HOUR, Vec::new());
    let down = alert("health-checker:app", Severity::Critical, "app is down");
    assert_eq!(f.forward("sns:1", &down, deadline()).await.expect("first"), Decision::Sent);
    assert_eq!(f.forward("sns:1", &down, deadline()).await.expect("again"), Decision::Duplicate);
    assert_eq!(f.ops.subjects(), ["[CRITICAL] app is down"]);
}

#[tokio::test]
async fn repeats_wait_for_the_interval_unless_severity_rises_or_it_resolves() {
    let f = forwarder(HOUR, Vec::new());
    let slow = alert("health-checker:ai:latency", Severity::Warning, "ai is slow");
    assert_eq!(f.forward("1", &slow, deadline()).await.expect("1"), Decision::Sent);
    assert_eq!(f.forward("2", &slow, deadline()).await.expect("2"), Decision::Repeat);
    let worse = alert("health-checker:ai:latency", Severity::Critical, "ai is very slow");
    assert_eq!(f.forward("3", &worse, deadline()).await.expect("3"), Decision::Sent);
    assert_eq!(f.forward("4", &worse, deadline()).await.expect("4"), Decision::Repeat);
    assert_eq!(f.forward("5", &worse.clone().resolved(), deadline()).await.expect("5"), Decision::Sent);
    assert_eq!(f.ops.published().len(), 3);

    // With the interval passed (zero here), the same alert is sent again as a reminder.
    let due = forwarder(Duration::ZERO, Vec::new());
    assert_eq!(due.forward("1", &slow, deadline()).await.expect("1"), Decision::Sent);
    assert_eq!(due.forward("2", &slow, deadline()).await.expect("2"), Decision::Sent);
}

#[tokio::test]
async fn a_firing_parent_mutes_its_children_and_their_resolves() {
    let rule = InhibitRule { parent: "health-checker:database".into(), children: vec!["health-checker:app".into()] };
    let f = forwarder(HOUR, vec![rule]);
    let db = alert("health-checker:database", Severity::Critical, "database is down");
    assert_eq!(f.forward("1", &db, deadline()).await.expect("parent"), Decision::Sent);
    let child = alert("health-checker:app:latency", Severity::Warning, "app is slow");
    assert_eq!(f.forward("2", &child, deadline()).await.expect("child"), Decision::Muted);
    assert_eq!(f.forward("3", &child.clone().resolved(), deadline()).await.expect("child resolve"), Decision::Muted);
    assert_eq!(f.forward("4", &db.clone().resolved(), deadline()).await.expect("parent resolve"), Decision::Sent);
    // Once the parent is resolved the child is heard again.
    assert_eq!(f.forward("5", &child, deadline()).await.expect("child again"), Decision::Sent);
    assert_eq!(
        f.ops.subjects(),
        ["[CRITICAL] database is down", "[RESOLVED] database is down", "[WARNING] app is slow"]
    );
}

#[tokio::test]
async fn a_failed_publish_is_retried_as_new_not_as_a_duplicate_or_repeat() {
    let f = forwarder(HOUR, Vec::new());
    let down = alert("health-checker:app", Severity::Critical, "app is down");
    f.ops.fail_next(1);
    f.forward("sns:7", &down, deadline()).await.expect_err("nothing was sent: the delivery must be retried");
    assert!(f.ops.published().is_empty());
    assert!(f.state.document("alert-forwarder#alert", "health-checker:app").is_none(), "record rolled back");
    assert_eq!(f.forward("sns:7", &down, deadline()).await.expect("retry"), Decision::Sent);
    assert_eq!(f.ops.published().len(), 1);

    // The same after an earlier alert of the key: the record goes back to what it was.
    let resolved = down.clone().resolved();
    f.ops.fail_next(1);
    f.forward("sns:8", &resolved, deadline()).await.expect_err("fails");
    assert_eq!(f.forward("sns:8", &resolved, deadline()).await.expect("retry"), Decision::Sent);
    assert_eq!(f.ops.subjects(), ["[CRITICAL] app is down", "[RESOLVED] app is down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_deliveries_of_one_alert_notify_once() {
    let f = Arc::new(forwarder(HOUR, Vec::new()));
    let down = alert("health-checker:app", Severity::Critical, "app is down");
    let deliveries = (0..64).map(|i| {
        let (f, down) = (Arc::clone(&f), down.clone());
        tokio::spawn(async move { f.forward(&format!("sns:{i}"), &down, deadline()).await })
    });
    let decisions: Vec<Decision> =
        futures::future::join_all(deliveries).await.into_iter().map(|d| d.expect("task").expect("routed")).collect();
    assert_eq!(decisions.iter().filter(|d| **d == Decision::Sent).count(), 1, "{decisions:?}");
    assert!(decisions.iter().all(|d| matches!(d, Decision::Sent | Decision::Repeat)));
    assert_eq!(f.ops.published().len(), 1);
}

#[tokio::test]
async fn an_unreadable_record_is_started_afresh() {
    let f = forwarder(HOUR, Vec::new());
    f.state.overwrite("alert-forwarder#alert", "health-checker:app", serde_json::json!("not a record"));
    let down = alert("health-checker:app", Severity::Critical, "app is down");
    assert_eq!(f.forward("1", &down, deadline()).await.expect("routed"), Decision::Sent);
    let record = f.state.document("alert-forwarder#alert", "health-checker:app").expect("rewritten");
    assert_eq!(record["status"], "firing");
}

/// A child alert a firing parent held back is sent once the parent resolves, if it still fires;
/// one that resolved meanwhile is not, and neither is a child ops heard of before the parent.
#[tokio::test]
async fn children_still_firing_when_their_parent_resolves_are_sent_then() {
    let rule = InhibitRule { parent: "health-checker:database".into(), children: vec!["health-checker:app".into()] };
    let f = forwarder(HOUR, vec![rule]);
    let database = alert("health-checker:database", Severity::Critical, "database is down");
    let app = alert("health-checker:app", Severity::Critical, "app is down");
    let latency = alert("health-checker:app:latency", Severity::Warning, "app is slow");
    assert_eq!(f.forward("1", &database, deadline()).await.expect("1"), Decision::Sent);
    assert_eq!(f.forward("2", &app, deadline()).await.expect("2"), Decision::Muted);
    assert_eq!(f.forward("3", &latency, deadline()).await.expect("3"), Decision::Muted);
    assert_eq!(f.forward("4", &latency.clone().resolved(), deadline()).await.expect("4"), Decision::Muted);
    assert_eq!(f.forward("5", &database.clone().resolved(), deadline()).await.expect("5"), Decision::Sent);
    assert_eq!(
        f.ops.subjects(),
        ["[CRITICAL] database is down", "[RESOLVED] database is down", "[CRITICAL] app is down"],
        "the app, still down, is told once the database is back; the latency that passed is not"
    );
    let released = f.ops.published().last().map(|p| p.alert.clone()).expect("the app's alert");
    assert_eq!(released.details["held_back_while_firing"], "health-checker:database");
    // The same resolve delivered again releases nothing twice.
    assert_eq!(f.forward("5", &database.resolved(), deadline()).await.expect("again"), Decision::Duplicate);
    assert_eq!(f.ops.subjects().len(), 3);
}
