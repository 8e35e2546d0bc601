//! The stack's functions as deployed: each one's environment, from Lambda's
//! `GetFunctionConfiguration` of `<prefix>-<function>`, and the checks of that configuration
//! `opsctl preflight` and `opsctl check-env` both make.

use std::collections::BTreeMap;

use ops_shared::Env;
use ops_shared::config::SentryConfig;
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::secrets::AWSCURRENT;
use ops_shared::sentry::{READ_SECRET_TEMPLATE, SentryAccess};
use ops_shared::sentry_numbers::{Period, SentryStats, SentryUnavailable};
use serde::{Deserialize, Serialize};

use crate::sentry_rules::{self, SentryError};
use crate::stack::{BACKUP_FUNCTION, Names};

/// What an item came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Ok,
    /// Checked and not as the runbook asks: why, and the command that fixes it.
    Failed {
        reason: String,
        fix: String,
    },
    /// Not something the stack or its services can tell.
    NotCheckable {
        why: String,
    },
    /// The check itself could not run (a service could not be reached or read).
    CouldNotCheck {
        reason: String,
    },
}

impl State {
    pub fn failed(reason: impl Into<String>, fix: impl Into<String>) -> State {
        State::Failed { reason: reason.into(), fix: fix.into() }
    }

    pub fn could_not_check(reason: impl Into<String>) -> State {
        State::CouldNotCheck { reason: reason.into() }
    }
}

/// One item of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub section: &'static str,
    pub item: String,
    #[serde(flatten)]
    pub state: State,
}

impl Item {
    pub fn new(section: &'static str, item: impl Into<String>, state: State) -> Item {
        Item { section, item: item.into(), state }
    }
}

/// The functions template.yaml deploys, as `<prefix>-<function>`.
pub const FUNCTIONS: [&str; 6] =
    ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder", "sentry-webhook"];

pub const HEALTH_CHECKER: &str = "health-checker";

/// One function as Lambda answered for it.
#[derive(Debug, Clone)]
pub enum Deployed {
    /// Its environment variables.
    Found(Env),
    /// Lambda has no function of that name.
    Missing,
    Unreadable(String),
}

/// Every function of the stack, by its short name.
#[derive(Debug, Clone)]
pub struct Functions {
    pub prefix: String,
    by_name: BTreeMap<&'static str, Deployed>,
}

/// A health target of `HEALTH_TARGETS`, as far as the checklist looks at it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Target {
    pub name: String,
    pub kind: String,
}

impl Functions {
    pub async fn read(lambda: &aws_sdk_lambda::Client, names: &Names) -> Functions {
        let mut by_name = BTreeMap::new();
        for function in FUNCTIONS {
            let answer = lambda.get_function_configuration().function_name(names.function(function)).send().await;
            let deployed = match answer {
                Ok(config) => {
                    let vars = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
                    Deployed::Found(Env::from_pairs(vars))
                }
                Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("ResourceNotFoundException") => {
                    Deployed::Missing
                }
                Err(err) => Deployed::Unreadable(format!(
                    "lambda:GetFunctionConfiguration of {}: {}",
                    names.function(function),
                    ops_shared::aws::describe_sdk_error(&err)
                )),
            };
            by_name.insert(function, deployed);
        }
        Functions { prefix: names.prefix.clone(), by_name }
    }

    pub fn get(&self, function: &str) -> Option<&Deployed> {
        self.by_name.get(function)
    }

    pub fn all(&self) -> impl Iterator<Item = (&'static str, &Deployed)> {
        self.by_name.iter().map(|(name, deployed)| (*name, deployed))
    }

    /// The environment of `function`, or the state an item that needs it comes to.
    pub fn env(&self, function: &str) -> Result<&Env, State> {
        let name = format!("{}-{function}", self.prefix);
        match self.by_name.get(function) {
            Some(Deployed::Found(env)) => Ok(env),
            Some(Deployed::Unreadable(reason)) => Err(State::could_not_check(reason.clone())),
            Some(Deployed::Missing) | None => Err(State::failed(
                format!("function {name} is not deployed"),
                format!("sam deploy --parameter-overrides NamePrefix={}", self.prefix),
            )),
        }
    }

    /// health-checker's `HEALTH_TARGETS` as deployed.
    pub fn health_targets(&self) -> Result<Vec<Target>, State> {
        let env = self.env(HEALTH_CHECKER)?;
        let raw = env.get("HEALTH_TARGETS").unwrap_or("[]");
        serde_json::from_str(raw).map_err(|err| {
            State::failed(
                format!("HEALTH_TARGETS of {}-{HEALTH_CHECKER} is not a JSON array of targets: {err}", self.prefix),
                health_targets_fix(),
            )
        })
    }
}

/// The deploy that sets the health targets the runbook asks for.
pub fn health_targets_fix() -> String {
    "sam deploy --parameter-overrides HealthTargets='[{\"name\": \"app\", ...}, {\"name\": \"ai-engine\", ...}, \
     {\"name\": \"database\", \"kind\": \"postgres\", ...}]' (docs/configuration.md, \"Health targets\")"
        .to_owned()
}

/// `SENTRY_DSN` set and valid in every function as deployed.
pub fn dsn(functions: &Functions) -> State {
    let prefix = &functions.prefix;
    let mut wrong = Vec::new();
    for (function, deployed) in functions.all() {
        let name = format!("{prefix}-{function}");
        match deployed {
            Deployed::Unreadable(reason) => return State::could_not_check(reason.clone()),
            Deployed::Missing => wrong.push(format!("{name} is not deployed")),
            Deployed::Found(env) => match env.get("SENTRY_DSN") {
                None => wrong.push(format!("{name} has no SENTRY_DSN")),
                Some(value) => {
                    let valid = SentryConfig::from_env(&Env::from_pairs([("SENTRY_DSN", value)]));
                    if let Err(err) = valid {
                        wrong.push(format!("{name}: {err}"));
                    }
                }
            },
        }
    }
    if wrong.is_empty() {
        State::Ok
    } else {
        State::failed(
            format!("{}: errors would go unseen", wrong.join("; ")),
            format!("sam deploy --parameter-overrides NamePrefix={prefix} SentryDsn=<the project's DSN>"),
        )
    }
}

/// `sentry apply --dry-run`: drift, or the settings it needs, fail the item; Sentry not
/// answering means it could not be checked.
pub async fn sentry_rules(store: &SecretsManagerVersions, http: &reqwest::Client, prefix: &str) -> State {
    let apply = format!("opsctl sentry apply --prefix {prefix}");
    match sentry_rules::run(store, http, prefix, true).await {
        Ok(outcome) if outcome.verdict() == crate::outcome::Verdict::Ok => State::Ok,
        Ok(outcome) => State::failed(outcome.render().trim_end().replace('\n', "; "), apply),
        Err(err @ (SentryError::Unreachable { .. } | SentryError::Unexpected { .. })) => {
            State::could_not_check(err.to_string())
        }
        Err(err) => State::failed(
            err.to_string(),
            format!(
                "put the Sentry API settings into {} (docs/configuration.md, \"Sentry\"), then {apply}",
                sentry_rules::secret_name(prefix)
            ),
        ),
    }
}

/// The status's and digest's Sentry numbers, read with `<prefix>-sentry-read` over the past day:
/// settings missing or refused fail the item; Sentry not answering means it could not be checked.
pub async fn sentry_numbers(store: &SecretsManagerVersions, http: &reqwest::Client, prefix: &str) -> State {
    let secret = Names::new(prefix).sentry_read_secret();
    let sentry = SentryAccess::from_read(http.clone(), &secret, store.value_at(&secret, AWSCURRENT).await);
    let now = chrono::Utc::now();
    let day = Period { start: now - chrono::Duration::hours(24), end: now };
    match sentry.transactions(day).await {
        Ok(_) => State::Ok,
        Err(SentryUnavailable::NotConfigured { fix }) => {
            State::failed(format!("{secret} holds no settings: status and digest show no Sentry numbers"), fix)
        }
        Err(SentryUnavailable::Failed(problem)) if problem.contains("could not be reached") => {
            State::could_not_check(problem)
        }
        Err(SentryUnavailable::Failed(problem)) => State::failed(
            problem,
            format!(
                "aws secretsmanager put-secret-value --secret-id {secret} --secret-string '{READ_SECRET_TEMPLATE}' \
                 (docs/configuration.md, \"Sentry\")"
            ),
        ),
    }
}

/// The health targets the runbook lists: a label, and the target's name (`""`: the first
/// postgres target, the database).
pub const RUNBOOK_TARGETS: [(&str, &str); 3] = [("app", "app"), ("AI engine", "ai-engine"), ("database", "")];

/// What the backup function checks Supabase's own backups with, as deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupabaseSettings<'a> {
    pub project_ref: &'a str,
    pub token_secret: &'a str,
    pub api_url: &'a str,
    pub rpo_hours: u64,
}

impl Functions {
    /// The runbook's target `label` (named `name`) among health-checker's targets as deployed.
    pub fn runbook_target(&self, label: &str, name: &str) -> Result<Target, State> {
        let targets = self.health_targets()?;
        find(&targets, name).cloned().ok_or_else(|| missing(self, label, name))
    }

    /// scheduled-backup's Supabase settings as deployed, or why nothing checks Supabase's backups.
    pub fn supabase_settings(&self) -> Result<SupabaseSettings<'_>, State> {
        let prefix = &self.prefix;
        let env = self.env(BACKUP_FUNCTION)?;
        let (Some(project_ref), Some(token_secret)) =
            (env.get("SUPABASE_PROJECT_REF"), env.get("SUPABASE_TOKEN_SECRET_ARN"))
        else {
            return Err(State::failed(
                format!(
                    "{prefix}-{BACKUP_FUNCTION} has no SUPABASE_PROJECT_REF: nothing checks Supabase's own backups"
                ),
                format!("sam deploy --parameter-overrides NamePrefix={prefix} SupabaseProjectRef=<the project's ref>"),
            ));
        };
        let api_url = env.get("SUPABASE_API_URL").unwrap_or("https://api.supabase.com").trim_end_matches('/');
        let rpo_hours: u64 = env.get("RPO_HOURS").and_then(|h| h.parse().ok()).unwrap_or(24);
        Ok(SupabaseSettings { project_ref, token_secret, api_url, rpo_hours })
    }
}

/// The target named `name`, or for `""` the first postgres target.
fn find<'t>(targets: &'t [Target], name: &str) -> Option<&'t Target> {
    if name.is_empty() {
        targets.iter().find(|t| t.kind == "postgres")
    } else {
        targets.iter().find(|t| t.name == name)
    }
}

fn missing(functions: &Functions, label: &str, name: &str) -> State {
    let what = if name.is_empty() { "no postgres target".to_owned() } else { format!("no target named {name}") };
    State::failed(
        format!("HEALTH_TARGETS of {}-{HEALTH_CHECKER} has {what}: the {label} is not checked", functions.prefix),
        health_targets_fix(),
    )
}
