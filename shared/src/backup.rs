//! What a backup is on S3: the object layout and the manifest written beside each dump, shared
//! by the function that writes backups and the one that restores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const DUMP_SUFFIX: &str = ".dump";
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

pub fn dump_key_of_manifest(manifest_key: &str) -> Option<String> {
    manifest_key.strip_suffix(MANIFEST_SUFFIX).map(|base| format!("{base}{DUMP_SUFFIX}"))
}

/// `backups` or `backups/` -> `backups/`; empty stays empty.
pub fn normalise_prefix(prefix: &str) -> String {
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
}

impl Manifest {
    pub fn total_rows(&self) -> i64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T02:00:05Z").expect("time").with_timezone(&Utc);
        let key = dump_key("backups/", "app", at, "3f2a9c1d");
        assert_eq!(key, "backups/app/2026/11/26/20261126T020005Z-3f2a9c1d.dump");
        assert_eq!(manifest_key(&key), "backups/app/2026/11/26/20261126T020005Z-3f2a9c1d.manifest.json");
        assert_eq!(dump_key_of_manifest(&manifest_key(&key)).as_deref(), Some(key.as_str()));
        assert_eq!(dump_key("backups", "app", at, "x"), dump_key("/backups/", "app", at, "x"));
    }
}
