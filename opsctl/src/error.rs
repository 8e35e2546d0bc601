//! opsctl's one error type: why a command could not do its work, with the underlying error
//! kept as its cause. Each says what to do; `verdict` gives its exit code.

use std::process::ExitCode;

use ops_shared::ConfigError;

use crate::dr::DrError;
use crate::dr_restore::RestoreError;
use crate::on_demand::OnDemandError;
use crate::outcome::{Outcome, Verdict};
use crate::rotate::RotateError;
use crate::sentry_rules::SentryError;
use crate::silences::SilenceError;
use crate::stack::StackError;

#[derive(Debug, thiserror::Error)]
pub enum OpsctlError {
    #[error("cannot set up HTTPS: {0}")]
    Https(#[source] reqwest::Error),
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The functions' engines could not be configured from the environment.
    #[error(transparent)]
    Engine(#[from] ConfigError),
    #[error(transparent)]
    OnDemand(#[from] OnDemandError),
    #[error(transparent)]
    Dr(#[from] DrError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Sentry(#[from] SentryError),
    #[error(transparent)]
    Rotate(#[from] RotateError),
    #[error(transparent)]
    Silence(#[from] SilenceError),
    #[error("the incident log could not be read: {0}")]
    Incidents(String),
}

impl OpsctlError {
    /// A backup, a restore test or a restore that failed is a problem found (1); the rest could
    /// not run (2).
    pub fn verdict(&self) -> Verdict {
        match self {
            OpsctlError::OnDemand(err) => err.verdict(),
            OpsctlError::Restore(err) => err.verdict(),
            OpsctlError::Dr(_) => DrError::VERDICT,
            OpsctlError::Sentry(_) => SentryError::VERDICT,
            OpsctlError::Https(_)
            | OpsctlError::Stack(_)
            | OpsctlError::Engine(_)
            | OpsctlError::Rotate(_)
            | OpsctlError::Silence(_)
            | OpsctlError::Incidents(_) => Verdict::Failed,
        }
    }
}

/// Prints what a command gave (its output, or its error on stderr) and answers the exit code.
pub fn finish(result: Result<Outcome, OpsctlError>) -> ExitCode {
    let verdict = match result {
        Ok(outcome) => {
            outcome.print();
            outcome.verdict
        }
        Err(err) => {
            eprintln!("opsctl: {err}");
            err.verdict()
        }
    };
    verdict.exit_code()
}
