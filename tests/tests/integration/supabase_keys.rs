//! secret-rotation's `supabase-api-key` strategy against a stand-in of Supabase's Management
//! API and a project's REST endpoint.

use std::time::Duration;

use ops_shared::secrets::{AWSCURRENT, AWSPREVIOUS, read_stage};
use ops_testkit::aws::{Aws, ROTATION_STEPS, unique};
use ops_testkit::rotation::RotationUnderTest;
use ops_testkit::supabase::{AfterCreate, Supabase};
use secret_rotation::RotationConfig;
use serde_json::json;

const PROJECT: &str = "abcdefghijklmnopqrst";

struct Fixture {
    rotation: RotationUnderTest,
    supabase: Supabase,
    initial_key: String,
    logs: ops_testkit::logs::Captured,
}

impl std::ops::Deref for Fixture {
    type Target = RotationUnderTest;
    fn deref(&self) -> &RotationUnderTest {
        &self.rotation
    }
}

async fn fixture(api_key: Option<&str>, http_timeout: Duration) -> Fixture {
    let logs = ops_testkit::logs::capture();
    let aws = Aws::new(ops_testkit::shared()).await;
    let token = format!("sbp_{}", uuid::Uuid::new_v4().simple());
    let (supabase, initial) = Supabase::start(PROJECT, &token).await;
    let token_secret = unique("supabase-management-token");
    aws.secrets.create_secret().name(&token_secret).secret_string(&token).send().await.expect("token secret");
    let key = api_key.map(str::to_owned).unwrap_or_else(|| initial.api_key.clone());
    let value = json!({"api_key": key, "key_id": initial.id, "project_ref": PROJECT, "token_secret_arn": token_secret,
        "api_url": supabase.base, "project_url": supabase.base});
    let rotation = RotationUnderTest::new(
        "supabase-service-role",
        &value,
        "supabase-api-key",
        http_timeout,
        RotationConfig::default(),
    )
    .await;
    Fixture { rotation, supabase, initial_key: initial.api_key, logs }
}

impl Fixture {
    /// No key value this project ever issued appears in any log line.
    fn assert_no_key_logged(&self) {
        let text = self.logs.text();
        assert!(!text.is_empty(), "logs were captured");
        for key in self.supabase.keys().iter().map(|k| k.api_key.clone()).chain([self.initial_key.clone()]) {
            assert!(!text.contains(&key), "a key value was logged");
        }
    }

    async fn key(&self, stage: &str) -> String {
        let value: serde_json::Value = self.rotation.stage(stage).await;
        value["api_key"].as_str().expect("api_key").to_owned()
    }
}

#[tokio::test]
async fn secret_keys_rotate_keeping_the_previous_one() {
    let f = fixture(None, Duration::from_secs(5)).await;
    f.rotate(4).await;
    let first = f.key(AWSCURRENT).await;
    assert!(first.starts_with("sb_secret_") && first != f.initial_key);
    assert!(f.supabase.key_works(&first) && f.supabase.key_works(&f.initial_key));
    assert_eq!(f.key(AWSPREVIOUS).await, f.initial_key);

    // Crashes and replays: still one key per rotation, and the oldest is revoked.
    for crash_after in 1..=3 {
        let token = f.rotate(crash_after).await;
        let name = ops_shared::keys::key_name(&token);
        assert_eq!(f.supabase.keys().iter().filter(|k| k.name == name).count(), 1, "no orphan keys");
        assert!(f.supabase.key_works(&f.key(AWSCURRENT).await));
        assert!(f.supabase.key_works(&f.key(AWSPREVIOUS).await));
        assert_eq!(f.supabase.keys().len(), 2, "current and previous only");
    }
    assert!(!f.supabase.key_works(&f.initial_key));
    assert_eq!(f.supabase.revealed_listings(), 0, "no other key's plaintext was asked for");
    assert_eq!(f.supabase.all_keys().len(), 5, "legacy and publishable keys untouched");
    f.assert_no_key_logged();
    for note in f.alerts.receive(4, Duration::from_secs(3)).await {
        for key in f.supabase.keys() {
            assert!(!note.message.contains(&key.api_key), "no key value in alerts");
        }
    }
}

#[tokio::test]
async fn a_legacy_jwt_service_role_key_is_refused_with_what_to_do() {
    let legacy = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.signature";
    let f = fixture(Some(legacy), Duration::from_secs(5)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    let err = f.step("createSecret", &token).await.expect_err("refused");
    assert_eq!(err.error_type, "SecretConfiguration");
    assert!(err.error_message.contains("migrate to a secret API key"), "{}", err.error_message);
    assert!(!err.error_message.contains(legacy));
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].attribute("severity"), Some("critical"));
    assert_eq!(f.key(AWSCURRENT).await, legacy, "AWSCURRENT untouched");
    assert_eq!(f.supabase.keys().len(), 1, "nothing created upstream");
}

#[tokio::test]
async fn a_refused_management_token_changes_nothing() {
    let f = fixture(None, Duration::from_secs(5)).await;
    let token_secret: serde_json::Value =
        serde_json::from_str(&read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("read").value)
            .expect("json");
    let arn = token_secret["token_secret_arn"].as_str().expect("arn");
    f.aws.secrets.put_secret_value().secret_id(arn).secret_string("sbp_revoked").send().await.expect("break the token");
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    let err = f.step("createSecret", &token).await.expect_err("refused");
    assert_eq!(err.error_type, "DependencyFailure");
    assert!(err.error_message.contains("401"), "{}", err.error_message);
    assert_eq!(f.key(AWSCURRENT).await, f.initial_key);
    assert!(f.supabase.key_works(&f.initial_key));
    assert_eq!(f.alerts.receive(1, Duration::from_secs(3)).await.len(), 1);
}

#[tokio::test]
async fn management_api_failures_are_retried_within_bounds() {
    let f = fixture(None, Duration::from_secs(1)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");

    let before = f.supabase.management_requests();
    f.supabase.queue_faults(&[ops_testkit::supabase::Fault::Status(500); 3]);
    let err = f.step("createSecret", &token).await.expect_err("500 for good");
    assert_eq!(err.error_type, "DependencyFailure");
    assert_eq!(f.supabase.management_requests() - before, 3, "three attempts, then a clear error");
    assert!(err.error_message.contains("500"), "{}", err.error_message);

    f.supabase.queue_faults(&[ops_testkit::supabase::Fault::Hang; 3]);
    let started = std::time::Instant::now();
    f.step("createSecret", &token).await.expect_err("hanging");
    assert!(started.elapsed() < Duration::from_secs(8), "bounded: {:?}", started.elapsed());

    f.supabase.queue_faults(&[ops_testkit::supabase::Fault::Status(429)]);
    for step in ROTATION_STEPS {
        f.step(step, &token).await.unwrap_or_else(|e| panic!("{step} after a 429: {e:?}"));
    }
    assert!(f.supabase.key_works(&f.key(AWSCURRENT).await));
    assert_eq!(
        read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("current").version_id.as_deref(),
        Some(token.as_str())
    );
    assert_eq!(f.alerts.receive(3, Duration::from_secs(3)).await.len(), 3, "two critical alerts and one info");
    f.assert_no_key_logged();
}

#[tokio::test]
async fn the_key_is_tested_whether_or_not_the_data_api_is_on() {
    let f = fixture(None, Duration::from_secs(5)).await;
    f.supabase.set_data_api(false);
    f.rotate(4).await;
    let current = f.key(AWSCURRENT).await;
    assert!(current != f.initial_key && f.supabase.key_works(&current));
}

#[tokio::test]
async fn a_create_that_may_have_worked_is_looked_up_not_repeated() {
    let f = fixture(None, Duration::from_secs(1)).await;
    let faults = [AfterCreate::DropConnection, AfterCreate::Status(503), AfterCreate::Hang];
    for fault in faults {
        f.supabase.queue_after_create(&[fault]);
        let token = f.rotate(4).await;
        let name = ops_shared::keys::key_name(&token);
        let named: Vec<_> = f.supabase.keys().into_iter().filter(|k| k.name == name).collect();
        assert_eq!(named.len(), 1, "one key for the rotation after {fault:?}");
        assert_eq!(f.supabase.create_requests(&name), 1, "the create was not repeated after {fault:?}");
        assert_eq!(named[0].api_key, f.key(AWSCURRENT).await, "the secret holds that key");
    }
    // The grace rule: the current key and the previous one, nothing else.
    let live: Vec<String> = f.supabase.keys().into_iter().map(|k| k.api_key).collect();
    assert_eq!(live.len(), 2, "{} live secret keys", live.len());
    assert!(live.contains(&f.key(AWSCURRENT).await) && live.contains(&f.key(AWSPREVIOUS).await));
}

/// A management token that may not reveal secret keys gets them masked (their prefix and `·`,
/// as Supabase's CLI recorded the API's answers): the masked value is never taken for a key, and
/// nothing is written to AWSPENDING.
#[tokio::test]
async fn a_masked_key_is_never_taken_for_a_real_one() {
    let f = fixture(None, Duration::from_secs(5)).await;
    f.supabase.stop_revealing();
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    let err = f.step("createSecret", &token).await.expect_err("a masked key is no key");
    assert!(err.error_message.contains("masked or malformed key"), "{}", err.error_message);
    let pending = read_stage(&f.aws.secrets, &f.secret, ops_shared::secrets::AWSPENDING).await;
    assert!(pending.is_err() || pending.as_ref().is_ok_and(|v| v.value.is_empty()), "AWSPENDING got a value");
    assert_eq!(f.key(AWSCURRENT).await, f.initial_key, "AWSCURRENT untouched");
    assert_eq!(f.alerts.receive(1, Duration::from_secs(3)).await.len(), 1, "ops are told");
}
