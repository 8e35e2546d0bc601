//! The local stack: moto_server and PostgreSQL on loopback, with the resources the template
//! declares provisioned under the same names. One per test binary (see [`shared`]), one for
//! the demo and `cargo xtask stack up`. PostgreSQL 15 always; PostgreSQL 17 beside it, started
//! on first use ([`Stack::pg17`]).

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use ops_shared::postgres::DbCredentials;
use serde_json::json;

use crate::moto::Moto;
use crate::names::{self, ACCOUNT_ID, REGION};
use crate::pg::{Postgres, Seed, Server};
use crate::process::at_exit;
use crate::supabase_schema::SupabaseServer;

/// The production-like database the demo and tests back up and rotate.
pub const APP_DATABASE: &str = "app";

pub struct Stack {
    pub moto: Moto,
    /// PostgreSQL 15, with the app database; its `postgres` database is the staging server.
    pub pg: Postgres,
    pg17: OnceLock<Result<Postgres, String>>,
    /// Servers built as Supabase builds a project's (15 and 17), started on first use.
    supabase15: OnceLock<Result<SupabaseServer, String>>,
    supabase17: OnceLock<Result<SupabaseServer, String>>,
    /// `pg_dump`/`pg_restore` 15 and 17, laid out as the tools layer (`PG_TOOLS_DIR`).
    pub tools_dir: std::path::PathBuf,
    pub alert_topic_arn: String,
    pub ops_topic_arn: String,
    // Dropped last: the servers above keep files in it.
    root: tempfile::TempDir,
}

impl Stack {
    /// Starts both servers, seeds the app database and provisions the AWS resources.
    pub fn start() -> Result<Stack, String> {
        let root = tempfile::Builder::new().prefix("cineview-ops-stack-").tempdir().map_err(|e| e.to_string())?;
        // The servers run as the `postgres` user, which must reach their directories inside.
        std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", root.path().display()))?;
        let tools_dir = crate::pg::tools_dir()?;
        let moto = Moto::start(root.path())?;
        let pg = Postgres::start(&root.path().join("pg15"), Server::Debian)?;
        pg.create_seeded_database(APP_DATABASE, Seed::SMALL)?;
        let health_password = uuid::Uuid::new_v4().simple().to_string();
        pg.psql("postgres", &format!("CREATE ROLE {} LOGIN PASSWORD '{health_password}'", names::HEALTH_ROLE))?;
        let health_db = DbCredentials {
            username: names::HEALTH_ROLE.to_owned(),
            password: health_password.into(),
            ..pg.superuser(APP_DATABASE)
        };
        let mut stack = Stack {
            moto,
            pg,
            pg17: OnceLock::new(),
            supabase15: OnceLock::new(),
            supabase17: OnceLock::new(),
            tools_dir,
            alert_topic_arn: String::new(),
            ops_topic_arn: String::new(),
            root,
        };
        let (alert, ops) = block_on_own_runtime(provision(
            stack.sdk_config_blocking(),
            stack.pg.superuser(APP_DATABASE),
            stack.pg.superuser("postgres"),
            health_db,
        ))??;
        stack.alert_topic_arn = alert;
        stack.ops_topic_arn = ops;
        Ok(stack)
    }

    /// [`Stack::start`] from async code, off the runtime's threads (it blocks for seconds).
    pub async fn start_async() -> Result<Stack, String> {
        tokio::task::spawn_blocking(Stack::start).await.map_err(|e| format!("the start-up task failed: {e}"))?
    }

    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// The PostgreSQL 17 server, started on first use (it costs a few seconds).
    pub fn pg17(&self) -> Result<&Postgres, String> {
        self.pg17
            .get_or_init(|| Postgres::start(&self.root.path().join("pg17"), Server::Pg17))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The server of `major` (15 or 17).
    pub fn server(&self, major: u32) -> &Postgres {
        let server = match major {
            15 => Ok(&self.pg),
            17 => self.pg17(),
            other => Err(format!("the local stack has no PostgreSQL {other}")),
        };
        match server {
            Ok(server) => server,
            Err(err) => panic!("PostgreSQL {major} could not start: {err}"),
        }
    }

    /// The Supabase-built server of `major` (15 or 17), started on first use.
    pub fn supabase(&self, major: u32) -> &SupabaseServer {
        let (cell, server) = match major {
            15 => (&self.supabase15, Server::Debian),
            17 => (&self.supabase17, Server::Pg17),
            other => panic!("the local stack has no Supabase server of PostgreSQL {other}"),
        };
        let root = self.root.path().join(format!("supabase{major}"));
        match cell.get_or_init(|| SupabaseServer::start(&root, server)) {
            Ok(server) => server,
            Err(err) => panic!("the Supabase-built PostgreSQL {major} could not start: {err}"),
        }
    }

    /// The environment a function needs to run against this stack (shared contract variables).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.moto.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("ALERT_TOPIC_ARN", self.alert_topic_arn.clone()),
            ("OPS_TOPIC_ARN", self.ops_topic_arn.clone()),
            ("STATE_TABLE", names::STATE_TABLE.to_owned()),
            ("BACKUP_BUCKET", names::backup_bucket()),
            ("DATABASE_SECRET_ARN", names::DATABASE_SECRET.to_owned()),
            ("STAGING_DATABASE_SECRET_ARN", names::STAGING_DATABASE_SECRET.to_owned()),
            ("SENTRY_WEBHOOK_SECRET_ARN", names::SENTRY_WEBHOOK_SECRET.to_owned()),
            ("PG_TOOLS_DIR", self.tools_dir.display().to_string()),
            ("SENTRY_DSN", String::new()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// SDK configuration for this stack with static test credentials (no credential chain).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.moto.endpoint())
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "testing", "testing", None, None, "stack",
            ))
            .load()
            .await
    }

    fn sdk_config_blocking(&self) -> SdkConfig {
        let endpoint = self.moto.endpoint();
        block_on_own_runtime(async move {
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                    "testing", "testing", None, None, "stack",
                ))
                .load()
                .await
        })
        .unwrap_or_else(|_| SdkConfig::builder().build())
    }

    /// Stops both servers and removes the temp dir (also used by the at-exit hook).
    pub fn shutdown(&self) {
        self.moto.stop();
        self.pg.stop();
        if let Some(Ok(pg17)) = self.pg17.get() {
            pg17.stop();
        }
        for supabase in [&self.supabase15, &self.supabase17] {
            if let Some(Ok(server)) = supabase.get() {
                server.pg.stop();
            }
        }
        let _ = std::fs::remove_dir_all(self.root.path());
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown();
    }
}

static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();

/// The test binary's stack, started on first use and stopped when the binary exits.
pub fn shared() -> &'static Stack {
    let stack = SHARED.get_or_init(|| {
        let started = Stack::start();
        at_exit(|| {
            if let Some(Ok(stack)) = SHARED.get() {
                stack.shutdown();
            }
        });
        started
    });
    match stack {
        Ok(stack) => stack,
        Err(err) => panic!("the local stack could not start: {err}"),
    }
}

/// Runs a future on a fresh runtime in its own thread, so stack set-up never depends on (or
/// panics inside) the caller's runtime.
pub fn block_on_own_runtime<F>(future: F) -> Result<F::Output, String>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().map(|rt| rt.block_on(future))
    })
    .join()
    .map_err(|_| "stack set-up thread panicked".to_owned())?
    .map_err(|e| format!("cannot build a runtime: {e}"))
}

async fn provision(
    sdk: SdkConfig,
    app_db: DbCredentials,
    staging_db: DbCredentials,
    health_db: DbCredentials,
) -> Result<(String, String), String> {
    let sns = aws_sdk_sns::Client::new(&sdk);
    let alert_topic =
        sns.create_topic().name(names::ALERT_TOPIC).send().await.map_err(|e| format!("create alert topic: {e:?}"))?;
    let ops_topic =
        sns.create_topic().name(names::OPS_TOPIC).send().await.map_err(|e| format!("create ops topic: {e:?}"))?;

    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    crate::aws::create_state_table(&dynamodb, names::STATE_TABLE).await?;

    let s3 = ops_shared::aws::s3_client(&sdk);
    s3.create_bucket().bucket(names::backup_bucket()).send().await.map_err(|e| format!("create bucket: {e:?}"))?;

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    crate::aws::provision_runbook_secrets(&secrets, names::PREFIX, &json!(app_db).to_string()).await?;
    secrets
        .create_secret()
        .name(names::STAGING_DATABASE_SECRET)
        .secret_string(json!(staging_db).to_string())
        .send()
        .await
        .map_err(|e| format!("create secret {}: {e:?}", names::STAGING_DATABASE_SECRET))?;
    secrets
        .create_secret()
        .name(names::HEALTH_DATABASE_SECRET)
        .secret_string(json!(health_db).to_string())
        .send()
        .await
        .map_err(|e| format!("create secret {}: {e:?}", names::HEALTH_DATABASE_SECRET))?;
    Ok((
        alert_topic.topic_arn.ok_or("moto returned no topic ARN")?,
        ops_topic.topic_arn.ok_or("moto returned no topic ARN")?,
    ))
}

/// The ARN moto gives a topic of `name` in the stack's account.
pub fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}")
}
