//! restore-verifier's decisions against an in-memory bucket and a recording topic: which backup
//! a test picks, a corrupted dump failing before any restore, the RPO and RTO verdicts. No
//! PostgreSQL, no moto. The integration tests restore real dumps with pg_restore.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::backup::{RestoreReport, SAFETY_LABEL, dump_key, manifest_key};
use ops_shared::restore::{Selection, Verifier, VerifyError};
use ops_shared::test_util::backups::{
    HOUR, PART, PREFIX, at, dump_bytes, manifest, plan, put_backup, seed, verifier, verifier_config,
};
use ops_shared::test_util::{MemoryObjects, ObjectOp, RecordingAlerts};
use ops_shared::{FunctionError, Severity};

#[tokio::test]
async fn the_newest_dump_with_a_manifest_is_tested_and_a_dump_without_one_is_skipped() {
    let store = MemoryObjects::default();
    let older = put_backup(&store, &plan("app", at(2), "older"), &dump_bytes(PART));
    // The newest dump is complete but its manifest could not be written: not a backup.
    let newest = plan("app", at(1), "newest");
    store.insert(&newest.key, dump_bytes(PART), newest.started_at);

    let v = verifier(&store);
    let (_, picked) = v.select(&Selection::Latest).await.expect("a backup");
    assert_eq!(picked, older);
    let err = v.select(&Selection::Key(newest.key.clone())).await.expect_err("named, no manifest");
    assert!(matches!(err, VerifyError::NoManifest(_)), "{err:?}");
    assert!(err.to_string().contains("has no manifest"), "{err}");
    let err = v.select(&Selection::Key("elsewhere/app.dump".into())).await.expect_err("not under the prefix");
    assert!(matches!(err, VerifyError::InvalidRequest(_)), "{err:?}");
}

/// A safety backup `opsctl dr restore` took, and backups of other databases in the same
/// bucket, are never the restore test's "latest" or "random" when it knows its database.
#[tokio::test]
async fn the_test_picks_among_its_own_databases_backups_and_never_a_safety_backup() {
    let store = MemoryObjects::default();
    let own = seed(&store, "alpha", at(3), b"alpha");
    let other = seed(&store, "zeta", at(2), b"zeta, another server's");
    let mut safety = plan("alpha", at(1), "pre-restore-1a2b3c4d");
    safety.label = Some(SAFETY_LABEL.to_owned());
    put_backup(&store, &safety, b"safety");

    let mut v = verifier(&store);
    v.config.database_secret_arn = Some("alpha-secret".into());
    // The fixed times lie months back: every backup here is within the retention.
    v.config.retention = 3650 * 24 * HOUR;
    for selection in [Selection::Latest, Selection::Random] {
        let (key, picked) = v.select(&selection).await.expect("a backup");
        assert_eq!((key, picked), (manifest_key(&own.key), own.clone()), "{selection:?}");
    }
    v.config.database_secret_arn = Some("gamma-secret".into());
    let err = v.select(&Selection::Latest).await.expect_err("no backup of gamma");
    assert!(matches!(err, VerifyError::NoBackup(_)), "{err:?}");
    v.config.database_secret_arn = None;
    let (_, picked) = v.select(&Selection::Latest).await.expect("a backup");
    assert_eq!(picked.key, other.key, "the safety backup is skipped even without a database named");
}

#[tokio::test]
async fn backups_are_ordered_by_their_start_time_whatever_their_database() {
    let store = MemoryObjects::default();
    // "zeta" sorts last by key, but its backup is the older one.
    seed(&store, "zeta", at(5), b"zeta");
    let newest = seed(&store, "alpha", at(1), b"alpha");
    seed(&store, "alpha", at(3), b"alpha, older");

    let (key, picked) = verifier(&store).select(&Selection::Latest).await.expect("a backup");
    assert_eq!(key, manifest_key(&newest.key));
    assert_eq!(picked, newest);
}

#[tokio::test]
async fn a_random_pick_is_among_the_backups_within_retention_only() {
    let store = MemoryObjects::default();
    let now = Utc::now();
    seed(&store, "app", now - chrono::Duration::days(40), b"expired");
    let recent = seed(&store, "app", now - chrono::Duration::days(2), b"recent");
    let v = verifier(&store);
    for _ in 0..20 {
        let (_, picked) = v.select(&Selection::Random).await.expect("a backup");
        assert_eq!(picked, recent);
    }

    let expired = MemoryObjects::default();
    seed(&expired, "app", now - chrono::Duration::days(40), b"expired");
    let err = verifier(&expired).select(&Selection::Random).await.expect_err("none within retention");
    assert!(matches!(err, VerifyError::NoBackup(_)), "{err:?}");
}

/// Runs the restore test of a corrupted backup: it must fail before any restore (the
/// verifier's secrets are offline, so a restore attempt would be an error, not a report).
async fn test_corrupted(
    corrupt: impl FnOnce(&mut Vec<u8>),
) -> (MemoryObjects, Verifier<MemoryObjects, RecordingAlerts>) {
    let store = MemoryObjects::default();
    let body = dump_bytes(3 * PART);
    let manifest = seed(&store, "app", Utc::now() - HOUR, &body);
    let mut corrupted = body.clone();
    corrupt(&mut corrupted);
    store.insert(&manifest.key, corrupted, Utc::now());
    (store.clone(), verifier(&store))
}

#[tokio::test]
async fn a_sha256_mismatch_fails_the_test_before_any_restore() {
    let (store, v) = test_corrupted(|bytes| bytes[PART + 7] ^= 0x01).await;
    let report = v.run(Selection::Latest, None).await.expect("the test ran");

    assert!(!report.passed());
    assert_eq!(report.result, "failed");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["sha256 matches the manifest"]);
    assert!(report.checks.iter().any(|c| c.name == "size matches the manifest" && c.passed));
    assert_eq!(report.scratch_database, None, "nothing was restored");
    assert!(report.rpo_met);
    assert!(store.object(&report.report_key).is_some(), "the report is filed");
    let published = v.alerts.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].alert.severity, Severity::Critical);
    assert!(published[0].alert.summary.contains("sha256 matches the manifest"), "{}", published[0].alert.summary);
}

#[tokio::test]
async fn a_size_mismatch_fails_the_test_before_any_restore() {
    let (_, v) = test_corrupted(|bytes| bytes.truncate(bytes.len() - 100)).await;
    let report = v.run(Selection::Latest, None).await.expect("the test ran");

    assert_eq!(report.result, "failed");
    let size = report.failures.iter().find(|f| f.starts_with("size matches the manifest")).expect("size failure");
    assert!(size.contains(&format!("{} bytes, manifest {}", 3 * PART - 100, 3 * PART)), "{size}");
    assert_eq!(report.scratch_database, None, "nothing was restored");
    assert_eq!(v.alerts.published()[0].alert.severity, Severity::Critical);
}

#[tokio::test]
async fn a_report_that_cannot_be_filed_is_still_told_to_ops() {
    let (store, v) = test_corrupted(|bytes| bytes[0] ^= 0xff).await;
    store.fail(ObjectOp::Put, 1);
    let err = v.run(Selection::Latest, None).await.expect_err("the report could not be filed");

    assert!(matches!(err, VerifyError::Storage(_)), "{err:?}");
    assert_eq!(v.alerts.subjects().len(), 1);
    assert!(v.alerts.published()[0].alert.title.starts_with("Restore test failed"));
}

#[tokio::test]
async fn an_unreadable_manifest_means_no_test_could_run() {
    let store = MemoryObjects::default();
    let key = dump_key(PREFIX, "app", at(1), "broken");
    store.insert(&key, b"dump".to_vec(), Utc::now());
    store.insert(&manifest_key(&key), b"{not json".to_vec(), Utc::now());
    let v = verifier(&store);
    let err = v.run(Selection::Latest, None).await.expect_err("no usable backup");

    assert!(matches!(err, VerifyError::BadManifest { .. }), "{err:?}");
    assert_eq!(err.kind(), "NoUsableBackup");
    let published = v.alerts.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].alert.severity, Severity::Critical);
    assert_eq!(published[0].alert.title, "Restore test could not run");
    assert_eq!(store.calls(ObjectOp::Put), 0, "no report without a test");
}

fn report_of_backup_started(started_at: DateTime<Utc>) -> RestoreReport {
    let manifest = manifest(&plan("app", started_at, "a1"), b"0");
    let config = verifier_config();
    RestoreReport::new(&manifest, config.rto, config.rpo)
}

#[test]
fn a_backup_older_than_the_rpo_fails_the_test_naming_its_age() {
    let mut stale = report_of_backup_started(at(30));
    stale.judge(Duration::from_secs(60), at(0));
    assert!(!stale.rpo_met && stale.rto_met);
    assert_eq!(stale.failures, ["the backup is 30.0 h old, beyond the RPO of 24 h"]);
    assert_eq!(stale.result, "failed");

    let fresh = {
        let mut report = report_of_backup_started(at(24));
        report.judge(Duration::from_secs(60), at(0));
        report
    };
    assert!(fresh.rpo_met && fresh.passed(), "{:?}", fresh.failures);
    assert_eq!((fresh.result.as_str(), fresh.backup_age_hours), ("passed", 24.0));
}

#[test]
fn a_restore_slower_than_the_rto_fails_the_test() {
    let mut slow = report_of_backup_started(at(1));
    slow.judge(Duration::from_secs(31 * 60), at(0));
    assert!(!slow.rto_met && slow.rpo_met);
    assert_eq!(slow.failures, ["RTO 1860000 ms exceeds the target of 1800000 ms"]);
    assert_eq!(slow.result, "failed");
}
