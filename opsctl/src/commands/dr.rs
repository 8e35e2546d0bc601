//! `opsctl dr freeze | thaw | assess | restore`.

use super::Context;
use crate::cli::{DrCommand, StackArgs};
use crate::dr::{self, FreezeRequest};
use crate::dr_restore::{self, Engines, RestoreRequest};
use crate::error::OpsctlError;
use crate::on_demand;
use crate::outcome::{Outcome, Verdict};
use crate::progress::Progress;
use crate::stack::{BACKUP_PREFIX, Names, REPORT_PREFIX, Reach};

pub async fn run(ctx: &Context, command: DrCommand) -> Result<Outcome, OpsctlError> {
    match command {
        DrCommand::Freeze { stack, reason } => freeze_or_thaw(ctx, stack, Some(reason)).await,
        DrCommand::Thaw { stack } => freeze_or_thaw(ctx, stack, None).await,
        DrCommand::Assess { stack } => assess(ctx, stack).await,
        DrCommand::Restore { backup, target, confirm, jobs, health_urls, untested, stack, pg_tools } => {
            let request =
                RestoreRequest { backup_key: backup, target_secret: target, confirm, jobs, health_urls, untested };
            restore(ctx, request, stack, &pg_tools).await
        }
    }
}

/// `dr assess`: the newest backups against the live database.
async fn assess(ctx: &Context, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let (creds, client) = dr::connect(&ctx.store, &Names::new(&args.prefix).database_secret()).await?;
    let objects = ctx.backup_objects(&args).await?;
    let entries = dr::backups(&objects, BACKUP_PREFIX, REPORT_PREFIX, chrono::Utc::now()).await?;
    let assessment = dr::assess(&client, &creds, entries).await?;
    Ok(Outcome::shown(args.json, &assessment, assessment.render(), Verdict::Ok))
}

/// `dr freeze` (with its reason) or `dr thaw`: the record in the stack's bucket, the alert on
/// its topic.
async fn freeze_or_thaw(ctx: &Context, args: StackArgs, reason: Option<String>) -> Result<Outcome, OpsctlError> {
    let stack = ctx.stack(&args).await?;
    let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
    let secret = stack.names().database_secret();
    let secret_arn = dr::secret_arn(&ctx.store, &secret).await?;
    let (creds, client) = dr::connect(&ctx.store, &secret).await?;
    let who = crate::stack::caller(&ctx.sdk, &ctx.env).await;
    let switch = match reason {
        Some(reason) => {
            let request = FreezeRequest { secret_arn, who, reason, thaw_command: stack.thaw_command() };
            dr::freeze(&client, &creds, &reach.objects, &reach.alerts, &request).await?
        }
        None => dr::thaw(&client, &creds, &reach.objects, &reach.alerts, &secret_arn, &who).await?,
    };
    Ok(Outcome::shown(args.json, &switch, switch.render(), Verdict::Ok))
}

/// `dr restore`, in this process, with the restore and backup engines configured for the
/// target, and the restore-test engine on the staging server for an untested backup.
async fn restore(
    ctx: &Context,
    request: RestoreRequest,
    args: StackArgs,
    pg_tools: &str,
) -> Result<Outcome, OpsctlError> {
    let stack = ctx.stack(&args).await?;
    let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
    let target = &request.target_secret;
    let verifier = on_demand::verifier_engine(&reach, &stack, &ctx.env, target, pg_tools)?;
    let staging_secret = stack.names().staging_database_secret();
    let staging = on_demand::verifier_engine(&reach, &stack, &ctx.env, &staging_secret, pg_tools)?;
    let safety = on_demand::backup_engine(&reach, &stack, &ctx.env, target, pg_tools)?;
    let engines = Engines { verifier: &verifier, staging: &staging, safety: &safety, http: &ctx.http };
    let outcome = dr_restore::restore(&engines, &request, &Progress::stderr()).await?;
    Ok(Outcome::shown(args.json, &outcome, outcome.render(), outcome.verdict()))
}
