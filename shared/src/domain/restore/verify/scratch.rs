//! The scratch databases a restore test restores into, named `restore_test_<UTC time>_<id>`,
//! and the ones killed runs left behind.

use chrono::{DateTime, Utc};

use crate::adapters::postgres::{describe, quote_ident};

/// Scratch databases are named `restore_test_<UTC time>_<id>`.
pub(super) const SCRATCH_PREFIX: &str = "restore_test_";
pub(super) const SCRATCH_TIME: &str = "%Y%m%d%H%M%S";
/// A scratch database older than this (Lambda's longest run) that no session uses was left by
/// a run that was killed: no run is still restoring into it.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Drops the scratch databases that killed runs left on the staging server; returns their names.
/// A failure is logged, not fatal: the test itself can still run.
pub(super) async fn drop_abandoned_scratch(admin: &tokio_postgres::Client, now: DateTime<Utc>) -> Vec<String> {
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
            tracing::warn!(error = %describe(&err), "cannot list left-over scratch databases");
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
                tracing::warn!(database = %name, error = %describe(&err), "cannot drop a left-over scratch database")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scratch_databases_older_than_a_run_are_abandoned() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").expect("time").with_timezone(&Utc);
        assert!(scratch_abandoned("restore_test_20261202113000_1a2b3c4d", now));
        assert!(!scratch_abandoned("restore_test_20261202115000_1a2b3c4d", now), "ten minutes: maybe running");
        assert!(!scratch_abandoned("restore_test_notatime_1a2b3c4d", now));
        assert!(!scratch_abandoned("app", now));
    }
}
