//! Where the backup and the restore test run: in their Lambda function, or handed to the
//! engine task on ECS Fargate (the same engines, without Lambda's 15 minutes) when the
//! function would not finish with a safe margin, or always with `BACKUP_RUNTIME=fargate`.
//!
//! The estimate is the work's size (the database's bytes for a backup, the dump's for a restore
//! test) over the rate the last run achieved, or the rate measured at the function's memory
//! size when no run is recorded yet.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::domain::alert::{Alert, AlertSink, Severity};
use crate::runtime::config::{ConfigError, Env};

/// The estimate times this must fit in the time the function has left.
pub const SAFETY_FACTOR: f64 = 1.5;

/// The engine task's exit codes. The alert forwarder reads them from the task's stopped event:
/// a task that exits with neither 0 nor `FAILED` has not told ops itself.
pub mod exit_code {
    /// The work ran and failed; the engine alerted.
    pub const FAILED: u8 = 1;
    /// The work never started: bad arguments or configuration, in the task's log only.
    pub const NOT_STARTED: u8 = 2;
}

/// `BACKUP_RUNTIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Lambda, unless the estimate says it would not finish.
    Auto,
    Lambda,
    Fargate,
}

/// The engine task and where it runs: `TASK_CLUSTER_ARN`, `TASK_DEFINITION_ARN`,
/// `TASK_CONTAINER`, `TASK_SUBNETS`, `TASK_SECURITY_GROUPS` (comma-separated) and
/// `TASK_ASSIGN_PUBLIC_IP` (`ENABLED` or `DISABLED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConfig {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// Whether and where the work may be handed off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffConfig {
    pub choice: RuntimeChoice,
    /// `None` when the stack has no engine task (no image or no subnets given).
    pub task: Option<TaskConfig>,
    /// The function's local disk (`SCRATCH_MIB`) when the work's bytes must fit on it: the
    /// restore test downloads the dump before restoring it.
    pub scratch_bytes: Option<u64>,
}

fn list(env: &Env, var: &str) -> Vec<String> {
    env.get(var)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

impl HandoffConfig {
    pub fn from_env(env: &Env) -> Result<HandoffConfig, ConfigError> {
        let choice = match env.or("BACKUP_RUNTIME", "auto").to_ascii_lowercase().as_str() {
            "auto" => RuntimeChoice::Auto,
            "lambda" => RuntimeChoice::Lambda,
            "fargate" => RuntimeChoice::Fargate,
            other => {
                return Err(ConfigError::malformed(
                    "BACKUP_RUNTIME",
                    format!("{other:?} is not auto, lambda or fargate"),
                ));
            }
        };
        let task = match env.get("TASK_DEFINITION_ARN") {
            None => None,
            Some(_) => {
                let subnets = list(env, "TASK_SUBNETS");
                if subnets.is_empty() {
                    return Err(ConfigError::Missing { var: "TASK_SUBNETS".to_owned() });
                }
                let assign_public_ip = match env.or("TASK_ASSIGN_PUBLIC_IP", "ENABLED").as_str() {
                    "ENABLED" => true,
                    "DISABLED" => false,
                    other => {
                        return Err(ConfigError::malformed(
                            "TASK_ASSIGN_PUBLIC_IP",
                            format!("{other:?} is not ENABLED or DISABLED"),
                        ));
                    }
                };
                Some(TaskConfig {
                    cluster: env.arn("TASK_CLUSTER_ARN", "ecs")?,
                    task_definition: env.arn("TASK_DEFINITION_ARN", "ecs")?,
                    container: env.or("TASK_CONTAINER", "engine"),
                    subnets,
                    security_groups: list(env, "TASK_SECURITY_GROUPS"),
                    assign_public_ip,
                })
            }
        };
        if choice == RuntimeChoice::Fargate && task.is_none() {
            return Err(ConfigError::malformed(
                "BACKUP_RUNTIME",
                "fargate needs the engine task: deploy with TaskImageUri and TaskSubnets".to_owned(),
            ));
        }
        let scratch_bytes = match env.get("SCRATCH_MIB") {
            None => None,
            Some(_) => Some(env.parse_in_range("SCRATCH_MIB", 512u64, 1..=1_048_576)? * 1024 * 1024),
        };
        Ok(HandoffConfig { choice, task, scratch_bytes })
    }
}

/// Where a rate comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSource {
    /// The last recorded run: the backup's or the report's key.
    LastRun(String),
    /// The rate `cargo xtask bench --power` measured at the function's memory size.
    Measured,
}

/// How long the work is expected to take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub bytes: u64,
    pub bytes_per_second: f64,
    pub source: RateSource,
}

impl Estimate {
    pub fn seconds(&self) -> f64 {
        self.bytes as f64 / self.bytes_per_second.max(1.0)
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match &self.source {
            RateSource::LastRun(key) => format!("the last run, {key}"),
            RateSource::Measured => "the rate measured at this memory size".to_owned(),
        };
        write!(
            f,
            "{:.1} min: {:.0} MB at {:.1} MB/s ({from})",
            self.seconds() / 60.0,
            self.bytes as f64 / 1e6,
            self.bytes_per_second / 1e6
        )
    }
}

/// Where the work runs, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// In this function. `warning` when it may not finish and there is no task to hand to.
    Here {
        warning: Option<String>,
    },
    Task {
        reason: String,
    },
}

/// Decides where the work runs: `estimate` of the work (`None` when its size is unknown)
/// against `budget`, the time this function has left for it (`None`: no limit).
pub fn place(config: &HandoffConfig, estimate: Option<&Estimate>, budget: Option<Duration>) -> Placement {
    match config.choice {
        RuntimeChoice::Lambda => return Placement::Here { warning: None },
        RuntimeChoice::Fargate => return Placement::Task { reason: "BACKUP_RUNTIME is fargate".to_owned() },
        RuntimeChoice::Auto => {}
    }
    let Some(estimate) = estimate else {
        return Placement::Here { warning: None };
    };
    let why = match (config.scratch_bytes, budget) {
        (Some(disk), _) if estimate.bytes > disk => format!(
            "{:.0} MB does not fit in the function's {:.0} MB of local disk",
            estimate.bytes as f64 / 1e6,
            disk as f64 / 1e6
        ),
        (_, Some(budget)) if estimate.seconds() * SAFETY_FACTOR > budget.as_secs_f64() => format!(
            "estimated {estimate}, times {SAFETY_FACTOR} for safety, is more than the {:.1} min this function has",
            budget.as_secs_f64() / 60.0
        ),
        _ => return Placement::Here { warning: None },
    };
    match config.task {
        Some(_) => Placement::Task { reason: why },
        None => Placement::Here {
            warning: Some(format!(
                "{why}; it runs here anyway, as the stack has no engine task (deploy with TaskImageUri and TaskSubnets)"
            )),
        },
    }
}

/// Time kept back from the deadline when judging whether the work fits.
const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// The engine task, if the stack has one, and when to use it.
pub struct Handoff<L> {
    pub config: HandoffConfig,
    /// Present exactly when `config.task` is.
    pub launcher: Option<L>,
}

impl<L: TaskLauncher> Handoff<L> {
    /// Where work of `estimate` runs when this invocation must end by `deadline`; a run that
    /// may not finish here and has no task to go to is logged as a warning.
    pub fn place(&self, estimate: Option<&Estimate>, deadline: Option<Instant>) -> Placement {
        let budget = deadline.map(|d| d.saturating_duration_since(Instant::now()).saturating_sub(DEADLINE_MARGIN));
        let placement = place(&self.config, estimate, budget);
        if let Placement::Here { warning: Some(warning) } = &placement {
            tracing::warn!("{warning}");
        }
        placement
    }

    /// Whether an estimate is needed at all: not when the choice is fixed, nor without a task
    /// to hand to (a run that cannot finish then fails on its deadline and says so).
    pub fn needs_estimate(&self) -> bool {
        self.config.choice == RuntimeChoice::Auto && self.launcher.is_some()
    }
}

/// A function's answer: the work's own, or where it was handed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ran<T> {
    // First: a summary or report never has `handed_off_to`, so the order only saves a try.
    HandedOff(HandedOff),
    Here(T),
}

/// Why the engine task could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("ECS RunTask: {0}")]
    Call(String),
    #[error("ECS RunTask refused: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("ECS did not start the task: {0}")]
    NotStarted(String),
    #[error("ECS RunTask: unreadable answer: {0}")]
    Unreadable(String),
}

/// Starts the engine task.
pub trait TaskLauncher: Send + Sync {
    /// Runs the engine with `command`; `client_token` makes a repeated start the same start.
    /// Returns the task's ARN.
    fn start(
        &self,
        command: &[String],
        client_token: &str,
        started_by: &str,
    ) -> impl Future<Output = Result<String, TaskError>> + Send;
}

/// What a function answers when it handed its work to the engine task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandedOff {
    pub handed_off_to: String,
    pub task_arn: String,
    pub command: Vec<String>,
    pub reason: String,
    pub estimate: Option<Estimate>,
}

/// Starts the engine task with `command` for `what` ("The backup of …"). A start that fails
/// raises a critical alert at once from `source`: nothing ran, and nothing will.
pub async fn hand_off<L: TaskLauncher, A: AlertSink>(
    (launcher, alerts): (&L, &A),
    (source, what): (&str, &str),
    command: Vec<String>,
    client_token: &str,
    (reason, estimate): (String, Option<Estimate>),
) -> Result<HandedOff, TaskError> {
    match launcher.start(&command, client_token, source).await {
        Ok(task_arn) => {
            tracing::info!(task = %task_arn, command = ?command, reason = %reason, "handed off to the engine task");
            Ok(HandedOff { handed_off_to: "fargate".to_owned(), task_arn, command, reason, estimate })
        }
        Err(err) => {
            let alert = Alert::new(source, Severity::Critical, format!("{source}:handoff"), format!("{what} could not start on Fargate"))
                .summary(format!(
                    "{what} was to run as the engine task on ECS Fargate ({reason}), but the task did not start: {err}. \
                     Nothing ran. Start it by hand (`opsctl backup --local` or `opsctl restore-test --local`) and fix the task's configuration."
                ))
                .detail("command", command.join(" "))
                .detail("error", err.to_string());
            if let Err(publish) = alerts.publish(&alert).await {
                tracing::error!(error = %publish, "the handoff failure alert could not be published");
            }
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskConfig {
        TaskConfig {
            cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/ops".into(),
            task_definition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/ops-engine:3".into(),
            container: "engine".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec![],
            assign_public_ip: true,
        }
    }

    fn estimate(gb: f64, mb_per_second: f64) -> Estimate {
        Estimate { bytes: (gb * 1e9) as u64, bytes_per_second: mb_per_second * 1e6, source: RateSource::Measured }
    }

    const FOURTEEN_MIN: Duration = Duration::from_secs(840);

    #[test]
    fn auto_hands_off_only_what_would_not_finish_with_the_margin() {
        let config = HandoffConfig { choice: RuntimeChoice::Auto, task: Some(task()), scratch_bytes: None };
        // 5 GB at 10 MB/s: 500 s, 750 s with the margin: fits in 840 s.
        assert_eq!(place(&config, Some(&estimate(5.0, 10.0)), Some(FOURTEEN_MIN)), Placement::Here { warning: None });
        // 6 GB: 600 s, 900 s with the margin: does not.
        let Placement::Task { reason } = place(&config, Some(&estimate(6.0, 10.0)), Some(FOURTEEN_MIN)) else {
            panic!("6 GB at 10 MB/s must go to the task");
        };
        assert!(reason.contains("10.0 min: 6000 MB at 10.0 MB/s"), "{reason}");
        assert!(reason.contains("14.0 min"), "{reason}");
        // Unknown size, or no deadline: here.
        assert_eq!(place(&config, None, Some(FOURTEEN_MIN)), Placement::Here { warning: None });
        assert_eq!(place(&config, Some(&estimate(60.0, 1.0)), None), Placement::Here { warning: None });
    }

    #[test]
    fn a_dump_larger_than_the_local_disk_goes_to_the_task_however_fast() {
        let config = HandoffConfig {
            choice: RuntimeChoice::Auto,
            task: Some(task()),
            scratch_bytes: Some(10_240 * 1024 * 1024),
        };
        let Placement::Task { reason } = place(&config, Some(&estimate(11.0, 10_000.0)), Some(FOURTEEN_MIN)) else {
            panic!("an 11 GB dump cannot be downloaded to 10 GiB");
        };
        assert_eq!(reason, "11000 MB does not fit in the function's 10737 MB of local disk");
        assert_eq!(place(&config, Some(&estimate(10.0, 10_000.0)), None), Placement::Here { warning: None });
    }

    #[test]
    fn a_handed_off_answer_reads_back_as_such_and_any_other_as_the_work() {
        let handed = HandedOff {
            handed_off_to: "fargate".into(),
            task_arn: "arn:aws:ecs:eu-west-1:123456789012:task/ops/1".into(),
            command: vec!["backup".into()],
            reason: "BACKUP_RUNTIME is fargate".into(),
            estimate: None,
        };
        let text = serde_json::to_string(&Ran::<serde_json::Value>::HandedOff(handed.clone())).expect("json");
        match serde_json::from_str::<Ran<serde_json::Value>>(&text).expect("read") {
            Ran::HandedOff(read) => assert_eq!(read, handed),
            Ran::Here(other) => panic!("read as the work: {other}"),
        }
        let summary = r#"{"key": "backups/app/x.dump", "size_bytes": 1}"#;
        assert!(matches!(serde_json::from_str::<Ran<serde_json::Value>>(summary).expect("read"), Ran::Here(_)));
    }

    #[test]
    fn without_a_task_a_long_run_stays_here_with_a_warning_and_the_choice_wins() {
        let no_task = HandoffConfig { choice: RuntimeChoice::Auto, task: None, scratch_bytes: None };
        let Placement::Here { warning: Some(warning) } =
            place(&no_task, Some(&estimate(60.0, 10.0)), Some(FOURTEEN_MIN))
        else {
            panic!("no task: stays here, warned");
        };
        assert!(warning.contains("TaskImageUri and TaskSubnets"), "{warning}");
        let lambda = HandoffConfig { choice: RuntimeChoice::Lambda, task: Some(task()), scratch_bytes: None };
        assert_eq!(place(&lambda, Some(&estimate(60.0, 1.0)), Some(FOURTEEN_MIN)), Placement::Here { warning: None });
        let fargate = HandoffConfig { choice: RuntimeChoice::Fargate, task: Some(task()), scratch_bytes: None };
        assert!(matches!(place(&fargate, Some(&estimate(0.001, 100.0)), Some(FOURTEEN_MIN)), Placement::Task { .. }));
    }

    #[test]
    fn the_task_configuration_is_read_whole_or_refused_by_name() {
        let env = Env::from_pairs([
            ("TASK_CLUSTER_ARN", "arn:aws:ecs:eu-west-1:123456789012:cluster/ops"),
            ("TASK_DEFINITION_ARN", "arn:aws:ecs:eu-west-1:123456789012:task-definition/ops-engine:3"),
            ("TASK_SUBNETS", "subnet-1"),
        ]);
        let config = HandoffConfig::from_env(&env).expect("a whole task configuration");
        assert_eq!(config, HandoffConfig { choice: RuntimeChoice::Auto, task: Some(task()), scratch_bytes: None });
        let scratch = Env::from_pairs([("SCRATCH_MIB", "0")]);
        assert!(HandoffConfig::from_env(&scratch).unwrap_err().to_string().contains("SCRATCH_MIB"));
        let no_subnets = Env::from_pairs([("TASK_DEFINITION_ARN", "arn:aws:ecs:eu-west-1:1:task-definition/x:1")]);
        assert!(HandoffConfig::from_env(&no_subnets).unwrap_err().to_string().contains("TASK_SUBNETS"));
        let fargate_alone = Env::from_pairs([("BACKUP_RUNTIME", "fargate")]);
        assert!(HandoffConfig::from_env(&fargate_alone).unwrap_err().to_string().contains("TaskImageUri"));
        let typo = Env::from_pairs([("BACKUP_RUNTIME", "fargte")]);
        assert!(HandoffConfig::from_env(&typo).unwrap_err().to_string().contains("BACKUP_RUNTIME"));
        assert_eq!(HandoffConfig::from_env(&Env::from_pairs([("X", "y")])).expect("none").task, None);
    }
}
