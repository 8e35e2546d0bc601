//! "Secrets Manager": the stack's secrets created, readable and well-formed, the rotated ones
//! rotating on the runbook's cadence, each judged by `check-env`'s own checks.

use crate::check_env::{self, Report, Requirement};

use super::{Item, SECRETS, Sources, State};

pub async fn items(sources: &Sources<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    for requirement in check_env::runbook_requirements(&sources.stack.prefix) {
        let mut report = Report::default();
        check_env::check_secret(sources.store, sources.http, &requirement, &mut report).await;
        let state = state(&requirement, &report.problems, &sources.stack.prefix);
        items.push(Item::new(SECRETS, title(&requirement), state));
    }
    items
}

/// The state of the item of secret `name` among `items`.
pub fn state_of(items: &[Item], name: &str) -> State {
    items
        .iter()
        .find(|item| item.item.starts_with(&format!("{name} ")))
        .map_or_else(|| State::could_not_check(format!("{name} was not checked")), |item| item.state.clone())
}

fn title(requirement: &Requirement) -> String {
    match requirement.rotation {
        Some((_, days)) => {
            format!("{} created, readable, well-formed, rotating at least every {days} days", requirement.secret)
        }
        None => format!("{} created, readable, well-formed", requirement.secret),
    }
}

/// check-env's problems with the secret, and the one command that fixes them.
fn state(requirement: &Requirement, problems: &[String], prefix: &str) -> State {
    if problems.is_empty() {
        return State::Ok;
    }
    State::failed(problems.join("; "), check_env::fix_for(requirement, problems, prefix))
}
