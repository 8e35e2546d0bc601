//! secret-rotation's `http-api-key` strategy against a stand-in of the AI engine's admin API.

use std::time::{Duration, Instant};

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use ops_shared::lambda::Function;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::secrets::{AWSCURRENT, AWSPREVIOUS, read_stage};
use ops_shared::{Scrubber, SnsAlertPublisher};
use ops_testkit::ai_engine::{AiEngine, Fault};
use ops_testkit::aws::{Aws, Inbox, unique};
use secret_rotation::{RotationConfig, Rotator, StepReport};
use serde_json::json;

/// The parts of the secret the tests look at.
#[derive(serde::Deserialize)]
struct Key {
    api_key: String,
    key_id: String,
    owner: Option<String>,
}

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

struct Fixture {
    aws: Aws,
    alerts: Inbox,
    engine: AiEngine,
    function: Function<Rotator<SecretsManagerVersions, SnsAlertPublisher>>,
    /// The scrubber the rotation registers every value it reads or writes with.
    scrubber: Scrubber,
    secret: String,
    /// Every key value seen, to prove none leaks into alerts or errors.
    initial_key: String,
}

async fn fixture(http_timeout: Duration) -> Fixture {
    ops_testkit::logs::capture();
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("api-key-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let (engine, initial) = AiEngine::start(&admin_token).await;
    let admin_secret = unique("ai-engine-admin");
    aws.secrets.create_secret().name(&admin_secret).secret_string(&admin_token).send().await.expect("admin secret");
    let secret = unique("ai-engine-api");
    let value = json!({"api_key": initial.key, "key_id": initial.id, "admin_url": engine.admin_url(),
        "check_url": engine.check_url(), "admin_secret_arn": admin_secret, "owner": "ai-team"});
    aws.create_rotated_secret(&secret, &value.to_string(), "http-api-key").await.expect("secret");
    let scrubber = Scrubber::default();
    let rotator = Rotator::new(
        SecretsManagerVersions::new(aws.secrets.clone()).with_scrubber(scrubber.clone()),
        SnsAlertPublisher::new(aws.sns.clone(), topic),
        ops_shared::http::client(http_timeout).expect("http"),
        RotationConfig::default(),
    );
    Fixture {
        function: Function::new("secret-rotation", rotator, scrubber.clone()),
        scrubber,
        aws,
        alerts,
        engine,
        secret,
        initial_key: initial.key,
    }
}

impl Fixture {
    async fn step(&self, step: &str, token: &str) -> Result<StepReport, Diagnostic> {
        let event = json!({"Step": step, "SecretId": self.secret, "ClientRequestToken": token});
        self.function.invoke(LambdaEvent::new(event, Context::default())).await
    }

    async fn rotate(&self) -> String {
        let token = self.aws.start_rotation(&self.secret).await.expect("start");
        for step in STEPS {
            self.step(step, &token).await.unwrap_or_else(|e| panic!("{step}: {e:?}"));
        }
        self.aws.end_rotation(&self.secret, &token).await.expect("end");
        token
    }

    async fn stage(&self, stage: &str) -> Key {
        serde_json::from_str(&read_stage(&self.aws.secrets, &self.secret, stage).await.expect("stage").value)
            .expect("json")
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
    f.rotate().await;
    let first = f.stage(AWSCURRENT).await;
    assert_ne!(first.api_key, f.initial_key);
    assert!(f.engine.key_works(&first.api_key), "the new key works");
    assert!(f.engine.key_works(&f.initial_key), "the previous key still works");
    assert_eq!(f.stage(AWSPREVIOUS).await.api_key, f.initial_key);
    assert_eq!(first.owner.as_deref(), Some("ai-team"), "other fields are kept");

    f.rotate().await;
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
        let token = f.aws.start_rotation(&f.secret).await.expect("start");
        for step in &STEPS[..crash_after] {
            f.step(step, &token).await.expect("before the crash");
        }
        for step in STEPS {
            f.step(step, &token).await.unwrap_or_else(|e| panic!("replayed {step} after {crash_after}: {e:?}"));
        }
        f.aws.end_rotation(&f.secret, &token).await.expect("end");
        let named: Vec<_> =
            f.engine.keys().into_iter().filter(|k| k.name == secret_rotation::api_key::key_name(&token)).collect();
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
    for step in &STEPS[1..] {
        f.step(step, &token).await.expect("rest of the rotation");
    }
    assert!(f.engine.key_works(&f.stage(AWSCURRENT).await.api_key));
}
