//! `opsctl dr restore` restores tested backups first: a backup no restore test has passed is
//! restore-tested on the staging server before anything is touched, its report filed like any
//! restore test's; the restore stops if that test fails or cannot run; `--untested` skips the
//! test and says so; `dr assess` marks which backups were tested.

use std::time::Duration;

use ops_shared::objects::ObjectStore;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::{Alert, Severity};
use ops_testkit::aws::unique;
use ops_testkit::pg::Seed;
use opsctl::dr::{self, Passed};
use opsctl::dr_restore::{self, RestoreError, RestoreRequest, Tested};
use serde_json::Value;

use super::opsctl_runs::{Operator, operator};

/// What `opsctl backups` and `dr assess` say of the restore tests of `key`.
async fn tested(op: &Operator, key: &str) -> dr::Tested {
    let entries = dr::backups(&op.reach.objects, "backups/", "reports/restore-tests/", chrono::Utc::now())
        .await
        .expect("backups");
    entries.into_iter().find(|e| e.key == key).expect("listed").tested
}

/// `dr assess` of the production database, as text and as JSON.
async fn assess(op: &Operator) -> (String, Value) {
    let store = SecretsManagerVersions::new(op.aws.secrets.clone());
    let (creds, client) = dr::connect(&store, &op.stack.secret("database")).await.expect("connect");
    let entries = dr::backups(&op.reach.objects, "backups/", "reports/restore-tests/", chrono::Utc::now())
        .await
        .expect("backups");
    let secret_arn = dr::secret_arn(&store, &op.stack.secret("database")).await.expect("arn");
    let request = dr::AssessRequest { secret_arn, who: "ops".to_owned() };
    let assessment =
        dr::assess(&client, &creds, entries, &op.reach.objects, &op.reach.alerts, &request).await.expect("assess");
    (assessment.render(), serde_json::to_value(&assessment).expect("json"))
}

/// `dr restore` as an operator types it: without `--untested`.
fn tested_first(op: &Operator, backup: &str) -> RestoreRequest {
    RestoreRequest { untested: false, ..op.request(backup, Some(&op.confirm())) }
}

async fn alerts(op: &Operator, at_most: usize) -> Vec<Alert> {
    op.alerts.receive(at_most, Duration::from_secs(3)).await.iter().map(|n| n.alert()).collect()
}

#[tokio::test]
async fn an_untested_backup_is_restore_tested_on_staging_first_then_restored() {
    let op = operator("dr-tested-first", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    assert_eq!(tested(&op, &backup.key).await.passed, Passed::No);
    let (text, json) = assess(&op).await;
    assert!(text.contains("tested no ") && text.contains("tests it on the staging server first"), "{text}");
    assert_eq!(json["newest"][0]["tested"]["passed"], "no", "{json}");
    let audit_rows = op.count("SELECT count(*) FROM public.audit_log").await;
    op.execute("DELETE FROM public.audit_log").await;

    let outcome = op.restore(&tested_first(&op, &backup.key)).await.expect("tested, then restored");
    assert!(outcome.passed, "{:?}", outcome.failures);
    let Tested::JustNow { report_key, took_ms, estimate } = outcome.tested.clone() else {
        panic!("the restore test ran first: {:?}", outcome.tested)
    };
    assert!(took_ms > 0 && estimate.contains("to the 30-minute RTO"), "{estimate}");
    assert!(outcome.rto_ms >= took_ms, "the RTO counts the test: {outcome:?}");
    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, audit_rows);
    let text = outcome.render();
    assert!(text.contains("Tested just now") && text.contains("restore test first"), "{text}");
    let json: Value = serde_json::to_value(&outcome).expect("json");
    assert_eq!(json["tested"]["tested"], "just_now", "{json}");

    // Filed like any restore test's report, and read back as one.
    let body = op.reach.objects.get(&report_key).await.expect("the report").collect().await.expect("body");
    let report: Value = serde_json::from_slice(&body).expect("report");
    assert_eq!((report["result"].as_str(), report["backup_key"].as_str()), (Some("passed"), Some(&*backup.key)));
    let now = tested(&op, &backup.key).await;
    assert_eq!((now.passed, now.report_key.as_deref()), (Passed::Yes, Some(report_key.as_str())));
    let (text, json) = assess(&op).await;
    assert!(text.contains("tested yes (") && !text.contains("tests it on the staging server first"), "{text}");
    assert_eq!(json["newest"][0]["tested"]["passed"], "yes", "{json}");

    let alerts = alerts(&op, 3).await;
    assert!(alerts.iter().any(|a| a.title.starts_with("Backup/restore successful")), "the test's own: {alerts:?}");
    let restored = alerts.iter().find(|a| a.title.starts_with("Database restored")).expect("the restore's alert");
    assert!(restored.summary.contains("passed a restore test on the staging server just now"), "{restored:?}");

    // Tested now: the next restore of it runs no test.
    op.execute("DELETE FROM public.audit_log").await;
    let again = op.restore(&tested_first(&op, &backup.key)).await.expect("restored again");
    assert!(again.passed, "{:?}", again.failures);
    assert!(matches!(&again.tested, Tested::Before { report_key: key, .. } if *key == report_key), "{again:?}");
}

#[tokio::test]
async fn a_backup_that_fails_its_restore_test_or_cannot_be_tested_is_not_restored() {
    let op = operator("dr-test-fails", Seed::SMALL).await;
    let clean = op.backup("nightly").await;
    let damaged = op.backup("second").await;
    let mut body = op.reach.objects.get(&damaged.key).await.expect("get").collect().await.expect("body");
    let middle = body.len() / 2;
    body[middle] ^= 0xff;
    op.reach.objects.put(&damaged.key, body, "application/octet-stream").await.expect("damage the dump");
    op.execute("DELETE FROM public.audit_log").await;

    let err = op.restore(&tested_first(&op, &damaged.key)).await.expect_err("its test fails");
    assert!(matches!(err, RestoreError::TestFailed { .. }) && err.exit_code() == 1, "{err}");
    let message = err.to_string();
    assert!(message.contains("failed its restore test") && message.contains("sha256"), "{message}");
    assert!(message.contains("nothing was touched") && message.contains("--untested"), "{message}");
    let filed = tested(&op, &damaged.key).await;
    assert!(filed.passed == Passed::Failed && filed.report_key.is_some(), "the test's report is filed: {filed:?}");
    let (text, _) = assess(&op).await;
    assert!(text.contains("tested FAILED (") && text.contains("FAILED its restore test"), "{text}");
    let alerts_now = alerts(&op, 3).await;
    assert!(alerts_now.iter().any(|a| a.title.starts_with("Restore test failed")), "{alerts_now:?}");
    let stopped = alerts_now.iter().find(|a| a.title.starts_with("Database restore stopped"));
    let stopped = stopped.unwrap_or_else(|| panic!("the restore's own alert: {alerts_now:?}"));
    assert_eq!(stopped.severity, Severity::Critical);
    assert!(stopped.summary.contains(&damaged.key) && stopped.summary.contains("changed nothing"), "{stopped:?}");

    // A staging server that refuses: the test cannot run, so nothing is restored either.
    let mut refusing = ops_testkit::shared().pg.superuser("postgres");
    refusing.port = 9;
    let secret = unique("dr-refusing-staging");
    let value = serde_json::to_string(&refusing).expect("json");
    op.aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("secret");
    let err = op.restore_tested_on(&tested_first(&op, &clean.key), &secret).await.expect_err("no test");
    assert!(matches!(err, RestoreError::TestNotRun { .. }) && err.exit_code() == 2, "{err}");
    assert!(err.to_string().contains("could not run") && err.to_string().contains("nothing was touched"), "{err}");
    let stopped = alerts(&op, 3).await;
    assert!(stopped.iter().any(|a| a.title.starts_with("Database restore stopped")), "{stopped:?}");
    assert_eq!(tested(&op, &clean.key).await.passed, Passed::No);

    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, 0, "nothing restored");
    assert!(op.journal().await.is_none(), "no restore started");
    assert!(op.backups_labelled(dr_restore::SAFETY_LABEL).await.is_empty(), "no safety backup taken");
}

#[tokio::test]
async fn untested_restores_without_a_restore_test_and_says_so() {
    let op = operator("dr-untested", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    op.execute("DELETE FROM public.audit_log").await;

    let request = RestoreRequest { untested: true, ..tested_first(&op, &backup.key) };
    let outcome = op.restore(&request).await.expect("restored untested");
    assert!(outcome.passed && outcome.tested == Tested::Untested, "{outcome:?}");
    assert!(op.count("SELECT count(*) FROM public.audit_log").await > 0);
    assert!(outcome.render().contains("UNTESTED: restored with --untested"), "{}", outcome.render());
    assert_eq!(tested(&op, &backup.key).await.passed, Passed::No, "no restore test ran");
    let alerts = alerts(&op, 2).await;
    assert_eq!(alerts.len(), 1, "the restore's alert only: {alerts:?}");
    assert!(alerts[0].summary.contains("restored UNTESTED (--untested)"), "{:?}", alerts[0]);

    // Its safety backup, restored to undo the restore, is never tested first.
    let undo = RestoreRequest { backup_key: outcome.safety_backup_key.clone(), ..tested_first(&op, &backup.key) };
    let undone = op.restore(&undo).await.expect("the undo");
    assert_eq!(undone.tested, Tested::SafetyBackup, "{undone:?}");
    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, 0, "back to before the restore");
    // What it held, an emptied audit log, fails the validation query that wants recent entries.
    assert!(undone.failures.iter().all(|f| f.starts_with("audit log has entries")), "{:?}", undone.failures);
}
