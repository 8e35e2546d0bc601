//! `cargo xtask demo`: starts the local stack, runs every function binary through the Lambda
//! Runtime API with the sample events in `events/`, prints what happened, stops everything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ops_shared::digest::Week;
use ops_shared::postgres::{DbCredentials, quote_ident, quote_literal};
use ops_shared::secrets::{AWSCURRENT, read_stage};
use ops_testkit::Stack;
use ops_testkit::aws::Aws;
use ops_testkit::runtime_api::{LambdaProcess, Outcome};
use ops_testkit::sentry_events::{SentryEvents, Span};
use ops_testkit::stack::APP_DATABASE;
use serde_json::{Value, json};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

struct Demo {
    bin_dir: PathBuf,
    events_dir: PathBuf,
    stack: Stack,
    aws: Aws,
    problems: Vec<String>,
    /// Set for every opsctl run (the drill's validation queries).
    opsctl_env: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let bin_dir = match (args.next().as_deref(), args.next()) {
        (Some("--bin-dir"), Some(dir)) => PathBuf::from(dir),
        _ => {
            eprintln!("usage: demo --bin-dir <directory with the function binaries>");
            return ExitCode::FAILURE;
        }
    };
    println!("Starting the local stack (moto_server and PostgreSQL on 127.0.0.1)...");
    let started = Instant::now();
    let stack = match Stack::start_async().await {
        Ok(stack) => stack,
        Err(err) => {
            eprintln!("the local stack could not start: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "  moto_server {}  PostgreSQL {} on 127.0.0.1:{}  (up in {:.1}s)\n",
        stack.moto.endpoint(),
        stack.pg.major,
        stack.pg.port,
        started.elapsed().as_secs_f64()
    );
    let aws = Aws::new(&stack).await;
    let events_dir = ops_testkit::workspace_file("events");
    let mut demo = Demo { bin_dir, events_dir, stack, aws, problems: Vec::new(), opsctl_env: Vec::new() };

    demo.secret_rotation().await;
    demo.api_key_rotation().await;
    demo.gemini_key_rotation().await;
    demo.check_env().await;
    demo.backup_and_verify().await;
    demo.engine_task_handoff().await;
    demo.disaster_recovery_drill().await;
    demo.outage_to_email().await;
    demo.incident_log();
    demo.weekly_digest().await;
    demo.sample_events(
        "alert-forwarder",
        &["sns-alert.json", "sns-cloudwatch-alarm.json", "sns-ecs-task-stopped.json"],
    )
    .await;

    let Demo { stack, problems, .. } = demo;
    drop(stack);
    println!("Stopped the local stack; nothing is left running.");
    if problems.is_empty() {
        println!("Demo finished: every step did what it should.");
        ExitCode::SUCCESS
    } else {
        println!("Demo finished with {} problem(s):", problems.len());
        for problem in &problems {
            println!("  - {problem}");
        }
        ExitCode::FAILURE
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(value) => format!("ok: {value}"),
        Outcome::Error { error_type, error_message } => format!("error {error_type}: {error_message}"),
        Outcome::Crashed(reason) => format!("crashed: {reason}"),
    }
}

impl Demo {
    async fn start(&self, function: &str, extra: &[(&str, String)]) -> Option<LambdaProcess> {
        let mut env = self.stack.env();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env.push(("RUST_LOG".into(), "warn".into()));
        match LambdaProcess::start(function, &self.bin_dir.join(function), &env, self.stack.root()).await {
            Ok(process) => Some(process),
            Err(err) => {
                println!("  could not start {function}: {err}");
                None
            }
        }
    }

    async fn sample_events(&mut self, function: &str, events: &[&str]) {
        println!("== {function}");
        let Some(mut process) = self.start(function, &[]).await else {
            self.problems.push(format!("{function} did not start"));
            return;
        };
        for name in events {
            let path = self.events_dir.join(function).join(name);
            let event: Value = match std::fs::read_to_string(&path).map(|raw| serde_json::from_str(&raw)) {
                Ok(Ok(event)) => event,
                _ => {
                    self.problems.push(format!("cannot read {}", path.display()));
                    continue;
                }
            };
            let started = Instant::now();
            let outcome = process.invoke(&event, INVOKE_TIMEOUT).await;
            println!("  events/{function}/{name} -> {} ({} ms)", describe(&outcome), started.elapsed().as_millis());
            if let Outcome::Crashed(_) = outcome {
                self.problems.push(format!("{function} crashed on {name}"));
            }
        }
        process.stop();
        println!();
    }

    /// A real rotation of a Postgres role's secret, step by step through the binary.
    async fn secret_rotation(&mut self) {
        println!("== secret-rotation: rotating a Postgres role's password (postgres-single-user)");
        let secret = "cineview-demo-app-user";
        let initial = "demo-initial-password";
        let mut creds: DbCredentials = self.stack.pg.superuser(APP_DATABASE);
        creds.username = "app_user".to_owned();
        creds.password = initial.to_owned().into();
        let setup = async {
            self.stack.pg.psql(
                APP_DATABASE,
                &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&creds.username), quote_literal(initial)),
            )?;
            self.aws
                .create_rotated_secret(
                    secret,
                    &serde_json::to_string(&creds).map_err(|e| e.to_string())?,
                    "postgres-single-user",
                )
                .await?;
            self.aws.start_rotation(secret).await
        };
        let token = match setup.await {
            Ok(token) => token,
            Err(err) => {
                self.problems.push(format!("rotation set-up failed: {err}"));
                return;
            }
        };
        println!("  secret {secret} for role app_user; Secrets Manager staged version {token} as AWSPENDING");
        self.rotate_through_binary(secret, &token).await;
        if let Err(err) = self.aws.end_rotation(secret, &token).await {
            self.problems.push(err);
        }
        match read_stage(&self.aws.secrets, secret, AWSCURRENT).await {
            Ok(value) => {
                let current: Result<DbCredentials, _> = serde_json::from_str(&value.value);
                let new_works = match &current {
                    Ok(current) => current.connect(Duration::from_secs(5)).await.is_ok(),
                    Err(_) => false,
                };
                let old_works = creds.connect(Duration::from_secs(5)).await.is_ok();
                println!(
                    "  AWSCURRENT is now version {}; new password logs in: {}; old password logs in: {}",
                    value.version_id.unwrap_or_default(),
                    yes(new_works),
                    yes(old_works)
                );
                if !new_works || old_works {
                    self.problems.push("the rotated credential does not behave as expected".into());
                }
            }
            Err(err) => self.problems.push(format!("cannot read the rotated secret: {err}")),
        }
        println!();
    }
}

impl Demo {
    /// Drives the four rotation steps through the secret-rotation binary, as Secrets Manager does.
    async fn rotate_through_binary(&mut self, secret: &str, token: &str) {
        let Some(mut process) = self.start("secret-rotation", &[]).await else {
            self.problems.push("secret-rotation did not start".into());
            return;
        };
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            let started = Instant::now();
            let outcome = process
                .invoke(&json!({"Step": step, "SecretId": secret, "ClientRequestToken": token}), INVOKE_TIMEOUT)
                .await;
            println!("  {step:<13} -> {} ({} ms)", describe(&outcome), started.elapsed().as_millis());
            if !matches!(outcome, Outcome::Response(_)) {
                self.problems.push(format!("rotation step {step} of {secret} failed"));
            }
        }
        process.stop();
    }

    /// The AI engine's API key rotated through its admin API (a local stand-in), step by step.
    async fn api_key_rotation(&mut self) {
        println!("== secret-rotation: rotating the AI engine API key (http-api-key)");
        let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let (engine, initial) = ops_testkit::ai_engine::AiEngine::start(&admin_token).await;
        let admin_secret = "cineview-demo-ai-engine-admin";
        let value = json!({"api_key": initial.key, "key_id": initial.id, "admin_url": engine.admin_url(),
            "check_url": engine.check_url(), "admin_secret_arn": admin_secret});
        let credential = (admin_secret, admin_token.as_str());
        let Some(current) = self.rotate_key("cineview-demo-ai-engine-api", &value, "http-api-key", credential).await
        else {
            return;
        };
        let keys: Vec<String> = engine.keys().into_iter().map(|k| k.id).collect();
        self.report_keys(&keys, engine.key_works(&current), engine.key_works(&initial.key));
    }

    async fn gemini_key_rotation(&mut self) {
        println!("== secret-rotation: rotating the Gemini API key (google-api-key)");
        let (google, initial) = ops_testkit::google::Google::start("cineview-demo").await;
        let account_secret = "cineview-demo-google-service-account";
        let value = json!({"api_key": initial.key_string, "key_id": initial.name, "project": "cineview-demo",
            "service_account_secret_arn": account_secret, "api_url": google.base, "check_url": google.check_url()});
        let credential = (account_secret, google.service_account.as_str());
        let Some(current) = self.rotate_key("cineview-demo-gemini-api", &value, "google-api-key", credential).await
        else {
            return;
        };
        let keys: Vec<String> = google
            .live_keys()
            .into_iter()
            .map(|k| {
                let bound = k.service_account.as_deref().map(|a| format!("bound to {a}")).unwrap_or("standard".into());
                match k.services.as_slice() {
                    [] => format!("{} ({bound}, unrestricted)", k.name),
                    services => format!("{} ({bound}, only {})", k.name, services.join(", ")),
                }
            })
            .collect();
        self.report_keys(&keys, google.key_works(&current), google.key_works(&initial.key_string));
    }

    /// Creates the admin credential secret and the key secret, rotates the key through the
    /// binary and returns the new AWSCURRENT key.
    async fn rotate_key(
        &mut self,
        secret: &str,
        value: &Value,
        strategy: &str,
        (credential_secret, credential): (&str, &str),
    ) -> Option<String> {
        let setup = async {
            self.aws
                .secrets
                .create_secret()
                .name(credential_secret)
                .secret_string(credential)
                .send()
                .await
                .map_err(|e| ops_shared::aws::describe_sdk_error(&e))?;
            self.aws.create_rotated_secret(secret, &value.to_string(), strategy).await?;
            self.aws.start_rotation(secret).await
        };
        let token = match setup.await {
            Ok(token) => token,
            Err(err) => {
                self.problems.push(format!("{strategy} rotation set-up failed: {err}"));
                return None;
            }
        };
        self.rotate_through_binary(secret, &token).await;
        let current = read_stage(&self.aws.secrets, secret, AWSCURRENT)
            .await
            .ok()
            .and_then(|v| serde_json::from_str::<Value>(&v.value).ok())
            .and_then(|v| v.get("api_key").and_then(Value::as_str).map(str::to_owned));
        Some(current.unwrap_or_default())
    }

    fn report_keys(&mut self, keys: &[String], new_works: bool, old_works: bool) {
        println!(
            "  upstream keys: {}; new key works: {}; previous key still works: {}",
            keys.join(", "),
            yes(new_works),
            yes(old_works)
        );
        if !new_works || !old_works {
            self.problems.push("the rotated API keys do not behave as expected".into());
        }
        println!();
    }

    /// A target fails three times, then recovers: the health checker alerts, SNS delivers the
    /// alerts to the forwarder (moto cannot invoke a Lambda, so the demo delivers them as SNS
    /// does), and the forwarder e-mails ops. Prints the two e-mails from the ops topic.
    async fn outage_to_email(&mut self) {
        println!("== health-checker -> alert-forwarder -> ops e-mail");
        let web = ops_testkit::http_targets::Targets::start(10).await;
        let alerts = self.aws.subscribe_queue(&self.stack.alert_topic_arn).await;
        let ops = self.aws.subscribe_queue(&self.stack.ops_topic_arn).await;
        let targets =
            json!([{"name": "app", "kind": "http", "url": web.url("/switch"), "timeout_ms": 2000}]).to_string();
        let Some(mut checker) = self.start("health-checker", &[("HEALTH_TARGETS", targets)]).await else {
            self.problems.push("health-checker did not start".into());
            return;
        };
        let Some(mut forwarder) = self.start("alert-forwarder", &[]).await else {
            self.problems.push("alert-forwarder did not start".into());
            return;
        };
        let scheduled = std::fs::read_to_string(self.events_dir.join("health-checker/scheduled.json"))
            .ok()
            .and_then(|raw| serde_json::from_str::<Value>(&raw).ok())
            .unwrap_or_else(|| json!({}));
        for (minute, healthy) in [false, false, false, true, true].into_iter().enumerate() {
            web.set_healthy(healthy);
            let started = Instant::now();
            let outcome = checker.invoke(&scheduled, INVOKE_TIMEOUT).await;
            let up = match &outcome {
                Outcome::Response(summary) => summary.get("up").and_then(Value::as_u64).unwrap_or(0),
                other => {
                    self.problems.push(format!("health run failed: {}", describe(other)));
                    0
                }
            };
            println!(
                "  minute {}: app {} -> health run {} ms, {} of 1 up",
                minute + 1,
                if healthy { "healthy" } else { "answers HTTP 500" },
                started.elapsed().as_millis(),
                up
            );
            for note in alerts.receive(0, Duration::from_millis(200)).await {
                let forwarded = forwarder.invoke(&self.sns_delivery(&note), INVOKE_TIMEOUT).await;
                println!("    alert \"{}\" -> alert-forwarder: {}", note.alert().title, describe(&forwarded));
            }
        }
        checker.stop();
        forwarder.stop();
        let emails = ops.receive(2, Duration::from_secs(3)).await;
        for email in &emails {
            println!(
                "\n  ---- e-mail to ops (severity attribute: {}) ----",
                email.attribute("severity").unwrap_or("?")
            );
            println!("  Subject: {}", email.subject.as_deref().unwrap_or(""));
            for line in email.message.lines() {
                println!("  {line}");
            }
        }
        if emails.len() != 2 {
            self.problems.push(format!("ops received {} e-mails, expected 2 (down, resolved)", emails.len()));
        }
        println!();
    }

    /// The outage above, as the incident log keeps it: `opsctl incidents`, then its timeline.
    fn incident_log(&mut self) {
        println!("== the incident log: opsctl incidents, and the outage's timeline");
        let Some((stdout, _)) = self.opsctl(&["incidents", "--since", "1d", "--json"]) else { return };
        let incidents: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_default();
        let outage = incidents.iter().find(|i| i["key"] == "health-checker:app" && !i["closed_at"].is_null());
        let Some(id) = outage.and_then(|i| i["id"].as_str()).map(str::to_owned) else {
            self.problems.push(format!("the outage is not a closed incident: {stdout}"));
            return;
        };
        self.opsctl(&["incidents", "--since", "1d"]);
        if let Some((timeline, _)) = self.opsctl(&["incidents", "show", &id])
            && !timeline.contains("resolved health-checker:app")
        {
            self.problems.push("the incident's timeline does not end with the resolve".into());
        }
        println!();
    }

    /// The event SNS would deliver to the forwarder for `note` (moto cannot invoke a Lambda).
    fn sns_delivery(&self, note: &ops_testkit::aws::Notification) -> Value {
        json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{}:demo", self.stack.alert_topic_arn),
            "Sns": {"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
                "TopicArn": self.stack.alert_topic_arn, "Subject": note.subject, "Message": note.message,
                "Timestamp": chrono::Utc::now().to_rfc3339(), "SignatureVersion": "1", "Signature": "",
                "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}]})
    }

    /// The runbook's weekly checks: two weeks of the app's traffic and issues in a Sentry
    /// stand-in, `opsctl digest` for this week, and the Monday e-mail health-checker sends (for
    /// the last whole week) through the forwarder to ops.
    async fn weekly_digest(&mut self) {
        println!("== weekly digest: opsctl digest, and health-checker's Monday e-mail");
        let sentry = SentryEvents::start("cineview", "cineview-web").await;
        let now = chrono::Utc::now();
        let spans = (0..2016).map(|i| {
            let at = now - chrono::Duration::minutes(10 * i64::from(i) + 1);
            let status = if i % 97 == 0 { "internal_error" } else { "ok" };
            let duration = if i % 20 == 19 { 1100.0 } else { 180.0 + f64::from(i % 60) };
            Span::transaction(at, duration, status, "production")
        });
        sentry.add_spans(spans);
        sentry.add_issue("TypeError: cart is undefined", "new", now - chrono::Duration::days(2), now, 14, "production");
        let long_ago = now - chrono::Duration::days(40);
        sentry.add_issue("Timeout calling the AI engine", "regressed", long_ago, now, 6, "production");
        let secret = format!("{}-sentry-read", ops_testkit::names::PREFIX);
        let put = self.aws.secrets.create_secret().name(&secret).secret_string(sentry.secret_json("production"));
        if let Err(err) = put.send().await {
            self.problems.push(format!("cannot create {secret}: {err:?}"));
            return;
        }
        let this_week = Week::last_complete(now + chrono::Duration::days(7)).label;
        if let Some((stdout, _)) = self.opsctl(&["digest", "--week", &this_week])
            && !stdout.contains("error events")
        {
            self.problems.push("opsctl digest shows no Sentry numbers".into());
        }
        let alerts = self.aws.subscribe_queue(&self.stack.alert_topic_arn).await;
        let ops = self.aws.subscribe_queue(&self.stack.ops_topic_arn).await;
        let reports = [
            ("NAME_PREFIX", ops_testkit::names::PREFIX.to_owned()),
            ("SENTRY_READ_SECRET_ARN", secret),
            ("HEALTH_TARGETS", json!([{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]).to_string()),
        ];
        let (Some(mut checker), Some(mut forwarder)) =
            (self.start("health-checker", &reports).await, self.start("alert-forwarder", &[]).await)
        else {
            self.problems.push("health-checker or alert-forwarder did not start".into());
            return;
        };
        let outcome = checker.invoke(&json!({"report": "weekly"}), INVOKE_TIMEOUT).await;
        println!("  health-checker {{\"report\": \"weekly\"}} -> {}", describe(&outcome));
        for note in alerts.receive(1, Duration::from_secs(3)).await {
            forwarder.invoke(&self.sns_delivery(&note), INVOKE_TIMEOUT).await;
        }
        checker.stop();
        forwarder.stop();
        let emails = ops.receive(1, Duration::from_secs(3)).await;
        let digest = emails.iter().find(|e| e.subject.as_deref().is_some_and(|s| s.contains("Weekly ops digest")));
        match digest {
            Some(email) => {
                println!("\n  ---- e-mail to ops ----\n  Subject: {}", email.subject.as_deref().unwrap_or(""));
                for line in email.message.lines() {
                    println!("  {line}");
                }
            }
            None => self.problems.push("ops received no weekly digest".into()),
        }
        println!();
    }

    /// Invokes `function` once with `events/<function>/<event>`.
    async fn invoke_sample(&mut self, function: &str, event: &str) -> Option<Value> {
        let path = self.events_dir.join(function).join(event);
        let Ok(Ok(payload)) = std::fs::read_to_string(&path).map(|raw| serde_json::from_str::<Value>(&raw)) else {
            self.problems.push(format!("cannot read {}", path.display()));
            return None;
        };
        let mut process = self.start(function, &[]).await?;
        let started = Instant::now();
        let outcome = process.invoke(&payload, INVOKE_TIMEOUT).await;
        let elapsed = started.elapsed().as_millis();
        process.stop();
        match outcome {
            Outcome::Response(value) => {
                println!("  events/{function}/{event} -> ok ({elapsed} ms)");
                Some(value)
            }
            other => {
                println!("  events/{function}/{event} -> {}", describe(&other));
                self.problems.push(format!("{function} failed on {event}"));
                None
            }
        }
    }

    /// The nightly backup of the seeded database, then the monthly restore test of it.
    async fn backup_and_verify(&mut self) {
        println!("== scheduled-backup: nightly backup of the seeded database");
        if let Some(summary) = self.invoke_sample("scheduled-backup", "scheduled.json").await {
            let text = |k: &str| summary.get(k).map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default();
            println!("  object   s3://{}/{}", ops_testkit::names::backup_bucket(), text("key"));
            println!("  size     {} bytes, sha256 {}", text("size_bytes"), text("sha256"));
            println!("  content  {} tables, {} rows counted in the dump's snapshot", text("tables"), text("rows"));
            println!("  took     {} ms; Supabase platform backups: {}", text("duration_ms"), text("platform_backups"));
        }
        println!();
        println!("== restore-verifier: restore test of the latest backup");
        if let Some(report) = self.invoke_sample("restore-verifier", "latest.json").await {
            let number = |k: &str| report.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            println!("  result   {}", report.get("result").and_then(Value::as_str).unwrap_or("?"));
            for check in report.get("checks").and_then(Value::as_array).into_iter().flatten() {
                let passed = check.get("passed").and_then(Value::as_bool).unwrap_or(false);
                let name = check.get("name").and_then(Value::as_str).unwrap_or("?");
                println!("  {} {name}", if passed { "ok  " } else { "FAIL" });
            }
            println!(
                "  RTO      {:.1} s (download {} ms, restore {} ms, checks {} ms; target {} min)",
                number("rto_ms") / 1000.0,
                number("download_ms"),
                number("restore_ms"),
                number("checks_ms"),
                number("rto_target_ms") / 60_000.0
            );
            println!(
                "  RPO      backup age {:.2} h (target {} h)",
                number("backup_age_hours"),
                number("rpo_target_hours")
            );
            println!("  report   {}", report.get("report_key").and_then(Value::as_str).unwrap_or("?"));
            println!(
                "  scratch database dropped: {}",
                yes(report.get("scratch_dropped").and_then(Value::as_bool).unwrap_or(false))
            );
            if report.get("result").and_then(Value::as_str) != Some("passed") {
                self.problems.push("the restore test did not pass".into());
            }
        }
        println!();
    }

    /// With `BackupRuntime=fargate` the backup function starts the engine task instead
    /// (`RunTask` in the local AWS stand-in), and the engine-task binary does what ECS runs.
    async fn engine_task_handoff(&mut self) {
        println!("== scheduled-backup with BackupRuntime=fargate: handed to the engine task");
        let engine = match ops_testkit::ecs::EngineTask::create(&self.aws.sdk, "cineview-engine").await {
            Ok(engine) => engine,
            Err(err) => return self.problems.push(format!("the engine task's cluster: {err}")),
        };
        let task = &engine.config;
        let env = [
            ("BACKUP_RUNTIME", "fargate".to_owned()),
            ("TASK_CLUSTER_ARN", task.cluster.clone()),
            ("TASK_DEFINITION_ARN", task.task_definition.clone()),
            ("TASK_SUBNETS", task.subnets.join(",")),
        ];
        let Some(mut process) = self.start("scheduled-backup", &env).await else {
            return self.problems.push("scheduled-backup did not start".into());
        };
        let outcome = process.invoke(&json!({}), INVOKE_TIMEOUT).await;
        process.stop();
        let Outcome::Response(handed) = outcome else {
            return self.problems.push(format!("the handoff: {}", describe(&outcome)));
        };
        println!("  task     {}", handed["task_arn"].as_str().unwrap_or("?"));
        println!("  why      {}", handed["reason"].as_str().unwrap_or("?"));
        let tasks = engine.tasks().await.unwrap_or_default();
        let command: Vec<String> = tasks
            .first()
            .and_then(|t| t["overrides"]["containerOverrides"][0]["command"].as_array())
            .map(|c| c.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        println!(
            "  ECS runs `engine-task {}` in the image (`cargo xtask image`); here, the same binary:",
            command.join(" ")
        );
        let mut run = std::process::Command::new(self.bin_dir.join("engine-task"));
        run.args(&command).envs(self.stack.env()).env("RUST_LOG", "warn");
        match run.output() {
            Ok(out) if out.status.success() => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let metric = stdout.lines().any(|l| l.contains("\"BackupSucceeded\":1.0"));
                println!("  engine-task exited 0; BackupSucceeded metric written: {}", yes(metric));
            }
            Ok(out) => self.problems.push(format!("engine-task failed: {}", String::from_utf8_lossy(&out.stderr))),
            Err(err) => self.problems.push(format!("engine-task did not start: {err}")),
        }
        println!();
    }

    /// `opsctl check-env` against the stack, as ops would run it before a deploy. The Gemini
    /// secret points at a Google stand-in, which check-env asks which key it holds.
    async fn check_env(&mut self) {
        println!("== opsctl check-env");
        let (google, key) = ops_testkit::google::Google::start("cineview-local").await;
        if let Err(err) = google.point_runbook_secrets(&self.aws.secrets, ops_testkit::names::PREFIX, &key).await {
            self.problems.push(format!("cannot point the Gemini secret at the stand-in: {err}"));
        }
        let Some((stdout, code)) = self.opsctl(&["check-env"]) else { return };
        // The local stack runs the functions as processes and has no Sentry project, e-mail or
        // pager: those gaps are what check-env must name, each with its fix; anything else
        // (a secret's shape, its rotation) is a problem of the demo's stack.
        let only_a_deploy_makes =
            ["is not deployed", "subscription", "sentry-api", "Sentry alert rules", "sentry-read", "Sentry's numbers"];
        let unexpected: Vec<&str> = stdout
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("PROBLEM"))
            .filter(|line| !only_a_deploy_makes.iter().any(|gap| line.contains(gap)))
            .collect();
        match (code, unexpected.is_empty()) {
            (Some(1), true) => println!("  the secrets are as the runbook wants; the rest is what a deploy makes"),
            _ => self
                .problems
                .push(format!("check-env (exit {code:?}) found problems a deploy does not fix: {unexpected:?}")),
        }
        println!();
    }
}

impl Demo {
    /// Runs `opsctl <args>` against the stack, printing its output indented; its stdout and
    /// exit code.
    fn opsctl(&mut self, args: &[&str]) -> Option<(String, Option<i32>)> {
        println!("  $ opsctl {}", args.join(" "));
        let output = std::process::Command::new(self.bin_dir.join("opsctl"))
            .args(args)
            .env_clear()
            .envs(self.stack.env())
            .env("SENTRY_DSN", "https://publickey@sentry.invalid/1")
            .env("SENTRY_ENVIRONMENT", "local")
            .envs(self.opsctl_env.iter().cloned())
            .output();
        match output {
            Ok(output) => {
                // Progress (stderr) comes before the result (stdout).
                for line in String::from_utf8_lossy(&output.stderr).lines() {
                    println!("    {line}");
                }
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                if !args.contains(&"--json") {
                    for line in stdout.lines() {
                        println!("    {line}");
                    }
                }
                Some((stdout, output.status.code()))
            }
            Err(err) => {
                self.problems.push(format!("cannot run opsctl: {err}"));
                None
            }
        }
    }

    /// The runbook's disaster recovery, end to end with opsctl, on a project built as Supabase
    /// builds one (PostgreSQL 17), through its demoted `postgres` as production's secret holds
    /// it: a backup; an incident deletes the app's messages and documents; writes are stopped
    /// (the Data API's too), the backups judged, the newest restored (safety backup first,
    /// checks after) and writes allowed again, each step telling a stakeholders' topic too
    /// (`--notify-topic`), whose notices are printed. The secret is put back afterwards.
    async fn disaster_recovery_drill(&mut self) {
        println!("== disaster-recovery drill on a Supabase project, as its postgres role");
        let server = self.stack.supabase(17);
        let project = match server.create_project("drill") {
            Ok(project) => project,
            Err(err) => {
                self.problems.push(format!("drill: cannot make the Supabase project: {err}"));
                return;
            }
        };
        let secret = ops_testkit::names::DATABASE_SECRET;
        let previous = ops_shared::secrets::read_stage(&self.aws.secrets, secret, "AWSCURRENT").await;
        let Ok(previous) = previous else {
            self.problems.push(format!("drill: cannot read {secret}"));
            return;
        };
        let value = serde_json::to_string(&project).unwrap_or_default();
        if let Err(err) = self.aws.secrets.put_secret_value().secret_id(secret).secret_string(value).send().await {
            self.problems.push(format!("drill: cannot point {secret} at the project: {err:?}"));
            return;
        }
        println!("  production ({secret}) is the project's database, as postgres");
        // A restore test needs a staging server of the project's major version (a PostgreSQL 17
        // dump does not restore into 15): the drill's staging is this server.
        let staging = ops_testkit::names::STAGING_DATABASE_SECRET;
        let previous_staging = ops_shared::secrets::read_stage(&self.aws.secrets, staging, "AWSCURRENT").await;
        let staging_value = serde_json::to_string(&server.pg.superuser("postgres")).unwrap_or_default();
        let pointed = self.aws.secrets.put_secret_value().secret_id(staging).secret_string(staging_value).send().await;
        if let Err(err) = pointed {
            self.problems.push(format!("drill: cannot point {staging} at a PostgreSQL 17 server: {err:?}"));
        }
        println!("  staging ({staging}) is a PostgreSQL 17 server built as Supabase builds one");
        let checks: Vec<_> = ops_testkit::supabase_schema::validation_queries()
            .into_iter()
            .map(|(name, sql)| serde_json::json!({"name": name, "sql": sql}))
            .collect();
        self.opsctl_env = vec![("VALIDATION_QUERIES".to_owned(), Value::Array(checks).to_string())];
        self.drill_on(&project).await;
        self.opsctl_env.clear();
        let restored = self.aws.secrets.put_secret_value().secret_id(secret).secret_string(previous.value).send().await;
        if let Err(err) = restored {
            self.problems.push(format!("drill: cannot put {secret} back: {err:?}"));
        }
        if let Ok(previous) = previous_staging {
            let put = self.aws.secrets.put_secret_value().secret_id(staging).secret_string(previous.value);
            if let Err(err) = put.send().await {
                self.problems.push(format!("drill: cannot put {staging} back: {err:?}"));
            }
        }
        println!();
    }

    async fn drill_on(&mut self, project: &DbCredentials) {
        let tools = self.stack.tools_dir.display().to_string();
        self.opsctl(&["backup", "--local", "--pg-tools", &tools]);
        let count = "SELECT (SELECT count(*) FROM public.messages) + (SELECT count(*) FROM public.documents)";
        // A session of its own per step: the freeze ends every open session of the database.
        let query = |sql: &'static str| {
            let project = project.clone();
            async move {
                let client = project.connect(Duration::from_secs(5)).await.map_err(|e| e.to_string())?;
                client.batch_execute(sql).await.map_err(|e| ops_shared::postgres::describe(&e))?;
                match client.query_one(count, &[]).await {
                    Ok(row) => Ok::<i64, String>(row.get(0)),
                    Err(err) => Err(ops_shared::postgres::describe(&err)),
                }
            }
        };
        let before = query("SELECT 1").await.unwrap_or(-1);
        if let Err(err) = query("DELETE FROM public.messages; DELETE FROM public.documents").await {
            self.problems.push(format!("drill: cannot stage the incident: {err}"));
            return;
        }
        println!("  the incident: every message and document deleted ({before} rows)");
        let user = query_text(project, "SELECT id::text FROM auth.users ORDER BY email LIMIT 1").await;
        let post =
            format!("INSERT INTO public.messages (author, body) VALUES ('{user}', 'a post through the Data API')");
        let topic = self.aws.create_topic("cineview-stakeholders").await;
        let stakeholders = self.aws.subscribe_queue(&topic).await;
        let alerts = self.aws.subscribe_queue(&self.stack.alert_topic_arn).await;
        println!("  the stakeholders' topic: {topic}, a queue subscribed as their e-mail would be");
        let notify = ["--notify-topic", topic.as_str()];
        let started = Instant::now();
        let reason = "drill: every message and document was deleted";
        self.opsctl(&[&["dr", "freeze", "--reason", reason][..], &notify].concat());
        self.told_stakeholders(&stakeholders, "dr freeze").await;
        let refused = self.stack.supabase(17).data_api_write(&project.dbname, "authenticated", &user, &post).await;
        println!(
            "  a Data API write while frozen (authenticator, READ WRITE, as authenticated): {}",
            match &refused {
                Err(err) => format!("refused ({err})"),
                Ok(rows) => format!("WENT THROUGH ({rows} row)"),
            }
        );
        let assessed = self.opsctl(&[&["dr", "assess", "--json"][..], &notify].concat());
        let assessment = assessed.and_then(|(stdout, _)| serde_json::from_str::<Value>(&stdout).ok());
        if let Some(advice) = assessment.as_ref().and_then(|a| a["advice"].as_str()) {
            println!("    advice: {advice}");
        }
        self.told_stakeholders(&stakeholders, "dr assess").await;
        let newest = assessment.and_then(|a| a["newest"][0]["key"].as_str().map(str::to_owned));
        let Some(newest) = newest else {
            self.problems.push("drill: dr assess named no backup".into());
            self.opsctl(&[&["dr", "thaw"][..], &notify].concat());
            return;
        };
        println!("    newest backup: {newest}");
        // `--confirm` names the host as well: on Supabase every database is called `postgres`.
        let confirm = format!("{}/{}", project.host, project.dbname);
        let secret = ops_testkit::names::DATABASE_SECRET;
        let restore = ["dr", "restore", "--backup", &newest, "--target", secret, "--confirm", &confirm];
        let restored = self.opsctl(&[&restore[..], &["--pg-tools", &tools], &notify].concat());
        self.told_stakeholders(&stakeholders, "dr restore").await;
        self.opsctl(&[&["dr", "thaw"][..], &notify].concat());
        self.told_stakeholders(&stakeholders, "dr thaw").await;
        let rto = started.elapsed();
        let after = query("SELECT 1").await;
        let written = self.stack.supabase(17).data_api_write(&project.dbname, "authenticated", &user, &post).await;
        let validated = after.as_ref().is_ok_and(|&rows| rows == before) && written == Ok(1);
        println!(
            "  validated: {} messages and documents back, the Data API writes again: {}",
            after.as_ref().map_or(-1, |rows| *rows),
            if validated { "yes" } else { "NO" }
        );
        println!("  drill RTO (freeze to thaw): {:.1} s", rto.as_secs_f64());
        self.drill_incident(&alerts).await;
        if refused.is_ok() || restored.is_none_or(|(_, code)| code != Some(0)) || !validated {
            self.problems.push("the disaster-recovery drill did not freeze and restore the project".into());
        }
    }
}

impl Demo {
    /// The drill's alerts through the forwarder (as SNS would deliver them), and the incident
    /// they make: opened by the freeze, joined by the assessment, closed by the thaw.
    async fn drill_incident(&mut self, alerts: &ops_testkit::aws::Inbox) {
        let Some(mut forwarder) = self.start("alert-forwarder", &[]).await else {
            self.problems.push("alert-forwarder did not start".into());
            return;
        };
        for note in alerts.receive(4, Duration::from_secs(3)).await {
            let forwarded = forwarder.invoke(&self.sns_delivery(&note), INVOKE_TIMEOUT).await;
            println!("  alert \"{}\" -> alert-forwarder: {}", note.alert().title, describe(&forwarded));
        }
        forwarder.stop();
        let Some((stdout, _)) = self.opsctl(&["incidents", "--since", "1d", "--json"]) else { return };
        let incidents: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_default();
        let drill = incidents.iter().find(|i| {
            i["key"].as_str().is_some_and(|k| k.starts_with("opsctl:dr-freeze:")) && !i["closed_at"].is_null()
        });
        match drill.and_then(|i| i["id"].as_str()).map(str::to_owned) {
            Some(id) => {
                self.opsctl(&["incidents", "show", &id]);
            }
            None => self.problems.push(format!("drill: no closed incident of the write freeze: {stdout}")),
        }
    }

    /// Prints the notice a drill step sent the stakeholders' topic, as their e-mail shows it.
    async fn told_stakeholders(&mut self, inbox: &ops_testkit::aws::Inbox, step: &str) {
        let notices = inbox.receive(1, Duration::from_secs(3)).await;
        for notice in &notices {
            println!("    ---- e-mail to the stakeholders ----");
            println!("    Subject: {}", notice.subject.as_deref().unwrap_or(""));
            for line in notice.message.lines() {
                println!("    {line}");
            }
        }
        if notices.len() != 1 {
            self.problems.push(format!("drill: {step} told the stakeholders {} times, not once", notices.len()));
        }
    }
}

/// The first column of the first row of `sql`, as text (empty when it fails).
async fn query_text(creds: &DbCredentials, sql: &str) -> String {
    match creds.connect(Duration::from_secs(5)).await {
        Ok(client) => client.query_one(sql, &[]).await.map(|row| row.get::<_, String>(0)).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
