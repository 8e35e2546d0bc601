//! The invocation wrapper every function's `main` uses: configuration and clients are built
//! once per cold start; each invocation parses its event, runs the handler, reports a failure
//! to Sentry and flushes it before the response goes back. Each invocation is a Sentry
//! transaction (sampled at `SENTRY_TRACES_SAMPLE_RATE`) whose spans are the AWS calls, the
//! database and the upstream requests made on its behalf.

pub use crate::runtime::errors::error_chain;
use std::future::Future;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use sentry::SentryFutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::adapters::aws::{AwsClients, load_sdk_config};
use crate::adapters::secrets::{EnvFallback, SecretCache};
use crate::adapters::sns::SnsAlertPublisher;
use crate::runtime::config::{CommonConfig, ConfigError, Env};
use crate::runtime::phases::Phases;
use crate::runtime::scrub::Scrubber;
use crate::runtime::telemetry::{flush_sentry, init_logging, init_sentry};

/// An error a handler returns. `kind` becomes the Lambda `errorType`, so callers and alarms
/// can tell a bad event from a broken dependency.
pub trait FunctionError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> &'static str;
}

/// A function's logic, independent of the Lambda runtime.
pub trait Handler: Send + Sync + 'static {
    type Event: DeserializeOwned + Send;
    type Output: Serialize + Send;
    type Error: FunctionError;

    fn handle(
        &self,
        event: Self::Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// Everything built once per cold start and handed to a function's constructor.
pub struct Startup {
    pub env: Env,
    pub common: CommonConfig,
    pub sdk: SdkConfig,
    pub clients: AwsClients,
    pub secrets: Arc<SecretCache>,
    pub alerts: SnsAlertPublisher,
    pub scrubber: Scrubber,
}

impl Startup {
    /// Reads the shared configuration and builds the AWS clients, timing each in `phases`.
    pub async fn from_env(env: Env, scrubber: Scrubber, phases: &mut Phases) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(&env)?;
        phases.config += phases.lap();
        let credentials_in_env = env.get("AWS_ACCESS_KEY_ID").is_some() && env.get("AWS_SECRET_ACCESS_KEY").is_some();
        let sdk = load_sdk_config(&common.region, common.endpoint_url.as_deref(), credentials_in_env).await;
        phases.sdk_config = phases.lap();
        let clients = AwsClients::new(&sdk);
        // Every function reads secrets and raises alerts; the other clients wait for their use.
        let (secrets_client, sns_client) = (clients.secrets(), clients.sns());
        phases.aws_clients = phases.lap();
        let secrets =
            Arc::new(SecretCache::new(secrets_client, scrubber.clone()).with_fallback(EnvFallback::from_env(&env)?));
        let alerts = SnsAlertPublisher::new(sns_client, common.alert_topic_arn.clone());
        phases.shared_state = phases.lap();
        Ok(Startup { env, common, sdk, clients, secrets, alerts, scrubber })
    }
}

/// Wraps a handler: event parsing, error reporting and Sentry flushing per invocation.
pub struct Function<H> {
    name: &'static str,
    handler: H,
    scrubber: Scrubber,
}

impl<H: Handler> Function<H> {
    pub fn new(name: &'static str, handler: H, scrubber: Scrubber) -> Self {
        Function { name, handler, scrubber }
    }

    /// One invocation, as the runtime drives it.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<H::Output, Diagnostic> {
        // An ERROR-level span is enabled whatever RUST_LOG says, so every line logged during
        // the invocation carries the request id (the runtime's own span is INFO).
        let span = tracing::error_span!("invocation", requestId = %event.context.request_id, function = self.name);
        // A hub of its own, so the transaction's spans follow the invocation across threads.
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
        self.traced(event).instrument(span).bind_hub(hub).await
    }

    /// The invocation as a Sentry transaction named after the function, tagged with the
    /// request id; sent before the response goes back when it is sampled.
    async fn traced(&self, event: LambdaEvent<Value>) -> Result<H::Output, Diagnostic> {
        let request_id = event.context.request_id.clone();
        let transaction = sentry::start_transaction(sentry::TransactionContext::new(self.name, "function.aws.lambda"));
        transaction.set_tag("request_id", &request_id);
        sentry::configure_scope(|scope| scope.set_span(Some(transaction.clone().into())));
        let result = self.invoke_in_span(event).await;
        transaction.set_status(match &result {
            Ok(_) => sentry::protocol::SpanStatus::Ok,
            Err(_) => sentry::protocol::SpanStatus::InternalError,
        });
        // `true` is reliable (a transaction that will be sent); `false` may also mean "deferred",
        // which here means not sent.
        #[expect(deprecated)]
        let sampled = transaction.is_sampled();
        sentry::configure_scope(|scope| scope.set_span(None));
        transaction.finish();
        if sampled {
            flush_sentry().await;
        }
        result
    }

    async fn invoke_in_span(&self, event: LambdaEvent<Value>) -> Result<H::Output, Diagnostic> {
        let (payload, ctx) = event.into_parts();
        let request_id = ctx.request_id.clone();
        let result = match serde_json::from_value::<H::Event>(payload) {
            Err(err) => Err(Diagnostic {
                error_type: "InvalidEvent".to_owned(),
                error_message: format!("{} cannot handle this event: {err}", self.name),
            }),
            Ok(event) => self.handler.handle(event, ctx).await.map_err(|err| Diagnostic {
                error_type: err.kind().to_owned(),
                error_message: self.scrubber.scrub_str(&error_chain(&err)),
            }),
        };
        if let Err(diagnostic) = &result {
            let (error_type, error) = (&diagnostic.error_type, &diagnostic.error_message);
            tracing::error!(error_type = %error_type, error = %error, "invocation failed");
            sentry::with_scope(
                |scope| {
                    scope.set_tag("function", self.name);
                    scope.set_tag("request_id", &request_id);
                    scope.set_tag("error_type", &diagnostic.error_type);
                },
                || {
                    sentry::capture_message(
                        &format!("{}: {}", diagnostic.error_type, diagnostic.error_message),
                        sentry::Level::Error,
                    )
                },
            );
            flush_sentry().await;
        }
        result
    }
}

/// The invocation's deadline as an [`std::time::Instant`] (`None` when the runtime gave none,
/// as in tests), so long work can keep time to clean up before Lambda stops it.
pub fn deadline(ctx: &Context) -> Option<std::time::Instant> {
    if ctx.deadline == 0 {
        return None;
    }
    let left = ctx.deadline().duration_since(std::time::SystemTime::now()).unwrap_or_default();
    Some(std::time::Instant::now() + left)
}

/// Runs a function under the Lambda runtime. `build` turns the shared start-up state into the
/// handler; a configuration error stops the cold start with a log line naming the variable.
/// The first event logs how long each start-up phase took (see [`Phases`]).
pub async fn run<H, B, Fut, E>(name: &'static str, build: B) -> ExitCode
where
    H: Handler,
    B: FnOnce(Startup) -> Fut,
    Fut: Future<Output = Result<H, E>>,
    E: std::error::Error,
{
    let mut phases = Phases::start();
    init_logging();
    phases.logging = phases.lap();
    let env = Env::from_process();
    let scrubber = Scrubber::default();
    let sentry_config = match crate::runtime::config::SentryConfig::from_env(&env) {
        Ok(config) => config,
        Err(err) => return startup_failed(name, &err),
    };
    phases.config = phases.lap();
    let _sentry = init_sentry(&sentry_config, name, scrubber.clone());
    phases.sentry = phases.lap();
    let startup = match Startup::from_env(env, scrubber.clone(), &mut phases).await {
        Ok(startup) => startup,
        Err(err) => return startup_failed(name, &err),
    };
    let handler = match build(startup).await {
        Ok(handler) => handler,
        Err(err) => return startup_failed(name, &err),
    };
    phases.build = phases.lap();
    let function = Arc::new(Function::new(name, handler, scrubber));
    // Taken by the first event: the runtime phase ends when it arrives.
    let cold_start = Mutex::new(Some(phases));
    let service = service_fn(move |event: LambdaEvent<Value>| {
        if let Some(mut phases) = cold_start.lock().ok().and_then(|mut pending| pending.take()) {
            phases.runtime = phases.lap();
            phases.log(name);
        }
        let function = Arc::clone(&function);
        async move { function.invoke(event).await }
    });
    match lambda_runtime::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(function = name, error = %err, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

fn startup_failed(name: &str, err: &dyn std::error::Error) -> ExitCode {
    let message = error_chain(err);
    tracing::error!(function = name, error = %message, "start-up failed");
    sentry::capture_message(&format!("{name} start-up failed: {message}"), sentry::Level::Fatal);
    if let Some(client) = sentry::Hub::current().client() {
        client.flush(Some(crate::runtime::telemetry::SENTRY_FLUSH_TIMEOUT));
    }
    ExitCode::FAILURE
}
