//! The deployed stack's resources, named as template.yaml names them from the name prefix and
//! the caller's account, and the clients the commands reach them with.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
use ops_shared::aws::AwsClients;
use ops_shared::objects::S3Objects;
use ops_shared::{Env, Scrubber, SecretCache, SnsAlertPublisher};

/// The names template.yaml gives a stack's resources from its name prefix alone: what a command
/// that does not need the account (`check-env`, `sentry apply`, `dr assess`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names { prefix: prefix.to_owned() }
    }

    /// A secret's name, `<prefix>-<name>`.
    pub fn secret(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The production database's secret, `<prefix>-database`.
    pub fn database_secret(&self) -> String {
        self.secret("database")
    }

    /// The staging server's secret, where restore tests make their scratch databases.
    pub fn staging_database_secret(&self) -> String {
        self.secret("staging-database")
    }

    /// The Sentry API settings, `<prefix>-sentry-api`.
    pub fn sentry_api_secret(&self) -> String {
        self.secret("sentry-api")
    }

    /// Sentry's read-only settings for the status and digest, `<prefix>-sentry-read`.
    pub fn sentry_read_secret(&self) -> String {
        self.secret("sentry-read")
    }

    /// A function's name, `<prefix>-<function>`.
    pub fn function(&self, function: &str) -> String {
        format!("{}-{function}", self.prefix)
    }

    /// The backup function, `<prefix>-scheduled-backup`.
    pub fn backup_function(&self) -> String {
        self.function(BACKUP_FUNCTION)
    }

    /// The restore-test function, `<prefix>-restore-verifier`.
    pub fn restore_verifier_function(&self) -> String {
        self.function(RESTORE_VERIFIER_FUNCTION)
    }

    /// The table the functions record their state in, `<prefix>-ops-state`.
    pub fn state_table(&self) -> String {
        format!("{}-ops-state", self.prefix)
    }
}

pub const BACKUP_FUNCTION: &str = "scheduled-backup";
pub const RESTORE_VERIFIER_FUNCTION: &str = "restore-verifier";
/// Where in the backup bucket the backups are, and the restore tests' reports.
pub const BACKUP_PREFIX: &str = "backups/";
pub const REPORT_PREFIX: &str = "reports/restore-tests/";

/// Why the stack could not be found from the credentials.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot tell which AWS account these credentials are for ({detail}): check --profile")]
    Caller {
        detail: String,
        #[source]
        source: Box<SdkError<GetCallerIdentityError>>,
    },
    #[error("STS named no account")]
    NoAccount,
    #[error("no AWS region: give --region")]
    NoRegion,
}

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
    pub async fn discover(sdk: &SdkConfig, prefix: &str, bucket: Option<String>) -> Result<Stack, StackError> {
        let sts = aws_sdk_sts::Client::new(sdk);
        let identity = sts.get_caller_identity().send().await.map_err(|source| StackError::Caller {
            detail: ops_shared::aws::describe_sdk_error(&source),
            source: Box::new(source),
        })?;
        let account = identity.account().ok_or(StackError::NoAccount)?.to_owned();
        let region = sdk.region().map(|r| r.to_string()).ok_or(StackError::NoRegion)?;
        Ok(Stack { prefix: prefix.to_owned(), account, region, bucket })
    }

    /// The names that follow from the prefix alone.
    pub fn names(&self) -> Names {
        Names::new(&self.prefix)
    }

    /// `<prefix>-ops-backups-<account id>`, or the bucket given.
    pub fn bucket(&self) -> String {
        self.bucket.clone().unwrap_or_else(|| format!("{}-ops-backups-{}", self.prefix, self.account))
    }

    /// The topic every function publishes its alerts to; the forwarder routes them to ops.
    pub fn alert_topic_arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}-ops-alerts", self.region, self.account, self.prefix)
    }

    /// The topic ops are told on by e-mail (and paged from, for critical alerts).
    pub fn ops_topic_arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}-ops-notifications", self.region, self.account, self.prefix)
    }

    /// The topic the alarms about the alert pipeline itself page through, with a pager.
    pub fn pager_topic_arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}-ops-pager", self.region, self.account, self.prefix)
    }

    /// A function's name, `<prefix>-<function>`.
    pub fn function(&self, function: &str) -> String {
        self.names().function(function)
    }

    /// A secret's name, `<prefix>-<name>`.
    pub fn secret(&self, name: &str) -> String {
        self.names().secret(name)
    }

    /// The command that undoes a `dr freeze` of this stack, as the freeze's alert tells ops.
    pub fn thaw_command(&self) -> String {
        let bucket = self.bucket.as_ref().map_or(String::new(), |bucket| format!(" --bucket {bucket}"));
        format!("opsctl dr thaw --prefix {}{bucket}", self.prefix)
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
