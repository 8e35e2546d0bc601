//! Each function with IAM enforced: its clients sign with the role SAM creates for it from
//! template.yaml, so a call its role does not allow fails here as it would in production.
//! Also: what each role grants that no scenario uses, and that every action a scenario uses is
//! needed (taking it out of the role breaks the scenario).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::lambda::{Function, Handler};
use ops_shared::postgres::{DbCredentials, quote_ident, quote_literal};
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::secrets::{AWSCURRENT, read_stage};
use ops_shared::{Alert, Scrubber, Severity};
use ops_testkit::aws::{Inbox, Notification, unique};
use ops_testkit::iam::{Calls, Enforced, Role, enforced};
use ops_testkit::names;
use ops_testkit::pg::Seed;
use ops_testkit::stack::APP_DATABASE;
use serde_json::{Value, json};

#[path = "iam/engine_task.rs"]
mod engine_task;

type Scenario = Result<BTreeSet<String>, String>;

fn ensure(condition: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what.to_string()) }
}

async fn invoke<H: Handler>(function: &Function<H>, event: Value) -> Result<Value, String> {
    function
        .invoke(LambdaEvent::new(event, Context::default()))
        .await
        .map(|out| serde_json::to_value(out).unwrap_or_default())
        .map_err(|e| format!("{}: {}", e.error_type, e.error_message))
}

/// Waits until a notification whose body contains each of `needles` arrived (others may share
/// the topic), then returns everything delivered, those included.
async fn delivered(inbox: &Inbox, needles: &[&str]) -> Result<Vec<Notification>, String> {
    // Generous: the mutation test runs two dozen scenarios at once on a small machine.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Vec<Notification> = Vec::new();
    while !needles.iter().all(|n| seen.iter().any(|note| note.message.contains(n))) {
        if Instant::now() > deadline {
            return Err(format!("not delivered: {needles:?}"));
        }
        seen.extend(inbox.receive(1, Duration::from_millis(300)).await);
    }
    // Whatever was published with them is in the queue by now.
    seen.extend(inbox.receive(0, Duration::from_millis(300)).await);
    Ok(seen)
}

fn sns_event(message: &str) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:sub", ops_testkit::shared().alert_topic_arn),
        "Sns": {
            "Type": "Notification", "MessageId": unique("msg"), "TopicArn": ops_testkit::shared().alert_topic_arn,
            "Subject": null, "Message": message, "Timestamp": "2026-11-26T03:05:12.400Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertUrl": "https://example.com/cert.pem",
            "UnsubscribeUrl": "https://example.com/unsubscribe", "MessageAttributes": {}
        }
    }]})
}

/// A Sentry issue alert on the Function URL, signed with `secret`.
fn sentry_webhook(title: &str, secret: &str) -> Value {
    let body = json!({"action": "triggered", "data": {"event": {"title": title, "level": "error",
        "issue_id": unique("issue"), "web_url": "https://cineview.sentry.io/issues/1/"},
            "triggered_rule": "Any error"}})
    .to_string();
    let signature = alert_forwarder::sentry::sign(secret.as_bytes(), body.as_bytes()).expect("sign");
    let now = chrono::Utc::now().timestamp();
    let request_id = unique("req");
    json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "sentry-hook-resource": "event_alert",
            "sentry-hook-timestamp": now.to_string(), "sentry-hook-signature": signature, "request-id": request_id},
        "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "requestId": request_id, "routeKey": "$default", "stage": "$default",
            "time": "26/Nov/2026:03:05:12 +0000", "timeEpoch": now * 1000,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                "sourceIp": "35.184.238.160", "userAgent": "Sentry"}},
        "body": body, "isBase64Encoded": false
    })
}

fn sample_event(path: &str) -> Value {
    let text = std::fs::read_to_string(ops_testkit::workspace_file(&format!("events/{path}"))).expect("sample event");
    serde_json::from_str(&text).expect("json")
}

/// alert-forwarder: an alert from SNS reaches the ops topic.
async fn forwarding(role: &Role) -> Scenario {
    let iam = enforced();
    let ops = iam.admin().subscribe_queue(&ops_testkit::shared().ops_topic_arn).await;
    let (startup, calls) = iam.startup(role, &[]).await?;
    let handler = alert_forwarder::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(alert_forwarder::FUNCTION_NAME, handler, Scrubber::default());
    let title = unique("app is down");
    let alert = Alert::new("health-checker", Severity::Critical, unique("health-checker:app"), title.clone());
    let answer = invoke(&function, sns_event(&alert.to_body())).await?;
    ensure(answer["records"][0]["decision"] == "sent", format!("the alert was not sent: {answer}"))?;
    delivered(&ops, &[&title]).await?;
    Ok(calls.actions())
}

/// sentry-webhook (alert-forwarder's code behind the Function URL): a signed Sentry webhook
/// whose publish fails is answered 502 and its claim released, and Sentry's retry of it
/// reaches the ops topic.
async fn sentry_webhook_forwarding(role: &Role) -> Scenario {
    let iam = enforced();
    let admin = iam.admin();
    let ops = admin.subscribe_queue(&ops_testkit::shared().ops_topic_arn).await;
    let secret =
        read_stage(&admin.secrets, names::SENTRY_WEBHOOK_SECRET, AWSCURRENT).await.map_err(|e| e.to_string())?;
    let ((broken, broken_calls), (fixed, fixed_calls)) = forwarders(iam, role).await?;
    let issue = unique("TypeError");
    let request = sentry_webhook(&issue, secret.value.trim());
    let answer = invoke(&broken, request.clone()).await?;
    ensure(answer["statusCode"] == 502, format!("a failed publish must be retried: {answer}"))?;
    let answer = invoke(&fixed, request).await?;
    ensure(answer["statusCode"] == 202, format!("the webhook was not accepted: {answer}"))?;
    delivered(&ops, &[&issue]).await?;
    Ok(broken_calls.actions().union(&fixed_calls.actions()).cloned().collect())
}

/// Two forwarders with `role`: one whose ops topic does not exist (every publish fails), one as
/// deployed; each with the calls it makes.
type Forwarder = alert_forwarder::AlertForwarder<ops_shared::state::DynamoState, ops_shared::SnsAlertPublisher>;

async fn forwarders(
    iam: &Enforced,
    role: &Role,
) -> Result<((Function<Forwarder>, Calls), (Function<Forwarder>, Calls)), String> {
    let missing = ops_testkit::stack::topic_arn(&unique("no-such-topic"));
    let bucket = names::backup_bucket();
    let mut built = Vec::new();
    for env in [vec![("OPS_TOPIC_ARN", missing.as_str())], vec![("BACKUP_BUCKET", bucket.as_str())]] {
        let (startup, calls) = iam.startup(role, &env).await?;
        let handler = alert_forwarder::build(startup).map_err(|e| e.to_string())?;
        built.push((Function::new(alert_forwarder::FUNCTION_NAME, handler, Scrubber::default()), calls));
    }
    let fixed = built.pop().ok_or("no forwarder")?;
    let broken = built.pop().ok_or("no forwarder")?;
    Ok((broken, fixed))
}

/// alert-forwarder: a publish that fails fails the invocation, and SNS's retry of the same
/// delivery reaches ops (the claim on it was released, not kept as a duplicate); the alert's
/// resolve closes its incident, written to the bucket, and the sweep runs.
async fn retry_after_failed_publish(role: &Role) -> Scenario {
    let iam = enforced();
    let ops = iam.admin().subscribe_queue(&ops_testkit::shared().ops_topic_arn).await;
    let ((broken, broken_calls), (fixed, fixed_calls)) = forwarders(iam, role).await?;
    let title = unique("database is down");
    let alert = Alert::new("health-checker", Severity::Critical, unique("health-checker:db"), title.clone());
    let event = sns_event(&alert.to_body());
    let failed = invoke(&broken, event.clone()).await;
    ensure(failed.as_ref().is_err_and(|e| e.starts_with("ForwardFailed")), format!("must fail: {failed:?}"))?;
    let retried = invoke(&fixed, event).await?;
    ensure(retried["records"][0]["decision"] == "sent", format!("the retry was not sent: {retried}"))?;
    delivered(&ops, &[&title]).await?;
    invoke(&fixed, sns_event(&alert.clone().resolved().to_body())).await?;
    let swept = invoke(&fixed, json!({"sweep": "ended"})).await?;
    ensure(swept["incidents_written"].is_u64(), format!("the sweep ran: {swept}"))?;
    let listed =
        iam.admin().s3.list_objects_v2().bucket(names::backup_bucket()).prefix("reports/incidents/").send().await;
    let keys: Vec<String> =
        listed.map_err(|e| format!("{e:?}"))?.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    let mut written = false;
    for key in &keys {
        let body = iam
            .admin()
            .s3
            .get_object()
            .bucket(names::backup_bucket())
            .key(key)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let bytes = body.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
        written |= String::from_utf8_lossy(&bytes).contains(&alert.dedup_key);
    }
    ensure(written, format!("the closed incident of {} is in the bucket: {keys:?}", alert.dedup_key))?;
    Ok(broken_calls.actions().union(&fixed_calls.actions()).cloned().collect())
}

/// health-checker: a failing app alerts after three runs, the database (credentials from its
/// secret) stays up, and the day's availability is counted.
async fn health(role: &Role) -> Scenario {
    let iam = enforced();
    let admin = iam.admin();
    let alerts = admin.subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let web = ops_testkit::http_targets::Targets::start(10).await;
    let (app, db) = (unique("app"), unique("database"));
    let targets = json!([{"name": app, "kind": "http", "url": web.url("/failing"), "timeout_ms": 1000},
        {"name": db, "kind": "postgres", "secret_arn": names::HEALTH_DATABASE_SECRET}]);
    let sentry = ops_testkit::sentry_events::SentryEvents::start("cineview", "cineview-web").await;
    let read_secret = format!("{}-sentry-read", names::PREFIX);
    // Both tests run this scenario against the one stack: the second puts a new value.
    let value = sentry.secret_json("production");
    if admin.secrets.create_secret().name(&read_secret).secret_string(&value).send().await.is_err() {
        let put = admin.secrets.put_secret_value().secret_id(&read_secret).secret_string(&value);
        put.send().await.map_err(|e| format!("{e:?}"))?;
    }
    let env = [
        ("HEALTH_TARGETS", targets.to_string()),
        ("BACKUP_BUCKET", names::backup_bucket()),
        ("NAME_PREFIX", names::PREFIX.to_owned()),
        ("SENTRY_READ_SECRET_ARN", read_secret),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (startup, calls) = iam.startup(role, &env).await?;
    let handler = health_checker::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(health_checker::FUNCTION_NAME, handler, Scrubber::default());
    for _ in 0..3 {
        invoke(&function, sample_event("health-checker/scheduled.json")).await?;
    }
    let notes = delivered(&alerts, &[&format!("{app} is down")]).await?;
    let app_down = notes.iter().find(|n| n.message.contains(&format!("{app} is down")));
    ensure(app_down.is_some_and(|n| n.attribute("severity") == Some("critical")), "the app alert is critical")?;
    ensure(!notes.iter().any(|n| n.message.contains(&format!("{db} is down"))), "the database is up")?;
    let day = admin
        .dynamodb
        .get_item()
        .table_name(names::STATE_TABLE)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("health-checker#{app}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(format!("day#{}", chrono::Utc::now().format("%Y-%m-%d"))))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    ensure(day.item.is_some_and(|i| i.contains_key("checks")), "availability is counted")?;
    daily_status(&function, &alerts).await?;
    weekly_digest(&function, &alerts).await?;
    let mut used = calls.actions();
    // Read through CloudWatch's Query API, outside the SDK clients that record their calls:
    // the e-mail listing no unreadable alarms is the proof the role allowed it.
    used.insert("cloudwatch:DescribeAlarms".to_owned());
    used.insert("cloudwatch:DescribeAlarmHistory".to_owned());
    Ok(used)
}

/// The daily status e-mail reads the health state, the newest backup and restore report, and
/// the rotated secrets and the alarms in ALARM, each allowed by the role.
async fn daily_status<H: Handler>(function: &Function<H>, alerts: &Inbox) -> Result<(), String> {
    let admin = enforced().admin();
    let bucket = names::backup_bucket();
    let newest = format!("backups/zz-daily-status/{}", unique("fixture"));
    let manifest = json!({"version": 1, "backup_id": "f", "label": null, "database": "app",
        "key": format!("{newest}.dump"), "format": "custom", "server_version": "15", "pg_dump_version": "15",
        "started_at": chrono::Utc::now(), "finished_at": chrono::Utc::now(), "size_bytes": 1, "sha256": "00",
        "snapshot": "s", "part_size_bytes": 1, "parts": 1, "tables": []});
    let report = json!({"version": 1, "result": "passed", "backup_key": "k", "backup_id": "f", "database": "app",
        "backup_started_at": chrono::Utc::now(), "verified_at": chrono::Utc::now(), "size_bytes": 1, "tables": 0,
        "rows": 0, "download_ms": 0, "restore_ms": 0, "checks_ms": 0, "rto_ms": 1, "rto_target_ms": 1800000,
        "rto_met": true, "backup_age_hours": 0.0, "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null,
        "scratch_dropped": true, "checks": [], "failures": [], "report_key": "r"});
    for (key, body) in [
        (format!("{newest}.manifest.json"), manifest),
        (format!("reports/restore-tests/{}.json", unique("zz")), report),
    ] {
        admin
            .s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.to_string().into_bytes().into())
            .send()
            .await
            .map_err(|e| format!("put {key}: {e:?}"))?;
    }
    let answer = invoke(function, json!({"report": "daily"})).await?;
    ensure(answer["report"] == "daily", format!("not a report: {answer}"))?;
    let notes = delivered(alerts, &["Daily ops status"]).await?;
    let note = notes.iter().find(|n| n.message.contains("Daily ops status")).ok_or("no daily status")?;
    ensure(note.message.contains("error rate"), format!("Sentry's numbers are read: {}", note.message))?;
    all_readable(&note.message)
}

/// The weekly digest reads the same sources, and every backup manifest of the week.
async fn weekly_digest<H: Handler>(function: &Function<H>, alerts: &Inbox) -> Result<(), String> {
    let answer = invoke(function, json!({"report": "weekly"})).await?;
    ensure(answer["report"] == "weekly", format!("not a report: {answer}"))?;
    let notes = delivered(alerts, &["Weekly ops digest"]).await?;
    let note = notes.iter().find(|n| n.message.contains("Weekly ops digest")).ok_or("no weekly digest")?;
    ensure(note.message.contains("error events"), format!("Sentry's numbers are read: {}", note.message))?;
    all_readable(&note.message)
}

/// moto does not implement DescribeAlarmHistory (HTTP 500 whoever asks): that line may say so,
/// but never that the role was refused; every other source must be readable. The alert carries
/// the report's text JSON-encoded: a line ends at an escaped newline.
fn all_readable(message: &str) -> Result<(), String> {
    let unreadable: Vec<&str> = message
        .split("CANNOT READ")
        .skip(1)
        .map(|rest| rest.split(['\n', '\\']).next().unwrap_or(rest))
        .filter(|line| !(line.starts_with(" alarm history:") && line.contains("HTTP 500")))
        .collect();
    ensure(unreadable.is_empty(), format!("everything is readable: {message}"))
}

/// A fresh seeded database and a secret (created as the admin) holding its credentials.
async fn database_secret() -> Result<(String, String), String> {
    let name = unique("iam_db").replace('-', "_");
    let creds = ops_testkit::shared().pg.create_seeded_database(&name, Seed::SMALL)?;
    let secret = unique("iam-db-secret");
    enforced()
        .admin()
        .secrets
        .create_secret()
        .name(&secret)
        .secret_string(serde_json::to_string(&creds).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok((name, secret))
}

/// scheduled-backup: a pre-deploy backup puts the dump and its manifest in the bucket.
/// Returns the dump's key and the database's name with the actions used.
async fn backup(role: &Role) -> Result<(String, String, BTreeSet<String>), String> {
    let (database, secret) = database_secret().await?;
    let (startup, calls) = enforced().startup(role, &[("DATABASE_SECRET_ARN", &secret)]).await?;
    let handler = scheduled_backup::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(scheduled_backup::FUNCTION_NAME, handler, Scrubber::default());
    let summary = invoke(&function, json!({"label": "pre-deploy"})).await?;
    let key = summary["key"].as_str().ok_or(format!("no key in {summary}"))?.to_owned();
    let listed = enforced()
        .admin()
        .s3
        .list_objects_v2()
        .bucket(names::backup_bucket())
        .prefix(format!("backups/{database}/"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    ensure(keys.contains(&key.as_str()), format!("{key} is not in the bucket: {keys:?}"))?;
    let manifest = ops_shared::backup::manifest_key(&key);
    ensure(keys.contains(&manifest.as_str()), format!("no manifest beside {key}: {keys:?}"))?;
    Ok((key, database, calls.actions()))
}

/// scheduled-backup: pg_dump dies mid-stream; the upload is aborted and ops are alerted.
async fn failed_backup(role: &Role) -> Scenario {
    let alerts = enforced().admin().subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let (database, secret) = database_secret().await?;
    let (_dir, tools) = ops_testkit::pg::pg_dump_wrapper(
        &ops_testkit::shared().tools_dir,
        15,
        "if [ \"$1\" = --version ]; then REAL --version; exit; fi\nREAL \"$@\" | { head -c 20000; kill -9 $$; }",
    );
    let (startup, calls) =
        enforced().startup(role, &[("DATABASE_SECRET_ARN", &secret), ("PG_TOOLS_DIR", &tools)]).await?;
    let handler = scheduled_backup::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(scheduled_backup::FUNCTION_NAME, handler, Scrubber::default());
    let failed = invoke(&function, json!({})).await;
    ensure(failed.is_err(), format!("the backup must fail: {failed:?}"))?;
    delivered(&alerts, &[&format!("scheduled-backup:{secret}")]).await?;
    let uploads = enforced()
        .admin()
        .s3
        .list_multipart_uploads()
        .bucket(names::backup_bucket())
        .prefix(format!("backups/{database}/"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    ensure(uploads.uploads().is_empty(), "the multipart upload must be aborted")?;
    Ok(calls.actions())
}

/// restore-verifier: a backup (taken with the backup function's own role) is restored and
/// verified; the report is in the bucket and ops hear that it passed.
async fn restore(role: &Role) -> Scenario {
    let iam = enforced();
    let admin = iam.admin();
    let alerts = admin.subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let (key, database, _) = backup(iam.role(scheduled_backup::FUNCTION_NAME)).await?;
    let (startup, calls) = iam.startup(role, &[]).await?;
    let handler = restore_verifier::build(startup).map_err(|e| e.to_string())?;
    let function = Function::new(restore_verifier::FUNCTION_NAME, handler, Scrubber::default());
    let report = invoke(&function, json!({"backup": key})).await?;
    let report_key = report["report_key"].as_str().ok_or(format!("no report key in {report}"))?;
    ensure(report_key.starts_with("reports/restore-tests/"), format!("report at {report_key}"))?;
    admin
        .s3
        .head_object()
        .bucket(names::backup_bucket())
        .key(report_key)
        .send()
        .await
        .map_err(|e| format!("the report {report_key} is not in the bucket: {e:?}"))?;
    delivered(&alerts, &[&format!("Backup/restore successful: {database}")]).await?;
    Ok(calls.actions())
}

/// secret-rotation: a postgres-single-user secret through all four steps; the new password
/// logs in, ops hear of the rotation, and the run is recorded with the function's code hash.
async fn rotation(role: &Role) -> Scenario {
    let iam = enforced();
    let admin = iam.admin();
    let alerts = admin.subscribe_queue(&ops_testkit::shared().alert_topic_arn).await;
    let user = unique("iam_rotated").replace('-', "_");
    let password = uuid::Uuid::new_v4().simple().to_string();
    ops_testkit::shared().pg.psql(
        APP_DATABASE,
        &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&user), quote_literal(&password)),
    )?;
    let mut creds = ops_testkit::shared().pg.superuser(APP_DATABASE);
    creds.username = user.clone();
    creds.password = password.clone().into();
    let secret = unique("iam-rotated");
    admin
        .create_rotated_secret(
            &secret,
            &serde_json::to_string(&creds).map_err(|e| e.to_string())?,
            "postgres-single-user",
        )
        .await?;
    // The function as Lambda knows it, and a state table of the scenario's own.
    let (function_name, table) = (unique("secret-rotation"), unique("iam-rotation-state"));
    let code_sha256 = admin.create_function(&function_name, function_name.as_bytes()).await?;
    ops_testkit::aws::create_state_table(&admin.dynamodb, &table).await?;
    let env = [("AWS_LAMBDA_FUNCTION_NAME", function_name.as_str()), ("STATE_TABLE", table.as_str())];
    let (startup, calls) = iam.startup(role, &env).await?;
    // What the function's `main` wires.
    let config = secret_rotation::RotationConfig::from_env(&startup.env).map_err(|e| e.to_string())?;
    let store = SecretsManagerVersions::new(startup.clients.secrets()).with_scrubber(startup.scrubber.clone());
    let http = ops_shared::http::client(Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let records = secret_rotation::records(&startup, config.staging_prefix.clone());
    let rotator = secret_rotation::Rotator::new(store, startup.alerts, http, config).with_ledger(records);
    let function = Function::new(secret_rotation::FUNCTION_NAME, rotator, Scrubber::default());
    let token = admin.start_rotation(&secret).await?;
    for step in ops_testkit::aws::ROTATION_STEPS {
        let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
        invoke(&function, event).await.map_err(|e| format!("{step}: {e}"))?;
    }
    let current: DbCredentials =
        serde_json::from_str(&read_stage(&admin.secrets, &secret, AWSCURRENT).await.map_err(|e| e.to_string())?.value)
            .map_err(|e| e.to_string())?;
    ensure(*current.password != password, "the password was not rotated")?;
    current.connect(Duration::from_secs(5)).await.map_err(|e| format!("the new password does not log in: {e}"))?;
    delivered(&alerts, &[&format!("Secret rotated: {secret}")]).await?;
    recorded(&admin, &table, &secret, &code_sha256).await?;

    // An API key: its setSecret also lists the secret's versions for keys a cancelled rotation left.
    let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let (engine, initial) = ops_testkit::ai_engine::AiEngine::start(&admin_token).await;
    let admin_secret = unique("iam-ai-engine-admin");
    admin
        .secrets
        .create_secret()
        .name(&admin_secret)
        .secret_string(&admin_token)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let key_secret = unique("iam-ai-engine-api");
    let value = json!({"api_key": initial.key, "key_id": initial.id, "admin_url": engine.admin_url(),
        "check_url": engine.check_url(), "admin_secret_arn": admin_secret});
    admin.create_rotated_secret(&key_secret, &value.to_string(), "http-api-key").await?;
    let token = admin.start_rotation(&key_secret).await?;
    for step in ops_testkit::aws::ROTATION_STEPS {
        let event = json!({"Step": step, "SecretId": key_secret, "ClientRequestToken": token});
        invoke(&function, event).await.map_err(|e| format!("{step}: {e}"))?;
    }
    let notes = delivered(&alerts, &[&format!("Secret rotated: {key_secret}")]).await?;
    let unchecked =
        notes.iter().any(|n| n.message.contains(&format!("Orphan keys of {key_secret} could not be checked")));
    ensure(!unchecked, "the sweep for orphan keys could not list the secret's versions")?;
    Ok(calls.actions())
}

/// The postgres-single-user record in `table` says `secret` finished with `code_sha256`.
async fn recorded(admin: &ops_testkit::aws::Aws, table: &str, secret: &str, code_sha256: &str) -> Result<(), String> {
    let state = ops_shared::state::DynamoState::new(admin.dynamodb.clone(), table);
    let strategy = ops_shared::rotation::Strategy::PostgresSingleUser;
    let record = ops_shared::staging::read_record(&state, strategy).await.map_err(|e| e.to_string())?;
    let last = record.and_then(|r| r.last).ok_or(format!("no run recorded in {table}"))?;
    ensure(last.secret == secret, format!("recorded {} instead of {secret}", last.secret))?;
    ensure(last.outcome == ops_shared::staging::RunOutcome::Finished, format!("recorded {last:?}"))?;
    ensure(last.code_sha256.as_deref() == Some(code_sha256), format!("code hash not recorded: {last:?}"))
}

/// Every scenario of `function` under `role`, and the actions they used together.
async fn scenarios(function: &str, role: &Role) -> Scenario {
    let used = match function {
        "alert-forwarder" => {
            let mut used = forwarding(role).await?;
            used.extend(retry_after_failed_publish(role).await?);
            used
        }
        "sentry-webhook" => sentry_webhook_forwarding(role).await?,
        "health-checker" => health(role).await?,
        "scheduled-backup" => {
            let (_, _, mut used) = backup(role).await?;
            used.extend(failed_backup(role).await?);
            used
        }
        "restore-verifier" => restore(role).await?,
        "secret-rotation" => rotation(role).await?,
        other => return Err(format!("no scenario for {other}")),
    };
    Ok(used)
}

/// Grants no scenario here can use, and why each stays: moto neither encrypts nor asks KMS.
const KEPT: [(&str, &str, &str); 12] = [
    ("secret-rotation", "kms:GenerateDataKey", SNS_KMS),
    ("secret-rotation", "kms:Decrypt", SNS_KMS),
    ("health-checker", "kms:GenerateDataKey", SNS_KMS),
    ("health-checker", "kms:Decrypt", SNS_KMS),
    ("alert-forwarder", "kms:GenerateDataKey", SNS_KMS),
    ("alert-forwarder", "kms:Decrypt", SNS_KMS),
    ("sentry-webhook", "kms:GenerateDataKey", SNS_KMS),
    ("sentry-webhook", "kms:Decrypt", SNS_KMS),
    ("scheduled-backup", "kms:GenerateDataKey", S3_KMS),
    ("scheduled-backup", "kms:Decrypt", S3_KMS),
    ("restore-verifier", "kms:GenerateDataKey", S3_KMS),
    ("restore-verifier", "kms:Decrypt", S3_KMS),
];
const SNS_KMS: &str = "the topics are encrypted with TopicKey: SNS asks KMS on the publisher's behalf";
const S3_KMS: &str =
    "the bucket is encrypted with BackupKey (and alerts with TopicKey): S3 and SNS ask KMS on the caller's behalf";

/// What moto answered to a refused request: its status and error document (the SDKs of the
/// query-protocol services cannot parse moto's error body, so the code is looked for in it).
fn refusal<E>(
    err: &aws_sdk_sns::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> String {
    match err.raw_response() {
        Some(raw) => {
            format!("{} {}", raw.status().as_u16(), String::from_utf8_lossy(raw.body().bytes().unwrap_or_default()))
        }
        None => "no response".to_owned(),
    }
}

#[tokio::test]
async fn enforcement_is_real() {
    let iam = enforced();
    // The stack's unauthenticated test credentials are refused now.
    let anonymous = ops_testkit::aws::Aws::new(ops_testkit::shared()).await;
    let refused = anonymous.sns.list_topics().send().await.expect_err("unknown credentials");
    assert!(refusal(&refused).contains("InvalidClientTokenId"), "{}", refusal(&refused));
    // A role without an action is refused that action and nothing else.
    let role = iam.role(health_checker::FUNCTION_NAME).without("dynamodb:GetItem");
    let sdk = iam.assume(&role).await.expect("assume");
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    let denied = dynamodb
        .get_item()
        .table_name(names::STATE_TABLE)
        .key("pk", key("health-checker#x"))
        .key("sk", key("state"))
        .send()
        .await
        .expect_err("GetItem is not allowed");
    assert!(refusal(&denied).contains("AccessDenied"), "{}", refusal(&denied));
    dynamodb
        .put_item()
        .table_name(names::STATE_TABLE)
        .item("pk", key("health-checker#x"))
        .item("sk", key("state"))
        .send()
        .await
        .expect("PutItem is allowed");
    let outside = aws_sdk_sqs::Client::new(&sdk).list_queues().send().await.expect_err("no SQS grant");
    assert!(refusal(&outside).contains("AccessDenied"), "{}", refusal(&outside));
    // S3 resources are matched: the backup role writes under backups/ only.
    let backup = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&iam.assume(iam.role("scheduled-backup")).await.expect("assume"))
            .force_path_style(true)
            .build(),
    );
    let put = |key: &'static str| {
        backup.put_object().bucket(names::backup_bucket()).key(key).body(Vec::from("x").into()).send()
    };
    put("backups/iam-probe/allowed").await.expect("under backups/");
    let denied = put("reports/iam-probe/denied").await.expect_err("outside backups/");
    assert!(refusal(&denied).contains("AccessDenied"), "{}", refusal(&denied));
}

/// Runs every function's scenarios with its template role (in parallel); then what each role
/// grants that no scenario used must be explained or listed for removal.
#[tokio::test]
async fn each_function_runs_with_its_template_role_and_uses_its_grants() {
    let iam = enforced();
    let runs =
        iam.roles().iter().map(|(function, role)| async move { (function, role, scenarios(function, role).await) });
    let mut failures = Vec::new();
    let mut unused: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, role, outcome) in futures::future::join_all(runs).await {
        let used = match outcome {
            Ok(used) => used,
            Err(err) => {
                failures.push(format!("{function}: {err}"));
                continue;
            }
        };
        let granted = role.actions();
        let not_granted: Vec<_> = used.difference(&granted).collect();
        assert!(not_granted.is_empty(), "{function} used {not_granted:?} without a grant");
        let declared = role.declared_actions();
        let idle: BTreeSet<String> = declared
            .difference(&used)
            .filter(|a| !KEPT.iter().any(|(f, k, _)| f == function && k == a))
            .cloned()
            .collect();
        let kept: Vec<String> = KEPT
            .iter()
            .filter(|(f, a, _)| f == function && declared.contains(*a))
            .map(|(_, a, why)| format!("{a} ({why})"))
            .collect();
        println!(
            "{function}: declared {declared:?}, used {used:?}, unused {idle:?}, kept {kept:?}, added by SAM {:?}",
            role.sam_actions()
        );
        if !idle.is_empty() {
            unused.insert(function.clone(), idle);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        unused.is_empty(),
        "grants no code path uses: remove them from template.yaml, or keep them with a reason: {unused:?}"
    );
}

#[tokio::test]
async fn alert_forwarder_releases_its_claim_after_a_failed_publish() {
    let role = enforced().role(alert_forwarder::FUNCTION_NAME);
    retry_after_failed_publish(role).await.expect("the retry reaches ops");
}

/// Takes each action a scenario uses out of its function's role, one at a time: the scenario
/// must fail every time, or the scenario does not prove the action is needed.
#[tokio::test]
async fn every_used_action_is_needed() {
    let iam = enforced();
    let baseline = iam.roles().iter().map(|(function, role)| async move {
        (function, role, scenarios(function, role).await.unwrap_or_else(|e| panic!("{function}: {e}")))
    });
    let mutants: Vec<(&String, Role, String)> = futures::future::join_all(baseline)
        .await
        .into_iter()
        .flat_map(|(function, role, used)| {
            used.into_iter().map(move |action| (function, role.without(&action), action))
        })
        .collect();
    let runs = mutants.iter().map(|(function, role, action)| async move {
        (format!("{function} without {action}"), scenarios(function, role).await)
    });
    let mut survived = Vec::new();
    for (mutant, outcome) in futures::future::join_all(runs).await {
        match outcome {
            Ok(_) => survived.push(mutant),
            Err(err) => println!("{mutant}: {err}"),
        }
    }
    assert!(survived.is_empty(), "scenarios that pass without an action they use: {survived:#?}");
}
