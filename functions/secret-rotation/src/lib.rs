//! `secret-rotation`: the Secrets Manager rotation hook. One strategy per kind of secret,
//! chosen by the secret's `rotation-strategy` tag.

pub mod api_key;
pub mod config;
pub mod error;
pub mod event;
pub mod postgres;
pub mod rotator;

use std::time::Duration;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::Context;
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};

pub use config::RotationConfig;
pub use error::RotationError;
pub use event::{RotationEvent, Step};
pub use rotator::{Outcome, Rotator, StepReport};

pub const FUNCTION_NAME: &str = "secret-rotation";

impl<S: SecretVersions + 'static, A: AlertSink + 'static> Handler for Rotator<S, A> {
    type Event = SecretsManagerSecretRotationEvent;
    type Output = StepReport;
    type Error = RotationError;

    async fn handle(&self, event: Self::Event, _ctx: Context) -> Result<StepReport, RotationError> {
        let event = RotationEvent::try_from(event)?;
        self.run(&event).await
    }
}

/// The function as Lambda runs it: configuration read, clients built once.
pub fn build(startup: Startup) -> Result<Rotator<SecretsManagerVersions, SnsAlertPublisher>, ConfigError> {
    let config = RotationConfig::from_env(&startup.env)?;
    let store = SecretsManagerVersions::new(startup.clients.secrets()).with_scrubber(startup.scrubber.clone());
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(10)))?;
    Ok(Rotator::new(store, startup.alerts, http, config))
}
