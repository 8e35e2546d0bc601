//! `opsctl status` against the local stack: what the functions recorded (health state and
//! counters, a backup's manifest, a restore report, rotated secrets, alert records) read back
//! and judged against the runbook's numbers, as text and as JSON; alarms are put in ALARM in
//! moto's CloudWatch and read back through its Query API.

use chrono::{DateTime, Duration, Utc};
use ops_shared::alert::{ALERT_RECORDS, AlertRecord, Severity, Status as AlertStatus};
use ops_shared::cloudwatch::{CloudWatch, CloudWatchError};
use ops_shared::health::{STATE_SK, TargetState, day_sk, target_key};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::secrets::AWSCURRENT;
use ops_shared::sentry::SentryAccess;
use ops_shared::state::{DynamoState, StateStore};
use ops_shared::status::{AlarmEvent, AlarmLine, Alarms, Sources, Status, Verdict, gather};
use ops_testkit::aws::{Aws, create_state_table, provision_runbook_secrets, unique};
use ops_testkit::sentry_events::{SentryEvents, Span};
use serde_json::{Value, json};

pub(crate) struct Recorded {
    pub(crate) aws: Aws,
    pub(crate) prefix: String,
    pub(crate) state: DynamoState,
    pub(crate) objects: S3Objects,
    pub(crate) alarms: LocalAlarms,
    pub(crate) sentry: SentryEvents,
}

/// The alarms in ALARM from moto's CloudWatch; the alarm history as given, since moto does not
/// implement DescribeAlarmHistory (it answers HTTP 500). The adapter's reading of that answer
/// is tested against the API reference's shape in `ops_shared::cloudwatch`.
pub(crate) struct LocalAlarms {
    cloudwatch: CloudWatch,
    history: Vec<AlarmEvent>,
}

impl Alarms for LocalAlarms {
    type Error = CloudWatchError;

    async fn firing(&self, prefix: &str) -> Result<Vec<AlarmLine>, CloudWatchError> {
        self.cloudwatch.firing(prefix).await
    }

    async fn went_to_alarm(&self, names: &[String], since: DateTime<Utc>) -> Result<Vec<AlarmEvent>, CloudWatchError> {
        Ok(self.history.iter().filter(|e| names.contains(&e.name) && e.at >= since).cloned().collect())
    }
}

pub(crate) async fn recorded(label: &str) -> Recorded {
    let aws = Aws::new(ops_testkit::shared()).await;
    let prefix = unique(label);
    let table = format!("{prefix}-ops-state");
    create_state_table(&aws.dynamodb, &table).await.expect("table");
    let bucket = format!("{prefix}-bucket");
    aws.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let db = serde_json::to_string(&ops_testkit::shared().pg.superuser("app")).expect("json");
    provision_runbook_secrets(&aws.secrets, &prefix, &db).await.expect("secrets");
    let sentry = SentryEvents::start("cineview", "cineview-web").await;
    let now = Utc::now();
    sentry.add_spans(app_traffic(now, 400, 0.005, 300.0, "production"));
    // What must not count: the ops functions' own transactions (a backup runs for minutes), the
    // app's staging environment and another project of the organization.
    let backup = Span::transaction(now - Duration::hours(1), 600_000.0, "internal_error", "production");
    sentry.add_spans(std::iter::repeat_n(backup.tag("ops.component", "cineview-ops"), 50));
    sentry.add_spans(app_traffic(now, 100, 1.0, 9000.0, "staging"));
    sentry.add_other_project_spans(app_traffic(now, 100, 1.0, 9000.0, "production"));
    let secret = format!("{prefix}-sentry-read");
    let value = sentry.secret_json("production");
    aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("sentry secret");
    Recorded {
        sentry,
        state: DynamoState::new(aws.dynamodb.clone(), table),
        objects: S3Objects::new(aws.s3.clone(), bucket),
        alarms: LocalAlarms {
            cloudwatch: CloudWatch::new(
                &aws.sdk,
                ops_shared::http::client(std::time::Duration::from_secs(5)).expect("http"),
            ),
            history: Vec::new(),
        },
        aws,
        prefix,
    }
}

/// `count` transactions of the app in `environment` over the past 23 hours (from a minute ago), `failed` of them
/// failed, one in 20 taking `slow_ms`, the others 120 to 218 ms.
pub(crate) fn app_traffic(now: DateTime<Utc>, count: usize, failed: f64, slow_ms: f64, environment: &str) -> Vec<Span> {
    let failures = (count as f64 * failed).round() as usize;
    (0..count)
        .map(|i| {
            let duration = if i % 20 == 19 { slow_ms } else { 120.0 + (i % 100) as f64 };
            let status = if i < failures { "internal_error" } else { "ok" };
            Span::transaction(now - Duration::minutes(1 + (i % 1380) as i64), duration, status, environment)
        })
        .collect()
}

impl Recorded {
    /// What the status and the digest read, with `secrets` and `sentry` made by the caller.
    pub(crate) fn sources<'a>(
        &'a self,
        secrets: &'a SecretsManagerVersions,
        sentry: &'a SentryAccess,
    ) -> Sources<'a, DynamoState, S3Objects, SecretsManagerVersions, LocalAlarms, SentryAccess> {
        Sources {
            state: &self.state,
            objects: &self.objects,
            secrets,
            alarms: &self.alarms,
            sentry,
            prefix: &self.prefix,
            backup_prefix: "backups/",
            report_prefix: "reports/restore-tests/",
        }
    }

    /// Sentry as the stack's read secret says.
    pub(crate) async fn sentry(&self) -> SentryAccess {
        let secret = format!("{}-sentry-read", self.prefix);
        let read = SecretsManagerVersions::new(self.aws.secrets.clone()).value_at(&secret, AWSCURRENT).await;
        SentryAccess::from_read(
            ops_shared::http::client(std::time::Duration::from_secs(5)).expect("http"),
            &secret,
            read,
        )
    }

    async fn status(&self) -> Status {
        let secrets = SecretsManagerVersions::new(self.aws.secrets.clone());
        let sentry = self.sentry().await;
        let sources = self.sources(&secrets, &sentry);
        gather(&sources, Utc::now()).await
    }

    async fn target(&self, name: &str, state: &TargetState, checks: i64, up: i64) {
        let data = serde_json::to_value(state).expect("state");
        self.state.put(&target_key(name), STATE_SK, &data, None, i64::MAX).await.expect("state");
        let day = day_sk(Utc::now().date_naive());
        self.state
            .increment(&target_key(name), &day, &[("checks", checks), ("up", up)], i64::MAX)
            .await
            .expect("counts");
    }

    async fn backup(&self, age: Duration) {
        let finished = Utc::now() - age;
        let manifest = json!({"version": 1, "backup_id": "b1", "label": "nightly", "database": "app",
            "key": "backups/app/x.dump", "format": "custom", "server_version": "15.8", "pg_dump_version": "15.8",
            "started_at": finished - Duration::minutes(2), "finished_at": finished, "size_bytes": 12_000_000,
            "sha256": "00", "snapshot": "s", "part_size_bytes": 16, "parts": 1,
            "tables": [{"schema": "public", "table": "films", "rows": 1200}]});
        let body = serde_json::to_vec(&manifest).expect("json");
        self.objects.put("backups/app/x.manifest.json", body, "application/json").await.expect("manifest");
    }

    async fn restore_report(&self, result: &str, rto_minutes: u64) {
        let report = json!({"version": 1, "result": result, "backup_key": "backups/app/x.dump", "backup_id": "b1",
            "database": "app", "backup_started_at": Utc::now() - Duration::hours(3), "verified_at": Utc::now(),
            "size_bytes": 12_000_000, "tables": 1, "rows": 1200, "download_ms": 1, "restore_ms": 1, "checks_ms": 1,
            "rto_ms": rto_minutes * 60_000, "rto_target_ms": 1_800_000, "rto_met": rto_minutes <= 30,
            "backup_age_hours": 3.0, "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null,
            "scratch_dropped": true, "checks": [], "failures": [], "report_key": "reports/restore-tests/r.json"});
        let body = serde_json::to_vec(&report).expect("json");
        self.objects.put("reports/restore-tests/r.json", body, "application/json").await.expect("report");
    }

    /// An alarm on a metric nobody sends, put in `state` (ALARM: as CloudWatch would after 26
    /// hours).
    async fn alarm(&self, name: &str, state: &str, reason: &str) {
        let alarm = [
            ("AlarmName", name),
            ("Namespace", "Ops"),
            ("MetricName", "BackupSucceeded"),
            ("Statistic", "Sum"),
            ("Period", "3600"),
            ("EvaluationPeriods", "26"),
            ("Threshold", "1"),
            ("ComparisonOperator", "LessThanThreshold"),
        ];
        self.alarms.cloudwatch.call("PutMetricAlarm", &alarm).await.expect("alarm");
        let state = [("AlarmName", name), ("StateValue", state), ("StateReason", reason)];
        self.alarms.cloudwatch.call("SetAlarmState", &state).await.expect("alarm state");
    }

    /// An alert the forwarder last sent `ago`.
    async fn alert(&self, key: &str, severity: Severity, status: AlertStatus, ago: Duration) {
        let record = AlertRecord {
            status: Some(status),
            severity: Some(severity),
            last_sent: (Utc::now() - ago).timestamp(),
            ..AlertRecord::default()
        };
        let data = serde_json::to_value(record).expect("record");
        self.state.put(ALERT_RECORDS, key, &data, None, i64::MAX).await.expect("alert");
    }
}

fn healthy(now: i64) -> TargetState {
    TargetState { latencies: vec![(now - 60, 120), (now - 30, 180), (now - 10, 150)], ..TargetState::default() }
}

#[tokio::test]
async fn a_healthy_stack_is_all_ok_in_text_and_json() {
    let r = recorded("status-ok").await;
    let now = Utc::now().timestamp();
    r.target("app", &healthy(now), 1440, 1440).await;
    let mut engine = healthy(now);
    engine.objective = Some(0.995);
    r.target("ai-engine", &engine, 1440, 1439).await;
    r.backup(Duration::hours(3)).await;
    r.restore_report("passed", 4).await;
    r.alert("health-checker:app", Severity::Critical, AlertStatus::Resolved, Duration::hours(30)).await;
    r.alert("health-checker:slow", Severity::Warning, AlertStatus::Resolved, Duration::minutes(10)).await;
    let matchers = vec![ops_shared::silence::Matcher::parse("target=app").expect("matcher")];
    let deploy = opsctl::silences::NewSilence {
        matchers,
        duration: Duration::hours(2),
        reason: "deploy 4.2".into(),
        created_by: "ops".into(),
    };
    let silence = opsctl::silences::add(&r.state, deploy, Utc::now()).await.expect("silence");

    let status = r.status().await;
    assert!(status.unreadable.is_empty(), "{:?}", status.unreadable);
    let text = status.render();
    assert_eq!(status.verdict(), Verdict::Ok, "a silence is no problem: {text}");
    assert!(text.contains(&format!("target=app ({}, \"deploy 4.2\" by ops), 0 held back", silence.id)), "{text}");
    assert_eq!(status.exit_code(), 0);
    assert!(
        text.contains("ai-engine") && text.contains("objective 99.5 %") && text.contains("% of budget left"),
        "{text}"
    );
    assert!(text.contains("newest 3.0 h old") && text.contains("label nightly"), "{text}");
    assert!(text.contains("restore test passed") && text.contains("RTO 4.0 min"), "{text}");
    assert!(text.contains(&format!("{}-supabase-service-role", r.prefix)) && text.contains("left of 90"), "{text}");
    assert!(text.contains("ok       past 24 h: 1 warning"), "a critical alert of yesterday is not today's: {text}");
    assert!(
        text.contains("ok       error rate 0.50 %, P95 222 ms, 400 transactions"),
        "the app's production transactions only: {text}"
    );
    assert!(text.contains("new issues: none") && text.contains("escalating issues: none"), "{text}");

    let json: Value = serde_json::from_str(&serde_json::to_string(&status).expect("json")).expect("parse");
    let engine = json["targets"].as_array().expect("targets").iter().find(|t| t["name"] == "ai-engine").expect("ai");
    assert_eq!(engine["p95_ms_5min"], 180);
    assert!(engine["budget_left"].as_f64().is_some_and(|left| left > 0.8), "{engine}");
    assert_eq!(json["backup"]["rows"], 1200);
    assert_eq!(json["secrets"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn each_broken_number_is_named_with_its_verdict() {
    let mut r = recorded("status-bad").await;
    r.alarms.history.push(AlarmEvent {
        name: format!("{}-alert-forwarder-errors", r.prefix),
        at: Utc::now() - Duration::hours(1),
        summary: "Alarm updated from OK to ALARM".into(),
    });
    let now = Utc::now().timestamp();
    let down = TargetState {
        down: true,
        down_since: Some(now - 900),
        latencies: vec![(now - 20, 3500), (now - 10, 3600), (now - 5, 3400)],
        ..TargetState::default()
    };
    r.target("app", &down, 100, 80).await;
    r.backup(Duration::hours(30)).await;
    r.restore_report("failed", 45).await;
    r.alert("health-checker:app", Severity::Critical, AlertStatus::Firing, Duration::minutes(10)).await;
    r.alarm(&format!("{}-backup-missing", r.prefix), "ALARM", "no backup for 26 hours").await;
    r.alarm(&format!("other-{}-backup-missing", r.prefix), "ALARM", "not ours").await;
    r.alarm(&format!("{}-api-p95", r.prefix), "OK", "back under the threshold").await;

    let status = r.status().await;
    let text = status.render();
    assert_eq!(status.exit_code(), 1, "{text}");
    assert!(!text.contains("not ours"), "only this stack's alarms: {text}");
    assert!(!text.contains("api-p95"), "only alarms in ALARM: {text}");
    for expected in [
        "CRITICAL app",
        "DOWN since",
        "P95 3600 ms",
        "today 80.00 %",
        "CRITICAL newest 30.0 h old",
        "CRITICAL restore test failed",
        "still firing: health-checker:app (critical)",
        "backup-missing in ALARM: no backup for 26 hours",
        "alert-forwarder-errors went to ALARM at",
        "Verdict: CRITICAL",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
}

/// Sentry's numbers are the app's: its failing, slow transactions and its new and escalating
/// issues of the day, read with the project's id and environment as Sentry's API takes them.
#[tokio::test]
async fn a_failing_slow_app_in_sentry_is_critical_with_its_new_and_escalating_issues() {
    let r = recorded("status-sentry").await;
    let now = Utc::now();
    r.target("app", &healthy(now.timestamp()), 1440, 1440).await;
    r.backup(Duration::hours(3)).await;
    r.restore_report("passed", 4).await;
    r.sentry.add_spans(app_traffic(now, 100, 1.0, 4000.0, "production").into_iter().map(|mut span| {
        span.duration_ms = 4000.0;
        span
    }));
    let new = r.sentry.add_issue(
        "TypeError: cart is undefined",
        "new",
        now - Duration::hours(3),
        now - Duration::minutes(1),
        40,
        "production",
    );
    let rising = r.sentry.add_issue(
        "Timeout calling the AI engine",
        "escalating",
        now - Duration::days(10),
        now - Duration::minutes(1),
        25,
        "production",
    );
    let old = r.sentry.add_issue(
        "KeyError: locale",
        "ongoing",
        now - Duration::days(30),
        now - Duration::minutes(1),
        90,
        "production",
    );
    let staging =
        r.sentry.add_issue("Staging only", "new", now - Duration::hours(2), now - Duration::minutes(1), 70, "staging");

    let status = r.status().await;
    let text = status.render();
    assert!(status.unreadable.is_empty(), "{:?}", status.unreadable);
    assert_eq!(status.verdict(), Verdict::Critical, "{text}");
    assert!(text.contains("CRITICAL error rate 20.40 %, P95 4000 ms, 500 transactions"), "{text}");
    assert!(text.contains(&format!("new: {new} TypeError: cart is undefined (40 events, 40 users)")), "{text}");
    assert!(text.contains(&format!("escalating: {rising} Timeout calling the AI engine (25 events")), "{text}");
    assert!(!text.contains(&old) && !text.contains(&staging), "ongoing and staging issues are not listed: {text}");

    let asked: Vec<String> = r.sentry.requests().iter().map(|q| format!("{}?{}", q.path, q.query)).collect();
    assert!(asked.iter().any(|q| q.contains("/projects/?query=slug%3Acineview-web")), "{asked:?}");
    let project = format!("project={}", r.sentry.project_id);
    assert!(
        asked
            .iter()
            .filter(|q| q.contains("/events/") || q.contains("/issues/"))
            .all(|q| q.contains(&project) && q.contains("environment=production")),
        "{asked:?}"
    );
}

/// Sentry down, a token without the scopes it needs, or no settings at all: each is a line
/// that says so, never a crash, and the rest of the status is still read.
#[tokio::test]
async fn sentry_unreachable_refusing_or_not_set_up_is_a_line_that_says_so() {
    let r = recorded("status-sentry-down").await;
    let secret = format!("{}-sentry-read", r.prefix);
    let put = |value: String| r.aws.secrets.put_secret_value().secret_id(&secret).secret_string(value).send();

    r.sentry.set_scopes(&["org:read"]);
    let status = r.status().await;
    assert!(
        status
            .unreadable
            .iter()
            .any(|u| u.starts_with("Sentry: ") && u.contains("give it the scopes org:read and event:read")),
        "{:?}",
        status.unreadable
    );
    assert_eq!(status.exit_code(), 2);

    let mut unreachable: Value = serde_json::from_str(&r.sentry.secret_json("production")).expect("json");
    unreachable["api_url"] = json!("http://127.0.0.1:9");
    put(unreachable.to_string()).await.expect("put");
    let status = r.status().await;
    let text = status.render();
    assert!(text.contains("Sentry at http://127.0.0.1:9 could not be reached"), "{text}");
    assert!(text.contains("could not be read (below)") && text.contains("Health ("), "{text}");
    assert_eq!(status.exit_code(), 2);

    r.aws.secrets.delete_secret().secret_id(&secret).force_delete_without_recovery(true).send().await.expect("delete");
    r.target("app", &healthy(Utc::now().timestamp()), 1440, 1440).await;
    r.backup(Duration::hours(3)).await;
    r.restore_report("passed", 4).await;
    let status = r.status().await;
    let text = status.render();
    assert!(status.unreadable.is_empty(), "{:?}", status.unreadable);
    assert_eq!(status.verdict(), Verdict::Warning, "the runbook's Sentry checks go unanswered: {text}");
    assert!(
        text.contains(&format!("WARNING  not configured: aws secretsmanager put-secret-value --secret-id {secret}")),
        "{text}"
    );
}

/// The runbook's daily check is "no critical alerts in past 24 hours": one that has since
/// resolved still fails it, named with when it was sent.
#[tokio::test]
async fn a_resolved_critical_alert_of_the_past_24_hours_is_not_ok() {
    let r = recorded("status-resolved").await;
    let now = Utc::now().timestamp();
    r.target("app", &healthy(now), 1440, 1440).await;
    r.backup(Duration::hours(3)).await;
    r.restore_report("passed", 4).await;
    r.alert("health-checker:app", Severity::Critical, AlertStatus::Resolved, Duration::hours(2)).await;

    let status = r.status().await;
    let text = status.render();
    assert!(status.unreadable.is_empty(), "{:?}", status.unreadable);
    assert_eq!(status.verdict(), Verdict::Critical, "{text}");
    assert_eq!(status.exit_code(), 1, "a problem found, not a failure to read");
    let sent = (Utc::now() - Duration::hours(2)).format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(text.contains("CRITICAL past 24 h: 1 critical"), "{text}");
    assert!(text.contains(&format!("critical: health-checker:app, last sent {sent}")), "{text}");
}

#[tokio::test]
async fn what_cannot_be_read_is_named_and_exits_2() {
    let r = recorded("status-none").await;
    let missing = S3Objects::new(r.aws.s3.clone(), format!("{}-no-such-bucket", r.prefix));
    let secrets = SecretsManagerVersions::new(r.aws.secrets.clone());
    let closed_port = r.aws.sdk.to_builder().endpoint_url("http://127.0.0.1:9").build();
    let no_cloudwatch =
        CloudWatch::new(&closed_port, ops_shared::http::client(std::time::Duration::from_secs(2)).expect("http"));
    let sentry = r.sentry().await;
    let sources = Sources {
        state: &r.state,
        objects: &missing,
        secrets: &secrets,
        alarms: &no_cloudwatch,
        sentry: &sentry,
        prefix: &r.prefix,
        backup_prefix: "backups/",
        report_prefix: "reports/restore-tests/",
    };
    let status = gather(&sources, Utc::now()).await;
    assert_eq!(status.exit_code(), 2);
    assert!(
        status.unreadable.iter().any(|u| u.starts_with("backups:") && u.contains("s3:ListBucket")),
        "{:?}",
        status.unreadable
    );
    assert!(
        status
            .unreadable
            .iter()
            .any(|u| u.starts_with("alarms: CloudWatch DescribeAlarms:") && u.contains("127.0.0.1:9")),
        "{:?}",
        status.unreadable
    );
    assert!(status.render().contains("CANNOT READ backups:"));
}

#[tokio::test]
async fn the_daily_email_carries_the_status_and_its_verdict() {
    let r = recorded("status-daily").await;
    let now = Utc::now().timestamp();
    r.target("app", &healthy(now), 1440, 1440).await;
    r.backup(Duration::hours(30)).await;
    r.restore_report("passed", 4).await;
    let secrets = SecretsManagerVersions::new(r.aws.secrets.clone());
    let sentry = r.sentry().await;
    let sources = r.sources(&secrets, &sentry);
    let topic = ops_shared::test_util::RecordingAlerts::default();
    let verdict = health_checker::reports::send_daily(&sources, &topic, Utc::now()).await.expect("sent");
    assert_eq!(verdict, Verdict::Critical, "a 30-hour-old backup");
    let published = topic.published();
    assert_eq!(published.len(), 1);
    let alert = &published[0].alert;
    assert_eq!(alert.title, "Daily ops status: critical problems");
    assert_eq!(alert.severity, Severity::Warning, "a report, not a page: the backup alarm pages");
    assert_eq!(alert.dedup_key, "health-checker:daily-status");
    assert_eq!(alert.subject(), "[WARNING] Daily ops status: critical problems", "a report, never titled RESOLVED");
    assert!(
        alert.summary.contains("CRITICAL newest 30.0 h old") && alert.summary.contains("ok       app"),
        "{}",
        alert.summary
    );
    assert!(published[0].body.contains("CRITICAL newest 30.0 h old"), "the e-mail's text: {}", published[0].body);
    assert!(published[0].body.contains("ok       error rate 0.50 %"), "Sentry's numbers: {}", published[0].body);
}

#[tokio::test]
async fn a_daily_report_without_its_configuration_is_refused_by_name() {
    use ops_shared::lambda::{FunctionError, Handler};
    let stack = ops_testkit::shared();
    let aws = Aws::new(stack).await;
    let env = ops_shared::Env::from_pairs([(
        "HEALTH_TARGETS",
        r#"[{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]"#,
    )]);
    let health = health_checker::HealthRun {
        prober: health_checker::Prober {
            http: reqwest::Client::new(),
            secrets: std::sync::Arc::new(ops_shared::SecretCache::new(aws.secrets.clone(), Default::default())),
        },
        state: ops_shared::test_util::MemoryState::default(),
        alerts: ops_shared::test_util::RecordingAlerts::default(),
        reports: None,
        config: health_checker::HealthConfig::from_env(&env).expect("config"),
    };
    let event = serde_json::from_value(json!({"report": "daily"})).expect("event");
    let err = health.handle(event, lambda_runtime::Context::default()).await.expect_err("refused");
    assert_eq!(err.kind(), "Configuration");
    assert!(err.to_string().contains("BACKUP_BUCKET"), "{err}");
    assert!(health.alerts.published().is_empty());
}

/// The forwarder marks an alert as being sent until its invocation's deadline; a mark still
/// there after it is a publish SNS never accepted (Lambda stopped the invocation).
#[tokio::test]
async fn an_alert_whose_publish_never_reached_sns_is_not_reported_as_firing() {
    let r = recorded("status-unsent").await;
    let now = Utc::now();
    let before = AlertRecord {
        status: Some(AlertStatus::Resolved),
        severity: Some(Severity::Critical),
        last_sent: now.timestamp() - 3 * 24 * 3600,
        ..AlertRecord::default()
    };
    let unsent = AlertRecord {
        status: Some(AlertStatus::Firing),
        severity: Some(Severity::Critical),
        last_sent: now.timestamp() - 120,
        sending: Some(ops_shared::alert::Sending {
            delivery: "sns:lost".into(),
            until_ms: now.timestamp_millis() - 105_000,
            before: Box::new(before),
        }),
        ..AlertRecord::default()
    };
    let data = serde_json::to_value(unsent).expect("record");
    r.state.put(ALERT_RECORDS, "health-checker:app", &data, None, i64::MAX).await.expect("alert");
    let text = r.status().await.render();
    assert!(!text.contains("still firing: health-checker:app"), "{text}");
    assert!(!text.contains("past 24 h: 1 critical"), "{text}");
}
