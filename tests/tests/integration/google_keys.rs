//! secret-rotation's `google-api-key` strategy (Gemini) against a stand-in of Google's OAuth2
//! token endpoint, the API Keys API v2 and Gemini's model list.

use std::time::{Duration, Instant};

use lambda_runtime::Diagnostic;
use ops_shared::config::SentryConfig;
use ops_shared::secrets::{AWSCURRENT, AWSPREVIOUS, read_stage};
use ops_shared::{Env, Scrubber};
use ops_testkit::aws::{Aws, ROTATION_STEPS, unique};
use ops_testkit::google::{Fault, GEMINI_SERVICE, Google};
use ops_testkit::rotation::RotationUnderTest;
use ops_testkit::sentry_ingest::SentryIngest;
use secret_rotation::RotationConfig;
use serde_json::json;

const PROJECT: &str = "cineview-prod";

#[derive(serde::Deserialize)]
struct Key {
    api_key: String,
    key_id: String,
}

struct Fixture {
    rotation: RotationUnderTest,
    google: Google,
    account_secret: String,
    logs: ops_testkit::logs::Captured,
}

impl std::ops::Deref for Fixture {
    type Target = RotationUnderTest;
    fn deref(&self) -> &RotationUnderTest {
        &self.rotation
    }
}

async fn fixture(http_timeout: Duration) -> Fixture {
    fixture_with(Google::start(PROJECT).await, None, http_timeout).await
}

/// The secret for `google`'s initial key; `bind_to` sets the secret's `service_account_email`.
async fn fixture_with(
    (google, initial): (Google, ops_testkit::google::GoogleKey),
    bind_to: Option<&str>,
    http_timeout: Duration,
) -> Fixture {
    let logs = ops_testkit::logs::capture();
    let aws = Aws::new(ops_testkit::shared()).await;
    let account_secret = unique("google-key-rotation-account");
    aws.secrets
        .create_secret()
        .name(&account_secret)
        .secret_string(&google.service_account)
        .send()
        .await
        .expect("service-account secret");
    // The key file's own token_uri points at the stand-in; api_url and check_url are overridden.
    let mut value = json!({"api_key": initial.key_string, "key_id": initial.name, "project": PROJECT,
        "service_account_secret_arn": account_secret, "api_url": google.base, "check_url": google.check_url()});
    if let Some(account) = bind_to {
        value["service_account_email"] = json!(account);
    }
    let config = RotationConfig { operation_timeout: Duration::from_secs(2), ..RotationConfig::default() };
    let rotation = RotationUnderTest::new("gemini-api", &value, "google-api-key", http_timeout, config).await;
    Fixture { rotation, google, account_secret, logs }
}

impl Fixture {
    async fn stage(&self, stage: &str) -> Key {
        self.rotation.stage(stage).await
    }

    /// No key string, private key or access token appears in `texts` or in any log line.
    fn assert_nothing_secret_in(&self, texts: &[String]) {
        let log = self.logs.text();
        assert!(!log.is_empty(), "logs were captured");
        let account: serde_json::Value = serde_json::from_str(&self.google.service_account).expect("key file");
        let private_key = account["private_key"].as_str().expect("private key");
        let private_key_body = private_key.lines().nth(1).expect("a line of the key");
        for text in texts.iter().chain([&log]) {
            for key in self.google.keys() {
                assert!(!text.contains(&key.key_string), "a key string leaked: {text}");
            }
            assert!(!text.contains(private_key_body), "the service account's private key leaked");
            assert!(!text.contains("ya29."), "an access token leaked: {text}");
        }
    }

    /// The step fails with `error_type`, one critical alert, AWSCURRENT unchanged and working.
    async fn assert_refused(&self, token: &str, step: &str, error_type: &str) -> Diagnostic {
        let before = read_stage(&self.aws.secrets, &self.secret, AWSCURRENT).await.expect("before");
        let err = self.step(step, token).await.expect_err("refused");
        assert_eq!(err.error_type, error_type, "{err:?}");
        let notes = self.alerts.receive(1, Duration::from_secs(3)).await;
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].attribute("severity"), Some("critical"));
        let after = read_stage(&self.aws.secrets, &self.secret, AWSCURRENT).await.expect("after");
        assert_eq!((after.version_id, &after.value), (before.version_id, &before.value), "AWSCURRENT untouched");
        assert!(self.google.key_works(&self.stage(AWSCURRENT).await.api_key));
        self.assert_nothing_secret_in(&[err.error_message.clone(), notes[0].message.clone()]);
        err
    }
}

#[tokio::test]
async fn gemini_keys_rotate_restricted_keeping_the_previous_one() {
    let f = fixture(Duration::from_secs(5)).await;
    let initial = f.stage(AWSCURRENT).await;
    f.rotate(4).await;
    let first = f.stage(AWSCURRENT).await;
    assert!(first.api_key != initial.api_key);
    assert!(first.key_id.starts_with("projects/424242/locations/global/keys/rotation-"), "{}", first.key_id);
    let created = f.google.live_keys().into_iter().find(|k| k.name == first.key_id).expect("the new key upstream");
    assert_eq!(created.services, [GEMINI_SERVICE], "restricted to the Generative Language API");
    assert_eq!(created.service_account.as_deref(), Some(f.google.client_email().as_str()), "bound to the account");
    assert!(f.google.key_works(&first.api_key) && f.google.key_works(&initial.api_key), "new and previous work");
    assert_eq!(f.stage(AWSPREVIOUS).await.api_key, initial.api_key);

    // Crashes after each step, then replays: one key per rotation, the oldest revoked.
    for crash_after in 1..=3 {
        let token = f.rotate(crash_after).await;
        let key_id = ops_shared::keys::google::key_id(&ops_shared::keys::key_name(&token));
        assert_eq!(f.google.keys().iter().filter(|k| k.key_id == key_id).count(), 1, "no orphan keys");
        assert!(f.google.key_works(&f.stage(AWSCURRENT).await.api_key));
        assert!(f.google.key_works(&f.stage(AWSPREVIOUS).await.api_key));
        assert_eq!(f.google.live_keys().len(), 2, "current and previous only");
    }
    assert!(!f.google.key_works(&initial.api_key), "the hand-made key was revoked two rotations later");
    assert_eq!(f.google.keys().len(), 5, "four rotations made four keys, nothing more");
    // What the project lists, page by page, is what the stand-in holds.
    let listed = f.google.list_all(&f.google.issue_access_token(), 1).await;
    assert_eq!(listed.len(), 2);
    f.assert_nothing_secret_in(&[]);
    for note in f.alerts.receive(4, Duration::from_secs(3)).await {
        f.assert_nothing_secret_in(&[note.message]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_are_bounded_reported_and_change_nothing() {
    let ingest = SentryIngest::start().await;
    let sentry = SentryConfig::from_env(&Env::from_pairs([("SENTRY_DSN", ingest.dsn.as_str())])).expect("valid DSN");
    let _guard = ops_shared::telemetry::init_sentry(&sentry, "secret-rotation", Scrubber::default());
    let f = fixture(Duration::from_secs(1)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");

    // 401 from the API Keys API: the service account lost its permission.
    f.google.refuse_access_tokens(true);
    let err = f.assert_refused(&token, "createSecret", "DependencyFailure").await;
    assert!(
        err.error_message.contains("401") && err.error_message.contains("UNAUTHENTICATED"),
        "{}",
        err.error_message
    );
    f.google.refuse_access_tokens(false);

    // 500 for good: three attempts, then a clear error.
    let before = f.google.requests();
    f.google.queue_faults(&[Fault::Status(500); 3]);
    let err = f.assert_refused(&token, "createSecret", "DependencyFailure").await;
    assert_eq!(f.google.requests() - before, 3, "bounded retries");
    assert!(err.error_message.contains("500"), "{}", err.error_message);

    // Hanging: every attempt times out, the step still ends in bounded time.
    f.google.queue_faults(&[Fault::Hang; 3]);
    let started = Instant::now();
    f.assert_refused(&token, "createSecret", "DependencyFailure").await;
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

    // A create operation that never finishes: polled until the bound; the key it may have
    // made is then looked up, not created again.
    f.google.set_operation_polls(u32::MAX);
    let started = Instant::now();
    f.step("createSecret", &token).await.expect("the key the unfinished operation made");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    f.google.set_operation_polls(2);

    // 429 then 200: retried.
    f.google.queue_faults(&[Fault::Status(429)]);
    for step in ROTATION_STEPS {
        f.step(step, &token).await.unwrap_or_else(|e| panic!("{step} after a 429: {e:?}"));
    }
    let key_id = ops_shared::keys::google::key_id(&ops_shared::keys::key_name(&token));
    assert_eq!(f.google.keys().iter().filter(|k| k.key_id == key_id).count(), 1, "one key for the rotation");
    assert!(f.google.key_works(&f.stage(AWSCURRENT).await.api_key));
    assert_eq!(
        read_stage(&f.aws.secrets, &f.secret, AWSCURRENT).await.expect("current").version_id.as_deref(),
        Some(token.as_str())
    );

    let events = ingest.events();
    assert!(events.len() >= 3, "each failed step reached Sentry: {}", events.len());
    f.assert_nothing_secret_in(&events);
}

#[tokio::test]
async fn a_service_account_google_refuses_stops_before_anything_changes() {
    let f = fixture(Duration::from_secs(5)).await;
    let token = f.aws.start_rotation(&f.secret).await.expect("start");

    // A key file signed with a key Google does not know (rotated or deleted upstream).
    let (other_key, _) = ops_testkit::google::rsa_key().expect("RSA key");
    let mut account: serde_json::Value = serde_json::from_str(&f.google.service_account).expect("key file");
    account["private_key"] = json!(other_key);
    f.aws
        .secrets
        .put_secret_value()
        .secret_id(&f.account_secret)
        .secret_string(account.to_string())
        .send()
        .await
        .expect("put");
    let err = f.assert_refused(&token, "createSecret", "DependencyFailure").await;
    assert!(
        err.error_message.contains("invalid_grant") && err.error_message.contains("Signature"),
        "{}",
        err.error_message
    );

    // Not a service-account key file at all: the problem is named, the value is not.
    f.aws
        .secrets
        .put_secret_value()
        .secret_id(&f.account_secret)
        .secret_string("not-a-key-file")
        .send()
        .await
        .expect("put");
    let err = f.assert_refused(&token, "createSecret", "SecretConfiguration").await;
    assert!(err.error_message.contains("not a Google service-account key file"), "{}", err.error_message);
    assert_eq!(f.google.keys().len(), 1, "nothing created upstream");
}

#[tokio::test]
async fn a_standard_key_rotates_into_a_key_bound_to_the_service_account() {
    let f = fixture_with(Google::start_with_standard_key(PROJECT).await, None, Duration::from_secs(5)).await;
    let standard = f.stage(AWSCURRENT).await;
    assert!(!f.google.key_works(&standard.api_key), "Gemini refuses the standard key");
    f.rotate(4).await;
    let bound = f.stage(AWSCURRENT).await;
    assert!(f.google.key_works(&bound.api_key), "Gemini accepts the new key");
    let created = f.google.live_keys().into_iter().find(|k| k.name == bound.key_id).expect("upstream");
    assert!(created.is_bound() && created.services == [GEMINI_SERVICE]);
    assert_eq!(f.stage(AWSPREVIOUS).await.api_key, standard.api_key);
}

#[tokio::test]
async fn keys_are_bound_to_the_account_the_secret_names() {
    let other = format!("gemini-caller@{PROJECT}.iam.gserviceaccount.com");
    let f = fixture_with(Google::start(PROJECT).await, Some(&other), Duration::from_secs(5)).await;
    f.rotate(4).await;
    let current = f.stage(AWSCURRENT).await;
    let created = f.google.live_keys().into_iter().find(|k| k.name == current.key_id).expect("upstream");
    assert_eq!(created.service_account.as_deref(), Some(other.as_str()));
    assert!(f.google.key_works(&current.api_key));
}

/// A new key that lists models but that the service the app calls (GenerativeService) refuses,
/// as keys have been refused with 401 `ACCESS_TOKEN_TYPE_UNSUPPORTED`, fails testSecret: the
/// test asks the model to count a prompt's tokens, which costs nothing, not for the model list.
#[tokio::test]
async fn a_key_the_generative_service_refuses_fails_the_test_though_it_lists_models() {
    let f = fixture(Duration::from_secs(5)).await;
    f.google.refuse_generation_for_new_keys();
    let token = f.aws.start_rotation(&f.secret).await.expect("start");
    f.step("createSecret", &token).await.expect("createSecret");
    f.step("setSecret", &token).await.expect("setSecret");
    let pending = f.stage(ops_shared::secrets::AWSPENDING).await;
    let http = reqwest::Client::new();
    let listed = http.get(f.google.check_url()).header("x-goog-api-key", &pending.api_key).send().await.expect("list");
    assert_eq!(listed.status(), 200, "the new key lists models");
    let err = f.assert_refused(&token, "testSecret", "RotationTestFailed").await;
    assert!(
        err.error_message.contains("401") && err.error_message.contains("ACCESS_TOKEN_TYPE_UNSUPPORTED"),
        "{}",
        err.error_message
    );
    assert!(err.error_message.contains(":countTokens"), "{}", err.error_message);
}
