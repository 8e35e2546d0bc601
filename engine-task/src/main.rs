// The SDK and engine futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::process::ExitCode;
use std::time::Duration;

use engine_task::{Work, parse};
use ops_shared::handoff::exit_code::{FAILED, NOT_STARTED};
use ops_shared::phases::Phases;
use ops_shared::{Env, Scrubber, Startup};

#[tokio::main]
async fn main() -> ExitCode {
    ops_shared::telemetry::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let work = match parse(&args) {
        Ok(work) => work,
        Err(err) => return not_started(&err),
    };
    let env = Env::from_process();
    let scrubber = Scrubber::default();
    let sentry = match ops_shared::config::SentryConfig::from_env(&env) {
        Ok(config) => config,
        Err(err) => return not_started(&err),
    };
    let name = match work {
        Work::Backup { .. } => scheduled_backup::FUNCTION_NAME,
        Work::RestoreTest { .. } => restore_verifier::FUNCTION_NAME,
    };
    let _sentry = ops_shared::telemetry::init_sentry(&sentry, name, scrubber.clone());
    let startup = match Startup::from_env(env, scrubber, &mut Phases::start()).await {
        Ok(startup) => startup,
        Err(err) => return not_started(&err),
    };
    let result = match work {
        Work::Backup { label } => backup(startup, label).await,
        Work::RestoreTest { selection } => restore_test(startup, selection).await,
    };
    ops_shared::telemetry::flush_sentry().await;
    result
}

fn not_started(err: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %ops_shared::lambda::error_chain(err), "the engine task did not start");
    ExitCode::from(NOT_STARTED)
}

/// Prints the outcome as the function would answer it; the engine has alerted on failure.
fn finish<T: serde::Serialize, E: std::error::Error>(result: Result<T, E>, succeeded: impl Fn(&T) -> bool) -> ExitCode {
    match result {
        Ok(outcome) => {
            match serde_json::to_string(&outcome) {
                Ok(json) => tracing::info!(outcome = %json, "engine task finished"),
                Err(err) => tracing::error!(error = %err, "the outcome could not be written"),
            }
            if succeeded(&outcome) { ExitCode::SUCCESS } else { ExitCode::from(FAILED) }
        }
        Err(err) => {
            tracing::error!(error = %ops_shared::lambda::error_chain(&err), "engine task failed");
            ExitCode::from(FAILED)
        }
    }
}

async fn backup(startup: Startup, label: Option<String>) -> ExitCode {
    let http = match ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(10))) {
        Ok(http) => http,
        Err(err) => return not_started(&err),
    };
    let engine = match scheduled_backup::engine(startup, http) {
        Ok(engine) => engine,
        Err(err) => return not_started(&err),
    };
    finish(engine.run(label, None).await.map(|(_, summary)| summary), |_| true)
}

async fn restore_test(startup: Startup, selection: ops_shared::restore::Selection) -> ExitCode {
    let engine = match restore_verifier::engine(startup) {
        Ok(engine) => engine,
        Err(err) => return not_started(&err),
    };
    finish(engine.run(selection, None).await, |report| report.passed())
}
