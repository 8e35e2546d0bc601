//! `opsctl sentry apply`.

use super::Context;
use crate::error::OpsctlError;
use crate::outcome::Outcome;
use crate::sentry_rules;

pub async fn apply(ctx: &Context, prefix: &str, dry_run: bool) -> Result<Outcome, OpsctlError> {
    let applied = sentry_rules::run(&ctx.store, &ctx.http, prefix, dry_run).await?;
    Ok(Outcome::text(applied.render(), applied.verdict()))
}
