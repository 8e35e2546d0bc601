//! `health-checker`: every minute, checks the app, the AI engine and the database
//! concurrently; alerts after 3 failures in a row, resolves after 2 successes.

pub mod check;
pub mod config;
pub mod error;
pub mod reports;
pub mod run;
pub mod tls;
pub mod transitions;

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Context;
use ops_shared::events::Trigger;
use ops_shared::state::{DynamoState, StateStore};
use ops_shared::status::Verdict;
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::{Deserialize, Serialize};

use crate::reports::Reports;

pub use check::{CheckResult, Class, Prober};
pub use config::{HealthConfig, Target};
pub use error::HealthError;
pub use run::{HealthRun, RunSummary};

pub const FUNCTION_NAME: &str = "health-checker";

/// A manual invoke: `{}` runs the checks, `{"report": "daily"}` sends the daily status e-mail,
/// `{"report": "weekly"}` the digest of the last whole week.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default)]
    pub report: Option<ReportKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Daily,
    Weekly,
}

/// What an invocation did: a health run, or a report with its verdict.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Run(RunSummary),
    Report { report: &'static str, verdict: Verdict },
}

impl<S: StateStore + 'static, A: AlertSink + 'static> Handler for HealthRun<S, A> {
    type Event = Trigger<RunRequest>;
    type Output = Outcome;
    type Error = HealthError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<Outcome, HealthError> {
        let Trigger::Manual(RunRequest { report: Some(kind) }) = event else {
            return self.run_until(ops_shared::lambda::deadline(&ctx)).await.map(Outcome::Run);
        };
        let reports = self.reports.as_ref().ok_or(HealthError::NoReports)?;
        let now = chrono::Utc::now();
        let (report, verdict) = match kind {
            ReportKind::Daily => ("daily", reports.daily(&self.state, &self.alerts, now).await?),
            ReportKind::Weekly => ("weekly", reports.weekly(&self.state, &self.alerts, now).await?),
        };
        Ok(Outcome::Report { report, verdict })
    }
}

/// The probes' HTTP client: per-request timeouts, TLS details kept to read certificate expiry.
pub fn http_client() -> reqwest::ClientBuilder {
    ops_shared::http::builder(Duration::from_secs(60)).tls_info(true)
}

pub fn build(startup: Startup) -> Result<HealthRun<DynamoState, SnsAlertPublisher>, ConfigError> {
    let config = HealthConfig::from_env(&startup.env)?;
    let http = ops_shared::http::build_at_startup(http_client())?;
    Ok(HealthRun {
        reports: Reports::from_env(&startup.env, &startup, http.clone())?,
        prober: Prober { http, secrets: Arc::clone(&startup.secrets) },
        state: DynamoState::new(startup.clients.dynamodb(), startup.common.state_table.clone()),
        alerts: startup.alerts,
        config,
    })
}
