//! The runbook's disaster-recovery steps as commands: stop writes to the production database
//! (`dr freeze`) and allow them again (`dr thaw`), judge the newest backups against the live
//! database and record the data a restore would lose (`dr assess`), and list backups with
//! whether a restore test covered them (`backups`). All act through the stored credentials
//! (`<prefix>-database`), and each step's notice goes to ops and, when given, the
//! stakeholders.

mod assess;
mod freeze;
mod loss;
mod privileges;
mod record;
mod thaw;

use std::time::Duration;

use ops_shared::objects::ObjectError;
use ops_shared::postgres::{DbCredentials, DbError, describe};
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::{AWSCURRENT, SecretError};
use tokio_postgres::Client;

use crate::bucket_json::RecordFault;
use crate::outcome::Verdict;

pub use assess::{
    AssessRequest, Assessment, BackupEntry, Passed, Tested, assess, backups, render_backups, restore_tests, restores,
};
pub use freeze::{freeze, reapply_freeze_if_frozen};
pub use loss::{
    ASSESSMENT_PREFIX, AssessmentRecord, DataLoss, StatedLoss, TableRows, assessment_key, loss_at_restore, minute, span,
};
pub use privileges::WritePrivilege;
pub use record::{FREEZE_PREFIX, FreezeRecord, FreezeRequest, WriteSwitch, current_freeze, freeze_key};
pub use thaw::thaw;

/// The runbook's rule: a backup younger than this is restored without further ado.
pub const RESTORE_WITHOUT_ASKING_HOURS: f64 = 24.0;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An underlying error of any kind, kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DrError {
    #[error("cannot read the database secret {secret}: {source}")]
    Secret {
        secret: String,
        #[source]
        source: Cause,
    },
    #[error("cannot read the database secret {secret}: Secrets Manager named no ARN")]
    NoArn { secret: String },
    #[error("cannot reach the database of {secret}: {source}")]
    Database {
        secret: String,
        #[source]
        source: DbError,
    },
    #[error("the database refused {what}: {detail}")]
    Refused {
        what: String,
        /// The server's message and SQLSTATE.
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot read the backups: {0} (allow s3:ListBucket and s3:GetObject on the backup bucket)")]
    Backups(#[source] ObjectError),
    #[error(
        "cannot read or write {key} in the backup bucket: {source} (allow s3:ListBucket, s3:GetObject and \
         s3:PutObject on it)"
    )]
    Record {
        key: String,
        #[source]
        source: RecordFault,
    },
}

impl DrError {
    pub const VERDICT: Verdict = Verdict::Failed;
}

/// The production database's credentials from its secret, and a connection with them.
pub async fn connect(store: &impl SecretVersions, secret: &str) -> Result<(DbCredentials, Client), DrError> {
    let unreadable = |source: SecretError| DrError::Secret { secret: secret.to_owned(), source: source.into() };
    let value = store.value_at(secret, AWSCURRENT).await.map_err(unreadable)?;
    let creds: DbCredentials = value.json(secret, AWSCURRENT).map_err(unreadable)?;
    let client = connect_with(&creds, secret).await?;
    Ok((creds, client))
}

/// A connection with `creds` (of `secret`) whose own transactions may write.
pub(crate) async fn connect_with(creds: &DbCredentials, secret: &str) -> Result<Client, DrError> {
    let client = creds
        .connect(CONNECT_TIMEOUT)
        .await
        .map_err(|source| DrError::Database { secret: secret.to_owned(), source })?;
    // A session opened while the database is frozen is read-only itself: it could neither
    // freeze again nor thaw.
    client
        .batch_execute("SET default_transaction_read_only = off")
        .await
        .map_err(|e| refused("SET default_transaction_read_only", e))?;
    Ok(client)
}

/// The ARN of the database secret (the freeze record is keyed by it, whatever name was typed).
pub async fn secret_arn(store: &impl SecretVersions, secret: &str) -> Result<String, DrError> {
    let description = store
        .describe(secret)
        .await
        .map_err(|source| DrError::Secret { secret: secret.to_owned(), source: source.into() })?;
    if description.arn.is_empty() {
        return Err(DrError::NoArn { secret: secret.to_owned() });
    }
    Ok(description.arn)
}

pub(crate) fn refused(what: &str, source: tokio_postgres::Error) -> DrError {
    DrError::Refused { what: what.to_owned(), detail: describe(&source), source }
}
