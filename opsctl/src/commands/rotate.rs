//! `opsctl rotate SECRET [--force-past-staging --reason TEXT]`.

use super::Context;
use crate::cli::StackArgs;
use crate::outcome::{Outcome, Verdict};
use crate::rotate::{self, RotateError};

pub async fn run(ctx: &Context, secret: &str, force: Option<&str>, stack: &StackArgs) -> Result<Outcome, RotateError> {
    let (text, shown) = rotate::start(&ctx.sdk, &ctx.env, &ctx.store, secret, force, &stack.prefix).await?;
    Ok(Outcome::shown(stack.json, &shown, text, Verdict::Ok))
}
