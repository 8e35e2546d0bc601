//! Local HTTP services for the health checker to watch: healthy, slow, failing, hanging, and
//! one whose health a test switches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

#[derive(Clone)]
pub struct Targets {
    pub base: String,
    pub port: u16,
    healthy: Arc<AtomicBool>,
    slow_ms: u64,
}

impl Targets {
    /// Serves on a free loopback port; `/slow` answers after `slow_ms`.
    pub async fn start(slow_ms: u64) -> Targets {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind targets");
        let port = listener.local_addr().expect("addr").port();
        let targets = Targets {
            base: format!("http://127.0.0.1:{port}"),
            port,
            healthy: Arc::new(AtomicBool::new(true)),
            slow_ms,
        };
        let app = Router::new()
            .route("/healthy", get(|| async { axum::Json(json!({"status": "ok"})) }))
            .route("/degraded", get(|| async { axum::Json(json!({"status": "degraded"})) }))
            .route("/failing", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }))
            .route("/hang", get(|| async { tokio::time::sleep(Duration::from_secs(3600)).await }))
            .route("/slow", get(slow))
            .route("/switch", get(switch))
            .with_state(targets.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        targets
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The same server spoken to over TLS, which it does not speak: a TLS failure.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

async fn slow(State(targets): State<Targets>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(targets.slow_ms)).await;
    "ok"
}

async fn switch(State(targets): State<Targets>) -> (StatusCode, &'static str) {
    if targets.healthy.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "broken")
    }
}
