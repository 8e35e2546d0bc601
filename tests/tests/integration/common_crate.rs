//! The common crate against the local stack: secret cache, alert publishing.

use std::time::Duration;

use ops_shared::Scrubber;
use ops_shared::alert::{Alert, AlertSink, SNS_MAX_BYTES, Severity, SnsAlertPublisher};
use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretCache, SecretError};
use ops_testkit::aws::{Aws, unique};

async fn put_current(aws: &Aws, name: &str, value: &str) -> String {
    let out = aws.secrets.put_secret_value().secret_id(name).secret_string(value).send().await.expect("put value");
    out.version_id.expect("version id")
}

#[tokio::test]
async fn secret_cache_serves_from_cache_until_ttl_then_rereads() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let name = unique("cache-ttl");
    aws.secrets.create_secret().name(&name).secret_string("first").send().await.expect("create");
    let clock = ops_shared::test_util::ManualClock::default();
    let cache = SecretCache::new(aws.secrets.clone(), Scrubber::default())
        .with_ttl(Duration::from_secs(300))
        .with_clock(clock.clone());

    assert_eq!(cache.get(&name).await.expect("read").value, "first");
    put_current(&aws, &name, "second").await;
    assert_eq!(
        cache.get(&name).await.expect("cached read").value,
        "first",
        "within the TTL the cached value is served"
    );
    clock.advance(Duration::from_secs(299));
    assert_eq!(cache.get(&name).await.expect("cached read").value, "first", "still within the TTL");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.get(&name).await.expect("read after TTL").value, "second");
}

#[tokio::test]
async fn a_refresh_anyone_can_cause_reads_a_rotated_secret_at_most_once_a_minute() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let name = unique("cache-refresh");
    aws.secrets.create_secret().name(&name).secret_string("first").send().await.expect("create");
    let clock = ops_shared::test_util::ManualClock::default();
    let cache = SecretCache::new(aws.secrets.clone(), Scrubber::default()).with_clock(clock.clone());
    let minute = Duration::from_secs(60);

    assert_eq!(cache.get(&name).await.expect("read").value, "first");
    put_current(&aws, &name, "rotated").await;
    assert_eq!(cache.refresh_unless_younger_than(&name, minute).await.expect("cached").value, "first");
    clock.advance(Duration::from_secs(59));
    assert_eq!(cache.refresh_unless_younger_than(&name, minute).await.expect("cached").value, "first");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.refresh_unless_younger_than(&name, minute).await.expect("read").value, "rotated");
    assert_eq!(cache.get(&name).await.expect("cached").value, "rotated", "the fresh value is cached");
}

#[tokio::test]
async fn secret_cache_reads_the_stage_asked_for() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let name = unique("cache-stage");
    aws.secrets
        .create_secret()
        .name(&name)
        .secret_string(r#"{"api_key":"old-key-0123456789"}"#)
        .send()
        .await
        .expect("create");
    let new_version = put_current(&aws, &name, r#"{"api_key":"new-key-0123456789"}"#).await;
    let pending = uuid::Uuid::new_v4().to_string();
    aws.secrets
        .put_secret_value()
        .secret_id(&name)
        .client_request_token(&pending)
        .secret_string(r#"{"api_key":"pending-key-0123456789"}"#)
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect("stage pending");

    let cache = SecretCache::new(aws.secrets.clone(), Scrubber::default());
    let current = cache.get_stage(&name, AWSCURRENT).await.expect("current");
    assert_eq!(current.version_id.as_deref(), Some(new_version.as_str()));
    assert!(current.value.contains("new-key"));
    assert!(cache.get_stage(&name, AWSPREVIOUS).await.expect("previous").value.contains("old-key"));
    let staged = cache.get_stage(&name, AWSPENDING).await.expect("pending");
    assert_eq!(staged.version_id.as_deref(), Some(pending.as_str()));

    #[derive(serde::Deserialize)]
    struct ApiKey {
        api_key: String,
    }
    assert_eq!(cache.get_json::<ApiKey>(&name).await.expect("json").api_key, "new-key-0123456789");
    // Every value handed out is known to the scrubber.
    assert_eq!(cache.scrubber().scrub_str("x pending-key-0123456789 y"), "x [Filtered] y");
}

#[tokio::test]
async fn secret_cache_refreshes_after_an_auth_failure() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let name = unique("cache-refresh");
    aws.secrets.create_secret().name(&name).secret_string("stale-token").send().await.expect("create");
    let cache = SecretCache::new(aws.secrets.clone(), Scrubber::default());
    assert_eq!(cache.get(&name).await.expect("read").value, "stale-token");
    put_current(&aws, &name, "rotated-token").await;

    #[derive(Debug)]
    enum CallError {
        Unauthorized,
        Secret,
    }
    impl From<SecretError> for CallError {
        fn from(_: SecretError) -> Self {
            CallError::Secret
        }
    }
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let used =
        cache
            .with_refresh_on_auth_failure(
                &name,
                |e: &CallError| matches!(e, CallError::Unauthorized),
                |secret| {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        if secret.value == "rotated-token" { Ok(secret.value) } else { Err(CallError::Unauthorized) }
                    }
                },
            )
            .await
            .expect("second attempt uses the fresh value");
    assert_eq!(used, "rotated-token");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);

    put_current(&aws, &name, "later-token").await;
    cache.invalidate(&name).await;
    assert_eq!(cache.get(&name).await.expect("read after invalidate").value, "later-token");
}

#[tokio::test]
async fn secret_cache_names_a_missing_secret() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let cache = SecretCache::new(aws.secrets.clone(), Scrubber::default());
    let err = cache.get("does-not-exist").await.expect_err("missing");
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does-not-exist"));
}

#[tokio::test]
async fn a_published_alert_reaches_a_subscribed_queue_intact() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("alerts")).await;
    let inbox = aws.subscribe_queue(&topic).await;
    let publisher = SnsAlertPublisher::new(aws.sns.clone(), topic);
    let alert = Alert::new("scheduled-backup", Severity::Critical, "backup:app", "Nightly backup failed")
        .summary("pg_dump exited with status 1")
        .detail("database", "app")
        .link("runbook", "https://example.com/runbook#backups");
    publisher.publish(&alert).await.expect("publish");

    let received = inbox.receive(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let note = &received[0];
    assert_eq!(note.attribute("severity"), Some("critical"));
    assert_eq!(note.attribute("source"), Some("scheduled-backup"));
    assert_eq!(note.subject.as_deref(), Some("[CRITICAL] Nightly backup failed"));
    assert_eq!(note.alert(), alert);
}

#[tokio::test]
async fn an_oversized_alert_is_truncated_below_the_sns_limit_and_still_delivered() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("alerts")).await;
    let inbox = aws.subscribe_queue(&topic).await;
    let publisher = SnsAlertPublisher::new(aws.sns.clone(), topic);
    let alert = Alert::new("restore-verifier", Severity::Warning, "restore:app", "Row counts differ")
        .detail("stderr", "pg_restore: warning ".repeat(30_000));
    publisher.publish(&alert).await.expect("an oversized alert is still published");

    let received = inbox.receive(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    assert!(received[0].message.len() < SNS_MAX_BYTES);
    let delivered = received[0].alert();
    assert_eq!(delivered.details["truncated"], serde_json::Value::Bool(true));
    assert!(delivered.summary.contains("truncated"));
    assert_eq!(delivered.title, "Row counts differ");
}

#[test]
fn only_the_test_kit_depends_on_a_function_crate() {
    let functions = ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"];
    let mut manifests = vec!["opsctl/Cargo.toml".to_owned(), "shared/Cargo.toml".to_owned()];
    manifests.extend(functions.iter().map(|f| format!("functions/{f}/Cargo.toml")));
    for manifest in manifests {
        let text = std::fs::read_to_string(ops_testkit::workspace_file(&manifest)).expect("manifest");
        let dependencies = text.split("[dependencies]").nth(1).unwrap_or_default();
        for function in functions {
            let depends = dependencies.lines().any(|line| line.trim_start().starts_with(&format!("{function} ")));
            assert!(!depends, "{manifest} depends on the function crate {function}: move what it needs to shared");
        }
    }
}
