//! secret-rotation's `http-api-key` strategy against a stand-in of the AI engine's admin API.

use std::time::{Duration, Instant};

use lambda_runtime::Diagnostic;
use ops_shared::secrets::{AWSCURRENT, AWSPREVIOUS, read_stage};
use ops_testkit::ai_engine::{AfterCreate, AiEngine, Fault};
use ops_testkit::aws::{Aws, ROTATION_STEPS, unique};
use ops_testkit::rotation::RotationUnderTest;
use secret_rotation::RotationConfig;
use serde_json::json;

/// The parts of the secret the tests look at.
#[derive(serde::Deserialize)]
struct Key {
    api_key: String,
    key_id: String,
    owner: Option<String>,
}

struct Fixture {
    rotation: RotationUnderTest,
    engine: AiEngine,
    /// Every key value seen, to prove none leaks into alerts or errors.
    initial_key: String,
}

impl std::ops::Deref for Fixture {
    type Target = RotationUnderTest;
    fn deref(&self) -> &RotationUnderTest {
        &self.rotation
    }
}

async fn fixture(http_timeout: Duration) -> Fixture {
    fixture_with(http_timeout, RotationConfig::default()).await
}

async fn fixture_with(http_timeout: Duration, config: RotationConfig) -> Fixture {
    ops_testkit::logs::capture();
    let aws = Aws::new(ops_testkit::shared()).await;
    let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let (engine, initial) = AiEngine::start(&admin_token).await;
    let admin_secret = unique("ai-engine-admin");
    aws.secrets.create_secret().name(&admin_secret).secret_string(&admin_token).send().await.expect("admin secret");
    let value = json!({"api_key": initial.key, "key_id": initial.id, "admin_url": engine.admin_url(),
        "check_url": engine.check_url(), "admin_secret_arn": admin_secret, "owner": "ai-team"});
    let rotation = RotationUnderTest::new("ai-engine-api", &value, "http-api-key", http_timeout, config).await;
    Fixture { rotation, engine, initial_key: initial.key }
}

impl Fixture {
    async fn stage(&self, stage: &str) -> Key {
        self.rotation.stage(stage).await
    }

    /// Every alert body received so far must hold none of the keys ever issued.
    async fn assert_no_key_in(&self, texts: &[String]) {
        let keys: Vec<String> =
            self.engine.keys().into_iter().map(|k| k.key).chain([self.initial_key.clone()]).collect();
        for text in texts {
            for key in &keys {
                assert!(!text.contains(key.as_str()), "a key value leaked: {text}");
            }
        }
    }
}

#[tokio::test]
async fn rotations_keep_the_previous_key_and_revoke_the_one_two_generations_old() {
    let f = fixture(Duration::from_secs(5)).await;
    f.rotate(0).await;
    let first = f.stage(AWSCURRENT).await;
    assert_ne!(first.api_key, f.initial_key);
    assert!(f.engine.key_works(&first.api_key), "the new key works");
    assert!(f.engine.key_works(&f.initial_key), "the previous key still works");
    assert_eq!(f.stage(AWSPREVIOUS).await.api_key, f.initial_key);
    assert_eq!(first.owner.as_deref(), Some("ai-team"), "other fields are kept");

    f.rotate(0).await;
    let second = f.stage(AWSCURRENT).await;
    assert!(f.engine.key_works(&second.api_key) && f.engine.key_works(&first.api_key));
    assert!(!f.engine.key_works(&f.initial_key), "the key two generations old is revoked");
    assert_eq!(f.engine.keys().len(), 2);

    for key in [&f.initial_key, &first.api_key, &second.api_key] {
        assert_eq!(f.scrubber.scrub_str(key), "[Filtered]", "every key the rotation handled is scrubbed from reports");
    }
    let notes = f.alerts.receive(2, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 2, "an info alert per rotation");
    f.assert_no_key_in(&notes.iter().map(|n| n.message.clone()).collect::<Vec<_>>()).await;
}

#[tokio::test]
async fn a_crash_after_any_step_then_a_replay_leaves_exactly_one_new_key() {
    let f = fixture(Duration::from_secs(5)).await;
    for crash_after in 1..=4 {
        let token = f.rotate(crash_after).await;
        let named: Vec<_> =
            f.engine.keys().into_iter().filter(|k| k.name == ops_shared::keys::key_name(&token)).collect();
        assert_eq!(named.len(), 1, "one upstream key per rotation, no orphans (crash after {crash_after})");
        let current = f.stage(AWSCURRENT).await;
        assert_eq!(current.key_id, named[0].id);
        assert!(f.engine.key_works(&current.api_key));
    }
    assert_eq!(f.engine.keys().len(), 2, "current and previous only");
    f.assert_no_key_in(&[]).await;
}

/// The step fails, one critical alert, AWSCURRENT unchanged and its key still working.
async fn assert_refused(f: &Fixture, token: &str, step: &str) -> Diagnostic {
    let before = read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("before");
    let err = f.step(step, token).await.expect_err("refused");
    assert_eq!(err.error_type, "DependencyFailure", "{err:?}");
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].attribute("severity"), Some("critical"));
    let after = read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("after");
    assert_eq!((after.version_id, &after.value), (before.version_id, &before.value));
    assert!(f.engine.key_works(&f.stage(AWSCURRENT).await.api_key));
    f.assert_no_key_in(&[err.error_message.clone(), notes[0].message.clone()]).await;
    err
}

#[tokio::test]
async fn provider_failures_are_retried_within_bounds_and_reported() {
    let f = fixture(Duration::from_secs(1)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");

    // 401: the admin token is refused; no retry helps.
    f.engine.queue_faults(&[Fault::Status(401)]);
    let err = assert_refused(&f, &token, "createSecret").await;
    assert!(err.error_message.contains("401"), "{}", err.error_message);

    // 500 for good: three attempts, then a clear error.
    let before = f.engine.admin_requests();
    f.engine.queue_faults(&[Fault::Status(500), Fault::Status(500), Fault::Status(500)]);
    let err = assert_refused(&f, &token, "createSecret").await;
    assert_eq!(f.engine.admin_requests() - before, 3, "bounded retries");
    assert!(err.error_message.contains("500"));

    // Hanging: each attempt times out; the step still ends, in bounded time.
    f.engine.queue_faults(&[Fault::Hang, Fault::Hang, Fault::Hang]);
    let started = Instant::now();
    assert_refused(&f, &token, "createSecret").await;
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

    // 429 then 200: retried and done.
    f.engine.queue_faults(&[Fault::Status(429)]);
    f.step("createSecret", &token).await.expect("succeeds after a 429");
    for step in &ROTATION_STEPS[1..] {
        f.step(step, &token).await.expect("rest of the rotation");
    }
    assert!(f.engine.key_works(&f.stage(AWSCURRENT).await.api_key));
}

#[tokio::test]
async fn a_create_that_may_have_worked_is_looked_up_not_repeated() {
    let f = fixture(Duration::from_secs(1)).await;
    for fault in [AfterCreate::Status(503), AfterCreate::DropConnection, AfterCreate::Hang] {
        f.engine.queue_after_create(&[fault]);
        let token = f.rotate(4).await;
        let named: Vec<_> =
            f.engine.keys().into_iter().filter(|k| k.name == ops_shared::keys::key_name(&token)).collect();
        assert_eq!(named.len(), 1, "one key for the rotation after {fault:?}");
        let name = ops_shared::keys::key_name(&token);
        assert_eq!(f.engine.create_requests(&name), 1, "the create was not repeated after {fault:?}");
        assert_eq!(named[0].key, f.stage(AWSCURRENT).await.api_key);
    }
    assert_eq!(f.engine.keys().len(), 2, "current and previous only");
}

#[tokio::test]
async fn two_live_keys_under_the_rotation_name_become_one() {
    let f = fixture(Duration::from_secs(5)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    let name = ops_shared::keys::key_name(&token);
    let first = f.engine.create_key(&name);
    let second = f.engine.create_key(&name);
    for step in ROTATION_STEPS {
        f.step(step, &token).await.unwrap_or_else(|e| panic!("{step}: {e:?}"));
    }
    let named: Vec<_> = f.engine.keys().into_iter().filter(|k| k.name == name).collect();
    assert_eq!(named.len(), 1, "the duplicate was revoked");
    assert_eq!(named[0].id, first.id, "the first one is kept");
    assert!(!f.engine.key_works(&second.key));
    assert_eq!(f.stage(AWSCURRENT).await.api_key, first.key);
}

#[tokio::test]
async fn finish_refuses_to_promote_a_version_without_a_value() {
    let f = fixture(Duration::from_secs(5)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    // createSecret fails (the admin API is down for good); a replay drives the other steps.
    f.engine.queue_faults(&[Fault::Status(500); 3]);
    f.step("createSecret", &token).await.expect_err("create fails");
    for step in ["setSecret", "testSecret", "finishSecret"] {
        let err = f.step(step, &token).await.expect_err(step);
        assert_eq!(err.error_type, "RotationOutOfOrder", "{step}: {err:?}");
    }
    let notes = f.alerts.receive(4, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 4, "a critical alert per failed step");
    assert!(notes.iter().all(|n| n.attribute("severity") == Some("critical")));
    let current = read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("current");
    assert_ne!(current.version_id.as_deref(), Some(token.as_str()), "AWSCURRENT did not move");
    assert_eq!(f.stage(AWSCURRENT).await.api_key, f.initial_key);

    // A pending value of the wrong shape is refused the same way.
    f.aws.put_pending_value(&f.secret, &token, "{\"api_key\": \"\"}").await;
    let err = f.step("finishSecret", &token).await.expect_err("malformed pending value");
    assert_eq!(err.error_type, "SecretConfiguration", "{err:?}");
    assert_eq!(f.stage(AWSCURRENT).await.api_key, f.initial_key);
}

/// A rotation cancelled after its key was made (its AWSPENDING removed) leaves a live key that
/// no stage holds; the next rotation revokes it and names it to ops. Keys named after another
/// secret's rotations, and the current and previous keys, are left alone.
#[tokio::test]
async fn a_key_a_cancelled_rotation_left_is_revoked_by_the_next_rotation_and_no_other() {
    // moto reports every version as made just now: the age bound is lifted to see the sweep.
    let config = RotationConfig { orphan_after: Duration::ZERO, ..RotationConfig::default() };
    let f = fixture_with(Duration::from_secs(5), config).await;
    f.rotate(0).await;
    let abandoned = f.aws.start_rotation(&f.secret).await.expect("start");
    f.step("createSecret", &abandoned).await.expect("createSecret");
    let orphan = f.stage(ops_shared::secrets::AWSPENDING).await.key_id;
    f.aws
        .secrets
        .update_secret_version_stage()
        .secret_id(&f.secret)
        .version_stage(ops_shared::secrets::AWSPENDING)
        .remove_from_version_id(&abandoned)
        .send()
        .await
        .expect("cancel the rotation: remove AWSPENDING");
    let anothers = f.engine.create_key(&ops_shared::keys::key_name(&uuid::Uuid::new_v4().to_string()));
    let live = |id: &str| f.engine.keys().iter().any(|k| k.id == id);
    assert!(live(&orphan) && live(&anothers.id));

    f.rotate(0).await;
    assert!(!live(&orphan), "the orphan key is revoked");
    assert!(live(&anothers.id), "another secret's key is not this rotation's to revoke");
    for stage in [AWSCURRENT, AWSPREVIOUS] {
        assert!(live(&f.stage(stage).await.key_id), "{stage} still works");
    }
    let notes = f.alerts.receive(4, Duration::from_secs(3)).await;
    let note = notes.iter().find(|n| n.alert().title.starts_with("Orphan keys of")).expect("ops are told");
    assert_eq!(note.attribute("severity"), Some("warning"));
    assert!(note.alert().summary.contains(&orphan), "{}", note.alert().summary);
    f.assert_no_key_in(&notes.iter().map(|n| n.message.clone()).collect::<Vec<_>>()).await;
}
