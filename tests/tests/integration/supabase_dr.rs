//! `opsctl dr restore` into a live Supabase project, connected as the demoted `postgres`
//! (servers built as `ops_testkit::supabase_schema` builds them, PostgreSQL 15 and 17): the
//! app and the users come back, and what belongs to the platform stays exactly as it was.

use std::time::Duration;

use ops_shared::postgres::DbCredentials;
use opsctl::dr_restore::{self, Engines, RestoreError, RestoreOutcome, RestoreRequest};
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

/// The rows of the app and of the users, as digests.
const ROWS: &str = r#"
SELECT concat_ws(E'\n',
  (SELECT 'auth.users ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM auth.users t),
  (SELECT 'auth.refresh_tokens ' || count(*) FROM auth.refresh_tokens),
  (SELECT 'storage.objects ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
     FROM storage.objects t),
  (SELECT 'public.profiles ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
     FROM public.profiles t),
  (SELECT 'public.documents ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
     FROM public.documents t),
  (SELECT 'public.billing ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
     FROM public.billing t),
  (SELECT 'public.messages ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY t::text))
     FROM public.messages t))
"#;

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
        self.f.server.pg.psql(&self.name, ROWS).expect("the rows")
    }

    fn superuser(&self, sql: &str) -> String {
        self.f.server.pg.psql(&self.name, sql).expect(sql)
    }

    /// Runs `sql` as `postgres`, as the app's owner would.
    async fn as_postgres(&self, sql: &str) {
        let client = self.creds.connect(Duration::from_secs(5)).await.expect("connect as postgres");
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", ops_shared::postgres::describe(&e)));
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
        }
    }

    async fn restore(&self, request: &RestoreRequest) -> Result<RestoreOutcome, RestoreError> {
        let verifier = self.f.verifier(&self.secret);
        let safety = self.f.backup(&self.secret);
        let http = ops_shared::http::client(Duration::from_secs(5)).expect("http");
        let engines = Engines { verifier: &verifier, safety: &safety, http: &http };
        dr_restore::restore(&engines, request, &Progress::quiet()).await
    }
}

/// A backup of the project, the project damaged (rows deleted, a table dropped, users
/// deleted), `dr restore` as `postgres`: the app's rows and the users are back, profiles once
/// each (the trigger on `auth.users` did not fire again), and the platform's objects, owners,
/// event triggers, migrations tables, publication and privileges are exactly as before.
async fn restore_into_the_live_project(major: u32) {
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

    let outcome = p.restore(&p.request(&manifest.key)).await.expect("dr restore as postgres");
    assert!(outcome.passed, "{:#?}", outcome.checks);
    assert_eq!(p.rows(), rows, "the app's rows and the users are back, each once");
    assert_eq!(p.superuser(anon_reads_billing), "f", "anon still cannot read public.billing");
    let after = p.state();
    let differences: Vec<_> = diff(&state, &after);
    assert!(differences.is_empty(), "changed by the restore:\n{}", differences.join("\n"));
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
    restore_into_the_live_project(15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_17_dr_restore_into_the_live_project_brings_back_the_app_and_leaves_the_platform() {
    restore_into_the_live_project(17).await;
}
