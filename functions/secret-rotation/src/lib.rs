//! `secret-rotation`: the Secrets Manager rotation hook. One strategy per kind of secret,
//! chosen by the secret's `rotation-strategy` tag.

pub mod api_key;
pub mod config;
pub mod error;
pub mod event;
pub mod postgres;
pub mod providers;
pub mod rotator;
pub mod strategy;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::Context;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::{AlertSink, Handler};

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
