//! opsctl's backups, restore tests and disaster-recovery restores, run in its own process
//! (`--local`) against moto and PostgreSQL, as an operator would run them: the stack found from
//! its prefix and the caller's account, the secrets `<prefix>-database` and
//! `<prefix>-staging-database`, alerts on `<prefix>-ops-alerts`.

use std::time::Duration;

use ops_shared::backup::{Backup, BackupSummary, Manifest, manifest_key};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::postgres::DbCredentials;
use ops_shared::restore::Verifier;
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::{Env, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, unique};
use ops_testkit::names;
use ops_testkit::pg::Seed;
use opsctl::dr;
use opsctl::dr_restore::{self, Engines, Phase, RestoreError, RestoreOutcome, RestoreRequest};
use opsctl::on_demand::{self, OnDemandError};
use opsctl::progress::Progress;
use opsctl::stack::{Reach, Stack};
use serde_json::Value;

/// A stack of its own: a seeded production database, the staging server, the alert topic.
pub(crate) struct Operator {
    pub(crate) aws: Aws,
    pub(crate) stack: Stack,
    pub(crate) reach: Reach,
    pub(crate) alerts: Inbox,
    pub(crate) production: DbCredentials,
    pg_tools: String,
}

pub(crate) async fn operator(label: &str, seed: Seed) -> Operator {
    let aws = Aws::new(ops_testkit::shared()).await;
    let prefix = unique(label);
    let pg = &ops_testkit::shared().pg;
    let production = pg.create_seeded_database(&prefix.replace('-', "_"), seed).expect("production database");
    for (name, creds) in [("database", &production), ("staging-database", &pg.superuser("postgres"))] {
        let value = serde_json::to_string(creds).expect("json");
        aws.secrets.create_secret().name(format!("{prefix}-{name}")).secret_string(value).send().await.expect("secret");
    }
    let topic = aws.create_topic(&format!("{prefix}-ops-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let stack = Stack::discover(&aws.sdk, &prefix, Some(names::backup_bucket())).await.expect("the stack");
    assert_eq!(stack.alert_topic_arn(), topic, "the stack names the topic the template creates");
    let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
    let reach = Reach::new(&aws.sdk, &stack, http);
    let pg_tools = ops_testkit::shared().tools_dir.display().to_string();
    Operator { aws, stack, reach, alerts, production, pg_tools }
}

impl Operator {
    pub(crate) fn backup_engine(&self, secret: &str) -> Backup<S3Objects, SnsAlertPublisher> {
        on_demand::backup_engine(&self.reach, &self.stack, &Env::default(), secret, &self.pg_tools).expect("engine")
    }

    pub(crate) fn verifier(&self, target: &str) -> Verifier<S3Objects, SnsAlertPublisher> {
        on_demand::verifier_engine(&self.reach, &self.stack, &Env::default(), target, &self.pg_tools).expect("engine")
    }

    /// `opsctl backup --local --label <label>`.
    pub(crate) async fn backup(&self, label: &str) -> BackupSummary {
        let engine = self.backup_engine(&self.stack.secret("database"));
        on_demand::backup_here(&engine, Some(label.to_owned())).await.expect("backup")
    }

    /// `opsctl dr restore --backup <key> --target <prefix>-database [--confirm <name>]`, an
    /// untested backup restore-tested first on `<prefix>-staging-database`.
    pub(crate) async fn restore(&self, request: &RestoreRequest) -> Result<RestoreOutcome, RestoreError> {
        self.restore_tested_on(request, &self.stack.secret("staging-database")).await
    }

    /// The same, the restore test of an untested backup on the server behind `staging_secret`.
    pub(crate) async fn restore_tested_on(
        &self,
        request: &RestoreRequest,
        staging_secret: &str,
    ) -> Result<RestoreOutcome, RestoreError> {
        let verifier = self.verifier(&request.target_secret);
        let staging = self.verifier(staging_secret);
        let safety = self.backup_engine(&request.target_secret);
        let engines = Engines { verifier: &verifier, staging: &staging, safety: &safety, http: &self.reach.http };
        dr_restore::restore(&engines, request, &Progress::quiet()).await
    }

    /// The request of these tests of the restore itself: `--untested`, the restore tests run
    /// first are `dr_tested`'s.
    pub(crate) fn request(&self, backup: &str, confirm: Option<&str>) -> RestoreRequest {
        RestoreRequest {
            backup_key: backup.to_owned(),
            target_secret: self.stack.secret("database"),
            confirm: confirm.map(str::to_owned),
            jobs: 1,
            health_urls: Vec::new(),
            untested: true,
        }
    }

    /// What `--confirm` takes: the production database's `<host>/<database>`.
    pub(crate) fn confirm(&self) -> String {
        format!("{}/{}", self.production.host, self.production.dbname)
    }

    /// The backups of the production database, by label.
    pub(crate) async fn backups_labelled(&self, label: &str) -> Vec<Manifest> {
        let entries = dr::backups(&self.reach.objects, "backups/", "reports/restore-tests/", chrono::Utc::now())
            .await
            .expect("backups");
        let database = format!("backups/{}/", self.production.dbname);
        entries
            .into_iter()
            .filter(|e| e.key.starts_with(&database) && e.label.as_deref() == Some(label))
            .map(|e| e.manifest)
            .collect()
    }

    pub(crate) async fn journal(&self) -> Option<dr_restore::Journal> {
        let key = dr_restore::journal_key(&self.secret_arn().await);
        let body = self.reach.objects.get(&key).await.ok()?.collect().await.ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// The ARN of the production database's secret, which keys its restore journal.
    async fn secret_arn(&self) -> String {
        let described = self.aws.secrets.describe_secret().secret_id(self.stack.secret("database")).send().await;
        described.expect("describe").arn().expect("arn").to_owned()
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        let client = self.production.connect(Duration::from_secs(5)).await.expect("connect");
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    pub(crate) async fn execute(&self, sql: &str) {
        let client = self.production.connect(Duration::from_secs(5)).await.expect("connect");
        client.batch_execute(sql).await.expect(sql);
    }
}

#[tokio::test]
async fn a_local_backup_lands_with_its_manifest_and_a_local_restore_test_covers_it() {
    let op = operator("opsctl-backup", Seed::SMALL).await;
    let summary = op.backup("pre-deploy").await;
    assert!(summary.key.starts_with(&format!("backups/{}/", op.production.dbname)), "{}", summary.key);
    assert!(summary.backup_id.starts_with("pre-deploy-") && summary.rows > 0, "{summary:?}");
    let json: Value = serde_json::to_value(&summary).expect("json");
    assert_eq!(json["key"].as_str(), Some(summary.key.as_str()));
    let listed = op.reach.objects.list(&manifest_key(&summary.key)).await.expect("list");
    assert_eq!(listed.len(), 1, "the manifest is in the bucket");
    let labelled = op.backups_labelled("pre-deploy").await;
    assert_eq!(labelled.len(), 1);
    assert_eq!(labelled[0].sha256, summary.sha256);

    let verifier = op.verifier(&op.stack.secret("staging-database"));
    let report = on_demand::restore_test_here(&verifier, Some(&summary.key)).await.expect("restore test");
    assert!(report.passed(), "{:?}", report.failures);
    let json: Value = serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
    assert_eq!((json["result"].as_str(), json["backup_key"].as_str()), (Some("passed"), Some(summary.key.as_str())));
    let entries = dr::backups(&op.reach.objects, "backups/", "reports/restore-tests/", chrono::Utc::now())
        .await
        .expect("backups");
    let entry = entries.iter().find(|e| e.key == summary.key).expect("listed");
    assert_eq!(entry.restore_test.as_deref(), Some("passed"), "`opsctl backups` shows the test");
    let notes = op.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].alert().title.starts_with("Backup/restore successful"), "{:?}", notes[0].alert());
}

#[tokio::test]
async fn a_bad_label_a_missing_backup_and_a_function_that_is_not_deployed_are_named() {
    let op = operator("opsctl-refuse", Seed::SMALL).await;
    let engine = op.backup_engine(&op.stack.secret("database"));
    let err = on_demand::backup_here(&engine, Some("pre deploy".into())).await.expect_err("label");
    assert!(matches!(err, OnDemandError::Label(_)) && err.exit_code() == 2, "{err}");
    assert!(op.backups_labelled("pre deploy").await.is_empty());

    let verifier = op.verifier(&op.stack.secret("staging-database"));
    let missing = format!("backups/{}/2026/01/01/nothing.dump", op.production.dbname);
    let err = on_demand::restore_test_here(&verifier, Some(&missing)).await.expect_err("no such backup");
    assert!(err.to_string().contains(&missing) && err.exit_code() == 2, "{err}");

    // moto runs no Lambda function: the stack's is not deployed there, and the error says which.
    let lambda = aws_sdk_lambda::Client::new(&op.aws.sdk);
    let function = op.stack.function("scheduled-backup");
    let payload = serde_json::json!({ "label": "pre-deploy" });
    let err = on_demand::invoke::<BackupSummary>(&lambda, &function, &payload, true).await.expect_err("not deployed");
    assert!(matches!(err, OnDemandError::Invoke { .. }) && err.exit_code() == 2, "{err}");
    assert!(err.to_string().contains(&function) && err.to_string().contains("--local"), "{err}");
}

#[tokio::test]
async fn dr_restore_refuses_without_the_host_and_database_and_touches_nothing() {
    let op = operator("dr-confirm", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    op.execute("DELETE FROM public.audit_log").await;

    let err = op.restore(&op.request(&backup.key, None)).await.expect_err("no --confirm");
    assert!(matches!(err, RestoreError::NotConfirmed { .. }) && err.exit_code() == 2, "{err}");
    assert!(err.to_string().contains(&format!("--confirm {}", op.confirm())), "{err}");
    let elsewhere = format!("db.other.example.com/{}", op.production.dbname);
    for wrong in ["postgres", op.production.dbname.as_str(), elsewhere.as_str()] {
        let err = op.restore(&op.request(&backup.key, Some(wrong))).await.expect_err("wrong target");
        assert!(matches!(err, RestoreError::WrongTarget { .. }) && err.to_string().contains(&op.confirm()), "{err}");
    }

    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, 0, "nothing restored");
    assert!(op.backups_labelled(dr_restore::SAFETY_LABEL).await.is_empty(), "no safety backup taken");
    assert!(op.journal().await.is_none());
    assert!(op.alerts.receive(0, Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn dr_restore_refuses_a_backup_whose_checksum_fails_before_touching_anything() {
    let op = operator("dr-corrupt", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    let mut body = op.reach.objects.get(&backup.key).await.expect("get").collect().await.expect("body");
    let middle = body.len() / 2;
    body[middle] ^= 0xff;
    op.reach.objects.put(&backup.key, body, "application/octet-stream").await.expect("damage the dump");
    op.execute("DELETE FROM public.audit_log").await;

    let err = op.restore(&op.request(&backup.key, Some(&op.confirm()))).await.expect_err("corrupt");
    assert!(matches!(err, RestoreError::Corrupt { .. }) && err.exit_code() == 1, "{err}");
    assert!(err.to_string().contains("sha256") && err.to_string().contains("nothing was touched"), "{err}");
    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, 0, "nothing restored");
    assert!(op.journal().await.is_none(), "no restore started");
    let notes = op.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].alert().severity, Severity::Critical);
    // The safety backup ran beside the download: stopped if it had not finished (an upload
    // without a manifest, never listed), else kept and named in the alert.
    let summary = &notes[0].alert().summary;
    match op.backups_labelled(dr_restore::SAFETY_LABEL).await.as_slice() {
        [] => assert!(!summary.contains("safety backup"), "{summary}"),
        [kept] => assert!(summary.contains(&kept.key), "{summary}"),
        more => panic!("one safety backup at most: {more:?}"),
    }
}

#[tokio::test]
async fn dr_restore_restores_nothing_when_the_safety_backup_fails() {
    let op = operator("dr-no-safety", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    op.execute("DELETE FROM public.audit_log").await;

    let request = op.request(&backup.key, Some(&op.confirm()));
    let verifier = op.verifier(&request.target_secret);
    let staging = op.verifier(&op.stack.secret("staging-database"));
    let no_tools = "/nonexistent/pgtools";
    let safety = on_demand::backup_engine(&op.reach, &op.stack, &Env::default(), &request.target_secret, no_tools);
    let safety = safety.expect("engine");
    let engines = Engines { verifier: &verifier, staging: &staging, safety: &safety, http: &op.reach.http };
    let err = dr_restore::restore(&engines, &request, &Progress::quiet()).await.expect_err("no safety backup");
    assert!(matches!(err, RestoreError::SafetyBackup { .. }) && err.exit_code() == 1, "{err}");
    assert!(err.to_string().contains(no_tools) && err.to_string().contains("nothing was restored"), "{err}");
    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, 0, "nothing restored");
    assert!(op.journal().await.is_none(), "no restore started");
    let notes = op.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "the failed backup's own alert");
    assert_eq!(notes[0].alert().severity, Severity::Critical);
}

#[tokio::test]
async fn dr_restore_names_a_target_it_cannot_reach() {
    let op = operator("dr-unreachable", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    let mut creds = op.production.clone();
    creds.port = 9;
    let secret = unique("dr-unreachable-target");
    let value = serde_json::to_string(&creds).expect("json");
    op.aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("secret");
    let confirm = format!("{}/{}", creds.host, creds.dbname);
    let request = RestoreRequest { target_secret: secret.clone(), ..op.request(&backup.key, Some(&confirm)) };
    let err = op.restore(&request).await.expect_err("unreachable");
    assert!(matches!(err, RestoreError::Unreachable { .. }) && err.exit_code() == 2, "{err}");
    assert!(err.to_string().contains(&secret) && err.to_string().contains("nothing was touched"), "{err}");
    let missing = RestoreRequest { target_secret: "no-such-secret".into(), ..request };
    let err = op.restore(&missing).await.expect_err("no secret");
    assert!(matches!(err, RestoreError::TargetSecret { .. }) && err.to_string().contains("no-such-secret"), "{err}");
}

#[tokio::test]
async fn dr_restore_brings_the_backup_back_into_a_frozen_database_with_a_safety_backup_and_one_alert() {
    let op = operator("dr-restore", Seed::SMALL).await;
    let backup = op.backup("nightly").await;
    let audit_rows = op.count("SELECT count(*) FROM public.audit_log").await;
    op.execute("DELETE FROM public.audit_log; DROP TABLE public.analyses").await;
    let store = SecretsManagerVersions::new(op.aws.secrets.clone());
    let (creds, client) = dr::connect(&store, &op.stack.secret("database")).await.expect("connect");
    let arn = dr::secret_arn(&store, &op.stack.secret("database")).await.expect("the secret's ARN");
    let why = dr::FreezeRequest {
        secret_arn: arn.clone(),
        who: "ops".into(),
        reason: "drill".into(),
        thaw_command: "opsctl dr thaw".into(),
    };
    dr::freeze(&client, &creds, &op.reach.objects, &op.reach.alerts, &why).await.expect("freeze");
    assert_eq!(op.alerts.receive(1, Duration::from_secs(3)).await.len(), 1, "the freeze's own alert");

    let name = op.production.dbname.clone();
    let outcome = op.restore(&op.request(&backup.key, Some(&op.confirm()))).await.expect("restore");
    assert!(outcome.passed && outcome.resumed.is_none(), "{outcome:?}");
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(op.count("SELECT count(*) FROM public.audit_log").await, audit_rows);
    assert!(op.count("SELECT count(*) FROM public.analyses").await > 0, "the dropped table is back");
    let health = outcome.checks.iter().find(|c| c.name == "database accepts new connections").expect("health");
    assert!(health.passed && health.detail.contains("opsctl dr thaw"), "{health:?}");

    let safety = op.backups_labelled(dr_restore::SAFETY_LABEL).await;
    assert_eq!(safety.len(), 1);
    assert_eq!(safety[0].key, outcome.safety_backup_key);
    assert!(!safety[0].tables.iter().any(|t| t.table == "analyses"), "the safety backup holds the damaged state");
    let journal = op.journal().await.expect("journal");
    assert_eq!((journal.phase, journal.backup_key.as_str()), (Phase::Finished, backup.key.as_str()));

    let json: Value = serde_json::from_str(&serde_json::to_string(&outcome).expect("json")).expect("parse");
    assert_eq!(json["passed"].as_bool(), Some(true));
    assert_eq!(json["safety_backup_key"].as_str(), Some(outcome.safety_backup_key.as_str()));
    assert!(json["rto_ms"].as_u64().is_some_and(|ms| ms > 0));

    let notes = op.alerts.receive(2, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "one alert: {notes:?}");
    let alert = notes[0].alert();
    assert_eq!(alert.severity, Severity::Info);
    assert_eq!(alert.title, format!("Database restored: {name}"));
    assert!(alert.summary.contains(&backup.key) && alert.summary.contains(" min"), "{}", alert.summary);

    dr::thaw(&client, &creds, &op.reach.objects, &op.reach.alerts, &arn, "ops").await.expect("thaw");
    op.execute("INSERT INTO public.audit_log (action) VALUES ('after the restore')").await;
}

#[tokio::test]
async fn an_interrupted_restore_is_resumed_with_its_first_safety_backup() {
    let seed = Seed { users: 2_000, analyses_per_user: 20, audit_entries: 100_000 };
    let op = operator("dr-resume", seed).await;
    let backup = op.backup("nightly").await;
    op.execute("DELETE FROM public.audit_log").await;
    let request = op.request(&backup.key, Some(&op.confirm()));

    // Interrupted once pg_restore runs: the restore is dropped (pg_restore is killed with it).
    let journal_says_restoring = async {
        loop {
            if op.journal().await.is_some_and(|j| j.phase == Phase::Restoring) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        finished = op.restore(&request) => panic!("the restore was to be interrupted: {finished:?}"),
        () = journal_says_restoring => {}
    }
    let interrupted = op.journal().await.expect("journal");
    assert_eq!(interrupted.phase, Phase::Restoring);

    let outcome = op.restore(&request).await.expect("the second run");
    let resumed = outcome.resumed.as_deref().expect("the second run says it resumed");
    assert!(resumed.contains("was interrupted") && resumed.contains(&interrupted.safety_backup_key), "{resumed}");
    assert_eq!(outcome.safety_backup_key, interrupted.safety_backup_key);
    assert!(outcome.passed, "{:?}", outcome.failures);
    assert_eq!(op.backups_labelled(dr_restore::SAFETY_LABEL).await.len(), 1, "no second safety backup");
    assert!(op.count("SELECT count(*) FROM public.audit_log").await > 0);

    // A restore whose health check fails is reported, alerted, and resumable too.
    let failing = RestoreRequest { health_urls: vec!["http://127.0.0.1:9/health".into()], ..request };
    let outcome = op.restore(&failing).await.expect("ran");
    assert!(!outcome.passed && outcome.exit_code() == 1 && outcome.resumed.is_none(), "{outcome:?}");
    assert_eq!(op.journal().await.expect("journal").phase, Phase::Failed);
    let alerts: Vec<_> = op.alerts.receive(3, Duration::from_secs(3)).await.iter().map(|n| n.alert()).collect();
    assert!(
        alerts.iter().any(|a| a.severity == Severity::Critical && a.title.contains("restore failed")),
        "{alerts:?}"
    );
}
