//! `opsctl preflight` against the local stack: functions created in moto's Lambda with the
//! environment the template gives them, the backup bucket with and without the template's
//! settings, the health state, a backup and its restore report, the Sentry and Supabase
//! stand-ins.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use ops_shared::health::{STATE_SK, TargetState, target_key};
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::state::{DynamoState, StateStore};
use ops_testkit::aws::{Aws, create_state_table, provision_runbook_secrets, unique};
use ops_testkit::google::Google;
use ops_testkit::names::ACCOUNT_ID;
use ops_testkit::sentry_api::SentryApi;
use opsctl::outcome::Verdict;
use opsctl::preflight::{self, FUNCTIONS, Report, Sources, State};
use opsctl::stack::Stack;
use serde_json::json;

pub(crate) const DSN: &str = "https://0123456789abcdef@o1.ingest.sentry.io/42";
/// template.yaml's `HealthTargets` default.
pub(crate) const DEFAULT_TARGETS: &str =
    r#"[{"name": "app", "kind": "http", "url": "https://cineview.ai/api/health"}]"#;
pub(crate) const FULL_TARGETS: &str = r#"[{"name": "app", "kind": "http", "url": "https://cineview.ai/api/health"},
    {"name": "ai-engine", "kind": "http", "url": "https://ai.cineview.ai/health"},
    {"name": "database", "kind": "postgres", "secret_arn": "cineview-health-database"}]"#;

/// A zip holding one stored file, `bootstrap`: all moto's CreateFunction needs.
fn bootstrap_zip() -> Vec<u8> {
    let (name, body) = (b"bootstrap", b"#!/bin/sh\nexit 0\n");
    let crc = crc32fast::hash(body);
    let header = |signature: u32, central: bool| {
        let mut h = signature.to_le_bytes().to_vec();
        if central {
            h.extend(20u16.to_le_bytes());
        }
        for field in [20u16, 0, 0, 0, 0] {
            h.extend(field.to_le_bytes());
        }
        h.extend(crc.to_le_bytes());
        h.extend((body.len() as u32).to_le_bytes());
        h.extend((body.len() as u32).to_le_bytes());
        h.extend((name.len() as u16).to_le_bytes());
        h.extend(0u16.to_le_bytes());
        h
    };
    let mut zip = header(0x0403_4b50, false);
    zip.extend(name);
    zip.extend(body);
    let central_at = zip.len() as u32;
    let mut central = header(0x0201_4b50, true);
    central.extend([0u8; 12]); // comment length, disk, internal and external attributes
    central.extend(0u32.to_le_bytes()); // offset of the local header
    central.extend(name);
    let central_len = central.len() as u32;
    zip.extend(central);
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0u8; 4]);
    zip.extend(1u16.to_le_bytes());
    zip.extend(1u16.to_le_bytes());
    zip.extend(central_len.to_le_bytes());
    zip.extend(central_at.to_le_bytes());
    zip.extend(0u16.to_le_bytes());
    zip
}

pub(crate) struct Deploy {
    pub(crate) aws: Aws,
    pub(crate) prefix: String,
    pub(crate) stack: Stack,
}

pub(crate) async fn deploy(label: &str) -> Deploy {
    let aws = Aws::new(ops_testkit::shared()).await;
    let prefix = unique(label);
    let stack = Stack::discover(&aws.sdk, &prefix, None).await.expect("the stack");
    aws.s3.create_bucket().bucket(stack.bucket()).send().await.expect("bucket");
    create_state_table(&aws.dynamodb, &stack.names().state_table()).await.expect("table");
    Deploy { aws, prefix, stack }
}

impl Deploy {
    async fn preflight(&self) -> Report {
        let store = SecretsManagerVersions::new(self.aws.secrets.clone());
        let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
        let sources = Sources { sdk: &self.aws.sdk, store: &store, http: &http, stack: &self.stack, now: Utc::now() };
        preflight::run(&sources).await
    }

    /// The six functions, each with the template's common settings and `extra` for it.
    pub(crate) async fn functions(&self, dsn: &str, extra: &HashMap<&str, Vec<(&str, String)>>) {
        let iam = aws_sdk_iam::Client::new(&self.aws.sdk);
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]});
        let role = iam
            .create_role()
            .role_name(format!("{}-functions", self.prefix))
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("role");
        let role_arn = role.role.map(|r| r.arn).expect("role arn");
        let lambda = aws_sdk_lambda::Client::new(&self.aws.sdk);
        for function in FUNCTIONS {
            let mut vars = HashMap::from([
                ("SENTRY_DSN".to_owned(), dsn.to_owned()),
                ("SENTRY_ENVIRONMENT".to_owned(), "production".to_owned()),
                ("STATE_TABLE".to_owned(), self.stack.names().state_table()),
            ]);
            for (name, value) in extra.get(function).into_iter().flatten() {
                vars.insert((*name).to_owned(), value.clone());
            }
            let environment = aws_sdk_lambda::types::Environment::builder().set_variables(Some(vars)).build();
            let code = aws_sdk_lambda::types::FunctionCode::builder().zip_file(bootstrap_zip().into()).build();
            lambda
                .create_function()
                .function_name(self.stack.function(function))
                .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                .handler("bootstrap")
                .role(&role_arn)
                .code(code)
                .environment(environment)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create {function}: {e:?}"));
        }
    }

    /// The function settings template.yaml gives with `parameters`' values.
    pub(crate) fn settings(
        &self,
        targets: &str,
        project_ref: &str,
        api_url: &str,
    ) -> HashMap<&'static str, Vec<(&str, String)>> {
        let token = self.stack.secret("supabase-access-token");
        let backup = vec![
            ("SUPABASE_PROJECT_REF", project_ref.to_owned()),
            ("SUPABASE_TOKEN_SECRET_ARN", token),
            ("SUPABASE_API_URL", api_url.to_owned()),
            ("RPO_HOURS", "24".to_owned()),
        ];
        let webhook = vec![("SENTRY_WEBHOOK_SECRET_ARN", self.stack.secret("sentry-webhook"))];
        HashMap::from([
            ("scheduled-backup", backup),
            (
                "health-checker",
                vec![
                    ("HEALTH_TARGETS", targets.to_owned()),
                    ("SENTRY_READ_SECRET_ARN", self.stack.secret("sentry-read")),
                ],
            ),
            ("alert-forwarder", webhook.clone()),
            ("sentry-webhook", webhook),
        ])
    }

    /// The bucket's lifecycle, public access block, encryption and policy, as template.yaml's
    /// BackupBucket and BackupBucketPolicy set them.
    async fn bucket_as_the_template_sets_it(&self) {
        use aws_sdk_s3::types::*;
        let bucket = self.stack.bucket();
        let rule = |id: &str, prefix: &str, days: i32, noncurrent: i32| {
            LifecycleRule::builder()
                .id(id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .expiration(LifecycleExpiration::builder().days(days).build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder().noncurrent_days(noncurrent).build(),
                )
                .build()
                .expect("rule")
        };
        let lifecycle = BucketLifecycleConfiguration::builder()
            .rules(rule("keep-backups-30-days", "backups/", 30, 30))
            .rules(rule("keep-reports-400-days", "reports/", 400, 1))
            .build()
            .expect("lifecycle");
        let s3 = &self.aws.s3;
        s3.put_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .lifecycle_configuration(lifecycle)
            .send()
            .await
            .expect("lifecycle");
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .block_public_policy(true)
            .ignore_public_acls(true)
            .restrict_public_buckets(true)
            .build();
        s3.put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(block)
            .send()
            .await
            .expect("block");
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(format!("arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/backup"))
            .build()
            .expect("default");
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .bucket_key_enabled(true)
            .build();
        let encryption = ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("encryption");
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(encryption)
            .send()
            .await
            .expect("encryption");
        let arn = format!("arn:aws:s3:::{bucket}");
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "TlsOnly", "Effect": "Deny",
            "Principal": "*", "Action": "s3:*", "Resource": [arn, format!("{arn}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        s3.put_bucket_policy().bucket(&bucket).policy(policy.to_string()).send().await.expect("policy");
    }

    /// A backup's manifest and the passed restore test of it.
    async fn backup_and_passed_restore_test(&self) {
        let finished = Utc::now() - chrono::Duration::hours(3);
        let manifest = json!({"version": 1, "backup_id": "b1", "label": "baseline", "database": "app",
            "key": "backups/app/x.dump", "format": "custom", "server_version": "15.8", "pg_dump_version": "15.8",
            "started_at": finished - chrono::Duration::minutes(2), "finished_at": finished, "size_bytes": 12_000_000,
            "sha256": "00", "snapshot": "s", "part_size_bytes": 16, "parts": 1,
            "tables": [{"schema": "public", "table": "films", "rows": 1200}]});
        let report = json!({"version": 1, "result": "passed", "backup_key": "backups/app/x.dump", "backup_id": "b1",
            "database": "app", "backup_started_at": finished, "verified_at": Utc::now(),
            "size_bytes": 12_000_000, "tables": 1, "rows": 1200, "download_ms": 1, "restore_ms": 1, "checks_ms": 1,
            "rto_ms": 240_000, "rto_target_ms": 1_800_000, "rto_met": true, "backup_age_hours": 3.0,
            "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null, "scratch_dropped": true,
            "checks": [], "failures": [], "report_key": "reports/restore-tests/r.json"});
        for (key, body) in [("backups/app/x.manifest.json", manifest), ("reports/restore-tests/r.json", report)] {
            let put = self
                .aws
                .s3
                .put_object()
                .bucket(self.stack.bucket())
                .key(key)
                .body(body.to_string().into_bytes().into());
            put.send().await.expect("put");
        }
    }

    async fn health_up(&self, targets: &[&str]) {
        let state = DynamoState::new(self.aws.dynamodb.clone(), self.stack.names().state_table());
        let up =
            serde_json::to_value(TargetState { consecutive_successes: 5, ..TargetState::default() }).expect("json");
        for target in targets {
            state.put(&target_key(target), STATE_SK, &up, None, i64::MAX).await.expect("state");
        }
    }
}

/// Supabase's `GET /v1/projects/{ref}/database/backups`, answering one backup `age` old.
pub(crate) async fn supabase_backups(age: chrono::Duration) -> String {
    let at = (Utc::now() - age).format("%Y-%m-%d %H:%M:%S%.3f+00").to_string();
    let body = json!({"region": "us-east-1", "walg_enabled": true, "pitr_enabled": false,
        "backups": [{"is_physical_backup": true, "status": "COMPLETED", "inserted_at": at}]});
    let app = axum::Router::new().route(
        "/v1/projects/{project}/database/backups",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn state<'r>(report: &'r Report, item: &str) -> &'r State {
    let found = report.items.iter().find(|i| i.item.contains(item));
    &found.unwrap_or_else(|| panic!("no item {item:?} in:\n{}", report.render())).state
}

/// The secrets as the template creates them (a random placeholder each, rotation off), the
/// functions with the template's default parameters, a bucket without the template's settings,
/// no backup, no health check recorded, no Sentry settings.
#[tokio::test]
async fn a_fresh_stack_names_each_failing_item_with_its_fix_and_exits_1() {
    let d = deploy("preflight-fresh").await;
    let secrets = ["supabase-service-role", "ai-engine-api", "gemini-api", "database", "sentry-webhook", "sentry-api"];
    for name in secrets.into_iter().chain(["supabase-access-token", "health-database", "staging-database"]) {
        let placeholder = uuid::Uuid::new_v4().simple().to_string();
        let create = d.aws.secrets.create_secret().name(d.stack.secret(name)).secret_string(placeholder);
        create.send().await.expect("secret");
    }
    d.functions("", &d.settings(DEFAULT_TARGETS, "", "https://api.supabase.com")).await;

    let report = d.preflight().await;
    let text = report.render();
    assert_eq!(report.verdict(), Verdict::Problem, "{text}");
    let expect = [
        ("-database created", "put-secret-value"),
        ("-gemini-api created", "put-secret-value"),
        ("SENTRY_DSN set", "SentryDsn="),
        ("alert rules", "opsctl sentry apply"),
        ("AI engine monitored", "HealthTargets="),
        ("Supabase's automated backups", "SupabaseProjectRef="),
        ("backups kept 30 days", "put-bucket-lifecycle-configuration"),
        ("a baseline backup", "opsctl backup"),
        ("restore-tested", "opsctl backup"),
        ("health check passing: app", "opsctl status"),
        ("health check passing: AI engine", "HealthTargets="),
        ("health check passing: database", "HealthTargets="),
        ("blocks public access", "put-public-access-block"),
        ("encrypted with KMS", "put-bucket-encryption"),
        ("refuses requests without TLS", "put-bucket-policy"),
    ];
    for (item, fix) in expect {
        match state(&report, item) {
            State::Failed { fix: given, .. } => assert!(given.contains(fix), "{item}: {given}"),
            other => panic!("{item} is {other:?}, not failed:\n{text}"),
        }
    }
    assert!(text.contains("fix: sam deploy --parameter-overrides NamePrefix="), "{text}");
    assert!(!report.items.iter().any(|i| matches!(i.state, State::CouldNotCheck { .. })), "{text}");
    let not_checkable = report.items.iter().filter(|i| matches!(i.state, State::NotCheckable { .. })).count();
    assert_eq!(not_checkable, 4, "CI/CD, load testing, security audit, documentation:\n{text}");
    let json = serde_json::to_value(&report).expect("json");
    let failed = json["items"].as_array().map(|items| items.iter().filter(|i| i["state"] == "failed").count());
    assert!(failed.is_some_and(|n| n >= expect.len()), "{json}");
}

/// Functions deployed with a DSN and every health target, the rules applied, a backup and
/// its passed restore test, the health state up, the bucket as the template sets it and
/// Supabase with a recent backup.
#[tokio::test]
async fn a_complete_stack_is_ok_on_every_checkable_item_and_exits_0() {
    let d = deploy("preflight-ok").await;
    let db = serde_json::to_string(&ops_testkit::shared().pg.superuser("app")).expect("json");
    provision_runbook_secrets(&d.aws.secrets, &d.prefix, &db).await.expect("secrets");
    let (google, key) = Google::start("cineview-prod").await;
    google.point_runbook_secrets(&d.aws.secrets, &d.prefix, &key).await.expect("point at the stand-in");
    let api = SentryApi::start("cineview", "cineview-web").await;
    let create = d.aws.secrets.create_secret().name(d.stack.secret("sentry-api")).secret_string(api.secret_json());
    create.send().await.expect("sentry-api");
    let store = SecretsManagerVersions::new(d.aws.secrets.clone());
    let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
    opsctl::sentry_rules::run(&store, &http, &d.prefix, false).await.expect("sentry apply");
    let supabase = supabase_backups(chrono::Duration::hours(5)).await;
    d.functions(DSN, &d.settings(FULL_TARGETS, "abcdefghijklmnop", &supabase)).await;
    d.bucket_as_the_template_sets_it().await;
    d.backup_and_passed_restore_test().await;
    d.health_up(&["app", "ai-engine", "database"]).await;

    let report = d.preflight().await;
    let text = report.render();
    assert_eq!(report.verdict(), Verdict::Ok, "{text}");
    assert_eq!(report.verdict().code(), 0);
    let ok = report.items.iter().filter(|i| i.state == State::Ok).count();
    assert_eq!(ok + 4, report.items.len(), "all but the four not checkable here:\n{text}");
    assert!(text.contains("not checkable here  CI/CD pipeline green"), "{text}");
}
