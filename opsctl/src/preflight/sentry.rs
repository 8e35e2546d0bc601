//! "Sentry": the DSN in every function as deployed, the alert rules as `sentry apply` makes
//! them (its dry run: no drift), and the AI engine among the health targets.

use ops_shared::Env;
use ops_shared::config::SentryConfig;

use super::deployed::{Deployed, Functions, HEALTH_CHECKER, health_targets_fix};
use super::{Item, SENTRY, Sources, State};
use crate::sentry_rules::{self, SentryError};

/// The health target the runbook's AI engine monitoring is.
pub const AI_ENGINE_TARGET: &str = "ai-engine";

pub async fn items(sources: &Sources<'_>, functions: &Functions) -> Vec<Item> {
    vec![
        Item::new(SENTRY, "SENTRY_DSN set in every function as deployed", dsn(functions)),
        Item::new(SENTRY, "alert rules as `opsctl sentry apply` makes them (error rate, P95)", rules(sources).await),
        Item::new(SENTRY, "AI engine monitored (a health target named ai-engine)", ai_engine(functions)),
    ]
}

fn dsn(functions: &Functions) -> State {
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
async fn rules(sources: &Sources<'_>) -> State {
    let prefix = &sources.stack.prefix;
    let apply = format!("opsctl sentry apply --prefix {prefix}");
    match sentry_rules::run(sources.store, sources.http, prefix, true).await {
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

fn ai_engine(functions: &Functions) -> State {
    match functions.health_targets() {
        Err(state) => state,
        Ok(targets) if targets.iter().any(|t| t.name == AI_ENGINE_TARGET) => State::Ok,
        Ok(targets) => {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            State::failed(
                format!(
                    "HEALTH_TARGETS of {}-{HEALTH_CHECKER} has no target named {AI_ENGINE_TARGET} (it has: {})",
                    functions.prefix,
                    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                ),
                health_targets_fix(),
            )
        }
    }
}
