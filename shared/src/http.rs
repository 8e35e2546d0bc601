//! The one HTTP client setup: rustls, explicit timeouts, a user agent naming the project.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("cineview-ops/", env!("CARGO_PKG_VERSION"));

/// The project's client settings, for callers that add their own (health checks read TLS info).
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
}

/// A client whose every request gives up after `timeout` (connecting included).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).build()
}

/// Sends the request `build` makes, retrying connection failures, timeouts, 429 and 5xx up to
/// `attempts` times in all, waiting `backoff`, then twice that, and so on. The last response or
/// error is returned as it is.
pub async fn send_with_retry<F>(build: F, attempts: u32, backoff: Duration) -> Result<reqwest::Response, reqwest::Error>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut attempt = 1;
    loop {
        let result = build().send().await;
        let transient = match &result {
            Ok(response) => {
                response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS || response.status().is_server_error()
            }
            Err(err) => err.is_timeout() || err.is_connect(),
        };
        if !transient || attempt >= attempts {
            return result;
        }
        tokio::time::sleep(backoff * 2_u32.saturating_pow(attempt - 1)).await;
        attempt += 1;
    }
}
