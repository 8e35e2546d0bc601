use std::process::ExitCode;

use clap::Parser;
use ops_shared::Env;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::status;
use opsctl::cli::{Cli, Command, SentryCommand};
use opsctl::{check_env, sentry_rules};

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
        Command::Status { prefix, bucket, json } => status(&sdk, &store, &prefix, bucket, json).await,
        Command::CheckEnv { prefix } => {
            let report = check_env::check(&store, &http, &env, &check_env::runbook_requirements(&prefix)).await;
            print!("{}", report.render());
            if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
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

async fn status(
    sdk: &aws_config::SdkConfig,
    store: &SecretsManagerVersions,
    prefix: &str,
    bucket: Option<String>,
    json: bool,
) -> ExitCode {
    let bucket = match bucket {
        Some(bucket) => bucket,
        None => match backup_bucket(&aws_sdk_sts::Client::new(sdk), prefix).await {
            Ok(bucket) => bucket,
            Err(err) => {
                eprintln!("opsctl: {err}");
                return ExitCode::from(2);
            }
        },
    };
    let table = format!("{prefix}-ops-state");
    let sources = status::Sources {
        state: &ops_shared::state::DynamoState::new(aws_sdk_dynamodb::Client::new(sdk), table),
        objects: &ops_shared::objects::S3Objects::new(ops_shared::aws::s3_client(sdk), bucket),
        secrets: store,
        alarms: &aws_sdk_cloudwatch::Client::new(sdk),
        prefix,
        backup_prefix: "backups/",
        report_prefix: "reports/restore-tests/",
    };
    let report = status::gather(&sources, chrono::Utc::now()).await;
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("opsctl: cannot write JSON: {err}"),
        }
    } else {
        print!("{}", report.render());
    }
    ExitCode::from(report.exit_code())
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
