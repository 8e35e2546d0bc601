//! `restore-verifier`: proves a backup restores. Monthly, or on a manual invoke that names a
//! backup (`{"backup": "latest" | "random" | "<key>"}`).

pub mod config;
pub mod error;
pub mod verify;

use std::sync::Arc;

use lambda_runtime::Context;
use ops_shared::backup::RestoreReport;
use ops_shared::events::Trigger;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::Deserialize;

pub use config::{ValidationQuery, VerifierConfig, default_validation_queries};
pub use error::VerifyError;
pub use verify::{Selection, Verifier};

pub const FUNCTION_NAME: &str = "restore-verifier";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[serde(default)]
    pub backup: Option<String>,
}

impl From<VerifyRequest> for Selection {
    fn from(request: VerifyRequest) -> Self {
        match request.backup.as_deref().map(str::trim) {
            None | Some("") | Some("latest") => Selection::Latest,
            Some("random") => Selection::Random,
            Some(key) => Selection::Key(key.to_owned()),
        }
    }
}

impl<S: ObjectStore + 'static, A: AlertSink + 'static> Handler for Verifier<S, A> {
    type Event = Trigger<VerifyRequest>;
    type Output = RestoreReport;
    type Error = VerifyError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<RestoreReport, VerifyError> {
        let selection = match event {
            Trigger::Schedule(_) => Selection::Latest,
            Trigger::Manual(request) => request.into(),
        };
        self.run(selection, ops_shared::lambda::deadline(&ctx)).await
    }
}

pub fn build(startup: Startup) -> Result<Verifier<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = VerifierConfig::from_env(&startup.env)?;
    Ok(Verifier {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        config,
    })
}
