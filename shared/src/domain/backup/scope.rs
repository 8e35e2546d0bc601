//! What a dump holds. On a plain PostgreSQL server, everything pg_dump dumps. On Supabase, the
//! role a project hands its owner (`postgres`) is no superuser: the platform's services own
//! their schemas, and some of their tables are closed to it. So there a dump holds every schema
//! of the app with its data, and the user data of `auth` and `storage` (with their structure,
//! so that a restore into an empty database has `auth.users` and `auth.uid()` for the app's
//! tables to refer to), and leaves out what the platform makes and keeps itself: its services'
//! schemas, their migration histories, event triggers and publications. Supabase's own CLI
//! draws the same line (`supabase/cli`, `pkg/migration/dump.go` and `scripts/dump_data.sh`).
//!
//! Whatever the server, a table in the dump that the role cannot read fails the backup with
//! its name before pg_dump starts: nothing is silently missing.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::error::BackupError;
use crate::adapters::postgres::DbError;

/// The role only Supabase's servers have: its only superuser.
const SUPABASE_SUPERUSER: &str = "supabase_admin";

/// Schemas Supabase's services or extensions make and keep, with why a backup leaves them out.
/// A name ending in `*` is a prefix.
const SUPABASE_PLATFORM_SCHEMAS: &[(&str, &str)] = &[
    ("realtime", "Realtime's own schema, made and migrated by the Realtime service"),
    ("_realtime", "Realtime's own schema"),
    ("supabase_functions", "Database Webhooks' schema, made by the platform when webhooks are enabled"),
    ("graphql", "pg_graphql's internals, made by its extension"),
    ("graphql_public", "pg_graphql's API schema, made by the platform"),
    ("pgsodium", "pgsodium's keys, which belong to the project's server"),
    ("pgsodium_masks", "pgsodium's views"),
    ("vault", "Vault's secrets, encrypted with the project's own key"),
    ("net", "pg_net's request queue"),
    ("cron", "pg_cron's schema, made by its extension"),
    ("pgbouncer", "the connection pooler's schema"),
    ("pgtle", "pg_tle's schema"),
    ("repack", "pg_repack's schema"),
    ("etl", "the platform's replication schema"),
    ("_analytics", "the platform's logging schema"),
    ("_supavisor", "the connection pooler's schema"),
    ("tiger", "PostGIS geocoder's data, made by its extension"),
    ("tiger_data", "PostGIS geocoder's data"),
    ("topology", "PostGIS topology's schema"),
    ("timescaledb_*", "TimescaleDB's internals"),
    ("_timescaledb_*", "TimescaleDB's internals"),
];

/// Tables in schemas a backup keeps that belong to the platform's services.
const SUPABASE_PLATFORM_TABLES: &[(&str, &str, &str)] = &[
    ("auth", "schema_migrations", "the Auth service's migration history; postgres may not read it"),
    ("storage", "migrations", "the Storage service's migration history; postgres may not read it"),
];

/// The server a dump was taken from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Plain PostgreSQL: the dump holds everything.
    #[default]
    Postgres,
    /// A Supabase project: the app, and the user data of `auth` and `storage`.
    Supabase,
}

/// Something a backup leaves out on purpose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub object: String,
    pub reason: String,
}

/// What a dump of one database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub platform: Platform,
    /// The schemas dumped, on Supabase (elsewhere: all of them).
    schemas: Vec<String>,
    /// `(schema, table)` left out of schemas that are dumped.
    tables_left_out: Vec<(String, String)>,
    pub left_out: Vec<LeftOut>,
}

impl Scope {
    /// Reads what `client`'s database holds and decides what its dump holds; fails, naming
    /// them, if the dump would need a table the role cannot read.
    pub async fn of(client: &Client) -> Result<Scope, BackupError> {
        let supabase: bool = client
            .query_one("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", &[&SUPABASE_SUPERUSER])
            .await
            .map_err(DbError::query)?
            .get(0);
        let scope = if supabase { Scope::supabase(client).await? } else { Scope::everything() };
        scope.check_readable(client).await?;
        Ok(scope)
    }

    /// Everything pg_dump dumps: a plain PostgreSQL server's scope.
    pub fn everything() -> Scope {
        Scope { platform: Platform::Postgres, schemas: Vec::new(), tables_left_out: Vec::new(), left_out: Vec::new() }
    }

    async fn supabase(client: &Client) -> Result<Scope, BackupError> {
        let query = |sql: &'static str| async move { client.query(sql, &[]).await.map_err(DbError::query) };
        let mut schemas = Vec::new();
        let mut left_out = Vec::new();
        for row in query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
             AND nspname <> 'information_schema' ORDER BY 1",
        )
        .await?
        {
            let schema: String = row.get(0);
            match platform_schema(&schema) {
                Some(reason) => {
                    left_out.push(LeftOut { object: format!("schema {schema}"), reason: reason.to_owned() })
                }
                None => schemas.push(schema),
            }
        }
        let mut tables_left_out = Vec::new();
        for (schema, table, reason) in SUPABASE_PLATFORM_TABLES {
            if schemas.iter().any(|s| s == schema) {
                tables_left_out.push(((*schema).to_owned(), (*table).to_owned()));
                left_out.push(LeftOut { object: format!("table {schema}.{table}"), reason: (*reason).to_owned() });
            }
        }
        for row in query("SELECT evtname::text FROM pg_event_trigger ORDER BY 1").await? {
            let name: String = row.get(0);
            left_out.push(LeftOut {
                object: format!("event trigger {name}"),
                reason: "made by the platform; only a superuser can create one".to_owned(),
            });
        }
        for row in query("SELECT pubname::text FROM pg_publication ORDER BY 1").await? {
            let name: String = row.get(0);
            left_out.push(LeftOut {
                object: format!("publication {name}"),
                reason: "the project keeps its own; a restore into it leaves its tables as they are".to_owned(),
            });
        }
        Ok(Scope { platform: Platform::Supabase, schemas, tables_left_out, left_out })
    }

    /// Whether the dump holds `schema.table` (and so counts its rows).
    pub fn holds(&self, schema: &str, table: &str) -> bool {
        match self.platform {
            Platform::Postgres => true,
            Platform::Supabase => {
                self.schemas.iter().any(|s| s == schema)
                    && !self.tables_left_out.iter().any(|(s, t)| s == schema && t == table)
            }
        }
    }

    /// pg_dump's arguments that select what the dump holds. On Supabase the schemas are named
    /// one by one: event triggers and publications are then left out (pg_dump dumps objects of
    /// no schema only when no schema is named), and `--extension` and `--large-objects` bring
    /// back the extensions and large objects, which pg_dump would leave out too.
    pub(crate) fn pg_dump_args(&self) -> Vec<String> {
        if self.platform == Platform::Postgres {
            return Vec::new();
        }
        let mut args: Vec<String> = self.schemas.iter().map(|s| format!("--schema={}", pattern(s))).collect();
        args.extend(self.tables_left_out.iter().map(|(s, t)| format!("--exclude-table={}.{}", pattern(s), pattern(t))));
        args.push("--extension=*".to_owned());
        args.push("--blobs".to_owned());
        args
    }

    /// Fails with the names of the tables and sequences the dump would hold that the role
    /// cannot read (pg_dump would stop at the first, after uploading part of the dump).
    async fn check_readable(&self, client: &Client) -> Result<(), BackupError> {
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT LIKE 'pg\\_%' \
                 AND n.nspname <> 'information_schema' \
                 AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                                 AND d.objid = c.oid AND d.deptype = 'e') \
                 AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')) \
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(DbError::query)?;
        let unreadable: Vec<String> = rows
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
            .filter(|(schema, table)| self.holds(schema, table))
            .map(|(schema, table)| format!("{schema}.{table}"))
            .collect();
        let role: String = client.query_one("SELECT current_user::text", &[]).await.map_err(DbError::query)?.get(0);
        if unreadable.is_empty() { Ok(()) } else { Err(BackupError::Unreadable { role, tables: unreadable }) }
    }
}

/// Why `schema` belongs to Supabase's platform (its services or extensions), if it does.
pub fn platform_schema(schema: &str) -> Option<&'static str> {
    SUPABASE_PLATFORM_SCHEMAS.iter().find_map(|(name, reason)| {
        let matches = match name.strip_suffix('*') {
            Some(prefix) => schema.starts_with(prefix),
            None => schema == *name,
        };
        matches.then_some(*reason)
    })
}

/// A name as a pg_dump pattern that matches it alone: double-quoted, quotes doubled.
fn pattern(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supabase(schemas: &[&str]) -> Scope {
        Scope {
            platform: Platform::Supabase,
            schemas: schemas.iter().map(|s| (*s).to_owned()).collect(),
            tables_left_out: vec![("auth".to_owned(), "schema_migrations".to_owned())],
            left_out: Vec::new(),
        }
    }

    #[test]
    fn platform_schemas_are_known_by_name_or_prefix() {
        assert!(platform_schema("realtime").is_some());
        assert!(platform_schema("_timescaledb_catalog").is_some());
        assert!(platform_schema("auth").is_none(), "auth's user data is kept");
        assert!(platform_schema("public").is_none());
        assert!(platform_schema("reporting").is_none(), "an app's own schema is kept");
    }

    #[test]
    fn a_supabase_dump_names_its_schemas_and_leaves_out_the_migrations_tables() {
        let scope = supabase(&["auth", "public", "my \"app\""]);
        assert_eq!(
            scope.pg_dump_args(),
            [
                "--schema=\"auth\"",
                "--schema=\"public\"",
                "--schema=\"my \"\"app\"\"\"",
                "--exclude-table=\"auth\".\"schema_migrations\"",
                "--extension=*",
                "--blobs"
            ]
        );
        assert!(scope.holds("auth", "users"));
        assert!(!scope.holds("auth", "schema_migrations"));
        assert!(!scope.holds("realtime", "subscription"));
        assert!(Scope::everything().pg_dump_args().is_empty());
        assert!(Scope::everything().holds("realtime", "subscription"));
    }
}
