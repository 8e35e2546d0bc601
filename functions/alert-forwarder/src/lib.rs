//! `alert-forwarder`: normalises our alerts, CloudWatch alarms, the engine task's stopped
//! events and Sentry webhooks, de-duplicates them and tells ops in plain words: critical ones
//! on the ops topic (e-mail and pager), the others in the team's Slack when it has a webhook
//! (`routing`).

pub mod config;
pub mod format;
pub mod forward;
pub mod inbound;
pub mod incidents;
pub mod routing;
pub mod sentry;
pub mod silencing;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::CONTENT_TYPE;
use base64::Engine;
use lambda_runtime::Context;
use ops_shared::objects::S3Objects;
use ops_shared::state::{DynamoState, StateStore};
use ops_shared::{AlertSink, ConfigError, FunctionError, Handler, SecretCache, SnsAlertPublisher, Startup};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

pub use config::{ForwarderConfig, InhibitRule};
pub use forward::{Decision, ForwardError, Forwarder};

pub const FUNCTION_NAME: &str = "alert-forwarder";

/// How often a signature that does not match may make the webhook secret be read again.
pub const SECRET_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The triggers: SNS deliveries, Function URL requests (Sentry webhooks), and the schedule that
/// tells ops of ended silences and writes closed incidents a failed write left behind
/// (`{"sweep": "ended"}`).
#[derive(Debug)]
pub enum Event {
    Sns(SnsEvent),
    FunctionUrl(Box<LambdaFunctionUrlRequest>),
    Sweep,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.get("Records").is_some() {
            serde_json::from_value(value)
                .map(Event::Sns)
                .map_err(|e| D::Error::custom(format!("malformed SNS event: {e}")))
        } else if value.get("requestContext").is_some() {
            serde_json::from_value(value)
                .map(|r| Event::FunctionUrl(Box::new(r)))
                .map_err(|e| D::Error::custom(format!("malformed Function URL request: {e}")))
        } else if value.get("sweep").and_then(Value::as_str) == Some("ended") {
            Ok(Event::Sweep)
        } else {
            Err(D::Error::custom(
                "expected an SNS event (Records), a Function URL request (requestContext) or {\"sweep\": \"ended\"}",
            ))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Forward(#[from] ForwardError),
}

impl FunctionError for Error {
    fn kind(&self) -> &'static str {
        "ForwardFailed"
    }
}

pub struct AlertForwarder<S, A> {
    pub forwarder: Forwarder<S, A>,
    pub secrets: Arc<SecretCache>,
}

/// What an invocation answers: the SNS records' decisions, or the webhook's HTTP response.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Records(Value),
    Http(LambdaFunctionUrlResponse),
}

fn response(status: i64, body: Value) -> LambdaFunctionUrlResponse {
    let mut answer = LambdaFunctionUrlResponse::default();
    answer.status_code = status;
    answer.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer.body = Some(body.to_string());
    answer
}

impl<S: StateStore + 'static, A: AlertSink + 'static> AlertForwarder<S, A> {
    /// SNS: every record is forwarded or the invocation fails, so SNS retries (no alert lost).
    pub async fn handle_sns(&self, event: SnsEvent, deadline_ms: i64) -> Result<Value, Error> {
        let mut decisions = Vec::new();
        for record in &event.records {
            let sns = &record.sns;
            let Some(alert) = inbound::normalise(&sns.message, sns.subject.as_deref(), &sns.topic_arn) else {
                decisions.push(json!({"message_id": sns.message_id, "decision": "not_an_alert"}));
                continue;
            };
            let decision = self.forwarder.forward(&format!("sns:{}", sns.message_id), &alert, deadline_ms).await?;
            decisions.push(json!({"message_id": sns.message_id, "dedup_key": alert.dedup_key, "decision": decision}));
        }
        Ok(json!({"records": decisions}))
    }

    /// Sentry webhooks: verified, then forwarded; always an HTTP answer, never an exception.
    pub async fn handle_webhook(
        &self,
        request: &LambdaFunctionUrlRequest,
        deadline_ms: i64,
    ) -> LambdaFunctionUrlResponse {
        let config = &self.forwarder.config;
        let method = request.request_context.http.method.as_deref().unwrap_or("POST");
        if !method.eq_ignore_ascii_case("POST") {
            return response(405, json!({"error": "only POST"}));
        }
        let raw = request.body.as_deref().unwrap_or_default();
        let body = if request.is_base64_encoded {
            match base64::engine::general_purpose::STANDARD.decode(raw) {
                Ok(bytes) => bytes,
                Err(_) => return response(400, json!({"error": "body is not valid base64"})),
            }
        } else {
            raw.as_bytes().to_vec()
        };
        if body.len() > config.max_body_bytes {
            let refusal = sentry::Refusal::TooLarge(body.len());
            return response(refusal.status(), json!({"error": refusal.message()}));
        }
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let now = chrono::Utc::now().timestamp();
        let verified = self.verify(header("sentry-hook-signature"), &body).await.and_then(|()| {
            sentry::timestamp_fresh(
                header("sentry-hook-timestamp").as_deref(),
                now,
                config.max_clock_skew.as_secs() as i64,
            )
        });
        if let Err(refusal) = verified {
            tracing::warn!(reason = %refusal.message(), "Sentry webhook refused");
            return response(refusal.status(), json!({"error": refusal.message()}));
        }
        let resource = header("sentry-hook-resource").unwrap_or_default();
        match sentry::to_alert(&resource, &body) {
            Err(refusal) => response(refusal.status(), json!({"error": refusal.message()})),
            Ok(None) => response(200, json!({"status": "ignored", "resource": resource})),
            Ok(Some(delivery)) => match self.forwarder.forward(&delivery.key, &delivery.alert, deadline_ms).await {
                Ok(decision) => response(202, json!({"status": decision})),
                Err(err) => {
                    tracing::error!(error = %err, "Sentry alert could not be forwarded");
                    response(502, json!({"error": "could not forward the alert; retry"}))
                }
            },
        }
    }

    async fn verify(&self, signature: Option<String>, body: &[u8]) -> Result<(), sentry::Refusal> {
        let unauthorized = |why: &str| sentry::Refusal::Unauthorized(why.to_owned());
        let signature = signature.ok_or_else(|| unauthorized("Sentry-Hook-Signature is missing"))?;
        let arn = &self.forwarder.config.sentry_secret_arn;
        let secret = self.secrets.get(arn).await.map_err(|_| unauthorized("the webhook secret is unavailable"))?;
        if sentry::signature_valid(secret.value.trim().as_bytes(), body, &signature) {
            return Ok(());
        }
        // The client secret may have been rotated since it was cached: read it again, but at
        // most once a minute, so forged requests cost no Secrets Manager call.
        let fresh = self
            .secrets
            .refresh_unless_younger_than(arn, SECRET_REFRESH_INTERVAL)
            .await
            .map_err(|_| unauthorized("the webhook secret is unavailable"))?;
        if sentry::signature_valid(fresh.value.trim().as_bytes(), body, &signature) {
            Ok(())
        } else {
            Err(unauthorized("signature does not match"))
        }
    }
}

impl<S: StateStore + 'static, A: AlertSink + 'static> Handler for AlertForwarder<S, A> {
    type Event = Event;
    type Output = Answer;
    type Error = Error;

    async fn handle(&self, event: Event, ctx: Context) -> Result<Answer, Error> {
        let deadline_ms = deadline_ms(&ctx);
        match event {
            Event::Sns(event) => self.handle_sns(event, deadline_ms).await.map(Answer::Records),
            Event::FunctionUrl(request) => Ok(Answer::Http(self.handle_webhook(&request, deadline_ms).await)),
            Event::Sweep => {
                let sent = self.forwarder.sweep_silences(chrono::Utc::now().timestamp()).await?;
                let written = self.forwarder.flush_closed_incidents().await?;
                Ok(Answer::Records(json!({"silence_notices": sent, "incidents_written": written})))
            }
        }
    }
}

/// The invocation's deadline in epoch milliseconds, as Lambda gives it; without one (a direct
/// call), Lambda's longest timeout from now.
pub fn deadline_ms(ctx: &Context) -> i64 {
    match i64::try_from(ctx.deadline) {
        Ok(deadline) if deadline > 0 => deadline,
        _ => chrono::Utc::now().timestamp_millis() + forward::MAX_INVOCATION_MS,
    }
}

pub fn build(startup: Startup) -> Result<AlertForwarder<DynamoState, SnsAlertPublisher>, ConfigError> {
    let config = ForwarderConfig::from_env(&startup.env)?;
    let http = ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(5)))?;
    let incidents =
        startup.env.get("BACKUP_BUCKET").map(|bucket| S3Objects::new(startup.clients.s3(), bucket.to_owned()));
    let forwarder = Forwarder {
        state: DynamoState::new(startup.clients.dynamodb(), startup.common.state_table.clone()),
        incidents,
        ops: SnsAlertPublisher::new(startup.clients.sns(), config.ops_topic_arn.clone()),
        secrets: Arc::clone(&startup.secrets),
        http,
        config,
    };
    Ok(AlertForwarder { forwarder, secrets: startup.secrets })
}
