//! Rotation of a Postgres role and the health check against PostgreSQL 17 (the same against
//! 15 is in rotation.rs and health.rs), over TLS verified against the server's CA.

use std::sync::Arc;
use std::time::Duration;

use health_checker::{Class, Prober, Target};
use ops_shared::postgres::{DbCredentials, SslMode, quote_ident, quote_literal};
use ops_shared::secrets::{AWSCURRENT, AWSPREVIOUS};
use ops_shared::{Scrubber, SecretCache};
use ops_testkit::aws::{Aws, unique};
use ops_testkit::pg::Postgres;
use ops_testkit::rotation::RotationUnderTest;
use secret_rotation::RotationConfig;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(5);

fn pg17() -> &'static Postgres {
    ops_testkit::shared().server(17)
}

/// A login role on PostgreSQL 17 and its credentials, `verify-full` against the server's CA.
fn role(prefix: &str, password: &str) -> DbCredentials {
    let pg = pg17();
    let name = unique(prefix).replace('-', "_");
    pg.psql("postgres", &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&name), quote_literal(password)))
        .expect("create role");
    let mut creds = verified(pg.superuser("postgres"));
    creds.username = name;
    creds.password = password.to_owned().into();
    creds
}

fn verified(mut creds: DbCredentials) -> DbCredentials {
    creds.sslmode = Some(SslMode::VerifyFull);
    creds.sslrootcert = Some(pg17().ca_pem.clone());
    creds
}

async fn server_major(creds: &DbCredentials) -> Option<u32> {
    let client = creds.connect(TIMEOUT).await.ok()?;
    ops_shared::postgres::server_version(&client).await.ok().map(|(major, _)| major)
}

#[tokio::test]
async fn single_user_rotation_on_postgres_17() {
    let old = role("single17", "initial-password-17");
    let rotation =
        RotationUnderTest::new("db17-single", &json!(old), "postgres-single-user", TIMEOUT, RotationConfig::default())
            .await;
    rotation.rotate(0).await;
    let current: DbCredentials = rotation.stage(AWSCURRENT).await;
    assert_ne!(current.password, old.password);
    assert_eq!(server_major(&current).await, Some(17), "the new password logs in to PostgreSQL 17");
    assert_eq!(server_major(&old).await, None, "the old password no longer does");
    assert_eq!(rotation.stage::<DbCredentials>(AWSPREVIOUS).await, old);
}

#[tokio::test]
async fn alternating_users_rotation_on_postgres_17() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let master = unique("db17-master");
    let master_value = json!(verified(pg17().superuser("postgres"))).to_string();
    aws.secrets.create_secret().name(&master).secret_string(master_value).send().await.expect("master secret");
    let mut first = role("alt17", "initial-password-17b");
    first.masterarn = Some(master);
    let rotation = RotationUnderTest::new(
        "db17-alternating",
        &json!(first),
        "postgres-alternating-users",
        TIMEOUT,
        RotationConfig::default(),
    )
    .await;
    rotation.rotate(0).await;
    let second: DbCredentials = rotation.stage(AWSCURRENT).await;
    assert_eq!(second.username, format!("{}_clone", first.username));
    assert_eq!(server_major(&second).await, Some(17), "the clone logs in");
    assert_eq!(server_major(&first).await, Some(17), "the previous user still logs in");
}

#[tokio::test]
async fn the_health_check_of_postgres_17() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let good = verified(pg17().superuser("postgres"));
    let mut wrong = good.clone();
    wrong.password = "wrong".to_owned().into();
    let mut targets = Vec::new();
    for (name, creds) in [("database17", &good), ("database17-wrong", &wrong)] {
        let secret = unique(name);
        aws.secrets.create_secret().name(&secret).secret_string(json!(creds).to_string()).send().await.expect("secret");
        let target: Target =
            serde_json::from_value(json!({"name": name, "kind": "postgres", "secret_arn": secret})).expect("target");
        targets.push(target);
    }
    let prober = Prober {
        http: health_checker::http_client().build().expect("client"),
        secrets: Arc::new(SecretCache::new(aws.secrets.clone(), Scrubber::default())),
    };
    let healthy = prober.check(&targets[0]).await;
    assert_eq!(healthy.class, Class::Healthy, "{healthy:?}");
    let failing = prober.check(&targets[1]).await;
    assert_eq!(failing.class, Class::Failing, "{failing:?}");
    assert!(failing.detail.contains("refused the credentials"), "{}", failing.detail);
}
