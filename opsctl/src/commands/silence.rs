//! `opsctl silence add | list | expire`.

use ops_shared::state::DynamoState;

use super::Context;
use crate::cli::SilenceCommand;
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};
use crate::silences::{self, NewSilence};
use crate::stack::Names;

pub async fn run(ctx: &Context, command: SilenceCommand) -> Result<Outcome, OpsctlError> {
    let now = chrono::Utc::now();
    let state =
        |prefix: &str| DynamoState::new(aws_sdk_dynamodb::Client::new(&ctx.sdk), Names::new(prefix).state_table());
    match command {
        SilenceCommand::Add { matchers, duration, reason, prefix } => {
            let created_by = crate::stack::caller(&ctx.sdk, &ctx.env).await;
            let new = NewSilence { matchers, duration, reason, created_by };
            let silence = silences::add(&state(&prefix), new, now).await?;
            let text = format!(
                "{}\nmatching alerts are held back until then; the end is told to ops\n",
                silences::line(&silence, now.timestamp())
            );
            Ok(Outcome::text(text, Verdict::Ok))
        }
        SilenceCommand::List { prefix, json } => {
            let all = silences::list(&state(&prefix), now).await?;
            Ok(Outcome::shown(json, &all, silences::render(&all, now), Verdict::Ok))
        }
        SilenceCommand::Expire { id, prefix } => {
            let silence = silences::expire(&state(&prefix), &id, now).await?;
            let text = format!(
                "{}\nthe forwarder tells ops what it held back within 5 minutes\n",
                silences::line(&silence, now.timestamp())
            );
            Ok(Outcome::text(text, Verdict::Ok))
        }
    }
}
