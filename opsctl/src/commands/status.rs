//! `opsctl status`: the runbook's daily checks in one screen; `opsctl digest`: its weekly checks.

use ops_shared::cloudwatch::CloudWatch;
use ops_shared::digest::{self, Digest, Week};
use ops_shared::objects::S3Objects;
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::secrets::AWSCURRENT;
use ops_shared::sentry::SentryAccess;
use ops_shared::state::DynamoState;
use ops_shared::status::{self, Sources, Status};

use super::Context;
use crate::cli::StackArgs;
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};
use crate::stack::{BACKUP_PREFIX, Names, REPORT_PREFIX};

/// What the status and the digest read, for the stack `--prefix` names.
struct Readers {
    state: DynamoState,
    objects: S3Objects,
    alarms: CloudWatch,
    sentry: SentryAccess,
}

impl Readers {
    async fn new(ctx: &Context, args: &StackArgs) -> Result<Readers, OpsctlError> {
        let names = Names::new(&args.prefix);
        let secret = names.sentry_read_secret();
        let read = ctx.store.value_at(&secret, AWSCURRENT).await;
        Ok(Readers {
            state: DynamoState::new(aws_sdk_dynamodb::Client::new(&ctx.sdk), names.state_table()),
            objects: ctx.backup_objects(args).await?,
            alarms: CloudWatch::new(&ctx.sdk, ctx.http.clone()),
            sentry: SentryAccess::from_read(ctx.http.clone(), &secret, read),
        })
    }

    fn sources<'a>(
        &'a self,
        store: &'a SecretsManagerVersions,
        prefix: &'a str,
    ) -> Sources<'a, DynamoState, S3Objects, SecretsManagerVersions, CloudWatch, SentryAccess> {
        Sources {
            state: &self.state,
            objects: &self.objects,
            secrets: store,
            alarms: &self.alarms,
            sentry: &self.sentry,
            prefix,
            backup_prefix: BACKUP_PREFIX,
            report_prefix: REPORT_PREFIX,
        }
    }
}

pub async fn run(ctx: &Context, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let readers = Readers::new(ctx, &args).await?;
    let report = status::gather(&readers.sources(&ctx.store, &args.prefix), chrono::Utc::now()).await;
    Ok(Outcome::shown(args.json, &report, report.render(), verdict(&report)))
}

/// `opsctl digest`: the week `--week` names, or the last whole one.
pub async fn digest(ctx: &Context, week: Option<Week>, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let readers = Readers::new(ctx, &args).await?;
    let now = chrono::Utc::now();
    let week = week.unwrap_or_else(|| Week::last_complete(now));
    let report = digest::gather(&readers.sources(&ctx.store, &args.prefix), week, now).await;
    Ok(Outcome::shown(args.json, &report, report.render(), digest_verdict(&report)))
}

/// A source that could not be read is a failure to run; any line not ok, a problem found.
fn verdict(report: &Status) -> Verdict {
    if !report.unreadable.is_empty() {
        Verdict::Failed
    } else {
        Verdict::problem_if(report.verdict() != status::Verdict::Ok)
    }
}

fn digest_verdict(report: &Digest) -> Verdict {
    if !report.unreadable.is_empty() {
        Verdict::Failed
    } else {
        Verdict::problem_if(report.verdict() != status::Verdict::Ok)
    }
}
