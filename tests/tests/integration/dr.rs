//! The disaster-recovery commands against the local stack: writes stopped and allowed through
//! the stored credentials, backups listed with their restore tests, and the assessment of the
//! newest backup against the live database, each also as JSON.

use std::time::Duration;

use chrono::Utc;
use ops_shared::SnsAlertPublisher;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::postgres::DbCredentials;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_testkit::aws::{Aws, unique};
use ops_testkit::names;
use ops_testkit::pg::Seed;
use opsctl::dr::{self, DrError, FreezeRequest};
use serde_json::{Value, json};

/// A seeded database of its own, and its secret `<prefix>-database`.
async fn production(label: &str) -> (Aws, String, DbCredentials, SecretsManagerVersions) {
    let aws = Aws::new(ops_testkit::shared()).await;
    let prefix = unique(label);
    let creds = ops_testkit::shared().pg.create_seeded_database(&prefix.replace('-', "_"), Seed::SMALL).expect("db");
    let value = serde_json::to_string(&creds).expect("json");
    aws.secrets.create_secret().name(format!("{prefix}-database")).secret_string(value).send().await.expect("secret");
    let store = SecretsManagerVersions::new(aws.secrets.clone());
    (aws, prefix, creds, store)
}

async fn insert(creds: &DbCredentials) -> Result<u64, String> {
    let client = creds.connect(Duration::from_secs(5)).await.map_err(|e| e.to_string())?;
    client
        .execute("INSERT INTO public.audit_log (action) VALUES ('dr drill')", &[])
        .await
        .map_err(|e| ops_shared::postgres::describe(&e))
}

async fn audit_log_acl(creds: &DbCredentials) -> String {
    let client = creds.connect(Duration::from_secs(5)).await.expect("connect");
    let sql = "SELECT coalesce(relacl::text, '') FROM pg_class WHERE oid = 'public.audit_log'::regclass";
    client.query_one(sql, &[]).await.expect("acl").get(0)
}

#[tokio::test]
async fn freeze_stops_writes_and_ends_open_sessions_and_thaw_allows_them_again() {
    let (aws, prefix, creds, store) = production("dr-freeze").await;
    let secret = format!("{prefix}-database");
    let topic = aws.create_topic(&format!("{prefix}-ops-alerts")).await;
    let inbox = aws.subscribe_queue(&topic).await;
    let alerts = SnsAlertPublisher::new(aws.sns.clone(), topic);
    let records = S3Objects::new(aws.s3.clone(), names::backup_bucket());
    let arn = dr::secret_arn(&store, &secret).await.expect("arn");
    let request = FreezeRequest {
        secret_arn: arn.clone(),
        who: "OS user alice".into(),
        reason: "incident 7".into(),
        thaw_command: format!("opsctl dr thaw --prefix {prefix}"),
    };
    insert(&creds).await.expect("writes work before the freeze");
    // Every role may write the audit log (the owner is the superuser the test connects as).
    let client = creds.connect(Duration::from_secs(5)).await.expect("connect");
    client.batch_execute("GRANT INSERT ON public.audit_log TO PUBLIC").await.expect("grant");
    let acl_before = audit_log_acl(&creds).await;
    let open = creds.connect(Duration::from_secs(5)).await.expect("an open session");

    let (creds_read, client) = dr::connect(&store, &secret).await.expect("connect");
    let frozen = dr::freeze(&client, &creds_read, &records, &alerts, &request).await.expect("freeze");
    assert!(frozen.read_only && frozen.changed && frozen.sessions_ended >= 1, "{frozen:?}");
    assert_eq!((frozen.privileges, frozen.alert.as_str()), (1, "sent"), "{frozen:?}");
    assert!(open.simple_query("SELECT 1").await.is_err(), "the open session was ended");
    let refused = insert(&creds).await.expect_err("no writes while frozen");
    assert!(refused.contains("read-only transaction") && refused.contains("25006"), "{refused}");
    assert!(!audit_log_acl(&creds).await.contains("=a/"), "PUBLIC may not insert while frozen");
    let notes = inbox.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let alert = notes[0].alert();
    assert!(alert.summary.contains("OS user alice") && alert.summary.contains("incident 7"), "{}", alert.summary);
    assert!(alert.summary.contains(&request.thaw_command), "{}", alert.summary);

    // Each opsctl run is a new session, read-only itself once the database is frozen.
    let (creds_read, client) = dr::connect(&store, &secret).await.expect("connect again");
    let again = dr::freeze(&client, &creds_read, &records, &alerts, &request).await.expect("freeze again");
    assert!(again.read_only && !again.changed, "idempotent: {again:?}");
    let json: Value = serde_json::to_value(&again).expect("json");
    assert_eq!((json["read_only"].as_bool(), json["changed"].as_bool()), (Some(true), Some(false)));
    assert!(again.render().contains("already so"), "{}", again.render());

    let (creds_read, client) = dr::connect(&store, &secret).await.expect("connect again");
    let thawed = dr::thaw(&client, &creds_read, &records, &alerts, &arn, "OS user alice").await.expect("thaw");
    assert!(!thawed.read_only && thawed.changed && thawed.privileges == 1, "{thawed:?}");
    insert(&creds).await.expect("writes work again");
    assert_eq!(audit_log_acl(&creds).await, acl_before);
    let again = dr::thaw(&client, &creds_read, &records, &alerts, &arn, "OS user alice").await.expect("thaw again");
    assert!(!again.changed, "idempotent: {again:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_secret() {
    let aws = Aws::new(ops_testkit::shared()).await;
    let secret = unique("dr-unreachable");
    let mut creds = ops_testkit::shared().pg.superuser("postgres");
    creds.port = 9;
    aws.secrets
        .create_secret()
        .name(&secret)
        .secret_string(serde_json::to_string(&creds).expect("json"))
        .send()
        .await
        .expect("secret");
    let store = SecretsManagerVersions::new(aws.secrets.clone());
    let err = dr::connect(&store, &secret).await.map(drop).expect_err("unreachable");
    assert!(matches!(err, DrError::Database { .. }), "{err}");
    assert!(err.to_string().contains(&secret), "{err}");
    let missing = dr::connect(&store, "no-such-secret").await.map(drop).expect_err("missing");
    assert!(matches!(missing, DrError::Secret { .. }) && missing.to_string().contains("no-such-secret"), "{missing}");
}

async fn put(objects: &S3Objects, key: &str, value: Value) {
    objects.put(key, value.to_string().into_bytes(), "application/json").await.expect("put");
}

fn manifest(key: &str, hours_ago: i64, tables: Value) -> Value {
    let finished = Utc::now() - chrono::Duration::hours(hours_ago);
    json!({"version": 1, "backup_id": key, "label": null, "database": "app", "key": format!("{key}.dump"),
        "format": "custom", "server_version": "15", "pg_dump_version": "15", "started_at": finished,
        "finished_at": finished, "size_bytes": 2_000_000, "sha256": "00", "snapshot": "s", "part_size_bytes": 1,
        "parts": 1, "tables": tables})
}

/// A manifest of `key` that records its source and label.
fn manifest_of(key: &str, hours_ago: i64, label: Option<&str>, source: &DbCredentials) -> Value {
    let mut manifest = manifest(key, hours_ago, json!([]));
    manifest["label"] = json!(label);
    manifest["source"] = json!({"host": source.host, "port": source.port, "database": source.dbname,
        "secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"});
    manifest
}

#[tokio::test]
async fn backups_are_listed_newest_first_with_their_restore_tests_and_assessed_against_the_live_rows() {
    let (aws, prefix, creds, store) = production("dr-assess").await;
    let bucket = format!("{prefix}-bucket");
    aws.s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let objects = S3Objects::new(aws.s3.clone(), bucket);
    let tables = json!([{"schema": "public", "table": "analyses", "rows": 200},
        {"schema": "public", "table": "audit_log", "rows": 290}, {"schema": "public", "table": "dropped", "rows": 5}]);
    put(&objects, "backups/app/old.manifest.json", manifest("backups/app/old", 30, json!([]))).await;
    put(&objects, "backups/app/new.manifest.json", manifest("backups/app/new", 3, tables)).await;
    put(
        &objects,
        "reports/restore-tests/r1.json",
        json!({"version": 1, "result": "passed",
        "backup_key": "backups/app/old.dump", "backup_id": "old", "database": "app", "backup_started_at": Utc::now(),
        "verified_at": Utc::now(), "size_bytes": 1, "tables": 0, "rows": 0, "download_ms": 0, "restore_ms": 0,
        "checks_ms": 0, "rto_ms": 1, "rto_target_ms": 1, "rto_met": true, "backup_age_hours": 1.0,
        "rpo_target_hours": 24, "rpo_met": true, "scratch_database": null, "scratch_dropped": true, "checks": [],
        "failures": [], "report_key": "reports/restore-tests/r1.json"}),
    )
    .await;

    let entries = dr::backups(&objects, "backups/", "reports/restore-tests/", Utc::now()).await.expect("list");
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["backups/app/new.dump", "backups/app/old.dump"]);
    assert_eq!(entries[1].restore_test.as_deref(), Some("passed"));
    assert_eq!(entries[0].restore_test, None);
    let table = dr::render_backups(&entries);
    assert!(table.contains("not tested") && table.contains("passed"), "{table}");
    let json: Value = serde_json::to_value(&entries).expect("json");
    assert_eq!(json[0]["rows"], 495);

    let (_, client) = dr::connect(&store, &format!("{prefix}-database")).await.expect("connect");
    // Newer than the newest backup of this database, and never its latest: a safety backup
    // taken before a restore, and backups of another server and of another database.
    let mut elsewhere = creds.clone();
    elsewhere.host = "db.other.supabase.co".to_owned();
    let mut other_database = creds.clone();
    other_database.dbname = "staging".to_owned();
    let mut with_others = entries.clone();
    for (key, label, source) in [
        ("backups/app/safety", Some("pre-restore"), &creds),
        ("backups/app/other-server", None, &elsewhere),
        ("backups/app/other-database", None, &other_database),
    ] {
        put(&objects, &format!("{key}.manifest.json"), manifest_of(key, 1, label, source)).await;
    }
    let all = dr::backups(&objects, "backups/", "reports/restore-tests/", Utc::now()).await.expect("list");
    assert_eq!(all.len(), 5);
    with_others.extend(all.into_iter().filter(|e| e.age_hours < 2.0));
    let assessment = dr::assess(&client, &creds, with_others).await.expect("assess");
    assert!(assessment.restore_without_asking, "{}", assessment.advice);
    assert!(assessment.advice.contains("restore it") && assessment.advice.contains("backups/app/new.dump"));
    let confirm = format!("--confirm {}/{}", creds.host, creds.dbname);
    assert!(assessment.advice.contains(&confirm), "{}", assessment.advice);
    let keys: Vec<&str> = assessment.newest.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["backups/app/new.dump", "backups/app/old.dump"], "this database's backups only");
    let live = |table: &str| assessment.tables.iter().find(|t| t.table == table).and_then(|t| t.live);
    assert_eq!(live("public.analyses"), Some(200));
    assert!(live("public.audit_log").is_some());
    assert_eq!(live("public.dropped"), None, "a table gone from the live database");
    assert!(assessment.render().contains("(table missing)"));

    let stale = dr::assess(&client, &creds, entries[1..].to_vec()).await.expect("assess the old one");
    assert!(!stale.restore_without_asking && stale.advice.contains("decide with the team"), "{}", stale.advice);
}
