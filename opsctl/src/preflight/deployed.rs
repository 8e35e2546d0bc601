//! The stack's functions as deployed: each one's environment, from Lambda's
//! `GetFunctionConfiguration` of `<prefix>-<function>`.

use std::collections::BTreeMap;

use ops_shared::Env;
use serde::Deserialize;

use super::State;
use crate::stack::Names;

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
#[derive(Debug, Clone, Deserialize)]
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
