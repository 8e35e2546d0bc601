//! Database credentials in AWS's RDS secret JSON and the one way to connect with them.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls_improved::MakeRustlsConnect;

use crate::runtime::redacted::Redacted;

/// TLS to the database, with libpq's `sslmode` meanings: `prefer` and `require` encrypt
/// without authenticating the server; `verify-full` also checks the certificate chain (against
/// `sslrootcert`, else the system roots) and the host name. The default is `verify-full`, not
/// libpq's `prefer`: the password must never go to a server whose identity was not checked, and
/// a secret opts out of that only by naming a weaker mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    #[default]
    VerifyFull,
}

impl SslMode {
    pub(crate) fn as_libpq(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A database secret as AWS's RDS rotation templates define it. Its `Debug` hides the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCredentials {
    #[serde(default = "default_engine")]
    pub engine: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub username: String,
    pub password: Redacted<String>,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masterarn: Option<String>,
    /// Not in AWS's RDS template; defaults to `verify-full`. Supabase: its CA in `sslrootcert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// PEM of the CA that signs the server's certificate, for `verify-full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<String>,
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

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {host}:{port} refused the credentials of user {user}")]
    AuthFailed { host: String, port: u16, user: String },
    #[error("database {host}:{port} is unreachable: {detail}")]
    Unreachable { host: String, port: u16, detail: String, source: tokio_postgres::Error },
    #[error("database {host}:{port} did not answer within {seconds} s")]
    Timeout { host: String, port: u16, seconds: u64 },
    #[error("database query failed: {0}")]
    Query(String),
    #[error("TLS settings of the database secret are unusable: {0}")]
    Tls(String),
    #[error(
        "database {host}:{port} was not authenticated, so the password was not sent: {detail}. Put the PEM of the \
         CA that signs its certificate in the secret's `sslrootcert` (Supabase: Database settings, SSL \
         configuration, download the certificate), or, on a network you trust, set `sslmode` to `require`"
    )]
    Unverified { host: String, port: u16, detail: String, source: tokio_postgres::Error },
}

impl DbError {
    pub fn query(err: tokio_postgres::Error) -> Self {
        DbError::Query(describe(&err))
    }
}

/// Reads database secret `id` through `secrets` and connects with it. A refused login re-reads
/// the secret once before it fails: a rotation makes a cached password stale at once.
pub async fn connect_with_secret<E>(
    secrets: &crate::adapters::secrets::SecretCache,
    id: &str,
    timeout: Duration,
) -> Result<(DbCredentials, Client), E>
where
    E: From<crate::adapters::secrets::SecretError> + From<DbError>,
{
    #[derive(Debug)]
    enum Failure {
        Secret(crate::adapters::secrets::SecretError),
        Db(DbError),
    }
    impl From<crate::adapters::secrets::SecretError> for Failure {
        fn from(err: crate::adapters::secrets::SecretError) -> Self {
            Failure::Secret(err)
        }
    }
    let refused = |failure: &Failure| matches!(failure, Failure::Db(DbError::AuthFailed { .. }));
    let connected = secrets
        .with_refresh_on_auth_failure(id, refused, |secret| async move {
            let creds: DbCredentials = secret.json(id, crate::adapters::secrets::AWSCURRENT)?;
            let client = creds.connect(timeout).await.map_err(Failure::Db)?;
            Ok((creds, client))
        })
        .await;
    connected.map_err(|failure| match failure {
        Failure::Secret(err) => err.into(),
        Failure::Db(err) => err.into(),
    })
}

/// A PostgreSQL error with its SQLSTATE and server message, without the statement's text.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => crate::runtime::errors::error_chain(err),
    }
}

impl DbCredentials {
    pub fn ssl_mode(&self) -> SslMode {
        self.sslmode.unwrap_or_default()
    }

    pub fn config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .ssl_mode(match self.ssl_mode() {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            })
            .host(&self.host)
            .port(self.port)
            .user(&self.username)
            .password(self.password.expose())
            .dbname(&self.dbname)
            .application_name("cineview-ops")
            .connect_timeout(connect_timeout);
        config
    }

    /// Opens a connection; the connection task ends when the returned client is dropped.
    pub async fn connect(&self, timeout: Duration) -> Result<Client, DbError> {
        let span =
            crate::runtime::trace::TraceSpan::start("db.connect", &format!("connect {}:{}", self.host, self.port));
        let connected = self.connect_untraced(timeout).await;
        if connected.is_err() {
            span.fail();
        }
        connected
    }

    async fn connect_untraced(&self, timeout: Duration) -> Result<Client, DbError> {
        let config = self.config(timeout);
        let tls = MakeRustlsConnect::new(tls_config(self.ssl_mode(), self.sslrootcert.as_deref())?);
        let (client, connection) = match tokio::time::timeout(timeout, config.connect(tls)).await {
            Err(_) => {
                return Err(DbError::Timeout { host: self.host.clone(), port: self.port, seconds: timeout.as_secs() });
            }
            Ok(Err(err)) => return Err(self.classify(err)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "database connection closed with an error");
            }
        });
        Ok(client)
    }

    fn classify(&self, err: tokio_postgres::Error) -> DbError {
        let auth = err.as_db_error().is_some_and(|db| {
            *db.code() == SqlState::INVALID_PASSWORD || *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        });
        let detail = describe(&err);
        if auth {
            DbError::AuthFailed { host: self.host.clone(), port: self.port, user: self.username.clone() }
        } else if self.ssl_mode() == SslMode::VerifyFull && unverified(&detail) {
            DbError::Unverified { host: self.host.clone(), port: self.port, detail, source: err }
        } else {
            DbError::Unreachable { host: self.host.clone(), port: self.port, detail, source: err }
        }
    }
}

/// Whether a connection error says the server's identity could not be checked: its
/// certificate (rustls: "invalid peer certificate"), or no TLS at all.
fn unverified(detail: &str) -> bool {
    detail.contains("invalid peer certificate") || detail.contains("server does not support TLS")
}

/// Environment for libpq tools (`pg_dump`, `pg_restore`): password and TLS settings. Keep it
/// alive while the tool runs: it owns the file `PGSSLROOTCERT` names.
pub struct LibpqEnv {
    pub vars: Vec<(&'static str, String)>,
    pub root_cert: Option<tempfile::NamedTempFile>,
}

impl DbCredentials {
    pub fn libpq_env(&self) -> Result<LibpqEnv, DbError> {
        let mut env =
            vec![("PGPASSWORD", self.password.expose().clone()), ("PGSSLMODE", self.ssl_mode().as_libpq().to_owned())];
        // libpq reads no system store by itself here (its OpenSSL's default paths are
        // Debian's, not Lambda's): it gets the roots the connections above verify against.
        let system_pem;
        let root_pem = match (&self.sslrootcert, self.ssl_mode()) {
            (Some(pem), _) => Some(pem.as_str()),
            (None, SslMode::VerifyFull) => {
                system_pem = crate::adapters::tls::system_roots_pem()
                    .map_err(|e| DbError::Tls(format!("no CA to verify the server against: {e}")))?;
                Some(system_pem.as_str())
            }
            (None, _) => None,
        };
        let root = match root_pem {
            None => None,
            Some(pem) => {
                let file = tempfile::NamedTempFile::new()
                    .map_err(|e| DbError::Tls(format!("cannot write sslrootcert: {e}")))?;
                std::fs::write(file.path(), pem).map_err(|e| DbError::Tls(format!("cannot write sslrootcert: {e}")))?;
                env.push(("PGSSLROOTCERT", file.path().display().to_string()));
                Some(file)
            }
        };
        Ok(LibpqEnv { vars: env, root_cert: root })
    }
}

/// The rustls configuration for `mode`.
pub(crate) fn tls_config(mode: SslMode, root_pem: Option<&str>) -> Result<rustls::ClientConfig, DbError> {
    let provider = crate::adapters::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?;
    if mode != SslMode::VerifyFull {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth());
    }
    let roots = match root_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| DbError::Tls(format!("sslrootcert is not PEM: {e}")))?;
                roots.add(cert).map_err(|e| DbError::Tls(format!("sslrootcert: {e}")))?;
            }
            if roots.is_empty() {
                return Err(DbError::Tls("verify-full needs a CA: set sslrootcert".to_owned()));
            }
            Arc::new(roots)
        }
        // Read once per process and shared with the HTTPS clients.
        None => crate::adapters::tls::system_roots()
            .map_err(|_| DbError::Tls("verify-full needs a CA: set sslrootcert".to_owned()))?,
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// libpq's `prefer`/`require`: the connection is encrypted, the server is not authenticated
/// (handshake signatures are still checked).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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

/// The server's major version and full version string.
pub async fn server_version(client: &Client) -> Result<(u32, String), DbError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int, current_setting('server_version')", &[])
        .await
        .map_err(DbError::query)?;
    let num: i32 = row.get(0);
    Ok(((num / 10_000) as u32, row.get(1)))
}

/// `pg_database_size` of the connected database; `None` when it cannot be read.
pub async fn database_bytes(client: &Client) -> Option<u64> {
    let row = client.query_one("SELECT pg_database_size(current_database())", &[]).await.ok()?;
    u64::try_from(row.try_get::<_, i64>(0).ok()?).ok()
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
