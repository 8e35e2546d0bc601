//! `health-checker`: every minute, checks the app, the AI engine and the database
//! concurrently; alerts after 3 failures in a row, resolves after 2 successes.

pub mod check;
pub mod config;
pub mod run;
pub mod slo;
pub mod tls;
pub mod transitions;

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Context;
use ops_shared::events::Trigger;
use ops_shared::state::{DynamoState, StateStore};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::Deserialize;

pub use check::{CheckResult, Class, Prober};
pub use config::{HealthConfig, Target};
pub use run::{HealthError, HealthRun, RunSummary};

pub const FUNCTION_NAME: &str = "health-checker";

/// A manual invoke takes no parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {}

impl<S: StateStore + 'static, A: AlertSink + 'static> Handler for HealthRun<S, A> {
    type Event = Trigger<RunRequest>;
    type Output = RunSummary;
    type Error = HealthError;

    async fn handle(&self, _event: Self::Event, _ctx: Context) -> Result<RunSummary, HealthError> {
        self.run().await
    }
}

/// The HTTP client health checks use: per-request timeouts, TLS details kept for expiry checks.
/// The probes' client: TLS details kept, to read certificate expiry.
pub fn http_client() -> reqwest::ClientBuilder {
    ops_shared::http::builder(Duration::from_secs(60)).tls_info(true)
}

pub fn build(startup: Startup) -> Result<HealthRun<DynamoState, SnsAlertPublisher>, ConfigError> {
    let config = HealthConfig::from_env(&startup.env)?;
    let http = ops_shared::http::build_at_startup(http_client())?;
    Ok(HealthRun {
        prober: Prober { http, secrets: Arc::clone(&startup.secrets) },
        state: DynamoState::new(startup.clients.dynamodb(), startup.common.state_table.clone()),
        alerts: startup.alerts,
        config,
    })
}
