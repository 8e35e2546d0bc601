//! `opsctl check-env` against moto.

use ops_shared::Env;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_testkit::aws::{Aws, provision_runbook_secrets, unique};
use ops_testkit::google::Google;
use opsctl::check_env::{Report, check, runbook_requirements};

fn good_env(dsn: &str) -> Env {
    Env::from_pairs([("AWS_REGION", "us-east-1"), ("SENTRY_DSN", dsn), ("SENTRY_ENVIRONMENT", "production")])
}

const DSN: &str = "https://0123456789abcdef@o1.ingest.sentry.io/42";

/// The runbook's secrets under a fresh prefix, the Gemini one pointing at a Google stand-in.
async fn provisioned(label: &str) -> (Aws, String, Google, ops_testkit::google::GoogleKey) {
    let aws = Aws::new(ops_testkit::shared()).await;
    let prefix = unique(label);
    let db = serde_json::to_string(&ops_testkit::shared().pg.superuser("app")).expect("json");
    provision_runbook_secrets(&aws.secrets, &prefix, &db).await.expect("provision");
    let (google, key) = Google::start("cineview-prod").await;
    google.point_runbook_secrets(&aws.secrets, &prefix, &key).await.expect("point at the stand-in");
    (aws, prefix, google, key)
}

async fn check_stack(aws: &Aws, env: &Env, prefix: &str) -> Report {
    let http = ops_shared::http::client(std::time::Duration::from_secs(5)).expect("http");
    check(&SecretsManagerVersions::new(aws.secrets.clone()), &http, env, &runbook_requirements(prefix)).await
}

#[tokio::test]
async fn check_env_passes_on_a_correct_stack_and_prints_a_table() {
    let (aws, prefix, _google, _key) = provisioned("good").await;
    let report = check_stack(&aws, &good_env(DSN), &prefix).await;
    assert!(report.is_ok(), "{:?}", report.problems);
    let table = report.render();
    assert_eq!(report.rows.len(), 5);
    assert!(table.contains(&format!("{prefix}-supabase-service-role")) && table.contains("every 90 days"), "{table}");
    assert!(table.contains("every 180 days (google-api-key)"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(5));
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn check_env_lists_each_problem_of_a_broken_stack() {
    let (aws, prefix, _google, _key) = provisioned("broken").await;
    let put = |name: String, value: &'static str| {
        let secrets = aws.secrets.clone();
        async move { secrets.put_secret_value().secret_id(name).secret_string(value).send().await.expect("put") }
    };
    // A legacy JWT service-role key, a malformed database secret, an empty webhook secret,
    // rotation turned off on one API key, a Gemini key_id that is not a resource name and a
    // missing secret.
    put(format!("{prefix}-supabase-service-role"), r#"{"api_key":"eyJhbGciOiJIUzI1NiJ9.legacy"}"#).await;
    put(format!("{prefix}-database"), r#"{"host":"db","password":"hunter2-is-not-shown"#).await;
    put(format!("{prefix}-sentry-webhook"), "  ").await;
    put(
        format!("{prefix}-gemini-api"),
        r#"{"api_key":"AIzaLocal","key_id":"f81d4fae-7dec","project":"p","service_account_secret_arn":"sa"}"#,
    )
    .await;
    aws.secrets.cancel_rotate_secret().secret_id(format!("{prefix}-gemini-api")).send().await.expect("cancel rotation");
    aws.secrets
        .delete_secret()
        .secret_id(format!("{prefix}-ai-engine-api"))
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete");

    let env = Env::from_pairs([("AWS_REGION", "us-east-1"), ("SENTRY_DSN", "")]);
    let report = check_stack(&aws, &env, &prefix).await;
    let text = report.render();
    let expect = [
        "SENTRY_DSN is not set",
        "SENTRY_ENVIRONMENT is not set",
        "-supabase-service-role: holds a legacy JWT key",
        "-database: not database JSON",
        "-sentry-webhook: the value is empty",
        "-gemini-api: rotation is not enabled",
        "-gemini-api: key_id is not the key's resource name",
        "-ai-engine-api: cannot be described",
    ];
    for problem in expect {
        assert!(text.contains(problem), "missing {problem:?} in:\n{text}");
    }
    assert_eq!(report.problems.len(), expect.len(), "one line per problem:\n{text}");
    assert!(!text.contains("hunter2"), "values never appear");
}

#[tokio::test]
async fn check_env_refuses_a_cadence_longer_than_the_runbook_allows() {
    let (aws, prefix, _google, _key) = provisioned("slow").await;
    let secret = format!("{prefix}-supabase-service-role");
    let token = ops_testkit::aws::start_rotation(&aws.secrets, &secret, 365).await.expect("rotation");
    aws.end_rotation(&secret, &token).await.expect("end");
    let report = check_stack(&aws, &good_env(DSN), &prefix).await;
    assert_eq!(report.problems, vec![format!("{secret}: rotates every 365 days, the runbook asks for at most 90")]);
}

#[tokio::test]
async fn check_env_asks_google_which_key_the_gemini_secret_holds() {
    let (aws, prefix, google, key) = provisioned("gemini").await;
    let gemini = format!("{prefix}-gemini-api");
    let repoint = |key: ops_testkit::google::GoogleKey, key_id: String| {
        let (google, secrets, prefix) = (google.clone(), aws.secrets.clone(), prefix.clone());
        async move {
            google
                .point_runbook_secrets(&secrets, &prefix, &ops_testkit::google::GoogleKey { name: key_id, ..key })
                .await
                .expect("repoint")
        }
    };

    // key_id names another key of the project than the one api_key is.
    let other = google.add_key("other-key", true);
    repoint(key.clone(), other.name.clone()).await;
    let report = check_stack(&aws, &good_env(DSN), &prefix).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].starts_with(&format!("{gemini}: api_key and key_id are different keys")));
    assert!(!report.render().contains(&key.key_string), "the key string is never shown");

    // A standard key: named as such, with what to do.
    let standard = google.add_key("made-in-2025", false);
    repoint(standard.clone(), standard.name.clone()).await;
    let report = check_stack(&aws, &good_env(DSN), &prefix).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("standard") && report.problems[0].contains("rotate-secret --secret-id"));

    // The right pair: no problem.
    repoint(key.clone(), key.name.clone()).await;
    assert!(check_stack(&aws, &good_env(DSN), &prefix).await.is_ok());
}

async fn put_database(aws: &Aws, prefix: &str, creds: &ops_shared::postgres::DbCredentials) {
    let value = serde_json::to_string(creds).expect("json");
    let put = aws.secrets.put_secret_value().secret_id(format!("{prefix}-database")).secret_string(value);
    put.send().await.expect("put the database secret");
}

/// A database secret written before the functions verified the server by default (no
/// `sslmode`, no `sslrootcert`) is flagged before a deploy makes its backups fail, with the fix.
#[tokio::test]
async fn check_env_flags_a_database_secret_that_cannot_verify_its_server() {
    let (aws, prefix, _google, _key) = provisioned("tls").await;
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.sslrootcert = None;
    put_database(&aws, &prefix, &creds).await;
    let report = check_stack(&aws, &good_env(DSN), &prefix).await;
    let text = report.render();
    assert_eq!(report.problems.len(), 1, "{text}");
    assert!(text.contains("-database: names neither `sslmode` nor `sslrootcert`"), "{text}");
    assert!(text.contains("download the certificate"), "{text}");

    creds.sslmode = Some(ops_shared::postgres::SslMode::Require);
    put_database(&aws, &prefix, &creds).await;
    assert!(check_stack(&aws, &good_env(DSN), &prefix).await.is_ok(), "an explicit sslmode is the operator's choice");
}
