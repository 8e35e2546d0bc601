use crate::adapters::objects::ObjectError;
use crate::adapters::pgtools::ToolsError;
use crate::adapters::postgres::DbError;
use crate::adapters::secrets::SecretError;
use crate::domain::handoff::TaskError;
use crate::runtime::lambda::FunctionError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot read the database: {0}")]
    Database(#[from] DbError),
    #[error(transparent)]
    Tools(#[from] ToolsError),
    #[error(
        "the backup would miss what {role} cannot read: {}; grant {role} SELECT on them, or report them if \
         the platform made them",
        tables.join(", ")
    )]
    Unreadable { role: String, tables: Vec<String> },
    #[error("pg_dump failed ({status}): {stderr}")]
    PgDumpFailed { status: String, stderr: String },
    #[error("pg_dump produced no output")]
    EmptyDump,
    #[error("the dump exceeds {parts} parts of {part_mib} MiB; raise PART_SIZE_MIB")]
    TooManyParts { parts: u32, part_mib: usize },
    #[error("cannot read pg_dump's output: {0}")]
    Stream(String),
    #[error(transparent)]
    Storage(#[from] ObjectError),
    #[error(
        "the backup did not finish within its time budget of {seconds} s (Lambda deadline less the margin); a \
         database this large needs the engine task on Fargate (deploy with TaskImageUri and TaskSubnets)"
    )]
    OutOfTime { seconds: u64 },
    #[error("the engine task did not start: {0}")]
    Handoff(#[from] TaskError),
}

impl FunctionError for BackupError {
    fn kind(&self) -> &'static str {
        match self {
            BackupError::Tools(_) => "Configuration",
            BackupError::OutOfTime { .. } => "Timeout",
            BackupError::InvalidRequest(_) => "InvalidEvent",
            BackupError::Handoff(_) => "HandoffFailed",
            _ => "BackupFailed",
        }
    }
}
