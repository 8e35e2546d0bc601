//! A local Sentry ingest endpoint: accepts envelopes as sentry.io does and keeps them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

#[derive(Clone, Default)]
pub struct SentryIngest {
    envelopes: Arc<Mutex<Vec<String>>>,
    pub dsn: String,
}

impl SentryIngest {
    pub async fn start() -> SentryIngest {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sentry stand-in");
        let port = listener.local_addr().expect("addr").port();
        let ingest = SentryIngest { envelopes: Arc::default(), dsn: format!("http://publickey@127.0.0.1:{port}/42") };
        let app = Router::new()
            .route("/api/{project}/envelope/", post(receive))
            .route("/api/{project}/store/", post(receive))
            .with_state(ingest.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ingest
    }

    /// Raw envelopes received so far.
    pub fn envelopes(&self) -> Vec<String> {
        self.envelopes.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Envelopes that carry an error event (not sessions or transactions).
    pub fn events(&self) -> Vec<String> {
        self.envelopes().into_iter().filter(|e| e.lines().any(|l| l.contains("\"type\":\"event\""))).collect()
    }
}

async fn receive(State(ingest): State<SentryIngest>, body: Bytes) -> &'static str {
    if let Ok(mut envelopes) = ingest.envelopes.lock() {
        envelopes.push(String::from_utf8_lossy(&body).into_owned());
    }
    "{}"
}
