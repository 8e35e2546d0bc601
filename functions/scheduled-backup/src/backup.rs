//! The nightly (or pre-deploy) backup: checks, dump, upload, manifest last, alerts.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{Manifest, dump_key, manifest_key};
use ops_shared::objects::ObjectStore;
use ops_shared::pgtools::{PgTools, Tool};
use ops_shared::postgres::{connect_with_secret, server_version};
use ops_shared::telemetry::{Metrics, Unit};
use ops_shared::{FunctionError, SecretCache};
use serde::Serialize;

use crate::config::BackupConfig;
use crate::dump::{count_rows, dump_to_upload, export_snapshot};
use crate::error::BackupError;
use crate::platform::{is_fresh, latest_platform_backup};

pub const SOURCE: &str = "scheduled-backup";

pub struct Backup<S, A> {
    pub store: S,
    pub alerts: A,
    pub secrets: Arc<SecretCache>,
    pub http: reqwest::Client,
    pub config: BackupConfig,
}

/// What the function returns: the manifest's essentials and the platform check.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub key: String,
    pub backup_id: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub duration_ms: u64,
    pub tables: usize,
    pub rows: i64,
    pub platform_backups: String,
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
            Ok(manifest) => {
                let seconds = elapsed.as_secs_f64().max(0.001);
                Metrics::new("CineView/Ops")
                    .dimension("Function", SOURCE)
                    .value("BackupSucceeded", 1.0, Unit::Count)
                    .value("BackupDurationMs", elapsed.as_millis() as f64, Unit::Milliseconds)
                    .value("BackupSizeBytes", manifest.size_bytes as f64, Unit::Bytes)
                    .value("BackupThroughput", manifest.size_bytes as f64 / seconds, Unit::BytesPerSecond)
                    .emit();
                tracing::info!(key = %manifest.key, size = manifest.size_bytes, ms = elapsed.as_millis() as u64, "backup complete");
                let summary = BackupSummary {
                    key: manifest.key.clone(),
                    backup_id: manifest.backup_id.clone(),
                    size_bytes: manifest.size_bytes,
                    sha256: manifest.sha256.clone(),
                    duration_ms: elapsed.as_millis() as u64,
                    tables: manifest.tables.len(),
                    rows: manifest.total_rows(),
                    platform_backups,
                };
                Ok((manifest, summary))
            }
            Err(err) => {
                Metrics::new("CineView/Ops")
                    .dimension("Function", SOURCE)
                    .value("BackupSucceeded", 0.0, Unit::Count)
                    .emit();
                tracing::error!(error = %err, "backup failed");
                let alert = Alert::new(SOURCE, Severity::Critical, format!("{SOURCE}:{}", self.config.database_secret_arn), "Database backup failed")
                    .summary(format!(
                        "The backup of {} failed: {err}. No manifest was written, so this is not a backup; the upload was aborted.",
                        self.config.database_secret_arn
                    ))
                    .detail("database_secret", self.config.database_secret_arn.clone())
                    .detail("bucket", self.config.bucket.clone())
                    .detail("error_type", err.kind())
                    .detail("elapsed_ms", elapsed.as_millis() as u64);
                if let Err(publish) = self.alerts.publish(&alert).await {
                    tracing::error!(error = %publish, "the backup failure alert could not be published");
                }
                Err(err)
            }
        }
    }

    async fn backup(&self, label: Option<String>, deadline: Option<Instant>) -> Result<Manifest, BackupError> {
        let config = &self.config;
        let (creds, client) =
            connect_with_secret::<BackupError>(&self.secrets, &config.database_secret_arn, config.database_timeout)
                .await?;
        let (server_major, server_version) = server_version(&client).await?;
        // Checked before anything is uploaded: pg_dump must be at least the server's major.
        let pg_dump = PgTools::open(&config.pg_tools_dir)?.pick(Tool::PgDump, server_major)?;
        let pg_dump_version = pg_dump.version().await?;
        let budget = match deadline {
            None => None,
            Some(deadline) => match deadline
                .checked_duration_since(Instant::now())
                .and_then(|d| d.checked_sub(config.deadline_margin))
            {
                Some(budget) => Some(budget),
                None => return Err(BackupError::OutOfTime { seconds: 0 }),
            },
        };

        let snapshot = export_snapshot(&client).await?;
        let started_at = Utc::now();
        let short_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let backup_id = match &label {
            Some(label) => format!("{label}-{short_id}"),
            None => short_id,
        };
        let key = dump_key(&config.prefix, &creds.dbname, started_at, &backup_id);
        let upload_id = self.store.start_upload(&key).await?;

        let work = async {
            let (counts, dumped) = tokio::join!(
                count_rows(&client),
                dump_to_upload(&self.store, &key, &upload_id, &pg_dump, &creds, &snapshot, config.part_size)
            );
            Ok::<_, BackupError>((counts?, dumped?))
        };
        let outcome = match budget {
            None => work.await,
            Some(budget) => tokio::time::timeout(budget, work)
                .await
                .unwrap_or(Err(BackupError::OutOfTime { seconds: budget.as_secs() })),
        };
        let outcome = match outcome {
            Ok((tables, (streamed, warnings))) => {
                let parts = streamed.parts.len() as u32;
                match self.store.complete_upload(&key, &upload_id, streamed.parts.clone()).await {
                    Ok(()) => Ok((tables, streamed, warnings, parts)),
                    Err(err) => Err(err.into()),
                }
            }
            Err(err) => Err(err),
        };
        let (tables, streamed, warnings, parts) = match outcome {
            Ok(done) => done,
            Err(err) => {
                if let Err(abort) = self.store.abort_upload(&key, &upload_id).await {
                    tracing::error!(error = %abort, "could not abort the multipart upload; the bucket lifecycle removes it after a day");
                }
                return Err(err);
            }
        };
        let _ = client.batch_execute("COMMIT").await;

        let manifest = Manifest {
            version: 1,
            backup_id,
            label,
            database: creds.dbname.clone(),
            key: key.clone(),
            format: "pg_dump custom".to_owned(),
            server_version,
            pg_dump_version,
            started_at,
            finished_at: Utc::now(),
            size_bytes: streamed.size,
            sha256: streamed.sha256,
            snapshot,
            part_size_bytes: config.part_size as u64,
            parts,
            tables,
            warnings,
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Stream(e.to_string()))?;
        self.store.put(&manifest_key(&key), body, "application/json").await?;
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
