//! `restore-verifier`: proves a backup restores. Monthly, or on a manual invoke that names a
//! backup (`{"backup": "latest" | "random" | "<key>"}`). The restore test itself is
//! `ops_shared::restore`, which `opsctl restore-test --local` runs too.

use std::sync::Arc;

use lambda_runtime::Context;
use ops_shared::backup::RestoreReport;
use ops_shared::events::Trigger;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::restore::{Selection, Verifier, VerifierConfig, VerifyError};
use ops_shared::{AlertSink, ConfigError, Handler, SnsAlertPublisher, Startup};
use serde::Deserialize;

pub const FUNCTION_NAME: &str = "restore-verifier";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[serde(default)]
    pub backup: Option<String>,
}

impl From<VerifyRequest> for Selection {
    fn from(request: VerifyRequest) -> Self {
        Selection::parse(request.backup.as_deref())
    }
}

/// The function: the restore test behind the Lambda handler.
pub struct VerifierFunction<S, A>(pub Verifier<S, A>);

impl<S: ObjectStore + 'static, A: AlertSink + 'static> Handler for VerifierFunction<S, A> {
    type Event = Trigger<VerifyRequest>;
    type Output = RestoreReport;
    type Error = VerifyError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<RestoreReport, VerifyError> {
        let selection = match event {
            Trigger::Schedule(_) => Selection::Latest,
            Trigger::Manual(request) => request.into(),
        };
        self.0.run(selection, ops_shared::lambda::deadline(&ctx)).await
    }
}

pub fn build(startup: Startup) -> Result<VerifierFunction<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = VerifierConfig::from_env(&startup.env)?;
    Ok(VerifierFunction(Verifier {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        config,
    }))
}
