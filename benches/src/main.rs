//! `cargo xtask bench`: the figures in BENCHMARKS.md, measured against the local stack with the
//! release binaries run under the Lambda Runtime API emulator, each next to its baseline.

mod cgroup;
mod power;
mod s3_sink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ops_shared::pgtools::{PgTool, PgTools, Tool};
use ops_shared::postgres::{DbCredentials, quote_ident, quote_literal};
use ops_testkit::Stack;
use ops_testkit::aws::{Aws, ROTATION_STEPS};
use ops_testkit::http_targets::Targets;
use ops_testkit::pg::Postgres;
use ops_testkit::runtime_api::{LambdaProcess, Outcome};
use ops_testkit::stack::APP_DATABASE;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(900);
const ROTATIONS: usize = 5;

struct Bench {
    bin_dir: PathBuf,
    stack: Stack,
    aws: Aws,
    cold: ColdOptions,
    /// The AWS CLI for the operator's baseline, `pg_dump | aws s3 cp -`.
    aws_cli: Option<PathBuf>,
}

/// What the cold-start rounds compare besides the functions and the floor.
struct ColdOptions {
    /// The Python anchor's interpreter (a virtual environment with awslambdaric and boto3) and
    /// the directory of its handler module.
    python: Option<(PathBuf, PathBuf)>,
    /// Earlier builds of the functions, run in the same rounds and labelled "before".
    before: Option<PathBuf>,
}

const USAGE: &str = "usage: ops-bench --bin-dir <release binaries> [--quick | --large <GB>] [--cold-start | --power] \
    [--python <interpreter> --python-handler <dir>] [--before <earlier release binaries>] [--aws-cli <aws>]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // opsctl's engines run in this process: their metric records would land in the report.
    ops_shared::telemetry::silence_metrics();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let Some(bin_dir) = value("--bin-dir") else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let python = match (value("--python"), value("--python-handler")) {
        (Some(python), Some(dir)) => Some((python, dir)),
        (None, None) => None,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let cold = ColdOptions { python, before: value("--before") };
    // Only the cold-start section: a quick way to re-measure start-up work.
    let cold_only = args.iter().any(|a| a == "--cold-start");
    let quick = args.iter().any(|a| a == "--quick");
    // Only the Supabase section: dr restore of a Supabase-built project's dump.
    let supabase_only = args.iter().any(|a| a == "--supabase");
    // Only the memory sizes: each function's work under Lambda's CPU share per size.
    let power = args.iter().any(|a| a == "--power");
    let large_gb = args.iter().position(|a| a == "--large").and_then(|i| args.get(i + 1)?.parse::<u32>().ok());
    let large = large_gb.is_some();
    let aws_cli = value("--aws-cli");
    let size = |scale, payload_rows, label: String, compression| Size {
        scale,
        payload_rows,
        label,
        rounds: if large { 1 } else { 3 },
        large,
        compression,
    };
    // --quick: 20 MB and 100 MB instead of 100 MB and 1 GB; --large GB: only the backup of GB.
    let sizes = if let Some(gb) = large_gb {
        vec![size(33 * gb, 2_000_000 * gb, format!("{gb} GB"), false)]
    } else if quick {
        vec![size(1, 40_000, "20 MB".into(), false), size(3, 200_000, "100 MB".into(), true)]
    } else {
        vec![size(3, 200_000, "100 MB".into(), false), size(33, 2_000_000, "1 GB".into(), true)]
    };
    let stack = match Stack::start_async().await {
        Ok(stack) => stack,
        Err(err) => {
            eprintln!("the local stack could not start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let aws = Aws::new(&stack).await;
    let bench = Bench { bin_dir, stack, aws, cold, aws_cli };
    println!(
        "Benchmarks on {} cores, {}, release binaries, local stack (moto + PostgreSQL {})\n",
        cores(),
        chrono::Utc::now().format("%Y-%m-%d"),
        bench.stack.pg.major
    );
    let result = async {
        if power {
            return bench.power(sizes.last().ok_or("no size")?).await;
        }
        if supabase_only {
            let one_gb = sizes.last().ok_or("no size")?;
            return bench.supabase_dr_restore(one_gb).await;
        }
        if !large {
            bench.cold_starts().await?;
            if cold_only {
                return Ok(());
            }
            bench.rotation().await?;
            bench.health().await?;
            bench.forwarder().await?;
            bench.sentry_webhook().await?;
        }
        for size in &sizes {
            bench.backup(size).await?;
        }
        if !large {
            bench.supabase_dr_restore(sizes.last().ok_or("no size")?).await?;
        }
        Ok::<_, String>(())
    }
    .await;
    drop(bench);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The phases of a backup, as its summary reports them (`ops_shared::backup::BackupPhases`).
const BACKUP_PHASES: [&str; 5] = ["open_ms", "dump_ms", "counts_ms", "complete_ms", "manifest_ms"];

const FUNCTIONS: [&str; 5] =
    ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"];

/// The start-up phases in the order a cold start runs them (`ops_shared::phases::Phases`).
const PHASES: [&str; 8] =
    ["logging", "config", "sentry", "sdk_config", "aws_clients", "shared_state", "build", "runtime"];

/// How one process of the cold-start rounds is started.
enum Start {
    Binary { path: PathBuf, env: Vec<(&'static str, String)> },
    Python { python: PathBuf, dir: PathBuf },
}

/// One process of the cold-start rounds and what its starts measured.
struct Contender {
    /// The function's name (its log file, `AWS_LAMBDA_FUNCTION_NAME`).
    name: String,
    label: String,
    start: Start,
    binary_bytes: Option<u64>,
    /// Milliseconds to the first `invocation/next`, to the first answer; peak RSS and the
    /// process's own part of it (anonymous) at the answer, in MB.
    init: Vec<f64>,
    answer: Vec<f64>,
    rss: Vec<f64>,
    anon: Vec<f64>,
    /// Microseconds per start-up phase (the functions only).
    phases: BTreeMap<String, Vec<f64>>,
}

impl Contender {
    fn new(name: &str, label: &str, start: Start) -> Self {
        Contender {
            name: name.to_owned(),
            label: label.to_owned(),
            start,
            binary_bytes: None,
            init: Vec::new(),
            answer: Vec::new(),
            rss: Vec::new(),
            anon: Vec::new(),
            phases: BTreeMap::new(),
        }
    }
}

/// `awslambdaric <version> + boto3 <version>` as installed for `python`.
fn python_versions(python: &Path) -> Result<String, String> {
    let output = Command::new(python)
        .args(["-c", "import importlib.metadata as m; print(m.version('awslambdaric'), m.version('boto3'))"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.split_whitespace().collect::<Vec<_>>().as_slice() {
        [ric, boto3] if output.status.success() => Ok(format!("awslambdaric {ric} + boto3 {boto3}")),
        _ => Err(format!(
            "{} has no awslambdaric and boto3: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn stats(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    let p95 = samples.get(((samples.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    (mean, p95)
}

/// The `q`-quantile (0..=1) of sorted `samples`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Bench {
    /// Starts `function` with the stack's environment at `RUST_LOG=warn`, `extra` on top.
    async fn start(&self, function: &str, extra: &[(&str, String)]) -> Result<LambdaProcess, String> {
        self.start_binary(function, &self.bin_dir.join(function), extra).await
    }

    async fn start_binary(&self, name: &str, binary: &Path, extra: &[(&str, String)]) -> Result<LambdaProcess, String> {
        LambdaProcess::start(name, binary, &self.function_env(extra), self.stack.root()).await
    }

    /// The stack's environment at `RUST_LOG=warn`, `extra` on top.
    fn function_env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = self.stack.env();
        env.push(("RUST_LOG".into(), "warn".into()));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }

    async fn invoke_ok(&self, process: &mut LambdaProcess, event: &Value) -> Result<(Value, Duration), String> {
        let started = Instant::now();
        match process.invoke(event, TIMEOUT).await {
            Outcome::Response(value) => Ok((value, started.elapsed())),
            other => Err(format!("invocation failed: {other:?}\n{}", process.logs())),
        }
    }

    fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        self.stack.pg.psql(db, sql)
    }

    async fn secret(&self, name: &str, creds: &DbCredentials) -> Result<(), String> {
        let value = serde_json::to_string(creds).map_err(|e| e.to_string())?;
        self.aws.secrets.create_secret().name(name).secret_string(value).send().await.map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Process start to first answer for every function beside the floor (a `lambda_runtime`
    /// hello world) and the Python anchor, started alternately round after round, with each
    /// function's start-up phases as its `start-up phases` log line reports them.
    async fn cold_starts(&self) -> Result<(), String> {
        const ROUNDS: usize = 15;
        let targets = json!([{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]).to_string();
        // At INFO, as the template runs them: the phases line is INFO.
        let env = vec![("HEALTH_TARGETS", targets), ("RUST_LOG", "info".to_owned())];
        let ingest = ops_testkit::sentry_ingest::SentryIngest::start().await;
        let mut contenders = vec![Contender::new(
            "hello",
            "floor: lambda_runtime hello world",
            Start::Binary { path: self.bin_dir.join("hello"), env: Vec::new() },
        )];
        let mut add_functions = |dir: &Path, suffix: &str| {
            for function in FUNCTIONS {
                let start = Start::Binary { path: dir.join(function), env: env.clone() };
                contenders.push(Contender::new(function, &format!("{function}{suffix}"), start));
            }
            // Production sets a DSN: Sentry's start-up work only shows with one.
            let mut with_dsn = env.clone();
            with_dsn.push(("SENTRY_DSN", ingest.dsn.clone()));
            let start = Start::Binary { path: dir.join("secret-rotation"), env: with_dsn };
            let label = format!("secret-rotation{suffix}, SENTRY_DSN set");
            contenders.push(Contender::new("secret-rotation", &label, start));
        };
        add_functions(&self.bin_dir, "");
        if let Some(before) = &self.cold.before {
            add_functions(before, " (before)");
        }
        let anchor = match &self.cold.python {
            Some((python, dir)) => {
                let label = format!("Python anchor: {}, rotation handler", python_versions(python)?);
                contenders.push(Contender::new(
                    "python-anchor",
                    &label,
                    Start::Python { python: python.clone(), dir: dir.clone() },
                ));
                Some(contenders.len() - 1)
            }
            None => None,
        };
        // Every other round runs backwards, so no process always follows the same one.
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        for _ in 0..ROUNDS {
            for &i in &order {
                self.cold_start(&mut contenders[i]).await?;
            }
            order.reverse();
        }

        println!(
            "## Cold start: process start to first answer (one invalid event; {ROUNDS} rounds, \
             each process in turn, medians)\n"
        );
        let floor = median(&contenders[0].answer);
        let (anchor_answer, anchor_rss) =
            anchor.map(|i| (median(&contenders[i].answer), median(&contenders[i].rss))).unwrap_or((0.0, 0.0));
        println!(
            "| process | binary | init (to first poll) | first answer | × floor | × Python | peak RSS | RSS × Python \
             | of it anonymous |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for contender in &contenders {
            let (answer, rss) = (median(&contender.answer), median(&contender.rss));
            let binary = contender.binary_bytes.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_default();
            let vs_python =
                |ours: f64, theirs: f64| if theirs > 0.0 { format!("{:.3}", ours / theirs) } else { String::new() };
            println!(
                "| {} | {binary} | {:.1} ms | {answer:.1} ms | {:.2} | {} | {rss:.1} MB | {} | {:.1} MB |",
                contender.label,
                median(&contender.init),
                answer / floor,
                vs_python(answer, anchor_answer),
                vs_python(rss, anchor_rss),
                median(&contender.anon),
            );
        }
        println!(
            "\n## Cold start phases (µs, medians of each start's `start-up phases` log line; outside: the first \
             answer less the phases, i.e. exec and loading before `main`, then handling the event and answering)\n"
        );
        println!("| function | {} | total | outside |", PHASES.join(" | "));
        println!("|---|{}---|---|", "---|".repeat(PHASES.len()));
        for contender in contenders.iter().filter(|c| !c.phases.is_empty()) {
            let cells: Vec<String> = PHASES
                .iter()
                .map(|phase| contender.phases.get(*phase).map(|v| format!("{:.0}", median(v))).unwrap_or_default())
                .collect();
            let total = contender.phases.get("total").map(|v| median(v)).unwrap_or(0.0);
            let outside = median(&contender.answer) * 1000.0 - total;
            println!("| {} | {} | {total:.0} | {outside:.0} |", contender.label, cells.join(" | "));
        }
        println!();
        Ok(())
    }

    /// One cold start of `contender`: start, one invalid event, stop.
    async fn cold_start(&self, contender: &mut Contender) -> Result<(), String> {
        let mut process = match &contender.start {
            Start::Binary { path, env } => self.start_binary(&contender.name, path, env).await?,
            Start::Python { python, dir } => {
                let mut command = Command::new(python);
                command.args(["-m", "awslambdaric", "rotation.handler"]).current_dir(dir);
                let mut env = self.stack.env();
                // Lambda's Python runtime sets both; boto3 reads the second.
                env.push(("AWS_DEFAULT_REGION".into(), ops_testkit::names::REGION.into()));
                // Lambda's task root is read-only: no bytecode cache beside the handler.
                env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
                LambdaProcess::start_command(&contender.name, command, &env, self.stack.root()).await?
            }
        };
        let outcome = process.invoke(&json!({"not": "an event of this function"}), TIMEOUT).await;
        let answer = process.started().elapsed();
        if !matches!(outcome, Outcome::Error { .. }) {
            return Err(format!("{}: expected an error answer, got {outcome:?}\n{}", contender.label, process.logs()));
        }
        let init = process.init_duration().ok_or("answered without asking for an event")?;
        contender.answer.push(ms(answer));
        contender.init.push(ms(init));
        contender.rss.push(process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0);
        contender.anon.push(process.anon_rss_kib().unwrap_or(0) as f64 / 1024.0);
        let logs = process.stop();
        let phases = logs
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line.get("message").and_then(Value::as_str) == Some("start-up phases"));
        if let Some(Value::Object(fields)) = phases {
            for (key, value) in fields {
                if let (Some(phase), Some(us)) = (key.strip_prefix("phases_us."), value.as_f64()) {
                    contender.phases.entry(phase.to_owned()).or_default().push(us);
                }
            }
        }
        if contender.binary_bytes.is_none()
            && let Start::Binary { path, .. } = &contender.start
        {
            contender.binary_bytes = std::fs::metadata(path).map(|m| m.len()).ok();
        }
        Ok(())
    }

    /// Time per rotation step: a Postgres password, and a Gemini key against the Google
    /// stand-in (service-account token, key create and delete operations, model list).
    async fn rotation(&self) -> Result<(), String> {
        let database = "bench-rotation";
        self.postgres_rotated_secret(database, "bench_user").await?;

        let gemini = "bench-gemini-api";
        let (google, initial) = ops_testkit::google::Google::start("bench-project").await;
        // Operations report done on the first poll, so the figures show our side, not a wait.
        google.set_operation_polls(1);
        let account = "bench-google-service-account";
        self.aws
            .secrets
            .create_secret()
            .name(account)
            .secret_string(&google.service_account)
            .send()
            .await
            .map_err(|e| ops_shared::aws::describe_sdk_error(&e))?;
        let value = json!({"api_key": initial.key_string, "key_id": initial.name, "project": "bench-project",
            "service_account_secret_arn": account, "api_url": google.base, "check_url": google.check_url()});
        self.aws.create_rotated_secret(gemini, &value.to_string(), "google-api-key").await?;

        let mut postgres = self.rotation_times(database).await?;
        let mut google_key = self.rotation_times(gemini).await?;
        println!("## secret-rotation: time per step ({ROTATIONS} rotations each, invoke round trip)\n");
        println!("| step | postgres-single-user mean | p95 | google-api-key mean | p95 |\n|---|---|---|---|---|");
        for (step, (pg, key)) in ROTATION_STEPS.iter().zip(postgres.iter_mut().zip(google_key.iter_mut())) {
            let ((pg_mean, pg_p95), (key_mean, key_p95)) = (stats(pg), stats(key));
            println!("| {step} | {pg_mean:.1} ms | {pg_p95:.1} ms | {key_mean:.1} ms | {key_p95:.1} ms |");
        }
        println!();
        Ok(())
    }

    /// A `postgres-single-user` secret `name` for a new login role `role` of the app database.
    async fn postgres_rotated_secret(&self, name: &str, role: &str) -> Result<(), String> {
        let mut creds = self.stack.pg.superuser(APP_DATABASE);
        creds.username = role.into();
        creds.password = "bench-initial-password".to_owned().into();
        self.psql(
            APP_DATABASE,
            &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&creds.username), quote_literal(&creds.password)),
        )?;
        let value = serde_json::to_string(&creds).map_err(|e| e.to_string())?;
        self.aws.create_rotated_secret(name, &value, "postgres-single-user").await
    }

    /// Milliseconds per step of `ROTATIONS` rotations of `secret`, one process for all.
    async fn rotation_times(&self, secret: &str) -> Result<Vec<Vec<f64>>, String> {
        let mut process = self.start("secret-rotation", &[]).await?;
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ROTATION_STEPS.len()];
        for _ in 0..ROTATIONS {
            let token = self.aws.start_rotation(secret).await?;
            for (i, step) in ROTATION_STEPS.iter().enumerate() {
                let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
                let (_, took) = self.invoke_ok(&mut process, &event).await?;
                times[i].push(ms(took));
            }
            self.aws.end_rotation(secret, &token).await?;
        }
        process.stop();
        Ok(times)
    }

    /// One health run over the runbook's three targets (app, AI engine, database).
    async fn health(&self) -> Result<(), String> {
        const RUNS: usize = 30;
        let (_web, targets) = health_targets().await;
        let mut process = self.start("health-checker", &[("HEALTH_TARGETS", targets)]).await?;
        let mut samples = Vec::new();
        for _ in 0..RUNS {
            let (_, took) = self.invoke_ok(&mut process, &json!({})).await?;
            samples.push(ms(took));
        }
        process.stop();
        let first = samples[0];
        let (mean, p95) = stats(&mut samples[1..].to_vec());
        println!("## health-checker: one run, 3 targets (app, AI engine, database), state in DynamoDB\n");
        println!(
            "| run | mean | p95 |\n|---|---|---|\n| first (cold clients) | {first:.1} ms | |\n \
             | next {} | {mean:.1} ms | {p95:.1} ms |\n",
            RUNS - 1
        );
        Ok(())
    }

    /// Per-record handling of distinct alerts and of duplicates.
    async fn forwarder(&self) -> Result<(), String> {
        const RECORDS: usize = 200;
        let mut process = self.start("alert-forwarder", &[]).await?;
        let record = sns_record;
        let (mut distinct, mut duplicate) = (Vec::new(), Vec::new());
        for i in 0..RECORDS {
            let (_, took) =
                self.invoke_ok(&mut process, &record(&uuid::Uuid::new_v4().to_string(), &format!("bench:{i}"))).await?;
            distinct.push(ms(took));
        }
        let same = record("bench-duplicate", "bench:dup");
        for _ in 0..RECORDS {
            let (_, took) = self.invoke_ok(&mut process, &same).await?;
            duplicate.push(ms(took));
        }
        process.stop();
        let (d_mean, d_p95) = stats(&mut distinct);
        let (u_mean, u_p95) = stats(&mut duplicate);
        println!("## alert-forwarder: per SNS record ({RECORDS} each, invoke round trip)\n");
        println!(
            "| record | mean | p95 |\n|---|---|---|\n| new alert, e-mailed | {d_mean:.1} ms | {d_p95:.1} ms |\n \
             | duplicate delivery | {u_mean:.1} ms | {u_p95:.1} ms |\n"
        );
        Ok(())
    }

    /// Time to answer a Sentry webhook on the Function URL, which Sentry wants within 1 s:
    /// from process start (cold) and on a warm process, each a new signed metric alert.
    async fn sentry_webhook(&self) -> Result<(), String> {
        const COLD: usize = 9;
        const WARM: usize = 300;
        let secret = ops_shared::secrets::read_stage(
            &self.aws.secrets,
            ops_testkit::names::SENTRY_WEBHOOK_SECRET,
            ops_shared::secrets::AWSCURRENT,
        )
        .await
        .map_err(|e| e.to_string())?
        .value;
        let request = |incident: usize| -> Result<Value, String> {
            let body = json!({"action": "critical", "data": {"metric_alert": {"id": incident.to_string(),
                "alert_rule": {"id": "7", "name": "P95 > 3000ms"}, "status": 20,
                "date_detected": "2026-11-26T03:00:00Z"},
                "description_text": "P95 3412ms", "web_url": "https://sentry.io/alerts/1/"}})
            .to_string();
            let signature = alert_forwarder::sentry::sign(secret.trim().as_bytes(), body.as_bytes())
                .ok_or("cannot sign with the webhook secret")?;
            let now = chrono::Utc::now().timestamp();
            Ok(json!({"version": "2.0", "rawPath": "/", "rawQueryString": "",
                "headers": {"content-type": "application/json", "sentry-hook-resource": "metric_alert",
                    "sentry-hook-timestamp": now.to_string(), "sentry-hook-signature": signature,
                    "request-id": uuid::Uuid::new_v4().simple().to_string()},
                "requestContext": {"accountId": "anonymous", "apiId": "bench",
                "domainName": "bench.lambda-url.us-east-1.on.aws",
                    "domainPrefix": "bench", "requestId": uuid::Uuid::new_v4().to_string(),
                    "routeKey": "$default", "stage": "$default",
                    "time": "26/Nov/2026:03:05:12 +0000", "timeEpoch": now * 1000,
                    "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                        "sourceIp": "35.184.238.160", "userAgent": "Sentry"}},
                "body": body, "isBase64Encoded": false}))
        };
        let answered = |answer: &Value| answer.get("statusCode").and_then(Value::as_i64) == Some(202);
        let base = uuid::Uuid::new_v4().as_u128() as usize % 1_000_000_000;
        // The first request's own start-up work (its first AWS connection) only shows here, so
        // earlier binaries, when given, take turns with the current ones.
        let mut builds = vec![(String::new(), self.bin_dir.join("alert-forwarder"), Vec::new())];
        if let Some(before) = &self.cold.before {
            builds.push((" (before)".to_owned(), before.join("alert-forwarder"), Vec::new()));
        }
        let mut incident = base;
        for _ in 0..COLD {
            for (_, binary, cold) in &mut builds {
                let mut process = self.start_binary("alert-forwarder", binary, &[]).await?;
                let (answer, _) = self.invoke_ok(&mut process, &request(incident)?).await?;
                cold.push(ms(process.started().elapsed()));
                process.stop();
                incident += 1;
                if !answered(&answer) {
                    return Err(format!("the webhook was not accepted: {answer}"));
                }
            }
        }
        let mut process = self.start("alert-forwarder", &[]).await?;
        let mut warm = Vec::new();
        for i in 0..WARM {
            let (answer, took) = self.invoke_ok(&mut process, &request(incident + i)?).await?;
            if !answered(&answer) {
                return Err(format!("the webhook was not accepted: {answer}"));
            }
            warm.push(ms(took));
        }
        process.stop();
        warm.sort_by(f64::total_cmp);
        println!(
            "## alert-forwarder: answering a Sentry webhook (Sentry waits 1 s; verify, route, e-mail, answer)
"
        );
        println!("| process | p50 | p99 | max |\n|---|---|---|---|");
        for (label, _, cold) in &mut builds {
            cold.sort_by(f64::total_cmp);
            println!(
                "| cold{label}: process start to answer ({COLD} starts) | {:.1} ms | | {:.1} ms |",
                quantile(cold, 0.5),
                quantile(cold, 1.0)
            );
        }
        println!(
            "| warm ({WARM} webhooks) | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            quantile(&warm, 0.5),
            quantile(&warm, 0.99),
            quantile(&warm, 1.0)
        );
        Ok(())
    }

    /// A database of `scale` pgbench accounts and `payload_rows` rows of random hex on `pg`, a
    /// secret for it, its size on disk and the time it took to generate.
    async fn generate(&self, pg: &Postgres, db: &str, scale: u32, payload_rows: u32) -> Result<Generated, String> {
        pg.psql("postgres", &format!("CREATE DATABASE {}", quote_ident(db)))?;
        let creds = pg.superuser(db);
        let bin = ops_testkit::pg::find_bin_dir()?;
        let started = Instant::now();
        run(Command::new(bin.join("pgbench"))
            .args(["-i", "-q", "-I", "dtGvp", "-s", &scale.to_string()])
            .args(conn(&creds))
            .env("PGPASSWORD", creds.password.expose()))?;
        pg.psql(
            db,
            &format!(
                "CREATE TABLE payload AS SELECT i AS id, md5(random()::text) || md5(random()::text) \
                 || md5(random()::text) \
                 || md5(random()::text) || md5(random()::text) || md5(random()::text) AS data \
                 FROM generate_series(1, {payload_rows}) AS i; ALTER TABLE payload ADD PRIMARY KEY (id)"
            ),
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let bytes: i64 =
            pg.psql(db, "SELECT pg_database_size(current_database())")?.parse().map_err(|e| format!("{e}"))?;
        let secret = format!("bench-db-{db}");
        self.secret(&secret, &creds).await?;
        Ok(Generated { creds, secret, bytes, seconds })
    }

    /// `pg_dump -Fc [--compress=...] > /dev/null`: the bare dump every backup is measured against.
    async fn bare_dump(&self, pg_dump: &PgTool, creds: &DbCredentials, compress: Option<&str>) -> Result<f64, String> {
        let mut command = pg_dump.command();
        command.arg("-Fc").args(compress.map(|c| format!("--compress={c}"))).args(conn(creds));
        command.env("PGPASSWORD", creds.password.expose()).stdout(Stdio::null());
        let started = Instant::now();
        run_async(&mut command).await?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// What an operator would type: `pg_dump -Fc | aws s3 cp - s3://<bucket>/<key>`, to moto.
    async fn cli_backup(&self, aws: &std::path::Path, pg_dump: &PgTool, creds: &DbCredentials) -> Result<f64, String> {
        let key = format!("bench-cli/{}.dump", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let mut dump = pg_dump.command();
        dump.arg("-Fc").args(conn(creds)).env("PGPASSWORD", creds.password.expose()).stdout(Stdio::piped());
        let mut dump = dump.spawn().map_err(|e| format!("pg_dump: {e}"))?;
        let stdout: Stdio = dump.stdout.take().ok_or("no pg_dump output")?.try_into().map_err(|e| format!("{e}"))?;
        let mut copy = tokio::process::Command::new(aws);
        copy.args(["s3", "cp", "-", &format!("s3://{}/{key}", ops_testkit::names::backup_bucket())])
            .args(["--endpoint-url", &self.stack.moto.endpoint(), "--only-show-errors"])
            .envs(self.stack.env())
            .env("AWS_DEFAULT_REGION", ops_testkit::names::REGION)
            .stdin(stdout);
        let copied = copy.output().await.map_err(|e| format!("aws: {e}"))?;
        let dumped = dump.wait().await.map_err(|e| format!("pg_dump: {e}"))?;
        if !copied.status.success() || !dumped.success() {
            return Err(format!("the CLI backup failed: {}", String::from_utf8_lossy(&copied.stderr)));
        }
        let seconds = started.elapsed().as_secs_f64();
        self.delete(&key).await?;
        Ok(seconds)
    }

    /// One backup by the release binary: its summary, time and peak RSS.
    async fn run_backup(&self, env: &[(&str, String)]) -> Result<(Value, f64, f64), String> {
        self.backup_with(self.start("scheduled-backup", env).await?).await
    }

    /// [`Bench::run_backup`] by a started `process`.
    async fn backup_with(&self, mut process: LambdaProcess) -> Result<(Value, f64, f64), String> {
        let (summary, took) = self.invoke_ok(&mut process, &json!({})).await?;
        let rss = process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        process.stop();
        Ok((summary, took.as_secs_f64(), rss))
    }

    /// One restore test by the release binary of backup `key`: the report, time and peak RSS.
    async fn run_verify(&self, prefix: &str, key: &str, jobs: u32) -> Result<(Value, f64, f64), String> {
        let queries = json!([{"name": "accounts exist", "sql": "SELECT EXISTS (SELECT 1 FROM pgbench_accounts)"}]);
        let env = [
            ("BACKUP_PREFIX", prefix.to_owned()),
            ("VALIDATION_QUERIES", queries.to_string()),
            ("RESTORE_JOBS", jobs.to_string()),
        ];
        let mut verifier = self.start("restore-verifier", &env).await?;
        let (report, took) = self.invoke_ok(&mut verifier, &json!({"backup": key})).await?;
        let rss = verifier.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        verifier.stop();
        if report.get("result").and_then(Value::as_str) != Some("passed") {
            return Err(format!("restore verification failed: {report}"));
        }
        Ok((report, took.as_secs_f64(), rss))
    }

    /// `pg_restore [-j N]` of `file` into a new empty database, created and dropped untimed.
    async fn bare_restore(&self, pg_restore: &PgTool, file: &std::path::Path, jobs: u32) -> Result<f64, String> {
        let scratch = format!("bench_restore_{}", uuid::Uuid::new_v4().simple());
        self.psql("postgres", &format!("CREATE DATABASE {}", quote_ident(&scratch)))?;
        let target = self.stack.pg.superuser(&scratch);
        let mut command = pg_restore.command();
        command.args(conn(&target)).arg(format!("--jobs={jobs}")).arg(file).env("PGPASSWORD", target.password.expose());
        let started = Instant::now();
        run_async(&mut command).await?;
        let seconds = started.elapsed().as_secs_f64();
        self.psql("postgres", &format!("DROP DATABASE {}", quote_ident(&scratch)))?;
        Ok(seconds)
    }

    /// A backup and its manifest, gone (moto keeps objects in memory and temp files).
    async fn delete(&self, key: &str) -> Result<(), String> {
        for key in [key.to_owned(), ops_shared::backup::manifest_key(key)] {
            let deleted = self.aws.s3.delete_object().bucket(ops_testkit::names::backup_bucket()).key(key).send();
            deleted.await.map_err(|e| ops_shared::aws::describe_sdk_error(&e))?;
        }
        Ok(())
    }

    /// Our backup beside a bare `pg_dump -Fc > /dev/null` and beside `pg_dump -Fc | aws s3 cp -`,
    /// and restore verification beside a bare `pg_restore` of the same file, each measured in
    /// interleaved rounds (A, B, A, B...) and reported as medians. `size.large`: the backup only.
    async fn backup(&self, size: &Size) -> Result<(), String> {
        let Size { scale, payload_rows, rounds, .. } = *size;
        let label = &size.label;
        let db = format!("bench_s{scale}");
        let generated = self.generate(&self.stack.pg, &db, scale, payload_rows).await?;
        let creds = &generated.creds;
        println!(
            "## Backup and restore of a {label} database (pgbench scale {scale} + {payload_rows} rows of random \
             hex: {:.0} MB on disk, generated in {:.0} s; PostgreSQL 15, medians of {rounds} interleaved rounds)\n",
            generated.bytes as f64 / 1e6,
            generated.seconds
        );
        let tools = PgTools::open(&self.stack.tools_dir).map_err(|e| e.to_string())?;
        let pg_dump = tools.pick(Tool::PgDump, self.stack.pg.major).map_err(|e| e.to_string())?;
        let prefix = format!("bench-{scale}/");
        let backup_env = |prefix: &str| {
            vec![("DATABASE_SECRET_ARN", generated.secret.clone()), ("BACKUP_PREFIX", prefix.to_owned())]
        };
        let sink = s3_sink::S3Sink::start().await?;
        let mut sunk = Vec::new();
        let (mut bare, mut cli, mut ours, mut small) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut rss, mut small_rss, mut dump_bytes, mut key) = (0.0_f64, 0.0_f64, 0, String::new());
        let mut phases: [Vec<f64>; 5] = Default::default();
        for _ in 0..rounds {
            bare.push(self.bare_dump(&pg_dump, creds, None).await?);
            let (summary, took, peak) = self.run_backup(&backup_env(&prefix)).await?;
            ours.push(took);
            for (phase, field) in phases.iter_mut().zip(BACKUP_PHASES) {
                phase.push(
                    summary.pointer(&format!("/phases/{field}")).and_then(Value::as_u64).unwrap_or(0) as f64 / 1000.0,
                );
            }
            rss = rss.max(peak);
            dump_bytes = summary.get("size_bytes").and_then(Value::as_u64).unwrap_or(0);
            if !key.is_empty() {
                self.delete(&key).await?;
            }
            key = summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?.to_owned();
            if let Some(aws) = &self.aws_cli {
                cli.push(self.cli_backup(aws, &pg_dump, creds).await?);
            }
            let sink_env = backup_env(&format!("bench-{scale}-sink/"));
            let env = sink.env(self.function_env(&sink_env), &self.stack.moto.endpoint());
            let binary = self.bin_dir.join("scheduled-backup");
            let process = LambdaProcess::start("scheduled-backup", &binary, &env, self.stack.root()).await?;
            sunk.push(self.backup_with(process).await?.1);
            if !size.large {
                // The smallest parts S3 allows: memory follows the part size, not the database.
                let mut env = backup_env(&format!("bench-{scale}-5mib/"));
                env.push(("PART_SIZE_MIB", "5".into()));
                let (summary, took, peak) = self.run_backup(&env).await?;
                small.push(took);
                small_rss = small_rss.max(peak);
                self.delete(summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?).await?;
            }
        }
        let (bare, cli, ours) = (median(&bare), median(&cli), median(&ours));
        let vs_cli = |t: f64| if cli > 0.0 { format!("{:.2}", t / cli) } else { "n/a".to_owned() };
        println!("| step | time | vs `pg_dump > /dev/null` | vs `pg_dump \\| aws s3 cp -` | peak RSS |");
        println!("|---|---|---|---|---|");
        println!("| `pg_dump -Fc > /dev/null` (baseline) | {bare:.2} s | 1.00 | | |");
        if cli > 0.0 {
            let ratio = cli / bare;
            println!("| `pg_dump -Fc \\| aws s3 cp - s3://...` (baseline) | {cli:.2} s | {ratio:.2} | 1.00 | |");
        }
        println!(
            "| scheduled-backup: snapshot, counts, dump streamed to S3 in 16 MiB parts ({} parts), SHA-256, \
             manifest ({:.0} MB dump) | {ours:.2} s | {:.2} | {} | {rss:.1} MB |",
            dump_bytes.div_ceil(16 * 1024 * 1024),
            dump_bytes as f64 / 1e6,
            ours / bare,
            vs_cli(ours)
        );
        let sunk = median(&sunk);
        println!(
            "| the same to an S3 stand-in that discards the parts and costs no CPU ({:.0} MB received) | {sunk:.2} s \
             | {:.2} | {} | |",
            sink.received() as f64 / 1e6 / rounds as f64,
            sunk / bare,
            vs_cli(sunk)
        );
        if !small.is_empty() {
            let small = median(&small);
            println!(
                "| the same with `PART_SIZE_MIB=5` ({} parts) | {small:.2} s | {:.2} | {} | {small_rss:.1} MB |",
                dump_bytes.div_ceil(5 * 1024 * 1024),
                small / bare,
                vs_cli(small)
            );
        }
        let [open, dump, counts, complete, manifest] = phases.map(|p| median(&p));
        println!(
            "\nscheduled-backup with 16 MiB parts, by phase: secret, connection and snapshot {open:.2} s, dump \
             streamed to S3 until pg_dump exits and the last part is uploaded {dump:.2} s (beside it the row \
             counts {counts:.2} s), CompleteMultipartUpload {complete:.2} s, manifest {manifest:.2} s\n"
        );
        if !size.large {
            self.restore(&tools, &prefix, &key, rounds).await?;
            self.dr_restore_into_the_source(&prefix, &key, &generated.secret, &db).await?;
        }
        self.delete(&key).await?;
        self.psql("postgres", &format!("DROP DATABASE {}", quote_ident(&db)))?;
        if size.compression {
            self.compression(size).await?;
        }
        Ok(())
    }

    /// Restore verification of backup `key` (one job and the default two) beside a bare
    /// single-job `pg_restore` of the same file into an empty database.
    async fn restore(&self, tools: &PgTools, prefix: &str, key: &str, rounds: usize) -> Result<(), String> {
        let pg_restore = tools.pick(Tool::PgRestore, self.stack.pg.major).map_err(|e| e.to_string())?;
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let object = self.aws.s3.get_object().bucket(ops_testkit::names::backup_bucket()).key(key).send().await;
        let body = object.map_err(|e| format!("{e:?}"))?.body.collect().await.map_err(|e| e.to_string())?;
        std::fs::write(file.path(), body.into_bytes()).map_err(|e| e.to_string())?;
        let (mut bare, mut bare_parallel, mut single, mut parallel) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut single_rss, mut parallel_rss) = (0.0_f64, 0.0_f64);
        let mut phases: [Vec<f64>; 3] = Default::default();
        for _ in 0..rounds {
            bare.push(self.bare_restore(&pg_restore, file.path(), 1).await?);
            let (_, took, rss) = self.run_verify(prefix, key, 1).await?;
            single.push(took);
            single_rss = single_rss.max(rss);
            bare_parallel.push(self.bare_restore(&pg_restore, file.path(), 2).await?);
            let (report, took, rss) = self.run_verify(prefix, key, 2).await?;
            parallel.push(took);
            parallel_rss = parallel_rss.max(rss);
            for (phase, field) in phases.iter_mut().zip(["download_ms", "restore_ms", "checks_ms"]) {
                phase.push(report.get(field).and_then(Value::as_u64).unwrap_or(0) as f64 / 1000.0);
            }
        }
        let bare = median(&bare);
        println!("| step | time | vs single-job `pg_restore` | peak RSS |\n|---|---|---|---|");
        println!("| `pg_restore` of the same file into an empty database (baseline) | {bare:.2} s | 1.00 | |");
        let bare_parallel = median(&bare_parallel);
        println!("| `pg_restore -j2`, the same | {bare_parallel:.2} s | {:.2} | |", bare_parallel / bare);
        let single = median(&single);
        println!(
            "| restore-verifier, `RESTORE_JOBS=1` (single transaction): download, size + SHA-256, restore, \
             row counts, queries, drop | {single:.2} s | {:.2} | {single_rss:.1} MB |",
            single / bare
        );
        let parallel = median(&parallel);
        println!(
            "| restore-verifier, default `RESTORE_JOBS=2` (`pg_restore -j2`): the same | {parallel:.2} s | {:.2} | \
             {parallel_rss:.1} MB |",
            parallel / bare
        );
        let [download, restore, checks] = phases.map(|p| median(&p));
        println!(
            "\nrestore-verifier with 2 jobs, by phase: download + size + SHA-256 {download:.2} s, pg_restore \
             {restore:.2} s, row counts + queries {checks:.2} s; the rest is start-up, scratch database \
             create and drop\n"
        );
        self.dr_restore(&pg_restore, file.path(), prefix, key, rounds).await
    }

    /// One `opsctl dr restore` of `key` into the database behind `secret`, with opsctl's
    /// library in this process: its outcome and wall time.
    async fn opsctl_dr_restore(
        &self,
        prefix: &str,
        key: &str,
        secret: &str,
        database: &str,
    ) -> Result<(opsctl::dr_restore::RestoreOutcome, f64), String> {
        // Beside `pg_restore -j2`, as before `--jobs` existed (the restore's default is 1).
        let host = self.stack.pg.superuser(database).host;
        self.opsctl_dr_restore_with(prefix, key, secret, &format!("{host}/{database}"), 2).await
    }

    /// [`Bench::opsctl_dr_restore`] confirming `confirm` (`host/database`) with `jobs`.
    async fn opsctl_dr_restore_with(
        &self,
        prefix: &str,
        key: &str,
        secret: &str,
        confirm: &str,
        jobs: u32,
    ) -> Result<(opsctl::dr_restore::RestoreOutcome, f64), String> {
        use opsctl::dr_restore::{Engines, RestoreRequest, restore};
        use opsctl::stack::{Reach, Stack};
        let stack = Stack {
            prefix: "bench".into(),
            account: ops_testkit::names::ACCOUNT_ID.into(),
            region: ops_testkit::names::REGION.into(),
            bucket: Some(ops_testkit::names::backup_bucket()),
        };
        self.aws.sns.create_topic().name("bench-ops-alerts").send().await.map_err(|e| format!("{e:?}"))?;
        let http = ops_shared::http::client(Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let reach = Reach::new(&self.aws.sdk, &stack, http.clone());
        let queries = json!([{"name": "accounts exist", "sql": "SELECT EXISTS (SELECT 1 FROM pgbench_accounts)"}]);
        let env = ops_shared::Env::from_pairs([
            ("BACKUP_PREFIX", prefix.to_owned()),
            ("VALIDATION_QUERIES", queries.to_string()),
            ("RESTORE_JOBS", "2".to_owned()),
        ]);
        let tools = self.stack.tools_dir.display().to_string();
        let verifier = opsctl::on_demand::verifier_engine(&reach, &stack, &env, secret, &tools);
        let safety = opsctl::on_demand::backup_engine(&reach, &stack, &env, secret, &tools);
        let (verifier, safety) = (verifier.map_err(|e| e.to_string())?, safety.map_err(|e| e.to_string())?);
        // --untested: the restore alone is measured, so no restore test on a staging server first.
        let engines = Engines { verifier: &verifier, staging: &verifier, safety: &safety, http: &http };
        let request = RestoreRequest {
            backup_key: key.to_owned(),
            target_secret: secret.to_owned(),
            confirm: Some(confirm.to_owned()),
            jobs,
            health_urls: Vec::new(),
            untested: true,
        };
        let started = Instant::now();
        let outcome = restore(&engines, &request, &opsctl::progress::Progress::quiet()).await;
        let took = started.elapsed().as_secs_f64();
        let outcome = outcome.map_err(|e| e.to_string())?;
        if !outcome.passed {
            return Err(format!("dr restore failed: {:?}", outcome.failures));
        }
        Ok((outcome, took))
    }

    /// `opsctl dr restore` of backup `key` back into the database it was taken from, as after
    /// an incident that damaged a part of it: the safety backup is then a full backup.
    async fn dr_restore_into_the_source(&self, prefix: &str, key: &str, secret: &str, db: &str) -> Result<(), String> {
        let (outcome, took) = self.opsctl_dr_restore(prefix, key, secret, db).await?;
        println!(
            "`opsctl dr restore` into the database the backup was taken from (one run): {took:.2} s: download + \
             size + SHA-256 {:.2} s, beside it the safety backup of the full database {:.2} s, pg_restore --clean \
             {:.2} s, checks {:.2} s\n",
            outcome.download_ms as f64 / 1000.0,
            outcome.safety_backup_ms as f64 / 1000.0,
            outcome.restore_ms as f64 / 1000.0,
            outcome.checks_ms as f64 / 1000.0
        );
        self.delete(&outcome.safety_backup_key).await
    }

    /// `opsctl dr restore` of backup `key` into an empty database (a lost one recreated), run
    /// with opsctl's library in this process, beside `pg_restore -j2` of the same file into an
    /// empty database, in interleaved rounds.
    async fn dr_restore(
        &self,
        pg_restore: &PgTool,
        file: &std::path::Path,
        prefix: &str,
        key: &str,
        rounds: usize,
    ) -> Result<(), String> {
        let mut phases: [Vec<f64>; 4] = Default::default();
        let (mut bare, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            bare.push(self.bare_restore(pg_restore, file, 2).await?);
            let target = format!("bench_dr_{}", uuid::Uuid::new_v4().simple());
            self.psql("postgres", &format!("CREATE DATABASE {}", quote_ident(&target)))?;
            let secret = format!("bench-dr-{target}");
            self.secret(&secret, &self.stack.pg.superuser(&target)).await?;
            let (outcome, took) = self.opsctl_dr_restore(prefix, key, &secret, &target).await?;
            ours.push(took);
            let fields = [outcome.download_ms, outcome.safety_backup_ms, outcome.restore_ms, outcome.checks_ms];
            for (phase, ms) in phases.iter_mut().zip(fields) {
                phase.push(ms as f64 / 1000.0);
            }
            self.delete(&outcome.safety_backup_key).await?;
            self.psql("postgres", &format!("DROP DATABASE {} WITH (FORCE)", quote_ident(&target)))?;
        }
        let (bare, ours) = (median(&bare), median(&ours));
        println!("| step | time | vs `pg_restore -j2` |\n|---|---|---|");
        println!("| `pg_restore -j2` of the same file into an empty database (baseline) | {bare:.2} s | 1.00 |");
        println!(
            "| `opsctl dr restore` into an empty database: secret, download, size + SHA-256, safety backup, \
             `pg_restore --clean --if-exists -j2`, row counts, queries, health, journal, alert | {ours:.2} s | {:.2} |",
            ours / bare
        );
        let [download, safety, restore, checks] = phases.map(|p| median(&p));
        println!(
            "\n`opsctl dr restore` by phase: download + size + SHA-256 {download:.2} s, beside it the safety \
             backup of the (empty) target {safety:.2} s, pg_restore {restore:.2} s, row counts + queries + health \
             {checks:.2} s\n"
        );
        Ok(())
    }

    /// `opsctl dr restore` of a Supabase project's dump, connected as the demoted `postgres`, in
    /// one transaction, into an empty project (a lost one made again: Supabase's own objects
    /// only), beside `pg_restore --single-transaction` of the same dump into an empty database,
    /// in interleaved rounds. The project: a server built as Supabase builds one (PostgreSQL 17),
    /// its app the pgbench tables and the payload made by `postgres`, and its users.
    async fn supabase_dr_restore(&self, size: &Size) -> Result<(), String> {
        let Size { scale, payload_rows, rounds, .. } = *size;
        let server = self.stack.supabase(17);
        let db = format!("bench_supabase_s{scale}");
        let creds = server.create_project(&db)?;
        let bin = ops_testkit::pg::find_bin_dir()?;
        let started = Instant::now();
        run(Command::new(bin.join("pgbench"))
            .args(["-i", "-q", "-I", "dtGvp", "-s", &scale.to_string()])
            .args(conn(&creds))
            .env("PGPASSWORD", creds.password.expose())
            .env("PGSSLMODE", "disable"))?;
        server.pg.psql(
            &db,
            &format!(
                "SET ROLE postgres; CREATE TABLE payload AS SELECT i AS id, md5(random()::text) || \
                 md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) || \
                 md5(random()::text) AS data FROM generate_series(1, {payload_rows}) AS i; \
                 ALTER TABLE payload ADD PRIMARY KEY (id)"
            ),
        )?;
        let bytes: i64 =
            server.pg.psql(&db, "SELECT pg_database_size(current_database())")?.parse().map_err(|e| format!("{e}"))?;
        println!(
            "## `opsctl dr restore` of a Supabase project ({:.0} MB on disk, made in {:.0} s; PostgreSQL 17 built as \
             Supabase builds it, connected as the demoted `postgres`; medians of {rounds} interleaved rounds)\n",
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        let secret = format!("bench-db-{db}");
        self.secret(&secret, &creds).await?;
        let prefix = format!("bench-supabase-{scale}/");
        let env = [("DATABASE_SECRET_ARN", secret.clone()), ("BACKUP_PREFIX", prefix.clone())];
        let (summary, _, _) = self.run_backup(&env).await?;
        let key = summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?.to_owned();
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let object = self.aws.s3.get_object().bucket(ops_testkit::names::backup_bucket()).key(&key).send().await;
        let body = object.map_err(|e| format!("{e:?}"))?.body.collect().await.map_err(|e| e.to_string())?;
        std::fs::write(file.path(), body.into_bytes()).map_err(|e| e.to_string())?;
        let tools = PgTools::open(&self.stack.tools_dir).map_err(|e| e.to_string())?;
        let pg_restore = tools.pick(Tool::PgRestore, 17).map_err(|e| e.to_string())?;
        // What every database has already: the dump names `public`, whose CREATE would fail.
        let listed = pg_restore.command().arg("--list").arg(file.path()).output().await.map_err(|e| e.to_string())?;
        let list = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let kept: String = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|line| !line.contains(" SCHEMA - public "))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(list.path(), kept).map_err(|e| e.to_string())?;

        let (mut bare, mut ours, mut restore_phase) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let empty = format!("bench_supabase_empty_{round}");
            server.pg.psql("postgres", &format!("CREATE DATABASE {empty} OWNER postgres"))?;
            let target = server.postgres(&empty);
            let mut command = pg_restore.command();
            command
                .args(["--single-transaction", "--no-owner", "--no-privileges", "--exit-on-error", "--use-list"])
                .arg(list.path())
                .args(conn(&target))
                .arg(file.path())
                .env("PGPASSWORD", target.password.expose())
                .env("PGSSLMODE", "disable");
            let started = Instant::now();
            run_async(&mut command).await?;
            bare.push(started.elapsed().as_secs_f64());
            server.pg.psql("postgres", &format!("DROP DATABASE {empty}"))?;

            let lost = format!("bench_supabase_lost_{round}");
            let target = server.create_platform(&lost)?;
            let target_secret = format!("bench-db-{lost}");
            self.secret(&target_secret, &target).await?;
            let confirm = format!("{}/{lost}", target.host);
            let (outcome, took) = self.opsctl_dr_restore_with(&prefix, &key, &target_secret, &confirm, 1).await?;
            ours.push(took);
            restore_phase.push(outcome.restore_ms as f64 / 1000.0);
            self.delete(&outcome.safety_backup_key).await?;
            server.pg.psql("postgres", &format!("DROP DATABASE {lost} WITH (FORCE)"))?;
        }
        let (bare, ours, restore_phase) = (median(&bare), median(&ours), median(&restore_phase));
        println!("| step | time | vs `pg_restore --single-transaction` |\n|---|---|---|");
        println!(
            "| `pg_restore --single-transaction --no-owner --no-privileges` of the same dump ({:.0} MB) into an \
             empty database, as `postgres` (baseline) | {bare:.2} s | 1.00 |",
            summary.get("size_bytes").and_then(Value::as_u64).unwrap_or(0) as f64 / 1e6
        );
        println!(
            "| `opsctl dr restore` into an empty project, one transaction: the restore alone | {restore_phase:.2} s | \
             {:.2} |",
            restore_phase / bare
        );
        println!(
            "| the whole `opsctl dr restore`: secret, download, size + SHA-256, safety backup of the target, the \
             restore, row counts, queries, journal, alert | {ours:.2} s | {:.2} |\n",
            ours / bare
        );
        self.delete(&key).await?;
        server.pg.psql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"))?;
        Ok(())
    }

    /// pg_dump 17's zstd beside its gzip, bare and through scheduled-backup, on the same
    /// database generated on PostgreSQL 17.
    async fn compression(&self, size: &Size) -> Result<(), String> {
        let Size { scale, payload_rows, rounds, .. } = *size;
        let label = &size.label;
        let pg17 = self.stack.pg17()?;
        let db = format!("bench17_s{scale}");
        let generated = self.generate(pg17, &db, scale, payload_rows).await?;
        let tools = PgTools::open(&self.stack.tools_dir).map_err(|e| e.to_string())?;
        let pg_dump = tools.pick(Tool::PgDump, pg17.major).map_err(|e| e.to_string())?;
        let methods = ["gzip:6", "zstd:3"];
        let mut bare: [Vec<f64>; 2] = Default::default();
        let mut ours: [Vec<f64>; 2] = Default::default();
        let mut bytes = [0_u64; 2];
        for _ in 0..rounds {
            for (i, method) in methods.iter().enumerate() {
                bare[i].push(self.bare_dump(&pg_dump, &generated.creds, Some(method)).await?);
                let env = [
                    ("DATABASE_SECRET_ARN", generated.secret.clone()),
                    ("BACKUP_PREFIX", format!("bench17-{scale}/")),
                    ("DUMP_COMPRESSION", (*method).to_owned()),
                ];
                let (summary, took, _) = self.run_backup(&env).await?;
                ours[i].push(took);
                bytes[i] = summary.get("size_bytes").and_then(Value::as_u64).unwrap_or(0);
                self.delete(summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?).await?;
            }
        }
        println!(
            "## pg_dump 17: gzip or zstd, {label} database on PostgreSQL 17 ({:.0} MB on disk; medians of {rounds} \
             interleaved rounds)\n",
            generated.bytes as f64 / 1e6
        );
        println!("| `DUMP_COMPRESSION` | dump | bare `pg_dump -Fc --compress=...` | scheduled-backup | vs bare |");
        println!("|---|---|---|---|---|");
        for (i, method) in methods.iter().enumerate() {
            let (bare, ours) = (median(&bare[i]), median(&ours[i]));
            let (mb, ratio) = (bytes[i] as f64 / 1e6, ours / bare);
            println!("| {method} | {mb:.0} MB | {bare:.2} s | {ours:.2} s | {ratio:.2} |");
        }
        println!();
        pg17.psql("postgres", &format!("DROP DATABASE {}", quote_ident(&db)))?;
        Ok(())
    }
}

/// The runbook's three health targets (app, AI engine, database) as `HEALTH_TARGETS`, beside
/// the web stand-in that answers for the first two.
async fn health_targets() -> (Targets, String) {
    let web = Targets::start(10).await;
    let targets = json!([
        {"name": "app", "kind": "http", "url": web.url("/healthy")},
        {"name": "ai-engine", "kind": "http", "url": web.url("/healthy"),
            "body": [{"path": "status", "equals": "ok"}]},
        {"name": "database", "kind": "postgres", "secret_arn": ops_testkit::names::HEALTH_DATABASE_SECRET}
    ])
    .to_string();
    (web, targets)
}

/// An SNS delivery of one alert (`id` its message id, `key` its dedup key).
fn sns_record(id: &str, key: &str) -> Value {
    let alert = ops_shared::Alert::new("bench", ops_shared::Severity::Warning, key, "bench alert");
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
        "Sns": {"Type": "Notification", "MessageId": id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": null,
            "Message": alert.to_body(), "Timestamp": "2026-11-26T00:00:00Z",
            "SignatureVersion": "1", "Signature": "",
            "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}]})
}

/// A backup benchmark's database: `scale` pgbench accounts and `payload_rows` rows of random
/// hex (about half of each, so dumps span many parts), measured `rounds` times.
#[derive(Clone)]
struct Size {
    scale: u32,
    payload_rows: u32,
    label: String,
    rounds: usize,
    /// The backup only, once: no 5 MiB parts, no restore.
    large: bool,
    /// Also gzip against zstd with pg_dump 17.
    compression: bool,
}

struct Generated {
    creds: DbCredentials,
    secret: String,
    bytes: i64,
    seconds: f64,
}

async fn run_async(command: &mut tokio::process::Command) -> Result<(), String> {
    let output = command.output().await.map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}

fn conn(creds: &DbCredentials) -> Vec<String> {
    vec![
        "-h".into(),
        creds.host.clone(),
        "-p".into(),
        creds.port.to_string(),
        "-U".into(),
        creds.username.clone(),
        "-d".into(),
        creds.dbname.clone(),
    ]
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}
