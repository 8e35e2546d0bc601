//! The restore test: pick a backup, verify its bytes against the manifest, restore it into a
//! scratch database, compare row counts, run the validation queries, measure RTO and RPO,
//! always drop the scratch database, file a report and tell ops.

mod checks;
mod download;
mod pg_restore;
mod scratch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::config::VerifierConfig;
use super::error::VerifyError;
use super::report::RestoreReport;
use crate::adapters::objects::ObjectStore;
use crate::adapters::pgtools::PgTool;
use crate::adapters::postgres::{DbCredentials, DbError, connect_with_secret, describe, quote_ident};
use crate::adapters::secrets::SecretCache;
use crate::domain::alert::{Alert, AlertSink, Severity};
use crate::domain::backup::manifest::{MANIFEST_SUFFIX, Manifest, manifest_key, normalise_prefix};
use crate::runtime::lambda::FunctionError;
use crate::runtime::telemetry::{Metrics, Unit};
use checks::{count_rows, run_validation};
use download::{download, file_name, read_all};
use scratch::{SCRATCH_PREFIX, SCRATCH_TIME, drop_abandoned_scratch};

use pg_restore::pg_restore;
pub use pg_restore::{Target, pick_pg_restore};

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

/// The metric record of a restore test that ran: `RestoreTestPassed` (1 or 0), `RtoMs` (the
/// whole test, download to checks) and `BackupAgeHours` (the age of the backup it restored).
pub fn report_metrics(passed: bool, rto_ms: u64, backup_age_hours: f64) -> Metrics {
    Metrics::new("CineView/Ops")
        .dimension("Function", SOURCE)
        .value("RestoreTestPassed", if passed { 1.0 } else { 0.0 }, Unit::Count)
        .value("RtoMs", rto_ms as f64, Unit::Milliseconds)
        .value("BackupAgeHours", backup_age_hours, Unit::None)
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
                report_metrics(report.passed(), report.rto_ms, report.backup_age_hours).emit();
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
        let mut dropped = admin.batch_execute(&drop).await.map_err(|e| describe(&e));
        if dropped.is_err() {
            dropped = match staging.connect(config.database_timeout).await {
                Ok(fresh) => fresh.batch_execute(&drop).await.map_err(|e| describe(&e)),
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
            report.check("pg_restore succeeds", false, problem.to_string());
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
