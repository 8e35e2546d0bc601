//! One module per command: each takes the parsed arguments and what the commands share, and
//! returns the command's [`Outcome`](crate::outcome::Outcome) (or why it could not run).

pub mod backups;
pub mod check_env;
pub mod dr;
pub mod incidents;
pub mod on_demand;
pub mod preflight;
pub mod rotate;
pub mod sentry;
pub mod silence;
pub mod status;

use std::time::Duration;

use aws_config::SdkConfig;
use ops_shared::Env;
use ops_shared::objects::S3Objects;
use ops_shared::secret_versions::SecretsManagerVersions;

use crate::cli::StackArgs;
use crate::error::OpsctlError;
use crate::stack::Stack;

/// What every command may use: the AWS settings, this process's environment, the secrets and
/// one HTTPS client.
pub struct Context {
    pub sdk: SdkConfig,
    pub env: Env,
    pub store: SecretsManagerVersions,
    pub http: reqwest::Client,
}

impl Context {
    /// The AWS settings from `--region`, `--profile` and the environment (`AWS_ENDPOINT_URL`
    /// too), and an HTTPS client.
    pub async fn new(region: Option<&str>, profile: Option<&str>) -> Result<Context, OpsctlError> {
        let env = Env::from_process();
        let sdk = ops_shared::aws::load_cli_sdk_config(region, profile, env.get("AWS_ENDPOINT_URL")).await;
        let store = SecretsManagerVersions::new(aws_sdk_secretsmanager::Client::new(&sdk));
        let http = ops_shared::http::client(Duration::from_secs(10)).map_err(OpsctlError::Https)?;
        Ok(Context { sdk, env, store, http })
    }

    /// The stack named by `--prefix` in the caller's account (with `--bucket`, if given).
    pub async fn stack(&self, args: &StackArgs) -> Result<Stack, OpsctlError> {
        Ok(Stack::discover(&self.sdk, &args.prefix, args.bucket.clone()).await?)
    }

    /// The stack's backup bucket: the one `--bucket` names, else the stack's own.
    pub async fn backup_objects(&self, args: &StackArgs) -> Result<S3Objects, OpsctlError> {
        let bucket = match &args.bucket {
            Some(bucket) => bucket.clone(),
            None => Stack::discover(&self.sdk, &args.prefix, None).await?.bucket(),
        };
        Ok(S3Objects::new(ops_shared::aws::s3_client(&self.sdk), bucket))
    }
}
