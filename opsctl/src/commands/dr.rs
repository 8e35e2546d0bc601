//! `opsctl dr freeze | thaw | assess | restore`, each telling ops on the stack's alert topic and,
//! with `--notify-topic`, the stakeholders on theirs.

use ops_shared::SnsAlertPublisher;
use ops_shared::aws::AwsClients;
use ops_shared::postgres::DbCredentials;
use tokio_postgres::Client;

use super::Context;
use crate::cli::{DrCommand, StackArgs};
use crate::dr::{self, AssessRequest, FreezeRequest};
use crate::dr_restore::{self, Engines, RestoreRequest};
use crate::error::OpsctlError;
use crate::notice::Recipients;
use crate::on_demand;
use crate::outcome::Outcome;
use crate::progress::Progress;
use crate::stack::{BACKUP_PREFIX, REPORT_PREFIX, Reach, Stack};

pub async fn run(ctx: &Context, command: DrCommand) -> Result<Outcome, OpsctlError> {
    match command {
        DrCommand::Freeze { stack, reason, notify_topic } => {
            freeze_or_thaw(ctx, stack, Some(reason), notify_topic.as_deref()).await
        }
        DrCommand::Thaw { stack, notify_topic } => freeze_or_thaw(ctx, stack, None, notify_topic.as_deref()).await,
        DrCommand::Assess { stack, notify_topic } => assess(ctx, stack, notify_topic.as_deref()).await,
        DrCommand::Restore { backup, target, confirm, jobs, health_urls, untested, stack, pg_tools, notify_topic } => {
            let request =
                RestoreRequest { backup_key: backup, target_secret: target, confirm, jobs, health_urls, untested };
            restore(ctx, request, stack, &pg_tools, notify_topic.as_deref()).await
        }
    }
}

/// The production database as a step sees it: the stack, its clients, the database secret's
/// ARN (the records' key), a connection, who runs opsctl, and the stakeholders' topic if given.
struct Production {
    stack: Stack,
    reach: Reach,
    secret_arn: String,
    creds: DbCredentials,
    client: Client,
    who: String,
    stakeholders: Option<SnsAlertPublisher>,
}

impl Production {
    async fn open(ctx: &Context, args: &StackArgs, notify_topic: Option<&str>) -> Result<Production, OpsctlError> {
        let stack = ctx.stack(args).await?;
        let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
        let secret = stack.names().database_secret();
        let secret_arn = dr::secret_arn(&ctx.store, &secret).await?;
        let (creds, client) = dr::connect(&ctx.store, &secret).await?;
        let who = crate::stack::caller(&ctx.sdk, &ctx.env).await;
        let stakeholders = stakeholders(ctx, notify_topic);
        Ok(Production { stack, reach, secret_arn, creds, client, who, stakeholders })
    }

    /// Ops on the stack's alert topic, and the stakeholders when `--notify-topic` was given.
    fn recipients(&self) -> Recipients<'_, SnsAlertPublisher> {
        Recipients { ops: &self.reach.alerts, stakeholders: self.stakeholders.as_ref() }
    }
}

/// The stakeholders' topic, `--notify-topic`.
fn stakeholders(ctx: &Context, notify_topic: Option<&str>) -> Option<SnsAlertPublisher> {
    notify_topic.map(|topic| SnsAlertPublisher::new(AwsClients::new(&ctx.sdk).sns(), topic))
}

/// `dr assess`: the newest backups against the live database, the data a restore would lose
/// recorded in the stack's bucket and told.
async fn assess(ctx: &Context, args: StackArgs, notify_topic: Option<&str>) -> Result<Outcome, OpsctlError> {
    let p = Production::open(ctx, &args, notify_topic).await?;
    let entries = dr::backups(&p.reach.objects, BACKUP_PREFIX, REPORT_PREFIX, chrono::Utc::now()).await?;
    let request = AssessRequest { secret_arn: p.secret_arn.clone(), who: p.who.clone() };
    let assessment = dr::assess(&p.client, &p.creds, entries, &p.reach.objects, &p.recipients(), &request).await?;
    Ok(Outcome::shown(args.json, &assessment, assessment.render(), assessment.verdict()))
}

/// `dr freeze` (with its reason) or `dr thaw`: the record in the stack's bucket, the notice on
/// its topic (and the stakeholders').
async fn freeze_or_thaw(
    ctx: &Context,
    args: StackArgs,
    reason: Option<String>,
    notify_topic: Option<&str>,
) -> Result<Outcome, OpsctlError> {
    let p = Production::open(ctx, &args, notify_topic).await?;
    let (objects, recipients) = (&p.reach.objects, p.recipients());
    let switch = match reason {
        Some(reason) => {
            let thaw_command = p.stack.thaw_command();
            let request = FreezeRequest { secret_arn: p.secret_arn.clone(), who: p.who.clone(), reason, thaw_command };
            dr::freeze(&p.client, &p.creds, objects, &recipients, &request).await?
        }
        None => dr::thaw(&p.client, &p.creds, objects, &recipients, &p.secret_arn, &p.who).await?,
    };
    Ok(Outcome::shown(args.json, &switch, switch.render(), switch.verdict()))
}

/// `dr restore`, in this process, with the restore and backup engines configured for the
/// target, and the restore-test engine on the staging server for an untested backup.
async fn restore(
    ctx: &Context,
    request: RestoreRequest,
    args: StackArgs,
    pg_tools: &str,
    notify_topic: Option<&str>,
) -> Result<Outcome, OpsctlError> {
    let stack = ctx.stack(&args).await?;
    let reach = Reach::new(&ctx.sdk, &stack, ctx.http.clone());
    let target = &request.target_secret;
    let verifier = on_demand::verifier_engine(&reach, &stack, &ctx.env, target, pg_tools)?;
    let staging_secret = stack.names().staging_database_secret();
    let staging = on_demand::verifier_engine(&reach, &stack, &ctx.env, &staging_secret, pg_tools)?;
    let safety = on_demand::backup_engine(&reach, &stack, &ctx.env, target, pg_tools)?;
    let engines = Engines { verifier: &verifier, staging: &staging, safety: &safety, http: &ctx.http };
    let stakeholders = stakeholders(ctx, notify_topic);
    let recipients = Recipients { ops: &verifier.alerts, stakeholders: stakeholders.as_ref() };
    let outcome = dr_restore::restore_and_tell(&engines, &request, &Progress::stderr(), &recipients).await?;
    Ok(Outcome::shown(args.json, &outcome, outcome.render(), outcome.verdict()))
}
