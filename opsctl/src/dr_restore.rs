//! `opsctl dr restore`: a chosen backup restored into the database being recovered. It refuses
//! without `--confirm <host>/<database>`, takes a safety backup of the target (so the restore
//! can be undone) while it downloads the backup and checks its size and SHA-256, touches
//! nothing unless both succeeded, restores in one transaction (or with parallel jobs, which
//! cannot share one), runs the row counts, the validation queries and the health checks, and
//! sends one alert saying what was restored, from when, and how long it took.
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

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{Backup, DUMP_SUFFIX, Manifest, RestoreCheck, RestoreReport, manifest_key};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, describe};
use ops_shared::restore::{Selection, Target, Verifier, pick_pg_restore};
use ops_shared::secrets::AWSCURRENT;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;

pub const SOURCE: &str = "opsctl";
pub const JOURNAL_PREFIX: &str = "reports/dr-restores/";
pub use ops_shared::backup::SAFETY_LABEL;
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
    Lock { database: String, detail: String },
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
    },
    #[error("cannot read the target's secret {secret}: {detail}")]
    TargetSecret { secret: String, detail: String },
    #[error("cannot reach the target database {database} of {secret}: {detail}; nothing was touched")]
    Unreachable { secret: String, database: String, detail: String },
    #[error("cannot use backup {key}: {detail}")]
    Backup { key: String, detail: String },
    #[error("backup {key} does not match its manifest ({detail}); nothing was touched: pick another backup")]
    Corrupt { key: String, detail: String },
    #[error("the safety backup of {database} failed, so nothing was restored: {detail}")]
    SafetyBackup { database: String, detail: String },
    #[error("cannot record the restore's progress under {key}: {detail}")]
    Journal { key: String, detail: String },
}

impl RestoreError {
    /// 1 when the backup or the safety backup failed (a problem found), 2 for a refusal or no
    /// access.
    pub fn exit_code(&self) -> u8 {
        match self {
            RestoreError::Corrupt { .. }
            | RestoreError::SafetyBackup { .. }
            | RestoreError::SafetyBackupGone { .. } => 1,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The safety backup exists; the restore started and has not finished.
    Restoring,
    /// The restore ran and every check passed.
    Finished,
    /// The restore ran and something failed: the database may be partly restored.
    Failed,
}

/// One target's restore journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// The target's secret, by ARN whatever name was typed: Supabase names every database
    /// `postgres`, so the name alone would not tell production's restore from staging's.
    pub target_secret: String,
    pub database: String,
    pub backup_key: String,
    pub safety_backup_key: String,
    pub phase: Phase,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub failures: Vec<String>,
}

/// `reports/dr-restores/<target secret>.json`, the secret's ARN with every character but
/// letters, digits, `-`, `_` and `.` written as `_`.
pub fn journal_key(target_secret: &str) -> String {
    let name: String =
        target_secret.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{JOURNAL_PREFIX}{name}.json")
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub database: String,
    pub backup_key: String,
    pub backup_started_at: DateTime<Utc>,
    pub backup_age_hours: f64,
    /// The backup of what the target held before: restoring it undoes this restore.
    pub safety_backup_key: String,
    /// The unfinished restore this run took over from, if any.
    pub resumed: Option<String>,
    pub jobs: u32,
    pub download_ms: u64,
    /// Zero when the safety backup of an earlier, unfinished run is kept.
    pub safety_backup_ms: u64,
    pub restore_ms: u64,
    pub checks_ms: u64,
    /// Download, checks of the bytes, restore, row counts, validation and health checks.
    pub rto_ms: u64,
    pub checks: Vec<RestoreCheck>,
    pub failures: Vec<String>,
    pub passed: bool,
    pub journal_key: String,
    /// Whether the alert reached the alert topic (else why not).
    pub alert: String,
}

impl RestoreOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.passed { 0 } else { 1 }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(resumed) = &self.resumed {
            out.push_str(&format!("Resumed: {resumed}\n"));
        }
        out.push_str(&format!(
            "{} {} from {} (taken {}, {:.1} h ago)\n",
            if self.passed { "Restored" } else { "Restore FAILED:" },
            self.database,
            self.backup_key,
            self.backup_started_at.format("%Y-%m-%d %H:%M UTC"),
            self.backup_age_hours
        ));
        out.push_str(&format!(
            "RTO {:.1} s: download {:.1} s beside the safety backup {:.1} s, restore {:.1} s ({} jobs), checks {:.1} s\n",
            self.rto_ms as f64 / 1000.0,
            self.download_ms as f64 / 1000.0,
            self.safety_backup_ms as f64 / 1000.0,
            self.restore_ms as f64 / 1000.0,
            self.jobs,
            self.checks_ms as f64 / 1000.0
        ));
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let detail = if check.detail.is_empty() { String::new() } else { format!(": {}", check.detail) };
            out.push_str(&format!("  {mark} {}{detail}\n", check.name));
        }
        out.push_str(&format!("Undo: opsctl dr restore --backup {} (the safety backup)\n", self.safety_backup_key));
        out.push_str(&format!("Alert: {}\n", self.alert));
        if !self.passed {
            out.push_str("The database may be partly restored: run the same command again to restore again.\n");
        }
        out
    }
}

/// The engines a restore runs on: the restore engine (bucket, pg_restore, jobs, validation
/// queries) and the backup engine configured for the target (the safety backup).
pub struct Engines<'a, S, A> {
    pub verifier: &'a Verifier<S, A>,
    pub safety: &'a Backup<S, A>,
    pub http: &'a reqwest::Client,
}

/// Restores `request.backup_key` into the target; see the module's description.
pub async fn restore<S: ObjectStore, A: AlertSink>(
    engines: &Engines<'_, S, A>,
    request: &RestoreRequest,
    progress: &Progress,
) -> Result<RestoreOutcome, RestoreError> {
    let verifier = engines.verifier;
    let secret_error = |detail: String| RestoreError::TargetSecret { secret: request.target_secret.clone(), detail };
    let secret = verifier.secrets.get(&request.target_secret).await.map_err(|e| secret_error(e.to_string()))?;
    let target: DbCredentials =
        secret.json(&request.target_secret, AWSCURRENT).map_err(|e| secret_error(e.to_string()))?;
    // The journal is the secret's, whether its name or its ARN was typed.
    let target_secret = secret.arn.clone().unwrap_or_else(|| request.target_secret.clone());
    let database = target.dbname.clone();
    let named = format!("{}/{}", target.host, target.dbname);
    match request.confirm.as_deref() {
        None => return Err(RestoreError::NotConfirmed { target: named }),
        Some(given) if given != named => {
            return Err(RestoreError::WrongTarget { given: given.to_owned(), target: named });
        }
        Some(_) => {}
    }
    let unreachable = |detail: String| RestoreError::Unreachable {
        secret: request.target_secret.clone(),
        database: database.clone(),
        detail,
    };
    let client = target.connect(CONNECT_TIMEOUT).await.map_err(|e| unreachable(e.to_string()))?;
    one_run_at_a_time(&client, &database).await?;
    let backup_error = |detail: String| RestoreError::Backup { key: request.backup_key.clone(), detail };
    let (_, manifest) =
        verifier.select(&Selection::Key(request.backup_key.clone())).await.map_err(|e| backup_error(e.to_string()))?;
    let pg_restore = pick_pg_restore(&verifier.config.pg_tools_dir, &client, &manifest)
        .await
        .map_err(|e| backup_error(e.to_string()))?;

    let started = Instant::now();
    let mut report = RestoreReport::new(&manifest, verifier.config.rto, verifier.config.rpo);
    let file = tempfile::NamedTempFile::new().map_err(|e| backup_error(format!("no room for the download: {e}")))?;
    let earlier = read_journal(&verifier.store, &target_secret).await?.filter(|j| j.phase != Phase::Finished);
    let mut doing =
        format!("downloading {} ({:.1} MB) and checking its SHA-256", manifest.key, manifest.size_bytes as f64 / 1e6);
    if earlier.is_none() {
        doing.push_str(&format!(", while taking a safety backup of {database}"));
    }
    // The safety backup only reads the target, so it runs while the backup downloads; whichever
    // fails first stops the other (a stopped safety backup is an upload without a manifest,
    // never listed as a backup). Boxed: the backup engine's future is large, and the two side
    // by side would not fit a stack.
    let taken_meanwhile = std::sync::Mutex::new(None);
    let safety = Box::pin(async {
        let safety_started = Instant::now();
        let (key, resumed) = safety_backup(engines.safety, &verifier.store, earlier, &manifest, &database)
            .await
            .map_err(Halt::Safety)?;
        if resumed.is_none()
            && let Ok(mut taken) = taken_meanwhile.lock()
        {
            *taken = Some(key.clone());
        }
        Ok((key, resumed, safety_started.elapsed()))
    });
    let download = async {
        verifier
            .download_and_check(&manifest, file.path(), &mut report)
            .await
            .map_err(|e| Halt::Download(e.to_string()))?;
        if report.passed() { Ok(()) } else { Err(Halt::Corrupt) }
    };
    let both = progress.phase(&doing, async { tokio::try_join!(download, safety) }).await;
    let (safety_backup_key, resumed, safety_took) = match both {
        Ok(((), safety)) => safety,
        Err(Halt::Download(detail)) => return Err(backup_error(detail)),
        Err(Halt::Safety(err)) => return Err(err),
        Err(Halt::Corrupt) => {
            let kept = match taken_meanwhile.lock().ok().and_then(|mut taken| taken.take()) {
                Some(key) => format!(" The safety backup taken meanwhile, {key}, holds the database as it is."),
                None => String::new(),
            };
            let corrupt = RestoreError::Corrupt { key: manifest.key.clone(), detail: report.failures.join("; ") };
            let alert =
                Alert::new(SOURCE, Severity::Critical, format!("{SOURCE}:dr:{database}"), "A backup failed its checks")
                    .summary(format!("{corrupt}. The backups may be damaged: run a restore test of the others.{kept}"))
                    .detail("backup_key", manifest.key.clone());
            publish(verifier, &alert).await;
            return Err(corrupt);
        }
    };
    let safety_backup_ms = if resumed.is_some() { 0 } else { safety_took.as_millis() as u64 };
    let journal = Journal {
        target_secret: target_secret.clone(),
        database: database.clone(),
        backup_key: manifest.key.clone(),
        safety_backup_key: safety_backup_key.clone(),
        phase: Phase::Restoring,
        started_at: Utc::now(),
        updated_at: Utc::now(),
        failures: Vec::new(),
    };
    write_journal(&verifier.store, &journal).await?;

    let jobs = request.jobs.max(1);
    let how = if jobs == 1 { "in one transaction".to_owned() } else { format!("with {jobs} jobs") };
    progress
        .phase(
            &format!("restoring into {database} {how}, then counting rows and validating"),
            verifier.restore_and_check(
                &pg_restore,
                &target,
                file.path(),
                &manifest,
                Target::Existing,
                jobs,
                &mut report,
            ),
        )
        .await;
    let restored = report.checks.iter().any(|c| c.name == "pg_restore succeeds" && c.passed);
    if restored {
        // The restore made the app's tables again with the dump's privileges: a frozen database
        // must stay frozen until `dr thaw`.
        match crate::dr::reapply_freeze_if_frozen(&target, &verifier.store, &target_secret).await {
            Ok(None) => {}
            Ok(Some(_)) => report.check(
                "writes stopped again on the restored tables (dr freeze holds)",
                true,
                "opsctl dr thaw when ready".to_owned(),
            ),
            Err(err) => report.check("writes stopped again on the restored tables", false, err.to_string()),
        }
    }
    if restored {
        let checks_started = Instant::now();
        health_checks(&target, &request.health_urls, engines.http, &mut report).await;
        report.checks_ms += checks_started.elapsed().as_millis() as u64;
    }
    let rto = started.elapsed();
    let journal = Journal {
        phase: if report.passed() { Phase::Finished } else { Phase::Failed },
        updated_at: Utc::now(),
        failures: report.failures.clone(),
        ..journal
    };
    // The restore has run: a journal that cannot be closed is a failure to report, and the
    // alert still goes.
    if let Err(err) = write_journal(&verifier.store, &journal).await {
        report.failures.push(format!("{err}; the next run will take this restore for an interrupted one"));
    }
    let passed = report.passed();

    let mut outcome = RestoreOutcome {
        database,
        backup_key: manifest.key.clone(),
        backup_started_at: manifest.started_at,
        backup_age_hours: (Utc::now() - manifest.started_at).num_seconds().max(0) as f64 / 3600.0,
        safety_backup_key,
        resumed,
        jobs,
        download_ms: report.download_ms,
        safety_backup_ms,
        restore_ms: report.restore_ms,
        checks_ms: report.checks_ms,
        rto_ms: rto.as_millis() as u64,
        checks: report.checks,
        failures: report.failures,
        passed,
        journal_key: journal_key(&journal.target_secret),
        alert: String::new(),
    };
    outcome.alert = publish(verifier, &outcome_alert(&outcome)).await;
    // The lock is held until the outcome is written and told.
    drop(client);
    Ok(outcome)
}

/// Takes the target's restore lock for as long as `client` is open, or says who holds it.
async fn one_run_at_a_time(client: &tokio_postgres::Client, database: &str) -> Result<(), RestoreError> {
    let refused = |detail: String| RestoreError::Lock { database: database.to_owned(), detail };
    let taken: bool = client
        .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK.0, &LOCK.1])
        .await
        .map_err(|e| refused(describe(&e)))?
        .get(0);
    if taken {
        return Ok(());
    }
    let holder = client
        .query_opt(
            "SELECT format('session %s of %s, started %s', l.pid, a.usename,              to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC'))              FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid              WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = $2::int::oid              AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&LOCK.0, &LOCK.1],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get::<_, Option<String>>(0))
        .unwrap_or_else(|| "another session".to_owned());
    Err(RestoreError::Busy { database: database.to_owned(), holder })
}

/// The advisory lock a restore holds on its target: `opsc`, `drrs` in ASCII.
const LOCK: (i32, i32) = (0x6f70_7363, 0x6472_7273);

/// Why the download and the safety backup, run side by side, stopped early.
enum Halt {
    Download(String),
    Corrupt,
    Safety(RestoreError),
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
        Err(err) => Err(RestoreError::SafetyBackup { database: database.to_owned(), detail: err.to_string() }),
    }
}

/// Fails unless the safety backup `earlier` relies on (its dump and manifest) is still in the
/// bucket.
async fn still_there(store: &impl ObjectStore, earlier: &Journal, database: &str) -> Result<(), RestoreError> {
    let gone = |detail: String| RestoreError::SafetyBackupGone {
        database: database.to_owned(),
        backup_key: earlier.backup_key.clone(),
        started_at: earlier.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        safety_backup_key: earlier.safety_backup_key.clone(),
        detail,
        journal_key: journal_key(&earlier.target_secret),
    };
    let key = &earlier.safety_backup_key;
    let manifest = manifest_key(key);
    let listed = store.list(key.strip_suffix(DUMP_SUFFIX).unwrap_or(key)).await.map_err(|e| gone(e.to_string()))?;
    let missing: Vec<&str> = [key.as_str(), manifest.as_str()]
        .into_iter()
        .filter(|wanted| !listed.iter().any(|o| o.key == *wanted))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(gone(format!("missing: {}", missing.join(", ")))) }
}

async fn read_journal(store: &impl ObjectStore, target_secret: &str) -> Result<Option<Journal>, RestoreError> {
    let key = journal_key(target_secret);
    let failed = |detail: String| RestoreError::Journal { key: key.clone(), detail };
    let listed = store.list(&key).await.map_err(|e| failed(e.to_string()))?;
    if !listed.iter().any(|o| o.key == key) {
        return Ok(None);
    }
    let body = store.get(&key).await.map_err(|e| failed(e.to_string()))?;
    let body = body.collect().await.map_err(|e| failed(e.to_string()))?;
    serde_json::from_slice(&body).map(Some).map_err(|e| failed(format!("unreadable: {e}")))
}

async fn write_journal(store: &impl ObjectStore, journal: &Journal) -> Result<(), RestoreError> {
    let key = journal_key(&journal.target_secret);
    let failed = |detail: String| RestoreError::Journal { key: key.clone(), detail };
    let body = serde_json::to_vec_pretty(journal).map_err(|e| failed(e.to_string()))?;
    store.put(&key, body, "application/json").await.map_err(|e| failed(e.to_string()))
}

/// The database answers a new connection, and says whether it takes writes (it does not while
/// `dr freeze` holds: not a failure, a reminder); each health URL answers 2xx.
async fn health_checks(target: &DbCredentials, urls: &[String], http: &reqwest::Client, report: &mut RestoreReport) {
    match target.connect(CONNECT_TIMEOUT).await {
        Err(err) => report.check("database accepts new connections", false, err.to_string()),
        Ok(client) => match client.query_one("SHOW default_transaction_read_only", &[]).await {
            Ok(row) => {
                let read_only = row.get::<_, String>(0) == "on";
                let detail =
                    if read_only { "writes still stopped: opsctl dr thaw when ready" } else { "writes allowed" };
                report.check("database accepts new connections", true, detail.to_owned());
            }
            Err(err) => report.check("database accepts new connections", false, describe(&err)),
        },
    }
    for url in urls {
        let name = format!("{url} answers");
        match http.get(url).send().await {
            Ok(response) if response.status().is_success() => report.check(&name, true, response.status().to_string()),
            Ok(response) => report.check(&name, false, response.status().to_string()),
            Err(err) => report.check(&name, false, err.to_string()),
        }
    }
}

/// The runbook's communication step: what was restored, from when, how long it took.
fn outcome_alert(outcome: &RestoreOutcome) -> Alert {
    let what = format!(
        "Backup {} (taken {}, {:.1} h before the restore) was restored into {} in {:.1} min",
        outcome.backup_key,
        outcome.backup_started_at.format("%Y-%m-%d %H:%M UTC"),
        outcome.backup_age_hours,
        outcome.database,
        outcome.rto_ms as f64 / 60_000.0
    );
    let dedup = format!("{SOURCE}:dr:{}", outcome.database);
    let alert = if outcome.passed {
        Alert::new(SOURCE, Severity::Info, dedup, format!("Database restored: {}", outcome.database))
            .summary(format!("{what}. Row counts, validation queries and health checks passed."))
    } else {
        Alert::new(SOURCE, Severity::Critical, dedup, format!("Database restore failed: {}", outcome.database))
            .summary(format!("{what}, and failed: {}. It may be partly restored.", outcome.failures.join("; ")))
    };
    alert
        .detail("backup_key", outcome.backup_key.clone())
        .detail("safety_backup_key", outcome.safety_backup_key.clone())
        .detail("rto_ms", outcome.rto_ms)
}

/// Publishes `alert`; says whether it went (an unsent alert is reported, never dropped silently).
async fn publish<S, A: AlertSink>(verifier: &Verifier<S, A>, alert: &Alert) -> String {
    match verifier.alerts.publish(alert).await {
        Ok(()) => "sent".to_owned(),
        Err(err) => {
            tracing::error!(error = %err, "the restore alert could not be published");
            format!("NOT sent: {err}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_is_named_after_its_target_secret() {
        assert_eq!(journal_key("cineview-database"), "reports/dr-restores/cineview-database.json");
        assert_eq!(
            journal_key("arn:aws:secretsmanager:eu-west-1:123456789012:secret:cineview-staging-database-Ab12Cd"),
            "reports/dr-restores/arn_aws_secretsmanager_eu-west-1_123456789012_secret_cineview-staging-database-Ab12Cd.json"
        );
        assert_ne!(journal_key("prod/postgres"), journal_key("staging/postgres"));
    }
}
