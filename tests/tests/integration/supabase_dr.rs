//! `opsctl dr restore` into a live Supabase project, connected as the demoted `postgres`
//! (servers built as `ops_testkit::supabase_schema` builds them, PostgreSQL 15 and 17): the
//! app and the users come back, what belongs to the platform stays exactly as it was, and the
//! outcome states the data lost.

use std::time::Duration;

use ops_shared::backup::Manifest;
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, quote_ident};
use opsctl::dr::TableRows;
use opsctl::dr_restore::{self, Engines, Journal, Phase, RestoreError, RestoreOutcome, RestoreRequest};
use opsctl::progress::Progress;

use super::supabase::{Fixture, fixture};

/// Everything a restore into the live project must leave as it was, read as the superuser:
/// relations with their owners and privileges, functions, triggers, policies, event triggers,
/// the publication's tables, default privileges, schemas, extensions, the migrations tables.
const PLATFORM_STATE: &str = r#"
SELECT concat_ws(E'\n',
  (SELECT string_agg(format('%s %s %s %s', c.oid::regclass, c.relkind, c.relowner::regrole, c.relacl), E'\n'
     ORDER BY c.oid::regclass::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')),
  (SELECT string_agg(format('function %s %s %s', p.oid::regprocedure, p.proowner::regrole, p.proacl), E'\n'
     ORDER BY p.oid::regprocedure::text) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')),
  (SELECT string_agg(format('trigger %s %s %s', t.tgrelid::regclass, t.tgname, t.tgenabled), E'\n'
     ORDER BY 1) FROM pg_trigger t WHERE NOT t.tgisinternal),
  (SELECT string_agg(format('policy %s.%s %s %s %s', schemaname, tablename, policyname, roles, qual), E'\n'
     ORDER BY 1) FROM pg_policies),
  (SELECT string_agg(format('event trigger %s %s %s %s', evtname, evtowner::regrole, evtevent, evtenabled), E'\n'
     ORDER BY 1) FROM pg_event_trigger),
  (SELECT string_agg(format('publication %s %s.%s', pubname, schemaname, tablename), E'\n' ORDER BY 1)
     FROM pg_publication_tables),
  (SELECT string_agg(format('publication owner %s %s', pubname, pubowner::regrole), E'\n' ORDER BY 1)
     FROM pg_publication),
  (SELECT string_agg(format('default acl %s %s %s %s', defaclrole::regrole, defaclnamespace::regnamespace,
     defaclobjtype, defaclacl), E'\n' ORDER BY 1) FROM pg_default_acl),
  (SELECT string_agg(format('schema %s %s %s', nspname, nspowner::regrole, nspacl), E'\n' ORDER BY 1)
     FROM pg_namespace),
  (SELECT string_agg(format('extension %s %s %s', extname, extowner::regrole, extnamespace::regnamespace),
     E'\n' ORDER BY 1) FROM pg_extension),
  (SELECT 'auth.schema_migrations ' || string_agg(version, ',' ORDER BY version) FROM auth.schema_migrations),
  (SELECT 'storage.migrations ' || string_agg(name, ',' ORDER BY name) FROM storage.migrations),
  (SELECT 'realtime.schema_migrations ' || string_agg(version::text, ',' ORDER BY version)
     FROM realtime.schema_migrations))
"#;

/// The tables of the app and of the users.
const TABLES: &[&str] = &[
    "auth.users",
    "auth.refresh_tokens",
    "storage.buckets",
    "storage.objects",
    "public.profiles",
    "public.documents",
    "public.billing",
    "public.messages",
];

/// A query of the rows of `tables`: each one's count and a digest of its rows.
fn rows_of(tables: &[&str]) -> String {
    let each: Vec<String> = tables
        .iter()
        .map(|t| format!("(SELECT '{t} ' || count(*) || ' ' || coalesce(md5(string_agg(r::text, ',' ORDER BY r::text)), '') FROM {t} r)"))
        .collect();
    format!("SELECT concat_ws(E'\\n', {})", each.join(", "))
}

/// The project's damage: rows deleted, a table dropped, users deleted.
const DAMAGE: &str = "
DELETE FROM public.documents;
DELETE FROM public.messages WHERE id % 2 = 0;
DROP TABLE public.billing;
DELETE FROM storage.objects WHERE owner IN (SELECT id FROM auth.users WHERE email LIKE 'user1%');
DELETE FROM public.messages WHERE author IN (SELECT id FROM auth.users WHERE email LIKE 'user1%');
DELETE FROM auth.users WHERE email LIKE 'user1%';
";

struct Project {
    f: Fixture,
    name: String,
    secret: String,
    creds: DbCredentials,
}

async fn project(major: u32) -> Project {
    let f = fixture(major).await;
    let (secret, creds) = f.project().await;
    Project { name: creds.dbname.clone(), f, secret, creds }
}

impl Project {
    fn state(&self) -> String {
        self.f.server.pg.psql(&self.name, PLATFORM_STATE).expect("the platform's state")
    }

    fn rows(&self) -> String {
        self.superuser(&rows_of(TABLES))
    }

    fn superuser(&self, sql: &str) -> String {
        self.f.server.pg.psql(&self.name, sql).expect(sql)
    }

    /// Runs `sql` as `postgres`, as the app's owner would.
    async fn as_postgres(&self, sql: &str) {
        let client = self.creds.connect(Duration::from_secs(5)).await.expect("connect as postgres");
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", ops_shared::postgres::describe(&e)));
    }

    /// The tables whose rows, counted now as the superuser, differ from `backup`'s counts.
    fn differences(&self, backup: &Manifest) -> Vec<TableRows> {
        let rows = backup.tables.iter().map(|t| {
            let count = format!("SELECT count(*) FROM ONLY {}.{}", quote_ident(&t.schema), quote_ident(&t.table));
            let live = self.f.server.pg.psql(&self.name, &count).ok().and_then(|n| n.parse().ok());
            TableRows { table: format!("{}.{}", t.schema, t.table), backup: t.rows, live }
        });
        rows.filter(TableRows::differs).collect()
    }

    fn confirm(&self) -> String {
        format!("{}/{}", self.creds.host, self.creds.dbname)
    }

    fn request(&self, backup: &str) -> RestoreRequest {
        RestoreRequest {
            backup_key: backup.to_owned(),
            target_secret: self.secret.clone(),
            confirm: Some(self.confirm()),
            jobs: 1,
            health_urls: Vec::new(),
            // These tests are of the restore itself; `dr_tested` tests the restore test first.
            untested: true,
        }
    }

    /// The ARN of the project's secret, which keys its restore journal.
    async fn secret_arn(&self) -> String {
        let described = self.f.aws.secrets.describe_secret().secret_id(&self.secret).send().await;
        described.expect("describe").arn().expect("arn").to_owned()
    }

    async fn journal(&self) -> Option<Journal> {
        let key = dr_restore::journal_key(&self.secret_arn().await);
        let body = self.f.store().get(&key).await.ok()?.collect().await.ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// The keys of the safety backups `dr restore` took.
    async fn safety_backups(&self) -> Vec<String> {
        let listed = self.f.store().list(&self.f.prefix).await.expect("list");
        listed
            .into_iter()
            .map(|o| o.key)
            .filter(|key| key.ends_with(".dump") && key.contains(&format!("-{}-", dr_restore::SAFETY_LABEL)))
            .collect()
    }

    async fn restore(&self, request: &RestoreRequest) -> Result<RestoreOutcome, RestoreError> {
        let verifier = self.f.verifier(&self.secret);
        // --untested: no restore test runs, so no staging server of its own.
        let staging = self.f.verifier(&self.secret);
        let safety = self.f.backup(&self.secret);
        let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
        let engines = Engines { verifier: &verifier, staging: &staging, safety: &safety, http: &http };
        dr_restore::restore(&engines, request, &Progress::quiet()).await
    }
}

/// A backup of the project, the project damaged (rows deleted, a table dropped, users
/// deleted), `dr restore` as `postgres`: the app's rows and the users are back, profiles once
/// each (the trigger on `auth.users` did not fire again), and the platform's objects, owners,
/// event triggers, migrations tables, publication and privileges are exactly as before.
async fn restore_into_the_live_project(major: u32, jobs: u32) {
    let p = project(major).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("the backup as postgres");
    let state = p.state();
    let rows = p.rows();
    let anon_reads_billing = "SELECT has_table_privilege('anon', 'public.billing', 'SELECT')";
    assert_eq!(p.superuser(anon_reads_billing), "f");
    assert!(state.contains("publication supabase_realtime public.messages"), "{state}");
    assert!(state.contains("trigger auth.users on_auth_user_created"), "{state}");

    p.as_postgres(DAMAGE).await;
    assert_eq!(p.superuser("SELECT count(*) FROM auth.users"), "29", "users deleted");
    let damaged = p.differences(&manifest);

    let request = RestoreRequest { jobs, ..p.request(&manifest.key) };
    let outcome = p.restore(&request).await.expect("dr restore as postgres");
    assert!(outcome.passed && outcome.jobs == jobs, "{:#?}", outcome.checks);
    // No dr assess, no freeze: the loss is worked out from the safety backup's counts, to now.
    let loss = outcome.loss.as_ref().expect("the data lost");
    assert_eq!((loss.since, loss.frozen), (manifest.started_at, false), "{loss:?}");
    assert!(outcome.loss_source.contains("when the restore began"), "{}", outcome.loss_source);
    assert_eq!(loss.tables, damaged);
    let live = |table: &str| damaged.iter().find(|t| t.table == table).map(|t| t.live);
    assert_eq!((live("auth.users"), live("public.billing")), (Some(Some(29)), Some(None)), "{damaged:?}");
    assert_eq!(live("public.documents"), Some(Some(0)), "{damaged:?}");
    assert!(outcome.next_step.starts_with("writes were not stopped"), "{}", outcome.next_step);
    assert_eq!(p.rows(), rows, "the app's rows and the users are back, each once");
    assert_eq!(p.superuser(anon_reads_billing), "f", "anon still cannot read public.billing");
    let after = p.state();
    let differences: Vec<_> = diff(&state, &after);
    assert!(differences.is_empty(), "changed by the restore:\n{}", differences.join("\n"));

    // The journal is the secret's ARN's, though its name was typed.
    let journal = p.journal().await.expect("the journal is keyed by the secret's ARN");
    assert_eq!((journal.phase, journal.target_secret), (Phase::Finished, p.secret_arn().await));
    assert_eq!(p.safety_backups().await, std::slice::from_ref(&outcome.safety_backup_key));
}

/// The lines of `before` and `after` that are not in both.
fn diff(before: &str, after: &str) -> Vec<String> {
    let before: Vec<&str> = before.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    let gone = before.iter().filter(|l| !after.contains(l)).map(|l| format!("- {l}"));
    let new = after.iter().filter(|l| !before.contains(l)).map(|l| format!("+ {l}"));
    gone.chain(new).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_15_dr_restore_into_the_live_project_brings_back_the_app_and_leaves_the_platform() {
    restore_into_the_live_project(15, 1).await;
}

/// The same with parallel jobs (not one transaction: the objects, then the rows side by side,
/// then the indexes, constraints, triggers and policies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_15_dr_restore_into_the_live_project_with_parallel_jobs() {
    restore_into_the_live_project(15, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_17_dr_restore_into_the_live_project_brings_back_the_app_and_leaves_the_platform() {
    restore_into_the_live_project(17, 1).await;
}

/// A statement fails late in the restore (after the app's tables were dropped and made again,
/// `auth` and `storage` emptied and every row loaded): the project is exactly as it was
/// before the restore, its damage included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_in_the_middle_changes_nothing() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.as_postgres(DAMAGE).await;
    // The platform made a relation named as the app's primary key index on public.messages:
    // the restore's ADD CONSTRAINT messages_pkey, one of its last statements, fails.
    p.superuser(
        "ALTER TABLE public.messages DROP CONSTRAINT messages_pkey; \
         CREATE TABLE public.messages_pkey (id int); ALTER TABLE public.messages_pkey OWNER TO supabase_admin",
    );
    let state = p.state();
    // public.billing is dropped: the rest of the app's tables.
    let remaining: Vec<&str> = TABLES.iter().copied().filter(|t| *t != "public.billing").collect();
    let rows = p.superuser(&rows_of(&remaining));
    assert!(rows.contains("auth.users 29 "), "{rows}");

    let outcome = p.restore(&p.request(&manifest.key)).await.expect("the restore ran");
    assert!(!outcome.passed && outcome.exit_code() == 1, "{outcome:?}");
    let failed = outcome.checks.iter().find(|c| c.name == "pg_restore succeeds").expect("the restore's check");
    assert!(!failed.passed && failed.detail.contains("messages_pkey"), "{failed:?}");
    assert!(failed.detail.contains("rolled back") && failed.detail.contains("nothing was changed"), "{failed:?}");

    let rows_after = p.superuser(&rows_of(&remaining));
    assert_eq!(rows_after, rows, "no row changed");
    let differences = diff(&state, &p.state());
    assert!(differences.is_empty(), "changed by the failed restore:\n{}", differences.join("\n"));
    assert_eq!(p.superuser("SELECT to_regclass('public.billing') IS NULL"), "t", "the dropped table is still gone");
    assert_eq!(p.journal().await.expect("journal").phase, Phase::Failed);
}

/// Two restores into the same project at once: one runs, the other stops before touching
/// anything and says another is running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restores_at_once_cannot_both_proceed() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.as_postgres(DAMAGE).await;
    let request = p.request(&manifest.key);
    let (first, second) = tokio::join!(p.restore(&request), p.restore(&request));
    let (ran, refused) = match (first, second) {
        (Ok(ran), Err(refused)) | (Err(refused), Ok(ran)) => (ran, refused),
        other => panic!("one run was to proceed and one to be refused: {other:?}"),
    };
    assert!(ran.passed, "{:?}", ran.failures);
    assert!(matches!(refused, RestoreError::Busy { .. }) && refused.exit_code() == 2, "{refused}");
    assert!(refused.to_string().contains("another opsctl dr restore") && refused.to_string().contains("session"));
    assert_eq!(p.safety_backups().await.len(), 1, "the refused run took no safety backup");
    assert_eq!(p.superuser("SELECT count(*) FROM auth.users"), "40");
    // The lock went with the run: the next one proceeds.
    let again = p.restore(&request).await.expect("a later run");
    assert!(again.passed, "{:?}", again.failures);
}

/// An unfinished restore whose safety backup is gone from the bucket: the next run (the
/// secret typed by name, the journal found by the secret's ARN) stops before touching
/// anything and says what is missing and how to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_restore_stops_when_its_safety_backup_is_gone() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.as_postgres(DAMAGE).await;
    let arn = p.secret_arn().await;
    let gone = format!("{}{}/2026/01/01/20260101T000000Z-pre-restore-gone.dump", p.f.prefix, p.name);
    let journal = Journal {
        target_secret: arn.clone(),
        database: p.name.clone(),
        backup_key: manifest.key.clone(),
        safety_backup_key: gone.clone(),
        phase: Phase::Restoring,
        started_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        failures: Vec::new(),
    };
    let key = dr_restore::journal_key(&arn);
    let body = serde_json::to_vec(&journal).expect("json");
    p.f.store().put(&key, body, "application/json").await.expect("an interrupted run's journal");
    let rows = p.superuser("SELECT count(*) FROM auth.users");

    let err = p.restore(&p.request(&manifest.key)).await.expect_err("no safety backup to rely on");
    assert!(matches!(err, RestoreError::SafetyBackupGone { .. }) && err.exit_code() == 1, "{err}");
    let message = err.to_string();
    assert!(message.contains(&gone) && message.contains(&key) && message.contains("nothing was touched"), "{message}");
    assert_eq!(p.superuser("SELECT count(*) FROM auth.users"), rows, "nothing restored");
    assert!(p.safety_backups().await.is_empty(), "no new safety backup of the partly restored database");
    assert_eq!(p.journal().await.expect("journal").phase, Phase::Restoring, "the journal is kept");
}

/// `--confirm` names the host as well as the database: on Supabase every database is called
/// `postgres`, so the name alone would confirm any project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_names_the_host_and_the_database() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.as_postgres("DELETE FROM public.documents").await;
    let other_host = format!("db.abcd.supabase.co/{}", p.name);
    for given in [p.name.as_str(), other_host.as_str(), "postgres"] {
        let request = RestoreRequest { confirm: Some(given.to_owned()), ..p.request(&manifest.key) };
        let err = p.restore(&request).await.expect_err("not this project");
        assert!(matches!(err, RestoreError::WrongTarget { .. }) && err.to_string().contains(&p.confirm()), "{err}");
    }
    assert_eq!(p.superuser("SELECT count(*) FROM public.documents"), "0", "nothing restored");
    assert!(p.safety_backups().await.is_empty());
    let outcome = p.restore(&p.request(&manifest.key)).await.expect("confirmed with host and database");
    assert!(outcome.passed, "{:?}", outcome.failures);
    assert_eq!(p.superuser("SELECT count(*) FROM public.documents"), "1");
}

/// A platform object that depends on an app table the restore makes again (a view in
/// `realtime` over `public.messages`, made after the backup) would go with the drops, and the
/// backup does not hold it: the restore stops, naming it, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_object_the_backup_does_not_hold_stops_the_restore() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.superuser(
        "CREATE VIEW realtime.recent_messages AS SELECT id, body FROM public.messages; \
         ALTER VIEW realtime.recent_messages OWNER TO supabase_realtime_admin",
    );
    p.as_postgres("DELETE FROM public.documents").await;
    let state = p.state();
    let rows = p.rows();

    let outcome = p.restore(&p.request(&manifest.key)).await.expect("the restore ran");
    assert!(!outcome.passed, "{outcome:?}");
    let failed = outcome.checks.iter().find(|c| c.name == "pg_restore succeeds").expect("the restore's check");
    assert!(
        failed.detail.contains("view realtime.recent_messages") && failed.detail.contains("does not hold"),
        "{failed:?}"
    );
    assert_eq!(p.rows(), rows, "no row changed");
    let differences = diff(&state, &p.state());
    assert!(differences.is_empty(), "changed by the refused restore:\n{}", differences.join("\n"));
}

/// With parallel jobs a failure while the rows load (the platform added a column to
/// `auth.users` that the backup's rows lack) leaves the project partly restored, as `--help`
/// warns: the outcome says so and names the publication's tables to put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_restore_that_fails_says_so_and_what_the_publication_lacks() {
    let p = project(15).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("backup");
    p.superuser(
        "ALTER TABLE auth.users ADD COLUMN must_have text NOT NULL DEFAULT 'x'; \
         ALTER TABLE auth.users ALTER COLUMN must_have DROP DEFAULT",
    );
    let request = RestoreRequest { jobs: 2, ..p.request(&manifest.key) };
    let outcome = p.restore(&request).await.expect("the restore ran");
    assert!(!outcome.passed, "{outcome:?}");
    let failed = outcome.checks.iter().find(|c| c.name == "pg_restore succeeds").expect("the restore's check");
    assert!(failed.detail.contains("must_have") && failed.detail.contains("partly restored"), "{failed:?}");
    assert!(failed.detail.contains("ALTER PUBLICATION supabase_realtime ADD TABLE public.messages"), "{failed:?}");
}

/// A restore into a frozen project re-creates the app's tables with the dump's privileges:
/// they are frozen again before the restore ends, so the Data API still cannot write until
/// `dr thaw`, which then lets it write again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_frozen_project_leaves_it_frozen_until_thaw() {
    use opsctl::dr;
    let p = project(17).await;
    let (manifest, _) = p.f.backup(&p.secret).run(None, None).await.expect("the backup as postgres");
    let store = ops_shared::secret_versions::SecretsManagerVersions::new(p.f.aws.secrets.clone());
    let arn = p.secret_arn().await;
    let publisher = ops_shared::SnsAlertPublisher::new(p.f.aws.sns.clone(), p.f.topic.clone());
    let (creds, client) = dr::connect(&store, &p.secret).await.expect("connect");
    let request = dr::FreezeRequest {
        secret_arn: arn.clone(),
        who: "drill".to_owned(),
        reason: "restore drill".to_owned(),
        thaw_command: "opsctl dr thaw".to_owned(),
    };
    dr::freeze(&client, &creds, &p.f.store(), &publisher, &request).await.expect("freeze");
    let user = p.superuser("SELECT id FROM auth.users ORDER BY email LIMIT 1");
    let insert = format!("INSERT INTO public.messages (author, body) VALUES ('{user}', 'while frozen')");
    let write = || p.f.server.data_api_write(&p.name, "service_role", &user, &insert);
    assert!(write().await.is_err(), "frozen before the restore");

    let outcome = p.restore(&p.request(&manifest.key)).await.expect("dr restore while frozen");
    assert!(outcome.passed, "{:#?}", outcome.checks);
    // Frozen, no dr assess: the window ends at the freeze, and the next step is its thaw.
    let freeze = dr::current_freeze(&p.f.store(), &arn).await.expect("the record").expect("frozen");
    let loss = outcome.loss.as_ref().expect("the data lost");
    assert_eq!((loss.until, loss.frozen, loss.tables.len()), (freeze.frozen_at, true, 0), "{loss:?}");
    assert!(outcome.next_step.ends_with("allow writes again with opsctl dr thaw"), "{}", outcome.next_step);
    assert!(
        outcome.checks.iter().any(|c| c.name.starts_with("writes stopped again") && c.passed),
        "{:#?}",
        outcome.checks
    );
    let refused = write().await.expect_err("the restored tables are frozen again");
    assert!(refused.contains("permission denied"), "{refused}");

    let (creds, client) = dr::connect(&store, &p.secret).await.expect("connect");
    dr::thaw(&client, &creds, &p.f.store(), &publisher, &arn, "drill").await.expect("thaw");
    assert_eq!(write().await, Ok(1), "writes again after the thaw");
}
