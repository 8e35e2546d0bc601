//! secret-rotation's guards against in-memory secret versions and a recording topic: no moto,
//! no PostgreSQL, no sleeping. `rotation.rs` runs the same protocol against Secrets Manager
//! (moto) and PostgreSQL end to end.

use chrono::Utc;
use ops_shared::deployed_code::CodeHash;
use ops_shared::rotation::Strategy;
use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use ops_shared::staging::{self, ForcePass, Run, RunOutcome, StrategyRecord};
use ops_shared::test_util::code::FixedCode;
use ops_shared::test_util::{MemorySecrets, MemoryState, RecordingAlerts};
use ops_shared::{FunctionError, Severity};
use secret_rotation::{Outcome, Records, RotationConfig, RotationError, RotationEvent, Rotator, Step, Twin};

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

// ---------------------------------------------------------------- staging first

const STAGING: &str = "cineview-staging";
const STAGING_SECRET: &str = "cineview-staging-database";

/// A production rotator whose staging twin's table is `staging`, running code `code`.
struct Gated {
    r: Rotator<MemorySecrets, RecordingAlerts>,
    own: MemoryState,
    staging: MemoryState,
    code: FixedCode,
}

fn gated(twin: bool, code: FixedCode) -> Gated {
    let (own, staging) = (MemoryState::default(), MemoryState::default());
    let config = RotationConfig { staging_prefix: twin.then(|| STAGING.to_owned()), ..RotationConfig::default() };
    let store = MemorySecrets::default();
    store.add(SECRET, DB, &[("rotation-strategy", "postgres-single-user")], true);
    store.add_pending(SECRET, TOKEN, None);
    let http = ops_shared::http::client(std::time::Duration::from_secs(1)).expect("http");
    let twin = twin.then(|| Twin { prefix: STAGING.to_owned(), store: staging.clone() });
    let records = Records { own: own.clone(), staging: twin, code: code.clone() };
    let r = Rotator::new(store, RecordingAlerts::default(), http, config).with_ledger(records);
    Gated { r, own, staging, code }
}

/// Staging's rotation of the database strategy ended with `error` (or passed) running `hash`.
async fn staging_ran(g: &Gated, hash: &str, error: Option<&str>) {
    let code = CodeHash::Known(hash.to_owned());
    let run = Run::new(Strategy::PostgresSingleUser, STAGING_SECRET, Utc::now(), error.map(str::to_owned), &code);
    staging::record_run(&g.staging, &run).await.expect("staging's record");
}

fn own_record(g: &Gated) -> StrategyRecord {
    let data = g.own.document(&staging::record_pk(Strategy::PostgresSingleUser), staging::RECORD_SK);
    serde_json::from_value(data.expect("a record in the stack's own table")).expect("record")
}

/// createSecret was refused by the gate: nothing changed, one critical alert naming `needles`.
async fn held(g: &Gated, needles: &[&str]) {
    let result = g.r.run(&event(Step::Create, TOKEN)).await;
    refused(&g.r, result, "StagingNotPassed");
    assert_eq!(g.r.store.value(SECRET, AWSPENDING), None, "no pending value");
    let alert = &g.r.alerts.published()[0].alert;
    for needle in needles {
        assert!(alert.summary.contains(needle), "{needle:?} not in {}", alert.summary);
    }
    let last = own_record(g).last.expect("production's run is recorded");
    assert_eq!(last.outcome, RunOutcome::Failed);
}

#[tokio::test]
async fn a_failed_staging_rotation_holds_production() {
    let g = gated(true, FixedCode::known("code-a"));
    staging_ran(&g, "code-a", Some("password authentication failed for user \"app\"")).await;
    held(&g, &[STAGING_SECRET, "password authentication failed for user \"app\"", "--force-past-staging"]).await;
}

#[tokio::test]
async fn staging_that_never_passed_with_this_code_holds_production_until_it_does() {
    let g = gated(true, FixedCode::known("code-b"));
    staging_ran(&g, "code-a", None).await;
    held(&g, &[STAGING_SECRET, "code-b", "code-a"]).await;
    staging_ran(&g, "code-b", None).await;
    let report = g.r.run(&event(Step::Create, TOKEN)).await.expect("staging passed with this code");
    assert_eq!(report.outcome, Outcome::PendingCreated);
}

#[tokio::test]
async fn staging_without_any_record_or_an_unknown_code_hash_holds_production() {
    let g = gated(true, FixedCode::known("code-a"));
    held(&g, &[STAGING, "no record"]).await;
    let g = gated(true, FixedCode::unknown("GetFunctionConfiguration was denied"));
    staging_ran(&g, "code-a", None).await;
    held(&g, &["unknown", "GetFunctionConfiguration was denied"]).await;
    assert!(own_record(&g).last.and_then(|l| l.code_sha256_unreadable).is_some_and(|r| r.contains("denied")));
}

#[tokio::test]
async fn a_passed_staging_rotation_with_the_same_code_opens_the_gate_and_the_finish_is_recorded() {
    let g = gated(true, FixedCode::known("code-a"));
    staging_ran(&g, "code-a", Some("an older failure")).await;
    staging_ran(&g, "code-a", None).await;
    let report = g.r.run(&event(Step::Create, TOKEN)).await.expect("create");
    assert_eq!(report.outcome, Outcome::PendingCreated);
    assert!(g.r.alerts.published().is_empty());
    g.r.run(&event(Step::Finish, TOKEN)).await.expect("finish");
    let record = own_record(&g);
    let last = record.last.expect("last run");
    assert_eq!(
        (last.outcome, last.secret.as_str(), last.code_sha256.as_deref()),
        (RunOutcome::Finished, SECRET, Some("code-a"))
    );
    assert_eq!(record.passed[0].code_sha256, "code-a");
    // New code deployed here and not yet rotated with in staging: the next rotation waits.
    g.code.deploy("code-c");
    g.r.store.add_pending(SECRET, "token-3", None);
    let result = g.r.run(&event(Step::Create, "token-3")).await;
    assert_eq!(result.expect_err("code-c never passed in staging").kind(), "StagingNotPassed");
}

#[tokio::test]
async fn an_operators_pass_lets_one_rotation_through_and_its_alert_names_who_and_why() {
    let g = gated(true, FixedCode::known("code-a"));
    staging_ran(&g, "code-a", Some("staging database is down for maintenance")).await;
    let pass = ForcePass {
        secret: SECRET.to_owned(),
        by: "arn:aws:iam::123456789012:user/alice".to_owned(),
        reason: "leaked key, cannot wait for staging".to_owned(),
        issued_at: Utc::now(),
        used_by: None,
        used_at: None,
    };
    staging::issue_pass(&g.own, &pass).await.expect("pass");
    let report = g.r.run(&event(Step::Create, TOKEN)).await.expect("forced through");
    assert_eq!(report.outcome, Outcome::PendingCreated);
    let published = g.r.alerts.published();
    assert_eq!(published.len(), 1);
    let alert = &published[0].alert;
    assert_eq!(alert.severity, Severity::Warning);
    for needle in ["forced", "user/alice"] {
        assert!(alert.title.contains(needle), "{needle:?} not in {}", alert.title);
    }
    for needle in ["user/alice", "leaked key, cannot wait for staging", "staging database is down"] {
        assert!(alert.summary.contains(needle), "{needle:?} not in {}", alert.summary);
    }
    // The next rotation finds the pass used.
    g.r.store.add_pending(SECRET, "token-3", None);
    let result = g.r.run(&event(Step::Create, "token-3")).await;
    assert_eq!(result.expect_err("the pass is used up").kind(), "StagingNotPassed");
    assert_eq!(g.r.store.value(SECRET, AWSPENDING), None, "token-3 got no pending value");
}

#[tokio::test]
async fn without_a_staging_twin_the_gate_is_off_and_runs_are_still_recorded() {
    let g = gated(false, FixedCode::known("code-a"));
    staging_ran(&g, "code-a", Some("ignored: no twin is configured")).await;
    let report = g.r.run(&event(Step::Create, TOKEN)).await.expect("create");
    assert_eq!(report.outcome, Outcome::PendingCreated);
    let failed = g.r.run(&event(Step::Finish, "no-such-version")).await;
    assert!(failed.is_err());
    g.r.store.add_pending(SECRET, "token-3", Some("{\"password\": "));
    let failed = g.r.run(&event(Step::Finish, "token-3")).await.expect_err("unreadable pending value");
    let last = own_record(&g).last.expect("the failure is recorded");
    assert_eq!(last.outcome, RunOutcome::Failed);
    assert_eq!(last.error, Some(failed.to_string()));
}
