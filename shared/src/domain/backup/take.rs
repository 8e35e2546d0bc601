//! The nightly (or pre-deploy) backup: checks, dump, upload, manifest last, alerts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::manifest::{BackupSource, Manifest, dump_key, manifest_key};
use super::plan::{Dumped, Plan};
use super::scope::Scope;
use crate::adapters::objects::ObjectStore;
use crate::adapters::pgtools::{PgTool, PgTools, Tool};
use crate::adapters::postgres::{DbCredentials, connect_with_secret, database_bytes, server_version};
use crate::adapters::secrets::SecretCache;
use crate::domain::alert::{Alert, AlertSink, Severity};
use crate::runtime::lambda::FunctionError;
use crate::runtime::telemetry::{Metrics, Unit};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::config::{BackupConfig, Compression};
use super::dump::{count_rows, dump_to_upload, export_snapshot};
use super::error::BackupError;
use super::platform::{is_fresh, latest_platform_backup};

pub const SOURCE: &str = "scheduled-backup";

pub struct Backup<S, A> {
    pub store: S,
    pub alerts: A,
    pub secrets: Arc<SecretCache>,
    pub http: reqwest::Client,
    pub config: BackupConfig,
}

/// What the function returns: the manifest's essentials and the platform check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupSummary {
    pub key: String,
    pub backup_id: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub duration_ms: u64,
    pub tables: usize,
    pub rows: i64,
    pub platform_backups: String,
    /// Missing from the summaries of functions deployed before it was reported.
    #[serde(default)]
    pub phases: BackupPhases,
}

/// Where a backup's time went, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupPhases {
    /// The secret, the connection, pg_dump's version and the exported snapshot.
    pub open_ms: u64,
    /// From CreateMultipartUpload until pg_dump has exited, its last part is uploaded and the
    /// row counts are in.
    pub dump_ms: u64,
    /// The row counts in the snapshot, taken beside the dump.
    pub counts_ms: u64,
    /// CompleteMultipartUpload.
    pub complete_ms: u64,
    /// Writing the manifest, which makes the dump a backup.
    pub manifest_ms: u64,
}

/// The metric record of a backup taken: `BackupSucceeded` 1, its duration, size and throughput.
pub fn succeeded_metrics(size_bytes: u64, elapsed: Duration) -> Metrics {
    let seconds = elapsed.as_secs_f64().max(0.001);
    Metrics::new("CineView/Ops")
        .dimension("Function", SOURCE)
        .value("BackupSucceeded", 1.0, Unit::Count)
        .value("BackupDurationMs", millis(elapsed) as f64, Unit::Milliseconds)
        .value("BackupSizeBytes", size_bytes as f64, Unit::Bytes)
        .value("BackupThroughput", size_bytes as f64 / seconds, Unit::BytesPerSecond)
}

/// The metric record of a backup that failed: `BackupSucceeded` 0.
pub fn failed_metrics() -> Metrics {
    Metrics::new("CineView/Ops").dimension("Function", SOURCE).value("BackupSucceeded", 0.0, Unit::Count)
}

fn millis(elapsed: Duration) -> u64 {
    elapsed.as_millis() as u64
}

/// Whether `label` may name a backup: it becomes part of the object key.
pub fn valid_label(label: &str) -> bool {
    (1..=40).contains(&label.len()) && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The database to back up, and the pg_dump that suits its server.
struct Source {
    creds: DbCredentials,
    client: tokio_postgres::Client,
    server_version: String,
    pg_dump: PgTool,
    pg_dump_version: String,
    compression: Compression,
    /// Why `compression` is not what DUMP_COMPRESSION asks for, if it is not.
    compression_warning: Option<String>,
    scope: Scope,
    /// The database secret's ARN (as configured when Secrets Manager named none): what the
    /// manifest records, so that a backup taken with the secret's name and one taken with its
    /// ARN are known as the same database's.
    secret: String,
    database_bytes: Option<u64>,
}

/// The time the backup may take: `None` without a deadline; out of time when the deadline is
/// closer than `margin` already.
pub fn time_budget(deadline: Option<Instant>, margin: Duration) -> Result<Option<Duration>, BackupError> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    match deadline.checked_duration_since(Instant::now()).and_then(|d| d.checked_sub(margin)) {
        Some(budget) => Ok(Some(budget)),
        None => Err(BackupError::OutOfTime { seconds: 0 }),
    }
}

impl<S: ObjectStore, A: AlertSink> Backup<S, A> {
    /// Takes a backup; on failure publishes a critical alert with the reason.
    pub async fn run(
        &self,
        label: Option<String>,
        deadline: Option<Instant>,
    ) -> Result<(Manifest, BackupSummary), BackupError> {
        let started = Instant::now();
        let result = self.backup(label, deadline).await;
        let elapsed = started.elapsed();
        let platform_backups = self.check_platform().await;
        match result {
            Ok((manifest, phases)) => {
                let summary = self.succeeded(&manifest, elapsed, platform_backups, phases);
                Ok((manifest, summary))
            }
            Err(err) => {
                self.failed(&err, elapsed).await;
                Err(err)
            }
        }
    }

    /// Metrics and the summary of a backup taken.
    fn succeeded(
        &self,
        manifest: &Manifest,
        elapsed: Duration,
        platform_backups: String,
        phases: BackupPhases,
    ) -> BackupSummary {
        succeeded_metrics(manifest.size_bytes, elapsed).emit();
        let ms = millis(elapsed);
        // Flat fields: the JSON log layer writes no nested ones (see `crate::runtime::phases`).
        tracing::info!(
            key = %manifest.key,
            size = manifest.size_bytes,
            ms,
            phases_ms.open = phases.open_ms,
            phases_ms.dump = phases.dump_ms,
            phases_ms.counts = phases.counts_ms,
            phases_ms.complete = phases.complete_ms,
            phases_ms.manifest = phases.manifest_ms,
            "backup complete"
        );
        BackupSummary {
            key: manifest.key.clone(),
            backup_id: manifest.backup_id.clone(),
            size_bytes: manifest.size_bytes,
            sha256: manifest.sha256.clone(),
            duration_ms: ms,
            tables: manifest.tables.len(),
            rows: manifest.total_rows(),
            platform_backups,
            phases,
        }
    }

    /// Metrics and a critical alert naming the reason.
    async fn failed(&self, err: &BackupError, elapsed: Duration) {
        failed_metrics().emit();
        tracing::error!(error = %err, "backup failed");
        let database = &self.config.database_secret_arn;
        let alert = Alert::new(SOURCE, Severity::Critical, format!("{SOURCE}:{database}"), "Database backup failed")
            .summary(format!(
                "The backup of {database} failed: {err}. No manifest was written, so this is not a backup; \
                 the upload was aborted."
            ))
            .detail("database_secret", database.clone())
            .detail("bucket", self.config.bucket.clone())
            .detail("error_type", err.kind())
            .detail("elapsed_ms", millis(elapsed));
        if let Err(publish) = self.alerts.publish(&alert).await {
            tracing::error!(error = %publish, "the backup failure alert could not be published");
        }
    }

    async fn backup(
        &self,
        label: Option<String>,
        deadline: Option<Instant>,
    ) -> Result<(Manifest, BackupPhases), BackupError> {
        let started = Instant::now();
        let source = &self.open_source().await?;
        let budget = time_budget(deadline, self.config.deadline_margin)?;
        let snapshot = export_snapshot(&source.client).await?;
        let plan = &self.plan(label, source, snapshot);
        let open_ms = millis(started.elapsed());
        let part_size = self.config.part_size;
        let counts_ms = &AtomicU64::new(0);
        let (manifest, phases) = self
            .store_backup(plan, budget, |upload_id| async move {
                let counts = async {
                    let counting = Instant::now();
                    let counted = count_rows(&source.client, &plan.scope).await;
                    counts_ms.store(millis(counting.elapsed()), Ordering::Relaxed);
                    counted
                };
                let (counts, dumped) = tokio::join!(
                    counts,
                    dump_to_upload(&self.store, plan, &upload_id, &source.pg_dump, &source.creds, part_size)
                );
                let (tables, (streamed, mut warnings)) = (counts?, dumped?);
                warnings.splice(0..0, source.compression_warning.clone());
                // pg_dump is done with the snapshot: end its transaction.
                let _ = source.client.batch_execute("COMMIT").await;
                Ok(Dumped { tables, streamed, warnings })
            })
            .await?;
        let phases = BackupPhases { open_ms, counts_ms: counts_ms.load(Ordering::Relaxed), ..phases };
        Ok((manifest, phases))
    }

    /// Connects to the database and picks the pg_dump for its server, before anything is uploaded.
    async fn open_source(&self) -> Result<Source, BackupError> {
        let config = &self.config;
        let (creds, client) =
            connect_with_secret::<BackupError>(&self.secrets, &config.database_secret_arn, config.database_timeout)
                .await?;
        let (server_major, server_version) = server_version(&client).await?;
        // Checked before anything is uploaded: pg_dump must be at least the server's major.
        let pg_dump = PgTools::open(&config.pg_tools_dir)?.pick(Tool::PgDump, server_major)?;
        let pg_dump_version = pg_dump.version().await?;
        let (compression, compression_warning) = config.compression.for_pg_dump(pg_dump.major);
        if let Some(warning) = &compression_warning {
            tracing::warn!("{warning}");
        }
        // Before anything is uploaded too: a table the dump needs and cannot read.
        let scope = Scope::of(&client).await?;
        let database_bytes = database_bytes(&client).await;
        // Read a moment ago: from the cache.
        let secret = match self.secrets.get(&config.database_secret_arn).await {
            Ok(value) => value.arn.unwrap_or_else(|| config.database_secret_arn.clone()),
            Err(_) => config.database_secret_arn.clone(),
        };
        Ok(Source {
            creds,
            client,
            server_version,
            pg_dump,
            pg_dump_version,
            compression,
            compression_warning,
            scope,
            secret,
            database_bytes,
        })
    }

    /// Names the backup (its id and key) at its start.
    fn plan(&self, label: Option<String>, source: &Source, snapshot: String) -> Plan {
        let started_at = Utc::now();
        let short_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let backup_id = match &label {
            Some(label) => format!("{label}-{short_id}"),
            None => short_id,
        };
        Plan {
            key: dump_key(&self.config.prefix, &source.creds.dbname, started_at, &backup_id),
            backup_id,
            label,
            database: source.creds.dbname.clone(),
            server_version: source.server_version.clone(),
            pg_dump_version: source.pg_dump_version.clone(),
            compression: source.compression,
            snapshot,
            started_at,
            source: BackupSource {
                host: source.creds.host.clone(),
                port: source.creds.port,
                database: source.creds.dbname.clone(),
                secret: source.secret.clone(),
            },
            scope: source.scope.clone(),
            database_bytes: source.database_bytes,
        }
    }

    /// Takes the planned backup: `dump` streams into a new multipart upload of `plan.key` (it is
    /// given the upload id) within `budget`; then the upload is completed and the manifest
    /// written, last. Whatever fails or runs out of time, the upload is aborted and no manifest
    /// is written: a partial dump is never a backup. Returns the manifest and the time the
    /// dump, the completion and the manifest took.
    pub async fn store_backup<F>(
        &self,
        plan: &Plan,
        budget: Option<Duration>,
        dump: impl FnOnce(String) -> F,
    ) -> Result<(Manifest, BackupPhases), BackupError>
    where
        F: Future<Output = Result<Dumped, BackupError>>,
    {
        let mut phases = BackupPhases::default();
        let dumped = self.dump_and_upload(&plan.key, budget, dump, &mut phases).await?;
        let writing = Instant::now();
        let manifest = self.write_manifest(plan, dumped).await?;
        phases.manifest_ms = millis(writing.elapsed());
        Ok((manifest, phases))
    }

    /// Runs `dump` into a new multipart upload and completes it; aborts it on any failure.
    async fn dump_and_upload<F>(
        &self,
        key: &str,
        budget: Option<Duration>,
        dump: impl FnOnce(String) -> F,
        phases: &mut BackupPhases,
    ) -> Result<Dumped, BackupError>
    where
        F: Future<Output = Result<Dumped, BackupError>>,
    {
        let dumping = Instant::now();
        let upload_id = self.store.start_upload(key).await?;
        let work = dump(upload_id.clone());
        let outcome = match budget {
            None => work.await,
            Some(budget) => tokio::time::timeout(budget, work)
                .await
                .unwrap_or(Err(BackupError::OutOfTime { seconds: budget.as_secs() })),
        };
        phases.dump_ms = millis(dumping.elapsed());
        let completing = Instant::now();
        let completed = match outcome {
            Ok(dumped) => match self.store.complete_upload(key, &upload_id, dumped.streamed.parts.clone()).await {
                Ok(()) => Ok(dumped),
                Err(err) => Err(err.into()),
            },
            Err(err) => Err(err),
        };
        phases.complete_ms = millis(completing.elapsed());
        if completed.is_err()
            && let Err(abort) = self.store.abort_upload(key, &upload_id).await
        {
            tracing::error!(
                error = %abort,
                "could not abort the multipart upload; the bucket lifecycle removes it after a day"
            );
        }
        completed
    }

    /// The manifest, beside the dump: what makes the dump a backup.
    async fn write_manifest(&self, plan: &Plan, dumped: Dumped) -> Result<Manifest, BackupError> {
        let manifest = plan.manifest(dumped, self.config.part_size);
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Stream(e.to_string()))?;
        self.store.put(&manifest_key(&manifest.key), body, "application/json").await?;
        Ok(manifest)
    }

    /// Supabase's own backups within the RPO; a warning alert when not (or when unknown).
    async fn check_platform(&self) -> String {
        let Some(check) = &self.config.supabase else {
            return "not configured".to_owned();
        };
        let latest = match self.secrets.get(&check.token_secret_arn).await {
            Err(err) => Err(err.to_string()),
            Ok(token) => latest_platform_backup(&self.http, &check.api_url, &check.project_ref, &token.value).await,
        };
        let rpo_hours = self.config.rpo.as_secs() / 3600;
        let problem = match &latest {
            Ok(latest) if is_fresh(*latest, Utc::now(), self.config.rpo) => {
                return format!("fresh (latest {})", latest.map(|t| t.to_rfc3339()).unwrap_or_default());
            }
            Ok(Some(at)) => {
                format!("the newest completed Supabase backup is from {at}, older than the {rpo_hours} h RPO")
            }
            Ok(None) => "Supabase lists no completed backup".to_owned(),
            Err(err) => format!("Supabase's backups could not be checked: {err}"),
        };
        let alert = Alert::new(
            SOURCE,
            Severity::Warning,
            format!("{SOURCE}:platform:{}", check.project_ref),
            "Supabase platform backups are not fresh",
        )
        .summary(format!("{problem}. Our own dumps continue; check the project's backup settings."))
        .detail("project_ref", check.project_ref.clone())
        .detail("rpo_hours", rpo_hours);
        if let Err(err) = self.alerts.publish(&alert).await {
            tracing::error!(error = %err, "the platform backup alert could not be published");
        }
        problem
    }
}
