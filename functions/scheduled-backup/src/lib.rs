//! `scheduled-backup`: `pg_dump` streamed to S3 with a manifest, nightly at 02:00 UTC or on a
//! manual invoke (`{"label": "pre-deploy"}`); also checks Supabase's own backups are fresh.
//! The backup itself is `ops_shared::backup`, which `opsctl backup --local` runs too.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Context;
use ops_shared::backup::{Backup, BackupConfig, BackupError, BackupSummary, valid_label};
use ops_shared::events::Trigger;
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

/// The function: the backup engine behind the Lambda handler.
pub struct BackupFunction<S, A>(pub Backup<S, A>);

impl<S: ObjectStore + 'static, A: AlertSink + 'static> Handler for BackupFunction<S, A> {
    type Event = Trigger<BackupRequest>;
    type Output = BackupSummary;
    type Error = BackupError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<BackupSummary, BackupError> {
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
        self.0.run(label, ops_shared::lambda::deadline(&ctx)).await.map(|(_, summary)| summary)
    }
}

/// Wires the function from the start-up state.
pub fn build(startup: Startup) -> Result<BackupFunction<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = BackupConfig::from_env(&startup.env)?;
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(10)))?;
    Ok(BackupFunction(Backup {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        http,
        config,
    }))
}
