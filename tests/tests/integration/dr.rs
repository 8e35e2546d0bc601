//! The disaster-recovery commands against the local stack: writes stopped and allowed through
//! the stored credentials, backups listed with their restore tests, the assessment of the
//! newest backup against the live database (each also as JSON) with the data a restore would
//! lose, and a drill's notices to ops and the stakeholders.

use std::time::Duration;

use chrono::Utc;
use ops_shared::alert::Status;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::postgres::DbCredentials;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::{Alert, Env, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, Notification, unique};
use ops_testkit::names;
use ops_testkit::pg::Seed;
use opsctl::cli::{DrCommand, StackArgs};
use opsctl::commands::Context;
use opsctl::dr::{self, AssessRequest, AssessmentRecord, DrError, FreezeRecord, FreezeRequest, TableRows};
use opsctl::notice::{Sent, Told};
use opsctl::outcome::{Outcome, Verdict};
use serde_json::{Value, json};

use super::opsctl_runs::{Operator, operator};

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
    assert_eq!((frozen.privileges, &frozen.told.ops), (1, &Sent::Sent), "{frozen:?}");
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
    let topic = aws.create_topic(&unique("dr-assess-alerts")).await;
    let inbox = aws.subscribe_queue(&topic).await;
    let alerts = SnsAlertPublisher::new(aws.sns.clone(), topic);
    let arn = dr::secret_arn(&store, &format!("{prefix}-database")).await.expect("arn");
    let request = AssessRequest { secret_arn: arn.clone(), who: "OS user carol".into() };
    let before = Utc::now();
    let assessment = dr::assess(&client, &creds, with_others, &objects, &alerts, &request).await.expect("assess");
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

    // Not frozen: the window runs from the newest backup's snapshot to now, and says it is open.
    let loss = assessment.loss.clone().expect("the newest backup's loss");
    assert_eq!(
        (loss.backup_key.as_str(), loss.since, loss.frozen),
        ("backups/app/new.dump", entries[0].finished_at, false)
    );
    assert!(loss.until >= before && loss.until <= Utc::now(), "{loss:?}");
    let differ = |table: &str, backup, live| TableRows { table: table.to_owned(), backup, live };
    assert_eq!(loss.tables, [differ("public.audit_log", 290, Some(300)), differ("public.dropped", 5, None)]);
    let text = assessment.render();
    for said in [
        "still open: writes have NOT been stopped",
        "public.audit_log: 290 in the backup, 300 live (10 rows more: written since the backup, lost by the restore)",
        "public.dropped: 5 in the backup, table missing live (the restore brings it back)",
    ] {
        assert!(text.contains(said), "{said}:\n{text}");
    }
    // Recorded beside the freeze records, for dr restore to state.
    let key = dr::assessment_key(&arn);
    assert_eq!(assessment.record_key.as_deref(), Some(key.as_str()));
    let body = objects.get(&key).await.expect("the record").collect().await.expect("body");
    let record: AssessmentRecord = serde_json::from_slice(&body).expect("an assessment record");
    assert_eq!(
        (&record.loss, record.assessed_by.as_str(), record.secret.as_str()),
        (&loss, "OS user carol", arn.as_str())
    );
    assert_eq!(assessment.told, Told { ops: Sent::Sent, stakeholders: Sent::NotDue });
    let notes = inbox.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let alert = notes[0].alert();
    assert_eq!((alert.title, alert.severity), (format!("Data-loss assessment: {}", creds.dbname), Severity::Warning));
    assert!(alert.summary.contains("OS user carol") && alert.summary.contains("still open"), "{}", alert.summary);
    assert_eq!(alert.details["tables"], serde_json::to_value(&loss.tables).expect("json"));

    let stale = dr::assess(&client, &creds, entries[1..].to_vec(), &objects, &alerts, &request)
        .await
        .expect("assess the old one");
    assert!(!stale.restore_without_asking && stale.advice.contains("decide with the team"), "{}", stale.advice);
}

/// `opsctl dr <command>`, run as the binary runs it (in this process): its outcome, whose
/// verdict is the exit code.
async fn opsctl_dr(op: &Operator, command: DrCommand) -> Outcome {
    let ctx = Context {
        sdk: op.aws.sdk.clone(),
        env: Env::default(),
        store: SecretsManagerVersions::new(op.aws.secrets.clone()),
        http: op.reach.http.clone(),
    };
    let said = format!("{command:?}");
    opsctl::commands::dr::run(&ctx, command).await.unwrap_or_else(|e| panic!("{said}: {e}"))
}

/// `--prefix <the operator's> --bucket <the test bucket>`.
fn stack_of(op: &Operator) -> StackArgs {
    StackArgs { prefix: op.stack.prefix.clone(), bucket: Some(names::backup_bucket()), json: false }
}

/// `dr freeze --reason <reason> --notify-topic <topic>`.
fn freeze(op: &Operator, reason: &str, topic: &str) -> DrCommand {
    DrCommand::Freeze { stack: stack_of(op), reason: reason.to_owned(), notify_topic: Some(topic.to_owned()) }
}

/// What the command printed (the outcome's text, as its Debug form shows it).
fn printed(outcome: &Outcome) -> String {
    format!("{outcome:?}")
}

/// The one notice each inbox holds now: the stakeholders' plain words, ops' alert.
async fn one_each(stakeholders: &Inbox, ops: &Inbox) -> (Notification, Alert) {
    let words = stakeholders.receive(1, Duration::from_secs(3)).await;
    let alerts = ops.receive(1, Duration::from_secs(3)).await;
    assert_eq!((words.len(), alerts.len()), (1, 1), "{words:?}\n{alerts:?}");
    let subject = words[0].subject.clone().unwrap_or_default();
    assert!(subject.is_ascii() && subject.len() < 100, "SNS takes the subject: {subject}");
    (words[0].clone(), alerts[0].alert())
}

/// The runbook's drill with `--notify-topic`, on a database with 40 analyses deleted and 3
/// audit entries written since its backup: the freeze, the assessment and the restore tell ops
/// and the stakeholders who stopped writes and when, the data-loss window in time and in rows
/// (exactly those), how long the restore took and how to allow writes again; the thaw, that
/// writes are allowed again.
#[tokio::test]
async fn a_drill_tells_ops_and_the_stakeholders_the_data_loss_window_in_time_and_rows() {
    let op = operator("dr-notices", Seed::SMALL).await;
    let topic = op.aws.create_topic(&unique("stakeholders")).await;
    let stakeholders = op.aws.subscribe_queue(&topic).await;
    let backup = op.backup("nightly").await;
    let manifest = op.backups_labelled("nightly").await.pop().expect("the backup's manifest");
    op.alerts.receive(0, Duration::from_millis(500)).await;
    op.execute(
        "DELETE FROM public.analyses WHERE id <= 40; INSERT INTO public.audit_log (action) VALUES ('a'), ('b'), ('c')",
    )
    .await;
    let db = op.production.dbname.clone();
    let who = opsctl::stack::caller(&op.aws.sdk, &Env::default()).await;
    let store = SecretsManagerVersions::new(op.aws.secrets.clone());
    let arn = dr::secret_arn(&store, &op.stack.secret("database")).await.expect("arn");

    let froze = opsctl_dr(&op, freeze(&op, "drill: 40 analyses deleted", &topic)).await;
    assert_eq!(froze.verdict, Verdict::Ok, "{froze:?}");
    assert!(printed(&froze).contains("notice to the stakeholders: sent"), "{froze:?}");
    let body = op.reach.objects.get(&dr::freeze_key(&arn)).await.expect("record").collect().await.expect("body");
    let freeze: FreezeRecord = serde_json::from_slice(&body).expect("the freeze record");
    let since = dr::minute(freeze.frozen_at);
    let (words, alert) = one_each(&stakeholders, &op.alerts).await;
    assert_eq!(words.subject.as_deref(), Some(format!("Data recovery of {db}: writes stopped since {since}").as_str()));
    for said in [format!("are stopped since {since}, by {who}.\n"), "Why: drill: 40 analyses deleted.\n".to_owned()] {
        assert!(words.message.contains(&said), "{said}:\n{}", words.message);
    }
    assert_eq!(alert.title, format!("Writes stopped: {db}"));
    assert!(alert.summary.contains(&format!("{who} stopped writes to {db} on ")), "{}", alert.summary);
    assert!(alert.summary.contains(&format!(" at {since}: drill: 40 analyses deleted.")), "{}", alert.summary);

    let assessed = opsctl_dr(&op, DrCommand::Assess { stack: stack_of(&op), notify_topic: Some(topic.clone()) }).await;
    assert_eq!(assessed.verdict, Verdict::Ok, "{assessed:?}");
    let body = op.reach.objects.get(&dr::assessment_key(&arn)).await.expect("record").collect().await.expect("body");
    let record: AssessmentRecord = serde_json::from_slice(&body).expect("the assessment record");
    let loss = record.loss.clone();
    assert_eq!(
        (loss.backup_key.as_str(), loss.since, loss.until, loss.frozen),
        (backup.key.as_str(), manifest.started_at, freeze.frozen_at, true)
    );
    let differ = |table: &str, backup, live| TableRows { table: table.to_owned(), backup, live: Some(live) };
    assert_eq!(loss.tables, [differ("public.analyses", 200, 160), differ("public.audit_log", 300, 303)]);
    let window = format!("{} (the backup) to {since} (writes stopped), ", dr::minute(manifest.started_at));
    let rows = [
        "  - public.analyses: 200 in the backup, 160 live (40 rows fewer: the restore brings them back)\n",
        "  - public.audit_log: 300 in the backup, 303 live (3 rows more: written since the backup, lost by the restore)\n",
    ];
    let (words, alert) = one_each(&stakeholders, &op.alerts).await;
    assert_eq!(words.subject.as_deref(), Some(format!("Data recovery of {db}: data-loss assessment").as_str()));
    assert!(words.message.contains(&format!("Data-loss window: {window}")), "{}", words.message);
    for row in rows {
        assert!(words.message.contains(row), "{row}:\n{}", words.message);
    }
    assert_eq!(alert.title, format!("Data-loss assessment: {db}"));
    assert_eq!(alert.details["tables"], serde_json::to_value(&loss.tables).expect("json"));

    let restore = DrCommand::Restore {
        backup: backup.key.clone(),
        target: op.stack.secret("database"),
        confirm: Some(op.confirm()),
        jobs: 1,
        health_urls: Vec::new(),
        untested: true,
        stack: stack_of(&op),
        pg_tools: ops_testkit::shared().tools_dir.display().to_string(),
        notify_topic: Some(topic.clone()),
    };
    let restored = opsctl_dr(&op, restore).await;
    assert_eq!(restored.verdict, Verdict::Ok, "{restored:?}");
    assert_eq!(op.count("SELECT count(*) FROM public.analyses").await, 200);
    let (words, alert) = one_each(&stakeholders, &op.alerts).await;
    let finished = dr::minute(manifest.finished_at);
    assert_eq!(words.subject.as_deref(), Some(format!("Data recovery of {db}: restored, as of {finished}").as_str()));
    let thaw = format!("opsctl dr thaw --prefix {} --bucket {}", op.stack.prefix, names::backup_bucket());
    for said in [
        format!(
            "The database {db} was restored from the backup {}, which finished at {finished}.\nThe restore took ",
            backup.key
        ),
        format!("Data lost: what was written from {window}"),
        format!("(from dr assess, {}, by {who}; row counts only", dr::minute(record.assessed_at)),
        format!("Next: writes are still stopped: check the app, then allow writes again with {thaw}.\n"),
    ] {
        assert!(words.message.contains(&said), "{said}:\n{}", words.message);
    }
    for row in rows {
        assert!(words.message.contains(row), "{row}:\n{}", words.message);
    }
    assert_eq!((alert.title.clone(), alert.severity), (format!("Database restored: {db}"), Severity::Info));
    assert!(
        alert.summary.contains(&format!("Data lost: {window}")) && alert.summary.contains(&thaw),
        "{}",
        alert.summary
    );
    assert_eq!(alert.details["loss"], serde_json::to_value(&loss).expect("json"));

    let thawed = opsctl_dr(&op, DrCommand::Thaw { stack: stack_of(&op), notify_topic: Some(topic.clone()) }).await;
    assert_eq!(thawed.verdict, Verdict::Ok, "{thawed:?}");
    let (words, alert) = one_each(&stakeholders, &op.alerts).await;
    assert_eq!(words.subject.as_deref(), Some(format!("Data recovery of {db}: writes allowed again").as_str()));
    assert!(
        words.message.contains(&format!("since {since} by {who}: drill: 40 analyses deleted.")),
        "{}",
        words.message
    );
    assert_eq!(alert.status, Status::Resolved);
    op.execute("INSERT INTO public.audit_log (action) VALUES ('after the drill')").await;
}

/// A stakeholders' topic that does not exist: each step does its work and tells ops, says the
/// stakeholders' notice was NOT sent and why, and exits 2.
#[tokio::test]
async fn a_stakeholders_topic_that_does_not_exist_is_said_and_exits_2_and_ops_are_told_all_the_same() {
    let op = operator("dr-no-topic", Seed::SMALL).await;
    op.backup("nightly").await;
    op.alerts.receive(0, Duration::from_millis(500)).await;
    let missing = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("no-such-topic"));

    let froze = opsctl_dr(&op, freeze(&op, "drill", &missing)).await;
    assert_eq!((froze.verdict, froze.verdict.code()), (Verdict::Failed, 2), "{froze:?}");
    let said = printed(&froze);
    assert!(said.contains("alert to ops: sent") && said.contains("notice to the stakeholders: NOT sent:"), "{said}");
    assert!(said.contains(&missing), "names the topic: {said}");
    insert(&op.production).await.expect_err("writes are stopped all the same");
    let alerts = op.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].alert().title, format!("Writes stopped: {}", op.production.dbname));

    let assessed =
        opsctl_dr(&op, DrCommand::Assess { stack: stack_of(&op), notify_topic: Some(missing.clone()) }).await;
    assert_eq!(assessed.verdict, Verdict::Failed, "{assessed:?}");
    assert!(printed(&assessed).contains("NOT sent:"), "{assessed:?}");
    let store = SecretsManagerVersions::new(op.aws.secrets.clone());
    let arn = dr::secret_arn(&store, &op.stack.secret("database")).await.expect("arn");
    assert!(op.reach.objects.get(&dr::assessment_key(&arn)).await.is_ok(), "recorded all the same");
    assert_eq!(op.alerts.receive(1, Duration::from_secs(3)).await.len(), 1, "ops told the assessment");

    let thawed = opsctl_dr(&op, DrCommand::Thaw { stack: stack_of(&op), notify_topic: Some(missing.clone()) }).await;
    assert_eq!(thawed.verdict, Verdict::Failed, "{thawed:?}");
    assert_eq!(op.alerts.receive(1, Duration::from_secs(3)).await.len(), 1, "ops told the thaw");
    op.execute("INSERT INTO public.audit_log (action) VALUES ('writes again')").await;
}
