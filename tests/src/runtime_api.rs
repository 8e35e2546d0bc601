//! A Lambda Runtime API emulator: runs a function binary as Lambda does (the binary polls
//! `/invocation/next` and posts a response or an error) so the real binaries can be invoked.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::process::{spawn_tied, stop_child};

/// What an invocation returned.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Value),
    Error {
        error_type: String,
        error_message: String,
    },
    /// The process stopped or never answered.
    Crashed(String),
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, Bytes)>>,
    ready: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    first_poll: Mutex<Option<Instant>>,
}

/// One function binary running under an emulated Runtime API on a free loopback port.
pub struct LambdaProcess {
    name: String,
    shared: Arc<Shared>,
    child: Child,
    log: PathBuf,
    server: tokio::task::JoinHandle<()>,
    started: Instant,
}

impl LambdaProcess {
    /// Starts the Runtime API and the binary with `env` (plus Lambda's own variables).
    pub async fn start(name: &str, binary: &Path, env: &[(String, String)], log_dir: &Path) -> Result<Self, String> {
        Self::start_command(name, Command::new(binary), env, log_dir).await
    }

    /// [`LambdaProcess::start`] for a runtime that is not a lone binary (an interpreter with its
    /// arguments and working directory, say): `command` gets the same environment.
    pub async fn start_command(
        name: &str,
        mut command: Command,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> Result<Self, String> {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let log = log_dir.join(format!("{name}.log"));
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let started = Instant::now();
        let child = spawn_tied(command, Some(log.clone())).map_err(|e| format!("cannot start {program}: {e}"))?;
        Ok(LambdaProcess { name: name.to_owned(), shared, child, log, server, started })
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Process start to its first `invocation/next` request: what Lambda reports as the init
    /// duration. `None` until the process has asked for an event.
    pub fn init_duration(&self) -> Option<Duration> {
        let first = self.shared.first_poll.lock().ok().and_then(|first| *first)?;
        Some(first.saturating_duration_since(self.started))
    }

    /// Sends one event and waits for the function's answer.
    pub async fn invoke(&mut self, event: &Value, timeout: Duration) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.shared.waiting.lock() {
            waiting.insert(id.clone(), tx);
        }
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.push_back((id, Bytes::from(event.to_string())));
        }
        self.shared.ready.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = rx;
        let dropped = || Outcome::Crashed("runtime API dropped the invocation".into());
        loop {
            tokio::select! {
                outcome = &mut rx => return outcome.unwrap_or_else(|_| dropped()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        let init = self.shared.init_error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
                        return Outcome::Crashed(format!("{} exited ({status}) {init}", self.name));
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Outcome::Crashed(format!("{} gave no answer within {timeout:?}", self.name));
                    }
                }
            }
        }
    }

    /// Peak resident memory of the function process so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident memory that is the process's own (RssAnon: heap, stacks, written data) now, in
    /// KiB; the rest of its resident memory is mapped files, its binary and libraries.
    pub fn anon_rss_kib(&self) -> Option<u64> {
        self.status_kib("RssAnon:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The function's log lines so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(mut self) -> String {
        stop_child(&mut self.child, libc::SIGTERM, Duration::from_secs(2));
        self.server.abort();
        self.logs()
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM, Duration::from_secs(2));
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Ok(mut first) = shared.first_poll.lock() {
        first.get_or_insert_with(Instant::now);
    }
    loop {
        let item = shared.queue.lock().ok().and_then(|mut q| q.pop_front());
        if let Some((id, body)) = item {
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0) + 900_000;
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".into());
            // As Lambda sends it: awslambdaric hands the handler the raw bytes without it.
            set("content-type", "application/json".into());
            return (StatusCode::OK, headers, body);
        }
        shared.ready.notified().await;
    }
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let sender = shared.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match sender {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&shared, &id, Outcome::Response(value))
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    finish(&shared, &id, Outcome::Error { error_type: text("errorType"), error_message: text("errorMessage") })
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut slot) = shared.init_error.lock() {
        *slot = Some(String::from_utf8_lossy(&body).into_owned());
    }
    StatusCode::ACCEPTED
}
