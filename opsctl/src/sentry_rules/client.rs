//! Sentry's alert-rule endpoints for one organization: list (page after page), create, update.

use std::time::Duration;

use ops_shared::http::{Repeat, outcome_unknown, send_with_retry};
use ops_shared::sentry::{error_detail, next_cursor};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};

use super::SentryError;
use super::config::SentryApiConfig;
use super::model::MetricAlertRule;

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
        body: Option<&MetricAlertRule>,
        repeat: Repeat,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let build = || {
            let request = self.http.request(method.clone(), url.clone()).bearer_auth(self.config.auth_token.expose());
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        send_with_retry(build, self.attempts, self.backoff, repeat).await
    }

    fn unreachable(&self, err: reqwest::Error) -> SentryError {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        // reqwest names the URL; the token is in a header and never in the text.
        SentryError::Unreachable {
            secret: self.config.secret.clone(),
            api_url: self.config.api_url.clone(),
            detail,
            source: err,
        }
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
    pub async fn list_rules(&self) -> Result<Vec<MetricAlertRule>, SentryError> {
        let mut rules = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut url = self.url(None)?;
            url.query_pairs_mut().append_pair("per_page", PER_PAGE);
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let response =
                self.send(Method::GET, url, None, Repeat::Idempotent).await.map_err(|e| self.unreachable(e))?;
            let status = response.status();
            let next =
                response.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_cursor);
            let body = response.text().await.map_err(|e| self.unreachable(e))?;
            if status != StatusCode::OK {
                return Err(self.refusal("listing the alert rules", None, status, &body));
            }
            let page: Vec<MetricAlertRule> = serde_json::from_str(&body).map_err(|e| SentryError::Unexpected {
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
    pub async fn create_rule(&self, name: &str, body: &MetricAlertRule) -> Result<MetricAlertRule, SentryError> {
        for attempt in 1..=2 {
            let result = self.send(Method::POST, self.url(None)?, Some(body), Repeat::NotIdempotent).await;
            if outcome_unknown(&result) {
                if let Some(rule) = self.list_rules().await?.into_iter().find(|r| r.name.as_deref() == Some(name)) {
                    return Ok(rule);
                }
                if attempt == 1 {
                    continue;
                }
            }
            let response = result.map_err(|e| self.unreachable(e))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| self.unreachable(e))?;
            if status != StatusCode::CREATED {
                return Err(self.refusal(&format!("creating rule {name:?}"), Some(name), status, &text));
            }
            return parse_rule(&text, status, name);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Replaces rule `id` with `body` (200). Sending the same whole rule twice does no harm,
    /// so timeouts and 5xx are retried.
    pub async fn update_rule(
        &self,
        id: &str,
        name: &str,
        body: &MetricAlertRule,
    ) -> Result<MetricAlertRule, SentryError> {
        let response = self
            .send(Method::PUT, self.url(Some(id))?, Some(body), Repeat::Idempotent)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        if status != StatusCode::OK {
            return Err(self.refusal(&format!("updating rule {name:?} (id {id})"), Some(name), status, &text));
        }
        parse_rule(&text, status, name)
    }
}

fn parse_rule(text: &str, status: StatusCode, name: &str) -> Result<MetricAlertRule, SentryError> {
    serde_json::from_str::<MetricAlertRule>(text).map_err(|_| SentryError::Unexpected {
        what: format!("writing rule {name:?}"),
        status: status.as_u16(),
        detail: "the answer is not a rule".to_owned(),
    })
}

/// A 400 that is about `projects` (Sentry's `ProjectField`: "Invalid project").
fn project_refused(body: &str) -> bool {
    serde_json::from_str::<Map<String, Value>>(body).is_ok_and(|field_errors| field_errors.contains_key("projects"))
}
