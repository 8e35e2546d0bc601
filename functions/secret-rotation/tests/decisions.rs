//! secret-rotation's guards against in-memory secret versions and a recording topic: no moto,
//! no PostgreSQL, no sleeping. `rotation.rs` runs the same protocol against Secrets Manager
//! (moto) and PostgreSQL end to end.

use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use ops_shared::test_util::{MemorySecrets, RecordingAlerts};
use ops_shared::{FunctionError, Severity};
use secret_rotation::{Outcome, RotationConfig, RotationError, RotationEvent, Rotator, Step};

const DB: &str = r#"{"engine": "postgres", "host": "db.internal", "port": 5432, "username": "app",
    "password": "old-password", "dbname": "app"}"#;
const SECRET: &str = "cineview-database";
const TOKEN: &str = "token-2";

fn rotator(tags: &[(&str, &str)], rotation_enabled: bool) -> Rotator<MemorySecrets, RecordingAlerts> {
    let store = MemorySecrets::default();
    store.add(SECRET, DB, tags, rotation_enabled);
    let http = ops_shared::http::client(std::time::Duration::from_secs(1)).expect("http");
    Rotator::new(store, RecordingAlerts::default(), http, RotationConfig::default())
}

fn single_user() -> Rotator<MemorySecrets, RecordingAlerts> {
    rotator(&[("rotation-strategy", "postgres-single-user")], true)
}

fn event(step: Step, token: &str) -> RotationEvent {
    RotationEvent { step, secret_id: SECRET.to_owned(), token: token.to_owned(), rotation_token: None }
}

/// The step failed with `kind`, changed nothing, and one critical alert says so.
fn refused(
    r: &Rotator<MemorySecrets, RecordingAlerts>,
    result: Result<impl std::fmt::Debug, RotationError>,
    kind: &str,
) {
    let err = result.expect_err("the step must refuse");
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(r.store.writes(), 0, "nothing written after {err}");
    assert_eq!(r.store.value(SECRET, AWSCURRENT).as_deref(), Some(DB), "AWSCURRENT untouched");
    let published = r.alerts.published();
    assert_eq!(published.len(), 1, "one alert");
    assert_eq!(published[0].alert.severity, Severity::Critical);
    assert!(published[0].alert.summary.contains(SECRET), "{}", published[0].alert.summary);
}

#[tokio::test]
async fn a_secret_without_rotation_enabled_is_refused() {
    let r = rotator(&[("rotation-strategy", "postgres-single-user")], false);
    r.store.add_pending(SECRET, TOKEN, Some(DB));
    refused(&r, r.run(&event(Step::Create, TOKEN)).await, "RotationPrecondition");
}

#[tokio::test]
async fn a_token_that_is_no_version_of_the_secret_is_refused() {
    let r = single_user();
    refused(&r, r.run(&event(Step::Create, "no-such-version")).await, "RotationPrecondition");
}

#[tokio::test]
async fn a_version_not_staged_pending_is_refused() {
    let r = single_user();
    // v1 is the current version, not a pending one.
    let result = r.run(&event(Step::Set, "v1")).await;
    assert!(matches!(result, Ok(ref report) if report.outcome == Outcome::AlreadyCurrent), "{result:?}");
    r.store.add_pending(SECRET, TOKEN, Some(DB));
    r.store.add_pending(SECRET, "token-3", Some(DB));
    // token-2 lost AWSPENDING to token-3: a stale event.
    refused(&r, r.run(&event(Step::Create, TOKEN)).await, "RotationPrecondition");
}

#[tokio::test]
async fn an_unknown_or_missing_strategy_tag_stops_before_anything_changes() {
    for tags in [&[("rotation-strategy", "mysql-single-user")][..], &[][..]] {
        let r = rotator(tags, true);
        r.store.add_pending(SECRET, TOKEN, Some(DB));
        let result = r.run(&event(Step::Create, TOKEN)).await;
        let message = result.as_ref().map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(message.contains("rotation-strategy") && message.contains("postgres-single-user"), "{message}");
        refused(&r, result, "SecretConfiguration");
    }
}

#[tokio::test]
async fn create_puts_a_new_password_once_and_a_repeat_keeps_it() {
    let r = single_user();
    // Secrets Manager stages the token's version itself, without a value.
    r.store.add_pending(SECRET, TOKEN, None);
    let report = r.run(&event(Step::Create, TOKEN)).await.expect("create");
    assert_eq!(report.outcome, Outcome::PendingCreated);
    let pending: serde_json::Value =
        serde_json::from_str(&r.store.value(SECRET, AWSPENDING).expect("pending")).expect("json");
    assert_eq!(pending["host"], "db.internal", "same server");
    assert_ne!(pending["password"], "old-password");
    let report = r.run(&event(Step::Create, TOKEN)).await.expect("create again");
    assert_eq!(report.outcome, Outcome::PendingExists, "a retried createSecret keeps the value it made");
    assert_eq!(r.store.writes(), 1);
    assert_eq!(r.store.value(SECRET, AWSCURRENT).as_deref(), Some(DB));
    assert!(r.alerts.published().is_empty());
}

#[tokio::test]
async fn finish_refuses_a_pending_value_it_cannot_read_and_keeps_the_working_secret() {
    let r = single_user();
    r.store.add_pending(SECRET, TOKEN, Some("{\"password\": "));
    refused(&r, r.run(&event(Step::Finish, TOKEN)).await, "SecretConfiguration");
}

#[tokio::test]
async fn finish_moves_current_to_a_readable_pending_value_and_announces_it() {
    let r = single_user();
    let new = DB.replace("old-password", "new-password");
    r.store.add_pending(SECRET, TOKEN, Some(&new));
    let report = r.run(&event(Step::Finish, TOKEN)).await.expect("finish");
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(r.store.value(SECRET, AWSCURRENT), Some(new));
    assert_eq!(r.store.value(SECRET, AWSPREVIOUS).as_deref(), Some(DB), "the old value stays as AWSPREVIOUS");
    let published = r.alerts.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].alert.severity, Severity::Info);
    let report = r.run(&event(Step::Finish, TOKEN)).await.expect("finish again");
    assert_eq!(report.outcome, Outcome::AlreadyCurrent, "a replayed finishSecret changes nothing");
    assert_eq!(r.store.writes(), 1);
}

#[tokio::test]
async fn a_failed_alert_does_not_fail_a_finished_rotation() {
    let r = single_user();
    r.store.add_pending(SECRET, TOKEN, Some(&DB.replace("old-password", "new-password")));
    r.alerts.fail_next(1);
    let report = r.run(&event(Step::Finish, TOKEN)).await.expect("finish");
    assert_eq!(report.outcome, Outcome::Finished, "Secrets Manager must not retry a finished rotation");
}
