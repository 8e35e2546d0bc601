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
async fn connections_verify_the_server_by_default_and_are_weaker_only_when_asked() {
    let pg = &ops_testkit::shared().pg;
    let mut creds = pg.superuser("app");
    assert_eq!(creds.sslmode, None);
    assert_eq!(creds.ssl_mode(), SslMode::VerifyFull);
    assert!(encrypted(&creds).await.expect("the default verifies against the secret's CA"));

    // Without the CA, the default refuses the server, naming the fix.
    creds.sslrootcert = None;
    let err = encrypted(&creds).await.expect_err("a server the system roots do not vouch for");
    assert!(matches!(err, DbError::Unverified { .. }), "{err:?}");
    assert!(err.to_string().contains("sslrootcert") && err.to_string().contains("password was not sent"), "{err}");

    creds.sslmode = Some(SslMode::Require);
    assert!(encrypted(&creds).await.expect("require encrypts without checking"));
    creds.sslmode = Some(SslMode::Disable);
    assert!(!encrypted(&creds).await.expect("disable connects in the clear"));
}

/// A server that is not the database (no TLS, it just asks for the password in clear text, as
/// an impostor on the network path would) never receives the password of a secret that names
/// no `sslmode`: the connection stops before authentication.
#[tokio::test]
async fn a_password_never_goes_to_a_server_whose_identity_was_not_checked() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let password = "hunter2-not-for-impostors";
    let impostor = tokio::spawn(async move {
        let mut received = Vec::new();
        // Each connection attempt: refuse TLS ('N' to SSLRequest), then ask for the password in
        // clear text (AuthenticationCleartextPassword) and keep what the client sends.
        while let Ok(Ok((mut socket, _))) = tokio::time::timeout(Duration::from_secs(3), listener.accept()).await {
            let mut buf = vec![0_u8; 8];
            if socket.read_exact(&mut buf).await.is_err() {
                continue;
            }
            if buf[4..8] == [0x04, 0xd2, 0x16, 0x2f] {
                let _ = socket.write_all(b"N").await;
            }
            let _ = socket.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await;
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.read_to_end(&mut rest)).await;
            received.extend(rest);
        }
        received
    });
    let creds: ops_shared::postgres::DbCredentials = serde_json::from_value(serde_json::json!({
        "engine": "postgres", "host": "127.0.0.1", "port": port, "username": "postgres",
        "password": password, "dbname": "postgres"
    }))
    .expect("a secret as AWS's RDS template writes it, without sslmode");
    let err = creds.connect(TIMEOUT).await.map(drop).expect_err("no TLS, no connection");
    let received = impostor.await.expect("impostor");
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains(password), "the password reached the impostor: {text:?}");
    assert!(matches!(err, DbError::Unverified { .. }), "{err:?}");
    // libpq (pg_dump, pg_restore) is told the same.
    let env = creds.libpq_env().expect("env");
    assert!(env.vars.iter().any(|(k, v)| *k == "PGSSLMODE" && v == "verify-full"));
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
    assert!(matches!(err, DbError::Unverified { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    creds.sslrootcert = Some("not a certificate".into());
    assert!(matches!(encrypted(&creds).await, Err(DbError::Tls(_))));
}

#[tokio::test]
async fn verify_full_without_sslrootcert_checks_the_system_roots() {
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.sslmode = Some(SslMode::VerifyFull);
    creds.sslrootcert = None;
    // The test server's CA is no system root.
    let err = encrypted(&creds).await.expect_err("a server the system does not trust is refused");
    assert!(matches!(err, DbError::Unverified { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn libpq_tools_verify_against_the_system_roots_without_sslrootcert() {
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.sslrootcert = None;
    let env = creds.libpq_env().expect("env");
    let file = env.root_cert.as_ref().expect("the system roots as a file");
    let pem = std::fs::read_to_string(file.path()).expect("written");
    assert!(pem.matches("BEGIN CERTIFICATE").count() > 10, "the system's roots, not one certificate");
    assert!(env.vars.iter().any(|(k, v)| *k == "PGSSLMODE" && v == "verify-full"));
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
