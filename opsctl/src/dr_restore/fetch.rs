//! The second step: the backup downloaded and its size and SHA-256 checked while the safety
//! backup of the target is taken (or an unfinished run's is kept). Whichever fails first
//! stops the other; nothing is touched unless both succeeded.

use std::sync::Mutex;
use std::time::Instant;

use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{Backup, DUMP_SUFFIX, Manifest, RestoreReport, manifest_key};
use ops_shared::objects::ObjectStore;
use ops_shared::restore::{Verifier, VerifyError};

use super::journal::{Journal, Phase, journal_key};
use super::preflight::Prepared;
use super::{Engines, RestoreError, SAFETY_LABEL, SOURCE};
use crate::progress::Progress;

/// The backup on disk, checked, and the safety backup that undoes the restore.
pub(super) struct Fetched {
    pub file: tempfile::NamedTempFile,
    pub safety_backup_key: String,
    /// The unfinished restore this run took over from, if any.
    pub resumed: Option<String>,
    /// Zero when the safety backup of an earlier, unfinished run is kept.
    pub safety_backup_ms: u64,
}

/// Why the download and the safety backup, run side by side, stopped early.
enum Halt {
    Download(VerifyError),
    Corrupt,
    Safety(RestoreError),
}

pub(super) async fn fetch<S: ObjectStore, A: AlertSink>(
    engines: &Engines<'_, S, A>,
    target: &Prepared,
    report: &mut RestoreReport,
    progress: &Progress,
) -> Result<Fetched, RestoreError> {
    let verifier = engines.verifier;
    let manifest = &target.manifest;
    let file =
        tempfile::NamedTempFile::new().map_err(|source| RestoreError::NoRoom { key: manifest.key.clone(), source })?;
    let mut doing =
        format!("downloading {} ({:.1} MB) and checking its SHA-256", manifest.key, manifest.size_bytes as f64 / 1e6);
    if target.earlier.is_none() {
        doing.push_str(&format!(", while taking a safety backup of {}", target.database));
    }
    // The safety backup only reads the target, so it runs while the backup downloads; whichever
    // fails first stops the other (a stopped safety backup is an upload without a manifest,
    // never listed as a backup). Boxed: the backup engine's future is large, and the two side
    // by side would not fit a stack.
    let taken_meanwhile = Mutex::new(None);
    let safety = Box::pin(async {
        let started = Instant::now();
        let earlier = target.earlier.clone();
        let (key, resumed) = safety_backup(engines.safety, &verifier.store, earlier, manifest, &target.database)
            .await
            .map_err(Halt::Safety)?;
        if resumed.is_none()
            && let Ok(mut taken) = taken_meanwhile.lock()
        {
            *taken = Some(key.clone());
        }
        Ok((key, resumed, started.elapsed()))
    });
    let download = async {
        verifier.download_and_check(manifest, file.path(), report).await.map_err(Halt::Download)?;
        if report.passed() { Ok(()) } else { Err(Halt::Corrupt) }
    };
    match progress.phase(&doing, async { tokio::try_join!(download, safety) }).await {
        Ok(((), (safety_backup_key, resumed, took))) => {
            let safety_backup_ms = if resumed.is_some() { 0 } else { took.as_millis() as u64 };
            Ok(Fetched { file, safety_backup_key, resumed, safety_backup_ms })
        }
        Err(Halt::Download(source)) => Err(RestoreError::Backup { key: manifest.key.clone(), source }),
        Err(Halt::Safety(err)) => Err(err),
        Err(Halt::Corrupt) => {
            let taken = taken_meanwhile.lock().ok().and_then(|mut taken| taken.take());
            Err(corrupt(verifier, manifest, &target.database, report, taken).await)
        }
    }
}

/// A backup that does not match its manifest: a critical alert (the backups may be damaged),
/// naming the safety backup if it had finished.
async fn corrupt<S, A: AlertSink>(
    verifier: &Verifier<S, A>,
    manifest: &Manifest,
    database: &str,
    report: &RestoreReport,
    taken_meanwhile: Option<String>,
) -> RestoreError {
    let kept = match taken_meanwhile {
        Some(key) => format!(" The safety backup taken meanwhile, {key}, holds the database as it is."),
        None => String::new(),
    };
    let corrupt = RestoreError::Corrupt { key: manifest.key.clone(), detail: report.failures.join("; ") };
    let alert = Alert::new(SOURCE, Severity::Critical, format!("{SOURCE}:dr:{database}"), "A backup failed its checks")
        .summary(format!("{corrupt}. The backups may be damaged: run a restore test of the others.{kept}"))
        .detail("backup_key", manifest.key.clone());
    crate::notice::publish(&verifier.alerts, &alert).await;
    corrupt
}

/// The safety backup: taken now, or, when an earlier restore into this database did not
/// finish, the one that restore took (with a sentence saying so).
async fn safety_backup<S: ObjectStore, A: AlertSink>(
    engine: &Backup<S, A>,
    store: &impl ObjectStore,
    earlier: Option<Journal>,
    manifest: &Manifest,
    database: &str,
) -> Result<(String, Option<String>), RestoreError> {
    if let Some(earlier) = earlier {
        still_there(store, &earlier, database).await?;
        let state = match earlier.phase {
            Phase::Restoring => "was interrupted",
            _ => "failed",
        };
        let resumed = format!(
            "the restore of {} into {database} started at {} {state}; its safety backup {} is kept (this run did \
             not take another of the partly restored database) and {} is restored again",
            earlier.backup_key,
            earlier.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            earlier.safety_backup_key,
            manifest.key
        );
        return Ok((earlier.safety_backup_key, Some(resumed)));
    }
    match engine.run(Some(SAFETY_LABEL.to_owned()), None).await {
        Ok((safety, _)) => Ok((safety.key, None)),
        Err(source) => Err(RestoreError::SafetyBackup { database: database.to_owned(), source }),
    }
}

/// Fails unless the safety backup `earlier` relies on (its dump and manifest) is still in the
/// bucket.
async fn still_there(store: &impl ObjectStore, earlier: &Journal, database: &str) -> Result<(), RestoreError> {
    let gone = |detail: String, source| RestoreError::SafetyBackupGone {
        database: database.to_owned(),
        backup_key: earlier.backup_key.clone(),
        started_at: earlier.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        safety_backup_key: earlier.safety_backup_key.clone(),
        detail,
        journal_key: journal_key(&earlier.target_secret),
        source,
    };
    let key = &earlier.safety_backup_key;
    let manifest = manifest_key(key);
    let listed =
        store.list(key.strip_suffix(DUMP_SUFFIX).unwrap_or(key)).await.map_err(|e| gone(e.to_string(), Some(e)))?;
    let missing: Vec<&str> = [key.as_str(), manifest.as_str()]
        .into_iter()
        .filter(|wanted| !listed.iter().any(|o| o.key == *wanted))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(gone(format!("missing: {}", missing.join(", ")), None)) }
}
