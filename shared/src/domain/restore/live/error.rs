//! What can stop a restore into the live project. Each names what it was doing, and keeps the
//! PostgreSQL or I/O error behind it as its source.

use std::process::ExitStatus;

use crate::adapters::postgres::{DbError, describe};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}")]
    Connect(#[from] DbError),
    #[error("{}", describe(.0))]
    Query(#[source] tokio_postgres::Error),
    #[error("{} (while running: {statement})", describe(.source))]
    Statement { statement: String, source: tokio_postgres::Error },
    #[error("{copy}: {}", describe(.source))]
    Copy { copy: String, source: tokio_postgres::Error },
    #[error("pg_restore's output ended inside {copy}")]
    CopyCut { copy: String },
    #[error("cannot run {program}: {source}")]
    Run { program: String, source: std::io::Error },
    #[error("pg_restore: {0}")]
    Wait(#[source] std::io::Error),
    #[error("pg_restore --list failed: {stderr}")]
    ListFailed { stderr: String },
    #[error("cannot write the restore list: {0}")]
    ListFile(#[source] std::io::Error),
    #[error("pg_restore's output is not readable")]
    NoOutput,
    #[error("reading pg_restore's output: {0}")]
    ReadOutput(#[source] std::io::Error),
    #[error("restoring the {section} section: {source}")]
    Section { section: String, source: Box<LiveError> },
    #[error("pg_restore of the {section} section exited {status}: {stderr}")]
    SectionFailed { section: String, status: ExitStatus, stderr: String },
    #[error("{kind} {schema}.{tag} exists and belongs to another role: this role cannot replace it")]
    NotOurs { kind: String, schema: String, tag: String },
    #[error("replacing the app's objects would drop {}, which the backup does not hold", .0.join(", "))]
    WouldDrop(Vec<String>),
    #[error("unknown kind of default privilege {0:?}")]
    UnknownDefaultPrivilege(String),
    #[error("{source}; the publications lack tables they had: {}", missing.join("; "))]
    PublicationsLacking { missing: Vec<String>, source: Box<LiveError> },
    #[error("{0}; the transaction was rolled back: nothing was changed")]
    RolledBack(#[source] Box<LiveError>),
    #[error("{source}; with {jobs} parallel jobs the database may be partly restored")]
    PartlyRestored { jobs: u32, source: Box<LiveError> },
}
