//! The restore test: pick a backup, verify its bytes against the manifest, restore it into a
//! scratch database, compare row counts, run the validation queries, measure RTO and RPO,
//! always drop the scratch database, file a report and tell ops.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::alert::{Alert, AlertSink, Severity};
use crate::domain::backup::{MANIFEST_SUFFIX, Manifest, Platform, RestoreReport, TableCount, manifest_key, normalise_prefix};
use crate::adapters::objects::{Bytes, ObjectStore};
use crate::adapters::pgtools::{PgTool, PgTools, Tool, major_of};
use crate::adapters::postgres::{DbCredentials, DbError, connect_with_secret, quote_ident, quote_literal, server_version};
use crate::runtime::telemetry::{Metrics, Unit};
use crate::adapters::secrets::SecretCache;
use crate::runtime::lambda::FunctionError;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::config::{ValidationQuery, VerifierConfig};
use super::error::VerifyError;

pub const SOURCE: &str = "restore-verifier";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Latest,
    Random,
    Key(String),
}

impl Selection {
    /// `latest` (also empty or absent), `random`, or a backup's key.
    pub fn parse(text: Option<&str>) -> Selection {
        match text.map(str::trim) {
            None | Some("") | Some("latest") => Selection::Latest,
            Some("random") => Selection::Random,
            Some(key) => Selection::Key(key.to_owned()),
        }
    }
}

pub struct Verifier<S, A> {
    pub store: S,
    pub alerts: A,
    pub secrets: Arc<SecretCache>,
    pub config: VerifierConfig,
}

impl<S: ObjectStore, A: AlertSink> Verifier<S, A> {
    /// Runs a restore test and files its report. A test that ran returns its report, passed or
    /// not (a failed one alerts critical); an error means no test could be run (also critical).
    pub async fn run(&self, selection: Selection, deadline: Option<Instant>) -> Result<RestoreReport, VerifyError> {
        match self.verify(selection, deadline).await {
            Ok(mut report) => {
                if !report.passed() {
                    tracing::warn!(backup = %report.backup_key, failures = ?report.failures, "restore test failed");
                }
                report.report_key = format!(
                    "{}{}/{}-{}.json",
                    normalise_prefix(&self.config.report_prefix),
                    report.verified_at.format("%Y/%m"),
                    report.verified_at.format("%Y%m%dT%H%M%SZ"),
                    report.backup_id
                );
                let body = serde_json::to_vec_pretty(&report).map_err(|e| VerifyError::Io(e.to_string()))?;
                let stored = self.store.put(&report.report_key, body, "application/json").await;
                Metrics::new("CineView/Ops")
                    .dimension("Function", SOURCE)
                    .value("RestoreTestPassed", if report.passed() { 1.0 } else { 0.0 }, Unit::Count)
                    .value("RtoMs", report.rto_ms as f64, Unit::Milliseconds)
                    .value("BackupAgeHours", report.backup_age_hours, Unit::None)
                    .emit();
                self.publish(&self.report_alert(&report)).await;
                stored?;
                Ok(report)
            }
            Err(err) => {
                let alert = Alert::new(
                    SOURCE,
                    Severity::Critical,
                    format!("{SOURCE}:{}", self.config.bucket),
                    "Restore test could not run",
                )
                .summary(format!("The monthly restore test could not run: {err}."))
                .detail("bucket", self.config.bucket.clone())
                .detail("error_type", err.kind());
                self.publish(&alert).await;
                Err(err)
            }
        }
    }

    async fn publish(&self, alert: &Alert) {
        if let Err(err) = self.alerts.publish(alert).await {
            tracing::error!(error = %err, "the restore-test alert could not be published");
        }
    }

    fn report_alert(&self, report: &RestoreReport) -> Alert {
        let figures = format!(
            "RTO {:.1} min (target {} min), backup age {:.1} h (target {} h), {} tables, {} rows, {} bytes",
            report.rto_ms as f64 / 60_000.0,
            report.rto_target_ms / 60_000,
            report.backup_age_hours,
            report.rpo_target_hours,
            report.tables,
            report.rows,
            report.size_bytes
        );
        let dedup = format!("{SOURCE}:{}", report.database);
        let alert = if report.passed() {
            Alert::new(SOURCE, Severity::Info, dedup, format!("Backup/restore successful: {}", report.database))
                .summary(format!("Backup {} restored and verified. {figures}.", report.backup_key))
        } else {
            Alert::new(SOURCE, Severity::Critical, dedup, format!("Restore test failed: {}", report.database)).summary(
                format!(
                    "Backup {} failed its restore test: {}. {figures}.",
                    report.backup_key,
                    report.failures.join("; ")
                ),
            )
        };
        alert
            .detail("backup_key", report.backup_key.clone())
            .detail("report_key", report.report_key.clone())
            .detail("rto_ms", report.rto_ms)
            .detail("backup_age_hours", report.backup_age_hours)
            .detail("scratch_dropped", report.scratch_dropped)
    }

    /// The manifest of the backup to test.
    pub async fn select(&self, selection: &Selection) -> Result<(String, Manifest), VerifyError> {
        let prefix = normalise_prefix(&self.config.prefix);
        match selection {
            Selection::Key(key) => {
                if !key.starts_with(&prefix) {
                    return Err(VerifyError::InvalidRequest(format!("{key:?} is not under {prefix:?}")));
                }
                let manifest = manifest_key(key);
                let listed = self.store.list(&manifest).await?;
                if !listed.iter().any(|o| o.key == manifest) {
                    return Err(VerifyError::NoManifest(key.clone()));
                }
                let read = self.read_manifest(&manifest).await?;
                Ok((manifest, read))
            }
            Selection::Latest | Selection::Random => {
                let mut manifests: Vec<_> =
                    self.store.list(&prefix).await?.into_iter().filter(|o| o.key.ends_with(MANIFEST_SUFFIX)).collect();
                if *selection == Selection::Random {
                    let cutoff = Utc::now() - chrono::Duration::from_std(self.config.retention).unwrap_or_default();
                    manifests.retain(|o| o.last_modified.is_none_or(|t| t >= cutoff));
                    // Shuffled, then tried from the end: the first that qualifies is a random one.
                    for i in (1..manifests.len()).rev() {
                        manifests.swap(i, rand::random_range(0..=i));
                    }
                } else {
                    // File names start with the backup's start time, so they sort by age.
                    manifests.sort_by(|a, b| file_name(&a.key).cmp(file_name(&b.key)));
                }
                while let Some(candidate) = manifests.pop() {
                    let manifest = self.read_manifest(&candidate.key).await?;
                    if self.serves(&manifest) {
                        return Ok((candidate.key, manifest));
                    }
                }
                Err(VerifyError::NoBackup(prefix.clone()))
            }
        }
    }

    /// Whether a backup is one the test picks by itself: the production database's (when the
    /// configuration names its secret), and not a safety backup taken before a disaster
    /// recovery's restore.
    fn serves(&self, manifest: &Manifest) -> bool {
        !manifest.is_safety_backup()
            && self.config.database_secret_arn.as_deref().is_none_or(|secret| manifest.is_from_secret(secret))
    }

    async fn read_manifest(&self, key: &str) -> Result<Manifest, VerifyError> {
        let bytes = read_all(&self.store, key).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| VerifyError::BadManifest { key: key.to_owned(), problem: e.to_string() })
    }

    async fn verify(&self, selection: Selection, deadline: Option<Instant>) -> Result<RestoreReport, VerifyError> {
        let (_, manifest) = self.select(&selection).await?;
        let mut report = RestoreReport::new(&manifest, self.config.rto, self.config.rpo);
        let started = Instant::now();
        let file = tempfile::NamedTempFile::new().map_err(|e| VerifyError::Io(e.to_string()))?;
        self.download_and_check(&manifest, file.path(), &mut report).await?;
        // A dump that is not the one the manifest describes is not restored.
        if report.passed() {
            self.restore_into_scratch(&manifest, file.path(), deadline, &mut report).await?;
        }
        report.judge(started.elapsed(), Utc::now());
        Ok(report)
    }

    /// Downloads the dump to `path` and checks its size and SHA-256 against the manifest.
    pub async fn download_and_check(
        &self,
        manifest: &Manifest,
        path: &std::path::Path,
        report: &mut RestoreReport,
    ) -> Result<(), VerifyError> {
        let started = Instant::now();
        let (size, sha256) = download(&self.store, &manifest.key, path).await?;
        report.download_ms = started.elapsed().as_millis() as u64;
        let size_detail = format!("{size} bytes, manifest {}", manifest.size_bytes);
        report.check("size matches the manifest", size == manifest.size_bytes, size_detail);
        let sha256_detail = format!("{sha256}, manifest {}", manifest.sha256);
        report.check("sha256 matches the manifest", sha256 == manifest.sha256, sha256_detail);
        Ok(())
    }

    /// Restores the dump into a new scratch database on the staging server and checks it, in
    /// the time left before `deadline`; drops the scratch database whatever happened.
    async fn restore_into_scratch(
        &self,
        manifest: &Manifest,
        dump: &std::path::Path,
        deadline: Option<Instant>,
        report: &mut RestoreReport,
    ) -> Result<(), VerifyError> {
        let config = &self.config;
        let (staging, admin) =
            connect_with_secret::<VerifyError>(&self.secrets, &config.staging_secret_arn, config.database_timeout)
                .await?;
        report.abandoned_scratch_dropped = drop_abandoned_scratch(&admin, Utc::now()).await;
        let scratch = format!(
            "{SCRATCH_PREFIX}{}_{}",
            report.verified_at.format(SCRATCH_TIME),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let pg_restore = pick_pg_restore(&config.pg_tools_dir, &admin, manifest).await?;
        admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&scratch))).await.map_err(DbError::query)?;
        report.scratch_database = Some(scratch.clone());
        let mut target = staging.clone();
        target.dbname = scratch.clone();

        let budget = deadline
            .and_then(|d| d.checked_duration_since(Instant::now()))
            .map(|d| d.saturating_sub(Duration::from_secs(60)));
        let jobs = config.restore_jobs;
        let work = self.restore_and_check(&pg_restore, &target, dump, manifest, Target::Empty, jobs, report);
        let finished = match budget {
            None => {
                work.await;
                true
            }
            Some(budget) => tokio::time::timeout(budget, work).await.is_ok(),
        };
        if !finished {
            report.failures.push("the restore did not finish before the Lambda deadline".to_owned());
        }
        // Always, whatever happened above; over a new connection if a long restore outlived
        // the first (a server or a network may close an idle one).
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&scratch));
        let mut dropped = admin.batch_execute(&drop).await.map_err(|e| crate::adapters::postgres::describe(&e));
        if dropped.is_err() {
            dropped = match staging.connect(config.database_timeout).await {
                Ok(fresh) => fresh.batch_execute(&drop).await.map_err(|e| crate::adapters::postgres::describe(&e)),
                Err(err) => Err(err.to_string()),
            };
        }
        report.scratch_dropped = dropped.is_ok();
        if let Err(err) = dropped {
            report.failures.push(format!(
                "scratch database {scratch} could not be dropped: {err}; the next restore test drops it"
            ));
        }
        Ok(())
    }

    /// Restores the dump into `target` with `jobs` parallel jobs and checks it: row counts
    /// against the manifest, then the validation queries; each result lands in `report`.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore_and_check(
        &self,
        pg_restore_tool: &PgTool,
        target: &DbCredentials,
        dump: &std::path::Path,
        manifest: &Manifest,
        kind: Target,
        jobs: u32,
        report: &mut RestoreReport,
    ) {
        let restore_started = Instant::now();
        let restored = pg_restore(pg_restore_tool, target, dump, jobs, kind, manifest.platform).await;
        report.restore_ms = restore_started.elapsed().as_millis() as u64;
        if let Err(problem) = restored {
            report.check("pg_restore succeeds", false, problem);
            return;
        }
        report.check("pg_restore succeeds", true, String::new());
        let checks_started = Instant::now();
        // One connection per restore job: the largest tables are counted side by side.
        let connections = (0..jobs.max(1)).map(|_| target.connect(self.config.database_timeout));
        let connected: Result<Vec<_>, _> = futures::future::join_all(connections).await.into_iter().collect();
        match connected {
            Err(err) => report.check("restored database accepts connections", false, err.to_string()),
            Ok(clients) => {
                let mismatches = count_rows(&clients, &manifest.tables).await;
                let detail = if mismatches.is_empty() {
                    format!("{} tables", manifest.tables.len())
                } else {
                    mismatches.join(", ")
                };
                report.check("row counts match the manifest", mismatches.is_empty(), detail);
                let client = &clients[0];
                for query in &self.config.validation_queries {
                    let (passed, detail) =
                        run_validation(client, query, manifest.started_at, report.rpo_target_hours).await;
                    report.check(&query.name, passed, detail);
                }
            }
        }
        report.checks_ms = checks_started.elapsed().as_millis() as u64;
    }
}

/// Scratch databases are named `restore_test_<UTC time>_<id>`.
const SCRATCH_PREFIX: &str = "restore_test_";
const SCRATCH_TIME: &str = "%Y%m%d%H%M%S";
/// A scratch database older than this (Lambda's longest run) that no session uses was left by
/// a run that was killed: no run is still restoring into it.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Drops the scratch databases that killed runs left on the staging server; returns their names.
/// A failure is logged, not fatal: the test itself can still run.
async fn drop_abandoned_scratch(admin: &tokio_postgres::Client, now: DateTime<Utc>) -> Vec<String> {
    let listed = admin
        .query(
            "SELECT d.datname::text FROM pg_database d WHERE starts_with(d.datname, $1) \
             AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname = d.datname)",
            &[&SCRATCH_PREFIX],
        )
        .await;
    let names: Vec<String> = match listed {
        Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
        Err(err) => {
            tracing::warn!(error = %crate::adapters::postgres::describe(&err), "cannot list left-over scratch databases");
            return Vec::new();
        }
    };
    let mut dropped = Vec::new();
    for name in names.into_iter().filter(|name| scratch_abandoned(name, now)) {
        match admin.batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name))).await {
            Ok(()) => {
                tracing::warn!(database = %name, "dropped a scratch database a killed restore test left");
                dropped.push(name);
            }
            Err(err) => {
                tracing::warn!(database = %name, error = %crate::adapters::postgres::describe(&err), "cannot drop a left-over scratch database")
            }
        }
    }
    dropped
}

/// Whether scratch database `name` was created longer than [`ABANDONED_AFTER`] before `now`.
fn scratch_abandoned(name: &str, now: DateTime<Utc>) -> bool {
    let Some(time) = name.strip_prefix(SCRATCH_PREFIX).and_then(|rest| rest.split('_').next()) else {
        return false;
    };
    chrono::NaiveDateTime::parse_from_str(time, SCRATCH_TIME)
        .is_ok_and(|created| now.naive_utc() - created > ABANDONED_AFTER)
}

/// Counts each table's rows in the restored database, spread over `clients` (largest tables
/// first, each to the connection with the fewest rows to count): the tables whose count
/// differs from the manifest's (or that cannot be counted), described, in the manifest's order.
async fn count_rows(clients: &[tokio_postgres::Client], tables: &[TableCount]) -> Vec<String> {
    let mut by_size: Vec<usize> = (0..tables.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(tables[i].rows));
    let mut shares = vec![(0_i64, Vec::new()); clients.len().max(1)];
    for i in by_size {
        if let Some((rows, share)) = shares.iter_mut().min_by_key(|(rows, _)| *rows) {
            *rows += tables[i].rows;
            share.push(i);
        }
    }
    let counted = clients.iter().zip(&shares).map(|(client, (_, share))| async move {
        let mut found = Vec::new();
        for &i in share {
            found.push((i, count_mismatch(client, &tables[i]).await));
        }
        found
    });
    let mut found: Vec<_> = futures::future::join_all(counted).await.into_iter().flatten().collect();
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().filter_map(|(_, mismatch)| mismatch).collect()
}

/// How `table`'s restored row count differs from the manifest's, if it does.
async fn count_mismatch(client: &tokio_postgres::Client, table: &TableCount) -> Option<String> {
    let sql = format!("SELECT count(*) FROM ONLY {}.{}", quote_ident(&table.schema), quote_ident(&table.table));
    match client.query_one(&sql, &[]).await {
        Ok(row) => {
            let rows: i64 = row.get(0);
            (rows != table.rows)
                .then(|| format!("{}.{}: manifest {}, restored {rows}", table.schema, table.table, table.rows))
        }
        Err(err) => Some(format!("{}.{}: {}", table.schema, table.table, crate::adapters::postgres::describe(&err))),
    }
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

async fn read_all<S: ObjectStore>(store: &S, key: &str) -> Result<Vec<u8>, VerifyError> {
    let body = store.get(key).await?;
    body.collect().await.map_err(|e| VerifyError::Io(format!("reading {key}: {}", e.detail)))
}

/// Streams the object to `path`, returning its size and SHA-256. A blocking thread hashes and
/// writes while the next chunks arrive, in large writes rather than one per chunk.
async fn download<S: ObjectStore>(store: &S, key: &str, path: &std::path::Path) -> Result<(u64, String), VerifyError> {
    let mut body = store.get_dump(key).await?;
    let file = std::fs::File::create(path).map_err(|e| VerifyError::Io(e.to_string()))?;
    let (chunks, mut arriving) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = std::io::BufWriter::with_capacity(1024 * 1024, file);
        let mut hasher = Sha256::new();
        let mut size = 0_u64;
        while let Some(chunk) = arriving.blocking_recv() {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)?;
        }
        file.flush()?;
        Ok::<_, std::io::Error>((size, hex::encode(hasher.finalize())))
    });
    let mut received = Ok(());
    while let Some(chunk) = body.next_chunk().await {
        match chunk {
            // A send fails only when the writer stopped on an error, which it returns below.
            Ok(chunk) => {
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                received = Err(VerifyError::Io(format!("downloading {key}: {}", e.detail)));
                break;
            }
        }
    }
    drop(chunks);
    let written = writer.await.map_err(|e| VerifyError::Io(format!("writing {}: {e}", path.display())))?;
    received?;
    written.map_err(|e| VerifyError::Io(format!("writing {}: {e}", path.display())))
}

/// pg_restore of the oldest major that reads the dump (the major of the pg_dump that wrote
/// it) and suits the server it restores into (at least its major).
pub async fn pick_pg_restore(
    dir: &str,
    staging: &tokio_postgres::Client,
    manifest: &Manifest,
) -> Result<PgTool, VerifyError> {
    let (staging_major, _) = server_version(staging).await?;
    let dump_major = major_of(&manifest.pg_dump_version).unwrap_or(staging_major);
    Ok(PgTools::open(dir)?.pick(Tool::PgRestore, staging_major.max(dump_major))?)
}

/// What a restore goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A database just created for the test.
    Empty,
    /// A database in use (disaster recovery): each object the dump holds is dropped first, and
    /// the restore writes even while `opsctl dr freeze` makes the database read-only. A
    /// Supabase project's gets the app and the users' rows back ([`super::live`]).
    Existing,
}

/// `pg_restore` into `target` with `jobs` parallel jobs (one: in a single transaction, which
/// parallel jobs cannot share), stopping at the first error.
pub async fn pg_restore(
    tool: &PgTool,
    target: &DbCredentials,
    dump: &std::path::Path,
    jobs: u32,
    kind: Target,
    platform: Platform,
) -> Result<(), String> {
    if kind == Target::Existing && platform == Platform::Supabase {
        return super::live::restore(tool, target, dump, jobs).await;
    }
    let program = tool.program().display();
    let libpq = target.libpq_env().map_err(|e| e.to_string())?;
    let parallel = if jobs > 1 { format!("--jobs={jobs}") } else { "--single-transaction".to_owned() };
    let mut command = tool.command();
    let _list = match platform {
        Platform::Postgres => None,
        Platform::Supabase => {
            let list = supabase_list(tool, dump).await?;
            command.arg("--use-list").arg(list.path());
            Some(list)
        }
    };
    if kind == Target::Existing {
        command.args(["--clean", "--if-exists"]).env("PGOPTIONS", "-c default_transaction_read_only=off");
    }
    let output = command
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "--no-password", &parallel])
        .args(["--host", &target.host, "--port", &target.port.to_string(), "--username", &target.username])
        .args(["--dbname", &target.dbname])
        .arg(dump)
        .envs(libpq.vars.iter().cloned())
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let cause = match missing_role(&stderr) {
        Some(role) => format!(
            "the staging server has no role {role:?}, which the dump refers to (in a row-level security policy, \
             for one); create the source database's roles on the staging server first (README: \"Staging server \
             for a Supabase dump\"). "
        ),
        None => String::new(),
    };
    Err(format!("{cause}{program} exited {}: {}", output.status, crate::domain::alert::cut_at_char(stderr.trim(), 4000)))
}

/// The table of contents of a Supabase dump without what every database already has: a dump
/// that names its schemas one by one holds `CREATE SCHEMA public`, which fails in any database.
async fn supabase_list(tool: &PgTool, dump: &std::path::Path) -> Result<tempfile::NamedTempFile, String> {
    let listing = super::live::list(tool, dump).await?;
    let kept: String = listing.lines().filter(|line| !is_public_schema(line)).map(|line| format!("{line}\n")).collect();
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("cannot write the restore list: {e}"))?;
    file.write_all(kept.as_bytes()).map_err(|e| format!("cannot write the restore list: {e}"))?;
    Ok(file)
}

/// A table-of-contents line (`<id>; <catalog> <oid> <type> <schema> <name> <owner>`) that
/// creates schema `public`.
fn is_public_schema(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.get(3..6) == Some(&["SCHEMA", "-", "public"][..])
}

/// The role named in `role "<name>" does not exist`, PostgreSQL's message for a missing role.
fn missing_role(stderr: &str) -> Option<&str> {
    let (_, rest) = stderr.split_once("role \"")?;
    let (role, rest) = rest.split_once('"')?;
    rest.trim_start().starts_with("does not exist").then_some(role)
}

async fn run_validation(
    client: &tokio_postgres::Client,
    query: &ValidationQuery,
    backup_started_at: DateTime<Utc>,
    rpo_hours: u64,
) -> (bool, String) {
    let sql = query
        .sql
        .replace(":backup_started_at", &format!("{}::timestamptz", quote_literal(&backup_started_at.to_rfc3339())))
        .replace(":rpo_hours", &rpo_hours.to_string());
    match client.query_one(&sql, &[]).await {
        Ok(row) => match row.try_get::<_, Option<bool>>(0) {
            Ok(Some(true)) => (true, String::new()),
            Ok(Some(false)) => (false, "returned false".to_owned()),
            Ok(None) => (false, "returned NULL".to_owned()),
            Err(_) => (false, "did not return a boolean".to_owned()),
        },
        Err(err) => (false, crate::adapters::postgres::describe(&err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_schema_is_known_in_a_table_of_contents() {
        assert!(is_public_schema("5; 2615 2200 SCHEMA - public pg_database_owner"));
        assert!(!is_public_schema("6; 2615 16390 SCHEMA - auth supabase_admin"));
        assert!(!is_public_schema("215; 1259 16500 TABLE public profiles postgres"));
        assert!(!is_public_schema(";     Dump Version: 1.16-0"));
    }

    #[test]
    fn only_scratch_databases_older_than_a_run_are_abandoned() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").expect("time").with_timezone(&Utc);
        assert!(scratch_abandoned("restore_test_20261202113000_1a2b3c4d", now));
        assert!(!scratch_abandoned("restore_test_20261202115000_1a2b3c4d", now), "ten minutes: maybe running");
        assert!(!scratch_abandoned("restore_test_notatime_1a2b3c4d", now));
        assert!(!scratch_abandoned("app", now));
    }

    #[test]
    fn a_missing_role_is_named() {
        let stderr = "pg_restore: error: could not execute query: \
                      ERROR:  role \"authenticated\" does not exist\nCommand was: CREATE POLICY";
        assert_eq!(missing_role(stderr), Some("authenticated"));
        assert_eq!(missing_role("ERROR:  role \"x\" already exists"), None);
        assert_eq!(missing_role("ERROR:  relation \"t\" does not exist"), None);
    }
}
