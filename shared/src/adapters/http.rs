//! The one HTTP client setup: rustls on the shared roots, explicit timeouts, a user agent
//! naming the project.

use std::time::Duration;

use crate::runtime::trace::{TraceSpan, request_description};

pub(crate) const USER_AGENT: &str = concat!("cineview-ops/", env!("CARGO_PKG_VERSION"));

/// The project's client settings, for callers that add their own (health checks read TLS info).
/// TLS is the process's shared configuration: the system's roots are read once, at the first
/// HTTPS handshake, instead of by every client as it is built.
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout);
    with_shared_tls(builder)
}

/// `builder` on the shared TLS configuration. That cannot fail with aws-lc-rs's defaults; should
/// it, reqwest sets TLS up itself as before.
pub(crate) fn with_shared_tls(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match crate::adapters::tls::https_config() {
        Ok(config) => builder.tls_backend_preconfigured(config),
        Err(_) => builder,
    }
}

/// A client whose every request gives up after `timeout` (connecting included).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).build()
}

/// Builds a client at a function's start-up: a failure (no TLS roots, say) is a start-up
/// error that says so, not a complaint about some configuration variable.
pub fn build_at_startup(
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, crate::runtime::config::ConfigError> {
    builder
        .build()
        .map_err(|e| crate::runtime::config::ConfigError::Setup { what: "the HTTPS client", problem: e.to_string() })
}

/// Whether a request may be sent again when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads and deletes: sending twice does no harm, so timeouts and 5xx are retried too.
    Idempotent,
    /// Creates: only a request the server surely did not act on (no connection, 429) is sent
    /// again; after a timeout, a lost connection or a 5xx the caller must look before retrying.
    NotIdempotent,
}

/// True when the server may have acted on the request although it did not say so: a timeout,
/// a connection lost after the request went out, or a 5xx.
pub fn outcome_unknown(result: &Result<reqwest::Response, reqwest::Error>) -> bool {
    match result {
        Ok(response) => response.status().is_server_error(),
        Err(err) => !err.is_connect() && !err.is_builder(),
    }
}

/// Sends the request `build` makes up to `attempts` times in all, waiting `backoff`, then twice
/// that, and so on, while the outcome is one `repeat` allows to retry. The last response or
/// error is returned as it is.
pub async fn send_with_retry<F>(
    build: F,
    attempts: u32,
    backoff: Duration,
    repeat: Repeat,
) -> Result<reqwest::Response, reqwest::Error>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut attempt = 1;
    loop {
        let (client, request) = build().build_split();
        let request = request?;
        let span = TraceSpan::start("http.client", &request_description(request.method(), request.url()));
        let result = client.execute(request).await;
        if !result.as_ref().is_ok_and(|r| r.status().is_success()) {
            span.fail();
        }
        drop(span);
        let refused_before_acting = match &result {
            Ok(response) => response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS,
            Err(err) => err.is_connect(),
        };
        let transient = refused_before_acting || (repeat == Repeat::Idempotent && outcome_unknown(&result));
        if !transient || attempt >= attempts {
            return result;
        }
        tokio::time::sleep(backoff * 2_u32.saturating_pow(attempt - 1)).await;
        attempt += 1;
    }
}
