//! A rotation started by an operator: with a reason, first the one-use pass that lets it past
//! the staging-first gate. And the line `opsctl check-env` prints about the gate.

use chrono::Utc;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::staging::{self, ForcePass};
use ops_shared::state::DynamoState;

use aws_config::SdkConfig;
use ops_shared::Env;
use ops_shared::secret_versions::SecretsManagerVersions;

use crate::stack::Names;

/// Why a rotation could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("cannot find secret {secret}: {detail}")]
    Secret { secret: String, detail: String },
    #[error("cannot write the pass into {table}: {detail}; nothing was started")]
    Pass { table: String, detail: String },
    #[error("the pass for {secret} is written but RotateSecret failed: {detail}; run the command again")]
    Start { secret: String, detail: String },
}

/// Starts a rotation of `secret` in the stack `prefix`; with `force` (the reason), first writes
/// the pass. Returns what was done, as text and as JSON.
pub async fn start(
    sdk: &SdkConfig,
    env: &Env,
    store: &SecretsManagerVersions,
    secret: &str,
    force: Option<&str>,
    prefix: &str,
) -> Result<(String, serde_json::Value), RotateError> {
    let described = store.describe(secret).await;
    let name = described.map_err(|e| RotateError::Secret { secret: secret.to_owned(), detail: e.to_string() })?.name;
    let mut said = String::new();
    if let Some(reason) = force {
        said.push_str(&write_pass(sdk, env, &name, reason, prefix).await?);
    }
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let started = secrets.rotate_secret().secret_id(&name).send().await;
    let started = started
        .map_err(|e| RotateError::Start { secret: name.clone(), detail: ops_shared::aws::describe_sdk_error(&e) })?;
    said.push_str(&format!(
        "rotation of {name} started (version {}); its alerts tell how it ends\n",
        started.version_id().unwrap_or("unknown")
    ));
    let shown = serde_json::json!({"secret": name, "forced": force.is_some(), "version": started.version_id()});
    Ok((said, shown))
}

/// Writes the one-use pass that lets the next rotation of `name` past the staging gate; says
/// what was written.
pub async fn write_pass(
    sdk: &SdkConfig,
    env: &Env,
    name: &str,
    reason: &str,
    prefix: &str,
) -> Result<String, RotateError> {
    let table = Names::new(prefix).state_table();
    let by = crate::stack::caller(sdk, env).await;
    let pass = ForcePass {
        secret: name.to_owned(),
        by: by.clone(),
        reason: reason.to_owned(),
        issued_at: Utc::now(),
        used_by: None,
        used_at: None,
    };
    let state = DynamoState::new(aws_sdk_dynamodb::Client::new(sdk), &table);
    let written = staging::issue_pass(&state, &pass).await;
    written.map_err(|e| RotateError::Pass { table: table.clone(), detail: e.to_string() })?;
    Ok(format!(
        "pass written for {name} by {by}: the next rotation goes past the staging gate once (valid {} hours)\n",
        staging::PASS_VALID_HOURS
    ))
}

/// The one line `check-env` prints about the staging-first gate of the stack `prefix`, as its
/// rotation function is configured (`STAGING_NAME_PREFIX`).
pub async fn gate_line(sdk: &SdkConfig, prefix: &str) -> String {
    let function = Names::new(prefix).function("secret-rotation");
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let configured = lambda.get_function_configuration().function_name(&function).send().await;
    let staging = match configured {
        Ok(out) => out.environment.and_then(|e| e.variables).and_then(|mut v| v.remove("STAGING_NAME_PREFIX")),
        Err(err) => {
            let detail = ops_shared::aws::describe_sdk_error(&err);
            return format!("staging first: unknown, {function} could not be read ({detail})");
        }
    };
    match staging.filter(|s| !s.trim().is_empty()) {
        Some(staging) => format!("staging first: on, rotations wait for {staging}'s to pass with the same code"),
        None => "staging first: off, rotations do not wait for staging; in production deploy with \
                 StagingNamePrefix=<the staging stack's NamePrefix> (docs/deploying.md, \"Staging first\")"
            .to_owned(),
    }
}
