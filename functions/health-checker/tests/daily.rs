//! The daily e-mail's alerts line against in-memory sources, with the clock given: what reached
//! ops in the past 24 hours fails the runbook's daily check ("no critical alerts in past 24
//! hours") even once it has resolved, whether the forwarder sent it or an alarm paged ops
//! straight.

use chrono::{DateTime, Duration, Utc};
use ops_shared::alert::{ALERT_RECORDS, AlertRecord, Severity, Status as AlertStatus};
use ops_shared::state::StateStore;
use ops_shared::status::{AlarmEvent, Sources, Verdict, gather};
use ops_shared::test_util::{MemoryAlarms, MemoryObjects, MemorySecrets, MemorySentry, MemoryState, RecordingAlerts};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_798_761_600, 0).expect("time")
}

async fn alert(state: &MemoryState, key: &str, severity: Severity, status: AlertStatus, ago: Duration) {
    let record = AlertRecord {
        status: Some(status),
        severity: Some(severity),
        last_sent: (now() - ago).timestamp(),
        ..AlertRecord::default()
    };
    let data = serde_json::to_value(record).expect("record");
    state.put(ALERT_RECORDS, key, &data, None, i64::MAX).await.expect("alert");
}

fn sources<'a>(
    state: &'a MemoryState,
    objects: &'a MemoryObjects,
    secrets: &'a MemorySecrets,
    alarms: &'a MemoryAlarms,
) -> Sources<'a, MemoryState, MemoryObjects, MemorySecrets, MemoryAlarms, MemorySentry> {
    static SENTRY: std::sync::LazyLock<MemorySentry> = std::sync::LazyLock::new(MemorySentry::default);
    Sources {
        state,
        objects,
        secrets,
        alarms,
        sentry: &SENTRY,
        prefix: "cineview",
        backup_prefix: "b/",
        report_prefix: "r/",
    }
}

#[tokio::test]
async fn a_resolved_critical_alert_of_the_past_24_hours_is_not_ok() {
    let (state, objects, secrets, alarms) = Default::default();
    alert(&state, "health-checker:app", Severity::Critical, AlertStatus::Resolved, Duration::hours(3)).await;
    alert(&state, "health-checker:old", Severity::Critical, AlertStatus::Resolved, Duration::hours(30)).await;
    alert(&state, "health-checker:slow", Severity::Warning, AlertStatus::Resolved, Duration::hours(1)).await;
    let status = gather(&sources(&state, &objects, &secrets, &alarms), now()).await;
    let line = status.alerts.as_ref().expect("alerts read");
    assert_eq!(line.verdict, Verdict::Critical);
    assert_eq!(line.critical_24h.len(), 1, "only the past 24 hours: {:?}", line.critical_24h);
    let text = status.render();
    assert!(text.contains("CRITICAL past 24 h: 1 warning, 1 critical"), "{text}");
    assert!(text.contains("critical: health-checker:app, last sent 2026-12-31 21:00 UTC"), "{text}");
    assert!(!text.contains("health-checker:old"), "{text}");
}

#[tokio::test]
async fn an_alarm_that_paged_ops_straight_in_the_past_24_hours_is_counted() {
    let (state, objects, secrets) = Default::default();
    let event = |name: &str, ago| AlarmEvent {
        name: name.to_owned(),
        at: now() - ago,
        summary: "Alarm updated from OK to ALARM".to_owned(),
    };
    let alarms = MemoryAlarms {
        firing: Vec::new(),
        history: vec![
            event("cineview-alert-forwarder-errors", Duration::hours(5)),
            event("cineview-alert-forwarder-throttles", Duration::hours(26)),
            event("cineview-backup-missing", Duration::hours(1)),
        ],
    };
    let topic = RecordingAlerts::default();
    let verdict = health_checker::reports::send_daily(&sources(&state, &objects, &secrets, &alarms), &topic, now())
        .await
        .expect("sent");
    assert_eq!(verdict, Verdict::Critical);
    let summary = &topic.published()[0].alert.summary;
    assert!(
        summary.contains(
            "CRITICAL alarm cineview-alert-forwarder-errors went to ALARM at 2026-12-31 19:00 UTC (straight to ops)"
        ),
        "{summary}"
    );
    assert!(!summary.contains("throttles"), "older than 24 hours: {summary}");
    assert!(!summary.contains("backup-missing went"), "through the forwarder, counted there: {summary}");
    let status = gather(&sources(&state, &objects, &secrets, &alarms), now()).await;
    assert_eq!(status.alarmed_24h.len(), 1);
}
