//! The deployed stack's resources, named as template.yaml names them from the name prefix and
//! the caller's account, and the clients the commands reach them with.

use std::sync::Arc;

use aws_config::SdkConfig;
use ops_shared::aws::AwsClients;
use ops_shared::objects::S3Objects;
use ops_shared::{Env, Scrubber, SecretCache, SnsAlertPublisher};

/// A stack: its name prefix, and the account and region it is deployed in.
#[derive(Debug, Clone)]
pub struct Stack {
    pub prefix: String,
    pub account: String,
    pub region: String,
    /// The backup bucket, when given instead of the stack's own.
    pub bucket: Option<String>,
}

impl Stack {
    /// The stack named `prefix` in the account the credentials are for.
    pub async fn discover(sdk: &SdkConfig, prefix: &str, bucket: Option<String>) -> Result<Stack, String> {
        let sts = aws_sdk_sts::Client::new(sdk);
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            let detail = ops_shared::aws::describe_sdk_error(&e);
            format!("cannot tell which AWS account these credentials are for ({detail}): check --profile")
        })?;
        let account = identity.account().ok_or("STS named no account")?.to_owned();
        let region = sdk.region().map(|r| r.to_string()).ok_or("no AWS region: give --region")?;
        Ok(Stack { prefix: prefix.to_owned(), account, region, bucket })
    }

    /// `<prefix>-ops-backups-<account id>`, or the bucket given.
    pub fn bucket(&self) -> String {
        self.bucket.clone().unwrap_or_else(|| format!("{}-ops-backups-{}", self.prefix, self.account))
    }

    /// The topic every function publishes its alerts to; the forwarder routes them to ops.
    pub fn alert_topic_arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}-ops-alerts", self.region, self.account, self.prefix)
    }

    /// A function's name, `<prefix>-<function>`.
    pub fn function(&self, function: &str) -> String {
        format!("{}-{function}", self.prefix)
    }

    /// A secret's name, `<prefix>-<name>`.
    pub fn secret(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
}

/// Who runs opsctl, for the records and alerts that name them: the ARN STS names for the
/// credentials, else the OS user.
pub async fn caller(sdk: &SdkConfig, env: &Env) -> String {
    let identity = aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await;
    match identity.ok().and_then(|identity| identity.arn().map(str::to_owned)) {
        Some(arn) => arn,
        None => format!("OS user {}", env.get("USER").or_else(|| env.get("USERNAME")).unwrap_or("unknown")),
    }
}

/// What an in-process backup, restore test or restore works with: the same adapters the
/// functions build at start-up.
pub struct Reach {
    pub objects: S3Objects,
    pub alerts: SnsAlertPublisher,
    pub secrets: Arc<SecretCache>,
    pub http: reqwest::Client,
}

impl Reach {
    pub fn new(sdk: &SdkConfig, stack: &Stack, http: reqwest::Client) -> Reach {
        let clients = AwsClients::new(sdk);
        Reach {
            objects: S3Objects::new(clients.s3(), stack.bucket()),
            alerts: SnsAlertPublisher::new(clients.sns(), stack.alert_topic_arn()),
            secrets: Arc::new(SecretCache::new(clients.secrets(), Scrubber::default())),
            http,
        }
    }
}
