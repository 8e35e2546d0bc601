//! Performance data from the invocation wrapper: at `SENTRY_TRACES_SAMPLE_RATE` 1.0 every
//! invocation arrives as a transaction whose spans are its AWS calls, its database connection
//! and its upstream requests. Its own test binary: Sentry's hub is global.

use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::aws::AwsClients;
use ops_shared::config::{Env, SentryConfig};
use ops_shared::http::{Repeat, send_with_retry};
use ops_shared::lambda::{Function, FunctionError, Handler};
use ops_shared::postgres::DbCredentials;
use ops_shared::{Scrubber, SecretCache};
use ops_testkit::aws::{Aws, unique};
use ops_testkit::http_targets::Targets;
use ops_testkit::sentry_ingest::SentryIngest;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

impl FunctionError for Failed {
    fn kind(&self) -> &'static str {
        "DependencyFailure"
    }
}

/// Reads a secret, connects to the database with it, and calls an upstream service.
struct Busy {
    secrets: SecretCache,
    secret: String,
    upstream: String,
    http: reqwest::Client,
}

impl Handler for Busy {
    type Event = Value;
    type Output = ();
    type Error = Failed;

    async fn handle(&self, _event: Value, _ctx: Context) -> Result<(), Failed> {
        let value = self.secrets.get(&self.secret).await.map_err(|e| Failed(e.to_string()))?;
        let creds: DbCredentials = serde_json::from_str(&value.value).map_err(|e| Failed(e.to_string()))?;
        creds.connect(Duration::from_secs(5)).await.map_err(|e| Failed(e.to_string()))?;
        let url = format!("{}?token={}", self.upstream, creds.password.expose());
        send_with_retry(|| self.http.get(&url), 1, Duration::ZERO, Repeat::Idempotent)
            .await
            .map_err(|e| Failed(e.to_string()))?;
        Ok(())
    }
}

fn items(envelope: &str) -> Vec<Value> {
    envelope.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_is_a_transaction_with_its_calls_as_spans_and_no_secret_in_it() {
    let ingest = SentryIngest::start().await;
    let env = Env::from_pairs([("SENTRY_DSN", ingest.dsn.as_str()), ("SENTRY_TRACES_SAMPLE_RATE", "1.0")]);
    let config = SentryConfig::from_env(&env).expect("valid");
    let scrubber = Scrubber::default();
    let _guard = ops_shared::telemetry::init_sentry(&config, "traced-function", scrubber.clone()).expect("sentry on");

    let stack = ops_testkit::shared();
    let aws = Aws::new(stack).await;
    let secret = unique("traced-db");
    let mut creds = stack.pg.superuser("postgres");
    let password = creds.password.clone();
    creds.dbname = "postgres".into();
    let value = serde_json::to_string(&creds).expect("json");
    aws.secrets.create_secret().name(&secret).secret_string(&value).send().await.expect("create secret");
    let upstream = Targets::start(10).await;
    let clients = AwsClients::new(&aws.sdk);
    let handler = Busy {
        secrets: SecretCache::new(clients.secrets(), scrubber.clone()),
        secret,
        upstream: upstream.url("/healthy"),
        http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
    };
    let function = Function::new("traced-function", handler, scrubber);

    let mut ctx = Context::default();
    ctx.request_id = "req-trace-1".to_owned();
    function.invoke(LambdaEvent::new(json!({}), ctx)).await.expect("the handler works");

    // Checked at once: a sampled transaction is flushed before the invocation returns.
    let transactions: Vec<Value> = ingest
        .envelopes()
        .iter()
        .flat_map(|e| items(e))
        .filter(|item| item["transaction"].is_string() && item.get("spans").is_some())
        .collect();
    assert_eq!(transactions.len(), 1, "one transaction per invocation: {:?}", ingest.envelopes());
    let transaction = &transactions[0];
    assert_eq!(transaction["transaction"], "traced-function");
    assert_eq!(transaction["tags"]["request_id"], "req-trace-1");
    // What the app's Sentry alert rules exclude (`!ops.component:cineview-ops`).
    assert_eq!(transaction["tags"]["ops.component"], "cineview-ops", "{transaction}");
    assert_eq!(transaction["contexts"]["trace"]["op"], "function.aws.lambda");
    assert_eq!(transaction["contexts"]["trace"]["status"], "ok");
    let spans: Vec<(String, String)> = transaction["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| (s["op"].as_str().unwrap_or("").to_owned(), s["description"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(spans.iter().any(|(op, d)| op == "aws.request" && d.ends_with("GetSecretValue")), "{spans:?}");
    assert!(spans.iter().any(|(op, d)| op == "db.connect" && d.starts_with("connect 127.0.0.1:")), "{spans:?}");
    let upstream_span = format!("GET {}", upstream.url("/healthy"));
    assert!(spans.iter().any(|(op, d)| op == "http.client" && *d == upstream_span), "{spans:?}");
    for envelope in ingest.envelopes() {
        assert!(!envelope.contains(password.as_str()), "no secret value in what is sent: {envelope}");
        assert!(!envelope.contains("token="), "no query string in what is sent: {envelope}");
    }
}
