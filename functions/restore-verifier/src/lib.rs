//! `restore-verifier`: proves a backup restores. Monthly, or on a manual invoke that names a
//! backup (`{"backup": "latest" | "random" | "<key>"}`). The restore test itself is
//! `ops_shared::restore`, which `opsctl restore-test --local` and the engine task run too. A
//! test that would not finish here is handed to the engine task on Fargate.

use std::sync::Arc;

use lambda_runtime::Context;
use ops_shared::backup::RestoreReport;
use ops_shared::ecs::EcsTasks;
use ops_shared::events::Trigger;
use ops_shared::handoff::{HandedOff, Handoff, Placement, Ran, TaskLauncher, hand_off};
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

/// The function: the restore test behind the Lambda handler, and the task it hands off to.
pub struct VerifierFunction<S, A, L> {
    pub engine: Verifier<S, A>,
    pub handoff: Handoff<L>,
}

/// The engine task's command for a restore test of the backup `key`.
pub fn task_command(key: &str) -> Vec<String> {
    vec!["restore-test".to_owned(), "--backup".to_owned(), key.to_owned()]
}

impl<S: ObjectStore + 'static, A: AlertSink + 'static, L: TaskLauncher + 'static> Handler
    for VerifierFunction<S, A, L>
{
    type Event = Trigger<VerifyRequest>;
    type Output = Ran<RestoreReport>;
    type Error = VerifyError;

    async fn handle(&self, event: Self::Event, ctx: Context) -> Result<Ran<RestoreReport>, VerifyError> {
        let mut selection = match event {
            Trigger::Schedule(_) => Selection::Latest,
            Trigger::Manual(request) => request.into(),
        };
        let deadline = ops_shared::lambda::deadline(&ctx);
        if let Some(handed) = self.handed_off(&mut selection, deadline, &ctx.request_id).await? {
            return Ok(Ran::HandedOff(handed));
        }
        self.engine.run(selection, deadline).await.map(Ran::Here)
    }
}

impl<S: ObjectStore, A: AlertSink, L: TaskLauncher> VerifierFunction<S, A, L> {
    /// Hands the test to the engine task if it goes there; else `selection` becomes the backup
    /// chosen, so that a random one is the one tested. A backup that cannot be chosen leaves
    /// the test here, which reports what it cannot find.
    async fn handed_off(
        &self,
        selection: &mut Selection,
        deadline: Option<std::time::Instant>,
        request_id: &str,
    ) -> Result<Option<HandedOff>, VerifyError> {
        let Some(launcher) = &self.handoff.launcher else {
            return Ok(None);
        };
        let Ok((_, manifest)) = self.engine.select(selection).await else {
            return Ok(None);
        };
        *selection = Selection::Key(manifest.key.clone());
        let estimate = if self.handoff.needs_estimate() { Some(self.engine.estimate(&manifest).await) } else { None };
        let Placement::Task { reason } = self.handoff.place(estimate.as_ref(), deadline) else {
            return Ok(None);
        };
        let what = format!("The restore test of {}", manifest.key);
        let pair = (launcher, &self.engine.alerts);
        let handed =
            hand_off(pair, (FUNCTION_NAME, &what), task_command(&manifest.key), request_id, (reason, estimate));
        Ok(Some(handed.await?))
    }
}

pub fn build(startup: Startup) -> Result<VerifierFunction<S3Objects, SnsAlertPublisher, EcsTasks>, ConfigError> {
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(std::time::Duration::from_secs(10)))?;
    let handoff = ops_shared::ecs::handoff(&startup, http)?;
    Ok(VerifierFunction { engine: engine(startup)?, handoff })
}

/// The restore engine as the function and the engine task run it.
pub fn engine(startup: Startup) -> Result<Verifier<S3Objects, SnsAlertPublisher>, ConfigError> {
    let config = VerifierConfig::from_env(&startup.env)?;
    Ok(Verifier {
        store: S3Objects::new(startup.clients.s3(), config.bucket.clone()),
        alerts: startup.alerts,
        secrets: Arc::clone(&startup.secrets),
        config,
    })
}
