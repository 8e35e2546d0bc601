//! `secret-rotation`: the Secrets Manager rotation hook. One strategy per kind of secret,
//! chosen by the secret's `rotation-strategy` tag.

pub mod api_key;
pub mod config;
pub mod error;
pub mod event;
pub mod postgres;
pub mod rotator;
pub mod staging;

use std::time::Duration;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use lambda_runtime::Context;
use ops_shared::deployed_code::LambdaCode;
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::state::DynamoState;
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};

pub use config::RotationConfig;
pub use error::RotationError;
pub use event::{RotationEvent, Step};
pub use rotator::{Outcome, Rotator, StepReport};
pub use staging::{Admission, Ledger, Records, Twin};

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
    let records = records(&startup, config.staging_prefix.clone());
    Ok(Rotator::new(store, startup.alerts, http, config).with_ledger(records))
}

/// The stack's state table, the staging twin's when `staging_prefix` names one, and this
/// function's deployed code as Lambda reports it.
pub fn records(startup: &Startup, staging_prefix: Option<String>) -> Records<DynamoState, LambdaCode> {
    let dynamodb = startup.clients.dynamodb();
    let staging = staging_prefix.map(|prefix| Twin {
        store: DynamoState::new(dynamodb.clone(), ops_shared::staging::state_table(&prefix)),
        prefix,
    });
    let code = LambdaCode::new(startup.clients.lambda(), startup.env.optional("AWS_LAMBDA_FUNCTION_NAME"));
    Records { own: DynamoState::new(dynamodb, startup.common.state_table.clone()), staging, code }
}
