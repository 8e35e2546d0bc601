//! Backups and restore tests on demand, run either by invoking the deployed function or in
//! this process with the functions' own engines (`--local`): what tests use, and what a
//! database too large for Lambda's 15 minutes needs.

use aws_smithy_types::Blob;
use ops_shared::backup::{Backup, BackupConfig, BackupError, BackupSummary, RestoreReport, valid_label};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::restore::{Selection, Verifier, VerifierConfig, VerifyError};
use ops_shared::{ConfigError, Env, SnsAlertPublisher};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::outcome::Verdict;
use crate::stack::{Reach, Stack};

/// Where the PostgreSQL tools are on Debian and Ubuntu: `<dir>/<major>/bin/pg_dump`.
pub const DEFAULT_PG_TOOLS: &str = "/usr/lib/postgresql";

#[derive(Debug, thiserror::Error)]
pub enum OnDemandError {
    #[error("label {0:?} must be 1-40 letters, digits, '-' or '_'")]
    Label(String),
    #[error("cannot invoke {function}: {detail} (allow lambda:InvokeFunction on it, or run with --local)")]
    Invoke {
        function: String,
        detail: String,
        #[source]
        source: Box<aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>>,
    },
    #[error("{function} failed: {detail}")]
    FunctionFailed { function: String, detail: String },
    #[error("{function} answered what is not its result: {source}")]
    Answer {
        function: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the backup failed: {0}")]
    Backup(#[from] BackupError),
    #[error("the restore test could not run: {0}")]
    Verify(#[from] VerifyError),
    #[error("{function} reported backup {key}, but its manifest is not in the bucket: {detail}")]
    NoManifest { function: String, key: String, detail: String },
}

impl OnDemandError {
    /// A problem found when the backup or the test itself failed; could not run when it could
    /// not be started (usage, configuration, access).
    pub fn verdict(&self) -> Verdict {
        match self {
            OnDemandError::Backup(_) | OnDemandError::FunctionFailed { .. } | OnDemandError::NoManifest { .. } => {
                Verdict::Problem
            }
            _ => Verdict::Failed,
        }
    }

    /// 1 when the backup or the test itself failed, 2 when it could not be started.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }
}

/// A backup taken, as the operator reads it.
pub fn render_backup(summary: &BackupSummary) -> String {
    format!(
        "Backup {}
  id {}, {:.1} MB, {} tables, {} rows, {:.1} s
  sha256 {}
",
        summary.key,
        summary.backup_id,
        summary.size_bytes as f64 / 1e6,
        summary.tables,
        summary.rows,
        summary.duration_ms as f64 / 1000.0,
        summary.sha256
    )
}

/// A restore test's report, as the operator reads it.
pub fn render_report(report: &RestoreReport) -> String {
    let mut out = format!(
        "Restore test of {}: {}
  RTO {:.1} s (target {} min), backup age {:.1} h (target {} h)
",
        report.backup_key,
        report.result,
        report.rto_ms as f64 / 1000.0,
        report.rto_target_ms / 60_000,
        report.backup_age_hours,
        report.rpo_target_hours
    );
    for check in &report.checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        out.push_str(&format!(
            "  {mark} {}
",
            check.name
        ));
    }
    out.push_str(&format!(
        "  report {}
",
        report.report_key
    ));
    out
}

/// The backup engine, configured as the function is, for the database behind
/// `database_secret`. Settings the function reads from its environment (`DUMP_COMPRESSION`,
/// `PART_SIZE_MIB`…) are read from this process's.
pub fn backup_engine(
    reach: &Reach,
    stack: &Stack,
    env: &Env,
    database_secret: &str,
    pg_tools: &str,
) -> Result<Backup<S3Objects, SnsAlertPublisher>, ConfigError> {
    let env = env.clone().with([
        ("DATABASE_SECRET_ARN", database_secret.to_owned()),
        ("BACKUP_BUCKET", stack.bucket()),
        ("PG_TOOLS_DIR", pg_tools.to_owned()),
    ]);
    Ok(Backup {
        store: reach.objects.clone(),
        alerts: reach.alerts.clone(),
        secrets: reach.secrets.clone(),
        http: reach.http.clone(),
        config: BackupConfig::from_env(&env)?,
    })
}

/// The restore engine, configured as restore-verifier is: scratch databases on the server
/// behind `staging_secret`.
pub fn verifier_engine(
    reach: &Reach,
    stack: &Stack,
    env: &Env,
    staging_secret: &str,
    pg_tools: &str,
) -> Result<Verifier<S3Objects, SnsAlertPublisher>, ConfigError> {
    let env = env.clone().with([
        ("STAGING_DATABASE_SECRET_ARN", staging_secret.to_owned()),
        ("BACKUP_BUCKET", stack.bucket()),
        ("PG_TOOLS_DIR", pg_tools.to_owned()),
    ]);
    Ok(Verifier {
        store: reach.objects.clone(),
        alerts: reach.alerts.clone(),
        secrets: reach.secrets.clone(),
        config: VerifierConfig::from_env(&env)?,
    })
}

/// A backup taken here; its manifest is in the bucket when this returns.
pub async fn backup_here<S: ObjectStore, A: ops_shared::AlertSink>(
    engine: &Backup<S, A>,
    label: Option<String>,
) -> Result<BackupSummary, OnDemandError> {
    if let Some(label) = label.as_ref().filter(|label| !valid_label(label)) {
        return Err(OnDemandError::Label(label.clone()));
    }
    Ok(engine.run(label, None).await.map(|(_, summary)| summary)?)
}

/// A restore test run here; a test that ran returns its report, passed or not.
pub async fn restore_test_here<S: ObjectStore, A: ops_shared::AlertSink>(
    engine: &Verifier<S, A>,
    backup: Option<&str>,
) -> Result<RestoreReport, OnDemandError> {
    Ok(engine.run(Selection::parse(backup), None).await?)
}

/// What invoking a function gave: its result, or, without waiting, that it started.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Invoked<T> {
    Finished(T),
    Started { function: String, status: i32 },
}

/// Invokes `function` with `payload`: waiting for its result (`wait`), or queued to run on
/// its own. A function error (the handler's `errorType` and message) is an error here.
pub async fn invoke<T: DeserializeOwned>(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &serde_json::Value,
    wait: bool,
) -> Result<Invoked<T>, OnDemandError> {
    use aws_sdk_lambda::types::InvocationType;
    let kind = if wait { InvocationType::RequestResponse } else { InvocationType::Event };
    let answer = lambda
        .invoke()
        .function_name(function)
        .invocation_type(kind)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|source| OnDemandError::Invoke {
            function: function.to_owned(),
            detail: ops_shared::aws::describe_sdk_error(&source),
            source: Box::new(source),
        })?;
    let body = answer.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    if let Some(kind) = answer.function_error() {
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .map(|v| {
                format!("{}: {}", v["errorType"].as_str().unwrap_or(kind), v["errorMessage"].as_str().unwrap_or(""))
            })
            .unwrap_or_else(|| kind.to_owned());
        return Err(OnDemandError::FunctionFailed { function: function.to_owned(), detail });
    }
    if !wait {
        return Ok(Invoked::Started { function: function.to_owned(), status: answer.status_code() });
    }
    serde_json::from_slice(&body)
        .map(Invoked::Finished)
        .map_err(|source| OnDemandError::Answer { function: function.to_owned(), source })
}

/// Follows an invoked backup to its manifest: the function's answer is only a backup once the
/// manifest it names is in the bucket.
pub async fn confirm_manifest<S: ObjectStore>(
    objects: &S,
    function: &str,
    summary: &BackupSummary,
) -> Result<(), OnDemandError> {
    let manifest = ops_shared::backup::manifest_key(&summary.key);
    let missing =
        |detail: String| OnDemandError::NoManifest { function: function.to_owned(), key: summary.key.clone(), detail };
    let listed = objects.list(&manifest).await.map_err(|e| missing(e.to_string()))?;
    if listed.iter().any(|o| o.key == manifest) { Ok(()) } else { Err(missing("not listed".to_owned())) }
}
