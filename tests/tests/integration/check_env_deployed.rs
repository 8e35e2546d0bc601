//! `opsctl check-env` against the stack as deployed on the local stack: functions in moto's
//! Lambda with the environment template.yaml gives them, the ops and pager topics, the Sentry
//! and Google stand-ins.

use std::time::Duration;

use aws_sdk_secretsmanager::types::Tag;
use ops_shared::Env;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_testkit::aws::provision_runbook_secrets;
use ops_testkit::google::Google;
use ops_testkit::sentry_api::SentryApi;
use ops_testkit::sentry_events::SentryEvents;
use opsctl::check_env::stack::{self, Checked, Sources};
use opsctl::deployed::State;
use opsctl::outcome::Verdict;

use super::preflight::{DEFAULT_TARGETS, DSN, Deploy, FULL_TARGETS, deploy, supabase_backups};

fn shell() -> Env {
    Env::from_pairs([("AWS_REGION", "us-east-1"), ("SENTRY_DSN", DSN), ("SENTRY_ENVIRONMENT", "production")])
}

async fn check_env(d: &Deploy) -> Checked {
    let store = SecretsManagerVersions::new(d.aws.secrets.clone());
    let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
    stack::run(&Sources { sdk: &d.aws.sdk, store: &store, http: &http, stack: &d.stack }, &shell()).await
}

/// The ops topic with its e-mail subscription, as the template always makes it, and with
/// `pager` the pager's subscriptions and topic.
async fn topics(d: &Deploy, pager: bool) {
    let sns = aws_sdk_sns::Client::new(&d.aws.sdk);
    let ops = sns.create_topic().name(format!("{}-ops-notifications", d.prefix)).send().await.expect("ops topic");
    let ops = ops.topic_arn.expect("ops topic arn");
    let subscribe = |topic: String, endpoint: &'static str| {
        let request = sns.subscribe().topic_arn(topic).protocol("email").endpoint(endpoint);
        async move { request.send().await.expect("subscribe") }
    };
    subscribe(ops.clone(), "ops@cineview.ai").await;
    if pager {
        subscribe(ops, "pages@cineview.pagerduty.com").await;
        let topic = sns.create_topic().name(format!("{}-ops-pager", d.prefix)).send().await.expect("pager topic");
        subscribe(topic.topic_arn.expect("pager topic arn"), "pages@cineview.pagerduty.com").await;
    }
}

fn failed<'c>(checked: &'c Checked, item: &str) -> (&'c str, &'c str) {
    let found = checked.deployed.iter().find(|i| i.item.contains(item));
    match found.map(|i| &i.state) {
        Some(State::Failed { reason, fix }) => (reason, fix),
        other => panic!("{item} is {other:?}, not failed:\n{}", checked.render()),
    }
}

/// The template's defaults: placeholder secrets with rotation off, Sentry off, only the app
/// probed, Supabase's backup check off, no pager.
#[tokio::test]
async fn check_env_on_a_stack_deployed_with_the_defaults_names_each_gap_and_its_fix() {
    let d = deploy("checkenv-defaults").await;
    let secrets = ["supabase-service-role", "ai-engine-api", "gemini-api", "database", "sentry-webhook", "sentry-api"];
    for name in secrets.into_iter().chain(["supabase-access-token", "health-database", "staging-database"]) {
        let placeholder = uuid::Uuid::new_v4().simple().to_string();
        d.aws
            .secrets
            .create_secret()
            .name(d.stack.secret(name))
            .secret_string(placeholder)
            .send()
            .await
            .expect("secret");
    }
    // The template creates the read secret without a value: the operator puts the settings in.
    d.aws.secrets.create_secret().name(d.stack.secret("sentry-read")).send().await.expect("sentry-read");
    d.functions("", &d.settings(DEFAULT_TARGETS, "", "https://api.supabase.com")).await;
    topics(&d, false).await;

    let checked = check_env(&d).await;
    let text = checked.render();
    assert_eq!(checked.verdict(), Verdict::Problem, "{text}");
    assert_ne!(checked.verdict().code(), 0);
    for secret in ["ai-engine-admin-token", "google-service-account", "health-database", "staging-database"] {
        let name = d.stack.secret(secret);
        assert!(checked.secrets.problems.iter().any(|p| p.starts_with(&format!("{name}:"))), "{name}:\n{text}");
    }
    assert_eq!(checked.secrets.problems.len(), checked.secrets.fixes.len(), "{text}");
    assert!(text.contains("fix: sam deploy --parameter-overrides NamePrefix=") && text.contains("EnableRotation=true"));
    assert!(text.contains("fix: aws secretsmanager put-secret-value --secret-id"), "{text}");
    let expect = [
        ("SENTRY_DSN set in every function", "SentryDsn="),
        ("probes the AI engine", "HealthTargets="),
        ("probes the database", "HealthTargets="),
        ("checks Supabase's own backups", "SupabaseProjectRef="),
        ("Sentry alert rules", "opsctl sentry apply"),
        ("Sentry's numbers readable", "put-secret-value --secret-id"),
        ("pager subscription confirmed", "PagerEndpoint="),
    ];
    for (item, fix) in expect {
        let (_, given) = failed(&checked, item);
        assert!(given.contains(fix), "{item}: {given}");
    }
    let ok = |item: &str| checked.deployed.iter().any(|i| i.item.contains(item) && i.state == State::Ok);
    assert!(ok("probes the app") && ok("ops e-mail (and pager) subscriptions confirmed"), "{text}");
}

/// Every secret well-formed and rotating, the functions with a DSN, every health target and
/// Supabase's check, the rules applied, the pager subscribed: nothing to report.
#[tokio::test]
async fn check_env_on_a_complete_stack_reports_nothing_and_exits_0() {
    let d = deploy("checkenv-complete").await;
    let db = serde_json::to_string(&ops_testkit::shared().pg.superuser("app")).expect("json");
    provision_runbook_secrets(&d.aws.secrets, &d.prefix, &db).await.expect("secrets");
    let (google, key) = Google::start("cineview-prod").await;
    google.point_runbook_secrets(&d.aws.secrets, &d.prefix, &key).await.expect("point at the stand-in");
    let api = SentryApi::start("cineview", "cineview-web").await;
    let numbers = SentryEvents::start("cineview", "cineview-web").await;
    let settings = [
        ("sentry-api", api.secret_json()),
        ("sentry-read", numbers.secret_json("production")),
        ("health-database", db.clone()),
        ("staging-database", db),
    ];
    for (name, value) in settings {
        let tag = Tag::builder().key("purpose").value("test").build();
        d.aws
            .secrets
            .create_secret()
            .name(d.stack.secret(name))
            .secret_string(value)
            .tags(tag)
            .send()
            .await
            .expect(name);
    }
    let store = SecretsManagerVersions::new(d.aws.secrets.clone());
    let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
    opsctl::sentry_rules::run(&store, &http, &d.prefix, false).await.expect("sentry apply");
    let supabase = supabase_backups(chrono::Duration::hours(5)).await;
    d.functions(DSN, &d.settings(FULL_TARGETS, "abcdefghijklmnop", &supabase)).await;
    topics(&d, true).await;

    let checked = check_env(&d).await;
    let text = checked.render();
    assert_eq!(checked.verdict(), Verdict::Ok, "{text}");
    assert_eq!(checked.verdict().code(), 0);
    assert_eq!(checked.secrets.rows.len(), 12, "every secret of the stack:\n{text}");
    assert!(checked.deployed.iter().all(|i| i.state == State::Ok), "{text}");
    assert!(!text.contains("PROBLEM"), "{text}");
}
