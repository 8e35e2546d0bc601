//! The freeze record in the backup bucket: what `dr freeze` changed, and what `dr thaw` puts
//! back; and what a freeze or thaw reports.

use chrono::{DateTime, Utc};
use ops_shared::objects::ObjectStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::DrError;
use super::privileges::WritePrivilege;
use crate::bucket_json;
use crate::notice::Told;
use crate::outcome::Verdict;

/// Where the freeze records are kept in the backup bucket: outside the database, so that a
/// `dr restore` of it cannot take the record of what the freeze changed with it.
pub const FREEZE_PREFIX: &str = "reports/dr-freezes/";

/// `reports/dr-freezes/<secret>.json`, the secret's ARN with every character but letters,
/// digits, `-`, `_` and `.` written as `_`: Supabase names every database `postgres`.
pub fn freeze_key(secret_arn: &str) -> String {
    record_key(FREEZE_PREFIX, secret_arn)
}

/// `<prefix><secret>.json`, the secret's ARN written as [`freeze_key`] writes it.
pub(super) fn record_key(prefix: &str, secret_arn: &str) -> String {
    let name: String =
        secret_arn.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{prefix}{name}.json")
}

/// What `dr freeze` changed, written to the bucket before it changes anything, and what
/// `dr thaw` puts back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FreezeRecord {
    pub secret: String,
    pub host: String,
    pub database: String,
    pub frozen_at: DateTime<Utc>,
    pub frozen_by: String,
    pub reason: String,
    /// `default_transaction_read_only` as the database's own setting had it; none when unset.
    pub read_only_before: Option<String>,
    /// Every write privilege the freeze took away, the first run's and those a later run (a
    /// second freeze, a restore's re-freeze) found granted again.
    pub revoked: Vec<WritePrivilege>,
    #[serde(default)]
    pub thawed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub thawed_by: Option<String>,
    /// The command that undoes the freeze, for `dr restore` to name as the next step (empty in
    /// a record of an older opsctl).
    #[serde(default)]
    pub thaw_command: String,
}

impl FreezeRecord {
    pub fn frozen(&self) -> bool {
        self.thawed_at.is_none()
    }
}

/// Who asks for a freeze and why, for the record and the alert.
#[derive(Debug, Clone)]
pub struct FreezeRequest {
    /// The database secret's ARN: the record's key.
    pub secret_arn: String,
    /// The caller's identity (STS), or the OS user.
    pub who: String,
    pub reason: String,
    /// The command that undoes the freeze, as the alert tells ops.
    pub thaw_command: String,
}

/// What `freeze`, `thaw` or a re-freeze did.
#[derive(Debug, Serialize)]
pub struct WriteSwitch {
    pub database: String,
    /// Whether writes are stopped now.
    pub frozen: bool,
    /// Whether new transactions are read-only now.
    pub read_only: bool,
    /// Whether this run changed anything (false: it already was so).
    pub changed: bool,
    /// Write privileges this run took away (freeze) or gave back (thaw).
    pub privileges: usize,
    /// Sessions ended so that they reconnect read-only (freeze only).
    pub sessions_ended: u64,
    /// Sessions the role may not end (a superuser's: the platform's own).
    pub sessions_left: u64,
    /// Ways to write the freeze leaves open (freeze), or privileges thaw could not give back.
    pub not_done: Vec<String>,
    /// The freeze record in the backup bucket.
    pub record_key: String,
    /// Whether the notice reached ops (`alert`) and the stakeholders (`stakeholders`), else
    /// why not; empty when none was due.
    #[serde(flatten)]
    pub told: Told,
}

impl WriteSwitch {
    pub fn render(&self) -> String {
        let state = if self.frozen {
            "stopped: no role but the owner may write, new transactions are read-only"
        } else if self.read_only {
            "allowed to the API roles, but new transactions are still read-only (so before the freeze)"
        } else {
            "allowed"
        };
        let mut out = format!(
            "{}: writes {state} ({}; {} write privileges {})\n",
            self.database,
            if self.changed { "changed now" } else { "already so" },
            self.privileges,
            if self.frozen { "taken away" } else { "given back" }
        );
        if self.sessions_ended > 0 || self.sessions_left > 0 {
            out.push_str(&format!(
                "  {} open sessions ended, {} left (a superuser's)\n",
                self.sessions_ended, self.sessions_left
            ));
        }
        for line in &self.not_done {
            out.push_str(&format!("  not stopped: {line}\n"));
        }
        out.push_str(&format!("  record: {}\n", self.record_key));
        out.push_str(&self.told.render("  "));
        out
    }

    /// Writes stopped or allowed, and every notice that was due sent; else a notice did not
    /// go (exit 2), whatever the database's state (the output says it).
    pub fn verdict(&self) -> Verdict {
        self.told.verdict(Verdict::Ok)
    }
}

/// The freeze that holds on the database of `secret_arn`, if it is frozen.
pub async fn current_freeze(records: &impl ObjectStore, secret_arn: &str) -> Result<Option<FreezeRecord>, DrError> {
    Ok(read_record::<FreezeRecord>(records, &freeze_key(secret_arn)).await?.filter(FreezeRecord::frozen))
}

pub(super) async fn read_record<T: DeserializeOwned>(
    records: &impl ObjectStore,
    key: &str,
) -> Result<Option<T>, DrError> {
    bucket_json::read(records, key).await.map_err(|source| DrError::Record { key: key.to_owned(), source })
}

pub(super) async fn write_record(
    records: &impl ObjectStore,
    key: &str,
    record: &impl Serialize,
) -> Result<(), DrError> {
    bucket_json::write(records, key, record).await.map_err(|source| DrError::Record { key: key.to_owned(), source })
}
