//! `cargo xtask bench`: the figures in BENCHMARKS.md, measured against the local stack with the
//! release binaries run under the Lambda Runtime API emulator, each next to its baseline.

use std::path::PathBuf;
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
    /// The AWS CLI for the operator's baseline, `pg_dump | aws s3 cp -`.
    aws_cli: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin_dir = match args.iter().position(|a| a == "--bin-dir").and_then(|i| args.get(i + 1)) {
        Some(dir) => PathBuf::from(dir),
        None => {
            eprintln!("usage: ops-bench --bin-dir <release binaries> [--aws-cli <aws>] [--quick | --large <GB>]");
            return ExitCode::FAILURE;
        }
    };
    let quick = args.iter().any(|a| a == "--quick");
    let large_gb = args.iter().position(|a| a == "--large").and_then(|i| args.get(i + 1)?.parse::<u32>().ok());
    let large = large_gb.is_some();
    let aws_cli = args.iter().position(|a| a == "--aws-cli").and_then(|i| args.get(i + 1)).map(PathBuf::from);
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
    let bench = Bench { bin_dir, stack, aws, aws_cli };
    println!(
        "Benchmarks on {} cores, {}, release binaries, local stack (moto + PostgreSQL {})\n",
        cores(),
        chrono::Utc::now().format("%Y-%m-%d"),
        bench.stack.pg.major
    );
    let result = async {
        if !large {
            bench.cold_starts().await?;
            bench.rotation().await?;
            bench.health().await?;
            bench.forwarder().await?;
            bench.sentry_webhook().await?;
        }
        for size in &sizes {
            bench.backup(size).await?;
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
    async fn start(&self, function: &str, extra: &[(&str, String)]) -> Result<LambdaProcess, String> {
        let mut env = self.stack.env();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env.push(("RUST_LOG".into(), "warn".into()));
        LambdaProcess::start(function, &self.bin_dir.join(function), &env, self.stack.root()).await
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

    /// Process start to first answer (init included), per function, and binary size.
    async fn cold_starts(&self) -> Result<(), String> {
        println!("## Cold start: process start to first answer (runtime init, config, clients, one invalid event)\n");
        println!("| function | binary | first answer | peak RSS |\n|---|---|---|---|");
        let targets = json!([{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]).to_string();
        for function in ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"]
        {
            let size = std::fs::metadata(self.bin_dir.join(function)).map(|m| m.len()).unwrap_or(0);
            let started = Instant::now();
            let mut process = self.start(function, &[("HEALTH_TARGETS", targets.clone())]).await?;
            let outcome = process.invoke(&json!({"not": "an event of this function"}), TIMEOUT).await;
            let elapsed = started.elapsed();
            if !matches!(outcome, Outcome::Error { .. }) {
                return Err(format!("{function}: expected an InvalidEvent error, got {outcome:?}"));
            }
            let rss = process.peak_rss_kib().unwrap_or(0);
            process.stop();
            println!(
                "| {function} | {:.1} MB | {:.0} ms | {:.1} MB |",
                size as f64 / 1e6,
                ms(elapsed),
                rss as f64 / 1024.0
            );
        }
        println!();
        Ok(())
    }

    /// Time per rotation step: a Postgres password, and a Gemini key against the Google
    /// stand-in (service-account token, key create and delete operations, model list).
    async fn rotation(&self) -> Result<(), String> {
        let database = "bench-rotation";
        let mut creds = self.stack.pg.superuser(APP_DATABASE);
        creds.username = "bench_user".into();
        creds.password = "bench-initial-password".into();
        self.psql(
            APP_DATABASE,
            &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&creds.username), quote_literal(&creds.password)),
        )?;
        let value = serde_json::to_string(&creds).map_err(|e| e.to_string())?;
        self.aws.create_rotated_secret(database, &value, "postgres-single-user").await?;

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
        let web = Targets::start(10).await;
        let targets = json!([
            {"name": "app", "kind": "http", "url": web.url("/healthy")},
            {"name": "ai-engine", "kind": "http", "url": web.url("/healthy"),
                "body": [{"path": "status", "equals": "ok"}]},
            {"name": "database", "kind": "postgres", "secret_arn": ops_testkit::names::DATABASE_SECRET}
        ])
        .to_string();
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
        let record = |id: &str, key: &str| {
            let alert = ops_shared::Alert::new("bench", ops_shared::Severity::Warning, key, "bench alert");
            json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
                "Sns": {"Type": "Notification", "MessageId": id,
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": null,
                    "Message": alert.to_body(), "Timestamp": "2026-11-26T00:00:00Z",
                    "SignatureVersion": "1", "Signature": "",
                    "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}}]})
        };
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
        const COLD: usize = 5;
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
        let mut cold = Vec::new();
        for i in 0..COLD {
            let started = Instant::now();
            let mut process = self.start("alert-forwarder", &[]).await?;
            let (answer, _) = self.invoke_ok(&mut process, &request(base + i)?).await?;
            cold.push(ms(started.elapsed()));
            process.stop();
            if !answered(&answer) {
                return Err(format!("the webhook was not accepted: {answer}"));
            }
        }
        let mut process = self.start("alert-forwarder", &[]).await?;
        let mut warm = Vec::new();
        for i in 0..WARM {
            let (answer, took) = self.invoke_ok(&mut process, &request(base + COLD + i)?).await?;
            if !answered(&answer) {
                return Err(format!("the webhook was not accepted: {answer}"));
            }
            warm.push(ms(took));
        }
        process.stop();
        cold.sort_by(f64::total_cmp);
        warm.sort_by(f64::total_cmp);
        println!(
            "## alert-forwarder: answering a Sentry webhook (Sentry waits 1 s; verify, route, e-mail, answer)
"
        );
        println!("| process | p50 | p99 | max |\n|---|---|---|---|");
        println!(
            "| cold: process start to answer ({COLD} starts) | {:.1} ms | | {:.1} ms |",
            quantile(&cold, 0.5),
            quantile(&cold, 1.0)
        );
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
            .env("PGPASSWORD", &creds.password))?;
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
        command.env("PGPASSWORD", &creds.password).stdout(Stdio::null());
        let started = Instant::now();
        run_async(&mut command).await?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// What an operator would type: `pg_dump -Fc | aws s3 cp - s3://<bucket>/<key>`, to moto.
    async fn cli_backup(&self, aws: &std::path::Path, pg_dump: &PgTool, creds: &DbCredentials) -> Result<f64, String> {
        let key = format!("bench-cli/{}.dump", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let mut dump = pg_dump.command();
        dump.arg("-Fc").args(conn(creds)).env("PGPASSWORD", &creds.password).stdout(Stdio::piped());
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
        let mut process = self.start("scheduled-backup", env).await?;
        let (summary, took) = self.invoke_ok(&mut process, &json!({})).await?;
        let rss = process.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        process.stop();
        Ok((summary, took.as_secs_f64(), rss))
    }

    /// One restore test by the release binary of backup `key`: the report, time and peak RSS.
    async fn run_verify(&self, prefix: &str, key: &str, jobs: u32) -> Result<(Value, f64, f64), String> {
        let queries = json!([{"name": "accounts exist", "sql": "SELECT count(*) > 0 FROM pgbench_accounts"}]);
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
        command.args(conn(&target)).arg(format!("--jobs={jobs}")).arg(file).env("PGPASSWORD", &target.password);
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
        let (mut bare, mut cli, mut ours, mut small) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut rss, mut small_rss, mut dump_bytes, mut key) = (0.0_f64, 0.0_f64, 0, String::new());
        for _ in 0..rounds {
            bare.push(self.bare_dump(&pg_dump, creds, None).await?);
            let (summary, took, peak) = self.run_backup(&backup_env(&prefix)).await?;
            ours.push(took);
            rss = rss.max(peak);
            dump_bytes = summary.get("size_bytes").and_then(Value::as_u64).unwrap_or(0);
            if !key.is_empty() {
                self.delete(&key).await?;
            }
            key = summary.get("key").and_then(Value::as_str).ok_or("no key in the summary")?.to_owned();
            if let Some(aws) = &self.aws_cli {
                cli.push(self.cli_backup(aws, &pg_dump, creds).await?);
            }
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
        let (bare, cli, ours) = (median(&mut bare), median(&mut cli), median(&mut ours));
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
        if !small.is_empty() {
            let small = median(&mut small);
            println!(
                "| the same with `PART_SIZE_MIB=5` ({} parts) | {small:.2} s | {:.2} | {} | {small_rss:.1} MB |",
                dump_bytes.div_ceil(5 * 1024 * 1024),
                small / bare,
                vs_cli(small)
            );
        }
        println!();
        if !size.large {
            self.restore(&tools, &prefix, &key, rounds).await?;
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
        let bare = median(&mut bare);
        println!("| step | time | vs single-job `pg_restore` | peak RSS |\n|---|---|---|---|");
        println!("| `pg_restore` of the same file into an empty database (baseline) | {bare:.2} s | 1.00 | |");
        let bare_parallel = median(&mut bare_parallel);
        println!("| `pg_restore -j2`, the same | {bare_parallel:.2} s | {:.2} | |", bare_parallel / bare);
        let single = median(&mut single);
        println!(
            "| restore-verifier, `RESTORE_JOBS=1` (single transaction): download, size + SHA-256, restore, \
             row counts, queries, drop | {single:.2} s | {:.2} | {single_rss:.1} MB |",
            single / bare
        );
        let parallel = median(&mut parallel);
        println!(
            "| restore-verifier, default `RESTORE_JOBS=2` (`pg_restore -j2`): the same | {parallel:.2} s | {:.2} | \
             {parallel_rss:.1} MB |",
            parallel / bare
        );
        let [download, restore, checks] = phases.map(|mut p| median(&mut p));
        println!(
            "\nrestore-verifier with 2 jobs, by phase: download + size + SHA-256 {download:.2} s, pg_restore \
             {restore:.2} s, row counts + queries {checks:.2} s; the rest is start-up, scratch database \
             create and drop\n"
        );
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
            let (bare, ours) = (median(&mut bare[i]), median(&mut ours[i]));
            let (mb, ratio) = (bytes[i] as f64 / 1e6, ours / bare);
            println!("| {method} | {mb:.0} MB | {bare:.2} s | {ours:.2} s | {ratio:.2} |");
        }
        println!();
        pg17.psql("postgres", &format!("DROP DATABASE {}", quote_ident(&db)))?;
        Ok(())
    }
}

/// A backup benchmark's database: `scale` pgbench accounts and `payload_rows` rows of random
/// hex (about half of each, so dumps span many parts), measured `rounds` times.
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

/// The median of `samples` (0 for none).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    match samples.len() {
        0 => 0.0,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
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
