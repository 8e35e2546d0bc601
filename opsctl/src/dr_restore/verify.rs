//! The restore itself, and the checks after it: the engine's row counts and validation
//! queries, the freeze put back on a frozen database, a new connection, the health URLs.

use std::time::Instant;

use ops_shared::alert::AlertSink;
use ops_shared::backup::RestoreReport;
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, describe};
use ops_shared::restore::{Target, Verifier};

use super::fetch::Fetched;
use super::preflight::Prepared;
use super::{CONNECT_TIMEOUT, Engines};
use crate::progress::Progress;

/// Whether the restore itself ran through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restored {
    Done,
    Failed,
}

/// How the restore and the checks after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The restore ran and every check passed.
    Passed,
    /// The restore ran and a check after it failed.
    CheckFailed,
    /// The restore itself failed, so nothing after it was checked.
    NotRestored,
}

/// Restores the fetched backup into the target (in one transaction, or with `jobs` parallel
/// jobs), then the engine counts the rows and runs the validation queries.
pub(super) async fn restore<S: ObjectStore, A: AlertSink>(
    verifier: &Verifier<S, A>,
    target: &Prepared,
    fetched: &Fetched,
    jobs: u32,
    report: &mut RestoreReport,
    progress: &Progress,
) -> Restored {
    let how = if jobs == 1 { "in one transaction".to_owned() } else { format!("with {jobs} jobs") };
    let doing = format!("restoring into {} {how}, then counting rows and validating", target.database);
    let first = report.checks.len();
    let restore_and_check = verifier.restore_and_check(
        &target.pg_restore,
        &target.creds,
        fetched.file.path(),
        &target.manifest,
        Target::Existing,
        jobs,
        report,
    );
    progress.phase(&doing, restore_and_check).await;
    // The engine's first check is the restore itself; it counts and validates only after one
    // that ran through.
    match report.checks.get(first) {
        Some(restore) if restore.passed => Restored::Done,
        _ => Restored::Failed,
    }
}

/// The checks after a restore that ran through: the freeze put back if the database was
/// frozen, a new connection, each health URL.
pub(super) async fn verify<S: ObjectStore, A>(
    restored: Restored,
    engines: &Engines<'_, S, A>,
    target: &Prepared,
    health_urls: &[String],
    report: &mut RestoreReport,
) -> Checked {
    if restored == Restored::Failed {
        return Checked::NotRestored;
    }
    // The restore made the app's tables again with the dump's privileges: a frozen database
    // must stay frozen until `dr thaw`.
    match crate::dr::reapply_freeze_if_frozen(&target.creds, &engines.verifier.store, &target.target_secret).await {
        Ok(None) => {}
        Ok(Some(_)) => report.check(
            "writes stopped again on the restored tables (dr freeze holds)",
            true,
            "opsctl dr thaw when ready".to_owned(),
        ),
        Err(err) => report.check("writes stopped again on the restored tables", false, err.to_string()),
    }
    let started = Instant::now();
    health_checks(&target.creds, health_urls, engines.http, report).await;
    report.checks_ms += started.elapsed().as_millis() as u64;
    if report.passed() { Checked::Passed } else { Checked::CheckFailed }
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
