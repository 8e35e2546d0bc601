//! A Supabase backup restored into the live project it came from, as the project's `postgres`
//! role, in one transaction: either all of it is restored or nothing changed (unless parallel
//! jobs were asked for, which cannot share one).
//!
//! The platform owns `auth` and `storage` (and `postgres` may not drop their tables), so there
//! they get their rows back and nothing else: their tables are emptied and reloaded. The app's
//! objects (those the dump says `postgres` owns, in the schemas it may change) are dropped and
//! made again from the dump. Everything else stays as it is: the platform's objects and
//! owners, the migrations tables, event triggers, extensions, schemas that exist, the
//! default privileges, and which tables the project's publications stream.
//!
//! Supabase's own restore recipe is followed where it applies (`supabase/supabase`,
//! `apps/docs/content/guides/platform/migrating-within-supabase/backup-restore.mdx`): one
//! transaction, and `session_replication_role = replica` while loading, so that the app's
//! triggers (a profile made for each new user, say) do not fire again for restored rows.
//! Supabase's `supautils` lets `postgres` set it (`privileged_role_allowed_configs`).
//!
//! The SQL comes from `pg_restore --file=-` with a list of the entries to restore, and runs
//! through one connection: definitions as they are, each table's rows streamed from
//! pg_restore into `COPY ... FROM STDIN`, never held whole.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::process::Stdio;

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_postgres::Client;

use crate::adapters::pgtools::PgTool;
use crate::adapters::postgres::{DbCredentials, describe, quote_ident};

/// How much of a table's rows go to the server in one message.
const COPY_CHUNK: usize = 256 * 1024;

/// One line of `pg_restore --list`: `<id>; <catalog> <oid> <type> <schema> <tag> <owner>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    pub line: String,
    pub kind: String,
    /// `-` for objects of no schema.
    pub schema: String,
    pub tag: String,
    /// Empty for extensions.
    pub owner: String,
}

/// Entry types of more than one word, longest first (pg_dump's `desc` strings).
const MULTI_WORD_KINDS: &[&str] = &[
    "PUBLICATION TABLES IN SCHEMA",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "MATERIALIZED VIEW DATA",
    "FOREIGN DATA WRAPPER",
    "TEXT SEARCH TEMPLATE",
    "TEXT SEARCH PARSER",
    "SEQUENCE OWNED BY",
    "PUBLICATION TABLE",
    "MATERIALIZED VIEW",
    "CHECK CONSTRAINT",
    "LARGE OBJECTS",
    "OPERATOR CLASS",
    "OPERATOR FAMILY",
    "BLOB METADATA",
    "EVENT TRIGGER",
    "FOREIGN TABLE",
    "FK CONSTRAINT",
    "ROW SECURITY",
    "SEQUENCE SET",
    "TABLE ATTACH",
    "INDEX ATTACH",
    "USER MAPPING",
    "LARGE OBJECT",
    "DEFAULT ACL",
    "TABLE DATA",
];

impl TocEntry {
    /// The entry on `line`, if it is one (comments start with `;`).
    pub fn parse(line: &str) -> Option<TocEntry> {
        let (id, rest) = line.split_once("; ")?;
        id.trim().parse::<u32>().ok()?;
        let mut fields = rest.splitn(3, ' ');
        let (_catalog, _oid, rest) = (fields.next()?, fields.next()?, fields.next()?);
        let kind = MULTI_WORD_KINDS
            .iter()
            .find(|kind| rest.starts_with(*kind) && rest[kind.len()..].starts_with(' '))
            .map(|kind| (*kind).to_owned())
            .unwrap_or_else(|| rest.split(' ').next().unwrap_or_default().to_owned());
        let rest = rest.get(kind.len() + 1..)?;
        let (schema, rest) = rest.split_once(' ')?;
        let (tag, owner) = rest.rsplit_once(' ')?;
        Some(TocEntry {
            line: line.to_owned(),
            kind,
            schema: schema.to_owned(),
            tag: tag.to_owned(),
            owner: owner.to_owned(),
        })
    }

    fn is_data(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "TABLE DATA" | "SEQUENCE SET" | "MATERIALIZED VIEW DATA" | "BLOBS" | "LARGE OBJECTS"
        )
    }

    /// The schema an entry of no schema is about (`SCHEMA x`, its comment and privileges).
    fn schema_named(&self) -> Option<&str> {
        match self.kind.as_str() {
            "SCHEMA" => Some(self.tag.as_str()),
            "COMMENT" | "ACL" => self.tag.strip_prefix("SCHEMA "),
            _ => None,
        }
    }
}

/// What the live database holds that decides what is restored.
struct Live {
    /// Roles the restoring role is a member of (itself included).
    mine: HashSet<String>,
    /// Schemas that exist, with whether they belong to one of `mine`.
    schemas: Vec<(String, bool)>,
}

impl Live {
    async fn read(client: &Client) -> Result<Live, String> {
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

async fn objects(client: &Client) -> Result<Vec<(Object, bool)>, String> {
    Ok(query(client, DEPENDENTS)
        .await?
        .iter()
        .map(|row| (Object { kind: row.get(0), schema: row.get(1), tag: row.get(2) }, row.get(3)))
        .collect())
}

/// Restores `dump` into the live project behind `target`; see the module's description.
/// With `jobs` above 1, `jobs` connections load the tables' rows side by side, each in its
/// own transaction: faster for a large database, but a failure leaves it partly restored.
pub async fn restore(tool: &PgTool, target: &DbCredentials, dump: &std::path::Path, jobs: u32) -> Result<(), String> {
    let toc: Vec<TocEntry> = list(tool, dump).await?.lines().filter_map(TocEntry::parse).collect();
    let client = connect(target).await?;
    execute(&client, "BEGIN READ WRITE").await?;
    let restored = if jobs <= 1 {
        restore_in_transaction(&client, tool, &toc, dump).await
    } else {
        restore_in_parts(&client, target, tool, &toc, dump, jobs).await
    };
    match restored {
        Ok(()) => execute(&client, "COMMIT").await,
        Err(err) if jobs <= 1 => {
            // Dropping the connection would roll back as well; saying so is clearer.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(format!("{err}; the transaction was rolled back: nothing was changed"))
        }
        Err(err) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(format!("{err}; with {jobs} parallel jobs the database may be partly restored"))
        }
    }
}

/// A connection that writes even while `opsctl dr freeze` makes new transactions read-only.
async fn connect(target: &DbCredentials) -> Result<Client, String> {
    let client = target.connect(std::time::Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
    execute(&client, "SET default_transaction_read_only = off").await?;
    Ok(client)
}

async fn restore_in_transaction(
    client: &Client,
    tool: &PgTool,
    toc: &[TocEntry],
    dump: &std::path::Path,
) -> Result<(), String> {
    let made = make(client, tool, toc, dump).await?;
    run_section(client, tool, dump, made.list.path(), "data").await?;
    run_section(client, tool, dump, made.list.path(), "post-data").await?;
    made.publications.put_back(client).await
}

/// The objects made and committed first; then the rows loaded by `jobs` connections side by
/// side, a table at a time each; then, in the open transaction of `client`, the indexes,
/// constraints, triggers and policies, and the publications' tables.
async fn restore_in_parts(
    client: &Client,
    target: &DbCredentials,
    tool: &PgTool,
    toc: &[TocEntry],
    dump: &std::path::Path,
    jobs: u32,
) -> Result<(), String> {
    let made = make(client, tool, toc, dump).await?;
    execute(client, "COMMIT").await?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let loaders = (0..jobs).map(|_| async {
        let loader = connect(target).await?;
        execute(&loader, "SET session_replication_role = replica").await?;
        while let Some(entry) = made.rows.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            let mut one = tempfile::NamedTempFile::new().map_err(|e| format!("cannot write the restore list: {e}"))?;
            writeln!(one, "{entry}").map_err(|e| format!("cannot write the restore list: {e}"))?;
            run_section(&loader, tool, dump, one.path(), "data").await?;
        }
        Ok::<(), String>(())
    });
    let finished = async {
        futures::future::try_join_all(loaders).await?;
        execute(client, "BEGIN READ WRITE; SET LOCAL session_replication_role = replica").await?;
        run_section(client, tool, dump, made.list.path(), "post-data").await?;
        made.publications.put_back(client).await
    };
    match finished.await {
        Ok(()) => Ok(()),
        Err(err) => {
            // The tables were made again without them: a later run would not know.
            let _ = client.batch_execute("ROLLBACK").await;
            match made.publications.missing(client).await {
                Ok(missing) if !missing.is_empty() => {
                    Err(format!("{err}; the publications lack tables they had: {}", missing.join("; ")))
                }
                _ => Err(err),
            }
        }
    }
}

/// What [`make`] made: the list of entries to restore, the data entries among them, and the
/// publications' tables to put back.
struct Made {
    list: tempfile::NamedTempFile,
    rows: Vec<String>,
    publications: Publications,
}

/// In the open transaction of `client`: decides what to restore, drops what is made again,
/// empties the platform's tables and makes the objects (with the dump's privileges).
async fn make(client: &Client, tool: &PgTool, toc: &[TocEntry], dump: &std::path::Path) -> Result<Made, String> {
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

    // Drop what the restore makes again: the app's objects the dump holds.
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
            return Err(format!(
                "{} {schema}.{tag} exists and belongs to another role: this role cannot replace it",
                kind.to_lowercase()
            ));
        }
        drops.push(drop);
    }
    for drop in &drops {
        execute(client, drop).await?;
    }
    if !plan.emptied.is_empty() {
        execute(client, &format!("TRUNCATE ONLY {}", plan.emptied.join(", "))).await?;
    }

    // What the drops took with them beyond the app's own objects (a trigger on `auth.users`
    // that calls an app function, say) is made again from the dump; what the dump does not
    // hold stops the restore.
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
    if !lost.is_empty() {
        return Err(format!(
            "replacing the app's objects would drop {}, which the backup does not hold",
            lost.join(", ")
        ));
    }

    // Objects made now get the privileges the dump gives them, not the role's default
    // privileges (which grant everything to the API roles in `public`).
    defaults.set_aside(client).await?;
    let selected: String = plan.keep.iter().map(|&i| format!("{}\n", toc[i].line)).collect();
    let mut list = tempfile::NamedTempFile::new().map_err(|e| format!("cannot write the restore list: {e}"))?;
    list.write_all(selected.as_bytes()).map_err(|e| format!("cannot write the restore list: {e}"))?;
    run_section(client, tool, dump, list.path(), "pre-data").await?;
    // Only the objects the pre-data section makes take default privileges.
    defaults.put_back(client).await?;
    let rows = plan
        .keep
        .iter()
        .map(|&i| &toc[i])
        .filter(|e| e.is_data() && e.kind != "MATERIALIZED VIEW DATA")
        .map(|e| e.line.clone())
        .collect();
    Ok(Made { list, rows, publications })
}

/// The project's publications and the tables in them (`supabase_realtime`, which Realtime
/// streams): a table made again has left them.
struct Publications(Vec<(String, String)>);

impl Publications {
    async fn read(client: &Client) -> Result<Publications, String> {
        let rows = query(
            client,
            "SELECT format('%I', p.pubname), format('%I.%I', n.nspname, c.relname) \
             || coalesce(' (' || (SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) \
                FROM pg_attribute a WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::int2[])) || ')', '') \
             || coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '') \
             FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid \
             JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE pg_has_role(current_user, p.pubowner, 'MEMBER')",
        )
        .await?;
        Ok(Publications(rows.iter().map(|row| (row.get(0), row.get(1))).collect()))
    }

    async fn put_back(&self, client: &Client) -> Result<(), String> {
        for statement in self.missing(client).await? {
            execute(client, &statement).await?;
        }
        Ok(())
    }

    /// The statements that put back the tables the publications had and lack now.
    async fn missing(&self, client: &Client) -> Result<Vec<String>, String> {
        let now = Publications::read(client).await?;
        Ok(self
            .0
            .iter()
            .filter(|had| !now.0.contains(had))
            .map(|(publication, table)| format!("ALTER PUBLICATION {publication} ADD TABLE {table}"))
            .collect())
    }
}

/// The restoring role's default privileges: set aside while the dump's objects are made,
/// then put back exactly as they were.
struct DefaultPrivileges(Vec<DefaultGrant>);

struct DefaultGrant {
    /// `IN SCHEMA x `, or empty for the role's defaults everywhere.
    scope: String,
    objects: &'static str,
    grantee: String,
    privilege: String,
    grantable: bool,
}

impl DefaultPrivileges {
    async fn read(client: &Client) -> Result<DefaultPrivileges, String> {
        // Everywhere-defaults replace the built-in ones, whose grants to the owner and to
        // PUBLIC are left as they are.
        let rows = query(
            client,
            "SELECT coalesce('IN SCHEMA ' || quote_ident(n.nspname) || ' ', ''), d.defaclobjtype::text, \
             CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, \
             a.privilege_type, a.is_grantable \
             FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, \
             aclexplode(d.defaclacl) a \
             WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
             AND a.grantee <> d.defaclrole AND NOT (d.defaclnamespace = 0 AND a.grantee = 0)",
        )
        .await?;
        let mut grants = Vec::new();
        for row in rows {
            let objects = match row.get::<_, String>(1).as_str() {
                "r" => "TABLES",
                "S" => "SEQUENCES",
                "f" => "FUNCTIONS",
                "T" => "TYPES",
                "n" => "SCHEMAS",
                other => return Err(format!("unknown kind of default privilege {other:?}")),
            };
            grants.push(DefaultGrant {
                scope: row.get(0),
                objects,
                grantee: row.get(2),
                privilege: row.get(3),
                grantable: row.get(4),
            });
        }
        Ok(DefaultPrivileges(grants))
    }

    async fn set_aside(&self, client: &Client) -> Result<(), String> {
        for grant in &self.0 {
            let DefaultGrant { scope, objects, grantee, privilege, .. } = grant;
            let sql = format!("ALTER DEFAULT PRIVILEGES {scope}REVOKE {privilege} ON {objects} FROM {grantee}");
            execute(client, &sql).await?;
        }
        Ok(())
    }

    async fn put_back(&self, client: &Client) -> Result<(), String> {
        for grant in &self.0 {
            let DefaultGrant { scope, objects, grantee, privilege, grantable } = grant;
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            let sql = format!("ALTER DEFAULT PRIVILEGES {scope}GRANT {privilege} ON {objects} TO {grantee}{option}");
            execute(client, &sql).await?;
        }
        Ok(())
    }
}

/// `pg_restore --list` of the dump.
pub(super) async fn list(tool: &PgTool, dump: &std::path::Path) -> Result<String, String> {
    let output = tool
        .command()
        .arg("--list")
        .arg(dump)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", tool.program().display()))?;
    if !output.status.success() {
        return Err(format!("pg_restore --list failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs one section of the listed entries: pg_restore writes its SQL, and each statement
/// runs here as it arrives; a table's rows go straight on into `COPY ... FROM STDIN`.
async fn run_section(
    client: &Client,
    tool: &PgTool,
    dump: &std::path::Path,
    list: &std::path::Path,
    section: &str,
) -> Result<(), String> {
    let mut child = tool
        .command()
        .args(["--file=-", "--no-owner", &format!("--section={section}")])
        .arg("--use-list")
        .arg(list)
        .arg(dump)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.program().display()))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("pg_restore's output is not readable".to_owned());
    };
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let ran = run_script(client, BufReader::with_capacity(1024 * 1024, stdout)).await;
    let status = child.wait().await.map_err(|e| format!("pg_restore: {e}"))?;
    let stderr = errors.await.unwrap_or_default();
    ran.map_err(|e| format!("restoring the {section} section: {e}"))?;
    if !status.success() {
        return Err(format!("pg_restore of the {section} section exited {status}: {}", stderr.trim()));
    }
    Ok(())
}

/// Runs a script pg_restore wrote. Statements gather until a `COPY ... FROM stdin;` line or
/// the end and run together; the lines after a COPY up to `\.` are its rows. psql's own
/// commands (`\restrict`) and the transaction pg_restore opens around large objects are left
/// out: the restore is one transaction already.
async fn run_script<R: tokio::io::AsyncBufRead + Unpin>(client: &Client, mut script: R) -> Result<(), String> {
    let mut statements = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read =
            script.read_until(b'\n', &mut line).await.map_err(|e| format!("reading pg_restore's output: {e}"))?;
        if read == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.starts_with("\\restrict ") || trimmed.starts_with("\\unrestrict ") {
            continue;
        }
        if trimmed == "BEGIN;" || trimmed == "COMMIT;" {
            continue;
        }
        if trimmed.starts_with("COPY ") && trimmed.ends_with(" FROM stdin;") {
            let copy = trimmed.trim_end_matches(';').to_owned();
            execute(client, &statements).await?;
            statements.clear();
            copy_rows(client, &copy, &mut script).await?;
            continue;
        }
        statements.push_str(&text);
    }
    execute(client, &statements).await
}

/// Streams the rows after a COPY line, up to `\.`, into `copy`.
async fn copy_rows<R: tokio::io::AsyncBufRead + Unpin>(
    client: &Client,
    copy: &str,
    script: &mut R,
) -> Result<(), String> {
    let sink = client.copy_in::<_, Bytes>(copy).await.map_err(|e| format!("{copy}: {}", describe(&e)))?;
    futures::pin_mut!(sink);
    let mut chunk = Vec::with_capacity(COPY_CHUNK + 64 * 1024);
    loop {
        // Each line is read straight into the chunk; the end marker is taken back out.
        let start = chunk.len();
        let read =
            script.read_until(b'\n', &mut chunk).await.map_err(|e| format!("reading pg_restore's output: {e}"))?;
        if read == 0 {
            return Err(format!("pg_restore's output ended inside {copy}"));
        }
        if matches!(&chunk[start..], b"\\.\n" | b"\\.") {
            chunk.truncate(start);
            break;
        }
        if chunk.len() >= COPY_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(COPY_CHUNK + 64 * 1024));
            sink.send(Bytes::from(full)).await.map_err(|e| format!("{copy}: {}", describe(&e)))?;
        }
    }
    if !chunk.is_empty() {
        sink.send(Bytes::from(chunk)).await.map_err(|e| format!("{copy}: {}", describe(&e)))?;
    }
    sink.as_mut().finish().await.map_err(|e| format!("{copy}: {}", describe(&e)))?;
    Ok(())
}

async fn execute(client: &Client, sql: &str) -> Result<(), String> {
    if sql.trim().is_empty() {
        return Ok(());
    }
    client.batch_execute(sql).await.map_err(|e| {
        let statement = crate::domain::alert::cut_at_char(sql.trim(), 300);
        format!("{} (while running: {statement})", describe(&e))
    })
}

async fn query(client: &Client, sql: &str) -> Result<Vec<tokio_postgres::Row>, String> {
    client.query(sql, &[]).await.map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> TocEntry {
        TocEntry::parse(line).unwrap_or_else(|| panic!("{line}"))
    }

    #[test]
    fn table_of_contents_lines_are_read() {
        let data = entry("3518; 0 16455 TABLE DATA auth users supabase_auth_admin");
        assert_eq!((data.kind.as_str(), data.schema.as_str(), data.tag.as_str()), ("TABLE DATA", "auth", "users"));
        assert_eq!(data.owner, "supabase_auth_admin");
        let policy = entry("3513; 3256 16637 POLICY public messages messages are read by users postgres");
        assert_eq!((policy.kind.as_str(), policy.tag.as_str()), ("POLICY", "messages messages are read by users"));
        let acl = entry("3538; 0 0 ACL - SCHEMA public pg_database_owner");
        assert_eq!(acl.schema_named(), Some("public"));
        let extension = entry("2; 3079 16411 EXTENSION - pgcrypto ");
        assert_eq!(
            (extension.kind.as_str(), extension.tag.as_str(), extension.owner.as_str()),
            ("EXTENSION", "pgcrypto", "")
        );
        let function = entry("306; 1255 16640 FUNCTION public handle_new_user() postgres");
        assert_eq!(function.tag, "handle_new_user()");
        let fk = entry("3361; 2606 16615 FK CONSTRAINT public billing billing_user_id_fkey postgres");
        assert_eq!((fk.kind.as_str(), fk.tag.as_str()), ("FK CONSTRAINT", "billing billing_user_id_fkey"));
        assert!(TocEntry::parse(";     Dump Version: 1.14-0").is_none());
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
