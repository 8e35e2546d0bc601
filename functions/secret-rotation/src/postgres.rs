//! The Postgres strategies: one user whose password changes, or two users that alternate so
//! the previous credential keeps working until the next rotation.

use std::time::Duration;

use ops_shared::postgres::{DbCredentials, DbError, quote_ident, quote_literal};
use ops_shared::secrets::SecretValue;

use crate::error::RotationError;

pub const CLONE_SUFFIX: &str = "_clone";

pub fn parse_credentials(secret: &str, stage: &str, value: &SecretValue) -> Result<DbCredentials, RotationError> {
    let creds: DbCredentials = value.json(secret, stage).map_err(|err| RotationError::MalformedSecret {
        secret: secret.to_owned(),
        stage: stage.to_owned(),
        problem: err.to_string(),
    })?;
    if creds.engine != "postgres" {
        return Err(RotationError::MalformedSecret {
            secret: secret.to_owned(),
            stage: stage.to_owned(),
            problem: format!("engine is {:?}, not \"postgres\"", creds.engine),
        });
    }
    if creds.username.is_empty() || creds.host.is_empty() {
        return Err(RotationError::MalformedSecret {
            secret: secret.to_owned(),
            stage: stage.to_owned(),
            problem: "username and host must not be empty".to_owned(),
        });
    }
    Ok(creds)
}

/// The user that takes over from `username`: `<user>_clone`, and back.
pub fn alternate_user(username: &str) -> String {
    match username.strip_suffix(CLONE_SUFFIX) {
        Some(base) => base.to_owned(),
        None => format!("{username}{CLONE_SUFFIX}"),
    }
}

/// Refuses a pending value aimed at another server than the current one (a confused deputy
/// would otherwise change passwords wherever the pending JSON points).
pub fn same_server(secret: &str, current: &DbCredentials, other: &DbCredentials) -> Result<(), RotationError> {
    if current.host == other.host && current.port == other.port && current.dbname == other.dbname {
        Ok(())
    } else {
        Err(RotationError::HostMismatch {
            secret: secret.to_owned(),
            pending: format!("{}:{}/{}", other.host, other.port, other.dbname),
            current: format!("{}:{}/{}", current.host, current.port, current.dbname),
        })
    }
}

/// True if `creds` log in now.
pub async fn logs_in(creds: &DbCredentials, timeout: Duration) -> Result<bool, DbError> {
    match creds.connect(timeout).await {
        Ok(_) => Ok(true),
        Err(DbError::AuthFailed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Single user: `ALTER ROLE ... PASSWORD` as the user itself, with the first of `candidates`
/// (current, then previous) that still logs in.
pub async fn set_single_user(
    secret: &str,
    candidates: &[DbCredentials],
    pending: &DbCredentials,
    timeout: Duration,
) -> Result<(), RotationError> {
    let mut last_error = None;
    for creds in candidates {
        match creds.connect(timeout).await {
            Ok(client) => {
                let sql = format!(
                    "ALTER ROLE {} WITH PASSWORD {}",
                    quote_ident(&pending.username),
                    quote_literal(&pending.password)
                );
                return client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| RotationError::Database { secret: secret.to_owned(), source: DbError::query(e) });
            }
            Err(err @ DbError::AuthFailed { .. }) => last_error = Some(err),
            Err(err) => {
                return Err(RotationError::Database { secret: secret.to_owned(), source: err });
            }
        }
    }
    Err(RotationError::Database {
        secret: secret.to_owned(),
        source: last_error.unwrap_or_else(|| DbError::Query("no credential to log in with".to_owned())),
    })
}

/// Alternating users: as the master user, create `pending.username` (granting it the original
/// role) or give it the new password.
pub async fn set_alternating_users(
    secret: &str,
    master: &DbCredentials,
    pending: &DbCredentials,
    timeout: Duration,
) -> Result<(), RotationError> {
    let db_error = |source| RotationError::Database { secret: secret.to_owned(), source };
    let client = master.connect(timeout).await.map_err(db_error)?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&pending.username])
        .await
        .map_err(|e| db_error(DbError::query(e)))?
        .is_some();
    let user = quote_ident(&pending.username);
    let password = quote_literal(&pending.password);
    let sql = if exists {
        format!("ALTER ROLE {user} WITH LOGIN PASSWORD {password}")
    } else {
        let base = pending.username.strip_suffix(CLONE_SUFFIX).unwrap_or(&pending.username);
        format!("CREATE ROLE {user} WITH LOGIN PASSWORD {password}; GRANT {} TO {user}", quote_ident(base))
    };
    client.batch_execute(&sql).await.map_err(|e| db_error(DbError::query(e)))
}

/// testSecret: the pending credential logs in and is who it claims to be.
pub async fn test_login(secret: &str, pending: &DbCredentials, timeout: Duration) -> Result<(), RotationError> {
    let failed = |problem: String| RotationError::TestFailed { secret: secret.to_owned(), problem };
    let client = pending.connect(timeout).await.map_err(|e| failed(e.to_string()))?;
    let row =
        client.query_one("SELECT current_user::text", &[]).await.map_err(|e| failed(DbError::query(e).to_string()))?;
    let user: String = row.get(0);
    if user == pending.username {
        Ok(())
    } else {
        Err(failed(format!("logged in as {user}, expected {}", pending.username)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_alternate() {
        assert_eq!(alternate_user("app"), "app_clone");
        assert_eq!(alternate_user("app_clone"), "app");
    }
}
