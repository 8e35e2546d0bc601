//! Backups as scheduled-backup stores them and a restore test reads them, in an in-memory
//! bucket: the fixtures of the backup and restore-test decisions.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sha2::Digest;

use super::{MemoryObjects, RecordingAlerts, offline_secrets};
use crate::backup::dump::Streamed;
use crate::backup::{Backup, BackupConfig, BackupSource, Compression, Dumped, Manifest, Plan, Scope, TableCount};
use crate::backup::{dump_key, manifest_key};
use crate::restore::{Verifier, VerifierConfig, default_validation_queries};

/// Where the fixtures store backups.
pub const PREFIX: &str = "backups/";
/// Small parts, so a dump of a few kilobytes is several of them.
pub const PART: usize = 1024;
pub const HOUR: Duration = Duration::from_secs(3600);

/// A backup run whose secrets are offline: it stores what it is given, and any step that
/// would read the database fails.
pub fn backup(store: &MemoryObjects) -> Backup<MemoryObjects, RecordingAlerts> {
    Backup {
        store: store.clone(),
        alerts: RecordingAlerts::default(),
        secrets: Arc::new(offline_secrets()),
        http: reqwest::Client::new(),
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

/// A restore test whose secrets are offline: a restore it should not attempt is an error,
/// not a report.
pub fn verifier(store: &MemoryObjects) -> Verifier<MemoryObjects, RecordingAlerts> {
    Verifier {
        store: store.clone(),
        alerts: RecordingAlerts::default(),
        secrets: Arc::new(offline_secrets()),
        config: verifier_config(),
    }
}

pub fn verifier_config() -> VerifierConfig {
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

/// The plan of a backup of `database` on a PostgreSQL 15 server.
pub fn plan(database: &str, started_at: DateTime<Utc>, backup_id: &str) -> Plan {
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
        database_bytes: Some(1_000_000_000),
    }
}

pub fn tables() -> Vec<TableCount> {
    vec![TableCount { schema: "auth".into(), table: "users".into(), rows: 50 }]
}

/// What pg_dump would write: `len` bytes that differ from part to part.
pub fn dump_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The moment a plan starts, `hours_before` a fixed time.
pub fn at(hours_before: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).single().unwrap_or_default() - chrono::Duration::hours(hours_before)
}

/// The manifest of `plan` for a dump of `body`.
pub fn manifest(plan: &Plan, body: &[u8]) -> Manifest {
    let streamed = Streamed { size: body.len() as u64, sha256: sha256(body), parts: Vec::new() };
    plan.manifest(Dumped { tables: tables(), streamed, warnings: Vec::new() }, PART)
}

/// Stores `plan`'s dump of `body` and its manifest, as scheduled-backup would.
pub fn put_backup(store: &MemoryObjects, plan: &Plan, body: &[u8]) -> Manifest {
    let manifest = manifest(plan, body);
    store.insert(&manifest.key, body, plan.started_at);
    let json = serde_json::to_vec(&manifest).unwrap_or_default();
    store.insert(&manifest_key(&manifest.key), json, plan.started_at);
    manifest
}

/// Stores a complete backup of `body` taken at `started_at`.
pub fn seed(objects: &MemoryObjects, database: &str, started_at: DateTime<Utc>, body: &[u8]) -> Manifest {
    put_backup(objects, &plan(database, started_at, &started_at.timestamp().to_string()), body)
}
