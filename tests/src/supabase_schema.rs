//! A PostgreSQL server built as a Supabase project's is, and project databases on it.
//!
//! Written from Supabase's own scripts (github `supabase/postgres`): `migrations/db/migrate.sh`
//! (initdb's superuser is `supabase_admin`; the project database belongs to `postgres`),
//! `migrations/db/init-scripts/00000000000000-initial-schema.sql` (the `supabase_realtime`
//! publication, schema `extensions` with `uuid-ossp` and `pgcrypto`, the API roles and
//! `authenticator`, default privileges in `public`), `00000000000001-auth-schema.sql` and
//! `00000000000002-storage-schema.sql` (schemas `auth` and `storage`, their tables and admin
//! roles), `migrations/db/migrations/10000000000000_demote-postgres.sql` (`postgres` is
//! `NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS`, with ALL on the tables of `auth` and
//! `storage`), `20220126121436_finer-postgrest-triggers.sql` (event triggers `pgrst_ddl_watch`
//! and `pgrst_drop_watch`, run as `supabase_admin`), `20230201083204_grant_auth_roles_to_postgres.sql`,
//! `20240606060239_grant_predefined_roles_to_postgres.sql`,
//! `20240627101908_revoke_supabase_auth_admin_from_postgres.sql` and
//! `20250421084701_revoke_admin_roles_from_postgres.sql` (`postgres` holds no platform admin
//! role and no privilege on the migrations tables of `auth`, `storage` and `realtime`).
//!
//! What this cannot imitate: Supabase's `supautils` extension
//! (`ansible/files/postgresql_config/supautils.conf.j2`) is in no package here. On Supabase it
//! stops `postgres` from altering the reserved roles (`anon`, `authenticated`, `service_role`,
//! `authenticator`, the platform's admins) and lets it set `session_replication_role`. Here
//! `postgres` has CREATEROLE, so nothing stops it from altering those roles: the code must not
//! do so, and the tests check it did not. `session_replication_role` is granted to `postgres`
//! with `GRANT SET ON PARAMETER`, which has the same effect. The platform's services (GoTrue,
//! Storage, Realtime, PostgREST) do not run; their tables hold rows written as their roles.

use std::path::Path;

use ops_shared::postgres::{DbCredentials, describe, quote_ident};

use crate::pg::{Postgres, Server};

/// initdb's superuser on a Supabase server: the only superuser.
pub const SUPERUSER: &str = "supabase_admin";
/// The role a Supabase project hands its owner, and what the functions connect as.
pub const POSTGRES: &str = "postgres";
/// The role the Data API (PostgREST) logs in as before it switches to a request's role.
pub const AUTHENTICATOR: &str = "authenticator";
/// The roles the Data API switches to, per request.
pub const API_ROLES: &[&str] = &["anon", "authenticated", "service_role"];

pub const USERS: u32 = 40;
/// Keys in the large `jsonb` document (about 2 MB, stored out of line).
pub const DOCUMENT_KEYS: u32 = 20_000;

/// A server built as Supabase builds a project's, with `postgres` demoted.
pub struct SupabaseServer {
    pub pg: Postgres,
    postgres_password: String,
    authenticator_password: String,
}

impl SupabaseServer {
    /// initdb with `supabase_admin` as the superuser, then the cluster's roles.
    pub fn start(root: &Path, server: Server) -> Result<SupabaseServer, String> {
        let pg = Postgres::start_as(root, server, SUPERUSER)?;
        let password = || uuid::Uuid::new_v4().simple().to_string();
        let supabase = SupabaseServer { pg, postgres_password: password(), authenticator_password: password() };
        supabase.pg.psql("postgres", &supabase.roles_sql())?;
        Ok(supabase)
    }

    /// Credentials of `role` with `password` on database `dbname` of this server.
    fn login(&self, role: &str, password: &str, dbname: &str) -> DbCredentials {
        DbCredentials { username: role.to_owned(), password: password.to_owned().into(), ..self.pg.superuser(dbname) }
    }

    /// What a project's owner connects with: the demoted `postgres`.
    pub fn postgres(&self, dbname: &str) -> DbCredentials {
        self.login(POSTGRES, &self.postgres_password, dbname)
    }

    /// What the Data API logs in with.
    pub fn authenticator(&self, dbname: &str) -> DbCredentials {
        self.login(AUTHENTICATOR, &self.authenticator_password, dbname)
    }

    /// The platform's part of a new project: database `name` owned by `postgres`, with the
    /// schemas, roles' privileges, event triggers and publication Supabase creates. No app.
    pub fn create_platform(&self, name: &str) -> Result<DbCredentials, String> {
        let db = quote_ident(name);
        self.pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER {POSTGRES}"))?;
        self.pg.psql("postgres", &format!("GRANT ALL ON DATABASE {db} TO {POSTGRES}"))?;
        self.pg.psql(name, PLATFORM_SQL)?;
        Ok(self.postgres(name))
    }

    /// A project with the app in it: the platform's part, then the app's schema made by
    /// `postgres` (as migrations and the dashboard make it), then users signed up through the
    /// auth service and files through the storage service.
    pub fn create_project(&self, name: &str) -> Result<DbCredentials, String> {
        let creds = self.create_platform(name)?;
        self.pg.psql(name, &format!("SET ROLE {POSTGRES};\n{APP_SCHEMA_SQL}"))?;
        self.pg.psql(name, &platform_rows_sql())?;
        self.pg.psql(name, &format!("SET ROLE {POSTGRES};\n{}", app_rows_sql()))?;
        self.pg.psql(name, "ANALYZE")?;
        Ok(creds)
    }

    /// A transaction opened the way the Data API (PostgREST) opens one for a request with
    /// `role`'s JWT: logged in as `authenticator`, `BEGIN ISOLATION LEVEL READ COMMITTED READ
    /// WRITE` (READ ONLY for a GET), the role and the claims switched with `set_config(..., true)`
    /// (PostgREST/postgrest, `src/hasql/Hasql/Transaction/Private/SQL.hs`,
    /// `src/library/PostgREST/Query/PreQuery.hs`, `Query/SqlFragment.hs`).
    async fn data_api_transaction(
        &self,
        db: &str,
        write: bool,
        role: &str,
        sub: &str,
    ) -> Result<tokio_postgres::Client, String> {
        let client =
            self.authenticator(db).connect(std::time::Duration::from_secs(5)).await.map_err(|e| e.to_string())?;
        let mode = if write { "READ WRITE" } else { "READ ONLY" };
        client
            .batch_execute(&format!("BEGIN ISOLATION LEVEL READ COMMITTED {mode}"))
            .await
            .map_err(|e| describe(&e))?;
        let claims = serde_json::json!({"role": role, "sub": sub}).to_string();
        let method = if write { "POST" } else { "GET" };
        client
            .query(
                "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
                 set_config('request.jwt.claim.sub', $3, true), set_config('request.method', $4, true)",
                &[&role, &claims, &sub, &method],
            )
            .await
            .map_err(|e| describe(&e))?;
        Ok(client)
    }

    /// A write request (POST, PATCH, DELETE) of the Data API as `role` for user `sub`: the rows
    /// it wrote, or the database's refusal.
    pub async fn data_api_write(&self, db: &str, role: &str, sub: &str, sql: &str) -> Result<u64, String> {
        let client = self.data_api_transaction(db, true, role, sub).await?;
        let written = client.execute(sql, &[]).await.map_err(|e| describe(&e))?;
        client.batch_execute("COMMIT").await.map_err(|e| describe(&e))?;
        Ok(written)
    }

    /// A read request (GET) of `SELECT count(*) …`.
    pub async fn data_api_count(&self, db: &str, role: &str, sub: &str, sql: &str) -> Result<i64, String> {
        let client = self.data_api_transaction(db, false, role, sub).await?;
        let row = client.query_one(sql, &[]).await.map_err(|e| describe(&e))?;
        client.batch_execute("COMMIT").await.map_err(|e| describe(&e))?;
        Ok(row.get(0))
    }

    fn roles_sql(&self) -> String {
        let postgres_password = &self.postgres_password;
        let authenticator_password = &self.authenticator_password;
        format!(
            r#"
-- migrate.sh creates postgres; 10000000000000_demote-postgres.sql leaves it so:
CREATE ROLE postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS PASSWORD '{postgres_password}';
ALTER ROLE postgres SET search_path TO "$user", public, extensions;
-- 00000000000000-initial-schema.sql
CREATE ROLE supabase_replication_admin LOGIN REPLICATION;
CREATE ROLE supabase_read_only_user LOGIN BYPASSRLS;
GRANT pg_read_all_data TO supabase_read_only_user;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD '{authenticator_password}';
GRANT anon, authenticated, service_role TO authenticator;
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
-- 00000000000001-auth-schema.sql, 00000000000002-storage-schema.sql
CREATE ROLE supabase_auth_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION;
CREATE ROLE supabase_storage_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION;
CREATE ROLE supabase_realtime_admin NOINHERIT NOLOGIN NOREPLICATION;
CREATE ROLE supabase_functions_admin NOINHERIT CREATEROLE LOGIN NOREPLICATION;
CREATE ROLE dashboard_user NOSUPERUSER CREATEDB CREATEROLE REPLICATION;
-- 20230529180330_alter_api_roles_for_inherit.sql
ALTER ROLE anon INHERIT;
ALTER ROLE authenticated INHERIT;
ALTER ROLE service_role INHERIT;
-- 20230201083204_grant_auth_roles_to_postgres.sql, 20230306081037_grant_pg_monitor_to_postgres.sql,
-- 20240606060239_grant_predefined_roles_to_postgres.sql
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_monitor, pg_read_all_data, pg_signal_backend TO postgres;
-- supautils lets postgres set session_replication_role (see the module's description).
GRANT SET ON PARAMETER session_replication_role TO postgres;
"#
        )
    }
}

/// The platform's objects in a project database, run as `supabase_admin`.
const PLATFORM_SQL: &str = r#"
-- 00000000000000-initial-schema.sql (init scripts run as postgres, still a superuser then)
CREATE PUBLICATION supabase_realtime;
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
CREATE SCHEMA extensions AUTHORIZATION postgres;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;

-- 00000000000001-auth-schema.sql (trimmed to the columns an app touches)
CREATE SCHEMA auth AUTHORIZATION supabase_admin;
CREATE TABLE auth.users (
    instance_id uuid,
    id uuid NOT NULL UNIQUE,
    aud varchar(255),
    role varchar(255),
    email varchar(255) UNIQUE,
    encrypted_password varchar(255),
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    created_at timestamptz,
    updated_at timestamptz,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);
CREATE TABLE auth.refresh_tokens (
    instance_id uuid,
    id bigserial NOT NULL,
    token varchar(255),
    user_id varchar(255),
    revoked bool,
    created_at timestamptz,
    updated_at timestamptz,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id)
);
CREATE TABLE auth.schema_migrations (version varchar(255) NOT NULL PRIMARY KEY);
INSERT INTO auth.schema_migrations VALUES ('20171026211738'), ('20171026211808'), ('20180103212743');
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('request.jwt.claim.role', true), '')::text $$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT ALL PRIVILEGES ON SCHEMA auth TO supabase_auth_admin;
GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA auth TO supabase_auth_admin;
GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA auth TO supabase_auth_admin;
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
ALTER TABLE auth.refresh_tokens OWNER TO supabase_auth_admin;
ALTER TABLE auth.schema_migrations OWNER TO supabase_auth_admin;
-- 20211124212715_update-auth-owner.sql
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.role() OWNER TO supabase_auth_admin;
ALTER SCHEMA auth OWNER TO supabase_auth_admin;

-- 00000000000002-storage-schema.sql
CREATE SCHEMA storage AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
CREATE TABLE storage.buckets (
    id text NOT NULL PRIMARY KEY,
    name text NOT NULL,
    owner uuid REFERENCES auth.users (id),
    public boolean DEFAULT false,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
CREATE UNIQUE INDEX bname ON storage.buckets USING btree (name);
CREATE TABLE storage.objects (
    id uuid NOT NULL DEFAULT extensions.uuid_generate_v4() PRIMARY KEY,
    bucket_id text REFERENCES storage.buckets (id),
    name text,
    owner uuid REFERENCES auth.users (id),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    metadata jsonb,
    path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects USING btree (bucket_id, name);
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
CREATE TABLE storage.migrations (
    id integer PRIMARY KEY,
    name varchar(100) UNIQUE NOT NULL,
    hash varchar(40) NOT NULL,
    executed_at timestamp DEFAULT current_timestamp
);
INSERT INTO storage.migrations VALUES (0, 'create-migrations-table', 'e18db593bcde2aca2a408c4d1100f6abba2195df');
GRANT ALL PRIVILEGES ON SCHEMA storage TO supabase_storage_admin;
GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA storage TO supabase_storage_admin;
ALTER TABLE storage.objects OWNER TO supabase_storage_admin;
ALTER TABLE storage.buckets OWNER TO supabase_storage_admin;
ALTER TABLE storage.migrations OWNER TO supabase_storage_admin;
ALTER SCHEMA storage OWNER TO supabase_storage_admin;

-- 20211118015519_create-realtime-schema.sql; the Realtime service's own tables
CREATE SCHEMA realtime AUTHORIZATION supabase_realtime_admin;
CREATE TABLE realtime.schema_migrations (version bigint PRIMARY KEY, inserted_at timestamp(0));
INSERT INTO realtime.schema_migrations VALUES (20211116024918, now());
CREATE TABLE realtime.subscription (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id uuid NOT NULL, entity regclass NOT NULL);
ALTER TABLE realtime.schema_migrations OWNER TO supabase_realtime_admin;
ALTER TABLE realtime.subscription OWNER TO supabase_realtime_admin;
-- 20211122051245_update-realtime-permissions.sql
GRANT USAGE ON SCHEMA realtime TO postgres;
GRANT ALL ON ALL TABLES IN SCHEMA realtime TO postgres, dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA realtime TO postgres, dashboard_user;

-- Database webhooks' schema, and the internals of pg_graphql and pgsodium (their extensions are
-- in no package here: their schemas hold what postgres may not read)
CREATE SCHEMA supabase_functions AUTHORIZATION supabase_admin;
CREATE TABLE supabase_functions.migrations (version text PRIMARY KEY, inserted_at timestamptz NOT NULL DEFAULT now());
INSERT INTO supabase_functions.migrations (version) VALUES ('initial');
CREATE TABLE supabase_functions.hooks (id bigserial PRIMARY KEY, hook_table_id integer NOT NULL, hook_name text NOT NULL);
ALTER TABLE supabase_functions.migrations OWNER TO supabase_functions_admin;
ALTER TABLE supabase_functions.hooks OWNER TO supabase_functions_admin;
CREATE SCHEMA graphql AUTHORIZATION supabase_admin;
CREATE TABLE graphql._field (id serial PRIMARY KEY, name text);
CREATE SCHEMA pgsodium AUTHORIZATION supabase_admin;
CREATE TABLE pgsodium.key (id uuid PRIMARY KEY DEFAULT extensions.gen_random_uuid(), raw_key bytea);
REVOKE ALL ON ALL TABLES IN SCHEMA graphql, pgsodium FROM PUBLIC;

-- 10000000000000_demote-postgres.sql
GRANT ALL ON SCHEMA auth TO postgres;
GRANT ALL ON SCHEMA extensions TO postgres;
GRANT ALL ON SCHEMA storage TO postgres;
GRANT ALL ON ALL TABLES IN SCHEMA auth TO postgres;
GRANT ALL ON ALL TABLES IN SCHEMA storage TO postgres;
GRANT ALL ON ALL TABLES IN SCHEMA extensions TO postgres;
GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO postgres;
GRANT ALL ON ALL SEQUENCES IN SCHEMA storage TO postgres;
GRANT ALL ON ALL SEQUENCES IN SCHEMA extensions TO postgres;
GRANT ALL ON ALL ROUTINES IN SCHEMA auth TO postgres;
GRANT ALL ON ALL ROUTINES IN SCHEMA storage TO postgres;
GRANT ALL ON ALL ROUTINES IN SCHEMA extensions TO postgres;

-- 20220126121436_finer-postgrest-triggers.sql (bodies trimmed: they notify PostgREST)
CREATE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('pgrst', 'reload schema'); END $$;
CREATE FUNCTION extensions.pgrst_drop_watch() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('pgrst', 'reload schema'); END $$;
CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end EXECUTE PROCEDURE extensions.pgrst_ddl_watch();
CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop EXECUTE PROCEDURE extensions.pgrst_drop_watch();

-- 20240627101908_revoke_supabase_auth_admin_from_postgres.sql and
-- 20250421084701_revoke_admin_roles_from_postgres.sql: no privilege on the migrations tables
-- (pg_read_all_data still lets postgres read them), no CREATE in the platform's schemas
REVOKE ALL ON auth.schema_migrations FROM postgres;
REVOKE ALL ON storage.migrations FROM anon, authenticated, service_role, postgres;
REVOKE ALL ON realtime.schema_migrations FROM anon, authenticated, service_role, postgres;
REVOKE CREATE ON SCHEMA auth, storage, realtime FROM postgres;
"#;

/// The app, as its migrations create it, run as `postgres`: tables in `public` with row-level
/// security, a foreign key into `auth.users`, the usual trigger that makes a profile for each
/// new user, a table revoked from `anon`, and a table Realtime streams.
const APP_SCHEMA_SQL: &str = r#"
CREATE TABLE public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    full_name text GENERATED ALWAYS AS (first_name || ' ' || last_name) STORED
);
CREATE TABLE public.documents (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    owner uuid NOT NULL REFERENCES auth.users (id),
    body jsonb NOT NULL
);
CREATE TABLE public.billing (
    user_id uuid PRIMARY KEY REFERENCES auth.users (id),
    plan text NOT NULL,
    card_last4 text
);
CREATE TABLE public.messages (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    author uuid REFERENCES auth.users (id),
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY "profiles are public" ON public.profiles FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY "own profile" ON public.profiles FOR UPDATE TO authenticated USING (auth.uid() = id);
CREATE POLICY "own documents" ON public.documents FOR ALL TO authenticated USING (auth.uid() = owner);
CREATE POLICY "messages are read by users" ON public.messages FOR SELECT TO authenticated USING (true);
CREATE POLICY "users post as themselves" ON public.messages FOR INSERT TO authenticated WITH CHECK (auth.uid() = author);
-- Billing is for the server side only.
REVOKE ALL ON public.billing FROM anon, authenticated;
ALTER PUBLICATION supabase_realtime ADD TABLE public.messages;

CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS
$$ BEGIN
    INSERT INTO public.profiles (id, first_name) VALUES (new.id, coalesce(new.raw_user_meta_data ->> 'first_name', ''));
    RETURN new;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"#;

/// Users signed up through the auth service and their files through the storage service: the
/// rows those services write (the superuser writes them here, hashing passwords as the auth
/// service does in its own code), and a storage policy, which `postgres` may not make on a
/// table it does not own (Supabase's `supautils.policy_grants` allows it; see above).
fn platform_rows_sql() -> String {
    format!(
        r#"
INSERT INTO auth.users (id, aud, role, email, encrypted_password, raw_user_meta_data, created_at, updated_at)
SELECT extensions.uuid_generate_v5(extensions.uuid_ns_url(), 'user' || i), 'authenticated', 'authenticated',
       'user' || i || '@example.com', extensions.crypt('password' || i, extensions.gen_salt('bf', 4)),
       jsonb_build_object('first_name', 'First' || i), now(), now()
FROM generate_series(1, {USERS}) AS i;
INSERT INTO auth.refresh_tokens (token, user_id, revoked, created_at)
SELECT md5(id::text), id::text, false, now() FROM auth.users;
CREATE POLICY "own objects" ON storage.objects FOR SELECT TO authenticated USING (auth.uid() = owner);
INSERT INTO storage.buckets (id, name, public) VALUES ('avatars', 'avatars', true);
INSERT INTO storage.objects (bucket_id, name, owner, metadata)
SELECT 'avatars', 'public/' || id || '/avatar.png', id, jsonb_build_object('size', 1024, 'mimetype', 'image/png')
FROM auth.users;
"#
    )
}

/// The app's own rows, written as `postgres`.
fn app_rows_sql() -> String {
    format!(
        r#"
UPDATE public.profiles SET last_name = 'Last';
INSERT INTO public.documents (owner, body)
SELECT (SELECT id FROM auth.users ORDER BY email LIMIT 1),
       jsonb_object_agg('key' || i, repeat(md5(i::text), 3))
FROM generate_series(1, {DOCUMENT_KEYS}) AS i;
INSERT INTO public.billing (user_id, plan, card_last4)
SELECT id, 'pro', lpad((row_number() OVER (ORDER BY email))::text, 4, '0') FROM auth.users;
INSERT INTO public.messages (author, body)
SELECT id, 'hello from ' || email FROM auth.users;
"#
    )
}

/// Checks a restored copy must pass, as `VALIDATION_QUERIES` entries `(name, sql)`.
pub fn validation_queries() -> Vec<(String, String)> {
    let query = |name: &str, sql: String| (name.to_owned(), sql);
    vec![
        query("users restored", format!("SELECT count(*) = {USERS} FROM auth.users")),
        query(
            "passwords still verify (pgcrypto)",
            "SELECT encrypted_password = extensions.crypt('password1', encrypted_password) FROM auth.users \
             WHERE email = 'user1@example.com'"
                .to_owned(),
        ),
        query("uuid-ossp works", "SELECT extensions.uuid_generate_v4() IS NOT NULL".to_owned()),
        query("every user has a profile", format!("SELECT count(*) = {USERS} FROM public.profiles")),
        query(
            "generated columns computed",
            "SELECT bool_and(full_name = first_name || ' ' || last_name) FROM public.profiles".to_owned(),
        ),
        query("path tokens generated", "SELECT bool_and(path_tokens[1] = 'public') FROM storage.objects".to_owned()),
        query(
            "row-level security on and policies kept",
            "SELECT (SELECT count(*) FROM pg_policies WHERE schemaname IN ('public', 'storage')) = 6 \
             AND (SELECT bool_and(relrowsecurity) FROM pg_class WHERE oid IN \
             ('public.profiles'::regclass, 'public.documents'::regclass, 'public.messages'::regclass, \
             'storage.objects'::regclass))"
                .to_owned(),
        ),
        query(
            "policies name the Supabase roles",
            "SELECT count(*) = 1 FROM pg_policies WHERE policyname = 'profiles are public' \
             AND roles = '{anon,authenticated}'::name[]"
                .to_owned(),
        ),
        query(
            "the large jsonb document is whole",
            format!(
                "SELECT (SELECT count(*) FROM jsonb_object_keys(body)) = {DOCUMENT_KEYS} \
                 AND body ->> 'key{DOCUMENT_KEYS}' = repeat(md5('{DOCUMENT_KEYS}'), 3) FROM public.documents"
            ),
        ),
    ]
}
