//! `opsctl sentry apply`: the runbook's Sentry metric alerts (error rate and P95 latency, each
//! with a warning and a critical trigger over 5 minutes), created and kept as the runbook says
//! through Sentry's REST API, each trigger notifying the internal integration whose webhook is
//! the Function URL of `sentry-webhook` (the alert-forwarder's code).
//!
//! Sentry's API reference, "Alerts" (`/api/0/organizations/{organization_id_or_slug}/alert-rules/`
//! and `.../alert-rules/{alert_rule_id}/`: list, create, update), and "Paginating Results" (the
//! `Link` header). Rules are found by name; a rule of any other name is never read beyond its
//! name, let alone written. Writes are idempotent in effect: a rule that already matches is
//! left alone, so a second run sends no write request.

use std::fmt;
use std::time::Duration;

use ops_shared::http::{Repeat, outcome_unknown, send_with_retry};
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::{AWSCURRENT, SecretError};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

/// The secret is `<prefix>-sentry-api`.
pub const SECRET_SUFFIX: &str = "sentry-api";
pub const DEFAULT_API_URL: &str = "https://sentry.io";

/// Both rules run on the span dataset, restricted to transactions (the root span of each
/// request). Sentry's reference lists `transactions` for a failure-rate alert and
/// `events_analytics_platform` for transaction duration; Sentry itself now refuses to create
/// rules on `transactions` and `generic_metrics` ("Creation of transaction-based alerts is
/// disabled, as we migrate to the span dataset. Create span-based alerts (dataset:
/// events_analytics_platform) with the is_transaction:true filter instead."), so both use the
/// dataset that is still accepted, with the filter Sentry names.
pub const DATASET: &str = "events_analytics_platform";
pub const QUERY: &str = "is_transaction:true";
/// `1`: `event.type:transaction` (the reference's "Metric Alert Rule Types": performance).
pub const QUERY_TYPE: u8 = 1;
/// The runbook's evaluation window, in minutes (`timeWindow` is in minutes).
pub const TIME_WINDOW_MINUTES: u32 = 5;
/// `thresholdType` 0: alert when the value is above the threshold.
pub const THRESHOLD_ABOVE: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction of 1: `failure_rate()` is failed transactions over all transactions, and the
    /// alert compares it as it is (Sentry shows no unit for it), so 2 % is 0.02.
    Ratio,
    Milliseconds,
}

impl Unit {
    fn show(self, value: f64) -> String {
        match self {
            Unit::Ratio => format!("{}% ({value})", round(value * 100.0)),
            Unit::Milliseconds => format!("{} ms", round(value)),
        }
    }
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// One runbook rule: one metric, a warning and a critical threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSpec {
    pub name: &'static str,
    pub aggregate: &'static str,
    pub warning: f64,
    pub critical: f64,
    pub unit: Unit,
}

/// The runbook's rules. The error rate is `failure_rate()`: the share of transactions whose
/// status is neither ok, cancelled nor unknown, which for the Next.js app is the share of
/// requests that failed; the latency is the P95 of the transactions' duration (`span.duration`
/// of a transaction's root span is the transaction's duration).
pub fn runbook_rules() -> [RuleSpec; 2] {
    [
        RuleSpec {
            name: "CineView ops: error rate",
            aggregate: "failure_rate()",
            warning: 0.02,
            critical: 0.05,
            unit: Unit::Ratio,
        },
        RuleSpec {
            name: "CineView ops: P95 latency",
            aggregate: "p95(span.duration)",
            warning: 1500.0,
            critical: 3000.0,
            unit: Unit::Milliseconds,
        },
    ]
}

pub fn secret_name(prefix: &str) -> String {
    format!("{prefix}-{SECRET_SUFFIX}")
}

/// What the `<prefix>-sentry-api` secret holds (JSON).
#[derive(Clone, PartialEq, Eq)]
pub struct SentryApiConfig {
    /// The secret it was read from, for messages.
    pub secret: String,
    /// `api_url`, default `https://sentry.io`, without a trailing slash.
    pub api_url: String,
    pub organization: String,
    pub project: String,
    pub auth_token: String,
    /// The internal integration's numeric id (`sentryAppId` of a trigger action).
    pub sentry_app_id: u64,
    /// Only events of this environment count; `None`: every environment.
    pub environment: Option<String>,
}

impl fmt::Debug for SentryApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryApiConfig")
            .field("secret", &self.secret)
            .field("api_url", &self.api_url)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("auth_token", &"<redacted>")
            .field("sentry_app_id", &self.sentry_app_id)
            .field("environment", &self.environment)
            .finish()
    }
}

/// The JSON to put into the secret, for messages (no real values).
pub fn secret_template() -> &'static str {
    r#"{"organization": "<org slug>", "project": "<project slug>", "auth_token": "<token>", "sentry_app_id": <id>}"#
}

impl SentryApiConfig {
    /// Parses the secret's value. Messages name the field at fault and never quote a value.
    pub fn parse(secret: &str, value: &str) -> Result<SentryApiConfig, SentryError> {
        let problem = |problem: String| SentryError::Secret { secret: secret.to_owned(), problem };
        let json: Value = serde_json::from_str(value).map_err(|e| {
            problem(format!("is not JSON ({:?} error at line {} column {})", e.classify(), e.line(), e.column()))
        })?;
        let Some(object) = json.as_object() else {
            return Err(problem("is not a JSON object".to_owned()));
        };
        let text = |field: &str| -> Result<String, SentryError> {
            match object.get(field) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                Some(Value::String(_)) => Err(problem(format!("{field} is empty"))),
                Some(_) => Err(problem(format!("{field} is not a string"))),
                None => Err(problem(format!("has no {field}"))),
            }
        };
        let organization = text("organization")?;
        let project = text("project")?;
        let auth_token = text("auth_token")?;
        let sentry_app_id = match object.get("sentry_app_id") {
            Some(Value::Number(n)) => n.as_u64().filter(|id| *id > 0),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok().filter(|id| *id > 0),
            None => return Err(problem("has no sentry_app_id".to_owned())),
            Some(_) => None,
        }
        .ok_or_else(|| {
            problem(
                "sentry_app_id is not the internal integration's numeric id (Sentry's API for custom integrations \
                 answers with the slug and uuid only, so a slug cannot be turned into the id; README, Operator CLI, \
                 says where to find it)"
                    .to_owned(),
            )
        })?;
        let api_url = match object.get("api_url") {
            None | Some(Value::Null) => DEFAULT_API_URL.to_owned(),
            Some(Value::String(url)) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                match Url::parse(&url) {
                    Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => url,
                    _ => return Err(problem("api_url is not an http(s) URL".to_owned())),
                }
            }
            Some(_) => return Err(problem("api_url is not a string".to_owned())),
        };
        let environment = match object.get("environment") {
            None | Some(Value::Null) => None,
            Some(Value::String(e)) if !e.trim().is_empty() => Some(e.trim().to_owned()),
            Some(Value::String(_)) => None,
            Some(_) => return Err(problem("environment is not a string".to_owned())),
        };
        Ok(SentryApiConfig {
            secret: secret.to_owned(),
            api_url,
            organization,
            project,
            auth_token,
            sentry_app_id,
            environment,
        })
    }
}

/// Why `sentry apply` could not do its work; each says what to do. All are exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    #[error("the Sentry API secret {secret} {problem}")]
    Secret { secret: String, problem: String },
    #[error(
        "Sentry refused the auth token in {secret} (401: {detail}): put a valid token into its auth_token, \
         the internal integration's token (Alerts: Read & Write) or a user auth token with alerts:read and alerts:write"
    )]
    Unauthorized { secret: String, detail: String },
    #[error(
        "the auth token in {secret} may not manage alert rules of organization {organization} (403: {detail}): \
         give it alerts:read and alerts:write (for the internal integration: permission Alerts, Read & Write)"
    )]
    Forbidden { secret: String, organization: String, detail: String },
    #[error(
        "Sentry at {api_url} has no organization {organization:?} that the token can see (404: {detail}): \
         check organization and api_url in {secret} (an organization in Sentry's EU region is at https://de.sentry.io)"
    )]
    OrganizationNotFound { secret: String, api_url: String, organization: String, detail: String },
    #[error(
        "organization {organization} has no project {project:?} that the token can see (Sentry: {detail}): \
         check project in {secret}"
    )]
    ProjectNotFound { secret: String, organization: String, project: String, detail: String },
    #[error("cannot reach Sentry at {api_url} ({detail}): check api_url in {secret} and this machine's network")]
    Unreachable { secret: String, api_url: String, detail: String },
    #[error("Sentry refused rule {rule:?} ({status}: {detail})")]
    Refused { rule: String, status: u16, detail: String },
    #[error("Sentry answered {what} with {status}: {detail}")]
    Unexpected { what: String, status: u16, detail: String },
}

impl SentryError {
    pub const EXIT_CODE: u8 = 2;
}

/// Reads the Sentry API settings from `<prefix>-sentry-api` (AWSCURRENT).
pub async fn read_config(store: &impl SecretVersions, prefix: &str) -> Result<SentryApiConfig, SentryError> {
    let secret = secret_name(prefix);
    let value = store.value_at(&secret, AWSCURRENT).await.map_err(|err| {
        let problem = match err {
            SecretError::NotFound { .. } => format!(
                "does not exist (or has no current value): create it, \
                 aws secretsmanager create-secret --name {secret} --secret-string '{}'",
                secret_template()
            ),
            SecretError::AccessDenied { detail, .. } => {
                let fix = "allow secretsmanager:GetSecretValue on it";
                format!("cannot be read with these AWS credentials ({detail}): {fix}")
            }
            SecretError::NotString { .. } => format!("holds binary data, not the JSON {}", secret_template()),
            SecretError::Malformed { problem, .. } => problem,
            SecretError::Unavailable { detail, .. } => format!("could not be read ({detail})"),
        };
        SentryError::Secret { secret: secret.clone(), problem }
    })?;
    SentryApiConfig::parse(&secret, &value.value)
}

/// Sentry's alert-rule endpoints for one organization, on the project's one HTTP client.
#[derive(Clone, Debug)]
pub struct SentryClient {
    http: reqwest::Client,
    config: SentryApiConfig,
    attempts: u32,
    backoff: Duration,
}

/// Rules per list page asked for (Sentry's largest page).
const PER_PAGE: &str = "100";

impl SentryClient {
    pub fn new(http: reqwest::Client, config: SentryApiConfig) -> SentryClient {
        SentryClient { http, config, attempts: 3, backoff: Duration::from_millis(500) }
    }

    /// The wait before the first retry (doubled after each).
    pub fn with_backoff(mut self, backoff: Duration) -> SentryClient {
        self.backoff = backoff;
        self
    }

    pub fn config(&self) -> &SentryApiConfig {
        &self.config
    }

    /// `{api_url}/api/0/organizations/{org}/alert-rules/[{id}/]`, the slug escaped as a path segment.
    fn url(&self, rule_id: Option<&str>) -> Result<Url, SentryError> {
        let mut url = Url::parse(&self.config.api_url).map_err(|e| SentryError::Secret {
            secret: self.config.secret.clone(),
            problem: format!("has an api_url that is not a URL ({e})"),
        })?;
        {
            let mut segments = url.path_segments_mut().map_err(|()| SentryError::Secret {
                secret: self.config.secret.clone(),
                problem: "has an api_url that cannot take a path".to_owned(),
            })?;
            segments.pop_if_empty().extend(["api", "0", "organizations", &self.config.organization, "alert-rules"]);
            if let Some(id) = rule_id {
                segments.push(id);
            }
            segments.push("");
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let build = || {
            let request = self.http.request(method.clone(), url.clone()).bearer_auth(&self.config.auth_token);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        send_with_retry(build, self.attempts, self.backoff, repeat).await
    }

    fn unreachable(&self, err: &reqwest::Error) -> SentryError {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        // reqwest names the URL; the token is in a header and never in the text.
        SentryError::Unreachable { secret: self.config.secret.clone(), api_url: self.config.api_url.clone(), detail }
    }

    /// Maps an answer that is not the expected success to the error that says what to do.
    fn refusal(&self, what: &str, rule: Option<&str>, status: StatusCode, body: &str) -> SentryError {
        let detail = error_detail(body);
        let config = &self.config;
        match status {
            StatusCode::UNAUTHORIZED => SentryError::Unauthorized { secret: config.secret.clone(), detail },
            StatusCode::FORBIDDEN => SentryError::Forbidden {
                secret: config.secret.clone(),
                organization: config.organization.clone(),
                detail,
            },
            StatusCode::NOT_FOUND if rule.is_none() => SentryError::OrganizationNotFound {
                secret: config.secret.clone(),
                api_url: config.api_url.clone(),
                organization: config.organization.clone(),
                detail,
            },
            StatusCode::BAD_REQUEST if project_refused(body) => SentryError::ProjectNotFound {
                secret: config.secret.clone(),
                organization: config.organization.clone(),
                project: config.project.clone(),
                detail,
            },
            StatusCode::BAD_REQUEST if rule.is_some() => {
                SentryError::Refused { rule: rule.unwrap_or_default().to_owned(), status: status.as_u16(), detail }
            }
            _ => SentryError::Unexpected { what: what.to_owned(), status: status.as_u16(), detail },
        }
    }

    /// Every metric alert rule of the organization, page after page (`Link: <...>; rel="next";
    /// results="true"; cursor="..."`). The next page is asked of the configured host with the
    /// cursor, so the token only ever goes to `api_url`.
    pub async fn list_rules(&self) -> Result<Vec<Value>, SentryError> {
        let mut rules = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut url = self.url(None)?;
            url.query_pairs_mut().append_pair("per_page", PER_PAGE);
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let response =
                self.send(Method::GET, url, None, Repeat::Idempotent).await.map_err(|e| self.unreachable(&e))?;
            let status = response.status();
            let next =
                response.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_cursor);
            let body = response.text().await.map_err(|e| self.unreachable(&e))?;
            if status != StatusCode::OK {
                return Err(self.refusal("listing the alert rules", None, status, &body));
            }
            let page: Vec<Value> = serde_json::from_str(&body).map_err(|e| SentryError::Unexpected {
                what: "listing the alert rules".to_owned(),
                status: status.as_u16(),
                detail: format!("not a JSON array of rules ({e})"),
            })?;
            rules.extend(page);
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(rules),
            }
        }
        Ok(rules)
    }

    /// Creates a rule (201). Sentry takes no idempotency key, so after an answer that leaves
    /// the outcome unknown (a timeout, a lost connection, a 5xx) the rule is looked up by name
    /// before it is created a second time.
    pub async fn create_rule(&self, name: &str, body: &Value) -> Result<Value, SentryError> {
        for attempt in 1..=2 {
            let result = self.send(Method::POST, self.url(None)?, Some(body), Repeat::NotIdempotent).await;
            if outcome_unknown(&result) {
                if let Some(rule) = self.list_rules().await?.into_iter().find(|r| rule_name(r) == Some(name)) {
                    return Ok(rule);
                }
                if attempt == 1 {
                    continue;
                }
            }
            let response = result.map_err(|e| self.unreachable(&e))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| self.unreachable(&e))?;
            if status != StatusCode::CREATED {
                return Err(self.refusal(&format!("creating rule {name:?}"), Some(name), status, &text));
            }
            return parse_rule(&text, status, name);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Replaces rule `id` with `body` (200). Sending the same whole rule twice does no harm,
    /// so timeouts and 5xx are retried.
    pub async fn update_rule(&self, id: &str, name: &str, body: &Value) -> Result<Value, SentryError> {
        let response = self
            .send(Method::PUT, self.url(Some(id))?, Some(body), Repeat::Idempotent)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if status != StatusCode::OK {
            return Err(self.refusal(&format!("updating rule {name:?} (id {id})"), Some(name), status, &text));
        }
        parse_rule(&text, status, name)
    }
}

fn parse_rule(text: &str, status: StatusCode, name: &str) -> Result<Value, SentryError> {
    match serde_json::from_str::<Value>(text) {
        Ok(rule) if rule.is_object() => Ok(rule),
        _ => Err(SentryError::Unexpected {
            what: format!("writing rule {name:?}"),
            status: status.as_u16(),
            detail: "the answer is not a rule".to_owned(),
        }),
    }
}

fn rule_name(rule: &Value) -> Option<&str> {
    rule.get("name").and_then(Value::as_str)
}

fn rule_id(rule: &Value) -> Option<String> {
    match rule.get("id") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => None,
    }
}

/// The cursor of the `rel="next"` link when it says `results="true"`.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let params: Vec<(String, String)> = part
            .split(';')
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
            .collect();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        (param("rel") == Some("next") && param("results") == Some("true"))
            .then(|| param("cursor").map(str::to_owned))
            .flatten()
    })
}

/// A short, value-free account of Sentry's error body: `{"detail": ...}`, field errors
/// (`{"timeWindow": ["..."]}`) or a list of messages.
pub fn error_detail(body: &str) -> String {
    fn texts(value: &Value) -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items.iter().flat_map(texts).collect(),
            Value::Object(map) => {
                map.iter().flat_map(|(field, v)| texts(v).into_iter().map(move |t| format!("{field}: {t}"))).collect()
            }
            other => vec![other.to_string()],
        }
    }
    let detail = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) if map.len() == 1 && map.contains_key("detail") => texts(&map["detail"]).join("; "),
        Ok(value) => texts(&value).join("; "),
        Err(_) => body.trim().chars().take(200).collect(),
    };
    if detail.is_empty() { "no detail".to_owned() } else { detail.chars().take(500).collect() }
}

/// A 400 that is about `projects` (Sentry's `ProjectField`: "Invalid project").
fn project_refused(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.as_object().map(|m| m.contains_key("projects")))
        .unwrap_or(false)
}

/// The trigger action every trigger gets: the internal integration (a Sentry App), whose
/// webhook receives `metric_alert` deliveries. For `sentry_app` the reference asks
/// `targetType: "sentry_app"`, `targetIdentifier` the app's id as an integer, and `sentryAppId`.
fn integration_action(config: &SentryApiConfig) -> Value {
    json!({
        "type": "sentry_app",
        "targetType": "sentry_app",
        "targetIdentifier": config.sentry_app_id,
        "sentryAppId": config.sentry_app_id,
    })
}

/// The whole rule as the runbook wants it. `existing` lends its trigger ids, so an update keeps
/// the triggers (and their incidents) instead of replacing them. Every field the project owns
/// is sent, `resolveThreshold` and `environment` as null too: Sentry applies an update
/// partially and would keep a value left out.
pub fn desired_body(spec: &RuleSpec, config: &SentryApiConfig, existing: Option<&Value>) -> Value {
    let trigger = |label: &str, threshold: f64| {
        let mut trigger = Map::new();
        if let Some(id) = existing.and_then(|rule| find_trigger(rule, label)).and_then(|t| t.get("id")).cloned() {
            trigger.insert("id".into(), id);
        }
        trigger.insert("label".into(), json!(label));
        trigger.insert("alertThreshold".into(), json!(threshold));
        trigger.insert("actions".into(), json!([integration_action(config)]));
        Value::Object(trigger)
    };
    json!({
        "name": spec.name,
        "aggregate": spec.aggregate,
        "dataset": DATASET,
        "queryType": QUERY_TYPE,
        "query": QUERY,
        "timeWindow": TIME_WINDOW_MINUTES,
        "thresholdType": THRESHOLD_ABOVE,
        "resolveThreshold": null,
        "environment": config.environment,
        "projects": [config.project],
        // Sentry wants the critical trigger first, then the warning.
        "triggers": [trigger("critical", spec.critical), trigger("warning", spec.warning)],
    })
}

fn find_trigger<'a>(rule: &'a Value, label: &str) -> Option<&'a Value> {
    rule.get("triggers")?.as_array()?.iter().find(|t| t.get("label").and_then(Value::as_str) == Some(label))
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "none".to_owned(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

/// How `action` reads: "the internal integration (Sentry App 42)" or "email to user 7".
fn describe_action(action: &Value) -> String {
    let field = |name: &str| match action.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".to_owned(),
        Some(other) => other.to_string(),
    };
    if field("type") == "sentry_app" {
        format!("Sentry App {}", field("sentryAppId"))
    } else {
        format!("{} to {} {}", field("type"), field("targetType"), field("targetIdentifier"))
    }
}

fn is_integration_action(action: &Value, config: &SentryApiConfig) -> bool {
    let id = config.sentry_app_id as f64;
    action.get("type").and_then(Value::as_str) == Some("sentry_app")
        && action.get("targetType").and_then(Value::as_str) == Some("sentry_app")
        && number(action.get("sentryAppId")).is_some_and(|v| same_number(v, id))
        && number(action.get("targetIdentifier")).is_some_and(|v| same_number(v, id))
}

/// What differs between rule `actual` and the runbook, one line each ("critical threshold:
/// 9% (0.09) -> 5% (0.05)"); empty when it matches. Only what the project sets is compared:
/// fields Sentry fills in itself (ids, dates, owner, `eventTypes`, `queryType`) are not.
pub fn differences(spec: &RuleSpec, config: &SentryApiConfig, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let text = |field: &str| actual.get(field).and_then(Value::as_str);
    for (field, want) in [("dataset", DATASET), ("aggregate", spec.aggregate), ("query", QUERY)] {
        if text(field).map(str::trim) != Some(want) {
            out.push(format!("{field}: {} -> {want:?}", shown(actual.get(field))));
        }
    }
    let window = number(actual.get("timeWindow"));
    if !window.is_some_and(|w| same_number(w, f64::from(TIME_WINDOW_MINUTES))) {
        let had = window.map(|w| format!("{w} min")).unwrap_or_else(|| "none".to_owned());
        out.push(format!("window: {had} -> {TIME_WINDOW_MINUTES} min"));
    }
    if number(actual.get("thresholdType")) != Some(f64::from(THRESHOLD_ABOVE)) {
        let had = match number(actual.get("thresholdType")) {
            Some(1.0) => "below".to_owned(),
            _ => shown(actual.get("thresholdType")),
        };
        out.push(format!("threshold type: {had} -> above"));
    }
    if let Some(resolve) = number(actual.get("resolveThreshold")) {
        out.push(format!("resolve threshold: {} -> automatic (below the warning threshold)", spec.unit.show(resolve)));
    }
    let environment = actual.get("environment").and_then(Value::as_str);
    if environment != config.environment.as_deref() {
        let want = config.environment.as_deref().map(|e| format!("{e:?}")).unwrap_or_else(|| "all".to_owned());
        let had = environment.map(|e| format!("{e:?}")).unwrap_or_else(|| "all".to_owned());
        out.push(format!("environment: {had} -> {want}"));
    }
    let projects: Vec<&str> = actual
        .get("projects")
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if projects != [config.project.as_str()] {
        out.push(format!("projects: {projects:?} -> [{:?}]", config.project));
    }
    let triggers: Vec<&Value> =
        actual.get("triggers").and_then(Value::as_array).map(|t| t.iter().collect()).unwrap_or_default();
    for (label, want) in [("critical", spec.critical), ("warning", spec.warning)] {
        let Some(trigger) = find_trigger(actual, label) else {
            out.push(format!("{label} trigger: missing -> above {}", spec.unit.show(want)));
            continue;
        };
        match number(trigger.get("alertThreshold")) {
            Some(had) if same_number(had, want) => {}
            Some(had) => out.push(format!("{label} threshold: {} -> {}", spec.unit.show(had), spec.unit.show(want))),
            None => out.push(format!("{label} threshold: none -> {}", spec.unit.show(want))),
        }
        let actions: Vec<&Value> =
            trigger.get("actions").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
        if !(actions.len() == 1 && is_integration_action(actions[0], config)) {
            let had = if actions.is_empty() {
                "none".to_owned()
            } else {
                actions.iter().map(|a| describe_action(a)).collect::<Vec<_>>().join(", ")
            };
            out.push(format!("{label} action: {had} -> Sentry App {}", config.sentry_app_id));
        }
    }
    for trigger in triggers {
        let label = trigger.get("label").and_then(Value::as_str).unwrap_or("?");
        if label != "critical" && label != "warning" {
            out.push(format!("trigger {label:?}: present -> removed"));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    UpToDate,
    Created,
    PutBack,
    WouldCreate,
    WouldPutBack,
}

#[derive(Debug, Clone)]
pub struct RuleReport {
    pub name: String,
    /// Sentry's id of the rule, once there is one.
    pub id: Option<String>,
    pub change: Change,
    /// What differed from the runbook (before a put-back).
    pub differences: Vec<String>,
    /// Ids of further rules with the same name, which are left alone.
    pub duplicates: Vec<String>,
    /// What still differs in the rule Sentry answered a write with: the write did not take.
    pub after_write: Vec<String>,
}

impl RuleReport {
    fn problem(&self) -> bool {
        !self.duplicates.is_empty() || !self.after_write.is_empty()
    }
}

/// What `apply` found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dry_run: bool,
    pub rules: Vec<RuleReport>,
}

impl Outcome {
    /// Something differs from the runbook (before any put-back).
    pub fn drift(&self) -> bool {
        self.rules.iter().any(|r| r.change != Change::UpToDate)
    }

    /// 0: as the runbook says (or made so); 1: a problem found: drift left in place by
    /// `--dry-run`, a rule whose name is taken twice, or a write that did not take.
    pub fn exit_code(&self) -> u8 {
        let problem = self.rules.iter().any(RuleReport::problem);
        if problem || (self.dry_run && self.drift()) { 1 } else { 0 }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            let name = match &rule.id {
                Some(id) => format!("{} (id {id})", rule.name),
                None => rule.name.clone(),
            };
            let line = match rule.change {
                Change::UpToDate => "up to date",
                Change::Created => "was missing: created",
                Change::WouldCreate => "is missing: would be created",
                Change::PutBack => "differs from the runbook: put back",
                Change::WouldPutBack => "differs from the runbook: would be put back",
            };
            out.push_str(&format!("{name}: {line}\n"));
            for difference in &rule.differences {
                out.push_str(&format!("  {difference}\n"));
            }
            if !rule.duplicates.is_empty() {
                out.push_str(&format!(
                    "PROBLEM {}: more rules carry this name (ids {}); they are left alone: delete them in Sentry\n",
                    rule.name,
                    rule.duplicates.join(", ")
                ));
            }
            if !rule.after_write.is_empty() {
                out.push_str(&format!(
                    "PROBLEM {}: Sentry answered the write with a rule that still differs: {}\n",
                    rule.name,
                    rule.after_write.join("; ")
                ));
            }
        }
        if !self.drift() {
            out.push_str("up to date\n");
        } else if self.dry_run {
            out.push_str("dry run: nothing was written\n");
        }
        out
    }
}

/// Makes the organization's rules match the runbook (or, with `dry_run`, only says how they
/// differ). Reads the organization's rule list once; writes only rules that differ.
pub async fn apply(client: &SentryClient, dry_run: bool) -> Result<Outcome, SentryError> {
    let config = client.config();
    let rules = client.list_rules().await?;
    let mut reports = Vec::new();
    for spec in runbook_rules() {
        let mut named: Vec<&Value> = rules.iter().filter(|r| rule_name(r) == Some(spec.name)).collect();
        // The oldest rule of the name is the one kept; Sentry's ids grow.
        named.sort_by_key(|r| rule_id(r).and_then(|id| id.parse::<u64>().ok()).unwrap_or(u64::MAX));
        let duplicates = named.iter().skip(1).filter_map(|r| rule_id(r)).collect();
        let mut report = RuleReport {
            name: spec.name.to_owned(),
            id: None,
            change: Change::UpToDate,
            differences: Vec::new(),
            duplicates,
            after_write: Vec::new(),
        };
        let written = match named.first() {
            None if dry_run => {
                report.change = Change::WouldCreate;
                None
            }
            None => {
                report.change = Change::Created;
                Some(client.create_rule(spec.name, &desired_body(&spec, config, None)).await?)
            }
            Some(rule) => {
                report.id = rule_id(rule);
                report.differences = differences(&spec, config, rule);
                if report.differences.is_empty() {
                    None
                } else if dry_run {
                    report.change = Change::WouldPutBack;
                    None
                } else {
                    report.change = Change::PutBack;
                    let id = report.id.clone().unwrap_or_default();
                    Some(client.update_rule(&id, spec.name, &desired_body(&spec, config, Some(rule))).await?)
                }
            }
        };
        if let Some(rule) = written {
            report.id = rule_id(&rule).or(report.id);
            report.after_write = differences(&spec, config, &rule);
        }
        reports.push(report);
    }
    Ok(Outcome { dry_run, rules: reports })
}

/// `opsctl sentry apply`: reads `<prefix>-sentry-api` and applies the runbook's rules.
pub async fn run(
    store: &impl SecretVersions,
    http: &reqwest::Client,
    prefix: &str,
    dry_run: bool,
) -> Result<Outcome, SentryError> {
    let config = read_config(store, prefix).await?;
    apply(&SentryClient::new(http.clone(), config), dry_run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SentryApiConfig {
        SentryApiConfig::parse(
            "p-sentry-api",
            r#"{"organization":"acme","project":"web","auth_token":"t0ken","sentry_app_id":42}"#,
        )
        .expect("parses")
    }

    #[test]
    fn the_secret_is_parsed_with_defaults_and_errors_name_the_field() {
        let c = config();
        assert_eq!((c.api_url.as_str(), c.sentry_app_id, c.environment.as_deref()), (DEFAULT_API_URL, 42, None));
        assert!(!format!("{c:?}").contains("t0ken"), "the token is not in Debug");
        let err = |value: &str| SentryApiConfig::parse("s", value).expect_err("refused").to_string();
        assert!(err(r#"{"organization":"a","project":"p","auth_token":"t"}"#).contains("has no sentry_app_id"));
        let slug =
            err(r#"{"organization":"a","project":"p","auth_token":"secret-token","sentry_app_id":"cineview-ops"}"#);
        assert!(slug.contains("numeric id") && !slug.contains("secret-token"), "{slug}");
        assert!(err(r#"{"organization":"a","auth_token":"t","sentry_app_id":1}"#).contains("has no project"));
        assert!(err("not json, hunter2").contains("is not JSON") && !err("not json, hunter2").contains("hunter2"));
        let eu = SentryApiConfig::parse(
            "s",
            r#"{"organization":"a","project":"p","auth_token":"t","sentry_app_id":"7",
                "api_url":"https://de.sentry.io/","environment":"production"}"#,
        )
        .expect("parses");
        assert_eq!(
            (eu.api_url.as_str(), eu.sentry_app_id, eu.environment.as_deref()),
            ("https://de.sentry.io", 7, Some("production"))
        );
    }

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let link = concat!(
            r#"<https://sentry.io/api/0/organizations/acme/alert-rules/?&cursor=0:0:1>; rel="previous"; "#,
            r#"results="false"; cursor="0:0:1", "#,
            r#"<https://sentry.io/api/0/organizations/acme/alert-rules/?&cursor=0:100:0>; rel="next"; "#,
            r#"results="true"; cursor="0:100:0""#
        );
        assert_eq!(next_cursor(link).as_deref(), Some("0:100:0"));
        assert_eq!(next_cursor(&link.replace(r#"results="true""#, r#"results="false""#)), None);
    }

    #[test]
    fn a_rule_as_desired_has_no_differences_and_each_field_is_named() {
        let c = config();
        for spec in runbook_rules() {
            let mut rule = desired_body(&spec, &c, None);
            // Sentry answers numbers as floats and the action's identifier as an integer.
            rule["timeWindow"] = json!(5.0);
            assert_eq!(differences(&spec, &c, &rule), Vec::<String>::new(), "{}", spec.name);
            rule["triggers"][0]["alertThreshold"] = json!(spec.critical * 3.0);
            rule["triggers"][1]["actions"] = json!([]);
            rule["timeWindow"] = json!(10);
            let found = differences(&spec, &c, &rule);
            assert_eq!(found.len(), 3, "{found:?}");
            assert!(found[0].starts_with("window: 10 min -> 5 min"), "{found:?}");
            assert!(found[1].starts_with("critical threshold:"), "{found:?}");
            assert!(found[2].starts_with("warning action: none -> Sentry App 42"), "{found:?}");
        }
    }

    #[test]
    fn exit_codes() {
        let report = |change| RuleReport {
            name: "r".into(),
            id: None,
            change,
            differences: vec![],
            duplicates: vec![],
            after_write: vec![],
        };
        let outcome = |dry_run, change| Outcome { dry_run, rules: vec![report(change)] };
        assert_eq!(outcome(false, Change::UpToDate).exit_code(), 0);
        assert_eq!(outcome(false, Change::PutBack).exit_code(), 0);
        assert_eq!(outcome(true, Change::WouldPutBack).exit_code(), 1);
        assert_eq!(outcome(true, Change::UpToDate).exit_code(), 0);
        let mut twice = outcome(false, Change::UpToDate);
        twice.rules[0].duplicates.push("9".into());
        assert_eq!(twice.exit_code(), 1);
        assert_eq!(SentryError::EXIT_CODE, 2);
    }
}
