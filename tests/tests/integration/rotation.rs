//! secret-rotation against moto and the real PostgreSQL server, steps driven as Secrets
//! Manager drives them.

use std::time::Duration;

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use ops_shared::deployed_code::LambdaCode;
use ops_shared::lambda::Function;
use ops_shared::postgres::{DbCredentials, quote_ident, quote_literal};
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, read_stage};
use ops_shared::state::DynamoState;
use ops_shared::{Scrubber, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, ROTATION_STEPS, unique};
use ops_testkit::stack::APP_DATABASE;
use secret_rotation::{Records, RotationConfig, Rotator, StepReport};
use serde_json::{Value, json};

const DB_TIMEOUT: Duration = Duration::from_secs(5);

type Rotation = Function<Rotator<SecretsManagerVersions, SnsAlertPublisher>>;

struct Fixture {
    aws: Aws,
    function: Rotation,
    alerts: Inbox,
    topic: String,
}

async fn fixture() -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("rotation-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let rotator = Rotator::new(
        SecretsManagerVersions::new(aws.secrets.clone()),
        SnsAlertPublisher::new(aws.sns.clone(), topic.clone()),
        ops_shared::http::client(Duration::from_secs(5)).expect("http"),
        RotationConfig::default(),
    );
    Fixture { function: Function::new("secret-rotation", rotator, Scrubber::default()), aws, alerts, topic }
}

/// A login role with `password` in the app database.
fn create_role(name: &str, password: &str) {
    let pg = &ops_testkit::shared().pg;
    pg.psql(APP_DATABASE, &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(name), quote_literal(password)))
        .expect("create role");
}

fn credentials(username: &str, password: &str) -> DbCredentials {
    let mut creds = ops_testkit::shared().pg.superuser(APP_DATABASE);
    creds.username = username.to_owned();
    creds.password = password.to_owned().into();
    creds
}

async fn logs_in(creds: &DbCredentials) -> bool {
    creds.connect(DB_TIMEOUT).await.is_ok()
}

impl Fixture {
    async fn create_secret(&self, name: &str, value: &str, strategy: &str) {
        self.aws.create_rotated_secret(name, value, strategy).await.expect("create secret");
    }

    async fn start_rotation(&self, secret: &str) -> String {
        self.aws.start_rotation(secret).await.expect("rotation started")
    }

    async fn step(&self, step: &str, secret: &str, token: &str) -> Result<StepReport, Diagnostic> {
        let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
        self.function.invoke(LambdaEvent::new(event, Context::default())).await
    }

    async fn rotate(&self, secret: &str, crash_after: usize) -> String {
        self.aws
            .rotate_with(secret, crash_after, |step, token| async move { self.step(step, secret, &token).await })
            .await
    }

    async fn stage(&self, secret: &str, stage: &str) -> DbCredentials {
        let value = read_stage(&self.aws.secrets, secret, stage).await.expect("read stage");
        serde_json::from_str(&value.value).expect("RDS JSON")
    }

    /// Version ids, their stages and values: everything a repeated step must leave alone.
    async fn snapshot(&self, secret: &str) -> Vec<(String, Vec<String>, Option<String>)> {
        let described = self.aws.secrets.describe_secret().secret_id(secret).send().await.expect("describe");
        let mut versions: Vec<_> = described.version_ids_to_stages().cloned().unwrap_or_default().into_iter().collect();
        versions.sort();
        let mut out = Vec::new();
        for (version, mut stages) in versions {
            stages.sort();
            let value = self
                .aws
                .secrets
                .get_secret_value()
                .secret_id(secret)
                .version_id(&version)
                .version_stage(&stages[0])
                .send()
                .await
                .ok()
                .and_then(|v| v.secret_string);
            out.push((version, stages, value));
        }
        out
    }
}

fn rds_json(creds: &DbCredentials) -> String {
    serde_json::to_string(creds).expect("json")
}

#[tokio::test]
async fn single_user_rotation_changes_the_password_and_keeps_the_old_value_as_previous() {
    let f = fixture().await;
    let user = unique("single").replace('-', "_");
    create_role(&user, "initial-password-1");
    let secret = unique("db-single");
    let old = credentials(&user, "initial-password-1");
    f.create_secret(&secret, &rds_json(&old), "postgres-single-user").await;

    let token = f.rotate(&secret, 0).await;

    let current = f.stage(&secret, AWSCURRENT).await;
    assert_ne!(current.password, old.password);
    assert_eq!(current.password.len(), 32);
    assert!(!current.password.chars().any(|c| ":/@\"'\\".contains(c)));
    assert!(logs_in(&current).await, "the new password logs in");
    assert!(!logs_in(&old).await, "a single user's old password is replaced");
    assert_eq!(f.stage(&secret, AWSPREVIOUS).await, old);
    let current_version = read_stage(&f.aws.secrets, &secret, AWSCURRENT).await.expect("current").version_id;
    assert_eq!(current_version.as_deref(), Some(token.as_str()));

    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "one info alert for a completed rotation");
    assert_eq!(notes[0].attribute("severity"), Some("info"));
    assert!(!notes[0].message.contains(current.password.as_str()), "alerts never carry the value");
}

#[tokio::test]
async fn alternating_users_keep_the_previous_user_working() {
    let f = fixture().await;
    let user = unique("alt").replace('-', "_");
    create_role(&user, "initial-password-2");
    let master_secret = unique("db-master");
    f.create_secret(
        &master_secret,
        &rds_json(&ops_testkit::shared().pg.superuser(APP_DATABASE)),
        "postgres-single-user",
    )
    .await;
    let secret = unique("db-alternating");
    let mut first = credentials(&user, "initial-password-2");
    first.masterarn = Some(master_secret.clone());
    f.create_secret(&secret, &rds_json(&first), "postgres-alternating-users").await;

    f.rotate(&secret, 0).await;
    let second = f.stage(&secret, AWSCURRENT).await;
    assert_eq!(second.username, format!("{user}_clone"));
    assert!(logs_in(&second).await, "the clone logs in with the new password");
    assert!(logs_in(&first).await, "the previous user still logs in");
    assert_eq!(f.stage(&secret, AWSPREVIOUS).await, first);
    let member = ops_testkit::shared()
        .pg
        .psql(
            APP_DATABASE,
            &format!("SELECT pg_has_role({}, {}, 'member')", quote_literal(&second.username), quote_literal(&user)),
        )
        .expect("membership");
    assert_eq!(member, "t", "the clone is granted the original role");

    f.rotate(&secret, 0).await;
    let third = f.stage(&secret, AWSCURRENT).await;
    assert_eq!(third.username, user, "users alternate back");
    assert_ne!(third.password, first.password);
    assert!(logs_in(&third).await);
    assert!(logs_in(&second).await, "the clone stays valid until the next rotation");
}

#[tokio::test]
async fn a_crash_after_any_step_then_a_full_replay_ends_valid() {
    let f = fixture().await;
    for crash_after in 1..=4 {
        let user = unique("crash").replace('-', "_");
        create_role(&user, "initial-password-3");
        let secret = unique("db-crash");
        f.create_secret(&secret, &rds_json(&credentials(&user, "initial-password-3")), "postgres-single-user").await;
        let token = f.rotate(&secret, crash_after).await;
        let current = f.stage(&secret, AWSCURRENT).await;
        assert!(logs_in(&current).await, "AWSCURRENT authenticates after a crash after step {crash_after}");
        let version = read_stage(&f.aws.secrets, &secret, AWSCURRENT).await.expect("current").version_id;
        assert_eq!(version.as_deref(), Some(token.as_str()));
    }
}

#[tokio::test]
async fn each_step_twice_in_a_row_changes_nothing_the_second_time() {
    let f = fixture().await;
    let user = unique("twice").replace('-', "_");
    create_role(&user, "initial-password-4");
    let secret = unique("db-twice");
    f.create_secret(&secret, &rds_json(&credentials(&user, "initial-password-4")), "postgres-single-user").await;
    let token = f.start_rotation(&secret).await;
    for step in ROTATION_STEPS {
        f.step(step, &secret, &token).await.expect("first run");
        let after_first = f.snapshot(&secret).await;
        let second = f.step(step, &secret, &token).await.expect("second run");
        assert_eq!(f.snapshot(&secret).await, after_first, "{step} repeated changed the secret");
        let pending = f.stage_of_token(&secret, &token).await;
        assert!(logs_in(&pending).await || step == "createSecret", "{step} repeated broke the credential");
        assert!(matches!(
            second.outcome,
            secret_rotation::Outcome::PendingExists
                | secret_rotation::Outcome::AlreadySet
                | secret_rotation::Outcome::Tested
                | secret_rotation::Outcome::AlreadyCurrent
        ));
    }
}

impl Fixture {
    async fn stage_of_token(&self, secret: &str, token: &str) -> DbCredentials {
        let value = self
            .aws
            .secrets
            .get_secret_value()
            .secret_id(secret)
            .version_id(token)
            .send()
            .await
            .expect("token version")
            .secret_string
            .expect("value");
        serde_json::from_str(&value).expect("json")
    }

    /// The step fails with `kind`, one critical alert names the secret and step, and
    /// AWSCURRENT is the same version with the same value as before.
    async fn assert_refused(&self, secret: &str, step: &str, token: &str, kind: &str) -> Diagnostic {
        let before = read_stage(&self.aws.secrets, secret, AWSCURRENT).await.expect("current before");
        let err = self.step(step, secret, token).await.expect_err("the step must fail");
        assert_eq!(err.error_type, kind, "{err:?}");
        let notes = self.alerts.receive(1, Duration::from_secs(3)).await;
        assert_eq!(notes.len(), 1, "exactly one alert for {kind}");
        let alert = notes[0].alert();
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(notes[0].attribute("severity"), Some("critical"));
        assert!(alert.title.contains(secret) && alert.title.contains(step), "{}", alert.title);
        assert!(!notes[0].message.contains(&before.value), "the alert must not carry the secret value");
        let after = read_stage(&self.aws.secrets, secret, AWSCURRENT).await.expect("current after");
        assert_eq!((after.version_id, after.value), (before.version_id, before.value), "AWSCURRENT untouched");
        err
    }
}

#[tokio::test]
async fn refused_rotations_alert_and_leave_awscurrent_working() {
    let f = fixture().await;
    let user = unique("refuse").replace('-', "_");
    create_role(&user, "initial-password-5");
    let good = credentials(&user, "initial-password-5");

    // A token that is not a version of the secret.
    let secret = unique("db-refuse");
    f.create_secret(&secret, &rds_json(&good), "postgres-single-user").await;
    f.start_rotation(&secret).await;
    let err = f.assert_refused(&secret, "createSecret", "not-a-version-of-this-secret", "RotationPrecondition").await;
    assert!(err.error_message.contains("not a version"));

    // A token not staged AWSPENDING.
    let rotated = unique("db-previous");
    f.create_secret(&rotated, &rds_json(&good), "postgres-alternating-users").await;
    let token = f.start_rotation(&rotated).await;
    f.aws
        .secrets
        .update_secret_version_stage()
        .secret_id(&rotated)
        .version_stage(AWSPENDING)
        .remove_from_version_id(&token)
        .send()
        .await
        .expect("unstage pending");
    let err = f.assert_refused(&rotated, "setSecret", &token, "RotationPrecondition").await;
    assert!(err.error_message.contains("AWSPENDING"));

    // Rotation disabled.
    let disabled = unique("db-disabled");
    f.create_secret(&disabled, &rds_json(&good), "postgres-single-user").await;
    let token = uuid::Uuid::new_v4().to_string();
    f.aws
        .secrets
        .put_secret_value()
        .secret_id(&disabled)
        .client_request_token(&token)
        .secret_string(rds_json(&good))
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect("stage pending by hand");
    let err = f.assert_refused(&disabled, "createSecret", &token, "RotationPrecondition").await;
    assert!(err.error_message.contains("not enabled"));

    // Malformed secret JSON.
    let malformed = unique("db-malformed");
    f.create_secret(
        &malformed,
        "{\"host\": \"127.0.0.1\", \"password\": \"oops-no-user-0123456789\"",
        "postgres-single-user",
    )
    .await;
    let token = f.start_rotation(&malformed).await;
    let err = f.assert_refused(&malformed, "createSecret", &token, "SecretConfiguration").await;
    assert!(!err.error_message.contains("oops-no-user-0123456789"), "errors never quote the value");

    // Unknown strategy.
    let unknown = unique("db-unknown");
    f.create_secret(&unknown, &rds_json(&good), "mysql-single-user").await;
    let token = f.start_rotation(&unknown).await;
    let err = f.assert_refused(&unknown, "createSecret", &token, "SecretConfiguration").await;
    assert!(err.error_message.contains("mysql-single-user"));

    // A database that refuses the connection: createSecret works, setSecret fails.
    let unreachable = unique("db-unreachable");
    let mut nowhere = good.clone();
    nowhere.port = ops_testkit::process::free_port().expect("port");
    f.create_secret(&unreachable, &rds_json(&nowhere), "postgres-single-user").await;
    let token = f.start_rotation(&unreachable).await;
    f.step("createSecret", &unreachable, &token).await.expect("createSecret needs no database");
    let err = f.assert_refused(&unreachable, "setSecret", &token, "DependencyFailure").await;
    assert!(err.error_message.contains("unreachable"), "{}", err.error_message);

    assert!(logs_in(&good).await, "the working credential still works after all of this");
}

#[tokio::test]
async fn a_malformed_event_is_an_error_not_a_panic() {
    let f = fixture().await;
    for event in
        [json!({}), json!({"Step": "dance", "SecretId": "x", "ClientRequestToken": "t"}), json!([1, 2]), Value::Null]
    {
        let err = f.function.invoke(LambdaEvent::new(event.clone(), Context::default())).await.expect_err("refused");
        assert_eq!(err.error_type, "InvalidEvent", "{event}: {err:?}");
    }
}

/// One stack's half of staging first: its prefix, state table, and rotation function as
/// Lambda and the table know it.
struct Twin {
    prefix: String,
    f: Fixture,
}

/// A stack named `prefix` whose state table and function (running `code`) exist in moto; with
/// `staging`, a production stack gated on that twin.
async fn stack(prefix: &str, code: &[u8], staging: Option<&str>) -> Twin {
    let f = fixture().await;
    let table = ops_shared::staging::state_table(prefix);
    ops_testkit::aws::create_state_table(&f.aws.dynamodb, &table).await.expect("state table");
    let function = format!("{prefix}-secret-rotation");
    f.aws.create_function(&function, code).await.expect("the function in Lambda");
    let records = Records {
        own: DynamoState::new(f.aws.dynamodb.clone(), &table),
        staging: staging.map(|s| secret_rotation::Twin {
            prefix: s.to_owned(),
            store: DynamoState::new(f.aws.dynamodb.clone(), ops_shared::staging::state_table(s)),
        }),
        code: LambdaCode::new(aws_sdk_lambda::Client::new(&f.aws.sdk), Some(function)),
    };
    let config = RotationConfig { staging_prefix: staging.map(str::to_owned), ..RotationConfig::default() };
    let rotator = Rotator::new(
        SecretsManagerVersions::new(f.aws.secrets.clone()),
        SnsAlertPublisher::new(f.aws.sns.clone(), f.topic.clone()),
        ops_shared::http::client(Duration::from_secs(5)).expect("http"),
        config,
    )
    .with_ledger(records);
    let function = Function::new("secret-rotation", rotator, Scrubber::default());
    Twin { prefix: prefix.to_owned(), f: Fixture { function, ..f } }
}

#[tokio::test]
async fn a_failed_staging_rotation_holds_production_and_a_passed_one_lets_it_run() {
    let (staging_prefix, production_prefix) = (unique("stg"), unique("prd"));
    let code = unique("the same build").into_bytes();
    let staging = stack(&staging_prefix, &code, None).await;
    let production = stack(&production_prefix, &code, Some(&staging_prefix)).await;
    let user = unique("staged").replace('-', "_");
    create_role(&user, "staging-password-1");

    // Staging's secret holds a password that no longer logs in: its rotation fails in setSecret.
    let staging_secret = format!("{}-database", staging.prefix);
    let broken = credentials(&user, "not-the-password");
    staging.f.create_secret(&staging_secret, &rds_json(&broken), "postgres-single-user").await;
    let token = staging.f.start_rotation(&staging_secret).await;
    staging.f.step("createSecret", &staging_secret, &token).await.expect("staging createSecret");
    let failed = staging.f.step("setSecret", &staging_secret, &token).await.expect_err("staging fails");
    assert!(failed.error_message.contains("refused the credentials"), "{}", failed.error_message);

    // Production's rotation of the same strategy stops before anything changes.
    let prod_user = unique("prod").replace('-', "_");
    create_role(&prod_user, "production-password-1");
    let prod_secret = format!("{}-database", production.prefix);
    let prod_creds = credentials(&prod_user, "production-password-1");
    production.f.create_secret(&prod_secret, &rds_json(&prod_creds), "postgres-single-user").await;
    let before = production.f.snapshot(&prod_secret).await;
    let prod_token = production.f.start_rotation(&prod_secret).await;
    let held = production.f.step("createSecret", &prod_secret, &prod_token).await.expect_err("held for staging");
    assert_eq!(held.error_type, "StagingNotPassed");
    assert_eq!(production.f.stage(&prod_secret, AWSCURRENT).await, prod_creds, "production's secret unchanged");
    let pending = read_stage(&production.f.aws.secrets, &prod_secret, AWSPENDING).await;
    assert!(pending.is_err(), "no pending value was made: {pending:?}");
    assert_eq!(before.len() + 1, production.f.snapshot(&prod_secret).await.len(), "only the version moto staged");
    let notes = production.f.alerts.receive(1, Duration::from_secs(3)).await;
    let note = notes.iter().find(|n| n.message.contains("held until staging")).expect("a critical alert");
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert!(note.message.contains(&staging_secret), "{}", note.message);
    assert!(note.message.contains("refused the credentials"), "{}", note.message);

    // Staging's secret fixed and rotated: production's rotation goes through.
    staging.f.aws.end_rotation(&staging_secret, &token).await.expect("end staging's failed rotation");
    let fixed = credentials(&user, "staging-password-1");
    staging
        .f
        .aws
        .secrets
        .put_secret_value()
        .secret_id(&staging_secret)
        .secret_string(rds_json(&fixed))
        .send()
        .await
        .expect("fix");
    staging.f.rotate(&staging_secret, 0).await;
    for step in ROTATION_STEPS {
        production.f.step(step, &prod_secret, &prod_token).await.unwrap_or_else(|e| panic!("{step}: {e:?}"));
    }
    let current = production.f.stage(&prod_secret, AWSCURRENT).await;
    assert_ne!(current.password, prod_creds.password);
    assert!(logs_in(&current).await, "production's new password logs in");
}

/// An operator lets one production rotation past a staging twin that never rotated with this
/// code: `opsctl rotate --force-past-staging` writes the pass, the held rotation takes it, its
/// alert says who forced it and why, and the next rotation is held again.
#[tokio::test]
async fn an_operator_lets_one_rotation_past_staging_and_the_alert_says_so() {
    let (staging_prefix, production_prefix) = (unique("stg"), unique("prd"));
    let code = unique("a build staging never ran").into_bytes();
    let _staging = stack(&staging_prefix, &code, None).await;
    let production = stack(&production_prefix, &code, Some(&staging_prefix)).await;
    let user = unique("forced").replace('-', "_");
    create_role(&user, "forced-password-1");
    let secret = format!("{}-database", production.prefix);
    let creds = credentials(&user, "forced-password-1");
    production.f.create_secret(&secret, &rds_json(&creds), "postgres-single-user").await;
    let token = production.f.start_rotation(&secret).await;
    let held = production.f.step("createSecret", &secret, &token).await.expect_err("staging never rotated");
    assert_eq!(held.error_type, "StagingNotPassed");
    production.f.aws.end_rotation(&secret, &token).await.expect("end the held rotation");

    let env = ops_shared::Env::from_pairs(ops_testkit::shared().env());
    let reason = "the database password leaked";
    // What `opsctl rotate --force-past-staging` writes before its RotateSecret; moto cannot
    // invoke the rotation function RotateSecret would start, so that rotation is driven here.
    let said = opsctl::rotate::write_pass(&production.f.aws.sdk, &env, &secret, reason, &production.prefix).await;
    assert!(said.expect("the pass is written").contains("pass written"));
    let token = production.f.start_rotation(&secret).await;
    for step in ROTATION_STEPS {
        production.f.step(step, &secret, &token).await.unwrap_or_else(|e| panic!("{step}: {e:?}"));
    }
    production.f.aws.end_rotation(&secret, &token).await.expect("end the forced rotation");
    let current = production.f.stage(&secret, AWSCURRENT).await;
    assert_ne!(current.password, creds.password);
    assert!(logs_in(&current).await, "the forced rotation's password logs in");
    let notes = production.f.alerts.receive(3, Duration::from_secs(3)).await;
    let forced = notes.iter().find(|n| n.message.contains("forced past staging")).expect("the forced alert");
    assert!(forced.message.contains(reason), "{}", forced.message);

    // The pass was for one rotation.
    let next = production.f.start_rotation(&secret).await;
    let held = production.f.step("createSecret", &secret, &next).await.expect_err("held again");
    assert_eq!(held.error_type, "StagingNotPassed");
}
