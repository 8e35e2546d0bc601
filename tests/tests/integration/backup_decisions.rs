//! The decisions of scheduled-backup and restore-verifier that need no PostgreSQL, against an
//! in-memory bucket and a recording topic: no moto, no sleeping; each test runs in
//! milliseconds. The moto tests in `backups.rs` cover the same paths end to end with pg_dump
//! and pg_restore.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ops_shared::backup::dump::stream_parts;
use ops_shared::backup::take::time_budget;
use ops_shared::backup::{Backup, BackupConfig, BackupError, Compression, Dumped, Plan};
use ops_shared::backup::{BackupSource, Manifest, Scope, TableCount, dump_key, manifest_key};
use ops_shared::objects::ObjectStore;
use ops_shared::restore::{Selection, Verifier, VerifierConfig, VerifyError, default_validation_queries};
use ops_shared::{FunctionError, Scrubber, SecretCache, Severity};
use ops_testkit::memory::{MemoryObjects, ObjectOp, RecordingAlerts};
use sha2::Digest;

const PREFIX: &str = "backups/";
/// Small parts, so a dump of a few kilobytes is several of them.
const PART: usize = 1024;
const HOUR: Duration = Duration::from_secs(3600);

/// Never called: nothing here reaches a database. A restore the verifier should not attempt
/// fails on it, so the test sees an error instead of a report.
fn offline_secrets() -> Arc<SecretCache> {
    let offline = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    Arc::new(SecretCache::new(aws_sdk_secretsmanager::Client::from_conf(offline), Scrubber::default()))
}

fn backup(store: &MemoryObjects) -> Backup<MemoryObjects, RecordingAlerts> {
    Backup {
        store: store.clone(),
        alerts: RecordingAlerts::default(),
        secrets: offline_secrets(),
        http: ops_shared::http::client(Duration::from_secs(1)).expect("http"),
        config: BackupConfig {
            database_secret_arn: "cineview-database".into(),
            bucket: "backups".into(),
            prefix: PREFIX.into(),
            pg_tools_dir: "/nonexistent".into(),
            part_size: PART,
            compression: Compression::Auto,
            rpo: 24 * HOUR,
            supabase: None,
            deadline_margin: Duration::from_secs(30),
            database_timeout: Duration::from_secs(1),
        },
    }
}

fn verifier(store: &MemoryObjects) -> Verifier<MemoryObjects, RecordingAlerts> {
    Verifier {
        store: store.clone(),
        alerts: RecordingAlerts::default(),
        secrets: offline_secrets(),
        config: verifier_config(),
    }
}

fn verifier_config() -> VerifierConfig {
    VerifierConfig {
        bucket: "backups".into(),
        prefix: PREFIX.into(),
        staging_secret_arn: "staging".into(),
        database_secret_arn: None,
        pg_tools_dir: "/nonexistent".into(),
        rto: Duration::from_secs(30 * 60),
        rpo: 24 * HOUR,
        validation_queries: default_validation_queries(),
        restore_jobs: 2,
        report_prefix: "reports/restore-tests/".into(),
        retention: 30 * 24 * HOUR,
        database_timeout: Duration::from_secs(1),
    }
}

fn plan(database: &str, started_at: DateTime<Utc>, backup_id: &str) -> Plan {
    Plan {
        key: dump_key(PREFIX, database, started_at, backup_id),
        backup_id: backup_id.into(),
        label: None,
        database: database.into(),
        server_version: "15.8".into(),
        pg_dump_version: "pg_dump (PostgreSQL) 15.8".into(),
        compression: Compression::Gzip(6),
        snapshot: "00000003-00000002-1".into(),
        started_at,
        source: BackupSource {
            host: "db.example.com".into(),
            port: 5432,
            database: database.into(),
            secret: format!("{database}-secret"),
        },
        scope: Scope::everything(),
    }
}

fn tables() -> Vec<TableCount> {
    vec![TableCount { schema: "auth".into(), table: "users".into(), rows: 50 }]
}

/// What pg_dump would write: `len` bytes that differ from part to part.
fn dump_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Takes a backup of `dump` through the phases a real one goes through, `dump` standing for
/// pg_dump's output.
async fn back_up(
    b: &Backup<MemoryObjects, RecordingAlerts>,
    plan: &Plan,
    dump: &[u8],
) -> Result<Manifest, BackupError> {
    b.store_backup(plan, None, |upload_id| async move {
        let mut output = dump;
        let streamed = stream_parts(&b.store, &plan.key, &upload_id, &mut output, PART).await?;
        Ok(Dumped { tables: tables(), streamed, warnings: Vec::new() })
    })
    .await
    .map(|(manifest, _)| manifest)
}

/// The moment a plan starts, `hours` before a fixed time.
fn at(hours_before: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).single().expect("valid time") - chrono::Duration::hours(hours_before)
}

/// Nothing under the prefix, no upload left open.
fn assert_nothing_stored(store: &MemoryObjects) {
    assert!(store.keys().is_empty(), "nothing may be left behind: {:?}", store.keys());
    assert!(store.open_uploads().is_empty(), "the upload must be aborted: {:?}", store.open_uploads());
}

#[tokio::test]
async fn a_backup_is_its_parts_in_order_with_the_manifest_written_last() {
    let store = MemoryObjects::default();
    let b = backup(&store);
    let dump = dump_bytes(5 * PART + 100);
    let manifest = back_up(&b, &plan("app", at(0), "a1"), &dump).await.expect("backup");

    assert_eq!(store.object(&manifest.key).expect("the dump").body, dump);
    assert_eq!((manifest.size_bytes, manifest.parts, manifest.part_size_bytes), (dump.len() as u64, 6, PART as u64));
    assert_eq!(manifest.sha256, sha256(&dump));
    assert_eq!(manifest.tables, tables());
    let stored = store.object(&manifest_key(&manifest.key)).expect("the manifest");
    assert_eq!(serde_json::from_slice::<Manifest>(&stored.body).expect("json"), manifest);
    assert_eq!(stored.content_type, "application/json");
    assert!(store.open_uploads().is_empty());
    assert_eq!((store.calls(ObjectOp::AbortUpload), store.calls(ObjectOp::Put)), (0, 1));
    // The restore test finds it.
    let (key, picked) = verifier(&store).select(&Selection::Latest).await.expect("a backup");
    assert_eq!((key, picked), (manifest_key(&manifest.key), manifest));
}

#[tokio::test]
async fn a_failed_part_upload_aborts_the_upload_and_writes_no_manifest() {
    let store = MemoryObjects::default();
    store.fail(ObjectOp::UploadPart, 3);
    let b = backup(&store);
    let err = back_up(&b, &plan("app", at(0), "a1"), &dump_bytes(5 * PART)).await.expect_err("part 3 fails");

    assert!(matches!(err, BackupError::Storage(_)), "{err:?}");
    assert!(err.to_string().contains("call 3 of UploadPart failed"), "{err}");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::CompleteUpload), 0, "a failed dump is never completed");
    assert_eq!(store.calls(ObjectOp::AbortUpload), 1);
    assert_eq!(store.calls(ObjectOp::Put), 0, "no manifest");
    let err = verifier(&store).select(&Selection::Latest).await.expect_err("no backup");
    assert!(matches!(err, VerifyError::NoBackup(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_completion_aborts_the_upload_and_writes_no_manifest() {
    let store = MemoryObjects::default();
    store.fail(ObjectOp::CompleteUpload, 1);
    let err = back_up(&backup(&store), &plan("app", at(0), "a1"), &dump_bytes(2 * PART)).await.expect_err("refused");

    assert!(err.to_string().contains("CompleteMultipartUpload"), "{err}");
    assert_nothing_stored(&store);
    assert_eq!((store.calls(ObjectOp::AbortUpload), store.calls(ObjectOp::Put)), (1, 0));
}

#[tokio::test]
async fn an_empty_dump_is_refused_and_its_upload_aborted() {
    let store = MemoryObjects::default();
    let err = back_up(&backup(&store), &plan("app", at(0), "a1"), b"").await.expect_err("empty");

    assert!(matches!(err, BackupError::EmptyDump), "{err:?}");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::UploadPart), 0);
}

#[tokio::test]
async fn a_dump_that_outlives_its_time_budget_is_aborted() {
    let store = MemoryObjects::default();
    let b = &backup(&store);
    let plan = &plan("app", at(0), "a1");
    // One part arrives, then pg_dump stalls; the budget is already spent.
    let stalled = b.store_backup(plan, Some(Duration::ZERO), |upload_id| async move {
        b.store.upload_part(&plan.key, &upload_id, 1, dump_bytes(PART).into()).await?;
        std::future::pending::<Result<Dumped, BackupError>>().await
    });
    // Only a guard: without a budget the dump would never end.
    let err = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("the budget ends the stalled dump")
        .expect_err("out of time");

    assert!(matches!(err, BackupError::OutOfTime { seconds: 0 }), "{err:?}");
    assert_eq!(err.kind(), "Timeout");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::UploadPart), 1);
}

#[test]
fn a_backup_starting_within_the_margin_of_its_deadline_is_out_of_time() {
    let margin = Duration::from_secs(30);
    assert!(time_budget(None, margin).expect("no deadline").is_none());
    let err = time_budget(Some(Instant::now() + Duration::from_secs(29)), margin).expect_err("too late");
    assert!(matches!(err, BackupError::OutOfTime { seconds: 0 }), "{err:?}");
    let budget = time_budget(Some(Instant::now() + Duration::from_secs(100)), margin).expect("time left");
    assert!(budget.is_some_and(|b| b <= Duration::from_secs(70) && b > Duration::from_secs(60)), "{budget:?}");
}

#[tokio::test]
async fn the_newest_dump_with_a_manifest_is_tested_and_a_dump_without_one_is_skipped() {
    let store = MemoryObjects::default();
    let b = backup(&store);
    let older = back_up(&b, &plan("app", at(2), "older"), &dump_bytes(PART)).await.expect("older backup");
    // The newest dump is complete but its manifest could not be written: not a backup.
    store.fail(ObjectOp::Put, 2);
    let newest = plan("app", at(1), "newest");
    back_up(&b, &newest, &dump_bytes(PART)).await.expect_err("no manifest");
    assert!(store.object(&newest.key).is_some() && store.object(&manifest_key(&newest.key)).is_none());

    let v = verifier(&store);
    let (_, picked) = v.select(&Selection::Latest).await.expect("a backup");
    assert_eq!(picked, older);
    let err = v.select(&Selection::Key(newest.key.clone())).await.expect_err("named, no manifest");
    assert!(matches!(err, VerifyError::NoManifest(_)), "{err:?}");
    assert!(err.to_string().contains("has no manifest"), "{err}");
    let err = v.select(&Selection::Key("elsewhere/app.dump".into())).await.expect_err("not under the prefix");
    assert!(matches!(err, VerifyError::InvalidRequest(_)), "{err:?}");
}

/// Stores a complete backup of `body` taken at `started_at`, as scheduled-backup would.
fn seed(store: &MemoryObjects, database: &str, started_at: DateTime<Utc>, body: &[u8]) -> Manifest {
    let plan = plan(database, started_at, &format!("{}", started_at.timestamp()));
    let streamed =
        ops_shared::backup::dump::Streamed { size: body.len() as u64, sha256: sha256(body), parts: Vec::new() };
    let manifest = plan.manifest(Dumped { tables: tables(), streamed, warnings: Vec::new() }, PART);
    store.insert(&manifest.key, body, started_at);
    store.insert(&manifest_key(&manifest.key), serde_json::to_vec(&manifest).expect("json"), started_at);
    manifest
}

/// A safety backup `opsctl dr restore` took, and backups of other databases in the same
/// bucket, are never the restore test's "latest" or "random" when it knows its database.
#[tokio::test]
async fn the_test_picks_among_its_own_databases_backups_and_never_a_safety_backup() {
    let store = MemoryObjects::default();
    let own = seed(&store, "alpha", at(3), b"alpha");
    let other = seed(&store, "zeta", at(2), b"zeta, another server's");
    let mut safety = plan("alpha", at(1), "pre-restore-1a2b3c4d");
    safety.label = Some(ops_shared::backup::SAFETY_LABEL.to_owned());
    let streamed = ops_shared::backup::dump::Streamed { size: 6, sha256: sha256(b"safety"), parts: Vec::new() };
    let safety = safety.manifest(Dumped { tables: tables(), streamed, warnings: Vec::new() }, PART);
    store.insert(&safety.key, b"safety", at(1));
    store.insert(&manifest_key(&safety.key), serde_json::to_vec(&safety).expect("json"), at(1));

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

fn report_of_backup_started(started_at: DateTime<Utc>) -> ops_shared::backup::RestoreReport {
    let plan = plan("app", started_at, "a1");
    let streamed = ops_shared::backup::dump::Streamed { size: 1, sha256: "00".into(), parts: Vec::new() };
    let manifest = plan.manifest(Dumped { tables: tables(), streamed, warnings: Vec::new() }, PART);
    let config = verifier_config();
    ops_shared::backup::RestoreReport::new(&manifest, config.rto, config.rpo)
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
