//! `scheduled-backup`: `pg_dump` streamed to S3 with a manifest, nightly at 02:00 UTC or on a
//! manual invoke (`{"label": "pre-deploy"}`); also checks Supabase's own backups are fresh.
//! The backup itself is `ops_shared::backup`, which `opsctl backup --local` and the engine task
//! run too. A backup that would not finish here is handed to the engine task on Fargate.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Context;
use ops_shared::backup::take::failed_metrics;
use ops_shared::backup::{Backup, BackupConfig, BackupError, BackupSummary, valid_label};
use ops_shared::ecs::EcsTasks;
use ops_shared::events::Trigger;
use ops_shared::handoff::{Handoff, Placement, Ran, TaskLauncher, hand_off};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::Deserialize;

pub const FUNCTION_NAME: &str = "scheduled-backup";

/// A manual invoke: `{}` or `{"label": "pre-deploy"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    #[serde(default)]
    pub label: Option<String>,
}

/// The function: the backup engine behind the Lambda handler, and the task it hands off to.
pub struct BackupFunction<S, A, L> {
    pub engine: Backup<S, A>,
    pub handoff: Handoff<L>,
}

/// The engine task's command for a backup labelled `label`.
pub fn task_command(label: Option<&str>) -> Vec<String> {
    let mut command = vec!["backup".to_owned()];
    if let Some(label) = label {
        command.extend(["--label".to_owned(), label.to_owned()]);
    }
    command
}

impl<S: ObjectStore + 'static, A: AlertSink + 'static, L: TaskLauncher + 'static> Handler for BackupFunction<S, A, L> {
    type Event = Trigger<BackupRequest>;
    type Output = Ran<BackupSummary>;
    type Error = BackupError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<Ran<BackupSummary>, BackupError> {
        let label = match event {
            Trigger::Schedule(_) => None,
            Trigger::Manual(request) => request.label,
        };
        if let Some(label) = &label
            && !valid_label(label)
        {
            return Err(BackupError::InvalidRequest(format!(
                "label {label:?} must be 1-40 letters, digits, '-' or '_'"
            )));
        }
        let deadline = ops_shared::lambda::deadline(&ctx);
        let estimate = if self.handoff.needs_estimate() { self.engine.estimate().await } else { None };
        match (self.handoff.place(estimate.as_ref(), deadline), &self.handoff.launcher) {
            (Placement::Task { reason }, Some(launcher)) => {
                let what = format!("The backup of {}", self.engine.config.database_secret_arn);
                let command = task_command(label.as_deref());
                let alerts = (launcher, &self.engine.alerts);
                match hand_off(alerts, (FUNCTION_NAME, &what), command, &ctx.request_id, (reason, estimate)).await {
                    Ok(handed) => Ok(Ran::HandedOff(handed)),
                    Err(err) => {
                        // The backup-missing alarm counts this night as failed.
                        failed_metrics().emit();
                        Err(err.into())
                    }
                }
            }
            _ => self.engine.run(label, deadline).await.map(|(_, summary)| Ran::Here(summary)),
        }
    }
}

/// Wires the function from the start-up state.
pub fn build(startup: Startup) -> Result<BackupFunction<S3Objects, SnsAlertPublisher, EcsTasks>, ConfigError> {
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(10)))?;
    let handoff = ops_shared::ecs::handoff(&startup, http.clone())?;
    Ok(BackupFunction { engine: engine(startup, http)?, handoff })
}

/// The backup engine as the function and the engine task run it.
pub fn engine(startup: Startup, http: reqwest::Client) -> Result<Backup<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = BackupConfig::from_env(&startup.env)?;
    Ok(Backup {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        http,
        config,
    })
}
