//! The step before anything is touched: a backup no restore test has passed is restore-tested
//! first on the staging server (the restore-verifier's engine, its report filed like any
//! restore test's), and the restore stops if that test fails. `--untested` skips it; safety
//! backups, the restores' own undo, are exempt.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{Manifest, RestoreReport};
use ops_shared::objects::ObjectStore;
use ops_shared::restore::{Selection, Verifier};
use serde::Serialize;

use super::preflight::Prepared;
use super::{Engines, RestoreError, SOURCE};
use crate::dr::{self, Passed};
use crate::progress::Progress;

/// Whether the restored backup had passed a restore test.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "tested", rename_all = "snake_case")]
pub enum Tested {
    /// A restore test had passed it before this run.
    Before { report_key: String, verified_at: DateTime<Utc> },
    /// None had: this run restore-tested it on the staging server first, and it passed.
    JustNow {
        report_key: String,
        took_ms: u64,
        /// What was said, before the test, that it would add to the RTO.
        estimate: String,
    },
    /// `--untested`: restored without a restore test that passed it.
    Untested,
    /// A safety backup: restored without a restore test (it undoes a restore).
    SafetyBackup,
}

impl Tested {
    /// The restore test run first, in milliseconds (zero when none ran).
    pub fn took_ms(&self) -> u64 {
        match self {
            Tested::JustNow { took_ms, .. } => *took_ms,
            _ => 0,
        }
    }

    /// One line for the operator.
    pub fn render(&self) -> String {
        match self {
            Tested::Before { report_key, verified_at } => {
                format!(
                    "Tested: a restore test passed it on {} ({report_key})",
                    verified_at.format("%Y-%m-%d %H:%M UTC")
                )
            }
            Tested::JustNow { report_key, took_ms, .. } => format!(
                "Tested just now: it passed a restore test on the staging server before the restore, in {:.1} s \
                 ({report_key})",
                *took_ms as f64 / 1000.0
            ),
            Tested::Untested => "UNTESTED: restored with --untested; no restore test has passed this backup".to_owned(),
            Tested::SafetyBackup => "Tested: no, a safety backup is restored without a restore test".to_owned(),
        }
    }

    /// The sentence the closing alert adds.
    pub fn sentence(&self) -> String {
        match self {
            Tested::Before { .. } => " A restore test had passed the backup before.".to_owned(),
            Tested::JustNow { took_ms, .. } => format!(
                " The backup passed a restore test on the staging server just now, first ({:.1} min).",
                *took_ms as f64 / 60_000.0
            ),
            Tested::Untested => {
                " The backup was restored UNTESTED (--untested): no restore test has passed it.".to_owned()
            }
            Tested::SafetyBackup => " It is a safety backup, restored without a restore test.".to_owned(),
        }
    }
}

/// Whether the backup had passed a restore test; when it had not (and `untested` is false),
/// its restore test on the staging server, which must pass before anything is touched.
pub(super) async fn first<S: ObjectStore, A: AlertSink>(
    engines: &Engines<'_, S, A>,
    target: &Prepared,
    untested: bool,
    progress: &Progress,
) -> Result<Tested, RestoreError> {
    let manifest = &target.manifest;
    if manifest.is_safety_backup() {
        return Ok(Tested::SafetyBackup);
    }
    let staging = engines.staging;
    let read = dr::restore_tests(&staging.store, &staging.config.report_prefix).await;
    let reports = match read {
        Ok(reports) => reports,
        // Skipping the test needs no report: the restore goes on, told untested.
        Err(_) if untested => Vec::new(),
        Err(source) => return Err(RestoreError::Reports { key: manifest.key.clone(), source }),
    };
    let tested = dr::Tested::of(&reports, &manifest.key);
    if let (Passed::Yes, Some(report_key), Some(verified_at)) = (tested.passed, tested.report_key, tested.verified_at) {
        return Ok(Tested::Before { report_key, verified_at });
    }
    if untested {
        return Ok(Tested::Untested);
    }
    let estimate = estimate(&reports, manifest, staging.config.rto);
    let doing = format!(
        "restore test of {} on the staging server first (no restore test has passed it; {estimate})",
        manifest.key
    );
    let started = Instant::now();
    let ran = progress.phase(&doing, staging.run(Selection::Key(manifest.key.clone()), None)).await;
    let took_ms = started.elapsed().as_millis() as u64;
    let refused = match ran {
        Ok(report) if dr::restores(&report) => {
            return Ok(Tested::JustNow { report_key: report.report_key, took_ms, estimate });
        }
        Ok(report) => RestoreError::TestFailed {
            key: manifest.key.clone(),
            report_key: report.report_key.clone(),
            failures: report.failures.join("; "),
        },
        Err(source) => RestoreError::TestNotRun { key: manifest.key.clone(), source },
    };
    Err(stopped(staging, &target.database, manifest, refused).await)
}

/// What the restore test adds to the RTO: the backup's size at the speed the newest restore
/// test that passed measured (download, restore and checks), or unknown.
fn estimate(reports: &[RestoreReport], manifest: &Manifest, rto: Duration) -> String {
    let rto_minutes = rto.as_secs() / 60;
    let last =
        reports.iter().filter(|r| dr::restores(r) && r.rto_ms > 0 && r.size_bytes > 0).max_by_key(|r| r.verified_at);
    let Some(last) = last else {
        return format!(
            "it adds an unknown time to the {rto_minutes}-minute RTO: no restore test has measured the staging \
             server's speed yet"
        );
    };
    let bytes_per_ms = last.size_bytes as f64 / last.rto_ms as f64;
    let minutes = manifest.size_bytes as f64 / bytes_per_ms / 60_000.0;
    format!(
        "it adds about {minutes:.1} min to the {rto_minutes}-minute RTO: {:.1} MB at the {:.2} MB/s the last restore \
         test measured on {}",
        manifest.size_bytes as f64 / 1e6,
        bytes_per_ms / 1000.0,
        last.verified_at.format("%Y-%m-%d")
    )
}

/// The restore stopped before touching anything: one critical alert in plain words.
async fn stopped<S, A: AlertSink>(
    staging: &Verifier<S, A>,
    database: &str,
    manifest: &Manifest,
    refused: RestoreError,
) -> RestoreError {
    let alert = Alert::new(
        SOURCE,
        Severity::Critical,
        format!("{SOURCE}:dr:{database}"),
        format!("Database restore stopped: {database}"),
    )
    .summary(format!(
        "opsctl dr restore did not restore backup {} into {database}, and changed nothing there: {refused}.",
        manifest.key
    ))
    .detail("backup_key", manifest.key.clone());
    crate::notice::publish(&staging.alerts, &alert).await;
    refused
}
