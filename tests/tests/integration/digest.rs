//! The weekly digest against the local stack: a week's health counters, backups, restore
//! report and alerts recorded as the functions record them, and Sentry's numbers from the
//! stand-in, read back for that week against the week before; the Monday e-mail carries it.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ops_shared::alert::{ALERT_RECORDS, AlertRecord, Severity, Status as AlertStatus};
use ops_shared::digest::{self, Digest, Week};
use ops_shared::health::{STATE_SK, TargetState, day_sk, target_key};
use ops_shared::objects::ObjectStore;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::state::StateStore;
use ops_shared::status::Verdict;
use ops_testkit::sentry_events::Span;
use serde_json::{Value, json};

use super::status::{Recorded, recorded};

/// Two weeks before the last whole one is over: no test traffic of today falls in it or in the
/// week before it.
fn the_week() -> Week {
    Week::last_complete(Utc::now()).previous()
}

fn day(week: &Week, n: i64) -> NaiveDate {
    week.period.start.date_naive() + Duration::days(n)
}

fn time_of(week: &Week, n: i64, hour: u32) -> DateTime<Utc> {
    week.period.start + Duration::days(n) + Duration::hours(i64::from(hour))
}

impl Recorded {
    async fn digest(&self, week: Week) -> Digest {
        let secrets = SecretsManagerVersions::new(self.aws.secrets.clone());
        let sentry = self.sentry().await;
        let sources = self.sources(&secrets, &sentry);
        digest::gather(&sources, week, Utc::now()).await
    }

    /// A target with `objective` and a day's counters for each (day, checks, up).
    async fn target_days(&self, name: &str, objective: Option<f64>, days: &[(NaiveDate, i64, i64)]) {
        let state = TargetState { objective, ..TargetState::default() };
        let data = serde_json::to_value(state).expect("state");
        self.state.put(&target_key(name), STATE_SK, &data, None, i64::MAX).await.expect("state");
        for (day, checks, up) in days {
            let counts = [("checks", *checks), ("up", *up)];
            self.state.increment(&target_key(name), &day_sk(*day), &counts, i64::MAX).await.expect("counts");
        }
    }

    /// The nightly backup's manifest, finished at `finished`.
    async fn nightly(&self, finished: DateTime<Utc>) {
        let key = format!("backups/app/{}", finished.format("%Y%m%dT%H%M%SZ"));
        let manifest = json!({"version": 1, "backup_id": key, "label": "nightly", "database": "app",
            "key": format!("{key}.dump"), "format": "custom", "server_version": "17.4", "pg_dump_version": "17.4",
            "started_at": finished - Duration::minutes(3), "finished_at": finished, "size_bytes": 48_000_000,
            "sha256": "00", "snapshot": "s", "part_size_bytes": 16, "parts": 1,
            "tables": [{"schema": "public", "table": "films", "rows": 5000}]});
        let body = serde_json::to_vec(&manifest).expect("json");
        self.objects.put(&format!("{key}.manifest.json"), body, "application/json").await.expect("manifest");
    }

    async fn restore_report_of(&self, verified: DateTime<Utc>, rto_minutes: u64, backup_age_hours: f64) {
        let report = json!({"version": 1, "result": "passed", "backup_key": "backups/app/x.dump", "backup_id": "b",
            "database": "app", "backup_started_at": verified - Duration::hours(4), "verified_at": verified,
            "size_bytes": 48_000_000, "tables": 1, "rows": 5000, "download_ms": 1, "restore_ms": 1, "checks_ms": 1,
            "rto_ms": rto_minutes * 60_000, "rto_target_ms": 1_800_000, "rto_met": true,
            "backup_age_hours": backup_age_hours, "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null,
            "scratch_dropped": true, "checks": [], "failures": [], "report_key": "reports/restore-tests/r.json"});
        let body = serde_json::to_vec(&report).expect("json");
        self.objects.put("reports/restore-tests/r.json", body, "application/json").await.expect("report");
    }

    async fn alert_sent(&self, key: &str, severity: Severity, at: DateTime<Utc>) {
        let record = AlertRecord {
            status: Some(AlertStatus::Resolved),
            severity: Some(severity),
            last_sent: at.timestamp(),
            ..AlertRecord::default()
        };
        let data = serde_json::to_value(record).expect("record");
        self.state.put(ALERT_RECORDS, key, &data, None, i64::MAX).await.expect("alert");
    }
}

/// `count` transactions of the app spread over `week`, `failed` of them failed, one in 10
/// taking `slow_ms`.
fn week_traffic(week: &Week, count: usize, failed: usize, slow_ms: f64) -> Vec<Span> {
    (0..count)
        .map(|i| {
            let at = week.period.start + Duration::minutes((i * 10_079 / count) as i64);
            let duration = if i % 10 == 9 { slow_ms } else { 100.0 + (i % 50) as f64 };
            Span::transaction(at, duration, if i < failed { "deadline_exceeded" } else { "ok" }, "production")
        })
        .collect()
}

/// A week with a missed night, a slower app with more errors than the week before, a new, a
/// regressed and a frequent issue, an AI engine under its objective one day, and a critical
/// alert: each line of the runbook's weekly checks, read back as ops get it.
#[tokio::test]
async fn a_week_with_a_missed_backup_and_rising_errors_is_told_line_by_line() {
    let r = recorded("digest-week").await;
    let week = the_week();
    let last = week.previous();
    let engine: Vec<(NaiveDate, i64, i64)> = (0..7)
        .map(|n| (day(&week, n), 1440, if n == 4 { 1430 } else { 1440 }))
        .chain((0..7).map(|n| (day(&last, n), 1440, 1440)))
        .collect();
    r.target_days("ai-engine", Some(0.995), &engine).await;
    for n in (0..7).filter(|n| *n != 2) {
        r.nightly(time_of(&week, n, 2) + Duration::minutes(10)).await;
    }
    r.nightly(time_of(&last, 6, 2)).await;
    r.restore_report_of(time_of(&week, 3, 4), 6, 3.5).await;
    r.alert_sent("health-checker:app", Severity::Critical, time_of(&week, 3, 14)).await;
    r.alert_sent("health-checker:slow-last-week", Severity::Warning, time_of(&last, 3, 14)).await;

    r.sentry.add_spans(week_traffic(&week, 1000, 10, 1800.0));
    r.sentry.add_spans(week_traffic(&last, 800, 4, 900.0));
    let at = |n, hour| time_of(&week, n, hour);
    let new = r.sentry.add_issue("TypeError: cart is undefined", "new", at(1, 9), at(2, 12), 30, "production");
    let regressed = r.sentry.add_issue(
        "Timeout calling the AI engine",
        "regressed",
        week.period.start - Duration::days(60),
        at(5, 12),
        12,
        "production",
    );
    let frequent = r.sentry.add_issue(
        "KeyError: locale",
        "ongoing",
        last.period.start - Duration::days(30),
        at(6, 12),
        50,
        "production",
    );
    r.sentry.add_issue(
        "KeyError: locale (last week)",
        "ongoing",
        last.period.start,
        time_of(&last, 6, 12),
        40,
        "production",
    );

    let digest = r.digest(week.clone()).await;
    let text = digest.render();
    assert!(digest.unreadable.is_empty(), "{:?}", digest.unreadable);
    assert_eq!(digest.verdict(), Verdict::Critical, "a night without a backup: {text}");
    for expected in [
        format!("weekly digest, week {}", week.label),
        "ok       error rate 1.00 % (last week 0.50 %), 1000 transactions (last week 800)".to_owned(),
        "WARNING  P95 1800 ms (last week 900 ms, +100 %)".to_owned(),
        "error events 92 (last week 40, +130 %)".to_owned(),
        format!("new: {new} TypeError: cart is undefined (30 events"),
        format!("regressed: {regressed} Timeout calling the AI engine (12 events"),
        format!("top: {frequent} KeyError: locale (50 events"),
        "ai-engine    99.90 % (last week 100.00 %), objective 99.5 %, 90 % of budget left".to_owned(),
        "CRITICAL 6 backups".to_owned(),
        format!("no backup finished on {}", day(&week, 2)),
        "latest restore test passed on".to_owned(),
        "RTO 6.0 min, RPO 3.5 h".to_owned(),
        "1 critical".to_owned(),
        "critical: health-checker:app, last sent".to_owned(),
        "Verdict: CRITICAL".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} missing from:\n{text}");
    }
    assert!(!text.contains("slow-last-week") && !text.contains("(last week)"), "only this week's: {text}");

    let json: Value = serde_json::from_str(&serde_json::to_string(&digest).expect("json")).expect("parse");
    assert_eq!(json["week"]["label"], week.label.as_str());
    assert_eq!(json["sentry"]["state"], "read");
    assert_eq!(json["sentry"]["error_events"], 92);
    assert_eq!(json["backups"]["backups"].as_array().map(Vec::len), Some(6));
    assert_eq!(json["backups"]["days_without"], json!([day(&week, 2)]));

    // The Monday e-mail: one alert through the alert path, a warning because a line is not ok.
    let secrets = SecretsManagerVersions::new(r.aws.secrets.clone());
    let sentry = r.sentry().await;
    let sources = r.sources(&secrets, &sentry);
    let topic = ops_shared::test_util::RecordingAlerts::default();
    let verdict = health_checker::reports::send_weekly(&sources, &topic, week.clone(), Utc::now()).await.expect("sent");
    assert_eq!(verdict, Verdict::Critical);
    let published = topic.published();
    assert_eq!(published.len(), 1);
    let alert = &published[0].alert;
    assert_eq!(alert.subject(), format!("[WARNING] Weekly ops digest {}: critical problems", week.label));
    assert_eq!(alert.dedup_key, "health-checker:weekly-digest");
    assert!(published[0].body.contains(&format!("no backup finished on {}", day(&week, 2))), "{}", published[0].body);
}
