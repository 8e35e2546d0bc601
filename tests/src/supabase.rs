//! A stand-in of Supabase's Management API for secret API keys and of a project's REST
//! endpoint: `GET|POST /v1/projects/{ref}/api-keys?reveal=true`, `DELETE
//! /v1/projects/{ref}/api-keys/{id}` (bearer management token), and `GET /rest/v1/` that
//! answers 200 to an active key in the `apikey` header, 401 otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};

pub use crate::ai_engine::Fault;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    pub id: String,
    pub name: String,
    pub api_key: String,
}

struct Project {
    project_ref: String,
    token: String,
    keys: Vec<SecretKey>,
    next_id: usize,
    faults: std::collections::VecDeque<Fault>,
    management_requests: usize,
}

#[derive(Clone)]
pub struct Supabase {
    pub base: String,
    project: Arc<Mutex<Project>>,
}

impl Supabase {
    /// One project with one secret key named `default`.
    pub async fn start(project_ref: &str, token: &str) -> (Supabase, SecretKey) {
        let initial = SecretKey {
            id: "sbk-0".into(),
            name: "default".into(),
            api_key: format!("sb_secret_{}", uuid::Uuid::new_v4().simple()),
        };
        let project = Project {
            project_ref: project_ref.to_owned(),
            token: token.to_owned(),
            keys: vec![initial.clone()],
            next_id: 0,
            faults: Default::default(),
            management_requests: 0,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Supabase");
        let stand_in = Supabase {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            project: Arc::new(Mutex::new(project)),
        };
        let app = Router::new()
            .route("/v1/projects/{project}/api-keys", get(list).post(create))
            .route("/v1/projects/{project}/api-keys/{id}", delete(remove))
            .route("/rest/v1/", get(rest))
            .with_state(stand_in.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (stand_in, initial)
    }

    pub fn keys(&self) -> Vec<SecretKey> {
        self.project.lock().map(|p| p.keys.clone()).unwrap_or_default()
    }

    pub fn key_works(&self, key: &str) -> bool {
        self.keys().iter().any(|k| k.api_key == key)
    }

    pub fn queue_faults(&self, faults: &[Fault]) {
        if let Ok(mut project) = self.project.lock() {
            project.faults.extend(faults.iter().copied());
        }
    }

    pub fn management_requests(&self) -> usize {
        self.project.lock().map(|p| p.management_requests).unwrap_or(0)
    }

    /// Counts the request, applies a queued fault, checks the token and the project.
    async fn authorised(&self, project_ref: &str, headers: &HeaderMap) -> Result<(), StatusCode> {
        let fault = {
            let Ok(mut project) = self.project.lock() else { return Err(StatusCode::INTERNAL_SERVER_ERROR) };
            project.management_requests += 1;
            project.faults.pop_front()
        };
        match fault {
            Some(Fault::Hang) => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return Err(StatusCode::GATEWAY_TIMEOUT);
            }
            Some(Fault::Status(code)) => {
                return Err(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            }
            None => {}
        }
        let Ok(project) = self.project.lock() else { return Err(StatusCode::INTERNAL_SERVER_ERROR) };
        let expected = format!("Bearer {}", project.token);
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return Err(StatusCode::UNAUTHORIZED);
        }
        if project.project_ref != project_ref {
            return Err(StatusCode::NOT_FOUND);
        }
        Ok(())
    }
}

fn shown(key: &SecretKey, reveal: bool) -> Value {
    let api_key = if reveal { key.api_key.clone() } else { format!("{}····", &key.api_key[..14]) };
    json!({"id": key.id, "name": key.name, "type": "secret", "api_key": api_key, "prefix": &key.api_key[..14]})
}

async fn list(
    State(s): State<Supabase>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = s.authorised(&project, &headers).await {
        return refused.into_response();
    }
    let reveal = q.get("reveal").is_some_and(|v| v == "true");
    axum::Json(s.keys().iter().map(|k| shown(k, reveal)).collect::<Vec<_>>()).into_response()
}

async fn create(
    State(s): State<Supabase>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(refused) = s.authorised(&project, &headers).await {
        return refused.into_response();
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if body.get("type").and_then(Value::as_str) != Some("secret") || !valid_name {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "invalid key request"}))).into_response();
    }
    let Ok(mut project) = s.project.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    project.next_id += 1;
    let key = SecretKey {
        id: format!("sbk-{}", project.next_id),
        name,
        api_key: format!("sb_secret_{}", uuid::Uuid::new_v4().simple()),
    };
    project.keys.push(key.clone());
    let reveal = q.get("reveal").is_some_and(|v| v == "true");
    (StatusCode::CREATED, axum::Json(shown(&key, reveal))).into_response()
}

async fn remove(
    State(s): State<Supabase>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = s.authorised(&project, &headers).await {
        return refused.into_response();
    }
    let Ok(mut project) = s.project.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let before = project.keys.len();
    project.keys.retain(|k| k.id != id);
    if project.keys.len() < before {
        axum::Json(json!({"id": id})).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn rest(State(s): State<Supabase>, headers: HeaderMap) -> StatusCode {
    let key = headers.get("apikey").and_then(|v| v.to_str().ok());
    if key.is_some_and(|k| s.key_works(k)) { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
}
