//! Every function answers a malformed event with a structured error, never a panic, and
//! every function's configuration errors name their variable.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::ecs::EcsTasks;
use ops_shared::handoff::{Handoff, HandoffConfig, RuntimeChoice};
use ops_shared::lambda::{Function, Handler};
use ops_shared::objects::S3Objects;
use ops_shared::state::DynamoState;
use ops_shared::{Env, Scrubber, SecretCache, SnsAlertPublisher};
use ops_testkit::aws::Aws;
use ops_testkit::names;
use serde_json::{Value, json};

/// Events no function accepts, and a scheduled event of the wrong kind.
fn malformed() -> Vec<Value> {
    vec![
        Value::Null,
        json!([1, 2, 3]),
        json!("a string"),
        json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
        json!({"unexpected": true}),
    ]
}

async fn assert_refuses<H: Handler>(name: &'static str, handler: H) {
    let function = Function::new(name, handler, Scrubber::default());
    for event in malformed() {
        let err = match function.invoke(LambdaEvent::new(event.clone(), Context::default())).await {
            Ok(_) => panic!("{name} accepted {event}"),
            Err(err) => err,
        };
        assert_eq!(err.error_type, "InvalidEvent", "{name} on {event}: {err:?}");
        assert!(err.error_message.contains(name), "{}", err.error_message);
    }
}

/// A stack without the engine task.
fn no_task() -> Handoff<EcsTasks> {
    Handoff { config: HandoffConfig { choice: RuntimeChoice::Auto, task: None, scratch_bytes: None }, launcher: None }
}

#[tokio::test]
async fn every_function_answers_a_malformed_event_with_an_error() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let secrets = Arc::new(SecretCache::new(aws.secrets.clone(), Scrubber::default()));
    let alerts = SnsAlertPublisher::new(aws.sns.clone(), ops_testkit::shared().alert_topic_arn.clone());
    let env = Env::from_pairs(ops_testkit::shared().env());

    assert_refuses(
        "secret-rotation",
        secret_rotation::Rotator::new(
            ops_shared::secret_versions::SecretsManagerVersions::new(aws.secrets.clone()),
            alerts.clone(),
            ops_shared::http::client(Duration::from_secs(5)).expect("http"),
            secret_rotation::RotationConfig::default(),
        ),
    )
    .await;
    let backup_config = ops_shared::backup::BackupConfig::from_env(&env).expect("backup config");
    assert_refuses(
        "scheduled-backup",
        scheduled_backup::BackupFunction {
            engine: ops_shared::backup::Backup {
                store: S3Objects::new(aws.s3.clone(), names::backup_bucket()),
                alerts: alerts.clone(),
                secrets: Arc::clone(&secrets),
                http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
                config: backup_config,
            },
            handoff: no_task(),
        },
    )
    .await;
    assert_refuses(
        "restore-verifier",
        restore_verifier::VerifierFunction {
            engine: ops_shared::restore::Verifier {
                store: S3Objects::new(aws.s3.clone(), names::backup_bucket()),
                alerts: alerts.clone(),
                secrets: Arc::clone(&secrets),
                config: ops_shared::restore::VerifierConfig::from_env(&env).expect("verifier config"),
            },
            handoff: no_task(),
        },
    )
    .await;
    let health_env =
        Env::from_pairs([("HEALTH_TARGETS", r#"[{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]"#)]);
    assert_refuses(
        "health-checker",
        health_checker::HealthRun {
            prober: health_checker::Prober {
                http: health_checker::http_client().build().expect("http"),
                secrets: Arc::clone(&secrets),
            },
            state: DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE),
            alerts: alerts.clone(),
            reports: None,
            config: health_checker::HealthConfig::from_env(&health_env).expect("health config"),
        },
    )
    .await;
    let forwarder_config = alert_forwarder::ForwarderConfig::from_env(&env).expect("forwarder config");
    assert_refuses(
        "alert-forwarder",
        alert_forwarder::AlertForwarder {
            forwarder: alert_forwarder::Forwarder {
                state: DynamoState::new(aws.dynamodb.clone(), names::STATE_TABLE),
                ops: SnsAlertPublisher::new(aws.sns.clone(), forwarder_config.ops_topic_arn.clone()),
                incidents: None,
                secrets: Arc::clone(&secrets),
                http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
                config: forwarder_config,
            },
            secrets,
        },
    )
    .await;
}

#[test]
fn each_function_configuration_error_names_its_variable() {
    let mut full: Vec<(String, String)> = ops_testkit::shared().env();
    full.push(("HEALTH_TARGETS".into(), r#"[{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]"#.into()));
    let without = |var: &str| Env::from_pairs(full.iter().filter(|(k, _)| k != var).cloned());
    let with = |var: &str, value: &str| {
        Env::from_pairs(full.iter().filter(|(k, _)| k != var).cloned().chain([(var.to_owned(), value.to_owned())]))
    };
    let named = |result: Result<(), ops_shared::ConfigError>, var: &str| {
        let err = result.expect_err(var);
        assert_eq!(err.var(), Some(var));
        assert!(err.to_string().contains(var));
    };
    named(ops_shared::backup::BackupConfig::from_env(&without("DATABASE_SECRET_ARN")).map(drop), "DATABASE_SECRET_ARN");
    named(ops_shared::backup::BackupConfig::from_env(&with("PART_SIZE_MIB", "2")).map(drop), "PART_SIZE_MIB");
    named(
        ops_shared::restore::VerifierConfig::from_env(&without("STAGING_DATABASE_SECRET_ARN")).map(drop),
        "STAGING_DATABASE_SECRET_ARN",
    );
    named(
        ops_shared::restore::VerifierConfig::from_env(&with("VALIDATION_QUERIES", "{}")).map(drop),
        "VALIDATION_QUERIES",
    );
    named(health_checker::HealthConfig::from_env(&with("FAILURE_THRESHOLD", "none")).map(drop), "FAILURE_THRESHOLD");
    named(alert_forwarder::ForwarderConfig::from_env(&without("OPS_TOPIC_ARN")).map(drop), "OPS_TOPIC_ARN");
    named(alert_forwarder::ForwarderConfig::from_env(&with("INHIBIT_RULES", "[1]")).map(drop), "INHIBIT_RULES");
    named(secret_rotation::RotationConfig::from_env(&with("PASSWORD_LENGTH", "5")).map(drop), "PASSWORD_LENGTH");
    named(ops_shared::CommonConfig::from_env(&without("STATE_TABLE")).map(drop), "STATE_TABLE");
}
