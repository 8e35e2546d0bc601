use std::process::ExitCode;

use clap::Parser;
use ops_shared::Env;
use ops_shared::objects::S3Objects;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::status;
use opsctl::cli::{Cli, Command, DrCommand, RunArgs, SentryCommand, StackArgs};
use opsctl::dr_restore::{self, RestoreRequest};
use opsctl::on_demand::{self, Invoked};
use opsctl::progress::Progress;
use opsctl::stack::{Reach, Stack};
use opsctl::{check_env, dr, sentry_rules};

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits 2 and --help 0, both from clap.
    let cli = Cli::parse();
    // The engines opsctl runs record CloudWatch metrics on stdout, where Lambda reads them; here
    // stdout is the operator's (and `--json`'s).
    ops_shared::telemetry::silence_metrics();
    let env = Env::from_process();
    let sdk = ops_shared::aws::load_cli_sdk_config(
        cli.region.as_deref(),
        cli.profile.as_deref(),
        env.get("AWS_ENDPOINT_URL"),
    )
    .await;
    let store = SecretsManagerVersions::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let http = match ops_shared::http::client(std::time::Duration::from_secs(10)) {
        Ok(http) => http,
        Err(err) => {
            eprintln!("opsctl: cannot set up HTTPS: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Status { stack } => status(&sdk, &store, &http, stack).await,
        Command::CheckEnv { prefix, json } => {
            let report = check_env::check(&store, &http, &env, &check_env::runbook_requirements(&prefix)).await;
            let code = if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            show(json, &report, report.render(), code)
        }
        Command::Backups { stack: StackArgs { prefix, bucket, json } } => {
            let objects = match backup_objects(&sdk, &prefix, bucket).await {
                Ok(objects) => objects,
                Err(code) => return code,
            };
            match dr::backups(&objects, "backups/", "reports/restore-tests/", chrono::Utc::now()).await {
                Ok(entries) => show(json, &entries, dr::render_backups(&entries), ExitCode::SUCCESS),
                Err(err) => failed(&err, dr::DrError::EXIT_CODE),
            }
        }
        Command::Backup { label, wait, run } => backup(&sdk, &env, &http, label, wait, run).await,
        Command::RestoreTest { backup, wait, run } => restore_test(&sdk, &env, &http, &backup, wait, run).await,
        Command::Dr { command: DrCommand::Restore { backup, target, confirm, jobs, health_urls, stack, pg_tools } } => {
            let request = RestoreRequest { backup_key: backup, target_secret: target, confirm, jobs, health_urls };
            dr_restore(&sdk, &env, &http, request, stack, &pg_tools).await
        }
        Command::Dr { command: DrCommand::Freeze { stack, reason } } => {
            freeze_or_thaw(&sdk, &env, &http, &store, stack, Some(reason)).await
        }
        Command::Dr { command: DrCommand::Thaw { stack } } => {
            freeze_or_thaw(&sdk, &env, &http, &store, stack, None).await
        }
        Command::Dr { command: DrCommand::Assess { stack } } => assess(&sdk, &store, stack).await,
        Command::Sentry { command: SentryCommand::Apply { prefix, dry_run } } => {
            match sentry_rules::run(&store, &http, &prefix, dry_run).await {
                Ok(outcome) => {
                    print!("{}", outcome.render());
                    ExitCode::from(outcome.exit_code())
                }
                Err(err) => {
                    eprintln!("opsctl: {err}");
                    ExitCode::from(sentry_rules::SentryError::EXIT_CODE)
                }
            }
        }
    }
}

/// `dr assess`: the newest backups against the live database.
async fn assess(aws: &aws_config::SdkConfig, store: &SecretsManagerVersions, stack: StackArgs) -> ExitCode {
    let (creds, client) = match dr::connect(store, &format!("{}-database", stack.prefix)).await {
        Ok(connected) => connected,
        Err(err) => return failed(&err, dr::DrError::EXIT_CODE),
    };
    let objects = match backup_objects(aws, &stack.prefix, stack.bucket).await {
        Ok(objects) => objects,
        Err(code) => return code,
    };
    let now = chrono::Utc::now();
    let assessed = match dr::backups(&objects, "backups/", "reports/restore-tests/", now).await {
        Ok(entries) => dr::assess(&client, &creds, entries).await,
        Err(err) => Err(err),
    };
    match assessed {
        Ok(assessment) => {
            let text = assessment.render();
            show(stack.json, &assessment, text, ExitCode::SUCCESS)
        }
        Err(err) => failed(&err, dr::DrError::EXIT_CODE),
    }
}

/// `dr freeze` (with its reason) or `dr thaw`: the record in the stack's bucket, the alert on
/// its topic.
async fn freeze_or_thaw(
    sdk: &aws_config::SdkConfig,
    env: &Env,
    http: &reqwest::Client,
    store: &SecretsManagerVersions,
    args: StackArgs,
    reason: Option<String>,
) -> ExitCode {
    let json = args.json;
    let stack = match discover(sdk, &args.prefix, args.bucket.clone()).await {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let reach = Reach::new(sdk, &stack, http.clone());
    let secret = stack.secret("database");
    let connected = async {
        let arn = dr::secret_arn(store, &secret).await?;
        let (creds, client) = dr::connect(store, &secret).await?;
        Ok::<_, dr::DrError>((arn, creds, client))
    };
    let (secret_arn, creds, client) = match connected.await {
        Ok(connected) => connected,
        Err(err) => return failed(&err, dr::DrError::EXIT_CODE),
    };
    let who = opsctl::stack::caller(sdk, env).await;
    let switched = match reason {
        Some(reason) => {
            let bucket = args.bucket.map_or(String::new(), |bucket| format!(" --bucket {bucket}"));
            let thaw_command = format!("opsctl dr thaw --prefix {}{bucket}", stack.prefix);
            let request = dr::FreezeRequest { secret_arn, who, reason, thaw_command };
            dr::freeze(&client, &creds, &reach.objects, &reach.alerts, &request).await
        }
        None => dr::thaw(&client, &creds, &reach.objects, &reach.alerts, &secret_arn, &who).await,
    };
    match switched {
        Ok(switch) => show(json, &switch, switch.render(), ExitCode::SUCCESS),
        Err(err) => failed(&err, dr::DrError::EXIT_CODE),
    }
}

/// The stack's backup bucket, named or found from the caller's account.
async fn backup_objects(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    bucket: Option<String>,
) -> Result<S3Objects, ExitCode> {
    let bucket = match bucket {
        Some(bucket) => bucket,
        None => discover(sdk, prefix, None).await?.bucket(),
    };
    Ok(S3Objects::new(ops_shared::aws::s3_client(sdk), bucket))
}

/// The stack named `prefix` in the caller's account.
async fn discover(sdk: &aws_config::SdkConfig, prefix: &str, bucket: Option<String>) -> Result<Stack, ExitCode> {
    Stack::discover(sdk, prefix, bucket).await.map_err(|err| {
        eprintln!("opsctl: {err}");
        ExitCode::from(2)
    })
}

async fn backup(
    sdk: &aws_config::SdkConfig,
    env: &Env,
    http: &reqwest::Client,
    label: Option<String>,
    wait: bool,
    run: RunArgs,
) -> ExitCode {
    let json = run.stack.json;
    let stack = match discover(sdk, &run.stack.prefix, run.stack.bucket.clone()).await {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let reach = Reach::new(sdk, &stack, http.clone());
    let progress = Progress::stderr();
    let taken = if run.local {
        let database = stack.secret("database");
        match on_demand::backup_engine(&reach, &stack, env, &database, &run.pg_tools) {
            Ok(engine) => progress.phase("taking a backup here", on_demand::backup_here(&engine, label)).await,
            Err(err) => return failed(&err, 2),
        }
    } else {
        let payload = serde_json::json!({ "label": label });
        match through_lambda(sdk, &stack, "scheduled-backup", payload, wait, json).await {
            Ok(Ok(summary)) => {
                let function = stack.function("scheduled-backup");
                on_demand::confirm_manifest(&reach.objects, &function, &summary).await.map(|()| summary)
            }
            Ok(Err(err)) => Err(err),
            Err(queued) => return queued,
        }
    };
    match taken {
        Ok(summary) => show(json, &summary, on_demand::render_backup(&summary), ExitCode::SUCCESS),
        Err(err) => failed(&err, err.exit_code()),
    }
}

/// Runs the stack's `function` through Lambda: its result, or, when it was only queued (no
/// `--wait`), the exit code after saying so.
async fn through_lambda<T: serde::de::DeserializeOwned + serde::Serialize>(
    sdk: &aws_config::SdkConfig,
    stack: &Stack,
    function: &str,
    payload: serde_json::Value,
    wait: bool,
    json: bool,
) -> Result<Result<T, on_demand::OnDemandError>, ExitCode> {
    let function = stack.function(function);
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let what = format!("invoking {function}");
    match Progress::stderr().phase(&what, on_demand::invoke(&lambda, &function, &payload, wait)).await {
        Ok(Invoked::Finished(result)) => Ok(Ok(result)),
        Ok(queued @ Invoked::Started { .. }) => {
            let text = format!("{function} started; `opsctl backups` shows the result once it is done\n");
            Err(show(json, &queued, text, ExitCode::SUCCESS))
        }
        Err(err) => Ok(Err(err)),
    }
}

async fn restore_test(
    sdk: &aws_config::SdkConfig,
    env: &Env,
    http: &reqwest::Client,
    backup: &str,
    wait: bool,
    run: RunArgs,
) -> ExitCode {
    let json = run.stack.json;
    let stack = match discover(sdk, &run.stack.prefix, run.stack.bucket.clone()).await {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let progress = Progress::stderr();
    let tested = if run.local {
        let reach = Reach::new(sdk, &stack, http.clone());
        let staging = stack.secret("staging-database");
        match on_demand::verifier_engine(&reach, &stack, env, &staging, &run.pg_tools) {
            Ok(engine) => {
                progress.phase("restore test here", on_demand::restore_test_here(&engine, Some(backup))).await
            }
            Err(err) => return failed(&err, 2),
        }
    } else {
        let payload = serde_json::json!({ "backup": backup });
        match through_lambda(sdk, &stack, "restore-verifier", payload, wait, json).await {
            Ok(tested) => tested,
            Err(queued) => return queued,
        }
    };
    match tested {
        Ok(report) => {
            let code = if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            show(json, &report, on_demand::render_report(&report), code)
        }
        Err(err) => failed(&err, err.exit_code()),
    }
}

async fn dr_restore(
    sdk: &aws_config::SdkConfig,
    env: &Env,
    http: &reqwest::Client,
    request: RestoreRequest,
    stack: StackArgs,
    pg_tools: &str,
) -> ExitCode {
    let json = stack.json;
    let stack = match discover(sdk, &stack.prefix, stack.bucket).await {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let reach = Reach::new(sdk, &stack, http.clone());
    let target = &request.target_secret;
    let engines = on_demand::verifier_engine(&reach, &stack, env, target, pg_tools)
        .and_then(|verifier| Ok((verifier, on_demand::backup_engine(&reach, &stack, env, target, pg_tools)?)));
    let (verifier, safety) = match engines {
        Ok(engines) => engines,
        Err(err) => return failed(&err, 2),
    };
    let engines = dr_restore::Engines { verifier: &verifier, safety: &safety, http };
    match dr_restore::restore(&engines, &request, &Progress::stderr()).await {
        Ok(outcome) => {
            let code = ExitCode::from(outcome.exit_code());
            show(json, &outcome, outcome.render(), code)
        }
        Err(err) => failed(&err, err.exit_code()),
    }
}

fn show(json: bool, value: &impl serde::Serialize, text: String, code: ExitCode) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("opsctl: cannot write JSON: {err}"),
        }
    } else {
        print!("{text}");
    }
    code
}

fn failed(err: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("opsctl: {err}");
    ExitCode::from(code)
}

async fn status(
    sdk: &aws_config::SdkConfig,
    store: &SecretsManagerVersions,
    http: &reqwest::Client,
    stack: StackArgs,
) -> ExitCode {
    let StackArgs { prefix, bucket, json } = stack;
    let prefix = prefix.as_str();
    let objects = match backup_objects(sdk, prefix, bucket).await {
        Ok(objects) => objects,
        Err(code) => return code,
    };
    let sources = status::Sources {
        state: &ops_shared::state::DynamoState::new(aws_sdk_dynamodb::Client::new(sdk), format!("{prefix}-ops-state")),
        objects: &objects,
        secrets: store,
        alarms: &ops_shared::cloudwatch::CloudWatch::new(sdk, http.clone()),
        prefix,
        backup_prefix: "backups/",
        report_prefix: "reports/restore-tests/",
    };
    let report = status::gather(&sources, chrono::Utc::now()).await;
    let text = report.render();
    let code = ExitCode::from(report.exit_code());
    show(json, &report, text, code)
}
