//! The restore journal in the backup bucket: each restore's phase, so that a run finds an
//! earlier one that did not finish.

use chrono::{DateTime, Utc};
use ops_shared::backup::RestoreReport;
use ops_shared::objects::ObjectStore;
use serde::{Deserialize, Serialize};

use super::RestoreError;
use crate::bucket_json;

pub const JOURNAL_PREFIX: &str = "reports/dr-restores/";

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

pub(super) async fn read(store: &impl ObjectStore, target_secret: &str) -> Result<Option<Journal>, RestoreError> {
    let key = journal_key(target_secret);
    bucket_json::read(store, &key).await.map_err(|source| RestoreError::Journal { key, source })
}

async fn write(store: &impl ObjectStore, journal: &Journal) -> Result<(), RestoreError> {
    let key = journal_key(&journal.target_secret);
    bucket_json::write(store, &key, journal).await.map_err(|source| RestoreError::Journal { key, source })
}

/// The journal of this run, written before the restore touches the target.
pub(super) async fn begin(
    store: &impl ObjectStore,
    target_secret: &str,
    database: &str,
    backup_key: &str,
    safety_backup_key: &str,
) -> Result<Journal, RestoreError> {
    let journal = Journal {
        target_secret: target_secret.to_owned(),
        database: database.to_owned(),
        backup_key: backup_key.to_owned(),
        safety_backup_key: safety_backup_key.to_owned(),
        phase: Phase::Restoring,
        started_at: Utc::now(),
        updated_at: Utc::now(),
        failures: Vec::new(),
    };
    write(store, &journal).await?;
    Ok(journal)
}

/// Writes how the restore ended. The restore has run: a journal that cannot be closed is a
/// failure to report (false), and the alert still goes.
pub(super) async fn close(
    store: &impl ObjectStore,
    journal: Journal,
    passed: bool,
    report: &mut RestoreReport,
) -> bool {
    let journal = Journal {
        phase: if passed { Phase::Finished } else { Phase::Failed },
        updated_at: Utc::now(),
        failures: report.failures.clone(),
        ..journal
    };
    match write(store, &journal).await {
        Ok(()) => true,
        Err(err) => {
            report.failures.push(format!("{err}; the next run will take this restore for an interrupted one"));
            false
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
