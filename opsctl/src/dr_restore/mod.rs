//! `opsctl dr restore`: a chosen backup restored into the database being recovered. It refuses
//! without `--confirm <host>/<database>`, takes a safety backup of the target (so the restore
//! can be undone) while it downloads the backup and checks its size and SHA-256, touches
//! nothing unless both succeeded, restores in one transaction (or with parallel jobs, which
//! cannot share one), runs the row counts, the validation queries and the health checks, and
//! sends one notice saying what was restored, from when, the data lost (the window and the rows
//! per table, from `dr assess`'s record or the safety backup's counts), how long it took and
//! what comes next: an alert to ops and, when given, plain words to the stakeholders.
//!
//! Staging first: a backup no restore test has passed (no passed report of exactly its key
//! under `reports/restore-tests/`) is restore-tested on the staging server before anything
//! else, and the restore stops, touching nothing, if that test fails. `--untested` skips the
//! test and the closing alert says the backup was restored untested; safety backups are
//! exempt.
//!
//! A journal in the bucket (`reports/dr-restores/<target secret's ARN>.json`) records each
//! restore's phase. A run that finds an unfinished one says so and keeps that run's safety
//! backup (after checking it is still in the bucket): the target may be half restored by
//! then, and a new safety backup of it would be worthless.
//!
//! One run at a time per database: each run holds a PostgreSQL advisory lock on the target
//! from before it reads the journal until it has written its outcome. The lock lives in the
//! database being restored, so it needs nothing else to agree on, and it goes with the run's
//! connection: a run that is killed leaves no lock behind to clear by hand.

mod fetch;
mod journal;
mod loss;
mod outcome;
mod preflight;
mod tested;
mod verify;

use std::time::Duration;

use ops_shared::alert::AlertSink;
use ops_shared::backup::{Backup, RestoreReport};
use ops_shared::objects::{ObjectError, ObjectStore};
use ops_shared::postgres::DbError;
use ops_shared::restore::{Verifier, VerifyError};
use ops_shared::secrets::SecretError;

pub use journal::{JOURNAL_PREFIX, Journal, Phase, journal_key};
pub use ops_shared::backup::SAFETY_LABEL;
pub use outcome::RestoreOutcome;
pub use tested::Tested;
pub use verify::Checked;

use crate::bucket_json::RecordFault;
use crate::notice::Audience;
use crate::outcome::Verdict;
use crate::progress::Progress;

pub const SOURCE: &str = "opsctl";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to restore where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub backup_key: String,
    /// The target database's secret (name or ARN), as the functions store database secrets.
    pub target_secret: String,
    /// The target's `<host>/<database>`, typed by the operator.
    pub confirm: Option<String>,
    /// Parallel jobs; 1 restores in one transaction, more cannot share one.
    pub jobs: u32,
    /// URLs that must answer 2xx once the database is back (the app's health endpoint).
    pub health_urls: Vec<String>,
    /// Restore even a backup no restore test has passed, without testing it first.
    pub untested: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("refusing to restore into {target} without --confirm {target}: the restore replaces what it holds")]
    NotConfirmed { target: String },
    #[error("--confirm {given:?} is not the target's host and database, {target}: nothing was touched")]
    WrongTarget { given: String, target: String },
    #[error(
        "another opsctl dr restore into {database} is running ({holder}): wait for it to finish; nothing was touched"
    )]
    Busy { database: String, holder: String },
    #[error("cannot take the restore lock on {database}: {detail}; nothing was touched")]
    Lock {
        database: String,
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(
        "the restore of {backup_key} into {database} started at {started_at} did not finish, and its safety backup \
         {safety_backup_key} is no longer in the bucket ({detail}): nothing was touched. The database may be partly \
         restored and that backup was its only undo. To restore anyway, with a new safety backup of the database as \
         it is now, delete {journal_key} and run again"
    )]
    SafetyBackupGone {
        database: String,
        backup_key: String,
        started_at: String,
        safety_backup_key: String,
        detail: String,
        journal_key: String,
        #[source]
        source: Option<ObjectError>,
    },
    #[error("cannot read the target's secret {secret}: {source}")]
    TargetSecret {
        secret: String,
        #[source]
        source: SecretError,
    },
    #[error("cannot reach the target database {database} of {secret}: {source}; nothing was touched")]
    Unreachable {
        secret: String,
        database: String,
        #[source]
        source: DbError,
    },
    #[error("cannot use backup {key}: {source}")]
    Backup {
        key: String,
        #[source]
        source: VerifyError,
    },
    #[error("cannot use backup {key}: no room for the download: {source}")]
    NoRoom {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("backup {key} does not match its manifest ({detail}); nothing was touched: pick another backup")]
    Corrupt { key: String, detail: String },
    #[error("the safety backup of {database} failed, so nothing was restored: {source}")]
    SafetyBackup {
        database: String,
        #[source]
        source: ops_shared::backup::BackupError,
    },
    #[error(
        "cannot read the restore tests' reports to see whether {key} passed one: {source}; nothing was touched \
         (--untested restores without them)"
    )]
    Reports {
        key: String,
        #[source]
        source: crate::dr::DrError,
    },
    #[error(
        "backup {key} failed its restore test on the staging server ({failures}; report {report_key}), so it was \
         not restored and nothing was touched: pick another backup (opsctl dr assess marks the tested ones), or \
         restore this one untested with --untested"
    )]
    TestFailed { key: String, report_key: String, failures: String },
    #[error(
        "the restore test of backup {key} on the staging server could not run ({source}), so it was not restored and \
         nothing was touched: fix the staging server and run again, pick a backup a restore test has passed \
         (opsctl dr assess marks them), or restore this one untested with --untested"
    )]
    TestNotRun {
        key: String,
        #[source]
        source: VerifyError,
    },
    #[error("cannot record the restore's progress under {key}: {source}")]
    Journal {
        key: String,
        #[source]
        source: RecordFault,
    },
}

impl RestoreError {
    /// A problem found when the backup or the safety backup failed, could not run for a
    /// refusal or no access.
    pub fn verdict(&self) -> Verdict {
        match self {
            RestoreError::Corrupt { .. }
            | RestoreError::TestFailed { .. }
            | RestoreError::SafetyBackup { .. }
            | RestoreError::SafetyBackupGone { .. } => Verdict::Problem,
            _ => Verdict::Failed,
        }
    }

    /// 1 when the backup (its checks or its restore test) or the safety backup failed, 2 for a
    /// refusal or no access (a restore test that could not run included).
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }
}

/// The engines a restore runs on: the restore engine (bucket, pg_restore, jobs, validation
/// queries), the restore-test engine on the staging server (an untested backup's test), and
/// the backup engine configured for the target (the safety backup).
pub struct Engines<'a, S, A> {
    pub verifier: &'a Verifier<S, A>,
    pub staging: &'a Verifier<S, A>,
    pub safety: &'a Backup<S, A>,
    pub http: &'a reqwest::Client,
}

/// Restores `request.backup_key` into the target; see the module's description. The steps:
/// preflight (the target confirmed, reached and locked, the backup found), tested (an untested
/// backup's restore test on the staging server, which must pass), fetch (the backup
/// downloaded and checked beside the safety backup), restore, verify (re-freeze, row counts,
/// validation and health checks), report (the journal closed, the data lost stated, one
/// notice to ops).
pub async fn restore<S: ObjectStore, A: AlertSink>(
    engines: &Engines<'_, S, A>,
    request: &RestoreRequest,
    progress: &Progress,
) -> Result<RestoreOutcome, RestoreError> {
    restore_and_tell(engines, request, progress, &engines.verifier.alerts).await
}

/// [`restore`], its closing notice told to `audience` (ops, and the stakeholders when given).
pub async fn restore_and_tell<S: ObjectStore, A: AlertSink>(
    engines: &Engines<'_, S, A>,
    request: &RestoreRequest,
    progress: &Progress,
    audience: &impl Audience,
) -> Result<RestoreOutcome, RestoreError> {
    let verifier = engines.verifier;
    let target = preflight::preflight(verifier, request).await?;
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let tested = tested::first(engines, &target, request.untested, progress).await?;
    let mut report = RestoreReport::new(&target.manifest, verifier.config.rto, verifier.config.rpo);
    let fetched = fetch::fetch(engines, &target, &mut report, progress).await?;
    let journal = journal::begin(
        &verifier.store,
        &target.target_secret,
        &target.database,
        &target.manifest.key,
        &fetched.safety_backup_key,
    )
    .await?;
    let jobs = request.jobs.max(1);
    let restored = verify::restore(verifier, &target, &fetched, jobs, &mut report, progress).await;
    let checked = verify::verify(restored, engines, &target, &request.health_urls, &mut report).await;
    let closed = journal::close(&verifier.store, journal, checked == verify::Checked::Passed, &mut report).await;
    let ran = outcome::Ran { fetched, report, checked, closed, started_at, rto: started.elapsed(), jobs, tested };
    let outcome = outcome::report(verifier, audience, &target, ran).await;
    // The lock is held until the outcome is written and told.
    drop(target);
    Ok(outcome)
}
