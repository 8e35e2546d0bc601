//! `dr freeze` and `dr thaw` on the Supabase-built servers (PostgreSQL 15 and 17), connected as
//! the demoted `postgres`: the Data API's writes, made as PostgREST makes them, stop while
//! reads go on; a table a restore makes again is frozen again; thaw puts every privilege and
//! setting back as it was; the reserved roles are never altered; the alerts reach the topic.

use std::time::Duration;

use ops_shared::alert::Status;
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::postgres::{DbCredentials, describe};
use ops_shared::secret_versions::SecretsManagerVersions;
use ops_shared::{Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, unique};
use ops_testkit::names;
use ops_testkit::supabase_schema::{self, SupabaseServer};
use opsctl::dr::{self, FreezeRecord, FreezeRequest};
use opsctl::notice::{Sent, Told};
use tokio_postgres::Client;

/// The roles Supabase's `supautils.reserved_roles` keeps `postgres` from altering
/// (`ansible/files/postgresql_config/supautils.conf.j2`).
const RESERVED_ROLES: &[&str] = &[
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_storage_admin",
    "supabase_read_only_user",
    "supabase_replication_admin",
    "dashboard_user",
    "pgbouncer",
    "service_role",
    "authenticator",
    "authenticated",
    "anon",
];

/// The writes the Data API makes for the app, one per role; `anon` also through a view.
fn api_writes(user: &str) -> Vec<(&'static str, String)> {
    vec![
        ("anon", "INSERT INTO public.guestbook (body) VALUES ('signed by a visitor')".to_owned()),
        ("anon", "INSERT INTO public.guestbook_entries (body) VALUES ('signed through the view')".to_owned()),
        ("authenticated", format!("INSERT INTO public.messages (author, body) VALUES ('{user}', 'posted')")),
        ("authenticated", "UPDATE public.profiles SET first_name = 'Renamed' WHERE id = auth.uid()".to_owned()),
        ("service_role", format!("UPDATE public.billing SET plan = 'team' WHERE user_id = '{user}'")),
        ("service_role", "DELETE FROM public.messages WHERE body = 'posted'".to_owned()),
    ]
}

/// Every relation's privileges and its columns' (sorted: GRANT may put an entry back at the
/// end), in every schema but the system's, and the settings of the database and its roles.
async fn privileges_and_settings(client: &Client, db: &str) -> Vec<String> {
    let rows = client
        .query(
            "SELECT format('%s %s %s', c.oid::regclass, \
                    array_to_string(ARRAY(SELECT unnest(c.relacl)::text ORDER BY 1), ',', 'NULL'), \
                    (SELECT string_agg(t.attname || '=' || array_to_string(ARRAY(SELECT unnest(t.attacl)::text \
                     ORDER BY 1), ','), ' ' ORDER BY t.attnum) FROM pg_attribute t \
                     WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
             UNION ALL \
             SELECT format('setting %s %s %s', d.datname, coalesce(r.rolname, '-'), s.setconfig) \
             FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase \
             LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = $1 OR s.setdatabase = 0 \
             ORDER BY 1",
            &[&db],
        )
        .await
        .expect("privileges");
    rows.iter().map(|row| row.get(0)).collect()
}

/// The reserved roles as the catalog has them: attributes, settings, memberships.
async fn reserved_roles(client: &Client) -> Vec<String> {
    let rows = client
        .query(
            "SELECT format('%s', r) FROM pg_roles r WHERE r.rolname = ANY ($1) \
             UNION ALL SELECT format('%s %s %s', s.setdatabase, s.setrole::regrole, s.setconfig) \
             FROM pg_db_role_setting s WHERE s.setrole IN (SELECT oid FROM pg_roles WHERE rolname = ANY ($1)) \
             UNION ALL SELECT format('%s in %s (admin %s)', m.member::regrole, m.roleid::regrole, m.admin_option) \
             FROM pg_auth_members m WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname = ANY ($1)) \
                OR m.roleid IN (SELECT oid FROM pg_roles WHERE rolname = ANY ($1)) \
             ORDER BY 1",
            &[&RESERVED_ROLES],
        )
        .await
        .expect("reserved roles");
    rows.iter().map(|row| row.get(0)).collect()
}

/// A project of its own on the Supabase server of `major`, with what an app adds: a table
/// without row-level security that visitors sign (and its sequence), an updatable view of it,
/// a column-level grant (users may change their first name only), a privilege held with the
/// grant option, and one passed on by its grantee.
struct Project {
    alerts: Inbox,
    publisher: SnsAlertPublisher,
    objects: S3Objects,
    store: SecretsManagerVersions,
    secret: String,
    arn: String,
    server: &'static SupabaseServer,
    creds: DbCredentials,
}

const APP_ADDITIONS: &str = "
CREATE TABLE public.guestbook (id bigserial PRIMARY KEY, body text NOT NULL);
CREATE VIEW public.guestbook_entries AS SELECT id, body FROM public.guestbook;
REVOKE UPDATE ON public.profiles FROM authenticated;
GRANT UPDATE (first_name) ON public.profiles TO authenticated;
GRANT INSERT ON public.messages TO service_role WITH GRANT OPTION;
CREATE TABLE public.partner_notes (body text NOT NULL);
GRANT INSERT ON public.partner_notes TO service_role WITH GRANT OPTION;
SET ROLE service_role;
GRANT INSERT ON public.partner_notes TO authenticated;
RESET ROLE;
";

async fn project(major: u32) -> Project {
    let aws = Aws::new(ops_testkit::shared()).await;
    let server = ops_testkit::shared().supabase(major);
    let db = unique("freeze").replace('-', "_");
    let creds = server.create_project(&db).expect("a Supabase project");
    assert_eq!(creds.username, supabase_schema::POSTGRES);
    let owner = creds.connect(Duration::from_secs(5)).await.expect("connect as postgres");
    owner.batch_execute(APP_ADDITIONS).await.expect("the app's additions");
    let secret = unique("freeze-secret");
    let value = serde_json::to_string(&creds).expect("json");
    let created = aws.secrets.create_secret().name(&secret).secret_string(value).send().await.expect("secret");
    let topic = aws.create_topic(&unique("freeze-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    Project {
        publisher: SnsAlertPublisher::new(aws.sns.clone(), topic),
        objects: S3Objects::new(aws.s3.clone(), names::backup_bucket()),
        store: SecretsManagerVersions::new(aws.secrets.clone()),
        arn: created.arn.expect("arn"),
        alerts,
        secret,
        server,
        creds,
    }
}

impl Project {
    fn db(&self) -> &str {
        &self.creds.dbname
    }

    /// `opsctl dr freeze --reason <reason>`, as a new opsctl run.
    async fn freeze(&self, reason: &str) -> dr::WriteSwitch {
        assert_eq!(dr::secret_arn(&self.store, &self.secret).await.expect("arn"), self.arn);
        let (creds, client) = dr::connect(&self.store, &self.secret).await.expect("connect");
        let request = FreezeRequest {
            secret_arn: self.arn.clone(),
            who: "arn:aws:sts::123456789012:assumed-role/Ops/alice".to_owned(),
            reason: reason.to_owned(),
            thaw_command: "opsctl dr thaw --prefix cineview".to_owned(),
        };
        dr::freeze(&client, &creds, &self.objects, &self.publisher, &request).await.expect("freeze")
    }

    /// `opsctl dr thaw`, as a new opsctl run.
    async fn thaw(&self) -> dr::WriteSwitch {
        let (creds, client) = dr::connect(&self.store, &self.secret).await.expect("connect");
        dr::thaw(&client, &creds, &self.objects, &self.publisher, &self.arn, "OS user bob").await.expect("thaw")
    }

    async fn record(&self) -> FreezeRecord {
        let body = self.objects.get(&dr::freeze_key(&self.arn)).await.expect("record").collect().await.expect("body");
        serde_json::from_slice(&body).expect("a freeze record")
    }

    /// A session of the owner whose transactions may write (the database's default is
    /// read-only while frozen).
    async fn owner(&self) -> Client {
        let client = self.creds.connect(Duration::from_secs(5)).await.expect("connect as postgres");
        client.batch_execute("SET default_transaction_read_only = off").await.expect("read-write session");
        client
    }
}

async fn the_data_api_stops_writing_while_frozen_and_thaw_puts_every_privilege_back(major: u32) {
    let project = project(major).await;
    let (server, db) = (project.server, project.db());
    let owner = project.owner().await;
    let user: String =
        owner.query_one("SELECT id::text FROM auth.users ORDER BY email LIMIT 1", &[]).await.expect("a user").get(0);
    let before = privileges_and_settings(&owner, db).await;
    let roles_before = reserved_roles(&owner).await;
    for (role, sql) in api_writes(&user) {
        let written =
            server.data_api_write(db, role, &user, &sql).await.unwrap_or_else(|e| panic!("{role}: {sql}: {e}"));
        assert!(written > 0, "{role}: {sql}");
    }
    let api_session = server.authenticator(db).connect(Duration::from_secs(5)).await.expect("the Data API's pool");
    let platform_session = server.pg.superuser(db).connect(Duration::from_secs(5)).await.expect("a platform session");

    let frozen = project.freeze("drill: the audit log was deleted").await;
    assert!(frozen.frozen && frozen.read_only && frozen.changed, "{frozen:?}");
    assert!(frozen.privileges > 0 && frozen.sessions_ended >= 1 && frozen.sessions_left >= 1, "{frozen:?}");
    assert_eq!(frozen.told, Told { ops: Sent::Sent, stakeholders: Sent::NotDue }, "ops only: no stakeholders' topic");
    let owner = project.owner().await;
    assert!(frozen.not_done.iter().any(|line| line.contains("handle_new_user") && line.contains("SECURITY DEFINER")));
    assert!(api_session.simple_query("SELECT 1").await.is_err(), "the Data API's sessions were ended");
    platform_session.simple_query("SELECT 1").await.expect("a superuser's session is beyond postgres, and left");

    for (role, sql) in api_writes(&user) {
        let refused = server.data_api_write(db, role, &user, &sql).await.expect_err(&format!("{role} may not: {sql}"));
        assert!(refused.contains("permission denied") && refused.contains("42501"), "{role}: {sql}: {refused}");
    }
    // A privilege service_role passed on stays with it and with whom it went to, and says so.
    let note = "INSERT INTO public.partner_notes (body) VALUES ('note')";
    server.data_api_write(db, "anon", &user, note).await.expect_err("anon's own grant was taken");
    server.data_api_write(db, "authenticated", &user, note).await.expect("a grant passed on is left");
    assert!(
        frozen
            .not_done
            .iter()
            .any(|line| line.starts_with("INSERT on public.partner_notes: service_role passed it on")),
        "{:?}",
        frozen.not_done
    );
    let count = |role: &'static str, sql: &'static str| {
        let user = user.clone();
        async move { server.data_api_count(db, role, &user, sql).await.unwrap_or_else(|e| panic!("{role} reads: {e}")) }
    };
    let users = i64::from(supabase_schema::USERS);
    assert_eq!(count("anon", "SELECT count(*) FROM public.profiles").await, users);
    assert_eq!(count("anon", "SELECT count(*) FROM public.guestbook_entries").await, 2);
    assert_eq!(count("authenticated", "SELECT count(*) FROM public.messages").await, users);
    assert_eq!(count("service_role", "SELECT count(*) FROM public.billing WHERE plan = 'team'").await, 1);
    let direct = project.creds.connect(Duration::from_secs(5)).await.expect("a direct session");
    let refused = direct.execute("INSERT INTO public.guestbook (body) VALUES ('direct')", &[]).await.expect_err("ro");
    assert!(describe(&refused).contains("read-only transaction"), "{}", describe(&refused));
    let sequence: bool = owner
        .query_one("SELECT has_sequence_privilege('anon', 'public.guestbook_id_seq', 'USAGE')", &[])
        .await
        .expect("sequence privilege")
        .get(0);
    assert!(!sequence, "nextval is a write too");

    let notes = project.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let alert = notes[0].alert();
    assert_eq!((alert.severity, alert.status), (Severity::Warning, Status::Firing));
    assert_eq!(alert.title, format!("Writes stopped: {db}"));
    for said in
        ["assumed-role/Ops/alice", "drill: the audit log was deleted", "opsctl dr thaw --prefix cineview", " UTC"]
    {
        assert!(alert.summary.contains(said), "{said}: {}", alert.summary);
    }
    let record = project.record().await;
    assert!(record.frozen() && record.revoked.len() == frozen.privileges, "{record:?}");
    let since = dr::minute(record.frozen_at);
    assert!(alert.summary.contains(&format!(" at {since}: drill: the audit log was deleted")), "{}", alert.summary);
    assert_eq!(alert.details["frozen_at"], ops_shared::alert::rfc3339(record.frozen_at));
    assert_eq!(record.thaw_command, "opsctl dr thaw --prefix cineview", "the record says how to thaw");
    assert_eq!((record.secret.as_str(), record.read_only_before.as_deref()), (project.arn.as_str(), None));

    let again = project.freeze("a second reason").await;
    assert!(again.frozen && !again.changed && again.privileges == 0 && again.told == Told::default(), "{again:?}");
    let kept = project.record().await;
    assert_eq!((kept.reason.as_str(), kept.frozen_at), (record.reason.as_str(), record.frozen_at), "first record kept");
    assert!(project.alerts.receive(0, Duration::from_millis(500)).await.is_empty(), "one alert per freeze");

    // A restore makes the table and the view again, with the dump's (unfrozen) privileges.
    project
        .owner()
        .await
        .batch_execute(
            "DROP VIEW public.guestbook_entries; DROP TABLE public.guestbook; \
             CREATE TABLE public.guestbook (id bigserial PRIMARY KEY, body text NOT NULL); \
             CREATE VIEW public.guestbook_entries AS SELECT id, body FROM public.guestbook;",
        )
        .await
        .expect("made again");
    let (role, sql) = &api_writes(&user)[0];
    server.data_api_write(db, role, &user, sql).await.expect("the restored table is writable until frozen again");
    let refrozen = dr::reapply_freeze_if_frozen(&project.creds, &project.objects, &project.arn)
        .await
        .expect("re-freeze")
        .expect("frozen");
    assert!(refrozen.changed && refrozen.privileges > 0, "{refrozen:?}");
    server.data_api_write(db, role, &user, sql).await.expect_err("frozen again");
    assert_eq!(project.record().await.revoked, record.revoked, "the same privileges, recorded once");

    let thawed = project.thaw().await;
    assert!(!thawed.frozen && !thawed.read_only && thawed.changed, "{thawed:?}");
    assert_eq!((thawed.privileges, thawed.not_done.len(), &thawed.told.ops), (record.revoked.len(), 0, &Sent::Sent));
    for (role, sql) in api_writes(&user) {
        server
            .data_api_write(db, role, &user, &sql)
            .await
            .unwrap_or_else(|e| panic!("{role} writes again: {sql}: {e}"));
    }
    let owner = project.owner().await;
    let after = privileges_and_settings(&owner, db).await;
    assert_eq!(after, before, "every privilege and setting as before the freeze");
    assert_eq!(reserved_roles(&owner).await, roles_before, "no reserved role was altered");
    let again = project.thaw().await;
    assert!(!again.changed && again.privileges == 0 && again.told == Told::default(), "{again:?}");
    assert_eq!(privileges_and_settings(&owner, db).await, before);
    let record = project.record().await;
    assert_eq!((record.frozen(), record.thawed_by.as_deref()), (false, Some("OS user bob")));

    let notes = project.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let resolved = notes[0].alert();
    assert_eq!((resolved.status, resolved.dedup_key), (Status::Resolved, alert.dedup_key));
    assert!(resolved.summary.contains("OS user bob"), "{}", resolved.summary);
}

#[tokio::test]
async fn the_data_api_stops_writing_while_frozen_and_thaw_puts_every_privilege_back_15() {
    the_data_api_stops_writing_while_frozen_and_thaw_puts_every_privilege_back(15).await;
}

#[tokio::test]
async fn the_data_api_stops_writing_while_frozen_and_thaw_puts_every_privilege_back_17() {
    the_data_api_stops_writing_while_frozen_and_thaw_puts_every_privilege_back(17).await;
}
