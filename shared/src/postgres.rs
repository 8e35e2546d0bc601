//! Database credentials in AWS's RDS secret JSON and the one way to connect with them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// A database secret as AWS's RDS rotation templates define it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCredentials {
    #[serde(default = "default_engine")]
    pub engine: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub username: String,
    pub password: String,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masterarn: Option<String>,
}

fn default_engine() -> String {
    "postgres".to_owned()
}
fn default_port() -> u16 {
    5432
}
fn default_dbname() -> String {
    "postgres".to_owned()
}

// Never print the password, whatever logs or errors a value ends up in.
impl fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredentials")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("dbname", &self.dbname)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {host}:{port} refused the credentials of user {user}")]
    AuthFailed { host: String, port: u16, user: String },
    #[error("database {host}:{port} is unreachable: {detail}")]
    Unreachable { host: String, port: u16, detail: String },
    #[error("database {host}:{port} did not answer within {seconds} s")]
    Timeout { host: String, port: u16, seconds: u64 },
    #[error("database query failed: {0}")]
    Query(String),
}

impl DbError {
    pub fn query(err: tokio_postgres::Error) -> Self {
        DbError::Query(describe(&err))
    }
}

/// A PostgreSQL error with its SQLSTATE and server message, without the statement's text.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

impl DbCredentials {
    pub fn config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.username)
            .password(&self.password)
            .dbname(&self.dbname)
            .application_name("cineview-ops")
            .connect_timeout(connect_timeout);
        config
    }

    /// Opens a connection; the connection task ends when the returned client is dropped.
    pub async fn connect(&self, timeout: Duration) -> Result<Client, DbError> {
        let config = self.config(timeout);
        let (client, connection) = match tokio::time::timeout(timeout, config.connect(NoTls)).await {
            Err(_) => {
                return Err(DbError::Timeout { host: self.host.clone(), port: self.port, seconds: timeout.as_secs() });
            }
            Ok(Err(err)) => return Err(self.classify(&err)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "database connection closed with an error");
            }
        });
        Ok(client)
    }

    fn classify(&self, err: &tokio_postgres::Error) -> DbError {
        let auth = err.as_db_error().is_some_and(|db| {
            *db.code() == SqlState::INVALID_PASSWORD || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        });
        if auth {
            DbError::AuthFailed { host: self.host.clone(), port: self.port, user: self.username.clone() }
        } else {
            DbError::Unreachable { host: self.host.clone(), port: self.port, detail: describe(err) }
        }
    }
}

/// `"name"` with embedded quotes doubled: safe for any role or database name.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The major version a PostgreSQL client tool reports (`pg_dump (PostgreSQL) 15.18 ...` -> 15).
pub async fn tool_major_version(path: &str) -> Result<(u32, String), String> {
    let output = tokio::process::Command::new(path)
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {path}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(format!("{path} --version failed ({})", output.status));
    }
    let major = text
        .split(')')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|version| version.split('.').next())
        .and_then(|major| major.parse().ok())
        .ok_or_else(|| format!("{path} --version printed {text:?}, not a PostgreSQL version"))?;
    Ok((major, text))
}

/// The server's major version and full version string.
pub async fn server_version(client: &Client) -> Result<(u32, String), DbError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int, current_setting('server_version')", &[])
        .await
        .map_err(DbError::query)?;
    let num: i32 = row.get(0);
    Ok(((num / 10_000) as u32, row.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let creds: DbCredentials =
            serde_json::from_str(r#"{"host":"h","username":"u","password":"s3cr3t-value"}"#).expect("parses");
        assert_eq!(creds.port, 5432);
        assert_eq!(creds.dbname, "postgres");
        assert!(!format!("{creds:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
