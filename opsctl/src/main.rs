use std::process::ExitCode;

use clap::Parser;
use ops_shared::Env;
use ops_shared::objects::S3Objects;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::status;
use opsctl::cli::{Cli, Command, DrCommand, SentryCommand, StackArgs};
use opsctl::{check_env, dr, sentry_rules};

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits 2 and --help 0, both from clap.
    let cli = Cli::parse();
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
        Command::Status { stack } => status(&sdk, &store, stack).await,
        Command::CheckEnv { prefix } => {
            let report = check_env::check(&store, &http, &env, &check_env::runbook_requirements(&prefix)).await;
            print!("{}", report.render());
            if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
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
        Command::Dr { command } => disaster_recovery(&sdk, &store, command).await,
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

async fn disaster_recovery(
    aws: &aws_config::SdkConfig,
    store: &SecretsManagerVersions,
    command: DrCommand,
) -> ExitCode {
    let (prefix, json) = match &command {
        DrCommand::Freeze { prefix, json } | DrCommand::Thaw { prefix, json } => (prefix.clone(), *json),
        DrCommand::Assess { stack } => (stack.prefix.clone(), stack.json),
    };
    let (creds, client) = match dr::connect(store, &format!("{prefix}-database")).await {
        Ok(connected) => connected,
        Err(err) => return failed(&err, dr::DrError::EXIT_CODE),
    };
    let switched = match command {
        DrCommand::Freeze { .. } => dr::freeze(&client, &creds).await,
        DrCommand::Thaw { .. } => dr::thaw(&client, &creds).await,
        DrCommand::Assess { stack } => {
            let bucket = stack.bucket;
            let objects = match backup_objects(aws, &prefix, bucket).await {
                Ok(objects) => objects,
                Err(code) => return code,
            };
            let now = chrono::Utc::now();
            let assessed = match dr::backups(&objects, "backups/", "reports/restore-tests/", now).await {
                Ok(entries) => dr::assess(&client, entries).await,
                Err(err) => Err(err),
            };
            return match assessed {
                Ok(assessment) => {
                    let text = assessment.render();
                    show(json, &assessment, text, ExitCode::SUCCESS)
                }
                Err(err) => failed(&err, dr::DrError::EXIT_CODE),
            };
        }
    };
    match switched {
        Ok(switch) => {
            let text = format!(
                "{}: writes {} ({}){}\n",
                switch.database,
                if switch.read_only { "stopped: new transactions are read-only" } else { "allowed" },
                if switch.changed { "changed now" } else { "already so" },
                if switch.sessions_ended > 0 {
                    format!(", {} open sessions ended", switch.sessions_ended)
                } else {
                    String::new()
                }
            );
            show(json, &switch, text, ExitCode::SUCCESS)
        }
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
        None => backup_bucket(&aws_sdk_sts::Client::new(sdk), prefix).await.map_err(|err| {
            eprintln!("opsctl: {err}");
            ExitCode::from(2)
        })?,
    };
    Ok(S3Objects::new(ops_shared::aws::s3_client(sdk), bucket))
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

async fn status(sdk: &aws_config::SdkConfig, store: &SecretsManagerVersions, stack: StackArgs) -> ExitCode {
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
        alarms: &aws_sdk_cloudwatch::Client::new(sdk),
        prefix,
        backup_prefix: "backups/",
        report_prefix: "reports/restore-tests/",
    };
    let report = status::gather(&sources, chrono::Utc::now()).await;
    let text = report.render();
    let code = ExitCode::from(report.exit_code());
    show(json, &report, text, code)
}

/// The stack's backup bucket, `<prefix>-ops-backups-<account id>`, for the caller's account.
pub async fn backup_bucket(sts: &aws_sdk_sts::Client, prefix: &str) -> Result<String, String> {
    let identity = sts.get_caller_identity().send().await.map_err(|e| {
        let detail = ops_shared::aws::describe_sdk_error(&e);
        format!("cannot tell which AWS account these credentials are for ({detail}): give --bucket")
    })?;
    let account = identity.account().ok_or("STS named no account: give --bucket")?;
    Ok(format!("{prefix}-ops-backups-{account}"))
}
