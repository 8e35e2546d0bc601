//! Google's long-running operations (`google.longrunning.Operation`) and error bodies
//! (`google.rpc.Status`): polled with a bound, reported without a key.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::adapters::http::{Repeat, send_with_retry};
use crate::domain::keys::provider::{ATTEMPTS, BACKOFF};
use crate::runtime::errors::error_chain;

/// A long-running operation of a Google API (`google.longrunning.Operation`).
#[derive(Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub error: Option<Status>,
    #[serde(default)]
    pub response: Option<Map<String, Value>>,
}

/// `google.rpc.Status`, as operations and error bodies carry it.
#[derive(Deserialize, Default)]
pub struct Status {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message: String = self.message.chars().take(300).collect();
        write!(f, "{} {} {message}", self.code, self.status)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Status,
}

/// What a refusing Google API said: its status and message (never a key), or the HTTP status.
pub async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    match response.json::<ErrorBody>().await {
        Ok(body) => format!("answered HTTP {status}: {}", body.error),
        Err(_) => format!("answered HTTP {status}"),
    }
}

/// Polls `operation` (`GET {api_url}/v2/{name}`) until it is done or `timeout` has passed,
/// waiting a little longer between polls each time. Returns the operation's `response`.
pub async fn wait(
    http: &reqwest::Client,
    api_url: &str,
    token: &str,
    mut operation: Operation,
    timeout: Duration,
) -> Result<Map<String, Value>, String> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    while !operation.done {
        if started.elapsed() + pause > timeout {
            return Err(format!("operation {} did not finish within {} s", operation.name, timeout.as_secs_f32()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        let url = format!("{api_url}/v2/{}", operation.name);
        let response = send_with_retry(|| http.get(&url).bearer_auth(token), ATTEMPTS, BACKOFF, Repeat::Idempotent)
            .await
            .map_err(|e| error_chain(&e))?;
        if response.status() != StatusCode::OK {
            return Err(format!("polling operation {}: {}", operation.name, refusal(response).await));
        }
        operation = response.json().await.map_err(|_| "polling answered an unexpected body".to_owned())?;
    }
    if let Some(error) = operation.error {
        return Err(format!("operation {} failed: {error}", operation.name));
    }
    Ok(operation.response.unwrap_or_default())
}
