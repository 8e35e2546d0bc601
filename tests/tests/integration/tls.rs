//! Database connections use TLS as libpq's sslmode says, against the test server's real TLS.

use std::time::Duration;

use ops_shared::postgres::{DbError, SslMode};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this connection is encrypted, as the server sees it.
async fn encrypted(creds: &ops_shared::postgres::DbCredentials) -> Result<bool, DbError> {
    let client = creds.connect(TIMEOUT).await?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(DbError::query)?;
    Ok(row.get(0))
}

#[tokio::test]
async fn connections_are_encrypted_by_default_and_verified_when_asked() {
    let pg = &ops_testkit::shared().pg;
    let mut creds = pg.superuser("app");
    assert_eq!(creds.sslmode, None);
    assert!(encrypted(&creds).await.expect("prefer connects"), "the default (prefer) encrypts when the server can");

    creds.sslmode = Some(SslMode::VerifyFull);
    creds.sslrootcert = Some(pg.ca_pem.clone());
    assert!(encrypted(&creds).await.expect("verify-full against the server's CA"));

    creds.sslmode = Some(SslMode::Disable);
    assert!(!encrypted(&creds).await.expect("disable connects in the clear"));
}

#[tokio::test]
async fn verify_full_refuses_a_server_signed_by_another_ca() {
    let pg = &ops_testkit::shared().pg;
    let dir = tempfile::tempdir().expect("temp");
    let other_ca = ops_testkit::pg::make_ca(dir.path(), "other CA").expect("another CA");
    let mut creds = pg.superuser("app");
    creds.sslmode = Some(SslMode::VerifyFull);
    creds.sslrootcert = Some(other_ca);
    let err = encrypted(&creds).await.expect_err("an untrusted server is refused");
    assert!(matches!(err, DbError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    creds.sslrootcert = Some("not a certificate".into());
    assert!(matches!(encrypted(&creds).await, Err(DbError::Tls(_))));
}

#[tokio::test]
async fn verify_full_without_sslrootcert_checks_the_system_roots() {
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.sslmode = Some(SslMode::VerifyFull);
    // The test server's CA is no system root.
    let err = encrypted(&creds).await.expect_err("a server the system does not trust is refused");
    assert!(matches!(err, DbError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn libpq_tools_get_the_same_tls_settings() {
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.sslmode = Some(SslMode::VerifyFull);
    creds.sslrootcert = Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into());
    let env = creds.libpq_env().expect("env");
    let file = env.root_cert.as_ref().expect("root certificate file");
    let get = |k: &str| env.vars.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
    assert_eq!(get("PGSSLMODE").as_deref(), Some("verify-full"));
    assert_eq!(get("PGSSLROOTCERT"), Some(file.path().display().to_string()));
    assert!(std::fs::read_to_string(file.path()).expect("written").contains("BEGIN CERTIFICATE"));
}
