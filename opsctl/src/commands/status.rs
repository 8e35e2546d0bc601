//! `opsctl status`: the runbook's daily checks in one screen.

use ops_shared::cloudwatch::CloudWatch;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::AWSCURRENT;
use ops_shared::sentry::SentryAccess;
use ops_shared::state::DynamoState;
use ops_shared::status::{self, Sources, Status};

use super::Context;
use crate::cli::StackArgs;
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};
use crate::stack::{BACKUP_PREFIX, Names, REPORT_PREFIX};

pub async fn run(ctx: &Context, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let objects = ctx.backup_objects(&args).await?;
    let names = Names::new(&args.prefix);
    let sentry = sentry(ctx, &names).await;
    let sources = Sources {
        state: &DynamoState::new(aws_sdk_dynamodb::Client::new(&ctx.sdk), names.state_table()),
        objects: &objects,
        secrets: &ctx.store,
        alarms: &CloudWatch::new(&ctx.sdk, ctx.http.clone()),
        sentry: &sentry,
        prefix: &args.prefix,
        backup_prefix: BACKUP_PREFIX,
        report_prefix: REPORT_PREFIX,
    };
    let report = status::gather(&sources, chrono::Utc::now()).await;
    Ok(Outcome::shown(args.json, &report, report.render(), verdict(&report)))
}

/// Sentry's reader, from the stack's `<prefix>-sentry-read` secret.
pub async fn sentry(ctx: &Context, names: &Names) -> SentryAccess {
    let secret = names.sentry_read_secret();
    let read = ctx.store.value_at(&secret, AWSCURRENT).await;
    SentryAccess::from_read(ctx.http.clone(), &secret, read)
}

/// A source that could not be read is a failure to run; any line not ok, a problem found.
fn verdict(report: &Status) -> Verdict {
    if !report.unreadable.is_empty() {
        Verdict::Failed
    } else {
        Verdict::problem_if(report.verdict() != status::Verdict::Ok)
    }
}
