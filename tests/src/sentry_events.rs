//! A stand-in of the Sentry REST API endpoints that read an app's numbers, following Sentry's
//! API reference and its OpenAPI document (`getsentry/sentry-api-schema`, `openapi-derefed.json`,
//! release 0.272.0): "List an Organization's Projects" (`GET /api/0/organizations/{org}/projects/`),
//! "Query Explore Events in Table Format" (`GET .../events/`) and "List an Organization's Issues"
//! (`GET .../issues/`), with "Paginating Results" (docs.sentry.io/api/pagination); where the
//! document is silent, Sentry's own code (`api/bases/organization_events.py`, `api/utils.py`,
//! `search/eap/spans/formulas.py`, `issues/endpoints/organization_group_index.py`,
//! `api/serializers/models/group_stream.py`, `api/endpoints/organization_projects.py`):
//!
//! - Auth: `Authorization: Bearer <token>`; none -> 401 `{"detail": "Authentication credentials
//!   were not provided."}`, a wrong one -> 401 `{"detail": "Invalid token"}`. The document's
//!   `security`: projects and events need one of `org:read`, `org:write`, `org:admin`; issues one
//!   of `event:read`, `event:write`, `event:admin`; else 403 `{"detail": "You do not have
//!   permission to perform this action."}`. An unknown organization or environment -> 404
//!   `{"detail": "The requested resource does not exist"}`.
//! - Projects: `query` tokens `slug:<slug>` (exact), `id:<id>`, or a bare term (in name or slug);
//!   items with `id` (a string), `slug`, `name`, `platform`, `environments`, ...; `per_page` at
//!   most 100 (else 400 `Invalid per_page value. Cannot exceed 100.`); a `Link` header with
//!   `rel="previous"` and `rel="next"`, each with `results` and `cursor`.
//! - Events: `field` (required, repeated, at most 20) and `dataset` (required; one of `errors`,
//!   `logs`, `profile_functions`, `spans`, `tracemetrics`, `uptime_results`); `project` takes
//!   numeric ids only (`Invalid project parameter. Values must be numbers.`), one the token
//!   cannot see -> 403; `start` and `end` together (`Invalid date range: start and end are both
//!   required`) or `statsPeriod` (which wins). Answers `{"data": [row], "meta": {"fields",
//!   "units", ...}}`, rows keyed by the field as asked; the spans dataset adds `confidence`.
//!   On spans: `count()`, a float (extrapolated from samples); `failure_rate()`, a fraction of 1
//!   (type `percentage`): spans whose `span.status` is not `ok`, `cancelled` or `unknown`, over
//!   all; `p95(span.duration)` in milliseconds (type `duration`). Over no spans each is 0 (Sentry
//!   turns NaN into 0). On errors: `count()`. Queries are checked with Sentry's search syntax
//!   (`sentry_search`); this stand-in then evaluates only `key:value` and `!key:value` filters
//!   joined by spaces (`is_transaction`, `environment`, `span.status` and tags) and refuses any
//!   other query with a 400 that says so. P95 is the linear-interpolation quantile.
//! - Issues: `query` (`is:unresolved`, `is:resolved` and the substatuses `is:new`,
//!   `is:regressed`, `is:escalating`, `is:ongoing`; `firstSeen:` with `>=`, `>`, `<=`, `<` and
//!   an absolute time or `-24h`); only issues with events in the period are listed; `sort` one of
//!   `date`, `freq`, `inbox`, `new`, `recommended`, `trends`, `user` (default `date`); `limit` at
//!   most 100. Items carry `count` as a string and `userCount` as a number, both within the
//!   period and environment, `firstSeen`, `lastSeen`, `permalink`, `level`, `status`,
//!   `substatus`, `shortId`, `title`, `culprit`, `project`, `lifetime`; `X-Hits` counts the
//!   matches.
//!
//! Every request is recorded (path and query; never the token).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{Value, json};

const ORG_SCOPES: [&str; 3] = ["org:read", "org:write", "org:admin"];
const EVENT_SCOPES: [&str; 3] = ["event:read", "event:write", "event:admin"];
const DATASETS: [&str; 6] = ["errors", "logs", "profile_functions", "spans", "tracemetrics", "uptime_results"];
const ISSUE_SORTS: [&str; 7] = ["date", "freq", "inbox", "new", "recommended", "trends", "user"];
const NON_FAILURE: [&str; 3] = ["ok", "cancelled", "unknown"];

/// A span as the stand-in stores it: a transaction when `is_transaction`.
#[derive(Debug, Clone)]
pub struct Span {
    pub at: DateTime<Utc>,
    pub duration_ms: f64,
    pub status: String,
    pub is_transaction: bool,
    pub environment: String,
    pub tags: BTreeMap<String, String>,
}

impl Span {
    /// A transaction of the app at `at`.
    pub fn transaction(at: DateTime<Utc>, duration_ms: f64, status: &str, environment: &str) -> Span {
        Span {
            at,
            duration_ms,
            status: status.to_owned(),
            is_transaction: true,
            environment: environment.to_owned(),
            tags: BTreeMap::new(),
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Span {
        self.tags.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// An error event: when, in which environment, for which user.
pub type ErrorEvent = (DateTime<Utc>, String, String);

/// An issue, and its error events.
#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub status: String,
    pub substatus: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub events: Vec<ErrorEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub path: String,
    pub query: String,
}

struct Org {
    slug: String,
    token: String,
    scopes: Vec<String>,
    projects: Vec<(u64, String)>,
    environments: Vec<String>,
    spans: Vec<(u64, Span)>,
    issues: Vec<(u64, Issue)>,
    next_issue: u64,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct SentryEvents {
    pub base: String,
    pub organization: String,
    pub project: String,
    pub project_id: u64,
    pub token: String,
    org: Arc<Mutex<Org>>,
}

/// A refusal: its status and Sentry's `{"detail": ...}` body.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"detail": self.1}))).into_response()
    }
}

fn detail(status: StatusCode, text: &str) -> Refused {
    Refused(status, text.to_owned())
}

fn not_found() -> Refused {
    detail(StatusCode::NOT_FOUND, "The requested resource does not exist")
}

fn bad_request(text: &str) -> Refused {
    detail(StatusCode::BAD_REQUEST, text)
}

impl SentryEvents {
    /// Organization `organization` with the project `project` (and another), environments
    /// `production` and `staging`, on a free loopback port; the token has `org:read` and
    /// `event:read`.
    pub async fn start(organization: &str, project: &str) -> SentryEvents {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind Sentry events stand-in");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let token = format!("sntryu_{}", uuid::Uuid::new_v4().simple());
        let project_id = 4_509_000_123;
        let org = Org {
            slug: organization.to_owned(),
            token: token.clone(),
            scopes: vec!["org:read".into(), "event:read".into()],
            projects: vec![(project_id - 7, "another-app".to_owned()), (project_id, project.to_owned())],
            environments: vec!["production".into(), "staging".into()],
            spans: Vec::new(),
            issues: Vec::new(),
            next_issue: 6_100_000_000,
            requests: Vec::new(),
        };
        let events = SentryEvents {
            base,
            organization: organization.to_owned(),
            project: project.to_owned(),
            project_id,
            token,
            org: Arc::new(Mutex::new(org)),
        };
        let app = Router::new()
            .route("/api/0/organizations/{org}/projects/", get(projects))
            .route("/api/0/organizations/{org}/events/", get(table))
            .route("/api/0/organizations/{org}/issues/", get(issues))
            .with_state(events.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        events
    }

    /// The value of the `<prefix>-sentry-read` secret that points at this stand-in.
    pub fn secret_json(&self, environment: &str) -> String {
        json!({
            "organization": self.organization,
            "project": self.project,
            "environment": environment,
            "auth_token": self.token,
            "api_url": self.base,
        })
        .to_string()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Org) -> T) -> T {
        let mut org = self.org.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut org)
    }

    /// Spans sent to the app's project.
    pub fn add_spans(&self, spans: impl IntoIterator<Item = Span>) {
        let id = self.project_id;
        self.with(|org| org.spans.extend(spans.into_iter().map(|s| (id, s))));
    }

    /// Spans sent to the organization's other project.
    pub fn add_other_project_spans(&self, spans: impl IntoIterator<Item = Span>) {
        let id = self.project_id - 7;
        self.with(|org| org.spans.extend(spans.into_iter().map(|s| (id, s))));
    }

    /// An unresolved issue of the app's project with `events` error events, each by its own
    /// user, spread over the hour before `last`; returns its short id.
    pub fn add_issue(
        &self,
        title: &str,
        substatus: &str,
        first_seen: DateTime<Utc>,
        last: DateTime<Utc>,
        events: usize,
        environment: &str,
    ) -> String {
        let project_id = self.project_id;
        self.with(|org| {
            org.next_issue += 1;
            let id = org.next_issue;
            let events = (0..events)
                .map(|i| (last - Duration::seconds(i as i64 % 3600), environment.to_owned(), format!("user-{i}")))
                .collect();
            org.issues.push((
                project_id,
                Issue {
                    id,
                    title: title.to_owned(),
                    culprit: "app/handlers.py in checkout".to_owned(),
                    level: "error".to_owned(),
                    status: "unresolved".to_owned(),
                    substatus: Some(substatus.to_owned()),
                    first_seen,
                    events,
                },
            ));
            short_id(&org.projects, project_id, id)
        })
    }

    pub fn set_scopes(&self, scopes: &[&str]) {
        self.with(|org| org.scopes = scopes.iter().map(|s| (*s).to_owned()).collect());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|org| org.requests.clone())
    }

    /// Records the request and checks its token and scopes.
    fn admit(
        &self,
        headers: &HeaderMap,
        organization: &str,
        path: &str,
        query: &str,
        scopes: &[&str],
    ) -> Result<(), Refused> {
        self.with(|org| {
            org.requests.push(Recorded { path: path.to_owned(), query: query.to_owned() });
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                None => Err(detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided.")),
                Some(value) if value.strip_prefix("Bearer ") != Some(org.token.as_str()) => {
                    Err(detail(StatusCode::UNAUTHORIZED, "Invalid token"))
                }
                Some(_) if organization != org.slug => Err(not_found()),
                Some(_) if !org.scopes.iter().any(|s| scopes.contains(&s.as_str())) => {
                    Err(detail(StatusCode::FORBIDDEN, "You do not have permission to perform this action."))
                }
                Some(_) => Ok(()),
            }
        })
    }
}

fn short_id(projects: &[(u64, String)], project: u64, id: u64) -> String {
    let slug = projects.iter().find(|(p, _)| *p == project).map_or("PROJECT", |(_, s)| s.as_str());
    format!("{}-{}", slug.to_uppercase(), id % 1000)
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all(pairs, key).into_iter().next()
}

fn link(base: &str, path: &str, offset: usize, per_page: usize, more: bool) -> HeaderValue {
    let previous = offset.saturating_sub(per_page);
    let value = format!(
        "<{base}{path}?&cursor=0:{previous}:1>; rel=\"previous\"; results=\"{}\"; cursor=\"0:{previous}:1\", \
         <{base}{path}?&cursor=0:{}:0>; rel=\"next\"; results=\"{more}\"; cursor=\"0:{}:0\"",
        offset > 0,
        offset + per_page,
        offset + per_page
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn per_page(pairs: &[(String, String)], key: &str, default: usize) -> Result<usize, Refused> {
    match one(pairs, key) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 100 => Err(bad_request(&format!("Invalid {key} value. Cannot exceed 100."))),
            Ok(n) => Ok(n.max(1)),
            Err(_) => Err(bad_request(&format!("invalid {key}"))),
        },
    }
}

fn offset(pairs: &[(String, String)]) -> Result<usize, Refused> {
    match one(pairs, "cursor") {
        None => Ok(0),
        Some(cursor) => cursor
            .split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_request("Invalid cursor parameter.")),
    }
}

async fn projects(
    State(api): State<SentryEvents>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/projects/");
    if let Err(refused) = api.admit(&headers, &organization, &path, raw.as_deref().unwrap_or_default(), &ORG_SCOPES) {
        return refused.into_response();
    }
    let pairs = pairs(raw.as_deref());
    let (size, start) = match (per_page(&pairs, "per_page", 100), offset(&pairs)) {
        (Ok(size), Ok(start)) => (size, start),
        (Err(refused), _) | (_, Err(refused)) => return refused.into_response(),
    };
    let query = one(&pairs, "query").unwrap_or_default().to_owned();
    let (projects, environments) = api.with(|org| (org.projects.clone(), org.environments.clone()));
    let mut matching: Vec<&(u64, String)> = projects
        .iter()
        .filter(|(id, slug)| {
            query.split_whitespace().all(|token| match token.split_once(':') {
                Some(("slug", wanted)) => slug == wanted,
                Some(("id", wanted)) => id.to_string() == wanted,
                Some(_) => false,
                None => slug.contains(&token.to_lowercase()),
            })
        })
        .collect();
    matching.sort_by(|a, b| a.1.cmp(&b.1));
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|(id, slug)| {
            json!({"id": id.to_string(), "slug": slug, "name": slug, "platform": "python",
                "dateCreated": "2025-02-03T10:00:00.000000Z", "isMember": true, "hasAccess": true,
                "isBookmarked": false, "team": {"id": "2", "name": "Web", "slug": "web"},
                "teams": [{"id": "2", "name": "Web", "slug": "web"}], "environments": environments,
                "features": ["releases"], "firstEvent": "2025-02-03T10:05:00Z", "firstTransactionEvent": true,
                "latestRelease": null, "access": []})
        })
        .collect();
    let more = start + size < matching.len();
    let mut response = axum::Json(page).into_response();
    response.headers_mut().insert("link", link(&api.base, &path, start, size, more));
    response
}

/// The period a request asks about: `statsPeriod` (which wins), or `start` and `end`, or the
/// last 90 days.
fn period(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), Refused> {
    let invalid = |why: &str| bad_request(&format!("Invalid date range: {why}"));
    if let Some(stats) = one(pairs, "statsPeriod") {
        let (n, unit) = stats.split_at(stats.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| bad_request(&format!("Invalid statsPeriod: {stats:?}")))?;
        let span = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            "w" => Duration::weeks(n),
            _ => return Err(bad_request(&format!("Invalid statsPeriod: {stats:?}"))),
        };
        return Ok((now - span, now));
    }
    match (one(pairs, "start"), one(pairs, "end")) {
        (None, None) => Ok((now - Duration::days(90), now)),
        (Some(start), Some(end)) => {
            let (start, end) = (time(start).ok_or_else(|| invalid("start"))?, time(end).ok_or_else(|| invalid("end"))?);
            if start >= end { Err(invalid("start must be before end")) } else { Ok((start, end)) }
        }
        _ => Err(invalid("start and end are both required")),
    }
}

/// An ISO-8601 time, with or without an offset (UTC when without).
fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc()))
}

/// The projects and environments a request names, checked as Sentry checks them.
fn scope(api: &SentryEvents, pairs: &[(String, String)]) -> Result<(Vec<u64>, Vec<String>), Refused> {
    let mut ids = Vec::new();
    for project in all(pairs, "project") {
        let id: i64 = project.parse().map_err(|_| bad_request("Invalid project parameter. Values must be numbers."))?;
        ids.push(id);
    }
    let (known, environments) = api.with(|org| (org.projects.clone(), org.environments.clone()));
    let ids: Vec<u64> = if ids.is_empty() || ids.contains(&-1) {
        known.iter().map(|(id, _)| *id).collect()
    } else if ids.iter().any(|id| !known.iter().any(|(k, _)| i64::try_from(*k).ok() == Some(*id))) {
        return Err(detail(StatusCode::FORBIDDEN, "You do not have permission to perform this action."));
    } else {
        ids.into_iter().filter_map(|id| u64::try_from(id).ok()).collect()
    };
    let wanted: Vec<String> = all(pairs, "environment").into_iter().map(str::to_owned).collect();
    if wanted.iter().any(|e| !environments.contains(e)) {
        return Err(not_found());
    }
    Ok((ids, wanted))
}

/// A query of `key:value` and `!key:value` filters joined by spaces, as (negated, key, value).
fn filters(query: &str) -> Result<Vec<(bool, String, String)>, Refused> {
    crate::sentry_search::check(query).map_err(|e| bad_request(&format!("Invalid query: {e}")))?;
    query
        .split_whitespace()
        .map(|token| {
            let (negated, token) = token.strip_prefix('!').map_or((false, token), |t| (true, t));
            match token.split_once(':') {
                Some((key, value)) if !value.starts_with(['>', '<', '[', '"']) && !key.is_empty() => {
                    Ok((negated, key.to_owned(), value.to_owned()))
                }
                _ => Err(bad_request(&format!("this stand-in evaluates only key:value filters, not {token:?}"))),
            }
        })
        .collect()
}

fn span_matches(span: &Span, filters: &[(bool, String, String)]) -> bool {
    filters.iter().all(|(negated, key, value)| {
        let actual = match key.as_str() {
            "is_transaction" => Some(span.is_transaction.to_string()),
            "environment" => Some(span.environment.clone()),
            "span.status" => Some(span.status.clone()),
            tag => span.tags.get(tag).cloned(),
        };
        (actual.as_deref() == Some(value.as_str())) != *negated
    })
}

/// The linear-interpolation quantile `q` of `values` (0 over none).
fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = q * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

async fn table(
    State(api): State<SentryEvents>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/events/");
    if let Err(refused) = api.admit(&headers, &organization, &path, raw.as_deref().unwrap_or_default(), &ORG_SCOPES) {
        return refused.into_response();
    }
    match table_answer(&api, &pairs(raw.as_deref())) {
        Ok(body) => axum::Json(body).into_response(),
        Err(refused) => refused.into_response(),
    }
}

fn table_answer(api: &SentryEvents, pairs: &[(String, String)]) -> Result<Value, Refused> {
    let fields = all(pairs, "field");
    if fields.is_empty() {
        return Err(bad_request("No columns selected"));
    }
    if fields.len() > 20 {
        return Err(bad_request("You can view up to 20 fields at a time. Please delete some and try again."));
    }
    let dataset = one(pairs, "dataset").unwrap_or_default();
    if !DATASETS.contains(&dataset) {
        return Err(bad_request(&format!("dataset must be one of: {}", DATASETS.join(", "))));
    }
    let (start, end) = period(pairs, Utc::now())?;
    let (projects, environments) = scope(api, pairs)?;
    let filters = filters(one(pairs, "query").unwrap_or_default())?;
    let in_scope = |project: u64, at: DateTime<Utc>, environment: &str| {
        projects.contains(&project)
            && at >= start
            && at < end
            && (environments.is_empty() || environments.iter().any(|e| e == environment))
    };
    let mut row = serde_json::Map::new();
    let mut types = serde_json::Map::new();
    let mut units = serde_json::Map::new();
    match dataset {
        "spans" => {
            let spans: Vec<Span> = api.with(|org| {
                org.spans
                    .iter()
                    .filter(|(p, s)| in_scope(*p, s.at, &s.environment) && span_matches(s, &filters))
                    .map(|(_, s)| s.clone())
                    .collect()
            });
            for field in &fields {
                let (value, kind, unit) = match *field {
                    "count()" => (spans.len() as f64, "integer", Value::Null),
                    "failure_rate()" => {
                        let failed = spans.iter().filter(|s| !NON_FAILURE.contains(&s.status.as_str())).count();
                        let rate = if spans.is_empty() { 0.0 } else { failed as f64 / spans.len() as f64 };
                        (rate, "percentage", Value::Null)
                    }
                    "p95(span.duration)" => (
                        quantile(spans.iter().map(|s| s.duration_ms).collect(), 0.95),
                        "duration",
                        json!("millisecond"),
                    ),
                    other => return Err(bad_request(&format!("Unknown function {other} for this stand-in's spans"))),
                };
                row.insert((*field).to_owned(), json!(value));
                types.insert((*field).to_owned(), json!(kind));
                units.insert((*field).to_owned(), unit);
            }
        }
        "errors" => {
            if !filters.is_empty() {
                return Err(bad_request("this stand-in evaluates no query on errors"));
            }
            let count = api.with(|org| {
                org.issues
                    .iter()
                    .flat_map(|(p, issue)| issue.events.iter().map(move |e| (*p, e)))
                    .filter(|(p, (at, environment, _))| in_scope(*p, *at, environment))
                    .count()
            });
            for field in &fields {
                if *field != "count()" {
                    return Err(bad_request(&format!("Unknown function {field} for this stand-in's errors")));
                }
                row.insert("count()".to_owned(), json!(count));
                types.insert("count()".to_owned(), json!("integer"));
                units.insert("count()".to_owned(), Value::Null);
            }
        }
        other => return Err(bad_request(&format!("this stand-in holds no {other}"))),
    }
    let meta = json!({"fields": types, "units": units, "isMetricsData": false, "isMetricsExtractedData": false,
        "tips": {}, "datasetReason": "unchanged", "dataset": dataset});
    let mut body = json!({"data": [row], "meta": meta});
    if dataset == "spans" {
        let confidence: serde_json::Map<String, Value> =
            fields.iter().map(|f| ((*f).to_owned(), json!("high"))).collect();
        body["confidence"] = json!([confidence]);
    }
    Ok(body)
}

/// One `firstSeen:` filter: the comparison and the time.
fn first_seen(value: &str, now: DateTime<Utc>) -> Result<(&'static str, DateTime<Utc>), Refused> {
    let invalid = || bad_request(&format!("Error parsing search query: invalid firstSeen value {value:?}"));
    if let Some(relative) = value.strip_prefix('-') {
        let hours: i64 = relative.strip_suffix('h').and_then(|h| h.parse().ok()).ok_or_else(invalid)?;
        return Ok((">=", now - Duration::hours(hours)));
    }
    let (op, rest) = [">=", "<=", ">", "<"]
        .iter()
        .find_map(|op| value.strip_prefix(op).map(|rest| (*op, rest)))
        .ok_or_else(invalid)?;
    Ok((op, time(rest).ok_or_else(invalid)?))
}

async fn issues(
    State(api): State<SentryEvents>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/api/0/organizations/{organization}/issues/");
    if let Err(refused) = api.admit(&headers, &organization, &path, raw.as_deref().unwrap_or_default(), &EVENT_SCOPES) {
        return refused.into_response();
    }
    match issues_answer(&api, &pairs(raw.as_deref())) {
        Ok((items, hits)) => {
            let mut response = axum::Json(items).into_response();
            response.headers_mut().insert("x-hits", HeaderValue::from(hits));
            response
        }
        Err(refused) => refused.into_response(),
    }
}

fn issues_answer(api: &SentryEvents, pairs: &[(String, String)]) -> Result<(Vec<Value>, usize), Refused> {
    let now = Utc::now();
    let (start, end) = period(pairs, now)?;
    let (projects, environments) = scope(api, pairs)?;
    let limit = per_page(pairs, "limit", 100)?;
    let sort = one(pairs, "sort").unwrap_or("date");
    if !ISSUE_SORTS.contains(&sort) {
        return Err(bad_request(&format!("Error parsing search query: invalid sort {sort:?}")));
    }
    let query = one(pairs, "query").unwrap_or("is:unresolved issue.priority:[high, medium]");
    let mut status: Option<String> = None;
    let mut substatus: Option<String> = None;
    let mut seen: Vec<(&str, DateTime<Utc>)> = Vec::new();
    for token in query.split_whitespace() {
        match token.split_once(':') {
            Some(("is", "unresolved" | "resolved")) => status = Some(token[3..].to_owned()),
            Some(("is", value @ ("new" | "regressed" | "escalating" | "ongoing"))) => {
                substatus = Some(value.to_owned())
            }
            Some(("firstSeen", value)) => seen.push(first_seen(value, now)?),
            _ => return Err(bad_request(&format!("this stand-in does not search {token:?}"))),
        }
    }
    let (all_issues, known) = api.with(|org| (org.issues.clone(), org.projects.clone()));
    let mut listed: Vec<(Issue, u64, Vec<ErrorEvent>)> = all_issues
        .into_iter()
        .filter(|(p, issue)| {
            projects.contains(p)
                && status.as_ref().is_none_or(|s| *s == issue.status)
                && substatus.as_ref().is_none_or(|s| issue.substatus.as_ref() == Some(s))
                && seen.iter().all(|(op, at)| match *op {
                    ">=" => issue.first_seen >= *at,
                    ">" => issue.first_seen > *at,
                    "<=" => issue.first_seen <= *at,
                    _ => issue.first_seen < *at,
                })
        })
        .filter_map(|(p, issue)| {
            let events: Vec<_> = issue
                .events
                .iter()
                .filter(|(at, env, _)| {
                    *at >= start && *at < end && (environments.is_empty() || environments.contains(env))
                })
                .cloned()
                .collect();
            (!events.is_empty()).then_some((issue, p, events))
        })
        .collect();
    match sort {
        "freq" => listed.sort_by_key(|(_, _, events)| std::cmp::Reverse(events.len())),
        "new" => listed.sort_by_key(|(issue, _, _)| std::cmp::Reverse(issue.first_seen)),
        _ => listed.sort_by(|a, b| b.2.iter().map(|e| e.0).max().cmp(&a.2.iter().map(|e| e.0).max())),
    }
    let hits = listed.len();
    let items = listed
        .into_iter()
        .take(limit)
        .map(|(issue, project, events)| issue_json(api, &known, project, &issue, &events))
        .collect();
    Ok((items, hits))
}

fn issue_json(
    api: &SentryEvents,
    projects: &[(u64, String)],
    project: u64,
    issue: &Issue,
    events: &[ErrorEvent],
) -> Value {
    let users = events.iter().map(|e| &e.2).collect::<std::collections::BTreeSet<_>>().len();
    let last_seen = events.iter().map(|e| e.0).max();
    let lifetime_last = issue.events.iter().map(|e| e.0).max();
    let slug = projects.iter().find(|(p, _)| *p == project).map_or("", |(_, s)| s.as_str());
    json!({
        "id": issue.id.to_string(),
        "shortId": short_id(projects, project, issue.id),
        "title": issue.title,
        "culprit": issue.culprit,
        "permalink": format!("{}/organizations/{}/issues/{}/", api.base, api.organization, issue.id),
        "level": issue.level,
        "status": issue.status,
        "substatus": issue.substatus,
        "count": events.len().to_string(),
        "userCount": users,
        "firstSeen": issue.first_seen,
        "lastSeen": last_seen,
        "project": {"id": project.to_string(), "name": slug, "slug": slug, "platform": "python"},
        "lifetime": {"count": issue.events.len().to_string(), "userCount": users, "firstSeen": issue.first_seen,
            "lastSeen": lifetime_last},
        "filtered": null,
        "stats": {"24h": []},
        "isUnhandled": false,
        "issueCategory": "error",
        "issueType": "error",
        "type": "error",
        "metadata": {"title": issue.title},
        "priority": "high",
        "hasSeen": false,
        "isBookmarked": false,
        "isPublic": false,
        "isSubscribed": true,
        "numComments": 0,
        "annotations": [],
        "assignedTo": null,
        "logger": null,
        "platform": "python",
        "shareId": null,
        "statusDetails": {},
        "subscriptionDetails": null
    })
}
