//! Telemetry: JSON logs (the runtime's span puts the request id on every line), Sentry with a
//! scrubbing `before_send`, and CloudWatch Embedded Metric Format on stdout.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::runtime::config::SentryConfig;
use crate::runtime::scrub::Scrubber;
pub use crate::runtime::trace::{TraceSpan, request_description};

/// How long an invocation waits for Sentry to deliver before it returns (Lambda freezes the
/// process right after the response).
pub(crate) const SENTRY_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The tag every event and transaction of the ops functions carries, whichever Sentry project
/// `SENTRY_DSN` names: the app's alert rules exclude it (`!ops.component:cineview-ops`), so an
/// ops function (a backup is a transaction of minutes) never counts as the app's traffic.
pub const OPS_COMPONENT_TAG: &str = "ops.component";
/// The value of [`OPS_COMPONENT_TAG`].
pub const OPS_COMPONENT: &str = "cineview-ops";

/// JSON logs on stdout, filtered by `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    init_logging_to(filter, std::io::stdout);
}

/// [`init_logging`] with an explicit filter and destination (tests read what is written).
pub fn init_logging_to<W>(filter: EnvFilter, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let _ = json_logs(filter, writer).try_init();
}

/// The project's log format: one JSON object a line, event fields at the top level, the
/// current span (with the request id) under `span`.
pub(crate) fn json_logs<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .finish()
}

/// Starts Sentry when a DSN is configured. Every event is scrubbed of the secret values this
/// process has read and of credential-named fields before it leaves.
pub fn init_sentry(config: &SentryConfig, function: &str, scrubber: Scrubber) -> Option<sentry::ClientInitGuard> {
    let dsn = config.dsn.clone()?;
    // The rate was range-checked when the configuration was read (sentry panics otherwise).
    let mut options = sentry::ClientOptions::default().traces_sample_rate(config.traces_sample_rate);
    options.dsn = Some(dsn);
    options.environment = Some(config.environment.clone().into());
    options.release = Some(format!("{function}@{}", env!("CARGO_PKG_VERSION")).into());
    options.send_default_pii = false;
    options.shutdown_timeout = SENTRY_FLUSH_TIMEOUT;
    options.before_send = Some(Arc::new(move |event| scrub_event(event, &scrubber)));
    options.transport = Some(Arc::new(SharedTlsTransport));
    let guard = sentry::init(options);
    sentry::configure_scope(|scope| tag_scope(scope, function));
    Some(guard)
}

/// The tags of every event and transaction the process sends: the function's name and
/// [`OPS_COMPONENT_TAG`].
fn tag_scope(scope: &mut sentry::Scope, function: &str) {
    scope.set_tag("function", function);
    scope.set_tag(OPS_COMPONENT_TAG, OPS_COMPONENT);
}

/// Sentry's own reqwest transport on the process's shared TLS configuration, so starting
/// Sentry does not read the system's roots a second time.
struct SharedTlsTransport;

impl sentry::TransportFactory for SharedTlsTransport {
    fn create_transport_with_options(&self, options: sentry::TransportOptions) -> Arc<dyn sentry::Transport> {
        let transport = sentry::transports::ReqwestHttpTransportOptions::from(options);
        // Sentry's default client otherwise: no timeouts of its own, proxies from the environment.
        let transport = match crate::adapters::http::with_shared_tls(reqwest::Client::builder()).build() {
            Ok(client) => transport.with_client(client),
            Err(_) => transport,
        };
        Arc::new(transport.build())
    }
}

fn scrub_event(
    event: sentry::protocol::Event<'static>,
    scrubber: &Scrubber,
) -> Option<sentry::protocol::Event<'static>> {
    let mut value = serde_json::to_value(&event).ok()?;
    scrubber.scrub_json(&mut value);
    match serde_json::from_value(value) {
        Ok(scrubbed) => Some(scrubbed),
        // Never send an event we could not scrub; say that one was withheld instead.
        Err(_) => Some(sentry::protocol::Event {
            message: Some("an event was withheld because it could not be scrubbed".to_owned()),
            level: event.level,
            ..Default::default()
        }),
    }
}

/// Waits (bounded) until queued Sentry events are delivered. Blocking, so run off the runtime.
pub async fn flush_sentry() {
    if let Some(client) = sentry::Hub::current().client() {
        let _ = tokio::task::spawn_blocking(move || client.flush(Some(SENTRY_FLUSH_TIMEOUT))).await;
    }
}

/// CloudWatch metric units used by this project.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Bytes,
    BytesPerSecond,
    Percent,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::Percent => "Percent",
            Unit::None => "None",
        }
    }
}

/// One Embedded Metric Format record: a namespace, one dimension set, some values.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, Unit)>,
}

impl Metrics {
    pub fn new(namespace: &str) -> Self {
        Metrics { namespace: namespace.to_owned(), dimensions: Vec::new(), values: Vec::new() }
    }

    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn value(mut self, name: &str, value: f64, unit: Unit) -> Self {
        self.values.push((name.to_owned(), value, unit));
        self
    }

    pub fn to_json(&self) -> Value {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [self.dimensions.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()],
                    "Metrics": self.definitions(),
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            root.insert(name.clone(), json!(value));
        }
        Value::Object(root)
    }

    /// The metric definitions of the record: each value's name and unit.
    fn definitions(&self) -> Vec<Value> {
        self.values.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect()
    }

    /// Writes the record as one line on stdout, where the Lambda log agent picks it up.
    pub fn emit(&self) {
        if METRICS_ON_STDOUT.load(std::sync::atomic::Ordering::Relaxed) {
            println!("{}", self.to_json());
        }
    }
}

static METRICS_ON_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Stops metric records from being written: for a process whose stdout is an operator's
/// (opsctl runs the functions' engines), where no log agent reads them.
pub fn silence_metrics() {
    METRICS_ON_STDOUT.store(false, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_transactions_carry_the_ops_component_tag() {
        let mut scope = sentry::Scope::default();
        tag_scope(&mut scope, "backup");
        let mut transaction = sentry::protocol::Transaction { name: Some("backup".into()), ..Default::default() };
        scope.apply_to_transaction(&mut transaction);
        assert_eq!(transaction.tags.get("ops.component").map(String::as_str), Some("cineview-ops"));
        assert_eq!(transaction.tags.get("function").map(String::as_str), Some("backup"));
        let event = scope.apply_to_event(sentry::protocol::Event::default()).expect("kept");
        assert_eq!(event.tags.get("ops.component").map(String::as_str), Some("cineview-ops"));
    }

    #[test]
    fn emf_record_declares_every_value_and_dimension() {
        let record = Metrics::new("Ops/Health")
            .dimension("Target", "app")
            .value("Up", 1.0, Unit::Count)
            .value("LatencyMs", 120.0, Unit::Milliseconds)
            .to_json();
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ops/Health");
        assert_eq!(directive["Dimensions"], json!([["Target"]]));
        assert_eq!(directive["Metrics"][1], json!({"Name": "LatencyMs", "Unit": "Milliseconds"}));
        assert_eq!(record["Target"], "app");
        assert_eq!(record["LatencyMs"], 120.0);
        assert!(record["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
    }
}
