//! `opsctl check-env`.

use super::Context;
use crate::check_env::{check, runbook_requirements};
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};

pub async fn run(ctx: &Context, prefix: &str, json: bool) -> Result<Outcome, OpsctlError> {
    let report = check(&ctx.store, &ctx.http, &ctx.env, &runbook_requirements(prefix)).await;
    let verdict = Verdict::problem_if(!report.is_ok());
    let gate = crate::rotate::gate_line(&ctx.sdk, prefix).await;
    let shown = serde_json::json!({"rows": report.rows, "problems": report.problems, "staging_first": gate});
    Ok(Outcome::shown(json, &shown, format!("{}{gate}\n", report.render()), verdict))
}
