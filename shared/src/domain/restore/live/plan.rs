//! What a restore into the live project runs: chosen from the dump's table of contents and
//! the live catalog, then made in the open transaction (what is replaced is dropped first, the
//! platform's tables are emptied, the objects are made with the dump's privileges).

use std::collections::{BTreeSet, HashSet};
use std::io::Write;

use tokio_postgres::Client;

use super::error::LiveError;
use super::privileges::{DefaultPrivileges, Publications};
use super::script::{execute, query, run_section};
use super::toc::TocEntry;
use crate::adapters::pgtools::PgTool;
use crate::adapters::postgres::quote_ident;

/// What the live database holds that decides what is restored.
struct Live {
    /// Roles the restoring role is a member of (itself included).
    mine: HashSet<String>,
    /// Schemas that exist, with whether they belong to one of `mine`.
    schemas: Vec<(String, bool)>,
}

impl Live {
    async fn read(client: &Client) -> Result<Live, LiveError> {
        let mine = query(
            client,
            "SELECT rolname::text FROM pg_roles WHERE pg_has_role(current_user, oid, 'MEMBER') \
             AND rolname <> 'pg_database_owner'",
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        let schemas =
            query(client, "SELECT nspname::text, pg_has_role(current_user, nspowner, 'MEMBER') FROM pg_namespace")
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
        Ok(Live { mine, schemas })
    }

    fn schema(&self, name: &str) -> Option<bool> {
        self.schemas.iter().find(|(schema, _)| schema == name).map(|(_, mine)| *mine)
    }

    /// A schema that exists and belongs to the platform: its tables get their rows back only.
    fn data_only(&self, schema: &str) -> bool {
        self.schema(schema) == Some(false)
    }
}

/// The entries a restore into the live project runs, in the dump's order.
#[derive(Debug, Default)]
struct Plan {
    keep: BTreeSet<usize>,
    /// Tables emptied before their rows are loaded again (`schema.table`, quoted).
    emptied: Vec<String>,
}

/// Chooses from `toc`; see the module's description.
fn plan(toc: &[TocEntry], live: &Live) -> Plan {
    let mut plan = Plan::default();
    for (i, entry) in toc.iter().enumerate() {
        let keep = if let Some(schema) = entry.schema_named() {
            // A schema that exists stays as it is, with its privileges and comment.
            live.schema(schema).is_none() && live.mine.contains(&entry.owner)
        } else if entry.kind == "EXTENSION" {
            // `CREATE EXTENSION IF NOT EXISTS`: the project's own stays as it is.
            true
        } else if entry.kind == "DEFAULT ACL" || entry.tag.starts_with("EXTENSION ") {
            false
        } else if live.data_only(&entry.schema) {
            if entry.kind == "TABLE DATA" {
                plan.emptied.push(format!("{}.{}", quote_ident(&entry.schema), quote_ident(&entry.tag)));
            }
            entry.is_data()
        } else {
            live.mine.contains(&entry.owner)
        };
        if keep {
            plan.keep.insert(i);
        }
    }
    plan
}

/// The kinds of object the restore drops before making them again, as the live catalog
/// names them (`kind`, schema, tag as in the table of contents, whether it is the restoring
/// role's, and the statement that drops it).
const DROPPABLE: &str = r#"
SELECT kind, schema, tag, mine, drop FROM (
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
           WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind,
         n.nspname::text AS schema, c.relname::text AS tag,
         pg_has_role(current_user, c.relowner, 'MEMBER') AS mine,
         format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW'
           WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
           ELSE 'TABLE' END, n.nspname, c.relname) AS drop,
         CASE WHEN c.relkind IN ('r', 'p', 'f') THEN 1 WHEN c.relkind IN ('v', 'm') THEN 2 ELSE 3 END AS rank
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('i', 'e'))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         n.nspname::text, format('%s(%s)', p.proname, pg_catalog.oidvectortypes(p.proargtypes)),
         pg_has_role(current_user, p.proowner, 'MEMBER'),
         format('DROP %s IF EXISTS %I.%I(%s) CASCADE', CASE p.prokind WHEN 'p' THEN 'PROCEDURE'
           WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, n.nspname, p.proname,
           pg_catalog.pg_get_function_identity_arguments(p.oid)),
         4
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.deptype = 'e')
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname::text, t.typname::text,
         pg_has_role(current_user, t.typowner, 'MEMBER'),
         format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           n.nspname, t.typname),
         5
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typtype IN ('e', 'd', 'r', 'm', 'b')
     OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
) objects
WHERE schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY rank, schema, tag
"#;

/// Objects that hang on others (triggers, policies, constraints) and objects in general, as
/// the table of contents names them, with the schema and whether they are the restoring
/// role's: what a drop may take with it.
const DEPENDENTS: &str = r#"
SELECT kind, schema, tag, mine FROM (
  SELECT 'TRIGGER' AS kind, n.nspname::text AS schema, c.relname || ' ' || t.tgname AS tag,
         pg_has_role(current_user, c.relowner, 'MEMBER') AS mine
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'POLICY', n.nspname::text, c.relname || ' ' || p.polname,
         pg_has_role(current_user, c.relowner, 'MEMBER')
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  UNION ALL
  SELECT CASE o.contype WHEN 'f' THEN 'FK CONSTRAINT' ELSE 'CONSTRAINT' END, n.nspname::text,
         c.relname || ' ' || o.conname, pg_has_role(current_user, c.relowner, 'MEMBER')
  FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
           WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'i' THEN 'INDEX' ELSE 'TABLE' END,
         n.nspname::text, c.relname::text, pg_has_role(current_user, c.relowner, 'MEMBER')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i')
  UNION ALL
  SELECT 'FUNCTION', n.nspname::text, format('%s(%s)', p.proname, pg_catalog.oidvectortypes(p.proargtypes)),
         pg_has_role(current_user, p.proowner, 'MEMBER')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
) objects
WHERE schema NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
"#;

/// One object of the live database, as [`DEPENDENTS`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Object {
    kind: String,
    schema: String,
    tag: String,
}

async fn objects(client: &Client) -> Result<Vec<(Object, bool)>, LiveError> {
    Ok(query(client, DEPENDENTS)
        .await?
        .iter()
        .map(|row| (Object { kind: row.get(0), schema: row.get(1), tag: row.get(2) }, row.get(3)))
        .collect())
}

/// What [`make`] made: the list of entries to restore, the data entries among them, and the
/// publications' tables to put back.
pub(super) struct Made {
    pub(super) list: tempfile::NamedTempFile,
    pub(super) rows: Vec<String>,
    pub(super) publications: Publications,
}

/// In the open transaction of `client`: decides what to restore, drops what is made again,
/// empties the platform's tables and makes the objects (with the dump's privileges).
pub(super) async fn make(
    client: &Client,
    tool: &PgTool,
    toc: &[TocEntry],
    dump: &std::path::Path,
) -> Result<Made, LiveError> {
    // pg_restore's scripts name every object with its schema; so do the queries here.
    execute(
        client,
        "SET LOCAL session_replication_role = replica; SELECT pg_catalog.set_config('search_path', '', true)",
    )
    .await?;
    let live = Live::read(client).await?;
    let mut plan = plan(toc, &live);
    let publications = Publications::read(client).await?;
    let defaults = DefaultPrivileges::read(client).await?;
    let before = objects(client).await?;
    drop_replaced(client, toc, &plan, &live).await?;
    if !plan.emptied.is_empty() {
        execute(client, &format!("TRUNCATE ONLY {}", plan.emptied.join(", "))).await?;
    }
    keep_what_the_drops_took(client, toc, &mut plan, &live, before).await?;
    let list = make_objects(client, tool, toc, dump, &plan, &defaults).await?;
    let rows = plan
        .keep
        .iter()
        .map(|&i| &toc[i])
        .filter(|e| e.is_data() && e.kind != "MATERIALIZED VIEW DATA")
        .map(|e| e.line.clone())
        .collect();
    Ok(Made { list, rows, publications })
}

/// Drops what the restore makes again: the app's objects the dump holds. One that belongs to
/// another role stops the restore before anything is dropped.
async fn drop_replaced(client: &Client, toc: &[TocEntry], plan: &Plan, live: &Live) -> Result<(), LiveError> {
    let wanted: HashSet<(&str, &str, &str)> = plan
        .keep
        .iter()
        .map(|&i| &toc[i])
        .filter(|e| !e.is_data() && !live.data_only(&e.schema))
        .map(|e| (e.kind.as_str(), e.schema.as_str(), e.tag.as_str()))
        .collect();
    let mut drops = Vec::new();
    for row in query(client, DROPPABLE).await? {
        let (kind, schema, tag, mine, drop): (String, String, String, bool, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if !wanted.contains(&(kind.as_str(), schema.as_str(), tag.as_str())) {
            continue;
        }
        if !mine {
            return Err(LiveError::NotOurs { kind: kind.to_lowercase(), schema, tag });
        }
        drops.push(drop);
    }
    for drop in &drops {
        execute(client, drop).await?;
    }
    Ok(())
}

/// What the drops took with them beyond the app's own objects (a trigger on `auth.users` that
/// calls an app function, say) is made again from the dump; what the dump does not hold stops
/// the restore.
async fn keep_what_the_drops_took(
    client: &Client,
    toc: &[TocEntry],
    plan: &mut Plan,
    live: &Live,
    before: Vec<(Object, bool)>,
) -> Result<(), LiveError> {
    let after: HashSet<Object> = objects(client).await?.into_iter().map(|(object, _)| object).collect();
    let mut lost = Vec::new();
    for (object, mine) in before {
        let ours = mine && !live.data_only(&object.schema);
        if ours || after.contains(&object) {
            continue;
        }
        match toc.iter().position(|e| e.kind == object.kind && e.schema == object.schema && e.tag == object.tag) {
            Some(i) => {
                plan.keep.insert(i);
            }
            None => lost.push(format!("{} {}.{}", object.kind.to_lowercase(), object.schema, object.tag)),
        }
    }
    if lost.is_empty() { Ok(()) } else { Err(LiveError::WouldDrop(lost)) }
}

/// Makes the planned objects (the pre-data section) with the privileges the dump gives them,
/// not the role's default privileges (which grant everything to the API roles in `public`).
/// Returns the list of the planned entries, for the sections that follow.
async fn make_objects(
    client: &Client,
    tool: &PgTool,
    toc: &[TocEntry],
    dump: &std::path::Path,
    plan: &Plan,
    defaults: &DefaultPrivileges,
) -> Result<tempfile::NamedTempFile, LiveError> {
    defaults.set_aside(client).await?;
    let selected: String = plan.keep.iter().map(|&i| format!("{}\n", toc[i].line)).collect();
    let mut list = tempfile::NamedTempFile::new().map_err(LiveError::ListFile)?;
    list.write_all(selected.as_bytes()).map_err(LiveError::ListFile)?;
    run_section(client, tool, dump, list.path(), "pre-data").await?;
    // Only the objects the pre-data section makes take default privileges.
    defaults.put_back(client).await?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::restore::live::toc::TocEntry;

    fn entry(line: &str) -> TocEntry {
        TocEntry::parse(line).unwrap_or_else(|| panic!("{line}"))
    }

    #[test]
    fn the_platform_keeps_its_objects_and_its_tables_get_their_rows() {
        let toc: Vec<TocEntry> = [
            "12; 2615 16454 SCHEMA - auth supabase_auth_admin",
            "7; 2615 2200 SCHEMA - public pg_database_owner",
            "3538; 0 0 ACL - SCHEMA public pg_database_owner",
            "2; 3079 16411 EXTENSION - pgcrypto ",
            "3540; 0 0 COMMENT - EXTENSION pgcrypto ",
            "304; 1255 16576 FUNCTION extensions pgrst_ddl_watch() supabase_admin",
            "306; 1255 16640 FUNCTION public handle_new_user() postgres",
            "223; 1259 16455 TABLE auth users supabase_auth_admin",
            "242; 1259 16608 TABLE public billing postgres",
            "3595; 0 0 ACL public TABLE billing postgres",
            "3518; 0 16455 TABLE DATA auth users supabase_auth_admin",
            "3526; 0 16608 TABLE DATA public billing postgres",
            "3363; 2620 16641 TRIGGER auth users on_auth_user_created supabase_auth_admin",
            "2157; 826 16451 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES postgres",
            "9; 2615 16999 SCHEMA - reporting postgres",
        ]
        .iter()
        .map(|line| entry(line))
        .collect();
        let live = Live {
            mine: ["postgres", "anon"].iter().map(|r| (*r).to_owned()).collect(),
            schemas: vec![("auth".into(), false), ("public".into(), true), ("extensions".into(), true)],
        };
        let plan = plan(&toc, &live);
        let kept: Vec<&str> = plan.keep.iter().map(|&i| toc[i].line.as_str()).collect();
        assert_eq!(
            kept,
            [
                "2; 3079 16411 EXTENSION - pgcrypto ",
                "306; 1255 16640 FUNCTION public handle_new_user() postgres",
                "242; 1259 16608 TABLE public billing postgres",
                "3595; 0 0 ACL public TABLE billing postgres",
                "3518; 0 16455 TABLE DATA auth users supabase_auth_admin",
                "3526; 0 16608 TABLE DATA public billing postgres",
                "9; 2615 16999 SCHEMA - reporting postgres",
            ]
        );
        assert_eq!(plan.emptied, ["\"auth\".\"users\""]);
    }
}
