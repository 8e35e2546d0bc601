//! What can stop a health run or a report, and the name its alerts carry.

use ops_shared::alert::PublishError;
use ops_shared::postgres::DbError;
use ops_shared::secrets::SecretError;
use ops_shared::state::StateError;

/// The alerts' source, and the function's dimension in its metrics.
pub const SOURCE: &str = "health-checker";

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("state of target {0} kept changing under concurrent runs")]
    Contended(String),
    #[error("{} target(s) could not be recorded: {}", .0.len(), .0.join("; "))]
    Incomplete(Vec<String>),
    #[error("a report was asked for, but NAME_PREFIX and BACKUP_BUCKET are not set")]
    NoReports,
}

impl ops_shared::FunctionError for HealthError {
    fn kind(&self) -> &'static str {
        match self {
            HealthError::NoReports => "Configuration",
            _ => "DependencyFailure",
        }
    }
}
