//! AWS's own example events, read from the `aws_lambda_events` crate's files, fed to the
//! functions that receive them.

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use ops_shared::events::Trigger;
use secret_rotation::{RotationEvent, Step};

#[test]
fn the_secrets_manager_rotation_example_is_a_rotation_step() {
    let raw = ops_testkit::aws_examples::event("example-secretsmanager-secret-rotation-event.json");
    let event: SecretsManagerSecretRotationEvent = serde_json::from_value(raw).expect("AWS's shape");
    let event = RotationEvent::try_from(event).expect("a step the function acts on");
    assert_eq!(event.step, Step::Create);
    assert_eq!(event.secret_id, "arn:aws:secretsmanager:us-east-1:111122223333:secret:id-ABCD1E");
    assert_eq!(event.token, "1ab23456-cde7-8912-34fg-h56i78j9k12l");
}

#[test]
fn the_eventbridge_schedule_example_starts_every_scheduled_function() {
    let raw = ops_testkit::aws_examples::event("example-eventbridge-schedule.json");
    let backup: Trigger<scheduled_backup::BackupRequest> = serde_json::from_value(raw.clone()).expect("backup");
    let verify: Trigger<restore_verifier::VerifyRequest> = serde_json::from_value(raw.clone()).expect("verifier");
    let health: Trigger<health_checker::RunRequest> = serde_json::from_value(raw).expect("health");
    assert!(backup.is_scheduled() && verify.is_scheduled() && health.is_scheduled());
}
