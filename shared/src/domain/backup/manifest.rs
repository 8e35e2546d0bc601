//! What a backup is on S3: the object layout (`<prefix><db>/<YYYY>/<MM>/<DD>/<started-at>-<id>`)
//! and the manifest written beside each dump, whose presence is what makes a backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::scope::{LeftOut, Platform};

pub const DUMP_SUFFIX: &str = ".dump";
/// The label of the backup `opsctl dr restore` takes of a database before restoring into it:
/// it undoes that restore, and is never "the latest backup" of the database.
pub const SAFETY_LABEL: &str = "pre-restore";
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// `backups/<db>/<YYYY>/<MM>/<DD>/<started-at>-<id>.dump`
pub fn dump_key(prefix: &str, database: &str, started_at: DateTime<Utc>, backup_id: &str) -> String {
    format!(
        "{}{}/{}/{}{}",
        normalise_prefix(prefix),
        database,
        started_at.format("%Y/%m/%d"),
        started_at.format("%Y%m%dT%H%M%SZ"),
        format_args!("-{backup_id}{DUMP_SUFFIX}")
    )
}

pub fn manifest_key(dump_key: &str) -> String {
    format!("{}{MANIFEST_SUFFIX}", dump_key.strip_suffix(DUMP_SUFFIX).unwrap_or(dump_key))
}

/// `backups` or `backups/` -> `backups/`; empty stays empty.
pub(crate) fn normalise_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() { String::new() } else { format!("{trimmed}/") }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    pub schema: String,
    pub table: String,
    pub rows: i64,
}

/// Written last, and only when the dump is complete: its presence is what makes a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub backup_id: String,
    pub label: Option<String>,
    pub database: String,
    pub key: String,
    pub format: String,
    pub server_version: String,
    pub pg_dump_version: String,
    /// pg_dump's compression, `gzip:6` or `zstd:3`; empty in manifests from before it was
    /// recorded (those are gzip).
    #[serde(default)]
    pub compression: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub sha256: String,
    pub snapshot: String,
    pub part_size_bytes: u64,
    pub parts: u32,
    pub tables: Vec<TableCount>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The database the dump came from; absent in manifests from before it was recorded.
    #[serde(default)]
    pub source: Option<BackupSource>,
    #[serde(default)]
    pub platform: Platform,
    /// What the dump leaves out on purpose, and why.
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    /// `pg_database_size` when the backup started: with its duration, the rate the next
    /// backup's estimate starts from. Absent in manifests from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_bytes: Option<u64>,
}

/// The name in a Secrets Manager ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6
/// random characters>`).
fn secret_name(arn: &str) -> Option<&str> {
    let (_, named) = arn.split_once(":secret:")?;
    let (name, suffix) = named.rsplit_once('-')?;
    (suffix.len() == 6).then_some(name)
}

/// Which database a backup is of: a restore test or a disaster recovery picks among the
/// backups of the database it serves (on Supabase every database is called `postgres`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSource {
    pub host: String,
    pub port: u16,
    pub database: String,
    /// The secret the backup read the credentials from: its ARN, or as configured when
    /// Secrets Manager named none.
    pub secret: String,
}

impl Manifest {
    pub fn total_rows(&self) -> i64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn is_safety_backup(&self) -> bool {
        self.label.as_deref() == Some(SAFETY_LABEL)
    }

    /// Whether the backup was taken with the database secret `secret`, named by its ARN (as the
    /// template configures it) or by its name. Manifests from before the source was recorded
    /// cannot say: they count.
    pub(crate) fn is_from_secret(&self, secret: &str) -> bool {
        self.source.as_ref().is_none_or(|source| source.secret == secret || secret_name(&source.secret) == Some(secret))
    }

    /// Whether the backup is of database `database` on `host`:`port` (same caveat).
    pub fn is_of_database(&self, host: &str, port: u16, database: &str) -> bool {
        self.source.as_ref().is_none_or(|s| s.host == host && s.port == port && s.database == database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_known_by_its_arn_or_its_name() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cineview-database-Ab12Cd";
        assert_eq!(secret_name(arn), Some("cineview-database"));
        assert_eq!(secret_name("cineview-database"), None);
        assert_eq!(secret_name("arn:aws:secretsmanager:eu-west-1:1:secret:x-toolong"), None);
    }

    #[test]
    fn keys_follow_the_layout() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T02:00:05Z").expect("time").with_timezone(&Utc);
        let key = dump_key("backups/", "app", at, "3f2a9c1d");
        assert_eq!(key, "backups/app/2026/11/26/20261126T020005Z-3f2a9c1d.dump");
        assert_eq!(manifest_key(&key), "backups/app/2026/11/26/20261126T020005Z-3f2a9c1d.manifest.json");
        assert_eq!(dump_key("backups", "app", at, "x"), dump_key("/backups/", "app", at, "x"));
    }
}
