//! `opsctl incidents [--since 30d]` and `opsctl incidents show ID`: the incident log, for the
//! monthly review and a post-mortem's timeline.

use ops_shared::incident::{self, Incident};
use ops_shared::state::DynamoState;

use super::Context;
use crate::cli::StackArgs;
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};
use crate::stack::Names;

/// The incidents opened in the past `since`, or the one `show` names.
pub async fn run(
    ctx: &Context,
    show: Option<String>,
    since: chrono::Duration,
    args: StackArgs,
) -> Result<Outcome, OpsctlError> {
    let objects = ctx.backup_objects(&args).await?;
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(&ctx.sdk), Names::new(&args.prefix).state_table());
    let now = chrono::Utc::now();
    // A shown incident is looked for over the year the log keeps.
    let from = if show.is_some() { now - chrono::Duration::days(400) } else { now - since };
    let all = incident::since(&objects, &state, from).await.map_err(OpsctlError::Incidents)?;
    let Some(id) = show else {
        let text = render(&all, now.timestamp());
        return Ok(Outcome::shown(args.json, &all, text, Verdict::Ok));
    };
    match all.iter().find(|i| i.id == id) {
        Some(found) => Ok(Outcome::shown(args.json, found, found.render_timeline(now.timestamp()), Verdict::Ok)),
        None => Err(OpsctlError::Incidents(format!(
            "no incident {id} in the past 400 days: `opsctl incidents --since 400d` lists them"
        ))),
    }
}

fn render(incidents: &[Incident], now: i64) -> String {
    if incidents.is_empty() {
        return "no incidents\n".to_owned();
    }
    incidents.iter().map(|i| format!("{}\n", i.line(now))).collect()
}
