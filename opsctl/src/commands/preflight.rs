//! `opsctl preflight`: the runbook's deployment checklist against the deployed stack.

use super::Context;
use crate::cli::StackArgs;
use crate::error::OpsctlError;
use crate::outcome::Outcome;
use crate::preflight::{self, Sources};

pub async fn run(ctx: &Context, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let stack = ctx.stack(&args).await?;
    let sources = Sources { sdk: &ctx.sdk, store: &ctx.store, http: &ctx.http, stack: &stack, now: chrono::Utc::now() };
    let report = preflight::run(&sources).await;
    Ok(Outcome::shown(args.json, &report, report.render(), report.verdict()))
}
