//! Staging first: each run's outcome recorded per strategy in the stack's own state table, and,
//! in a production stack that names its staging twin, the gate createSecret passes before it
//! changes anything (see `ops_shared::staging`).

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;
use ops_shared::alert::{Alert, Severity};
use ops_shared::deployed_code::DeployedCode;
use ops_shared::rotation::Strategy;
use ops_shared::staging::{self, ForcePass, Held, Passed, Run};
use ops_shared::state::StateStore;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the gate said to a rotation about to create its pending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// No staging twin is configured: the gate is off.
    Off,
    /// Staging passed with the code this function runs.
    Open(Passed),
    /// Staging did not pass, but an operator's pass lets this one rotation through.
    Forced(ForcePass, Held),
    /// Staging did not pass: the rotation must not go on.
    Held(Held),
}

/// The records and the gate as the rotator uses them, whatever the stores behind them.
pub trait Ledger: Send + Sync {
    /// Records a run of `strategy` on `secret`: finished (`error` is `None`) or failed. A
    /// failure to record is logged, never returned: the step's own outcome stands.
    fn record<'a>(&'a self, strategy: Strategy, secret: &'a str, error: Option<String>) -> Boxed<'a, ()>;
    /// Whether the rotation `token` of `secret` may create its pending value.
    fn admit<'a>(&'a self, strategy: Strategy, secret: &'a str, token: &'a str) -> Boxed<'a, Admission>;
}

/// The staging twin: its name prefix and its state table.
pub struct Twin<T> {
    pub prefix: String,
    pub store: T,
}

/// The stack's own state table, the staging twin's (production only) and the deployed code.
pub struct Records<T, C> {
    pub own: T,
    pub staging: Option<Twin<T>>,
    pub code: C,
}

impl<T: StateStore + 'static, C: DeployedCode + 'static> Ledger for Records<T, C> {
    fn record<'a>(&'a self, strategy: Strategy, secret: &'a str, error: Option<String>) -> Boxed<'a, ()> {
        Box::pin(async move {
            let code = self.code.code_sha256().await;
            let run = Run::new(strategy, secret, Utc::now(), error, &code);
            if let Err(err) = staging::record_run(&self.own, &run).await {
                tracing::error!(secret, error = %err, "the rotation's outcome could not be recorded");
            }
        })
    }

    fn admit<'a>(&'a self, strategy: Strategy, secret: &'a str, token: &'a str) -> Boxed<'a, Admission> {
        Box::pin(async move {
            let Some(twin) = &self.staging else { return Admission::Off };
            let held = match staging::read_record(&twin.store, strategy).await {
                Ok(record) => {
                    let ours = self.code.code_sha256().await;
                    match staging::judge(&twin.prefix, strategy, record.as_ref(), &ours) {
                        Ok(passed) => return Admission::Open(passed),
                        Err(held) => held,
                    }
                }
                Err(err) => Held::Unreadable { table: staging::state_table(&twin.prefix), error: err.to_string() },
            };
            match staging::take_pass(&self.own, secret, token, Utc::now()).await {
                Ok(Some(pass)) => Admission::Forced(pass, held),
                Ok(None) => Admission::Held(held),
                Err(err) => {
                    tracing::error!(secret, error = %err, "the operator's pass could not be read; the gate holds");
                    Admission::Held(held)
                }
            }
        })
    }
}

/// The warning that an operator's pass let a rotation of `name` through: who, why, and what
/// staging had not passed.
pub fn forced_alert(source: &str, name: &str, staging: &str, pass: &ForcePass, held: &Held) -> Alert {
    Alert::new(
        source,
        Severity::Warning,
        format!("secret-rotation:forced:{name}"),
        format!("Rotation of {name} forced past staging by {}", pass.by),
    )
    .summary(format!(
        "{} let this one rotation of {name} go ahead without staging's pass, because: {}. Staging ({staging}) \
         had not passed: {held}. The next rotation waits for staging again.",
        pass.by, pass.reason
    ))
    .detail("secret", name.to_owned())
    .detail("forced_by", pass.by.clone())
    .detail("reason", pass.reason.clone())
    .detail("staging", held.to_string())
}
