use std::process::ExitCode;

use ops_shared::Env;
use ops_shared::secret_versions::SecretsManagerVersions;
use opsctl::check_env;

const USAGE: &str = "usage: opsctl check-env [--prefix NAME]   (default prefix: cineview)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let prefix = match args.as_slice() {
        ["check-env"] => "cineview",
        ["check-env", "--prefix", prefix] => prefix,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let env = Env::from_process();
    let region = env.or("AWS_REGION", "us-east-1");
    let sdk = ops_shared::aws::load_sdk_config(&region, env.get("AWS_ENDPOINT_URL")).await;
    let store = SecretsManagerVersions::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let http = match ops_shared::http::client(std::time::Duration::from_secs(10)) {
        Ok(http) => http,
        Err(err) => {
            eprintln!("opsctl: cannot set up HTTPS: {err}");
            return ExitCode::from(2);
        }
    };
    let report = check_env::check(&store, &http, &env, &check_env::runbook_requirements(prefix)).await;
    print!("{}", report.render());
    if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
