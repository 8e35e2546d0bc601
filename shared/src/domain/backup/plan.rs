//! A backup about to be taken (what its manifest says that is known before the dump starts)
//! and what its dump produced: the two halves of the manifest written last.

use chrono::{DateTime, Utc};

use super::config::Compression;
use super::manifest::{BackupSource, Manifest, TableCount};
use super::scope::Scope;
use crate::adapters::objects::UploadedPart;

/// What a finished stream produced.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub size: u64,
    pub sha256: String,
    pub parts: Vec<UploadedPart>,
}

/// A backup about to be taken: what its manifest says that is known before the dump starts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    pub backup_id: String,
    pub label: Option<String>,
    pub database: String,
    pub server_version: String,
    pub pg_dump_version: String,
    pub compression: Compression,
    pub snapshot: String,
    pub started_at: DateTime<Utc>,
    pub source: BackupSource,
    /// What the dump holds.
    pub scope: Scope,
    /// The database's size on disk at the start.
    pub database_bytes: Option<u64>,
}

/// What a dump produced: its snapshot's row counts, the uploaded parts, pg_dump's warnings.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub tables: Vec<TableCount>,
    pub streamed: Streamed,
    pub warnings: Vec<String>,
}

impl Plan {
    /// The manifest of the finished backup.
    pub fn manifest(&self, dumped: Dumped, part_size: usize) -> Manifest {
        Manifest {
            version: 1,
            backup_id: self.backup_id.clone(),
            label: self.label.clone(),
            database: self.database.clone(),
            key: self.key.clone(),
            format: "pg_dump custom".to_owned(),
            server_version: self.server_version.clone(),
            pg_dump_version: self.pg_dump_version.clone(),
            compression: self.compression.to_string(),
            started_at: self.started_at,
            finished_at: Utc::now(),
            size_bytes: dumped.streamed.size,
            sha256: dumped.streamed.sha256,
            snapshot: self.snapshot.clone(),
            part_size_bytes: part_size as u64,
            parts: dumped.streamed.parts.len() as u32,
            tables: dumped.tables,
            warnings: dumped.warnings,
            source: Some(self.source.clone()),
            platform: self.scope.platform,
            left_out: self.scope.left_out.clone(),
            database_bytes: self.database_bytes,
        }
    }
}
