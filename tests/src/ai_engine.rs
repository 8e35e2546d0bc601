//! A stand-in of the AI engine's admin API, as its contract says: `POST /admin/api-keys`
//! -> 201 `{id, key}`, `GET /admin/api-keys?name=` -> `{keys: [...]}`, `DELETE
//! /admin/api-keys/{id}` -> 204 (404 if gone), and `GET /v1/ping` with `Bearer <key>` -> 200
//! or 401. Admin calls need the admin token. Faults can be queued for the next admin calls, and
//! for what a create answers once it has made the key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    Status(u16),
    Hang,
}

/// What a create does after it has stored the key, for a client that must not assume it failed.
#[derive(Debug, Clone, Copy)]
pub enum AfterCreate {
    /// The connection closes before any answer.
    DropConnection,
    Status(u16),
    Hang,
}

/// The answer of a create that made its key: `made` unless a fault says otherwise.
pub async fn answer_after_create(fault: Option<AfterCreate>, made: Response) -> Response {
    match fault {
        None => made,
        Some(AfterCreate::Status(code)) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY).into_response()
        }
        Some(AfterCreate::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        // Unwinding the connection's task closes its socket unanswered; resume_unwind skips the
        // panic hook, so nothing is printed.
        Some(AfterCreate::DropConnection) => std::panic::resume_unwind(Box::new("connection dropped by the stand-in")),
    }
}

#[derive(Default)]
struct Engine {
    admin_token: String,
    keys: Vec<ApiKey>,
    faults: VecDeque<Fault>,
    after_create: VecDeque<AfterCreate>,
    /// The name of every create request received.
    create_requests: Vec<String>,
    admin_requests: usize,
    /// Ids are never reused, as upstream.
    next_id: usize,
}

#[derive(Clone)]
pub struct AiEngine {
    pub base: String,
    engine: Arc<Mutex<Engine>>,
}

impl AiEngine {
    /// Serves on a free loopback port with one key named `initial`.
    pub async fn start(admin_token: &str) -> (AiEngine, ApiKey) {
        let initial = ApiKey {
            id: "key-0".into(),
            name: "initial".into(),
            key: format!("aie_{}", uuid::Uuid::new_v4().simple()),
        };
        let engine = Engine { admin_token: admin_token.to_owned(), keys: vec![initial.clone()], ..Engine::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind AI engine");
        let stand_in = AiEngine {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            engine: Arc::new(Mutex::new(engine)),
        };
        let app = Router::new()
            .route("/admin/api-keys", get(list).post(create))
            .route("/admin/api-keys/{id}", delete(remove))
            .route("/v1/ping", get(ping))
            .with_state(stand_in.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (stand_in, initial)
    }

    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.base)
    }

    pub fn check_url(&self) -> String {
        format!("{}/v1/ping", self.base)
    }

    pub fn keys(&self) -> Vec<ApiKey> {
        self.engine.lock().map(|e| e.keys.clone()).unwrap_or_default()
    }

    pub fn key_works(&self, key: &str) -> bool {
        self.keys().iter().any(|k| k.key == key)
    }

    pub fn queue_faults(&self, faults: &[Fault]) {
        if let Ok(mut engine) = self.engine.lock() {
            engine.faults.extend(faults.iter().copied());
        }
    }

    /// A key made outside the rotation (as a second, concurrent create would).
    pub fn create_key(&self, name: &str) -> ApiKey {
        let Ok(mut engine) = self.engine.lock() else { panic!("stand-in state poisoned") };
        engine.next_id += 1;
        let key = ApiKey {
            id: format!("key-{}", engine.next_id),
            name: name.to_owned(),
            key: format!("aie_{}", uuid::Uuid::new_v4().simple()),
        };
        engine.keys.push(key.clone());
        key
    }

    /// How many create requests named `name` arrived.
    pub fn create_requests(&self, name: &str) -> usize {
        self.engine.lock().map(|e| e.create_requests.iter().filter(|n| *n == name).count()).unwrap_or(0)
    }

    pub fn queue_after_create(&self, faults: &[AfterCreate]) {
        if let Ok(mut engine) = self.engine.lock() {
            engine.after_create.extend(faults.iter().copied());
        }
    }

    pub fn admin_requests(&self) -> usize {
        self.engine.lock().map(|e| e.admin_requests).unwrap_or(0)
    }

    /// Counts the request, checks the admin token, applies a queued fault.
    async fn admit(&self, headers: &HeaderMap) -> Result<(), Response> {
        let (fault, authorised) = {
            let Ok(mut engine) = self.engine.lock() else {
                return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            };
            engine.admin_requests += 1;
            let expected = format!("Bearer {}", engine.admin_token);
            (
                engine.faults.pop_front(),
                headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str()),
            )
        };
        match fault {
            Some(Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(StatusCode::GATEWAY_TIMEOUT.into_response())
            }
            Some(Fault::Status(code)) => {
                Err(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response())
            }
            None if !authorised => {
                Err((StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "bad admin token"}))).into_response())
            }
            None => Ok(()),
        }
    }
}

async fn list(State(s): State<AiEngine>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(refused) = s.admit(&headers).await {
        return refused;
    }
    let wanted = query.get("name");
    let keys: Vec<_> = s
        .keys()
        .into_iter()
        .filter(|k| wanted.is_none_or(|n| *n == k.name))
        .map(|k| json!({"id": k.id, "name": k.name, "key": k.key}))
        .collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn create(
    State(s): State<AiEngine>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    if let Err(refused) = s.admit(&headers).await {
        return refused;
    }
    let Some(name) = body.get("name").and_then(|n| n.as_str()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Ok(mut engine) = s.engine.lock() {
        engine.create_requests.push(name.to_owned());
    }
    let key = s.create_key(name);
    let fault = s.engine.lock().ok().and_then(|mut engine| engine.after_create.pop_front());
    answer_after_create(fault, (StatusCode::CREATED, axum::Json(json!({"id": key.id, "key": key.key}))).into_response())
        .await
}

async fn remove(State(s): State<AiEngine>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = s.admit(&headers).await {
        return refused;
    }
    let Ok(mut engine) = s.engine.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let before = engine.keys.len();
    engine.keys.retain(|k| k.id != id);
    if engine.keys.len() < before {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn ping(State(s): State<AiEngine>, headers: HeaderMap) -> StatusCode {
    let key = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if key.is_some_and(|k| s.key_works(k)) { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
}
