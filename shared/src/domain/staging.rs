//! Staging first: the same template runs a staging stack and a production stack. Every rotation
//! run records its outcome per strategy in its own stack's state table; a production stack that
//! names its staging twin reads the twin's record before createSecret changes anything, and
//! rotates only if staging's last rotation of that strategy passed with the code production
//! runs now. An operator may let one rotation through with a pass ([`issue_pass`]).

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::adapters::deployed_code::CodeHash;
use crate::adapters::state::{self, StateError, StateStore};
use crate::domain::rotation::Strategy;

/// The sort key of a strategy's record and of a pass.
pub const RECORD_SK: &str = "last";
pub const PASS_SK: &str = "pass";
/// How long an unused pass lets a rotation through.
pub const PASS_VALID_HOURS: i64 = 24;
/// Hashes of code that passed, newest first, kept per strategy.
const KEEP_PASSED: usize = 10;
/// Records outlive the longest rotation interval (180 days) with room to spare.
const RECORD_DAYS: i64 = 400;
const WRITE_ATTEMPTS: usize = 5;

/// Where a strategy's record is, the same in both stacks' tables.
pub fn record_pk(strategy: Strategy) -> String {
    format!("secret-rotation#strategy#{}", strategy.as_str())
}

/// Where the pass for one secret is, in that secret's stack's table.
pub fn pass_pk(secret: &str) -> String {
    format!("secret-rotation#staging-pass#{secret}")
}

/// The table of the stack named `prefix`, as template.yaml names it.
pub fn state_table(prefix: &str) -> String {
    format!("{prefix}-ops-state")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Finished,
    Failed,
}

/// One rotation run of a strategy: which secret, how it ended, when, and with what code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub strategy: String,
    pub secret: String,
    pub outcome: RunOutcome,
    pub at: DateTime<Utc>,
    /// The error, when the run failed.
    pub error: Option<String>,
    /// The `CodeSha256` Lambda reported for the function that ran.
    pub code_sha256: Option<String>,
    /// Why the code hash could not be read, when it could not.
    pub code_sha256_unreadable: Option<String>,
}

impl Run {
    pub fn new(strategy: Strategy, secret: &str, at: DateTime<Utc>, error: Option<String>, code: &CodeHash) -> Run {
        Run {
            strategy: strategy.as_str().to_owned(),
            secret: secret.to_owned(),
            outcome: if error.is_some() { RunOutcome::Failed } else { RunOutcome::Finished },
            at,
            error,
            code_sha256: code.known().map(str::to_owned),
            code_sha256_unreadable: match code {
                CodeHash::Known(_) => None,
                CodeHash::Unknown(reason) => Some(reason.clone()),
            },
        }
    }
}

/// A run that finished, with the code it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passed {
    pub secret: String,
    pub code_sha256: String,
    pub at: DateTime<Utc>,
}

/// A strategy's record in a stack's table: its last run and the code of its recent passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyRecord {
    pub last: Option<Run>,
    #[serde(default)]
    pub passed: Vec<Passed>,
}

impl StrategyRecord {
    fn with(&self, run: &Run) -> StrategyRecord {
        let mut passed = self.passed.clone();
        if let (RunOutcome::Finished, Some(hash)) = (run.outcome, &run.code_sha256) {
            passed.retain(|p| &p.code_sha256 != hash);
            passed.insert(0, Passed { secret: run.secret.clone(), code_sha256: hash.clone(), at: run.at });
            passed.truncate(KEEP_PASSED);
        }
        StrategyRecord { last: Some(run.clone()), passed }
    }
}

/// Records `run` as its strategy's last, keeping the passes of earlier runs.
pub async fn record_run(store: &impl StateStore, run: &Run) -> Result<(), StateError> {
    let Some(strategy) = Strategy::parse(&run.strategy) else { return Ok(()) };
    let pk = record_pk(strategy);
    let expires = (run.at + Duration::days(RECORD_DAYS)).timestamp();
    let written = state::update(store, (&pk, RECORD_SK), expires, WRITE_ATTEMPTS, |record: &StrategyRecord| {
        (record.with(run), ())
    })
    .await?;
    match written {
        Some(_) => Ok(()),
        None => Err(StateError {
            table: String::new(),
            operation: "PutItem",
            pk,
            sk: RECORD_SK.to_owned(),
            detail: format!("{WRITE_ATTEMPTS} overlapping writes in a row"),
        }),
    }
}

/// A strategy's record in a stack's table, if it has one.
pub async fn read_record(store: &impl StateStore, strategy: Strategy) -> Result<Option<StrategyRecord>, StateError> {
    let pk = record_pk(strategy);
    let Some(item) = store.get(&pk, RECORD_SK).await? else { return Ok(None) };
    serde_json::from_value(item.data).map(Some).map_err(|e| StateError {
        table: String::new(),
        operation: "GetItem",
        pk,
        sk: RECORD_SK.to_owned(),
        detail: format!("unreadable record: {e}"),
    })
}

/// Why production's rotation of a strategy waits for staging, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Staging's last rotation of the strategy failed.
    StagingFailed { secret: String, at: DateTime<Utc>, error: String },
    /// Staging has no record of the strategy at all.
    NeverRotated { staging: String, strategy: String },
    /// Staging never passed with the code production runs now.
    CodeChanged { secret: String, ours: String, last_pass: Option<Passed> },
    /// Production's own code hash could not be read.
    OwnCodeUnknown { reason: String },
    /// Staging's record could not be read.
    Unreadable { table: String, error: String },
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::StagingFailed { secret, at, error } => write!(
                f,
                "the last rotation of the staging secret {secret} failed at {}: {error}",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            Held::NeverRotated { staging, strategy } => {
                write!(f, "the staging stack {staging} has no record of a {strategy} rotation")
            }
            Held::CodeChanged { secret, ours, last_pass } => {
                write!(
                    f,
                    "the staging secret {secret} has not rotated successfully with the code deployed here ({ours})"
                )?;
                match last_pass {
                    Some(p) => write!(
                        f,
                        "; its last pass was at {} with code {}",
                        p.at.format("%Y-%m-%d %H:%M UTC"),
                        p.code_sha256
                    ),
                    None => write!(f, "; it has never passed"),
                }
            }
            Held::OwnCodeUnknown { reason } => {
                write!(f, "the code hash of this function is unknown, so it cannot be matched with staging's: {reason}")
            }
            Held::Unreadable { table, error } => write!(f, "staging's record in {table} could not be read: {error}"),
        }
    }
}

impl Held {
    /// The staging secret the verdict is about, if staging named one.
    pub fn staging_secret(&self) -> Option<&str> {
        match self {
            Held::StagingFailed { secret, .. } | Held::CodeChanged { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// Whether production may rotate `strategy` now: `Ok` with staging's pass of the code it
/// runs, or why it waits.
pub fn judge(
    staging: &str,
    strategy: Strategy,
    record: Option<&StrategyRecord>,
    ours: &CodeHash,
) -> Result<Passed, Held> {
    let never = || Held::NeverRotated { staging: staging.to_owned(), strategy: strategy.as_str().to_owned() };
    let record = record.ok_or_else(never)?;
    let last = record.last.as_ref().ok_or_else(never)?;
    if last.outcome == RunOutcome::Failed {
        let error = last.error.clone().unwrap_or_else(|| "no error was recorded".to_owned());
        return Err(Held::StagingFailed { secret: last.secret.clone(), at: last.at, error });
    }
    let ours = match ours {
        CodeHash::Known(hash) => hash,
        CodeHash::Unknown(reason) => return Err(Held::OwnCodeUnknown { reason: reason.clone() }),
    };
    match record.passed.iter().find(|p| &p.code_sha256 == ours) {
        Some(pass) => Ok(pass.clone()),
        None => Err(Held::CodeChanged {
            secret: last.secret.clone(),
            ours: ours.clone(),
            last_pass: record.passed.first().cloned(),
        }),
    }
}

/// An operator's leave for one rotation of a secret past the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForcePass {
    pub secret: String,
    pub by: String,
    pub reason: String,
    pub issued_at: DateTime<Utc>,
    /// The rotation (its token) that used the pass.
    pub used_by: Option<String>,
    pub used_at: Option<DateTime<Utc>>,
}

impl Default for ForcePass {
    fn default() -> Self {
        ForcePass {
            secret: String::new(),
            by: String::new(),
            reason: String::new(),
            issued_at: DateTime::<Utc>::MIN_UTC,
            used_by: None,
            used_at: None,
        }
    }
}

/// Writes a fresh pass for `secret`, replacing any earlier one.
pub async fn issue_pass(store: &impl StateStore, pass: &ForcePass) -> Result<(), StateError> {
    let pk = pass_pk(&pass.secret);
    let expires = (pass.issued_at + Duration::days(7)).timestamp();
    let written =
        state::update(store, (&pk, PASS_SK), expires, WRITE_ATTEMPTS, |_: &ForcePass| (pass.clone(), ())).await?;
    written.map(|_| ()).ok_or_else(|| StateError {
        table: String::new(),
        operation: "PutItem",
        pk,
        sk: PASS_SK.to_owned(),
        detail: "the pass was overwritten while it was written".to_owned(),
    })
}

/// Uses the pass for `secret` for the rotation `token`: `Some` when an unused pass issued in the
/// last [`PASS_VALID_HOURS`] is taken now (a conditional write: two rotations cannot both take
/// it), or was taken earlier by this same rotation (a retried createSecret).
pub async fn take_pass(
    store: &impl StateStore,
    secret: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<ForcePass>, StateError> {
    let pk = pass_pk(secret);
    let Some(item) = store.get(&pk, PASS_SK).await? else { return Ok(None) };
    let Ok(pass) = serde_json::from_value::<ForcePass>(item.data) else { return Ok(None) };
    if let Some(used_by) = &pass.used_by {
        return Ok((used_by == token).then_some(pass));
    }
    if now - pass.issued_at > Duration::hours(PASS_VALID_HOURS) {
        return Ok(None);
    }
    let used = ForcePass { used_by: Some(token.to_owned()), used_at: Some(now), ..pass };
    let data = serde_json::to_value(&used).map_err(|e| StateError {
        table: String::new(),
        operation: "serialise",
        pk: pk.clone(),
        sk: PASS_SK.to_owned(),
        detail: e.to_string(),
    })?;
    let expires = (now + Duration::days(RECORD_DAYS)).timestamp();
    let taken = store.put(&pk, PASS_SK, &data, Some(item.version), expires).await?;
    Ok(taken.then_some(used))
}
