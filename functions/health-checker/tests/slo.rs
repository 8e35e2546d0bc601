//! The AI engine's availability objective through health-checker's recording of results:
//! synthetic histories (a burst outage, a slow leak, a healthy stretch) against in-memory state
//! and a recording topic, with the clock given. Which alerts fire, and which do not.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use health_checker::config::Probe;
use health_checker::{CheckResult, Class, HealthConfig, HealthRun, Prober, Target};
use ops_shared::test_util::{MemoryState, RecordingAlerts, offline_secrets};
use ops_shared::{Severity, Status};

fn target(name: &str, slo_percent: Option<f64>) -> Target {
    let probe = Probe::Http {
        url: format!("https://{name}.example/health"),
        method: "GET".into(),
        headers: Default::default(),
        expect_status: 200,
        body: Vec::new(),
    };
    Target { name: name.into(), probe, timeout_ms: 5000, warn_ms: 1500, critical_ms: 3000, slo_percent }
}

fn health(targets: Vec<Target>) -> HealthRun<MemoryState, RecordingAlerts> {
    // Never called: results are given to `record`, nothing is probed.
    HealthRun {
        prober: Prober { http: reqwest::Client::new(), secrets: Arc::new(offline_secrets()) },
        state: MemoryState::default(),
        alerts: RecordingAlerts::default(),
        reports: None,
        config: HealthConfig::with_defaults(targets),
    }
}

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_798_761_600 + minute * 60, 0).expect("time")
}

/// One result a minute for `target` from `start`, failing where `fails(minute)` says.
async fn history(
    h: &HealthRun<MemoryState, RecordingAlerts>,
    t: &Target,
    start: i64,
    minutes: i64,
    fails: fn(i64) -> bool,
) {
    for minute in start..start + minutes {
        let class = if fails(minute) { Class::Failing } else { Class::Healthy };
        let result = CheckResult {
            target: t.name.clone(),
            class,
            latency_ms: 80,
            detail: "HTTP 503".into(),
            tls_days_left: None,
        };
        h.record(t, &result, at(minute)).await.expect("recorded");
    }
}

fn budget_alerts(h: &HealthRun<MemoryState, RecordingAlerts>) -> Vec<(Severity, Status, String)> {
    h.alerts
        .published()
        .into_iter()
        .filter(|p| p.alert.dedup_key.ends_with(":slo"))
        .map(|p| (p.alert.severity, p.alert.status, p.alert.summary))
        .collect()
}

#[tokio::test]
async fn a_burst_outage_of_the_ai_engine_pages_once_and_resolves() {
    let engine = target("ai-engine", None);
    let h = health(vec![engine.clone()]);
    history(&h, &engine, 0, 120, |_| false).await;
    history(&h, &engine, 120, 15, |_| true).await;
    history(&h, &engine, 135, 30, |_| false).await;
    let alerts = budget_alerts(&h);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let (severity, status, summary) = &alerts[0];
    assert_eq!((*severity, *status), (Severity::Critical, Status::Firing));
    assert!(summary.contains("objective of 99.5 %") && summary.contains("budget is gone in"), "{summary}");
    assert_eq!(alerts[1].1, Status::Resolved);
    // The outage itself was also a "down" alert, as before.
    assert!(h.alerts.subjects().iter().any(|s| s.contains("ai-engine is down")));
}

#[tokio::test]
async fn a_slow_leak_warns_and_never_pages() {
    let engine = target("ai-engine", None);
    let h = health(vec![engine.clone()]);
    // One check in 80 fails: 2.5 times the rate 99.5 % allows, never three in a row.
    history(&h, &engine, 0, 2 * 24 * 60, |m| m % 80 == 0).await;
    let alerts = budget_alerts(&h);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].0, alerts[0].1), (Severity::Warning, Status::Firing));
    assert!(h.alerts.subjects().iter().all(|s| !s.contains("down")), "no down alert for single failures");
}

#[tokio::test]
async fn a_healthy_day_and_a_target_without_objective_stay_silent() {
    let engine = target("ai-engine", None);
    let app = target("app", None);
    let h = health(vec![engine.clone(), app.clone()]);
    history(&h, &engine, 0, 24 * 60, |m| m % 720 == 0).await;
    // The app has no objective: its leak is no budget alert (its failures alert when three in a row).
    history(&h, &app, 0, 24 * 60, |m| m % 20 == 0).await;
    assert!(budget_alerts(&h).is_empty(), "{:?}", budget_alerts(&h));
}

#[tokio::test]
async fn an_objective_is_configuration() {
    let strict = target("app", Some(99.99));
    let h = health(vec![strict.clone()]);
    // One failure in 500 breaks a 99.99 % objective at 20x: a page.
    history(&h, &strict, 0, 24 * 60, |m| m % 500 == 499).await;
    let alerts = budget_alerts(&h);
    assert!(alerts.iter().any(|(s, st, _)| *s == Severity::Critical && *st == Status::Firing), "{alerts:?}");
}
