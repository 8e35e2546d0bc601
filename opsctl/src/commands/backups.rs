//! `opsctl backups`: every backup, and whether a restore test covered it.

use super::Context;
use crate::cli::StackArgs;
use crate::dr;
use crate::error::OpsctlError;
use crate::outcome::{Outcome, Verdict};
use crate::stack::{BACKUP_PREFIX, REPORT_PREFIX};

pub async fn run(ctx: &Context, args: StackArgs) -> Result<Outcome, OpsctlError> {
    let objects = ctx.backup_objects(&args).await?;
    let entries = dr::backups(&objects, BACKUP_PREFIX, REPORT_PREFIX, chrono::Utc::now()).await?;
    Ok(Outcome::shown(args.json, &entries, dr::render_backups(&entries), Verdict::Ok))
}
