//! One check of one target, always bounded by the target's own timeout, and by the time the
//! invocation has left.

use std::sync::Arc;
use std::time::Instant;

use ops_shared::SecretCache;
use ops_shared::lambda::error_chain;
use ops_shared::postgres::connect_with_secret;
use ops_shared::secrets::SecretError;
use ops_shared::telemetry::{TraceSpan, request_description};
use serde::Serialize;
use serde_json::Value;

use crate::config::{BodyCondition, HeaderSource, Probe, Target};
use crate::error::HealthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Healthy,
    /// Answered correctly, slower than `warn_ms`.
    Slow,
    /// Answered wrongly or refused the connection.
    Failing,
    /// No answer within `timeout_ms`.
    Hanging,
    TlsFailed,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub target: String,
    pub class: Class,
    pub latency_ms: u64,
    pub detail: String,
    pub tls_days_left: Option<i64>,
}

impl CheckResult {
    pub fn up(&self) -> bool {
        matches!(self.class, Class::Healthy | Class::Slow)
    }
}

pub struct Prober {
    pub http: reqwest::Client,
    pub secrets: Arc<SecretCache>,
}

impl Prober {
    pub async fn check(&self, target: &Target) -> CheckResult {
        self.check_within(target, None).await
    }

    /// The check, given at most `left` (the run's time before the function's deadline) when
    /// that is shorter than the target's `timeout_ms`: a slow target can never take the run past
    /// its deadline, where Lambda would end it before it records anything.
    pub async fn check_within(&self, target: &Target, left: Option<std::time::Duration>) -> CheckResult {
        let started = Instant::now();
        let limit = left.map_or(target.timeout(), |left| left.min(target.timeout()));
        let outcome = tokio::time::timeout(limit, self.probe(target)).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (class, detail, tls_days_left) = match outcome {
            Err(_) if limit < target.timeout() => (
                Class::Hanging,
                format!(
                    "no answer within {} ms, the time the run had left (timeout_ms {} is longer)",
                    limit.as_millis(),
                    target.timeout_ms
                ),
                None,
            ),
            Err(_) => (Class::Hanging, format!("no answer within {} ms", target.timeout_ms), None),
            Ok(Err((class, detail))) => (class, detail, None),
            Ok(Ok((detail, tls))) if latency_ms > target.warn_ms => (Class::Slow, detail, tls),
            Ok(Ok((detail, tls))) => (Class::Healthy, detail, tls),
        };
        CheckResult { target: target.name.clone(), class, latency_ms, detail, tls_days_left }
    }

    async fn probe(&self, target: &Target) -> Result<(String, Option<i64>), (Class, String)> {
        match &target.probe {
            Probe::Http { url, method, headers, expect_status, body } => {
                self.http_probe(target, url, method, headers, *expect_status, body).await
            }
            Probe::Postgres { secret_arn } => {
                let (_, client) = connect_with_secret::<HealthError>(&self.secrets, secret_arn, target.timeout())
                    .await
                    .map_err(|e| (Class::Failing, e.to_string()))?;
                let span = TraceSpan::start("db.query", "SELECT 1");
                let answered = client.simple_query("SELECT 1").await;
                if answered.is_err() {
                    span.fail();
                }
                answered.map_err(|e| (Class::Failing, format!("SELECT 1 failed: {e}")))?;
                Ok(("SELECT 1 answered".to_owned(), None))
            }
        }
    }

    async fn http_probe(
        &self,
        target: &Target,
        url: &str,
        method: &str,
        headers: &std::collections::BTreeMap<String, HeaderSource>,
        expect_status: u16,
        conditions: &[BodyCondition],
    ) -> Result<(String, Option<i64>), (Class, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| (Class::Failing, e.to_string()))?;
        let mut request = self.http.request(method, url).timeout(target.timeout());
        for (name, source) in headers {
            request =
                request.header(name, self.header_value(source).await.map_err(|e| (Class::Failing, e.to_string()))?);
        }
        let (client, request) = request.build_split();
        let request = request.map_err(|e| (Class::Failing, format!("request failed: {}", error_chain(&e))))?;
        let span = TraceSpan::start("http.client", &request_description(request.method(), request.url()));
        let response = client.execute(request).await;
        if !response.as_ref().is_ok_and(|r| r.status().as_u16() == expect_status) {
            span.fail();
        }
        drop(span);
        let response = response.map_err(|err| {
            let chain = error_chain(&err);
            let lower = chain.to_ascii_lowercase();
            if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("corrupt message")
                || lower.contains("handshake")
            {
                (Class::TlsFailed, format!("TLS failed: {chain}"))
            } else if err.is_timeout() {
                (Class::Hanging, format!("no answer within {} ms", target.timeout_ms))
            } else {
                (Class::Failing, format!("request failed: {chain}"))
            }
        })?;
        let tls_days_left = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(crate::tls::not_after)
            .map(|expiry| (expiry - chrono::Utc::now()).num_days());
        let status = response.status().as_u16();
        if status != expect_status {
            return Err((Class::Failing, format!("answered HTTP {status}, expected {expect_status}")));
        }
        if !conditions.is_empty() {
            let body: Value = response
                .json()
                .await
                .map_err(|e| (Class::Failing, format!("body is not JSON: {}", error_chain(&e))))?;
            for condition in conditions {
                let found = condition.path.split('.').try_fold(&body, |value, key| value.get(key));
                if found != Some(&condition.equals) {
                    let shown = found.map(Value::to_string).unwrap_or_else(|| "missing".to_owned());
                    return Err((
                        Class::Failing,
                        format!("body field {} is {shown}, expected {}", condition.path, condition.equals),
                    ));
                }
            }
        }
        Ok((format!("HTTP {status}"), tls_days_left))
    }

    async fn header_value(&self, source: &HeaderSource) -> Result<String, SecretError> {
        match source {
            HeaderSource::Literal(value) => Ok(value.clone()),
            HeaderSource::Secret { secret_arn, json_key, prefix } => {
                let secret = self.secrets.get(secret_arn).await?;
                let value = match json_key {
                    None => secret.value,
                    Some(key) => {
                        let json: Value = secret.json(secret_arn, "AWSCURRENT")?;
                        json.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
                            SecretError::Malformed {
                                id: secret_arn.clone(),
                                stage: "AWSCURRENT".into(),
                                problem: format!("no string field {key}"),
                            }
                        })?
                    }
                };
                Ok(format!("{prefix}{value}"))
            }
        }
    }
}
