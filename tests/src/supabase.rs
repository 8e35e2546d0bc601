//! A stand-in of Supabase's Management API for project API keys and of a project's gateway,
//! following the Management API's OpenAPI document (`https://api.supabase.com/api/v1-json`,
//! operations `v1-get-project-api-keys`, `v1-get-project-api-key`, `v1-create-project-api-key`,
//! `v1-delete-project-api-key`; schemas `ApiKeyResponse`, `CreateApiKeyBody`):
//! - `GET /v1/projects/{ref}/api-keys[?reveal=true]`: every key of the project, as
//!   `ApiKeyResponse` (only `name` required; `id` and `type` nullable). As Supabase's CLI
//!   recorded the real answers (`supabase/cli`,
//!   `apps/cli-e2e/fixtures/recorded/GET_v1_projects___PROJECT_REF___api_keys/2.response.json`):
//!   the legacy keys come with ids `anon` and `service_role` and type `legacy`, and an unrevealed
//!   secret key's `api_key` is its prefix followed by `·` characters, not its value.
//! - `GET /v1/projects/{ref}/api-keys/{id}[?reveal=true]`: one key.
//! - `POST /v1/projects/{ref}/api-keys[?reveal=true]` with `{type: publishable|secret, name}`
//!   (name 4-64 characters of `^[a-z_][a-z0-9_]+$`) -> 201 and the key. No idempotency key.
//! - `DELETE /v1/projects/{ref}/api-keys/{id}` -> 200 and the deleted key (404 for an unknown
//!   id, which the document leaves unspecified).
//! - The project's gateway: `GET /auth/v1/health` (Supabase Auth's OpenAPI, `APIKeyAuth`: a
//!   valid key in the `apikey` header) -> 200 `{version, name, description}`, else 401
//!   `{"message": "Invalid API key"}`; `GET /rest/v1/` the same while the Data API is on, and
//!   PostgREST's error for a schema that is not exposed (PGRST106, 406) once it is off ("Hardening
//!   the Data API"; troubleshooting "pg_pgrst_no_exposed_schemas does not exist").

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub use crate::ai_engine::{AfterCreate, Fault};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    Legacy,
    Publishable,
    Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectKey {
    pub id: Option<String>,
    pub name: String,
    pub kind: KeyType,
    pub api_key: String,
}

struct Project {
    project_ref: String,
    token: String,
    keys: Vec<ProjectKey>,
    next_id: usize,
    faults: VecDeque<Fault>,
    after_create: VecDeque<AfterCreate>,
    /// The name of every create request received.
    create_requests: Vec<String>,
    management_requests: usize,
    /// Listings asked with `reveal=true`, which hand every secret key's plaintext to the caller.
    revealed_listings: usize,
    data_api_enabled: bool,
    /// Whether `reveal=true` shows secret keys' values (a token without the right to see
    /// them gets them masked).
    reveals: bool,
}

#[derive(Clone)]
pub struct Supabase {
    pub base: String,
    project: Arc<Mutex<Project>>,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Supabase {
    /// One project with its legacy `anon` and `service_role` keys, a publishable key, and one
    /// secret key named `default`, which is returned.
    pub async fn start(project_ref: &str, token: &str) -> (Supabase, ProjectKey) {
        let initial = ProjectKey {
            id: Some(uuid()),
            name: "default".into(),
            kind: KeyType::Secret,
            api_key: format!("sb_secret_{}", uuid::Uuid::new_v4().simple()),
        };
        let legacy = |name: &str| ProjectKey {
            id: Some(name.into()),
            name: name.into(),
            kind: KeyType::Legacy,
            api_key: format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.sig", uuid::Uuid::new_v4().simple()),
        };
        let publishable = ProjectKey {
            id: Some(uuid()),
            name: "default".into(),
            kind: KeyType::Publishable,
            api_key: format!("sb_publishable_{}", uuid::Uuid::new_v4().simple()),
        };
        let project = Project {
            project_ref: project_ref.to_owned(),
            token: token.to_owned(),
            keys: vec![legacy("anon"), legacy("service_role"), publishable, initial.clone()],
            next_id: 0,
            faults: VecDeque::new(),
            after_create: VecDeque::new(),
            create_requests: Vec::new(),
            management_requests: 0,
            revealed_listings: 0,
            data_api_enabled: true,
            reveals: true,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Supabase");
        let stand_in = Supabase {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            project: Arc::new(Mutex::new(project)),
        };
        let app = Router::new()
            .route("/v1/projects/{project}/api-keys", get(list).post(create))
            .route("/v1/projects/{project}/api-keys/{id}", get(show).delete(remove))
            .route("/auth/v1/health", get(auth_health))
            .route("/rest/v1/", get(rest))
            .with_state(stand_in.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (stand_in, initial)
    }

    /// Every key of the project, legacy and publishable ones included.
    pub fn all_keys(&self) -> Vec<ProjectKey> {
        self.project.lock().map(|p| p.keys.clone()).unwrap_or_default()
    }

    /// The project's secret keys.
    pub fn keys(&self) -> Vec<ProjectKey> {
        self.all_keys().into_iter().filter(|k| k.kind == KeyType::Secret).collect()
    }

    pub fn key_works(&self, key: &str) -> bool {
        self.all_keys().iter().any(|k| k.api_key == key)
    }

    /// From now on secret keys are shown masked even with `reveal=true`.
    pub fn stop_revealing(&self) {
        if let Ok(mut project) = self.project.lock() {
            project.reveals = false;
        }
    }

    fn reveals(&self, query: &HashMap<String, String>) -> bool {
        revealed(query) && self.project.lock().map(|p| p.reveals).unwrap_or(false)
    }

    pub fn queue_faults(&self, faults: &[Fault]) {
        if let Ok(mut project) = self.project.lock() {
            project.faults.extend(faults.iter().copied());
        }
    }

    /// How many create requests named `name` arrived.
    pub fn create_requests(&self, name: &str) -> usize {
        self.project.lock().map(|p| p.create_requests.iter().filter(|n| *n == name).count()).unwrap_or(0)
    }

    pub fn queue_after_create(&self, faults: &[AfterCreate]) {
        if let Ok(mut project) = self.project.lock() {
            project.after_create.extend(faults.iter().copied());
        }
    }

    pub fn set_data_api(&self, enabled: bool) {
        if let Ok(mut project) = self.project.lock() {
            project.data_api_enabled = enabled;
        }
    }

    pub fn revealed_listings(&self) -> usize {
        self.project.lock().map(|p| p.revealed_listings).unwrap_or(0)
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

/// `ApiKeyResponse`: a secret key's value only when revealed, else masked as recorded.
fn shown(key: &ProjectKey, reveal: bool) -> Value {
    let (kind, hidden) = match key.kind {
        KeyType::Legacy => ("legacy", false),
        KeyType::Publishable => ("publishable", false),
        KeyType::Secret => ("secret", !reveal),
    };
    let prefix = key.api_key.get(..15).unwrap_or_default();
    json!({
        "id": key.id, "name": key.name, "type": kind,
        "api_key": if hidden { json!(format!("{prefix}{}", "·".repeat(26))) } else { json!(key.api_key) },
        "prefix": if key.kind == KeyType::Legacy { Value::Null } else { json!(prefix) },
        "description": null, "hash": null,
        "secret_jwt_template": if key.kind == KeyType::Secret { json!({"role": "service_role"}) } else { Value::Null },
        "inserted_at": "2026-11-26T00:00:00Z", "updated_at": "2026-11-26T00:00:00Z",
    })
}

fn revealed(query: &HashMap<String, String>) -> bool {
    query.get("reveal").is_some_and(|v| v == "true")
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
    if revealed(&q)
        && let Ok(mut project) = s.project.lock()
    {
        project.revealed_listings += 1;
    }
    axum::Json(s.all_keys().iter().map(|k| shown(k, s.reveals(&q))).collect::<Vec<_>>()).into_response()
}

async fn show(
    State(s): State<Supabase>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = s.authorised(&project, &headers).await {
        return refused.into_response();
    }
    match s.all_keys().iter().find(|k| k.id.as_deref() == Some(id.as_str())) {
        Some(key) => axum::Json(shown(key, s.reveals(&q))).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn valid_name(name: &str) -> bool {
    (4..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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
    let kind = match body.get("type").and_then(Value::as_str) {
        Some("secret") => KeyType::Secret,
        Some("publishable") => KeyType::Publishable,
        _ => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "type must be publishable or secret"})))
                .into_response();
        }
    };
    if !valid_name(&name) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "name must match ^[a-z_][a-z0-9_]+$"})))
            .into_response();
    }
    let (key, fault) = {
        let Ok(mut project) = s.project.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
        project.create_requests.push(name.clone());
        project.next_id += 1;
        let prefix = if kind == KeyType::Secret { "sb_secret_" } else { "sb_publishable_" };
        let key =
            ProjectKey { id: Some(uuid()), name, kind, api_key: format!("{prefix}{}", uuid::Uuid::new_v4().simple()) };
        project.keys.push(key.clone());
        (key, project.after_create.pop_front())
    };
    let made = (StatusCode::CREATED, axum::Json(shown(&key, s.reveals(&q)))).into_response();
    crate::ai_engine::answer_after_create(fault, made).await
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
    match project.keys.iter().position(|k| k.id.as_deref() == Some(id.as_str())) {
        Some(at) => {
            let key = project.keys.remove(at);
            axum::Json(shown(&key, false)).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn invalid_key() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Invalid API key"}))).into_response()
}

async fn auth_health(State(s): State<Supabase>, headers: HeaderMap) -> Response {
    let key = headers.get("apikey").and_then(|v| v.to_str().ok());
    if !key.is_some_and(|k| s.key_works(k)) {
        return invalid_key();
    }
    axum::Json(json!({"version": "v2.180.0", "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API"}))
    .into_response()
}

async fn rest(State(s): State<Supabase>, headers: HeaderMap) -> Response {
    let key = headers.get("apikey").and_then(|v| v.to_str().ok());
    if !key.is_some_and(|k| s.key_works(k)) {
        return invalid_key();
    }
    if !s.project.lock().map(|p| p.data_api_enabled).unwrap_or(true) {
        return (
            StatusCode::NOT_ACCEPTABLE,
            axum::Json(json!({"code": "PGRST106", "details": null, "hint": null,
                "message": "The schema must be one of the following: pg_pgrst_no_exposed_schemas"})),
        )
            .into_response();
    }
    axum::Json(json!({"swagger": "2.0"})).into_response()
}
