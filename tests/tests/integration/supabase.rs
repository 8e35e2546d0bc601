//! The nightly backup and the restore test on PostgreSQL 15 and 17 servers built as Supabase
//! builds a project's (`ops_testkit::supabase_schema`), connected as the demoted `postgres`,
//! never as a superuser.

use std::sync::Arc;
use std::time::Duration;

use ops_shared::backup::{Backup, BackupConfig, BackupError, Compression, Manifest, Platform};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::postgres::DbCredentials;
use ops_shared::restore::{Selection, ValidationQuery, Verifier, VerifierConfig};
use ops_shared::{Scrubber, SecretCache, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, unique};
use ops_testkit::names;
use ops_testkit::supabase_schema::{self, SupabaseServer};

/// Restore tests on the Supabase servers, one at a time: each drops the scratch databases it
/// finds abandoned, and one test leaves one there on purpose.
pub(crate) static RESTORE_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) struct Fixture {
    pub(crate) aws: Aws,
    pub(crate) prefix: String,
    pub(crate) alerts: Inbox,
    pub(crate) topic: String,
    pub(crate) secrets: Arc<SecretCache>,
    pub(crate) server: &'static SupabaseServer,
}

pub(crate) async fn fixture(major: u32) -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("supabase-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let secrets = Arc::new(SecretCache::new(aws.secrets.clone(), Scrubber::default()));
    let server = ops_testkit::shared().supabase(major);
    Fixture { prefix: format!("{}/", unique("supabase-backups")), aws, alerts, topic, secrets, server }
}

impl Fixture {
    /// A project with the app and its users, and the secret of its `postgres` credentials.
    pub(crate) async fn project(&self) -> (String, DbCredentials) {
        let name = unique("project").replace('-', "_");
        let creds = self.server.create_project(&name).expect("a Supabase project");
        (self.secret(&creds).await, creds)
    }

    pub(crate) async fn secret(&self, creds: &DbCredentials) -> String {
        assert_eq!(creds.username, supabase_schema::POSTGRES, "the functions connect as postgres");
        assert!(
            !self
                .server
                .pg
                .psql("postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'")
                .expect("role")
                .starts_with('t')
        );
        let name = unique("supabase-secret");
        let value = serde_json::to_string(creds).expect("json");
        self.aws.secrets.create_secret().name(&name).secret_string(value).send().await.expect("secret");
        name
    }

    pub(crate) fn store(&self) -> S3Objects {
        S3Objects::new(self.aws.s3.clone(), names::backup_bucket())
    }

    pub(crate) fn backup(&self, secret: &str) -> Backup<S3Objects, SnsAlertPublisher> {
        Backup {
            store: self.store(),
            alerts: SnsAlertPublisher::new(self.aws.sns.clone(), self.topic.clone()),
            secrets: Arc::clone(&self.secrets),
            http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
            config: BackupConfig {
                database_secret_arn: secret.to_owned(),
                bucket: names::backup_bucket(),
                prefix: self.prefix.clone(),
                pg_tools_dir: ops_testkit::shared().tools_dir.display().to_string(),
                part_size: 5 * 1024 * 1024,
                compression: Compression::Auto,
                rpo: Duration::from_secs(24 * 3600),
                supabase: None,
                deadline_margin: Duration::from_secs(30),
                database_timeout: Duration::from_secs(5),
            },
        }
    }

    pub(crate) fn verifier(&self, staging_secret: &str) -> Verifier<S3Objects, SnsAlertPublisher> {
        Verifier {
            store: self.store(),
            alerts: SnsAlertPublisher::new(self.aws.sns.clone(), self.topic.clone()),
            secrets: Arc::clone(&self.secrets),
            config: VerifierConfig {
                bucket: names::backup_bucket(),
                prefix: self.prefix.clone(),
                staging_secret_arn: staging_secret.to_owned(),
                database_secret_arn: None,
                pg_tools_dir: ops_testkit::shared().tools_dir.display().to_string(),
                rto: Duration::from_secs(30 * 60),
                rpo: Duration::from_secs(24 * 3600),
                validation_queries: supabase_schema::validation_queries()
                    .into_iter()
                    .map(|(name, sql)| ValidationQuery { name, sql })
                    .collect(),
                restore_jobs: 2,
                report_prefix: format!("{}reports/", self.prefix),
                retention: Duration::from_secs(30 * 24 * 3600),
                database_timeout: Duration::from_secs(5),
            },
        }
    }

    /// Every object of database `name` with its owner and privileges, and its tables' rows:
    /// what must not change where a restore test only visits.
    pub(crate) fn objects_of(&self, name: &str) -> String {
        self.server
            .pg
            .psql(
                name,
                "SELECT string_agg(format('%s %s %s %s', c.oid::regclass, c.relkind, c.relowner::regrole, c.relacl), \
                 E'\\n' ORDER BY c.oid::regclass::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
            )
            .expect("list objects")
    }
}

fn left_out(manifest: &Manifest) -> Vec<&str> {
    manifest.left_out.iter().map(|l| l.object.as_str()).collect()
}

fn rows(manifest: &Manifest, schema: &str, table: &str) -> Option<i64> {
    manifest.tables.iter().find(|t| t.schema == schema && t.table == table).map(|t| t.rows)
}

/// The backup as `postgres` keeps the app and its users, leaves the platform's internals out
/// and says so; the restore test on a staging project built the same way restores it into a
/// scratch database, passes every check and leaves the staging project as it was.
async fn backup_and_restore_test_as_postgres(major: u32) {
    let f = fixture(major).await;
    let (secret, creds) = f.project().await;
    let (manifest, summary) = f.backup(&secret).run(None, None).await.expect("the backup as postgres");

    assert_eq!(manifest.platform, Platform::Supabase);
    let users = Some(i64::from(supabase_schema::USERS));
    assert_eq!(rows(&manifest, "auth", "users"), users, "the users are kept");
    assert_eq!(rows(&manifest, "storage", "objects"), users, "the storage metadata is kept");
    assert_eq!(rows(&manifest, "public", "billing"), users);
    assert_eq!(rows(&manifest, "public", "documents"), Some(1));
    for platform in ["auth.schema_migrations", "storage.migrations"] {
        let (schema, table) = platform.split_once('.').expect("qualified");
        assert_eq!(rows(&manifest, schema, table), None, "{platform} is the platform's");
    }
    assert!(
        !manifest
            .tables
            .iter()
            .any(|t| ["realtime", "supabase_functions", "pgsodium", "graphql"].contains(&t.schema.as_str()))
    );
    let left_out = left_out(&manifest);
    for expected in [
        "table auth.schema_migrations",
        "table storage.migrations",
        "schema realtime",
        "schema supabase_functions",
        "schema graphql",
        "schema pgsodium",
        "event trigger pgrst_ddl_watch",
        "event trigger pgrst_drop_watch",
        "publication supabase_realtime",
    ] {
        assert!(left_out.contains(&expected), "{expected} is not in {left_out:?}");
    }
    assert!(manifest.left_out.iter().all(|l| !l.reason.is_empty()));
    let source = manifest.source.as_ref().expect("the source is recorded");
    assert_eq!((source.host.as_str(), source.port), (creds.host.as_str(), creds.port));
    let arn = f.aws.secrets.describe_secret().secret_id(&secret).send().await.expect("describe").arn;
    assert_eq!(source.database, creds.dbname);
    assert_eq!(Some(source.secret.clone()), arn, "the secret's ARN, though its name was configured");
    assert_eq!(summary.rows, manifest.total_rows());

    let staging_name = unique("staging").replace('-', "_");
    let staging = f.server.create_project(&staging_name).expect("a staging project");
    let staging_before = f.objects_of(&staging_name);
    let staging_secret = f.secret(&staging).await;
    let _one_at_a_time = RESTORE_TESTS.lock().await;
    let report = f.verifier(&staging_secret).run(Selection::Latest, None).await.expect("the restore test ran");
    assert!(report.passed(), "{:#?}", report.failures);
    for (check, _) in supabase_schema::validation_queries() {
        assert!(report.checks.iter().any(|c| c.name == check && c.passed), "{check}: {:#?}", report.checks);
    }
    let scratch = report.scratch_database.as_deref().expect("a scratch database");
    assert!(report.scratch_dropped && !f.server.pg.database_exists(scratch).expect("pg_database"));
    assert_eq!(f.objects_of(&staging_name), staging_before, "the staging project's own objects are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_15_backs_up_and_restore_tests_as_the_demoted_postgres_role() {
    backup_and_restore_test_as_postgres(15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_17_backs_up_and_restore_tests_as_the_demoted_postgres_role() {
    backup_and_restore_test_as_postgres(17).await;
}

/// A table the backup's role cannot read fails the backup with its name, before any upload.
/// On Supabase `postgres` is a member of `pg_read_all_data`, so this is shown with a role of
/// its own on a plain server: the check is the same whatever the platform.
#[tokio::test]
async fn a_table_the_role_cannot_read_fails_the_backup_with_its_name() {
    let f = fixture(15).await;
    let pg = &ops_testkit::shared().pg;
    let name = unique("unreadable").replace('-', "_");
    let mut creds = pg.create_seeded_database(&name, ops_testkit::pg::Seed::SMALL).expect("database");
    let role = name.clone();
    pg.psql(
        &name,
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'reader'; GRANT USAGE ON SCHEMA auth TO {role}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA auth, public TO {role}; \
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA auth, public TO {role}; \
             REVOKE SELECT ON public.audit_log FROM {role}"
        ),
    )
    .expect("a role that may read all but one table");
    creds.username = role.clone();
    creds.password = "reader".to_owned().into();
    let value = serde_json::to_string(&creds).expect("json");
    let secret = unique("reader-secret");
    f.aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("secret");

    let err = f.backup(&secret).run(None, None).await.expect_err("the table cannot be read");
    assert!(matches!(err, BackupError::Unreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("public.audit_log") && err.to_string().contains(&role), "{err}");
    assert!(f.store().list(&f.prefix).await.expect("list").is_empty(), "nothing is uploaded");
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].alert().severity, Severity::Critical);
    assert!(notes[0].alert().summary.contains("public.audit_log"), "{}", notes[0].alert().summary);
}

/// The scratch database is dropped even when the connection that created it died during the
/// restore, and scratch databases a killed run left (older than a run, unused) are dropped by
/// the next run; a newer one, which may be another run's, is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_databases_are_dropped_even_when_their_connection_died_or_their_run_was_killed() {
    let f = fixture(15).await;
    let (secret, _) = f.project().await;
    f.backup(&secret).run(None, None).await.expect("backup");
    let staging_name = unique("staging").replace('-', "_");
    let staging = f.server.create_platform(&staging_name).expect("a staging project");
    let staging_secret = f.secret(&staging).await;
    let _one_at_a_time = RESTORE_TESTS.lock().await;
    let abandoned = format!("restore_test_20200101000000_{}", &unique("x").replace('-', "")[..8]);
    let recent = format!("restore_test_{}_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"), "0recent0");
    for name in [&abandoned, &recent] {
        f.server.pg.psql("postgres", &format!("CREATE DATABASE {name} OWNER postgres")).expect("a left-over");
    }

    // While pg_restore runs in the scratch database, the verifier's own connection to the
    // staging database is ended, as a server restart or a network cut would.
    let pg = &f.server.pg;
    let kill = {
        let staging_name = staging_name.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..600 {
                let ended = pg
                    .psql(
                        "postgres",
                        &format!(
                            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
                             WHERE datname = '{staging_name}' AND usename = 'postgres' \
                             AND EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname LIKE 'restore_test_2%' \
                                         AND a.datname NOT LIKE 'restore_test_2020%')"
                        ),
                    )
                    .unwrap_or_default();
                if ended != "0" && !ended.is_empty() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let report = f.verifier(&staging_secret).run(Selection::Latest, None).await.expect("the test ran");
    assert!(kill.await.expect("killer"), "the verifier's connection was ended during the restore");
    let scratch = report.scratch_database.as_deref().expect("a scratch database");
    assert!(report.scratch_dropped, "{:#?}", report.failures);
    assert!(!pg.database_exists(scratch).expect("pg_database"), "{scratch} is left");
    assert_eq!(report.abandoned_scratch_dropped, vec![abandoned.clone()]);
    assert!(!pg.database_exists(&abandoned).expect("pg_database"));
    assert!(pg.database_exists(&recent).expect("pg_database"), "a recent one may be another run's");
    pg.psql("postgres", &format!("DROP DATABASE {recent}")).expect("clean up");
}
