//! A stand-in of the Google services the `google-api-key` strategy calls, following their
//! documented contracts:
//! - OAuth2 token endpoint (`POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//!   and `assertion=<JWT>`): checks the RS256 signature against the service account's public
//!   key, `iss`, `aud`, `scope`, `iat`/`exp`; answers `{access_token, expires_in, token_type}` or
//!   400 `{error: "invalid_grant", error_description}`.
//! - API Keys API v2 (bearer access token): `POST /v2/projects/{p}/locations/global/keys?keyId=`
//!   -> long-running operation, `GET /v2/operations/{id}` (done after a set number of polls),
//!   `GET /v2/projects/{p}/locations/global/keys` (paginated: `pageSize`, `pageToken`,
//!   `nextPageToken`), `GET|DELETE /v2/{key name}`, `GET /v2/{key name}/keyString`. Key names carry
//!   the project number even when called with the project id, as Google's do. Errors are
//!   `{error: {code, message, status}}`.
//!   `serviceAccountEmail` on the `Key` binds it to a service account ("API Keys API v2 REST
//!   reference, projects.locations.keys", Key resource); bound keys' strings start `AQ.`,
//!   standard ones `AIza`. `GET /v2/keys:lookupKey?keyString=` answers `{parent, name}` (the
//!   reference, method keys.lookupKey; an unknown key string, which it leaves unspecified,
//!   answers 404 here).
//! - Gemini's `GET /v1beta/models` with the key in `x-goog-api-key` or `?key=` ("Using Gemini
//!   API keys", ai.google.dev/gemini-api/docs/api-key): only authorization keys, bound to a
//!   service account, are accepted; a standard key answers 403 `PERMISSION_DENIED` (the
//!   announced September 2026 rule; the page's September 2026 revision keeps only the
//!   refusal of unrestricted standard keys), an unknown or deleted key 400 `API_KEY_INVALID`,
//!   a key not allowed the Generative Language API 403.
//! - Gemini's `POST /v1beta/models/{model}:countTokens` ("Gemini API reference,
//!   models.countTokens": body `{contents: [...]}`, answer `{totalTokens}`), which answers as the
//!   model list does, and 401 `UNAUTHENTICATED` with reason `ACCESS_TOKEN_TYPE_UNSUPPORTED` for
//!   a key GenerativeService refuses though it lists models (google-gemini/gemini-cli #28538).
//!
//! Faults can be queued for the next token or API Keys calls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub use crate::ai_engine::Fault;

pub const GEMINI_SERVICE: &str = "generativelanguage.googleapis.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleKey {
    /// `projects/<number>/locations/global/keys/<id>`.
    pub name: String,
    pub key_id: String,
    pub display_name: String,
    pub key_string: String,
    /// The services the key may call (`restrictions.apiTargets`); empty = unrestricted.
    pub services: Vec<String>,
    /// `serviceAccountEmail`: the service account a bound (authorization) key acts as.
    pub service_account: Option<String>,
    pub deleted: bool,
}

impl GoogleKey {
    pub fn is_bound(&self) -> bool {
        self.service_account.is_some()
    }
}

struct PendingOperation {
    polls_left: u32,
    response: Value,
}

struct Cloud {
    project_id: String,
    project_number: String,
    client_email: String,
    private_key_id: String,
    public_key: Vec<u8>,
    access_tokens: Vec<String>,
    keys: Vec<GoogleKey>,
    operations: HashMap<String, PendingOperation>,
    /// Polls an operation needs before it reports done.
    operation_polls: u32,
    faults: VecDeque<Fault>,
    requests: usize,
    /// Every access token is refused with 401, as after the service account lost its role.
    tokens_refused: bool,
    /// Keys made from now on list models but GenerativeService refuses them.
    generation_refused: bool,
    /// The key strings GenerativeService refuses.
    refused_for_generation: Vec<String>,
}

#[derive(Clone)]
pub struct Google {
    pub base: String,
    /// The service-account key file (JSON) whose key the token endpoint trusts.
    pub service_account: String,
    cloud: Arc<Mutex<Cloud>>,
}

fn random_string(len: usize) -> String {
    let mut text = String::new();
    while text.len() < len {
        text.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    text.truncate(len);
    text
}

/// A fresh 2048-bit RSA key: its PKCS#8 PEM and its public key (SubjectPublicKeyInfo DER).
pub fn rsa_key() -> Result<(String, Vec<u8>), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = dir.path();
    crate::pg::openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem"])?;
    crate::pg::openssl(dir, &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"])?;
    let read = |file: &str| std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"));
    Ok((String::from_utf8_lossy(&read("key.pem")?).into_owned(), read("pub.der")?))
}

/// A new key string: `AQ.` for a key bound to a service account, `AIza` for a standard one.
fn new_key_string(bound: bool) -> String {
    if bound { format!("AQ.Ab8R{}", random_string(48)) } else { format!("AIza{}", random_string(35)) }
}

fn error(code: StatusCode, status: &str, message: &str) -> Response {
    (code, axum::Json(json!({"error": {"code": code.as_u16(), "message": message, "status": status}}))).into_response()
}

impl Google {
    /// Serves on a free loopback port: project `project_id` (number 424242) with one key
    /// `initial` made by hand as keys usually are before rotation starts: bound to the
    /// rotation's service account and restricted to Gemini, as AI Studio makes them.
    pub async fn start(project_id: &str) -> (Google, GoogleKey) {
        Google::start_with(project_id, true).await
    }

    /// The same, with a standard (unbound, unrestricted) initial key, as made before 2026.
    pub async fn start_with_standard_key(project_id: &str) -> (Google, GoogleKey) {
        Google::start_with(project_id, false).await
    }

    async fn start_with(project_id: &str, bound: bool) -> (Google, GoogleKey) {
        let (private_key, public_key) = rsa_key().expect("an RSA key from openssl");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Google");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let client_email = format!("key-rotation@{project_id}.iam.gserviceaccount.com");
        let private_key_id = random_string(40);
        let service_account = json!({
            "type": "service_account", "project_id": project_id, "private_key_id": private_key_id,
            "private_key": private_key, "client_email": client_email, "client_id": "104242424242424242424",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": format!("{base}/token"),
        })
        .to_string();
        let project_number = "424242".to_owned();
        let initial = GoogleKey {
            name: format!("projects/{project_number}/locations/global/keys/initial"),
            key_id: "initial".into(),
            display_name: "Gemini (made by hand)".into(),
            key_string: new_key_string(bound),
            services: if bound { vec![GEMINI_SERVICE.to_owned()] } else { Vec::new() },
            service_account: bound.then(|| client_email.clone()),
            deleted: false,
        };
        let cloud = Cloud {
            project_id: project_id.to_owned(),
            project_number,
            client_email,
            private_key_id,
            public_key,
            access_tokens: Vec::new(),
            keys: vec![initial.clone()],
            operations: HashMap::new(),
            operation_polls: 2,
            faults: VecDeque::new(),
            requests: 0,
            tokens_refused: false,
            generation_refused: false,
            refused_for_generation: Vec::new(),
        };
        let google = Google { base, service_account, cloud: Arc::new(Mutex::new(cloud)) };
        let app = Router::new()
            .route("/token", post(token))
            .route("/v2/projects/{project}/locations/global/keys", get(list).post(create))
            .route("/v2/projects/{project}/locations/global/keys/{id}", get(show).delete(remove))
            .route("/v2/projects/{project}/locations/global/keys/{id}/keyString", get(key_string))
            .route("/v2/operations/{id}", get(operation))
            .route("/v2/keys:lookupKey", get(lookup))
            .route("/v1beta/models", get(models))
            .route("/v1beta/models/{method}", post(count_tokens))
            .with_state(google.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (google, initial)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub fn check_url(&self) -> String {
        format!("{}/v1beta/models", self.base)
    }

    /// Every key, deleted ones included.
    pub fn keys(&self) -> Vec<GoogleKey> {
        self.cloud.lock().map(|c| c.keys.clone()).unwrap_or_default()
    }

    pub fn live_keys(&self) -> Vec<GoogleKey> {
        self.keys().into_iter().filter(|k| !k.deleted).collect()
    }

    /// What Gemini would answer: a live key allowed to call the Generative Language API.
    /// The rotation's own service account (the key file's `client_email`).
    pub fn client_email(&self) -> String {
        self.cloud.lock().map(|c| c.client_email.clone()).unwrap_or_default()
    }

    /// Gemini accepts `key`: live, bound to a service account, allowed the Generative Language API.
    pub fn key_works(&self, key: &str) -> bool {
        self.live_keys().iter().any(|k| {
            k.key_string == key
                && k.is_bound()
                && (k.services.is_empty() || k.services.iter().any(|s| s == GEMINI_SERVICE))
        })
    }

    pub fn queue_faults(&self, faults: &[Fault]) {
        if let Ok(mut cloud) = self.cloud.lock() {
            cloud.faults.extend(faults.iter().copied());
        }
    }

    /// Keys created from now on list models, but GenerativeService refuses them.
    pub fn refuse_generation_for_new_keys(&self) {
        if let Ok(mut cloud) = self.cloud.lock() {
            cloud.generation_refused = true;
        }
    }

    /// Token and API Keys requests received so far.
    pub fn requests(&self) -> usize {
        self.cloud.lock().map(|c| c.requests).unwrap_or(0)
    }

    /// How many polls operations started from now on need before they are done.
    pub fn set_operation_polls(&self, polls: u32) {
        if let Ok(mut cloud) = self.cloud.lock() {
            cloud.operation_polls = polls;
        }
    }

    pub fn refuse_access_tokens(&self, refused: bool) {
        if let Ok(mut cloud) = self.cloud.lock() {
            cloud.tokens_refused = refused;
        }
    }

    /// Counts the request and applies a queued fault.
    async fn fault(&self) -> Result<(), Response> {
        let fault = {
            let Ok(mut cloud) = self.cloud.lock() else {
                return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            };
            cloud.requests += 1;
            cloud.faults.pop_front()
        };
        match fault {
            Some(Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(StatusCode::GATEWAY_TIMEOUT.into_response())
            }
            Some(Fault::Status(code)) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Err(error(code, code.canonical_reason().unwrap_or("ERROR"), "injected fault"))
            }
            None => Ok(()),
        }
    }

    /// A fault, then the bearer access token, then the project (id or number).
    async fn admit(&self, headers: &HeaderMap, project: &str) -> Result<(), Response> {
        self.fault().await?;
        let Ok(cloud) = self.cloud.lock() else { return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()) };
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if cloud.tokens_refused || !token.is_some_and(|t| cloud.access_tokens.iter().any(|known| known == t)) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            ));
        }
        if project != cloud.project_id && project != cloud.project_number {
            return Err(error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "Permission denied on resource project."));
        }
        Ok(())
    }

    fn start_operation(cloud: &mut Cloud, response: Value) -> Value {
        let name = format!("operations/akmf.p7-{}", random_string(20));
        cloud.operations.insert(name.clone(), PendingOperation { polls_left: cloud.operation_polls, response });
        json!({"name": name})
    }
}

fn resource(key: &GoogleKey) -> Value {
    let targets: Vec<Value> = key.services.iter().map(|s| json!({"service": s})).collect();
    let mut value = json!({
        "name": key.name, "uid": format!("uid-{}", key.key_id), "displayName": key.display_name,
        "createTime": "2026-11-26T00:00:00Z", "updateTime": "2026-11-26T00:00:00Z", "etag": "W/\"1\"",
    });
    if !targets.is_empty() {
        value["restrictions"] = json!({ "apiTargets": targets });
    }
    if let Some(account) = &key.service_account {
        value["serviceAccountEmail"] = json!(account);
    }
    if key.deleted {
        value["deleteTime"] = json!("2026-11-26T00:00:01Z");
    }
    value
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Why the assertion is refused, if it is.
fn check_assertion(cloud: &Cloud, token_url: &str, assertion: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else { return Err("Invalid JWT: Token must be a short-lived token") };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "Invalid JWT: malformed base64");
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| "Invalid JWT header")?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|_| "Invalid JWT claims")?;
    let signed = &assertion[..assertion.len() - signature.len() - 1];
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, &cloud.public_key)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "Invalid JWT Signature.")?;
    if header["alg"] != "RS256" || header.get("kid").is_some_and(|kid| *kid != cloud.private_key_id.as_str()) {
        return Err("Invalid JWT header: alg must be RS256 and kid the key's id");
    }
    if claims["iss"] != cloud.client_email.as_str() {
        return Err("Invalid JWT: iss is not the service account");
    }
    if claims["aud"] != token_url {
        return Err("Invalid JWT: aud is not the token endpoint");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == "https://www.googleapis.com/auth/cloud-platform"))
    {
        return Err("Invalid JWT: the API Keys API needs the cloud-platform scope");
    }
    let (iat, exp) = (claims["iat"].as_u64().unwrap_or(0), claims["exp"].as_u64().unwrap_or(0));
    if iat > now() + 60 || exp <= now() || exp - iat > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe");
    }
    Ok(())
}

fn form_field<'b>(body: &'b str, name: &str) -> Option<&'b str> {
    body.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

async fn token(State(g): State<Google>, headers: HeaderMap, body: String) -> Response {
    if let Err(refused) = g.fault().await {
        return refused;
    }
    let form = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/x-www-form-urlencoded");
    let grant = form_field(&body, "grant_type");
    let grant_ok = matches!(
        grant,
        Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" | "urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    if !form || !grant_ok {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})),
        )
            .into_response();
    }
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    if let Err(problem) = check_assertion(&cloud, &g.token_url(), form_field(&body, "assertion").unwrap_or_default()) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": problem})))
            .into_response();
    }
    let access_token = format!("ya29.{}", random_string(60));
    cloud.access_tokens.push(access_token.clone());
    axum::Json(json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

async fn create(
    State(g): State<Google>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let key_id = query.get("keyId").cloned().unwrap_or_else(|| format!("k{}", random_string(20)));
    let valid = key_id.len() <= 63
        && key_id.starts_with(|c: char| c.is_ascii_lowercase())
        && !key_id.ends_with('-')
        && key_id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "keyId must match [a-z]([a-z0-9-]{0,61}[a-z0-9])?");
    }
    let services: Vec<String> = body["restrictions"]["apiTargets"]
        .as_array()
        .map(|targets| targets.iter().filter_map(|t| t["service"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let service_account = body["serviceAccountEmail"].as_str().filter(|a| !a.is_empty()).map(str::to_owned);
    if service_account.as_ref().is_some_and(|a| !a.ends_with(".iam.gserviceaccount.com")) {
        return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "serviceAccountEmail is not a service account.");
    }
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    if cloud.keys.iter().any(|k| k.key_id == key_id) {
        return error(StatusCode::CONFLICT, "ALREADY_EXISTS", "A key with this keyId already exists.");
    }
    let key = GoogleKey {
        name: format!("projects/{}/locations/global/keys/{key_id}", cloud.project_number),
        key_id,
        display_name: body["displayName"].as_str().unwrap_or_default().to_owned(),
        key_string: new_key_string(service_account.is_some()),
        services,
        service_account,
        deleted: false,
    };
    let mut response = resource(&key);
    response["@type"] = json!("type.googleapis.com/google.api.apikeys.v2.Key");
    if cloud.generation_refused {
        cloud.refused_for_generation.push(key.key_string.clone());
    }
    cloud.keys.push(key);
    axum::Json(Google::start_operation(&mut cloud, response)).into_response()
}

async fn operation(State(g): State<Google>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let project = g.cloud.lock().map(|c| c.project_id.clone()).unwrap_or_default();
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let name = format!("operations/{id}");
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let Some(pending) = cloud.operations.get_mut(&name) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "Operation not found.");
    };
    if pending.polls_left > 1 {
        pending.polls_left -= 1;
        return axum::Json(json!({"name": name})).into_response();
    }
    axum::Json(json!({"name": name, "done": true, "response": pending.response})).into_response()
}

fn find<'c>(cloud: &'c mut Cloud, id: &str) -> Option<&'c mut GoogleKey> {
    cloud.keys.iter_mut().find(|k| k.key_id == id && !k.deleted)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "The key was not found.")
}

async fn show(State(g): State<Google>, Path((project, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    find(&mut cloud, &id).map(|key| axum::Json(resource(key)).into_response()).unwrap_or_else(not_found)
}

async fn key_string(
    State(g): State<Google>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    find(&mut cloud, &id)
        .map(|key| axum::Json(json!({"keyString": key.key_string})).into_response())
        .unwrap_or_else(not_found)
}

async fn remove(State(g): State<Google>, Path((project, id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let Ok(mut cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let Some(key) = find(&mut cloud, &id) else { return not_found() };
    key.deleted = true;
    let response = resource(key);
    axum::Json(Google::start_operation(&mut cloud, response)).into_response()
}

async fn list(
    State(g): State<Google>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let show_deleted = query.get("showDeleted").is_some_and(|v| v == "true");
    let size = query.get("pageSize").and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(300);
    let start = match query.get("pageToken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(start)) => start,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "Invalid page token."),
    };
    let keys: Vec<Value> =
        g.keys().iter().filter(|k| show_deleted || !k.deleted).skip(start).take(size + 1).map(resource).collect();
    let mut page = json!({ "keys": keys.iter().take(size).collect::<Vec<_>>() });
    if keys.len() > size {
        page["nextPageToken"] = json!((start + size).to_string());
    }
    axum::Json(page).into_response()
}

/// `keys.lookupKey`: the project and resource name of a key string (deleted keys included,
/// until purged).
async fn lookup(State(g): State<Google>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let project = g.cloud.lock().map(|c| c.project_id.clone()).unwrap_or_default();
    if let Err(refused) = g.admit(&headers, &project).await {
        return refused;
    }
    let wanted = query.get("keyString").map(String::as_str).unwrap_or_default();
    let Ok(cloud) = g.cloud.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    match cloud.keys.iter().find(|k| k.key_string == wanted) {
        Some(key) => axum::Json(json!({
            "parent": format!("projects/{}/locations/global", cloud.project_number), "name": key.name
        }))
        .into_response(),
        None => not_found(),
    }
}

/// `models/{model}:countTokens`: as the model list, and 401 for a key GenerativeService refuses.
async fn count_tokens(
    State(g): State<Google>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(model) = method.strip_suffix(":countTokens") else { return not_found() };
    if model != "gemini-2.5-flash" {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "models/{model} is not found for API version v1beta");
    }
    let listed = models(State(g.clone()), headers.clone(), Query(query.clone())).await;
    if listed.status() != StatusCode::OK {
        return listed;
    }
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).or(query.get("key").map(String::as_str));
    let refused = g.cloud.lock().map(|c| key.is_some_and(|k| c.refused_for_generation.iter().any(|r| r == k)));
    if refused.unwrap_or(true) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                    "domain": "googleapis.com",
                    "metadata": {"method": "google.ai.generativelanguage.v1beta.GenerativeService.CountTokens",
                        "service": GEMINI_SERVICE}
                }]
            }})),
        )
            .into_response();
    }
    let text: usize = body["contents"]
        .as_array()
        .map(|contents| contents.iter().flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default()).count())
        .unwrap_or(0);
    axum::Json(json!({"totalTokens": text.max(1)})).into_response()
}

/// Gemini's model list: what a request with the key would get.
async fn models(State(g): State<Google>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).or(query.get("key").map(String::as_str));
    let known = key.and_then(|k| g.keys().into_iter().find(|known| known.key_string == k && !known.deleted));
    match known {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
            );
        }
        Some(key) if !key.is_bound() => {
            return error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Standard API keys are no longer accepted by the Gemini API; \
                 use an authorization key bound to a service account.",
            );
        }
        Some(key) if !g.key_works(&key.key_string) => {
            return error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "Requests to this API are blocked for this key.");
        }
        Some(_) => {}
    }
    axum::Json(json!({"models": [
        {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
            "supportedGenerationMethods": ["generateContent"]}
    ]}))
    .into_response()
}

impl Google {
    /// Every key the project lists, following `nextPageToken` page by page as a client must.
    pub async fn list_all(&self, access_token: &str, page_size: usize) -> Vec<Value> {
        let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
        let project = self.cloud.lock().map(|c| c.project_id.clone()).unwrap_or_default();
        let mut keys = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = format!("{}/v2/projects/{project}/locations/global/keys?pageSize={page_size}", self.base);
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={token}"));
            }
            let page: Value =
                http.get(&url).bearer_auth(access_token).send().await.expect("list").json().await.expect("page");
            keys.extend(page["keys"].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(next) => page_token = Some(next.to_owned()),
                None => return keys,
            }
        }
    }

    /// Points the runbook's Gemini secret under `prefix` (and the service-account secret it
    /// names) at `key` of this stand-in, as an operator's secrets point at Google.
    pub async fn point_runbook_secrets(
        &self,
        secrets: &aws_sdk_secretsmanager::Client,
        prefix: &str,
        key: &GoogleKey,
    ) -> Result<(), String> {
        let project = self.cloud.lock().map(|c| c.project_id.clone()).map_err(|e| e.to_string())?;
        let account = format!("{prefix}-google-service-account");
        let gemini = json!({"api_key": key.key_string, "key_id": key.name, "project": project,
            "service_account_secret_arn": account, "api_url": self.base, "check_url": self.check_url()});
        for (name, value) in
            [(format!("{prefix}-gemini-api"), gemini.to_string()), (account.clone(), self.service_account.clone())]
        {
            secrets
                .put_secret_value()
                .secret_id(&name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| format!("put {name}: {}", ops_shared::aws::describe_sdk_error(&e)))?;
        }
        Ok(())
    }

    /// A key the project holds besides the initial one (made by hand, say), bound or standard.
    pub fn add_key(&self, key_id: &str, bound: bool) -> GoogleKey {
        let Ok(mut cloud) = self.cloud.lock() else { panic!("stand-in state poisoned") };
        let key = GoogleKey {
            name: format!("projects/{}/locations/global/keys/{key_id}", cloud.project_number),
            key_id: key_id.to_owned(),
            display_name: key_id.to_owned(),
            key_string: new_key_string(bound),
            services: vec![GEMINI_SERVICE.to_owned()],
            service_account: bound.then(|| cloud.client_email.clone()),
            deleted: false,
        };
        cloud.keys.push(key.clone());
        key
    }

    /// An access token as the token endpoint would issue one, for test-side API calls.
    pub fn issue_access_token(&self) -> String {
        let token = format!("ya29.test-{}", random_string(40));
        if let Ok(mut cloud) = self.cloud.lock() {
            cloud.access_tokens.push(token.clone());
        }
        token
    }
}
