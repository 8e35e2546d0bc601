//! `opsctl backup` and `opsctl restore-test`: through the deployed function, or here
//! (`--local`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Context;
use crate::cli::RunArgs;
use crate::error::OpsctlError;
use crate::on_demand::{self, Invoked, OnDemandError};
use crate::outcome::{Outcome, Verdict};
use crate::progress::Progress;
use crate::stack::Reach;

/// What invoking a function gave: its answer, or that it was only queued (no `--wait`).
enum Ran<T> {
    Answered(Result<T, OnDemandError>),
    Queued(Outcome),
}

/// `opsctl backup`: a backup now, its manifest in the bucket before it counts.
pub async fn backup(ctx: &Context, label: Option<String>, wait: bool, run: RunArgs) -> Result<Outcome, OpsctlError> {
    let json = run.stack.json;
    let stack = ctx.stack(&run.stack).await?;
    let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
    let taken = if run.local {
        let database = stack.names().database_secret();
        let engine = on_demand::backup_engine(&reach, &stack, &ctx.env, &database, &run.pg_tools)?;
        Progress::stderr().phase("taking a backup here", on_demand::backup_here(&engine, label)).await
    } else {
        let payload = serde_json::json!({ "label": label });
        let function = stack.names().backup_function();
        match through_lambda(ctx, &function, payload, wait, json).await {
            Ran::Answered(Ok(summary)) => {
                on_demand::confirm_manifest(&reach.objects, &function, &summary).await.map(|()| summary)
            }
            Ran::Answered(Err(err)) => Err(err),
            Ran::Queued(queued) => return Ok(queued),
        }
    };
    let summary = taken?;
    Ok(Outcome::shown(json, &summary, on_demand::render_backup(&summary), Verdict::Ok))
}

/// `opsctl restore-test`: a restore test now; a test that ran and failed is a problem found.
pub async fn restore_test(ctx: &Context, backup: &str, wait: bool, run: RunArgs) -> Result<Outcome, OpsctlError> {
    let json = run.stack.json;
    let stack = ctx.stack(&run.stack).await?;
    let tested = if run.local {
        let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
        let staging = stack.names().staging_database_secret();
        let engine = on_demand::verifier_engine(&reach, &stack, &ctx.env, &staging, &run.pg_tools)?;
        Progress::stderr().phase("restore test here", on_demand::restore_test_here(&engine, Some(backup))).await
    } else {
        let payload = serde_json::json!({ "backup": backup });
        match through_lambda(ctx, &stack.names().restore_verifier_function(), payload, wait, json).await {
            Ran::Answered(tested) => tested,
            Ran::Queued(queued) => return Ok(queued),
        }
    };
    let report = tested?;
    Ok(Outcome::shown(json, &report, on_demand::render_report(&report), Verdict::problem_if(!report.passed())))
}

/// Runs `function` through Lambda: its result, or, when it was only queued (no `--wait`), the
/// outcome that says so.
async fn through_lambda<T: DeserializeOwned + Serialize>(
    ctx: &Context,
    function: &str,
    payload: serde_json::Value,
    wait: bool,
    json: bool,
) -> Ran<T> {
    let lambda = aws_sdk_lambda::Client::new(&ctx.sdk);
    let what = format!("invoking {function}");
    let invoked = on_demand::invoke::<ops_shared::handoff::Ran<T>>(&lambda, function, &payload, wait);
    match Progress::stderr().phase(&what, invoked).await {
        Ok(Invoked::Finished(ops_shared::handoff::Ran::Here(result))) => Ran::Answered(Ok(result)),
        Ok(Invoked::Finished(ops_shared::handoff::Ran::HandedOff(handed))) => {
            let text = format!(
                "{function} handed the work to the engine task on Fargate ({}): {}\n\
                 its logs are in /ecs/<prefix>-engine-task; `opsctl backups` shows the result once it is done\n",
                handed.task_arn, handed.reason
            );
            Ran::Queued(Outcome::shown(json, &handed, text, Verdict::Ok))
        }
        Ok(queued @ Invoked::Started { .. }) => {
            let text = format!("{function} started; `opsctl backups` shows the result once it is done\n");
            Ran::Queued(Outcome::shown(json, &queued, text, Verdict::Ok))
        }
        Err(err) => Ran::Answered(Err(err)),
    }
}
