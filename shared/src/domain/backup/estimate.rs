//! How long a backup would take now: the database's size over the rate the last backup of it
//! achieved (database bytes per second), for the handoff decision.

use super::error::BackupError;
use super::manifest::{MANIFEST_SUFFIX, Manifest, normalise_prefix};
use super::take::Backup;
use crate::adapters::objects::ObjectStore;
use crate::adapters::postgres::{connect_with_secret, database_bytes};
use crate::domain::alert::AlertSink;
use crate::domain::handoff::{Estimate, RateSource};

/// Database bytes per second a backup achieves at the template's 1,536 MB (`cargo xtask bench
/// --power`: 161 MB/s with zstd; gzip, PostgreSQL 15 and older, ~64 MB/s): the rate assumed,
/// the slower one to be safe, until a backup of the database has recorded its own.
pub const MEASURED_BYTES_PER_SECOND: f64 = 60_000_000.0;
/// The newest manifests looked at for a rate.
const RECENT: usize = 10;

/// The rate of the backup `manifest` describes, if it recorded its database's size.
fn rate_of(manifest: &Manifest) -> Option<f64> {
    let seconds = (manifest.finished_at - manifest.started_at).num_milliseconds() as f64 / 1000.0;
    let bytes = manifest.database_bytes? as f64;
    (seconds > 0.0).then_some(bytes / seconds)
}

impl<S: ObjectStore, A: AlertSink> Backup<S, A> {
    /// The estimate of a backup taken now; `None` when the database cannot be reached or sized
    /// (the backup itself then runs here and says what is wrong).
    pub async fn estimate(&self) -> Option<Estimate> {
        let config = &self.config;
        let (_, client) =
            connect_with_secret::<BackupError>(&self.secrets, &config.database_secret_arn, config.database_timeout)
                .await
                .ok()?;
        let bytes = database_bytes(&client).await?;
        let secret = match self.secrets.get(&config.database_secret_arn).await {
            Ok(value) => value.arn.unwrap_or_else(|| config.database_secret_arn.clone()),
            Err(_) => config.database_secret_arn.clone(),
        };
        let (bytes_per_second, source) =
            self.last_rate(&secret).await.unwrap_or((MEASURED_BYTES_PER_SECOND, RateSource::Measured));
        Some(Estimate { bytes, bytes_per_second, source })
    }

    /// The rate of the newest backup of the database `secret` reads that recorded one.
    async fn last_rate(&self, secret: &str) -> Option<(f64, RateSource)> {
        let prefix = normalise_prefix(&self.config.prefix);
        let listed = self.store.list(&prefix).await;
        if let Err(err) = &listed {
            tracing::warn!(error = %err, "the last backups could not be listed: the estimate uses the measured rate");
        }
        let mut manifests: Vec<_> = listed.ok()?.into_iter().filter(|o| o.key.ends_with(MANIFEST_SUFFIX)).collect();
        // Keys start with the backup's start time after the database's folder.
        manifests.sort_by(|a, b| a.key.rsplit('/').next().cmp(&b.key.rsplit('/').next()));
        for candidate in manifests.iter().rev().take(RECENT) {
            let Ok(body) = self.store.get(&candidate.key).await else { continue };
            let Ok(bytes) = body.collect().await else { continue };
            let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) else { continue };
            if manifest.is_safety_backup() || !manifest.is_from_secret(secret) {
                continue;
            }
            if let Some(rate) = rate_of(&manifest) {
                return Some((rate, RateSource::LastRun(manifest.key)));
            }
        }
        None
    }
}
