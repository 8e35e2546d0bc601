//! `opsctl check-env`.

use super::Context;
use crate::check_env::stack::{self, Sources};
use crate::error::OpsctlError;
use crate::outcome::Outcome;
use crate::stack::Stack;

pub async fn run(ctx: &Context, prefix: &str, json: bool) -> Result<Outcome, OpsctlError> {
    let stack = Stack::discover(&ctx.sdk, prefix, None).await?;
    let sources = Sources { sdk: &ctx.sdk, store: &ctx.store, http: &ctx.http, stack: &stack };
    let checked = stack::run(&sources, &ctx.env).await;
    let gate = crate::rotate::gate_line(&ctx.sdk, prefix).await;
    let mut shown = serde_json::to_value(&checked).unwrap_or_default();
    if let Some(object) = shown.as_object_mut() {
        object.insert("staging_first".to_owned(), serde_json::Value::String(gate.clone()));
    }
    Ok(Outcome::shown(json, &shown, format!("{}{gate}\n", checked.render()), checked.verdict()))
}
