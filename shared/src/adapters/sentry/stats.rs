//! Sentry's numbers about the app, read with a token that may only read (`org:read`,
//! `event:read`): the project's numeric id from "List an Organization's Projects"
//! (`GET /api/0/organizations/{org}/projects/`), transaction and error counts from "Query
//! Explore Events in Table Format" (`GET /api/0/organizations/{org}/events/`), and issues from
//! "List an Organization's Issues" (`GET /api/0/organizations/{org}/issues/`), as Sentry's API
//! reference describes them.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::config::SentryProject;
use super::{error_detail, next_cursor};
use crate::adapters::http::{Repeat, send_with_retry};
use crate::adapters::secrets::{SecretError, SecretValue};
use crate::domain::sentry_numbers::{Issue, IssueFilter, Period, SentryStats, SentryUnavailable, Transactions};

/// The app's transactions: the root span of each request, and not those of the ops functions
/// (tagged `ops.component:cineview-ops` by their Sentry client), which may share the project.
pub const APP_TRANSACTIONS: &str = "is_transaction:true !ops.component:cineview-ops";
const COUNT: &str = "count()";
const FAILURE_RATE: &str = "failure_rate()";
const P95: &str = "p95(span.duration)";
/// Projects per page asked for (Sentry's largest page); pages followed at most.
const PER_PAGE: &str = "100";
const MAX_PAGES: usize = 50;
/// An absolute time in Sentry's search syntax (`firstSeen:>=2026-08-03T00:00:00`), UTC.
const SEARCH_TIME: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, thiserror::Error)]
pub enum SentryReadError {
    #[error("{secret} {problem}")]
    Secret { secret: String, problem: String },
    #[error("Sentry at {api_url} could not be reached: {detail}")]
    Unreachable { api_url: String, detail: String },
    #[error("Sentry refused the token of {secret} (HTTP 401: {detail}): put a valid token into it")]
    Unauthorized { secret: String, detail: String },
    #[error(
        "the token of {secret} may not read {what} (HTTP 403: {detail}): give it the scopes org:read and event:read"
    )]
    Forbidden { secret: String, what: String, detail: String },
    #[error("Sentry has no organization {organization:?} for the token of {secret} (HTTP 404: {detail})")]
    OrganizationNotFound { secret: String, organization: String, detail: String },
    #[error("organization {organization:?} has no project {project:?} (named in {secret})")]
    ProjectNotFound { secret: String, organization: String, project: String },
    #[error("Sentry answered {what} with HTTP {status}: {detail}")]
    Unexpected { what: String, status: u16, detail: String },
}

impl From<SentryReadError> for SentryUnavailable {
    fn from(err: SentryReadError) -> SentryUnavailable {
        SentryUnavailable::Failed(err.to_string())
    }
}

/// Reads one project's numbers, on the project's one HTTP client.
#[derive(Debug)]
pub struct SentryReader {
    http: reqwest::Client,
    project: SentryProject,
    project_id: OnceCell<u64>,
    attempts: u32,
    backoff: Duration,
}

#[derive(Deserialize)]
struct ProjectEntry {
    id: String,
    slug: String,
}

#[derive(Deserialize)]
struct Table {
    data: Vec<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssueEntry {
    short_id: String,
    title: String,
    #[serde(default)]
    culprit: Option<String>,
    #[serde(default)]
    level: Option<String>,
    /// A string in Sentry's answers ("count": "150").
    count: Value,
    #[serde(default)]
    user_count: u64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    #[serde(default)]
    substatus: Option<String>,
    permalink: String,
}

impl SentryReader {
    pub fn new(http: reqwest::Client, project: SentryProject) -> SentryReader {
        SentryReader { http, project, project_id: OnceCell::new(), attempts: 3, backoff: Duration::from_millis(500) }
    }

    /// The wait before the first retry (doubled after each).
    pub fn with_backoff(mut self, backoff: Duration) -> SentryReader {
        self.backoff = backoff;
        self
    }

    fn url(&self, endpoint: &str) -> Result<Url, SentryReadError> {
        self.project
            .url(&["organizations", &self.project.organization, endpoint])
            .map_err(|problem| SentryReadError::Secret { secret: self.project.secret.clone(), problem })
    }

    /// GETs `url` (retried on 429, 5xx and lost connections) and returns the body of a 200 and
    /// its `Link` header.
    async fn get(&self, url: Url, what: &str) -> Result<(String, Option<String>), SentryReadError> {
        let token = self.project.auth_token.expose();
        let build = || self.http.get(url.clone()).bearer_auth(token);
        let unreachable = |err: reqwest::Error| SentryReadError::Unreachable {
            api_url: self.project.api_url.clone(),
            detail: crate::runtime::errors::error_chain(&err),
        };
        let response =
            send_with_retry(build, self.attempts, self.backoff, Repeat::Idempotent).await.map_err(unreachable)?;
        let status = response.status();
        let link = response.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.map_err(unreachable)?;
        let detail = || error_detail(&body);
        let secret = || self.project.secret.clone();
        match status {
            StatusCode::OK => Ok((body, link)),
            StatusCode::UNAUTHORIZED => Err(SentryReadError::Unauthorized { secret: secret(), detail: detail() }),
            StatusCode::FORBIDDEN => {
                Err(SentryReadError::Forbidden { secret: secret(), what: what.to_owned(), detail: detail() })
            }
            StatusCode::NOT_FOUND => Err(SentryReadError::OrganizationNotFound {
                secret: secret(),
                organization: self.project.organization.clone(),
                detail: detail(),
            }),
            _ => Err(SentryReadError::Unexpected { what: what.to_owned(), status: status.as_u16(), detail: detail() }),
        }
    }

    fn unexpected(what: &str, problem: impl std::fmt::Display) -> SentryReadError {
        SentryReadError::Unexpected { what: what.to_owned(), status: 200, detail: problem.to_string() }
    }

    /// The project's numeric id: the events and issues endpoints take ids, not slugs.
    async fn project_id(&self) -> Result<u64, SentryReadError> {
        self.project_id
            .get_or_try_init(|| async {
                let what = "the organization's projects";
                let mut cursor: Option<String> = None;
                for _ in 0..MAX_PAGES {
                    let mut url = self.url("projects")?;
                    let slug = format!("slug:{}", self.project.project);
                    url.query_pairs_mut().append_pair("query", &slug).append_pair("per_page", PER_PAGE);
                    if let Some(cursor) = &cursor {
                        url.query_pairs_mut().append_pair("cursor", cursor);
                    }
                    let (body, link) = self.get(url, what).await?;
                    let page: Vec<ProjectEntry> = serde_json::from_str(&body)
                        .map_err(|e| Self::unexpected(what, format!("not a list of projects ({e})")))?;
                    if let Some(found) = page.iter().find(|p| p.slug == self.project.project) {
                        return found
                            .id
                            .parse()
                            .map_err(|_| Self::unexpected(what, "a project id that is not a number"));
                    }
                    match link.as_deref().and_then(next_cursor) {
                        Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                        _ => break,
                    }
                }
                Err(SentryReadError::ProjectNotFound {
                    secret: self.project.secret.clone(),
                    organization: self.project.organization.clone(),
                    project: self.project.project.clone(),
                })
            })
            .await
            .copied()
    }

    /// The query parameters every read shares: the project, its environment and the period.
    async fn scoped(&self, endpoint: &str, period: Period) -> Result<Url, SentryReadError> {
        let id = self.project_id().await?;
        let mut url = self.url(endpoint)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("project", &id.to_string());
            if let Some(environment) = &self.project.environment {
                query.append_pair("environment", environment);
            }
            query.append_pair("start", &period.start.to_rfc3339_opts(SecondsFormat::Secs, true));
            query.append_pair("end", &period.end.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        Ok(url)
    }

    /// One row of the events table: `fields` over `dataset` and `query`.
    async fn table_row(
        &self,
        period: Period,
        dataset: &str,
        query: &str,
        fields: &[&str],
    ) -> Result<serde_json::Map<String, Value>, SentryReadError> {
        let what = format!("the {dataset} table");
        let mut url = self.scoped("events", period).await?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("dataset", dataset);
            for field in fields {
                pairs.append_pair("field", field);
            }
            if !query.is_empty() {
                pairs.append_pair("query", query);
            }
            pairs.append_pair("per_page", "1");
        }
        let (body, _) = self.get(url, &what).await?;
        let table: Table =
            serde_json::from_str(&body).map_err(|e| Self::unexpected(&what, format!("not an events table ({e})")))?;
        // An aggregate over no rows is one row of zeros or nulls, or none at all.
        Ok(table.data.into_iter().next().unwrap_or_default())
    }
}

fn number(row: &serde_json::Map<String, Value>, field: &str) -> Option<f64> {
    row.get(field).and_then(Value::as_f64)
}

impl SentryStats for SentryReader {
    async fn transactions(&self, period: Period) -> Result<Transactions, SentryUnavailable> {
        let row = self.table_row(period, "spans", APP_TRANSACTIONS, &[COUNT, FAILURE_RATE, P95]).await?;
        let count = number(&row, COUNT).unwrap_or(0.0) as u64;
        let some = |value: Option<f64>| value.filter(|_| count > 0);
        Ok(Transactions { count, failure_rate: some(number(&row, FAILURE_RATE)), p95_ms: some(number(&row, P95)) })
    }

    async fn error_events(&self, period: Period) -> Result<u64, SentryUnavailable> {
        let row = self.table_row(period, "errors", "", &[COUNT]).await?;
        Ok(number(&row, COUNT).unwrap_or(0.0) as u64)
    }

    async fn issues(&self, period: Period, filter: IssueFilter, limit: usize) -> Result<Vec<Issue>, SentryUnavailable> {
        let what = "the project's issues";
        let query = match filter {
            IssueFilter::New => format!(
                "is:unresolved firstSeen:>={} firstSeen:<{}",
                period.start.format(SEARCH_TIME),
                period.end.format(SEARCH_TIME)
            ),
            IssueFilter::Regressed => "is:unresolved is:regressed".to_owned(),
            IssueFilter::Escalating => "is:unresolved is:escalating".to_owned(),
            IssueFilter::Frequent => "is:unresolved".to_owned(),
        };
        let mut url = self.scoped("issues", period).await?;
        url.query_pairs_mut()
            .append_pair("query", &query)
            .append_pair("sort", "freq")
            .append_pair("limit", &limit.to_string());
        let (body, _) = self.get(url, what).await?;
        let entries: Vec<IssueEntry> =
            serde_json::from_str(&body).map_err(|e| Self::unexpected(what, format!("not a list of issues ({e})")))?;
        Ok(entries.into_iter().take(limit).map(issue).collect())
    }
}

fn issue(entry: IssueEntry) -> Issue {
    let events = match &entry.count {
        Value::String(count) => count.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    };
    Issue {
        short_id: entry.short_id,
        title: entry.title,
        culprit: entry.culprit.filter(|c| !c.is_empty()),
        level: entry.level.unwrap_or_else(|| "error".to_owned()),
        events,
        users: entry.user_count,
        first_seen: entry.first_seen,
        last_seen: entry.last_seen,
        substatus: entry.substatus,
        permalink: entry.permalink,
    }
}

/// The JSON the read secret holds, for messages (no real values).
pub const READ_SECRET_TEMPLATE: &str = r#"{"organization": "<org slug>", "project": "<the app's project slug>", "environment": "production", "auth_token": "<token with org:read and event:read>"}"#;

/// Sentry for the status and the digest: a reader, or why there is none.
#[derive(Debug)]
pub enum SentryAccess {
    Ready(SentryReader),
    Unavailable(SentryUnavailable),
}

impl SentryAccess {
    /// From reading the secret `secret` (its name, for messages): one without a value is not
    /// set up yet; one that cannot be read or parsed says why.
    pub fn from_read(http: reqwest::Client, secret: &str, read: Result<SecretValue, SecretError>) -> SentryAccess {
        let value = match read {
            Ok(value) => Ok(Some(value.value)),
            Err(SecretError::NotFound { .. }) => Ok(None),
            Err(SecretError::AccessDenied { detail, .. }) => {
                Err(format!("cannot be read ({detail}): allow secretsmanager:GetSecretValue on it"))
            }
            Err(err) => Err(err.to_string()),
        };
        let not_configured = || SentryUnavailable::NotConfigured {
            fix: format!(
                "aws secretsmanager put-secret-value --secret-id {secret} --secret-string '{READ_SECRET_TEMPLATE}'"
            ),
        };
        match value {
            Ok(None) => SentryAccess::Unavailable(not_configured()),
            Ok(Some(value)) => match SentryProject::parse(secret, &value) {
                Ok(project) => SentryAccess::Ready(SentryReader::new(http, project)),
                Err(problem) => SentryAccess::Unavailable(SentryUnavailable::Failed(format!(
                    "{secret} {problem}: it holds {READ_SECRET_TEMPLATE}"
                ))),
            },
            Err(problem) => SentryAccess::Unavailable(SentryUnavailable::Failed(format!("{secret}: {problem}"))),
        }
    }

    fn reader(&self) -> Result<&SentryReader, SentryUnavailable> {
        match self {
            SentryAccess::Ready(reader) => Ok(reader),
            SentryAccess::Unavailable(why) => Err(why.clone()),
        }
    }
}

impl SentryStats for SentryAccess {
    async fn transactions(&self, period: Period) -> Result<Transactions, SentryUnavailable> {
        self.reader()?.transactions(period).await
    }

    async fn error_events(&self, period: Period) -> Result<u64, SentryUnavailable> {
        self.reader()?.error_events(period).await
    }

    async fn issues(&self, period: Period, filter: IssueFilter, limit: usize) -> Result<Vec<Issue>, SentryUnavailable> {
        self.reader()?.issues(period, filter, limit).await
    }
}
