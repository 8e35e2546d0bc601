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
