//! The freeze record in the backup bucket: what `dr freeze` changed, and what `dr thaw` puts
//! back; and what a freeze or thaw reports.

use chrono::{DateTime, Utc};
use ops_shared::objects::ObjectStore;
use serde::{Deserialize, Serialize};

use super::DrError;
use super::privileges::WritePrivilege;
use crate::bucket_json;

/// Where the freeze records are kept in the backup bucket: outside the database, so that a
/// `dr restore` of it cannot take the record of what the freeze changed with it.
pub const FREEZE_PREFIX: &str = "reports/dr-freezes/";

/// `reports/dr-freezes/<secret>.json`, the secret's ARN with every character but letters,
/// digits, `-`, `_` and `.` written as `_`: Supabase names every database `postgres`.
pub fn freeze_key(secret_arn: &str) -> String {
    let name: String =
        secret_arn.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{FREEZE_PREFIX}{name}.json")
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
    /// Whether the alert reached the alert topic (else why not); empty when none was due.
    pub alert: String,
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
        if !self.alert.is_empty() {
            out.push_str(&format!("  alert: {}\n", self.alert));
        }
        out
    }
}

pub(super) async fn read_record(records: &impl ObjectStore, key: &str) -> Result<Option<FreezeRecord>, DrError> {
    bucket_json::read(records, key).await.map_err(|source| DrError::Record { key: key.to_owned(), source })
}

pub(super) async fn write_record(records: &impl ObjectStore, key: &str, record: &FreezeRecord) -> Result<(), DrError> {
    bucket_json::write(records, key, record).await.map_err(|source| DrError::Record { key: key.to_owned(), source })
}
