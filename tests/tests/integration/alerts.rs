//! alert-forwarder against moto: what ops would receive, read from a queue subscribed to the
//! ops topic.

use std::sync::Arc;
use std::time::Duration;

use alert_forwarder::{AlertForwarder, Decision, Forwarder, ForwarderConfig, InhibitRule};
use lambda_runtime::{Context, LambdaEvent};
use ops_shared::lambda::Function;
use ops_shared::state::DynamoState;
use ops_shared::{Alert, Scrubber, SecretCache, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, Notification, unique};
use ops_testkit::names;
use serde_json::{Value, json};

const SENTRY_SECRET: &str = "sentry-client-secret-for-tests";

pub(crate) struct Fixture {
    pub(crate) ops: Inbox,
    function: Function<AlertForwarder<DynamoState, SnsAlertPublisher>>,
}

async fn fixture_with(rules: Vec<InhibitRule>, ops_topic: Option<String>) -> Fixture {
    fixture_configured(ops_topic, |config| config.inhibit_rules = rules).await
}

/// The forwarder with the test defaults, changed by `adjust` (which may name secrets created
/// through the `Aws` it is given).
pub(crate) async fn fixture_configured(
    ops_topic: Option<String>,
    adjust: impl FnOnce(&mut ForwarderConfig),
) -> Fixture {
    fixture_publishing_with(None, ops_topic, adjust).await
}

/// [`fixture_configured`] whose notifications go through `ops_sns` (another SNS endpoint).
async fn fixture_publishing_with(
    ops_sns: Option<aws_sdk_sns::Client>,
    ops_topic: Option<String>,
    adjust: impl FnOnce(&mut ForwarderConfig),
) -> Fixture {
    fixture_with_clients(None, ops_sns, ops_topic, adjust).await
}

/// [`fixture_publishing_with`] whose secrets are read through `secrets_client`.
async fn fixture_with_clients(
    secrets_client: Option<aws_sdk_secretsmanager::Client>,
    ops_sns: Option<aws_sdk_sns::Client>,
    ops_topic: Option<String>,
    adjust: impl FnOnce(&mut ForwarderConfig),
) -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("ops")).await;
    let ops = aws.subscribe_queue(&topic).await;
    let secret = unique("sentry-webhook");
    aws.secrets.create_secret().name(&secret).secret_string(SENTRY_SECRET).send().await.expect("secret");
    let secrets =
        Arc::new(SecretCache::new(secrets_client.unwrap_or_else(|| aws.secrets.clone()), Scrubber::default()));
    let mut config = ForwarderConfig {
        ops_topic_arn: ops_topic.unwrap_or(topic),
        sentry_secret_arn: secret,
        slack_secret_arn: None,
        repeat_interval: Duration::from_secs(3600),
        inhibit_rules: Vec::new(),
        max_clock_skew: Duration::from_secs(300),
        max_body_bytes: alert_forwarder::config::MAX_BODY_BYTES,
    };
    adjust(&mut config);
    let forwarder = Forwarder {
        state: DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE),
        ops: SnsAlertPublisher::new(ops_sns.unwrap_or_else(|| aws.sns.clone()), config.ops_topic_arn.clone()),
        incidents: Some(ops_shared::objects::S3Objects::new(aws.s3.clone(), names::backup_bucket())),
        secrets: Arc::clone(&secrets),
        http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
        config,
    };
    let handler = AlertForwarder { forwarder, secrets };
    Fixture { function: Function::new("alert-forwarder", handler, Scrubber::default()), ops }
}

async fn fixture() -> Fixture {
    fixture_with(Vec::new(), None).await
}

/// An SNS delivery of `message` as Lambda receives it.
pub(crate) fn sns_event(message_id: &str, message: &str, subject: Option<&str>) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:cineview-ops-alerts:sub",
        "Sns": {
            "Type": "Notification", "MessageId": message_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:cineview-ops-alerts",
            "Subject": subject, "Message": message, "Timestamp": "2026-11-26T03:05:12.400Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "https://example.com/cert.pem",
            "UnsubscribeUrl": "https://example.com/unsubscribe", "MessageAttributes": {}
        }
    }]})
}

/// A Function URL request carrying a Sentry webhook, signed with `secret`, with the headers of
/// Sentry's "Webhooks" page (integration platform): `Request-ID`, `Sentry-Hook-Resource`,
/// `Sentry-Hook-Timestamp` (Unix seconds) and `Sentry-Hook-Signature` (HMAC-SHA256 of the body
/// with the client secret, hex).
fn sentry_request(resource: &str, body: &str, secret: &str, timestamp: i64, request_id: &str) -> Value {
    let signature = alert_forwarder::sentry::sign(secret.as_bytes(), body.as_bytes()).expect("sign");
    json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {
            "content-type": "application/json", "sentry-hook-resource": resource,
            "sentry-hook-timestamp": timestamp.to_string(), "sentry-hook-signature": signature,
            "request-id": request_id
        },
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "requestId": request_id, "routeKey": "$default", "stage": "$default",
            "time": "26/Nov/2026:03:05:12 +0000", "timeEpoch": timestamp * 1000,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                "sourceIp": "35.184.238.160", "userAgent": "Sentry"}
        },
        "body": body, "isBase64Encoded": false
    })
}

impl Fixture {
    pub(crate) async fn invoke(&self, event: Value) -> Result<Value, lambda_runtime::Diagnostic> {
        self.invoke_in(event, Context::default()).await
    }

    /// The answer as the runtime sends it to Lambda: serialised.
    async fn invoke_in(&self, event: Value, context: Context) -> Result<Value, lambda_runtime::Diagnostic> {
        let answer = self.function.invoke(LambdaEvent::new(event, context)).await?;
        Ok(serde_json::to_value(answer).expect("the answer serialises"))
    }

    /// An invocation as Lambda makes it for a function with `timeout`: its deadline that far ahead.
    async fn invoke_with_timeout(&self, event: Value, timeout: Duration) -> Result<Value, lambda_runtime::Diagnostic> {
        let mut context = Context::default();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
        context.deadline = (now + timeout).as_millis() as u64;
        self.invoke_in(event, context).await
    }

    async fn webhook(&self, event: Value) -> (i64, Value) {
        let answer = self.invoke(event).await.expect("the URL always answers");
        let body = answer["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        (answer["statusCode"].as_i64().unwrap_or(0), body)
    }

    pub(crate) async fn one_notification(&self) -> Notification {
        let notes = self.ops.receive(1, Duration::from_secs(3)).await;
        assert_eq!(
            notes.len(),
            1,
            "exactly one notification: {:?}",
            notes.iter().map(|n| n.subject.clone()).collect::<Vec<_>>()
        );
        let note = notes.into_iter().next().expect("one");
        let subject = note.subject.clone().unwrap_or_default();
        assert!(subject.is_ascii() && subject.len() <= 99, "{subject:?}");
        note
    }

    async fn nothing_published(&self) {
        assert!(self.ops.receive(0, Duration::from_millis(300)).await.is_empty(), "nothing may reach ops");
    }
}

fn sample_event(name: &str) -> Value {
    let path = ops_testkit::workspace_file(&format!("events/alert-forwarder/{name}"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("sample event")).expect("json")
}

#[tokio::test]
async fn a_cloudwatch_alarm_becomes_one_readable_critical_email() {
    let f = fixture().await;
    let mut event = sample_event("sns-cloudwatch-alarm.json");
    event["Records"][0]["Sns"]["MessageId"] = json!(unique("cw"));
    let alarm = unique("cineview-health-checker-errors");
    let message = event["Records"][0]["Sns"]["Message"]
        .as_str()
        .expect("message")
        .replace("cineview-health-checker-errors", &alarm);
    event["Records"][0]["Sns"]["Message"] = json!(message);
    f.invoke(event).await.expect("forwarded");
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert_eq!(note.subject.as_deref(), Some(format!("[CRITICAL] {alarm} is ALARM").as_str()));
    assert!(note.message.starts_with(&format!("CRITICAL - firing: {alarm} is ALARM")), "{}", note.message);
    assert!(
        note.message.contains("Threshold Crossed") && note.message.contains("AWS/Lambda/Errors"),
        "{}",
        note.message
    );
    assert!(note.message.contains("console.aws.amazon.com/cloudwatch"));
}

/// The engine task's stopped event as EventBridge publishes it to the alert topic: the sample
/// is the ECS Developer Guide's task state change example, stopped as a task whose image
/// cannot be pulled stops ("CannotPullContainer task errors").
#[tokio::test]
async fn an_engine_task_that_could_not_start_pages_ops_and_one_that_ended_its_work_says_nothing() {
    let f = fixture().await;
    let mut event = sample_event("sns-ecs-task-stopped.json");
    event["Records"][0]["Sns"]["MessageId"] = json!(unique("ecs"));
    let answer = f.invoke(event.clone()).await.expect("forwarded");
    assert_eq!(answer["records"][0]["decision"], "sent", "{answer}");
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert_eq!(note.subject.as_deref(), Some("[CRITICAL] The backup on Fargate stopped before it finished"));
    assert!(
        note.message.contains("TaskFailedToStart: CannotPullContainerError: API error (404)")
            && note.message.contains("opsctl backup --local")
            && note.message.contains("c13b4cb40f1f4fe4a2971f76ae5a47ad"),
        "{}",
        note.message
    );

    // The same task, ended by its engine: it succeeded, or failed and alerted itself.
    for exit_code in [0, 1] {
        let message = event["Records"][0]["Sns"]["Message"].as_str().expect("message");
        let mut stopped: Value = serde_json::from_str(message).expect("event");
        stopped["detail"]["stopCode"] = json!("EssentialContainerExited");
        stopped["detail"]["containers"][0]["exitCode"] = json!(exit_code);
        let delivery = sns_event(&unique("ecs"), &stopped.to_string(), None);
        let answer = f.invoke(delivery).await.expect("handled");
        assert_eq!(answer["records"][0]["decision"], "not_an_alert", "{answer}");
    }
    f.nothing_published().await;
}

#[tokio::test]
async fn a_sentry_issue_alert_becomes_one_notification() {
    let f = fixture().await;
    let issue = unique("issue");
    let body = json!({"action": "triggered", "data": {"event": {
        "title": "TypeError: Cannot read properties of undefined (reading 'score')", "level": "error",
        "issue_id": issue, "culprit": "app/api/analyze/route.ts", "web_url": "https://cineview.sentry.io/issues/123/"
    }, "triggered_rule": "Error rate > 2%"}, "actor": {"type": "application", "name": "Sentry"}})
    .to_string();
    let (status, answer) = f
        .webhook(sentry_request("event_alert", &body, SENTRY_SECRET, chrono::Utc::now().timestamp(), &unique("req")))
        .await;
    assert_eq!(status, 202, "{answer}");
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("warning"));
    assert!(
        note.subject.as_deref().is_some_and(|s| s.starts_with("[WARNING] Sentry: TypeError")),
        "{:?}",
        note.subject
    );
    assert!(
        note.message.contains("Error rate > 2%") && note.message.contains("https://cineview.sentry.io/issues/123/")
    );
}

#[tokio::test]
async fn a_sentry_metric_alert_becomes_one_critical_notification_and_resolves() {
    let f = fixture().await;
    let rule = unique("rule");
    let metric = |action: &str| {
        json!({"action": action, "data": {"metric_alert": {"id": rule, "alert_rule": {"name": "P95 > 3000ms"}},
            "description_text": "P95 transaction duration 3412ms in the last 5 minutes",
                "description_title": "P95 > 3000ms",
            "web_url": "https://cineview.sentry.io/alerts/rules/details/1/"}})
        .to_string()
    };
    let now = chrono::Utc::now().timestamp();
    let (status, _) =
        f.webhook(sentry_request("metric_alert", &metric("critical"), SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(status, 202);
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert_eq!(note.subject.as_deref(), Some("[CRITICAL] Sentry: P95 > 3000ms"));
    let (status, _) =
        f.webhook(sentry_request("metric_alert", &metric("resolved"), SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(status, 202);
    assert_eq!(f.one_notification().await.subject.as_deref(), Some("[RESOLVED] Sentry: P95 > 3000ms"));
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_nothing_is_published() {
    let f = fixture().await;
    let now = chrono::Utc::now().timestamp();
    let body =
        json!({"action": "critical", "data": {"metric_alert": {"id": "1", "alert_rule": {"name": "x"}}}}).to_string();

    let (status, _) = f.webhook(sentry_request("metric_alert", &body, "forged-secret", now, &unique("req"))).await;
    assert_eq!(status, 401, "forged signature");
    let (status, answer) =
        f.webhook(sentry_request("metric_alert", &body, SENTRY_SECRET, now - 3600, &unique("req"))).await;
    assert_eq!(status, 401, "stale timestamp");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("stale")));
    let (status, _) = f.webhook(sentry_request("metric_alert", "{not json", SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(status, 400, "malformed JSON");
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(alert_forwarder::config::MAX_BODY_BYTES));
    let (status, _) = f.webhook(sentry_request("metric_alert", &huge, SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(status, 413, "oversized");
    let mut unsigned = sentry_request("metric_alert", &body, SENTRY_SECRET, now, &unique("req"));
    unsigned["headers"].as_object_mut().expect("headers").remove("sentry-hook-signature");
    assert_eq!(f.webhook(unsigned).await.0, 401, "missing signature");
    f.nothing_published().await;
}

#[tokio::test]
async fn the_same_sns_message_delivered_a_thousand_times_notifies_once() {
    use futures::StreamExt;
    let f = fixture().await;
    let alert = Alert::new("scheduled-backup", Severity::Critical, unique("backup"), "Database backup failed")
        .summary("pg_dump exited 1");
    let event = sns_event(&unique("msg"), &alert.to_body(), Some("[CRITICAL] Database backup failed"));
    let outcomes: Vec<_> =
        futures::stream::iter(0..1000).map(|_| f.invoke(event.clone())).buffer_unordered(16).collect().await;
    assert!(outcomes.iter().all(Result::is_ok));
    let sent = outcomes.iter().filter(|o| o.as_ref().is_ok_and(|v| v["records"][0]["decision"] == "sent")).count();
    assert_eq!(sent, 1);
    f.one_notification().await;
}

#[tokio::test]
async fn a_failed_publish_fails_the_invocation_and_the_retry_delivers() {
    let broken = fixture_with(Vec::new(), Some(ops_testkit::stack::topic_arn(&unique("no-such-topic")))).await;
    let alert = Alert::new("health-checker", Severity::Critical, unique("health-checker:app"), "app is down");
    let event = sns_event(&unique("msg"), &alert.to_body(), None);
    let err = broken.invoke(event.clone()).await.expect_err("SNS must retry");
    assert_eq!(err.error_type, "ForwardFailed");
    assert!(err.error_message.contains("NotFound"), "{}", err.error_message);

    // SNS retries the same delivery once the topic works again: it is not taken for a duplicate.
    let fixed = fixture().await;
    let answer = fixed.invoke(event).await.expect("retry");
    assert_eq!(answer["records"][0]["decision"], "sent");
    fixed.one_notification().await;
}

/// An SNS endpoint that accepts connections and never answers: a publish that hangs.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, server)
}

#[tokio::test]
async fn a_forwarder_stopped_mid_publish_loses_nothing_when_sns_delivers_again() {
    // The template's 15 s timeout, shortened: what matters is that the deadline passes.
    const TIMEOUT: Duration = Duration::from_secs(2);
    let (silent, _server) = silent_endpoint().await;
    let aws = Aws::new(ops_testkit::shared()).await;
    let hanging_sns =
        aws_sdk_sns::Client::from_conf(aws_sdk_sns::config::Builder::from(&aws.sdk).endpoint_url(&silent).build());
    let first = Arc::new(fixture_publishing_with(Some(hanging_sns), None, |_| {}).await);
    let alert =
        Alert::new("scheduled-backup", Severity::Critical, unique("scheduled-backup:app"), "Database backup failed");
    let event = sns_event(&unique("msg"), &alert.to_body(), None);

    let attempt = tokio::spawn({
        let (first, event) = (Arc::clone(&first), event.clone());
        async move { first.invoke_with_timeout(event, TIMEOUT).await }
    });
    tokio::time::sleep(TIMEOUT + Duration::from_millis(500)).await;
    assert!(!attempt.is_finished(), "the publish hangs past the function's timeout");
    // Lambda ends the invocation at its timeout and the process with it: nothing after the hung
    // call runs, no claim is released and no record rolled back.
    attempt.abort();
    assert!(attempt.await.is_err_and(|e| e.is_cancelled()));
    first.nothing_published().await;

    // Lambda's asynchronous retry delivers the same SNS message again (about a minute later; the
    // first invocation's deadline is what has to be behind it, and it is), to a forwarder whose
    // SNS answers.
    let retry = fixture().await;
    let answer = retry.invoke_with_timeout(event, Duration::from_secs(15)).await.expect("the retry is handled");
    assert_eq!(answer["records"][0]["decision"], "sent", "{answer}");
    let note = retry.one_notification().await;
    assert_eq!(note.subject.as_deref(), Some("[CRITICAL] Database backup failed"));
}

#[tokio::test]
async fn repeats_are_suppressed_unless_severity_rises_or_it_resolves() {
    let f = fixture().await;
    let key = unique("health-checker:ai-engine:latency");
    let warning = Alert::new("health-checker", Severity::Warning, key.clone(), "ai-engine is slow");
    let decide = |alert: &Alert| {
        let event = sns_event(&unique("msg"), &alert.to_body(), None);
        async { f.invoke(event).await.expect("forwarded")["records"][0]["decision"].clone() }
    };
    assert_eq!(decide(&warning).await, json!(Decision::Sent));
    assert_eq!(decide(&warning).await, json!(Decision::Repeat));
    let critical = Alert::new("health-checker", Severity::Critical, key.clone(), "ai-engine is very slow");
    assert_eq!(decide(&critical).await, json!(Decision::Sent));
    assert_eq!(decide(&critical.clone().resolved()).await, json!(Decision::Sent));
    let notes = f.ops.receive(3, Duration::from_secs(3)).await;
    let subjects: Vec<_> = notes.iter().filter_map(|n| n.subject.clone()).collect();
    assert_eq!(
        subjects,
        vec!["[WARNING] ai-engine is slow", "[CRITICAL] ai-engine is very slow", "[RESOLVED] ai-engine is very slow"]
    );
}

#[tokio::test]
async fn a_firing_parent_mutes_its_children() {
    let parent = unique("health-checker:database");
    let child = unique("health-checker:app");
    let f = fixture_with(vec![InhibitRule { parent: parent.clone(), children: vec![child.clone()] }], None).await;
    let send = |alert: Alert| {
        let event = sns_event(&unique("msg"), &alert.to_body(), None);
        async { f.invoke(event).await.expect("forwarded")["records"][0]["decision"].clone() }
    };
    assert_eq!(
        send(Alert::new("health-checker", Severity::Critical, parent.clone(), "database is down")).await,
        json!("sent")
    );
    let latency = Alert::new("health-checker", Severity::Warning, format!("{child}:latency"), "app is slow");
    assert_eq!(send(latency.clone()).await, json!("muted"));
    assert_eq!(send(latency.resolved()).await, json!("muted"), "the resolve of a muted alert stays quiet too");
    assert_eq!(
        send(Alert::new("health-checker", Severity::Critical, parent, "database is down").resolved()).await,
        json!("sent")
    );
    let subjects: Vec<_> =
        f.ops.receive(2, Duration::from_secs(3)).await.into_iter().filter_map(|n| n.subject).collect();
    assert_eq!(subjects, vec!["[CRITICAL] database is down", "[RESOLVED] database is down"]);
}

#[tokio::test]
async fn unrecognised_messages_are_forwarded_with_their_text() {
    let f = fixture().await;
    let text = format!("disk 91% full on bastion {}", unique("host"));
    f.invoke(sns_event(&unique("msg"), &text, Some("cron"))).await.expect("forwarded");
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("warning"));
    assert!(note.message.contains(&text));
}

#[tokio::test]
async fn a_malformed_event_is_an_error_not_a_panic() {
    let f = fixture().await;
    for event in [json!({}), json!({"Records": "nope"}), json!([1])] {
        let err = f.invoke(event.clone()).await.expect_err("refused");
        assert_eq!(err.error_type, "InvalidEvent", "{event}");
    }
}

/// A metric alert as Sentry's "Metric Alerts" webhook page shows it (ids as strings, status a
/// number), for incident `incident` of rule `rule`.
fn metric_alert(action: &str, incident: &str, rule: &str, status: u8, closed: Option<&str>) -> String {
    json!({"action": action, "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "data": {"description_text": "P95 3412ms in the last 5 minutes", "description_title": rule,
            "metric_alert": {"alert_rule": {"id": "7", "name": rule, "aggregate": "p95(transaction.duration)"},
                "date_closed": closed, "date_detected": "2026-11-26T03:00:00.000000Z",
                "date_started": "2026-11-26T03:00:00.000000Z", "id": incident, "identifier": "12",
                "status": status, "title": rule},
            "web_url": "https://cineview.sentry.io/alerts/1/"},
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}})
    .to_string()
}

#[tokio::test]
async fn a_sentry_redelivery_is_one_notification_even_after_the_repeat_interval() {
    // Repeats are never suppressed here: only the delivery key can tell a redelivery.
    let f = fixture_configured(None, |config| config.repeat_interval = Duration::ZERO).await;
    let (incident, rule) = (unique("incident"), unique("P95 > 3000ms"));
    let now = chrono::Utc::now().timestamp();
    let critical = metric_alert("critical", &incident, &rule, 20, None);
    // Sentry sends each attempt with a fresh Request-ID (uuid4 hex).
    for attempt in 0..3 {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let (status, answer) =
            f.webhook(sentry_request("metric_alert", &critical, SENTRY_SECRET, now + attempt, &request_id)).await;
        assert_eq!(status, 202, "{answer}");
        let expected = if attempt == 0 { "sent" } else { "duplicate" };
        assert_eq!(answer["status"], expected, "attempt {attempt}");
    }
    // A real change of state on the same incident is not a duplicate.
    let resolved = metric_alert("resolved", &incident, &rule, 2, Some("2026-11-26T03:20:00.000000Z"));
    let (_, answer) = f.webhook(sentry_request("metric_alert", &resolved, SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(answer["status"], "sent");
    let subjects: Vec<_> =
        f.ops.receive(2, Duration::from_secs(3)).await.into_iter().filter_map(|n| n.subject).collect();
    assert_eq!(subjects, vec![format!("[CRITICAL] Sentry: {rule}"), format!("[RESOLVED] Sentry: {rule}")]);
}

#[tokio::test]
async fn a_sentry_issue_alert_far_above_sns_limits_is_forwarded_truncated() {
    let f = fixture().await;
    let title = format!("RangeError: {}", "stack too deep ".repeat(20_000));
    let frames: Vec<Value> =
        (0..3000).map(|i| json!({"filename": format!("app/lib/{i}.ts"), "function": "recurse", "lineno": i})).collect();
    let body = json!({"action": "triggered", "data": {"event": {
        "event_id": uuid::Uuid::new_v4().simple().to_string(), "issue_id": unique("issue"), "title": title,
        "level": "fatal", "exception": {"values": [{"stacktrace": {"frames": frames}}]}
    }, "triggered_rule": "Any fatal error"}})
    .to_string();
    assert!(body.len() > 300 * 1024, "{} bytes", body.len());
    let (status, answer) = f
        .webhook(sentry_request("event_alert", &body, SENTRY_SECRET, chrono::Utc::now().timestamp(), &unique("req")))
        .await;
    assert_eq!(status, 202, "{answer}");
    let note = f.one_notification().await;
    assert!(note.message.len() <= 256 * 1024, "{} bytes reached SNS", note.message.len());
    assert!(note.message.contains("RangeError: stack too deep"));
    assert_eq!(note.attribute("severity"), Some("critical"));
}

/// A Sentry issue alert titled `title` (an error event: a warning) through a forwarder whose
/// Slack webhook is `slack_url`: accepted. Returns the forwarder.
async fn sentry_alert_through_slack(slack_url: &str, title: &str, rule: &str) -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let slack_secret = unique("slack-webhook");
    aws.secrets.create_secret().name(&slack_secret).secret_string(slack_url).send().await.expect("slack secret");
    let f = fixture_configured(None, |config| config.slack_secret_arn = Some(slack_secret)).await;
    let body = json!({"action": "triggered", "data": {"event": {
        "event_id": uuid::Uuid::new_v4().simple().to_string(), "issue_id": unique("issue"), "level": "error",
        "title": title
    }, "triggered_rule": rule}})
    .to_string();
    let (status, _) = f
        .webhook(sentry_request("event_alert", &body, SENTRY_SECRET, chrono::Utc::now().timestamp(), &unique("req")))
        .await;
    assert_eq!(status, 202);
    f
}

#[tokio::test]
async fn slack_gets_escaped_text_so_events_cannot_mention_channels_or_forge_links() {
    let slack = ops_testkit::slack::Slack::start().await;
    let f = sentry_alert_through_slack(
        &slack.url,
        "<!channel> pay here <https://evil.example|https://cineview.ai/billing> & now",
        "<!here> rule",
    )
    .await;
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "one Slack message");
    assert!(f.ops.receive(0, Duration::from_millis(500)).await.is_empty(), "a warning goes to Slack only");
    let text = &texts[0];
    assert!(!text.contains("<!channel>") && !text.contains("<!here>") && !text.contains("<https://"), "{text}");
    assert!(
        text.contains("&lt;!channel&gt; pay here &lt;https://evil.example|https://cineview.ai/billing&gt; &amp; now")
    );
}

/// Slack's incoming-webhook URL is the credential (its path is the secret): when Slack cannot
/// be reached, the error logged names the failure and not the URL.
#[tokio::test]
async fn a_slack_webhook_url_never_reaches_a_log_line() {
    let logs = ops_testkit::logs::capture();
    let path_secret = uuid::Uuid::new_v4().simple().to_string();
    let url = format!("http://127.0.0.1:9/services/T00000000/B00000000/{path_secret}");
    let f = sentry_alert_through_slack(&url, "Slack is down", "rule").await;
    let note = f.one_notification().await;
    assert!(note.message.contains("Sent by e-mail because Slack did not take it: Slack could not be reached"));
    assert!(!note.message.contains(&path_secret), "the webhook URL reached the e-mail");
    let text = logs.text();
    assert!(text.contains("Slack could not be reached"), "the failure is logged");
    assert!(!text.contains(&path_secret), "the webhook URL reached the logs");
}

/// AWS's example SNS event `name`, each record given its own MessageId and AlarmName (AWS's
/// files reuse one of each) so the deliveries are distinct and independent of other tests.
fn aws_example(name: &str) -> (Value, Vec<String>) {
    let mut event = ops_testkit::aws_examples::event(name);
    let mut alarms = Vec::new();
    for record in event["Records"].as_array_mut().expect("Records") {
        record["Sns"]["MessageId"] = json!(unique("aws-example"));
        let alarm = unique("EXAMPLE");
        let message =
            record["Sns"]["Message"].as_str().expect("Message").replace("\"EXAMPLE\"", &format!("\"{alarm}\""));
        record["Sns"]["Message"] = json!(message);
        alarms.push(alarm);
    }
    (event, alarms)
}

#[tokio::test]
async fn aws_example_alarm_notifications_become_notifications() {
    let f = fixture().await;
    let (single, alarms) = aws_example("example-cloudwatch-alarm-sns-payload-single-metric.json");
    let answer = f.invoke(single).await.expect("forwarded");
    assert_eq!(answer["records"][0]["decision"], "sent");
    let note = f.one_notification().await;
    assert_eq!(note.subject.as_deref(), Some(format!("[CRITICAL] {} is ALARM", alarms[0]).as_str()));
    assert!(note.message.contains("AWS/EC2/NetworkOut") && note.message.contains("Threshold Crossed"));

    let (multiple, alarms) = aws_example("example-cloudwatch-alarm-sns-payload-multiple-metrics.json");
    let answer = f.invoke(multiple).await.expect("forwarded");
    assert_eq!(answer["records"].as_array().map(Vec::len), Some(2));
    let notes = f.ops.receive(2, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 2, "one per record");
    for (note, alarm) in notes.iter().zip(&alarms) {
        assert!(note.message.contains(alarm.as_str()) && note.message.contains("metric math expression"));
    }

    let (plain, _) = aws_example("example-sns-event.json");
    f.invoke(plain).await.expect("forwarded");
    let note = f.one_notification().await;
    assert!(
        note.message.contains("Hello\r\nworld!") && note.subject.as_deref().is_some_and(|s| s.contains("Greetings"))
    );
}

/// A composite alarm's SNS message: the schema of "Notifying users on alarm changes" (CloudWatch
/// User Guide), with `TriggeringChildren` as objects and `Region` as a display name, as real
/// ones carry them.
#[tokio::test]
async fn a_composite_alarm_names_its_rule_and_the_child_that_fired() {
    let f = fixture().await;
    let name = unique("cineview-backend-degraded");
    let child = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:cineview-health-checker-errors";
    let message = json!({
        "AlarmName": name, "AlarmDescription": "", "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": format!("{child} transitioned to ALARM at Wednesday 26 November, 2026 03:05:12 UTC"),
        "StateChangeTime": "2026-11-26T03:05:12.640+0000", "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "OKActions": [], "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:cineview-ops-alerts"],
        "InsufficientDataActions": [], "OldStateValue": "OK",
        "AlarmRule": "ALARM(cineview-health-checker-errors) OR ALARM(cineview-backup-missing)",
        "TriggeringChildren": [{"Arn": child, "State": {"Value": "ALARM", "Timestamp": "2026-11-26T03:05:12.640+0000"}}]
    });
    f.invoke(sns_event(&unique("msg"), &message.to_string(), Some(&format!("ALARM: \"{name}\""))))
        .await
        .expect("forwarded");
    let note = f.one_notification().await;
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert!(note.message.contains("composite alarm: ALARM(cineview-health-checker-errors)"), "{}", note.message);
    assert!(note.message.contains(&format!("{child} (ALARM)")), "{}", note.message);
    assert!(note.message.contains("  region: us-east-1\n"), "{}", note.message);
}

/// `request` with its `Sentry-Hook-Timestamp` header set to `value`, still validly signed.
fn with_timestamp(mut request: Value, value: &str) -> Value {
    request["headers"]["sentry-hook-timestamp"] = json!(value);
    request
}

#[tokio::test]
async fn timestamps_that_are_not_a_moment_within_the_skew_are_refused() {
    let f = fixture().await;
    let now = chrono::Utc::now().timestamp();
    let body = metric_alert("critical", &unique("incident"), &unique("rule"), 20, None);
    let far_future = (now + 365 * 24 * 3600).to_string();
    for timestamp in ["NaN", "nan", "-NaN", "inf", "-inf", "Infinity", "1e999", far_future.as_str(), ""] {
        let request =
            with_timestamp(sentry_request("metric_alert", &body, SENTRY_SECRET, now, &unique("req")), timestamp);
        let (status, answer) = f.webhook(request).await;
        assert_eq!(status, 401, "Sentry-Hook-Timestamp {timestamp:?}: {answer}");
    }
    f.nothing_published().await;
}

/// Bodies as Sentry's webhook pages show each resource's (`data.installation`, `data.event`,
/// `data.issue`, `data.metric_alert`, `data.error`, `data.comment`), each sent under every other
/// resource's `Sentry-Hook-Resource`: refused, and nothing reaches ops.
#[tokio::test]
async fn a_body_that_is_not_the_resource_its_header_names_is_refused() {
    let f = fixture().await;
    let now = chrono::Utc::now().timestamp();
    let installation = json!({"action": "created", "data": {"installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de",
        "status": "pending", "app": {"slug": "cineview-ops"}}}});
    let event_alert = json!({"action": "triggered", "data": {"event": {"event_id": uuid::Uuid::new_v4().simple().to_string(),
        "issue_id": unique("issue"), "title": "TypeError", "level": "fatal"}, "triggered_rule": "Any fatal error"}});
    let issue = json!({"action": "created", "data": {"issue": {"id": unique("issue"), "title": "TypeError", "status": "unresolved"}}});
    let metric: Value =
        serde_json::from_str(&metric_alert("critical", &unique("incident"), &unique("rule"), 20, None)).expect("json");
    let error = json!({"action": "created", "data": {"error": {"event_id": uuid::Uuid::new_v4().simple().to_string(),
        "title": "TypeError", "level": "error"}}});
    let comment = json!({"action": "created", "data": {"comment": "adding a comment", "project_slug": "cineview",
        "comment_id": 1234, "issue_id": 100, "timestamp": "2026-11-26T03:05:12.118160Z"}});
    let bodies = [
        ("installation", installation),
        ("event_alert", event_alert),
        ("issue", issue),
        ("metric_alert", metric),
        ("error", error),
        ("comment", comment),
    ];
    for (resource, _) in &bodies {
        for (shape, body) in &bodies {
            let request = sentry_request(resource, &body.to_string(), SENTRY_SECRET, now, &unique("req"));
            let (status, answer) = f.webhook(request).await;
            if resource == shape {
                assert!(status == 200 || status == 202, "{resource} with its own body: {status} {answer}");
            } else {
                assert_eq!(status, 400, "a {shape} body sent as {resource}: {answer}");
            }
        }
    }
    let request = sentry_request("no_such_resource", &bodies[1].1.to_string(), SENTRY_SECRET, now, &unique("req"));
    assert_eq!(f.webhook(request).await.0, 400, "an unknown resource");
    // The two alert resources went through once each, with their own bodies.
    let subjects: Vec<_> =
        f.ops.receive(2, Duration::from_secs(3)).await.into_iter().filter_map(|n| n.subject).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

/// README: a Sentry redelivery is dropped for as long as its delivery record lives in the state table.
#[tokio::test]
async fn a_sentry_delivery_is_remembered_as_long_as_the_readme_says() {
    let f = fixture().await;
    let body = metric_alert("critical", &unique("incident"), &unique("rule"), 20, None);
    let now = chrono::Utc::now().timestamp();
    let (status, _) = f.webhook(sentry_request("metric_alert", &body, SENTRY_SECRET, now, &unique("req"))).await;
    assert_eq!(status, 202);
    let delivery =
        alert_forwarder::sentry::to_alert("metric_alert", body.as_bytes()).expect("valid").expect("an alert");
    let aws = Aws::new(ops_testkit::shared()).await;
    let item = aws
        .dynamodb
        .get_item()
        .table_name(names::STATE_TABLE)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("alert-forwarder#seen".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(delivery.key.clone()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the delivery record");
    let expires: i64 = match item.get("expires_at") {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().expect("number"),
        other => panic!("expires_at: {other:?}"),
    };
    let guide = std::fs::read_to_string(ops_testkit::workspace_file("docs/monitoring.md")).expect("the guide");
    let promise = "a redelivery within a day of the first is dropped";
    assert!(guide.contains(promise), "docs/monitoring.md must say {promise:?}, the bound the state table keeps");
    assert!(!guide.contains("however late it comes"), "no delivery record lives for ever");
    assert!(expires >= now + 24 * 3600, "the record lives a day");
}

/// Counts the requests a Secrets Manager client sends.
#[derive(Debug, Clone, Default)]
struct SecretReads(Arc<std::sync::atomic::AtomicUsize>);

impl SecretReads {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_secretsmanager::config::Intercept for SecretReads {
    fn name(&self) -> &'static str {
        "CountSecretReads"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn forged_webhooks_cost_no_secret_reads_and_do_not_hold_up_an_alert() {
    use futures::StreamExt;
    const FORGED: usize = 200;
    let aws = Aws::new(ops_testkit::shared()).await;
    let reads = SecretReads::default();
    let counted = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws.sdk).interceptor(reads.clone()).build(),
    );
    let webhook = fixture_with_clients(Some(counted), None, None, |_| {}).await;
    let sns = fixture().await;
    let body = metric_alert("critical", &unique("incident"), &unique("rule"), 20, None);
    let now = chrono::Utc::now().timestamp();

    let forged = futures::stream::iter(0..FORGED)
        .map(|_| webhook.webhook(sentry_request("metric_alert", &body, "forged-secret", now, &unique("req"))))
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let alert =
        Alert::new("scheduled-backup", Severity::Critical, unique("scheduled-backup:app"), "Database backup failed");
    let delivered = async {
        let started = std::time::Instant::now();
        let answer = sns.invoke(sns_event(&unique("msg"), &alert.to_body(), None)).await.expect("forwarded");
        let note = sns.one_notification().await;
        (answer, note, started.elapsed())
    };
    let (answers, (answer, note, took)) = tokio::join!(forged, delivered);
    assert!(answers.iter().all(|(status, _)| *status == 401), "every forged request is refused");
    assert_eq!(answer["records"][0]["decision"], "sent");
    assert_eq!(note.subject.as_deref(), Some("[CRITICAL] Database backup failed"));
    assert!(took < Duration::from_secs(60), "the alert took {took:?}");
    // One read to fill the cache, at most one more for a secret rotated since: not one per request.
    assert!(reads.count() <= 2, "{} Secrets Manager reads for {FORGED} forged requests", reads.count());
    webhook.nothing_published().await;
}
