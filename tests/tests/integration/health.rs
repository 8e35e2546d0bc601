//! health-checker against local HTTP targets, the real PostgreSQL server and moto.

use std::sync::Arc;
use std::time::{Duration, Instant};

use health_checker::config::Probe;
use health_checker::{Class, HealthConfig, HealthRun, Prober, Target};
use ops_shared::state::DynamoState;
use ops_shared::{Scrubber, SecretCache, Severity, SnsAlertPublisher, Status};
use ops_testkit::aws::{Aws, Inbox, unique};
use ops_testkit::http_targets::Targets;
use ops_testkit::names;
use serde_json::json;

fn target(name: &str, spec: serde_json::Value) -> Target {
    let mut spec = spec;
    spec["name"] = json!(name);
    serde_json::from_value(spec).expect("target")
}

fn http(name: &str, url: &str, timeout_ms: u64) -> Target {
    target(name, json!({"kind": "http", "url": url, "timeout_ms": timeout_ms, "warn_ms": 400, "critical_ms": 900}))
}

struct Fixture {
    aws: Aws,
    alerts: Inbox,
    topic: String,
    secrets: Arc<SecretCache>,
}

async fn fixture() -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("health-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let secrets = Arc::new(SecretCache::new(aws.secrets.clone(), Scrubber::default()));
    Fixture { aws, alerts, topic, secrets }
}

impl Fixture {
    fn prober(&self) -> Prober {
        Prober { http: health_checker::http_client().build().expect("client"), secrets: Arc::clone(&self.secrets) }
    }

    fn run(&self, targets: Vec<Target>) -> HealthRun<DynamoState, SnsAlertPublisher> {
        HealthRun {
            prober: self.prober(),
            state: DynamoState::new(self.aws.dynamodb.clone(), names::STATE_TABLE),
            alerts: SnsAlertPublisher::new(self.aws.sns.clone(), self.topic.clone()),
            reports: None,
            config: HealthConfig::with_defaults(targets),
        }
    }
}

#[tokio::test]
async fn targets_are_classified_healthy_slow_failing_hanging_and_tls_failing() {
    let f = fixture().await;
    let web = Targets::start(700).await;
    let db = ops_testkit::shared().pg.superuser("app");
    let secret = unique("health-db");
    f.aws
        .secrets
        .create_secret()
        .name(&secret)
        .secret_string(serde_json::to_string(&db).expect("json"))
        .send()
        .await
        .expect("secret");
    let mut wrong = db.clone();
    wrong.password = "wrong".to_owned().into();
    let wrong_secret = unique("health-db-wrong");
    f.aws
        .secrets
        .create_secret()
        .name(&wrong_secret)
        .secret_string(serde_json::to_string(&wrong).expect("json"))
        .send()
        .await
        .expect("secret");

    let cases = [
        (http("healthy", &web.url("/healthy"), 1000), Class::Healthy),
        (http("slow", &web.url("/slow"), 2000), Class::Slow),
        (http("failing", &web.url("/failing"), 1000), Class::Failing),
        (http("hanging", &web.url("/hang"), 800), Class::Hanging),
        (http("tls", &web.tls_url("/healthy"), 1000), Class::TlsFailed),
        (
            http("refused", &format!("http://127.0.0.1:{}/", ops_testkit::process::free_port().expect("port")), 1000),
            Class::Failing,
        ),
        (
            target(
                "body",
                json!({"kind": "http", "url": web.url("/degraded"), "body": [{"path": "status", "equals": "ok"}]}),
            ),
            Class::Failing,
        ),
        (target("database", json!({"kind": "postgres", "secret_arn": secret})), Class::Healthy),
        (target("database-wrong", json!({"kind": "postgres", "secret_arn": wrong_secret})), Class::Failing),
    ];
    let prober = f.prober();
    for (target, expected) in &cases {
        let result = prober.check(target).await;
        assert_eq!(result.class, *expected, "{}: {result:?}", target.name);
    }
    let degraded = prober.check(&cases[6].0).await;
    assert!(degraded.detail.contains("body field status is \"degraded\""), "{}", degraded.detail);
    assert!(prober.check(&cases[4].0).await.detail.starts_with("TLS failed"));
    assert!(matches!(cases[7].0.probe, Probe::Postgres { .. }));
}

#[tokio::test]
async fn fifty_targets_with_one_hanging_finish_within_its_timeout() {
    let f = fixture().await;
    let web = Targets::start(10).await;
    let mut targets: Vec<Target> = (0..49).map(|i| http(&format!("t{i}"), &web.url("/healthy"), 1500)).collect();
    targets.push(http("stuck", &web.url("/hang"), 1500));
    let prober = f.prober();
    let started = Instant::now();
    let results = futures::future::join_all(targets.iter().map(|t| prober.check(t))).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1500 + 500), "checks took {elapsed:?}");
    assert_eq!(results.iter().filter(|r| r.up()).count(), 49);
    assert_eq!(results.iter().find(|r| r.target == "stuck").map(|r| r.class), Some(Class::Hanging));
}

#[tokio::test]
async fn thresholds_alert_once_resolve_once_and_ignore_flapping() {
    let f = fixture().await;
    let web = Targets::start(10).await;
    let name = unique("switch");
    let run = f.run(vec![http(&name, &web.url("/switch"), 1000)]);

    for healthy in [false, true, false, true] {
        web.set_healthy(healthy);
        run.run().await.expect("run");
    }
    assert!(f.alerts.receive(0, Duration::from_millis(300)).await.is_empty(), "flapping stays silent");

    web.set_healthy(false);
    for _ in 0..4 {
        run.run().await.expect("run");
    }
    let down = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(down.len(), 1, "exactly one alert after three failures");
    assert_eq!(down[0].attribute("severity"), Some("critical"));
    assert_eq!(down[0].alert().title, format!("{name} is down"));

    web.set_healthy(true);
    for _ in 0..3 {
        run.run().await.expect("run");
    }
    let up = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(up.len(), 1, "exactly one resolved after two successes");
    let resolved = up[0].alert();
    assert_eq!(resolved.status, Status::Resolved);
    assert!(resolved.summary.contains("after being down for"), "{}", resolved.summary);
    assert!(resolved.details["down_for_seconds"].as_i64().is_some());
}

#[tokio::test]
async fn two_overlapping_runs_still_alert_once() {
    let f = fixture().await;
    let web = Targets::start(10).await;
    web.set_healthy(false);
    let name = unique("overlap");
    let first = f.run(vec![http(&name, &web.url("/switch"), 1000)]);
    let second = f.run(vec![http(&name, &web.url("/switch"), 1000)]);
    first.run().await.expect("run");
    first.run().await.expect("run");
    // Both runs see two failures and both record the third.
    let (a, b) = tokio::join!(first.run(), second.run());
    a.expect("first run");
    b.expect("second run");
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "{:?}", notes.iter().map(|n| n.alert().title).collect::<Vec<_>>());
    assert_eq!(notes[0].alert().severity, Severity::Critical);
}

#[tokio::test]
async fn slow_answers_raise_a_latency_warning() {
    let f = fixture().await;
    let web = Targets::start(500).await;
    let name = unique("latency");
    let run = f.run(vec![http(&name, &web.url("/slow"), 2000)]);
    for _ in 0..3 {
        run.run().await.expect("run");
    }
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    let alert = notes[0].alert();
    assert_eq!(alert.severity, Severity::Warning);
    assert!(alert.title.contains("is slow: P95"), "{}", alert.title);
    assert_eq!(alert.dedup_key, format!("health-checker:{name}:latency"));
}

#[tokio::test]
async fn availability_is_counted_per_target_per_day() {
    let f = fixture().await;
    let web = Targets::start(10).await;
    let name = unique("availability");
    let run = f.run(vec![http(&name, &web.url("/switch"), 1000)]);
    web.set_healthy(true);
    run.run().await.expect("run");
    run.run().await.expect("run");
    web.set_healthy(false);
    run.run().await.expect("run");
    let day = format!("day#{}", chrono::Utc::now().format("%Y-%m-%d"));
    let item = f
        .aws
        .dynamodb
        .get_item()
        .table_name(names::STATE_TABLE)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("health-checker#{name}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(day))
        .send()
        .await
        .expect("get")
        .item
        .expect("counters exist");
    let number = |k: &str| match item.get(k) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse::<i64>().expect("number"),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!((number("checks"), number("up")), (3, 2));
    assert!(number("expires_at") > chrono::Utc::now().timestamp() + 34 * 24 * 3600);
}

#[tokio::test]
async fn a_rotation_between_two_runs_records_no_failed_check() {
    use ops_shared::postgres::{quote_ident, quote_literal};
    let f = fixture().await;
    let pg = &ops_testkit::shared().pg;
    let mut creds = pg.superuser("app");
    creds.username = unique("health_rotated").replace('-', "_");
    creds.password = uuid::Uuid::new_v4().simple().to_string().into();
    pg.psql(
        "app",
        &format!("CREATE ROLE {} LOGIN PASSWORD {}", quote_ident(&creds.username), quote_literal(&creds.password)),
    )
    .expect("role");
    let rotation = ops_testkit::rotation::RotationUnderTest::new(
        "health-db",
        &json!(creds),
        "postgres-single-user",
        Duration::from_secs(5),
        secret_rotation::RotationConfig::default(),
    )
    .await;
    let run = f.run(vec![target("database", json!({"kind": "postgres", "secret_arn": rotation.secret}))]);
    assert_eq!(run.run().await.expect("first run").up, 1);

    // The rotation changes the password at once; the cache still holds the old one.
    rotation.rotate(0).await;
    let second = run.run().await.expect("second run");
    assert_eq!(second.up, 1, "no failed check after the rotation: {:?}", second.results);
    assert!(second.alerts.is_empty());
    assert!(f.alerts.receive(0, Duration::from_millis(300)).await.is_empty(), "no alert");
}

/// A target whose `timeout_ms` is longer than the invocation has left never takes the run past
/// the function's deadline: its check ends in time for the run to record it, saying why.
#[tokio::test]
async fn a_timeout_longer_than_the_invocation_has_left_is_cut_to_the_deadline() {
    use ops_shared::lambda::Handler;
    let f = fixture().await;
    let web = Targets::start(10).await;
    let run = f.run(vec![http(&unique("stuck"), &web.url("/hang"), 60_000)]);
    let mut ctx = lambda_runtime::Context::default();
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    ctx.deadline = now_ms + 8_000;
    let started = Instant::now();
    let event = serde_json::from_value(json!({})).expect("event");
    let outcome = tokio::time::timeout(Duration::from_secs(20), run.handle(event, ctx)).await;
    let outcome = outcome.expect("the run ended, not Lambda").expect("the run recorded its checks");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let summary = serde_json::to_value(&outcome).expect("json");
    let detail = summary.pointer("/results/0/detail").and_then(|d| d.as_str()).unwrap_or_default().to_owned();
    assert_eq!(summary.pointer("/results/0/class"), Some(&json!("hanging")), "{summary}");
    assert!(detail.contains("the time the run had left"), "{detail}");
}
