use crate::adapters::objects::ObjectError;
use crate::adapters::pgtools::ToolsError;
use crate::adapters::postgres::DbError;
use crate::adapters::secrets::SecretError;
use crate::domain::handoff::TaskError;
use crate::runtime::lambda::FunctionError;

/// Why a restore test could not be run at all. A backup that restores but fails its checks
/// is not an error here: it is a failed report.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("no backup with a manifest under {0}")]
    NoBackup(String),
    #[error("backup {0} has no manifest, so it is not a complete backup")]
    NoManifest(String),
    #[error("manifest {key} is unreadable: {problem}")]
    BadManifest { key: String, problem: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("staging database: {0}")]
    Database(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] ObjectError),
    #[error(transparent)]
    Tools(#[from] ToolsError),
    #[error("local file: {0}")]
    Io(String),
    #[error("restore test failed: {0}")]
    Failed(String),
    #[error("the engine task did not start: {0}")]
    Handoff(#[from] TaskError),
}

impl FunctionError for VerifyError {
    fn kind(&self) -> &'static str {
        match self {
            VerifyError::InvalidRequest(_) => "InvalidEvent",
            VerifyError::Handoff(_) => "HandoffFailed",
            VerifyError::NoBackup(_) | VerifyError::NoManifest(_) | VerifyError::BadManifest { .. } => "NoUsableBackup",
            VerifyError::Failed(_) => "RestoreTestFailed",
            VerifyError::Tools(_) => "Configuration",
            _ => "DependencyFailure",
        }
    }
}
