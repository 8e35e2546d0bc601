//! Sentry reporting from the invocation wrapper. Its own test binary: Sentry's hub is global.

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::config::{Env, SentryConfig};
use ops_shared::lambda::{Function, FunctionError, Handler};
use ops_shared::{Scrubber, SecretCache};
use ops_testkit::aws::{Aws, unique};
use ops_testkit::sentry_ingest::SentryIngest;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("upstream refused key {0}")]
struct LeakyError(String);

impl FunctionError for LeakyError {
    fn kind(&self) -> &'static str {
        "DependencyFailure"
    }
}

/// A handler that fails with an error quoting a secret it read: the worst case to scrub.
struct Failing {
    secrets: SecretCache,
    secret: String,
}

impl Handler for Failing {
    type Event = serde_json::Value;
    type Output = ();
    type Error = LeakyError;

    async fn handle(&self, _event: serde_json::Value, _ctx: Context) -> Result<(), LeakyError> {
        let value = self.secrets.get(&self.secret).await.map_err(|e| LeakyError(e.to_string()))?;
        Err(LeakyError(value.value))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_invocation_sends_one_scrubbed_sentry_event_before_it_returns() {
    let ingest = SentryIngest::start().await;
    let config = SentryConfig::from_env(&Env::from_pairs([("SENTRY_DSN", ingest.dsn.as_str())])).expect("valid DSN");
    let scrubber = Scrubber::default();
    let _guard = ops_shared::telemetry::init_sentry(&config, "test-function", scrubber.clone()).expect("sentry on");

    let aws = Aws::new(ops_testkit::shared()).await;
    let secret = unique("sentry-scrub");
    let value = format!("sk-live-{}", uuid::Uuid::new_v4().simple());
    aws.secrets.create_secret().name(&secret).secret_string(&value).send().await.expect("create secret");
    let handler = Failing { secrets: SecretCache::new(aws.secrets.clone(), scrubber.clone()), secret };
    let function = Function::new("test-function", handler, scrubber);

    let mut ctx = Context::default();
    ctx.request_id = "req-1234".to_owned();
    let err = function.invoke(LambdaEvent::new(json!({}), ctx)).await.expect_err("the handler fails");
    // Checked at once: the wrapper must have flushed before returning.
    let events = ingest.events();
    assert_eq!(events.len(), 1, "exactly one Sentry event per failed invocation: {events:?}");
    assert!(!events[0].contains(&value), "the secret value must be scrubbed: {}", events[0]);
    assert!(events[0].contains("[Filtered]"));
    assert!(events[0].contains("req-1234"), "the request id is attached");
    assert_eq!(err.error_type, "DependencyFailure");
    assert!(!err.error_message.contains(&value), "the Lambda error is scrubbed too");
}

#[test]
fn an_invalid_dsn_is_a_configuration_error_not_a_panic() {
    let err =
        SentryConfig::from_env(&Env::from_pairs([("SENTRY_DSN", "https://sentry.example.com")])).expect_err("no key");
    assert_eq!(err.var(), Some("SENTRY_DSN"));
}
