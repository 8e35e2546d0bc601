//! A stand-in of a Slack incoming webhook, as Slack's "Sending messages using incoming webhooks"
//! describes it: `POST` a JSON body with `text` -> 200 `ok`; a body without `text` -> 400
//! `invalid_payload`; the errors its "Handling errors" section lists (e.g. 404 `no_service`, 410
//! `channel_is_archived`) can be set for the next requests. It keeps every text it accepted.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

#[derive(Clone)]
pub struct Slack {
    pub url: String,
    texts: Arc<Mutex<Vec<String>>>,
    failure: Arc<Mutex<Option<(StatusCode, &'static str)>>>,
}

impl Slack {
    pub async fn start() -> Slack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Slack");
        let slack = Slack {
            url: format!("http://{}/services/T000/B000/XXXX", listener.local_addr().expect("addr")),
            texts: Arc::default(),
            failure: Arc::default(),
        };
        let app = Router::new().route("/services/T000/B000/XXXX", post(receive)).with_state(slack.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        slack
    }

    /// Every request from now on is refused with `status` and `error` (`None`: accepted again).
    pub fn fail_with(&self, failure: Option<(StatusCode, &'static str)>) {
        if let Ok(mut current) = self.failure.lock() {
            *current = failure;
        }
    }

    pub fn texts(&self) -> Vec<String> {
        self.texts.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

async fn receive(State(slack): State<Slack>, body: String) -> (StatusCode, &'static str) {
    if let Some(failure) = slack.failure.lock().ok().and_then(|f| *f) {
        return failure;
    }
    let text = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["text"].as_str().map(str::to_owned));
    match text {
        Some(text) => {
            if let Ok(mut texts) = slack.texts.lock() {
                texts.push(text);
            }
            (StatusCode::OK, "ok")
        }
        None => (StatusCode::BAD_REQUEST, "invalid_payload"),
    }
}
