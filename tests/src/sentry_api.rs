//! A stand-in of Sentry's REST API for an organization's metric alert rules, following Sentry's
//! API reference ("Alerts": "List an Organization's Metric Alert Rules", "Create a Metric Alert
//! Rule for an Organization", "Retrieve a Metric Alert Rule for an Organization", "Update a
//! Metric Alert Rule", "Delete a Metric Alert Rule"; the OpenAPI document
//! `getsentry/sentry-api-schema` `openapi-derefed.json` as of release 0.271, the last that has
//! these paths: they are marked deprecated there, in favour of Monitors and Alerts, and were
//! taken out of the document in May 2026), "Paginating Results" (docs.sentry.io/api/pagination)
//! and, where the reference is silent, Sentry's own code (`src/sentry/incidents/`: the
//! endpoints `organization_alert_rule_index.py`, `organization_alert_rule_details.py`, the
//! request serializers `serializers/alert_rule.py`, `alert_rule_trigger.py`,
//! `alert_rule_trigger_action.py` and the response serializers under `endpoints/serializers/`):
//!
//! - Auth: `Authorization: Bearer <token>`; none -> 401 `{"detail": "Authentication credentials
//!   were not provided."}`, a wrong one -> 401 `{"detail": "Invalid token"}`; reads need one of
//!   `alerts:read`, `org:read`, `org:write`, `org:admin`, writes one of `alerts:write`,
//!   `org:write`, `org:admin` (the reference's `security`), else 403 `{"detail": "You do not have
//!   permission to perform this action."}`. An unknown organization or rule -> 404 `{"detail":
//!   "The requested resource does not exist"}`.
//! - `GET /api/0/organizations/{org}/alert-rules/` -> 200, the rules newest first, `per_page`
//!   (default 25) and `cursor` (`0:<offset>:0`), a `Link` header with `rel="previous"` and
//!   `rel="next"`, each with `results="true|false"` and `cursor="..."`, and `X-Hits`. A test may
//!   cap the page size below Sentry's 100 to make a short list span pages.
//! - `POST` the same path -> 201 and the rule; `PUT .../alert-rules/{id}/` -> 200 and the rule
//!   (Sentry validates an update as partial: a field left out keeps its value; the fields the
//!   reference marks required are required here on both); `DELETE` -> 202.
//! - Invalid input -> 400 with field errors in camelCase (`{"timeWindow": ["..."]}`), rule-level
//!   ones under `nonFieldErrors`: required `name` (at most 256 characters), `aggregate` (one of
//!   the reference's functions), `projects` (slugs of the organization's projects, else
//!   `{"projects": ["Invalid project"]}`), `query` (in Sentry's search syntax, documentation
//!   "Search", docs.sentry.io/concepts/search/: `key:value`, `!key:value` excludes; one it cannot
//!   parse -> `{"nonFieldErrors": ["Invalid Query or Metric: ..."]}`, see `sentry_search`),
//!   `thresholdType` (0 above, 1 below),
//!   `timeWindow` (minutes: 1, 5, 10, 15, 30, 60, 120, 240, 1440) and `triggers` (1 or 2, labelled
//!   `critical` then `warning`, each with a numeric `alertThreshold`, the critical one beyond the
//!   warning one and both beyond `resolveThreshold`); optional `dataset` (`events`,
//!   `transactions`, `metrics`, `sessions`, `generic_metrics`, `events_analytics_platform`),
//!   `queryType` (0, 1, 2, and it must suit the dataset), `eventTypes`, `environment`,
//!   `resolveThreshold`, `owner`. Trigger actions: `type`, `targetType`, `targetIdentifier`
//!   required; `sentry_app` needs `targetType: "sentry_app"`, `sentryAppId`, and
//!   `targetIdentifier` the app's id as an integer. A `sentryAppId` that is not an app installed
//!   in the organization is refused here with `{"sentryApp": [...]}` (the reference does not
//!   say). Creating a rule on `transactions` or `generic_metrics` is refused as Sentry now does
//!   ("Creation of transaction-based alerts is disabled, ...", a list body).
//! - Responses have the reference's shape: `id` a string, `timeWindow` and thresholds numbers
//!   (floats), triggers with `id`, `alertRuleId`, `label`, `thresholdType`, `alertThreshold`,
//!   `resolveThreshold`, `actions`; actions with `id`, `alertRuleTriggerId`, `type`,
//!   `targetType`, `targetIdentifier` (an integer for a Sentry App), `integrationId`,
//!   `sentryAppId`, `inputChannelId`, `desc`. An update keeps the triggers and actions whose
//!   `id` it names, makes new ones for those without, and deletes the rest.
//!
//! Every request is recorded (method, path, query, body; never the token). Faults can be
//! queued for the next requests, and for what a create answers once it has made the rule.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

pub use crate::ai_engine::{AfterCreate, Fault, answer_after_create};

const READ_SCOPES: [&str; 4] = ["alerts:read", "org:read", "org:write", "org:admin"];
const WRITE_SCOPES: [&str; 3] = ["alerts:write", "org:write", "org:admin"];
const TIME_WINDOWS: [i64; 9] = [1, 5, 10, 15, 30, 60, 120, 240, 1440];
const DATASETS: [&str; 6] =
    ["events", "transactions", "metrics", "sessions", "generic_metrics", "events_analytics_platform"];
const AGGREGATE_FUNCTIONS: [&str; 12] = [
    "count",
    "count_unique",
    "percentage",
    "avg",
    "apdex",
    "failure_rate",
    "p50",
    "p75",
    "p95",
    "p99",
    "p100",
    "percentile",
];
const ACTION_TYPES: [&str; 8] =
    ["email", "slack", "msteams", "pagerduty", "sentry_app", "sentry_notification", "opsgenie", "discord"];
const TARGET_TYPES: [&str; 4] = ["specific", "user", "team", "sentry_app"];
const EVENT_TYPES: [&str; 5] = ["error", "default", "transaction", "trace_item_span", "trace_item_log"];
const TRANSACTIONS_DEPRECATED: &str = "Creation of transaction-based alerts is disabled, as we migrate to the span \
     dataset. Create span-based alerts (dataset: events_analytics_platform) \
     with the is_transaction:true filter instead.";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

struct Org {
    slug: String,
    id: String,
    projects: Vec<String>,
    /// Sentry Apps installed in the organization (their ids).
    sentry_apps: Vec<u64>,
    token: String,
    scopes: Vec<String>,
    rules: BTreeMap<u64, Value>,
    next_id: u64,
    page_cap: usize,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    after_create: VecDeque<AfterCreate>,
}

#[derive(Clone)]
pub struct SentryApi {
    pub base: String,
    pub organization: String,
    pub project: String,
    pub token: String,
    /// The internal integration (a Sentry App installed in the organization).
    pub sentry_app_id: u64,
    org: Arc<Mutex<Org>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "detail": text }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "The requested resource does not exist")
}

fn bad_request(errors: Value) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(errors)).into_response()
}

impl SentryApi {
    /// Organization `organization` with project `project` and one installed internal
    /// integration, on a free loopback port; the token may read and write alert rules.
    pub async fn start(organization: &str, project: &str) -> SentryApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Sentry API stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let token = format!("sntrys_{}", uuid::Uuid::new_v4().simple());
        let sentry_app_id = 4_242;
        let org = Org {
            slug: organization.to_owned(),
            id: "4505676595200000".to_owned(),
            projects: vec![project.to_owned(), "other-project".to_owned()],
            sentry_apps: vec![sentry_app_id, 7_777],
            token: token.clone(),
            scopes: vec!["alerts:read".into(), "alerts:write".into()],
            rules: BTreeMap::new(),
            next_id: 170_000,
            page_cap: 100,
            requests: Vec::new(),
            faults: VecDeque::new(),
            after_create: VecDeque::new(),
        };
        let api = SentryApi {
            base,
            organization: organization.to_owned(),
            project: project.to_owned(),
            token,
            sentry_app_id,
            org: Arc::new(Mutex::new(org)),
        };
        let app = Router::new()
            .route("/api/0/organizations/{org}/alert-rules/", get(list).post(create))
            .route("/api/0/organizations/{org}/alert-rules/{id}/", get(retrieve).put(update).delete(remove))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        api
    }

    /// The value of the `<prefix>-sentry-api` secret that points at this stand-in.
    pub fn secret_json(&self) -> String {
        json!({
            "organization": self.organization,
            "project": self.project,
            "auth_token": self.token,
            "sentry_app_id": self.sentry_app_id,
            "api_url": self.base,
        })
        .to_string()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Org) -> T) -> T {
        let mut org = self.org.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut org)
    }

    /// Every rule, oldest first, as the API would answer it.
    pub fn rules(&self) -> Vec<Value> {
        self.with(|org| org.rules.values().cloned().collect())
    }

    pub fn rules_named(&self, name: &str) -> Vec<Value> {
        self.rules().into_iter().filter(|r| r["name"] == name).collect()
    }

    /// Changes a stored rule as a person in Sentry's UI would (no request is recorded).
    pub fn edit_rule(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        self.with(|org| {
            let rule = org.rules.values_mut().find(|r| r["name"] == name).expect("a rule of that name");
            edit(rule);
            rule["dateModified"] = json!(now());
        })
    }

    /// Deletes a rule as a person in Sentry's UI would.
    pub fn delete_rule(&self, name: &str) {
        self.with(|org| org.rules.retain(|_, r| r["name"] != name))
    }

    /// Makes a rule from a create body, validated as a create request is, as a person in
    /// Sentry's UI would (no request is recorded).
    pub fn add_rule(&self, body: Value) -> Value {
        self.with(|org| {
            let input = validate(org, &body, None, true).unwrap_or_else(|e| panic!("invalid rule {body}: {e}"));
            let id = org.next_id();
            let rule = org.build_rule(id, &input, None);
            org.rules.insert(id, rule.clone());
            rule
        })
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|org| org.requests.clone())
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(Recorded::is_write).collect()
    }

    pub fn clear_requests(&self) {
        self.with(|org| org.requests.clear())
    }

    /// The token's scopes from now on.
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.with(|org| org.scopes = scopes.iter().map(|s| (*s).to_owned()).collect())
    }

    /// Serves at most `cap` rules a page, whatever `per_page` asks (Sentry's cap is 100).
    pub fn cap_page_size(&self, cap: usize) {
        self.with(|org| org.page_cap = cap.max(1))
    }

    pub fn queue_faults(&self, faults: &[Fault]) {
        self.with(|org| org.faults.extend(faults.iter().copied()))
    }

    /// What the next creates answer once they have made their rule.
    pub fn queue_after_create(&self, faults: &[AfterCreate]) {
        self.with(|org| org.after_create.extend(faults.iter().copied()))
    }

    /// Records the request, applies a queued fault, checks the token, the organization and the
    /// token's scopes, in Sentry's order (authentication, then the organization, then access).
    async fn admit(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        organization: &str,
        body: Option<Value>,
    ) -> Result<(), Response> {
        let (fault, verdict) = self.with(|org| {
            org.requests.push(Recorded {
                method: method.to_string(),
                path: path.to_owned(),
                query: query.to_owned(),
                body,
            });
            let verdict = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                None => Err(detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided.")),
                Some(value) if value.strip_prefix("Bearer ") != Some(org.token.as_str()) => {
                    Err(detail(StatusCode::UNAUTHORIZED, "Invalid token"))
                }
                Some(_) if organization != org.slug && organization != org.id => Err(not_found()),
                Some(_) => {
                    let needed: &[&str] = if method == Method::GET { &READ_SCOPES } else { &WRITE_SCOPES };
                    if org.scopes.iter().any(|s| needed.contains(&s.as_str())) {
                        Ok(())
                    } else {
                        Err(detail(StatusCode::FORBIDDEN, "You do not have permission to perform this action."))
                    }
                }
            };
            (org.faults.pop_front(), verdict)
        });
        match fault {
            Some(Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(StatusCode::GATEWAY_TIMEOUT.into_response())
            }
            Some(Fault::Status(code)) => Err((
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(json!({"detail": "Internal Error"})),
            )
                .into_response()),
            None => verdict,
        }
    }
}

impl Org {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The rule as the API answers it, from validated input; `previous` lends what an update
    /// leaves out and the ids of the triggers and actions it keeps.
    fn build_rule(&mut self, id: u64, input: &Map<String, Value>, previous: Option<&Value>) -> Value {
        let field = |name: &str, default: Value| -> Value {
            input.get(name).cloned().or_else(|| previous.and_then(|p| p.get(name).cloned())).unwrap_or(default)
        };
        let dataset = field("dataset", json!("events"));
        let dataset_name = dataset.as_str().unwrap_or("events").to_owned();
        let query_type = field("queryType", json!(default_query_type(&dataset_name)));
        let event_types = field("eventTypes", json!(default_event_types(&dataset_name)));
        let threshold_type = field("thresholdType", json!(0));
        let resolve = field("resolveThreshold", Value::Null).as_f64().map(|v| json!(v)).unwrap_or(Value::Null);
        let window = field("timeWindow", json!(60)).as_f64().unwrap_or(60.0);
        let rule_id = id.to_string();
        let triggers_input: Vec<Value> = match input.get("triggers") {
            Some(Value::Array(t)) => t.clone(),
            _ => previous.and_then(|p| p["triggers"].as_array().cloned()).unwrap_or_default(),
        };
        let mut triggers = Vec::new();
        for trigger in triggers_input {
            let old = trigger.get("id").and_then(|tid| find_by_id(previous.map(|p| &p["triggers"]), tid));
            let trigger_id = match old {
                Some(old) => old["id"].as_str().unwrap_or_default().to_owned(),
                None => self.next_id().to_string(),
            };
            let mut actions = Vec::new();
            for action in trigger["actions"].as_array().cloned().unwrap_or_default() {
                let old_action = action.get("id").and_then(|aid| find_by_id(old.map(|o| &o["actions"]), aid)).cloned();
                let action_id = match &old_action {
                    Some(a) => a["id"].as_str().unwrap_or_default().to_owned(),
                    None => self.next_id().to_string(),
                };
                let kind = action["type"].as_str().unwrap_or_default().to_owned();
                let app = action.get("sentryAppId").and_then(as_integer);
                let target = match kind.as_str() {
                    "sentry_app" | "pagerduty" => action.get("targetIdentifier").and_then(as_integer).map(|t| json!(t)),
                    _ => action
                        .get("targetIdentifier")
                        .map(|t| json!(t.as_str().map(str::to_owned).unwrap_or(t.to_string()))),
                }
                .unwrap_or(Value::Null);
                actions.push(json!({
                    "id": action_id,
                    "alertRuleTriggerId": trigger_id,
                    "type": kind,
                    "targetType": action["targetType"],
                    "targetIdentifier": target,
                    "inputChannelId": null,
                    "integrationId": action.get("integrationId").cloned().unwrap_or(Value::Null),
                    "sentryAppId": app.map(|a| json!(a)).unwrap_or(Value::Null),
                    "dateCreated": old_action.as_ref().map(|a| a["dateCreated"].clone()).unwrap_or(json!(now())),
                    "desc": if kind == "sentry_app" {
                        "Send a notification via the internal integration".to_owned()
                    } else {
                        format!("Send a {kind} notification")
                    },
                    "priority": null,
                }));
            }
            triggers.push(json!({
                "id": trigger_id,
                "alertRuleId": rule_id,
                "label": trigger["label"],
                "thresholdType": threshold_type,
                "alertThreshold": trigger["alertThreshold"].as_f64().map(|v| json!(v)).unwrap_or(Value::Null),
                "resolveThreshold": resolve,
                "dateCreated": old.map(|o| o["dateCreated"].clone()).unwrap_or(json!(now())),
                "actions": actions,
            }));
        }
        let created = previous.map(|p| p["dateCreated"].clone()).unwrap_or(json!(now()));
        json!({
            "id": rule_id,
            "name": field("name", json!("")),
            "organizationId": self.id,
            "status": 0,
            "queryType": query_type,
            "dataset": dataset,
            "query": field("query", json!("")),
            "aggregate": field("aggregate", json!("count()")),
            "thresholdType": threshold_type,
            "resolveThreshold": resolve,
            "timeWindow": window,
            "environment": field("environment", Value::Null),
            "resolution": 1.0,
            "thresholdPeriod": field("thresholdPeriod", json!(1)),
            "triggers": triggers,
            "projects": field("projects", json!([])),
            "includeAllProjects": false,
            "owner": field("owner", Value::Null),
            "originalAlertRuleId": null,
            "comparisonDelta": field("comparisonDelta", Value::Null),
            "eventTypes": event_types,
            "snooze": false,
            "dateModified": now(),
            "dateCreated": created,
            "createdBy": {"id": 2837708, "name": "Ops", "email": "ops@cineview.ai"},
        })
    }
}

fn find_by_id<'a>(list: Option<&'a Value>, id: &Value) -> Option<&'a Value> {
    let id = match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    list?.as_array()?.iter().find(|item| item["id"].as_str() == Some(id.as_str()))
}

fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn default_query_type(dataset: &str) -> i64 {
    match dataset {
        "events" => 0,
        "metrics" | "sessions" => 2,
        _ => 1,
    }
}

fn default_event_types(dataset: &str) -> Vec<&'static str> {
    match dataset {
        "events" => vec!["error", "default"],
        "transactions" | "generic_metrics" => vec!["transaction"],
        "events_analytics_platform" => vec!["trace_item_span"],
        _ => vec![],
    }
}

/// Field errors as DRF reports them: field -> messages.
#[derive(Default)]
struct Errors(Map<String, Value>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self.0.entry(field.to_owned()).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!(message.into()));
        }
    }
}

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", Value::Object(self.0.clone()))
    }
}

/// Checks a create (`creating`) or update body; `previous` is the rule an update changes.
/// Answers the input as given, or the errors a 400 carries.
fn validate(org: &Org, body: &Value, previous: Option<&Value>, creating: bool) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::default();
    let Some(input) = body.as_object() else {
        errors.add("nonFieldErrors", "Invalid data. Expected a dictionary, but got list.");
        return Err(errors);
    };
    for required in ["aggregate", "name", "projects", "query", "thresholdType", "timeWindow", "triggers"] {
        if !input.contains_key(required) {
            errors.add(required, "This field is required.");
        }
    }
    let integer = |field: &str| input.get(field).filter(|v| !v.is_null()).map(|v| as_integer(v).ok_or(()));
    if let Some(name) = input.get("name") {
        match name.as_str() {
            None => errors.add("name", "Not a valid string."),
            Some("") => errors.add("name", "This field may not be blank."),
            Some(n) if n.chars().count() > 256 => {
                errors.add("name", "Ensure this field has no more than 256 characters.")
            }
            Some(_) => {}
        }
    }
    if let Some(aggregate) = input.get("aggregate") {
        match aggregate.as_str() {
            None => errors.add("aggregate", "Not a valid string."),
            Some(a) => {
                let function = a.split('(').next().unwrap_or_default().trim();
                if !a.contains('(') || !a.trim_end().ends_with(')') || !AGGREGATE_FUNCTIONS.contains(&function) {
                    errors.add("aggregate", "Invalid Metric: We do not currently support this field.");
                }
            }
        }
    }
    match input.get("query") {
        None => {}
        Some(Value::String(query)) => {
            // Sentry parses the query with its search grammar (see `sentry_search`).
            if let Err(problem) = crate::sentry_search::check(query) {
                errors.add("nonFieldErrors", format!("Invalid Query or Metric: {problem}"));
            }
        }
        Some(_) => errors.add("query", "Not a valid string."),
    }
    match input.get("projects") {
        None => {}
        Some(Value::Array(projects))
            if projects
                .iter()
                .any(|p| !p.as_str().is_some_and(|slug| org.projects.iter().any(|known| known == slug))) =>
        {
            errors.add("projects", "Invalid project")
        }
        Some(Value::Array(_)) => {}
        Some(_) => errors.add("projects", "Expected a list of items."),
    }
    match integer("thresholdType") {
        Some(Ok(0 | 1)) | None => {}
        Some(Ok(other)) => errors.add("thresholdType", format!("\"{other}\" is not a valid choice.")),
        Some(Err(())) => errors.add("thresholdType", "A valid integer is required."),
    }
    match integer("timeWindow") {
        Some(Ok(w)) if TIME_WINDOWS.contains(&w) => {}
        None => {}
        Some(Ok(other)) => errors.add("timeWindow", format!("\"{other}\" is not a valid choice.")),
        Some(Err(())) => errors.add("timeWindow", "A valid integer is required."),
    }
    let dataset = match input.get("dataset") {
        None => previous.and_then(|p| p["dataset"].as_str()).unwrap_or("events").to_owned(),
        Some(Value::String(d)) if DATASETS.contains(&d.as_str()) => d.clone(),
        Some(_) => {
            errors.add("dataset", format!("Invalid dataset, valid values are {DATASETS:?}"));
            "events".to_owned()
        }
    };
    match integer("queryType") {
        None => {}
        Some(Ok(t @ 0..=2)) => {
            let valid: &[&str] = match t {
                0 => &["events"],
                1 => &["transactions", "generic_metrics", "events_analytics_platform"],
                _ => &["metrics", "sessions"],
            };
            if !valid.contains(&dataset.as_str()) {
                errors.add(
                    "nonFieldErrors",
                    format!("Invalid dataset for this query type. Valid datasets are {valid:?}"),
                );
            }
        }
        Some(Ok(other)) => errors.add("queryType", format!("\"{other}\" is not a valid choice.")),
        Some(Err(())) => errors.add("queryType", "A valid integer is required."),
    }
    if let Some(event_types) = input.get("eventTypes") {
        let valid = event_types
            .as_array()
            .is_some_and(|types| types.iter().all(|t| t.as_str().is_some_and(|t| EVENT_TYPES.contains(&t))));
        if !valid {
            errors.add("eventTypes", format!("Invalid event_type, valid values are {EVENT_TYPES:?}"));
        }
    }
    for nullable_text in ["environment", "owner"] {
        if let Some(value) = input.get(nullable_text)
            && !(value.is_null() || value.is_string())
        {
            errors.add(nullable_text, "Not a valid string.");
        }
    }
    if let Some(environment) = input.get("environment").and_then(Value::as_str)
        && environment.is_empty()
    {
        errors.add("environment", "This field may not be blank.");
    }
    let resolve = match input.get("resolveThreshold") {
        None => previous.and_then(|p| p["resolveThreshold"].as_f64()),
        Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => {
            errors.add("resolveThreshold", "A valid number is required.");
            None
        }
    };
    let threshold_type = integer("thresholdType").and_then(Result::ok).unwrap_or(0);
    match input.get("triggers") {
        None => {}
        Some(Value::Array(triggers)) => {
            validate_triggers(org, triggers, threshold_type, resolve, previous, &mut errors)
        }
        Some(_) => errors.add("triggers", "Expected a list of items."),
    }
    if !errors.0.is_empty() {
        return Err(errors);
    }
    if creating && matches!(dataset.as_str(), "transactions" | "generic_metrics") {
        // Sentry raises this one from the endpoint: the body is a list, not field errors.
        let mut list = Errors::default();
        list.add("", TRANSACTIONS_DEPRECATED);
        return Err(list);
    }
    Ok(input.clone())
}

fn validate_triggers(
    org: &Org,
    triggers: &[Value],
    threshold_type: i64,
    resolve: Option<f64>,
    previous: Option<&Value>,
    errors: &mut Errors,
) {
    if triggers.is_empty() {
        errors.add("nonFieldErrors", "Must include at least one trigger");
        return;
    }
    if triggers.len() > 2 {
        errors.add("nonFieldErrors", "Must send 1 or 2 triggers - A critical trigger, and an optional warning trigger");
        return;
    }
    let mut thresholds = Vec::new();
    for (i, (trigger, expected)) in triggers.iter().zip(["critical", "warning"]).enumerate() {
        if trigger.get("label").and_then(Value::as_str) != Some(expected) {
            errors.add("nonFieldErrors", format!("Trigger {} must be labeled \"{expected}\"", i + 1));
            continue;
        }
        if let Some(id) = trigger.get("id")
            && find_by_id(previous.map(|p| &p["triggers"]), id).is_none()
        {
            errors.add("triggers", format!("Trigger {id} is not a trigger of this rule"));
        }
        let Some(threshold) = trigger.get("alertThreshold").and_then(Value::as_f64) else {
            errors.add("alertThreshold", "A valid number is required.");
            continue;
        };
        thresholds.push((expected, threshold));
        let beyond = |a: f64, b: f64| if threshold_type == 0 { a > b } else { a < b };
        if let Some(resolve) = resolve
            && !beyond(threshold, resolve)
        {
            let side = if threshold_type == 0 { "above" } else { "below" };
            errors.add("nonFieldErrors", format!("{expected} alert threshold must be {side} resolution threshold"));
        }
        let Some(actions) = trigger.get("actions") else { continue };
        let Some(actions) = actions.as_array() else {
            errors.add("actions", "Expected a list of items.");
            continue;
        };
        for action in actions {
            validate_action(org, action, errors);
        }
    }
    if let [(_, critical), (_, warning)] = thresholds[..] {
        let wrong = if threshold_type == 0 { critical < warning } else { critical > warning };
        if wrong {
            let side = if threshold_type == 0 { "above" } else { "below" };
            errors
                .add("nonFieldErrors", format!("Critical trigger must have an alert threshold {side} warning trigger"));
        }
    }
}

fn validate_action(org: &Org, action: &Value, errors: &mut Errors) {
    let text = |field: &str| action.get(field).and_then(Value::as_str);
    let kind = text("type");
    match kind {
        Some(k) if ACTION_TYPES.contains(&k) => {}
        _ => errors.add("type", format!("Invalid type, valid values are {ACTION_TYPES:?}")),
    }
    match text("targetType") {
        Some(t) if TARGET_TYPES.contains(&t) => {}
        _ => errors.add("targetType", format!("Invalid targetType, valid values are [{}]", TARGET_TYPES.join(", "))),
    }
    let target = action.get("targetIdentifier");
    let empty = match target {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if empty {
        errors.add("nonFieldErrors", "One or more of your actions is missing a target identifier.");
        return;
    }
    if kind != Some("sentry_app") {
        return;
    }
    if text("targetType") != Some("sentry_app") {
        errors.add("targetType", "Invalid target type for sentry_app. Valid types are [sentry_app]");
    }
    let Some(app) = action.get("sentryAppId").and_then(as_integer) else {
        errors.add("sentryApp", "SentryApp must be provided for sentry_app");
        return;
    };
    match target.and_then(as_integer) {
        Some(t) if t == app => {}
        Some(_) => errors.add("targetIdentifier", "The target of a sentry_app action is its Sentry App's id"),
        None => errors.add("targetIdentifier", "This must be an integer for Sentry apps"),
    }
    if !u64::try_from(app).is_ok_and(|app| org.sentry_apps.contains(&app)) {
        errors.add("sentryApp", "The Sentry App is not installed in this organization");
    }
}

fn query_string(query: &HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join("&")
}

/// The JSON body, or the text of Sentry's 400 for one that is not JSON.
fn parse_body(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("JSON parse error - {e}"))
}

async fn list(
    State(api): State<SentryApi>,
    Path(organization): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/alert-rules/");
    if let Err(refused) = api.admit(&Method::GET, &path, &query_string(&query), &headers, &organization, None).await {
        return refused;
    }
    let per_page = match query.get("per_page").map(|p| p.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return detail(StatusCode::BAD_REQUEST, "Invalid per_page parameter."),
    };
    let offset = match query.get("cursor") {
        None => 0,
        Some(cursor) => match cursor.split(':').collect::<Vec<_>>()[..] {
            [_, offset, _] => match offset.parse::<usize>() {
                Ok(offset) => offset,
                Err(_) => return detail(StatusCode::BAD_REQUEST, "Invalid cursor parameter."),
            },
            _ => return detail(StatusCode::BAD_REQUEST, "Invalid cursor parameter."),
        },
    };
    let (page, total, per_page) = api.with(|org| {
        let per_page = per_page.min(org.page_cap);
        // Newest first, as Sentry orders by -date_added.
        let page: Vec<Value> = org.rules.values().rev().skip(offset).take(per_page).cloned().collect();
        (page, org.rules.len(), per_page)
    });
    let url = format!("{}{path}", api.base);
    let previous = offset.saturating_sub(per_page);
    let next = offset + per_page;
    let link = format!(
        "<{url}?&cursor=0:{previous}:1>; rel=\"previous\"; results=\"{}\"; cursor=\"0:{previous}:1\", \
         <{url}?&cursor=0:{next}:0>; rel=\"next\"; results=\"{}\"; cursor=\"0:{next}:0\"",
        offset > 0,
        next < total,
    );
    let mut response = axum::Json(Value::Array(page)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [("link", link), ("x-hits", total.to_string()), ("x-max-hits", "1000".to_owned())] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn create(
    State(api): State<SentryApi>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/alert-rules/");
    let parsed = parse_body(&body);
    let recorded = parsed.as_ref().ok().cloned();
    if let Err(refused) = api.admit(&Method::POST, &path, "", &headers, &organization, recorded).await {
        return refused;
    }
    let body = match parsed {
        Ok(body) => body,
        Err(problem) => return detail(StatusCode::BAD_REQUEST, &problem),
    };
    let made = api.with(|org| match validate(org, &body, None, true) {
        // A refusal the endpoint raises itself has a list for its body.
        Err(errors) if errors.0.len() == 1 && errors.0.contains_key("") => {
            Err(errors.0.get("").cloned().unwrap_or_default())
        }
        Err(errors) => Err(Value::Object(errors.0)),
        Ok(input) => {
            let id = org.next_id();
            let rule = org.build_rule(id, &input, None);
            org.rules.insert(id, rule.clone());
            Ok((rule, org.after_create.pop_front()))
        }
    });
    match made {
        Err(errors) => bad_request(errors),
        Ok((rule, after)) => answer_after_create(after, (StatusCode::CREATED, axum::Json(rule)).into_response()).await,
    }
}

async fn retrieve(
    State(api): State<SentryApi>,
    Path((organization, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/alert-rules/{id}/");
    if let Err(refused) = api.admit(&Method::GET, &path, "", &headers, &organization, None).await {
        return refused;
    }
    match id.parse::<u64>().ok().and_then(|id| api.with(|org| org.rules.get(&id).cloned())) {
        Some(rule) => axum::Json(rule).into_response(),
        None => not_found(),
    }
}

async fn update(
    State(api): State<SentryApi>,
    Path((organization, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/alert-rules/{id}/");
    let parsed = parse_body(&body);
    let recorded = parsed.as_ref().ok().cloned();
    if let Err(refused) = api.admit(&Method::PUT, &path, "", &headers, &organization, recorded).await {
        return refused;
    }
    let body = match parsed {
        Ok(body) => body,
        Err(problem) => return detail(StatusCode::BAD_REQUEST, &problem),
    };
    let Ok(id) = id.parse::<u64>() else { return not_found() };
    api.with(|org| {
        let Some(previous) = org.rules.get(&id).cloned() else { return not_found() };
        match validate(org, &body, Some(&previous), false) {
            Err(errors) => bad_request(Value::Object(errors.0)),
            Ok(input) => {
                let rule = org.build_rule(id, &input, Some(&previous));
                org.rules.insert(id, rule.clone());
                axum::Json(rule).into_response()
            }
        }
    })
}

async fn remove(
    State(api): State<SentryApi>,
    Path((organization, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/alert-rules/{id}/");
    if let Err(refused) = api.admit(&Method::DELETE, &path, "", &headers, &organization, None).await {
        return refused;
    }
    match id.parse::<u64>().ok().and_then(|id| api.with(|org| org.rules.remove(&id))) {
        Some(_) => StatusCode::ACCEPTED.into_response(),
        None => not_found(),
    }
}
