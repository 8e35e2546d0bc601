//! "Sentry": the DSN in every function as deployed, the alert rules as `sentry apply` makes
//! them (its dry run: no drift), and the AI engine among the health targets.

use super::{Item, SENTRY, Sources, State};
use crate::deployed::{self, Functions, HEALTH_CHECKER, health_targets_fix};

/// The health target the runbook's AI engine monitoring is.
pub const AI_ENGINE_TARGET: &str = "ai-engine";

pub async fn items(sources: &Sources<'_>, functions: &Functions) -> Vec<Item> {
    vec![
        Item::new(SENTRY, "SENTRY_DSN set in every function as deployed", deployed::dsn(functions)),
        Item::new(
            SENTRY,
            "alert rules as `opsctl sentry apply` makes them (error rate, P95)",
            deployed::sentry_rules(sources.store, sources.http, &sources.stack.prefix).await,
        ),
        Item::new(SENTRY, "AI engine monitored (a health target named ai-engine)", ai_engine(functions)),
    ]
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
