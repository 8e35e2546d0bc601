//! The Monday digest against in-memory sources, with the clock given: a quiet week is an info
//! e-mail; a rotation due within 30 days is listed, one overdue makes it a warning; Sentry not
//! set up is a warning that says how to set it up.

use chrono::{DateTime, Duration, Utc};
use ops_shared::digest::Week;
use ops_shared::rotation::runbook_rotations;
use ops_shared::sentry_numbers::SentryUnavailable;
use ops_shared::status::{Sources, Verdict};
use ops_shared::test_util::{MemoryAlarms, MemoryObjects, MemorySecrets, MemorySentry, MemoryState, RecordingAlerts};
use ops_shared::{Alert, Severity};
use serde_json::json;

/// Monday 2026-11-30 08:00 UTC: the digest of 2026-W48.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_025_600, 0).expect("time")
}

struct Stack {
    state: MemoryState,
    objects: MemoryObjects,
    secrets: MemorySecrets,
    alarms: MemoryAlarms,
    sentry: MemorySentry,
}

/// A backup every night of the week, a passed restore test, the runbook's secrets rotated 10
/// days ago.
fn quiet_week(week: &Week) -> Stack {
    let objects = MemoryObjects::default();
    for n in 0..7 {
        let finished = week.period.start + Duration::days(n) + Duration::hours(2);
        let manifest = json!({"version": 1, "backup_id": "b", "label": null, "database": "app",
            "key": format!("b/app/{n}.dump"), "format": "custom", "server_version": "17", "pg_dump_version": "17",
            "started_at": finished, "finished_at": finished, "size_bytes": 1_000_000, "sha256": "00",
            "snapshot": "s", "part_size_bytes": 1, "parts": 1, "tables": []});
        objects.insert(&format!("b/app/{n}.manifest.json"), manifest.to_string(), finished);
    }
    let verified = week.period.start + Duration::days(2);
    let report = json!({"version": 1, "result": "passed", "backup_key": "b/app/1.dump", "backup_id": "b",
        "database": "app", "backup_started_at": verified, "verified_at": verified, "size_bytes": 1, "tables": 0,
        "rows": 0, "download_ms": 0, "restore_ms": 0, "checks_ms": 0, "rto_ms": 300_000, "rto_target_ms": 1_800_000,
        "rto_met": true, "backup_age_hours": 2.0, "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null,
        "scratch_dropped": true, "checks": [], "failures": [], "report_key": "r/1.json"});
    objects.insert("r/1.json", report.to_string(), verified);
    let secrets = MemorySecrets::default();
    for (name, _, days) in runbook_rotations("cineview") {
        secrets.add(&name, "{}", &[], true);
        let last = now() - Duration::days(10);
        secrets.set_rotation_dates(&name, Some(last), Some(last + Duration::days(i64::from(days))));
    }
    Stack {
        state: MemoryState::default(),
        objects,
        secrets,
        alarms: MemoryAlarms::default(),
        sentry: MemorySentry::default(),
    }
}

async fn send(stack: &Stack, week: &Week) -> (Verdict, Alert) {
    let sources = Sources {
        state: &stack.state,
        objects: &stack.objects,
        secrets: &stack.secrets,
        alarms: &stack.alarms,
        sentry: &stack.sentry,
        prefix: "cineview",
        backup_prefix: "b/",
        report_prefix: "r/",
    };
    let topic = RecordingAlerts::default();
    let verdict = health_checker::reports::send_weekly(&sources, &topic, week.clone(), now()).await.expect("sent");
    let published = topic.published();
    assert_eq!(published.len(), 1, "one e-mail");
    (verdict, published[0].alert.clone())
}

#[tokio::test]
async fn a_quiet_week_is_an_info_email_with_every_line_ok() {
    let week = Week::last_complete(now());
    assert_eq!(week.label, "2026-W48");
    let (verdict, alert) = send(&quiet_week(&week), &week).await;
    assert_eq!(verdict, Verdict::Ok, "{}", alert.summary);
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.subject(), "[INFO] Weekly ops digest 2026-W48: all as the runbook says");
    for expected in
        ["7 backups, one every day", "RTO 5.0 min, RPO 2.0 h", "Rotations due within 30 days\n  ok       none"]
    {
        assert!(alert.summary.contains(expected), "{expected:?} missing from:\n{}", alert.summary);
    }
}

#[tokio::test]
async fn a_rotation_due_soon_is_listed_and_one_overdue_makes_it_a_warning() {
    let week = Week::last_complete(now());
    let stack = quiet_week(&week);
    let due_soon = "cineview-gemini-api";
    stack.secrets.set_rotation_dates(due_soon, Some(now() - Duration::days(160)), Some(now() + Duration::days(20)));
    let (verdict, alert) = send(&stack, &week).await;
    assert_eq!(verdict, Verdict::Ok, "due in 20 days is not wrong: {}", alert.summary);
    assert!(
        alert.summary.contains("ok       cineview-gemini-api              20 days left of 180"),
        "{}",
        alert.summary
    );

    let overdue = "cineview-supabase-service-role";
    stack.secrets.set_rotation_dates(overdue, Some(now() - Duration::days(95)), None);
    let (verdict, alert) = send(&stack, &week).await;
    assert_eq!(verdict, Verdict::Critical, "{}", alert.summary);
    assert_eq!(alert.severity, Severity::Warning, "a report, not a page");
    assert!(alert.summary.contains("CRITICAL cineview-supabase-service-role"), "{}", alert.summary);
}

#[tokio::test]
async fn sentry_not_set_up_is_a_warning_that_says_how() {
    let week = Week::last_complete(now());
    let mut stack = quiet_week(&week);
    let fix = "aws secretsmanager put-secret-value --secret-id cineview-sentry-read ...".to_owned();
    stack.sentry.answer = Err(SentryUnavailable::NotConfigured { fix: fix.clone() });
    let (verdict, alert) = send(&stack, &week).await;
    assert_eq!(verdict, Verdict::Warning);
    assert!(alert.summary.contains(&format!("WARNING  not configured: {fix}")), "{}", alert.summary);
}
