//! `scheduled-backup`: `pg_dump` streamed to S3 with a manifest, nightly at 02:00 UTC or on a
//! manual invoke (`{"label": "pre-deploy"}`); also checks Supabase's own backups are fresh.

pub mod backup;
pub mod config;
pub mod dump;
pub mod error;
pub mod platform;

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Context;
use ops_shared::events::Trigger;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::Deserialize;

pub use backup::{Backup, BackupSummary, Dumped, Plan};
pub use config::{BackupConfig, Compression};
pub use error::BackupError;

pub const FUNCTION_NAME: &str = "scheduled-backup";

/// A manual invoke: `{}` or `{"label": "pre-deploy"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    #[serde(default)]
    pub label: Option<String>,
}

fn valid_label(label: &str) -> bool {
    (1..=40).contains(&label.len()) && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl<S: ObjectStore + 'static, A: AlertSink + 'static> Handler for Backup<S, A> {
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
        self.run(label, ops_shared::lambda::deadline(&ctx)).await.map(|(_, summary)| summary)
    }
}

/// Wires the function from the start-up state.
pub fn build(startup: Startup) -> Result<Backup<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = BackupConfig::from_env(&startup.env)?;
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(10)))?;
    Ok(Backup {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        http,
        config,
    })
}
