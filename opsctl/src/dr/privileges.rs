//! Write privileges on the relations the connected role owns, and the other catalog reads the
//! freeze and the thaw make.

use ops_shared::postgres::quote_ident;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::{DrError, refused};

/// Table privileges that write, which the freeze takes from every role but the owner.
const TABLE_WRITES: &[&str] = &["INSERT", "UPDATE", "DELETE", "TRUNCATE"];
/// Sequence privileges that advance a sequence (`nextval`, `setval`).
const SEQUENCE_WRITES: &[&str] = &["USAGE", "UPDATE"];
/// Schemas of Supabase's services that a backup keeps but the app does not own.
const SERVICE_SCHEMAS: &[&str] = &["auth", "storage"];

/// One write privilege the freeze took away, as `GRANT` gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePrivilege {
    pub schema: String,
    pub relation: String,
    /// The column, for a column's own privilege (`GRANT UPDATE (col) ON …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Whether the relation is a sequence (else a table, view or foreign table).
    pub sequence: bool,
    /// The role it was granted to; none for PUBLIC.
    pub grantee: Option<String>,
    pub privilege: String,
    /// Granted `WITH GRANT OPTION`.
    pub grantable: bool,
}

impl WritePrivilege {
    pub(super) fn object(&self) -> String {
        let kind = if self.sequence { "SEQUENCE" } else { "TABLE" };
        let column = self.column.as_deref().map_or(String::new(), |c| format!(" ({})", quote_ident(c)));
        format!("{}{column} ON {kind} {}.{}", self.privilege, quote_ident(&self.schema), quote_ident(&self.relation))
    }

    pub(super) fn grantee(&self) -> String {
        self.grantee.as_deref().map_or("PUBLIC".to_owned(), quote_ident)
    }

    pub(super) fn revoke(&self) -> String {
        format!("REVOKE {} FROM {};\n", self.object(), self.grantee())
    }

    pub(super) fn grant(&self) -> String {
        let option = if self.grantable { " WITH GRANT OPTION" } else { "" };
        format!("GRANT {} TO {}{option};\n", self.object(), self.grantee())
    }
}

/// The write privileges granted on the relations the role owns, columns' included, with whether
/// the owner granted each (and who did).
const WRITE_PRIVILEGES: &str = "WITH owned AS ( \
         SELECT c.oid, n.nspname::text AS schema, c.relname::text AS relation, c.relkind = 'S' AS sequence, \
                c.relacl, c.relowner \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
           AND c.relkind IN ('r', 'p', 'v', 'f', 'S') \
           AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype = 'e')), \
     granted AS ( \
         SELECT o.schema, o.relation, NULL::text AS col, o.sequence, o.relowner, a.* \
         FROM owned o, aclexplode(o.relacl) a \
         UNION ALL \
         SELECT o.schema, o.relation, t.attname::text, o.sequence, o.relowner, a.* \
         FROM owned o JOIN pg_attribute t ON t.attrelid = o.oid AND t.attnum > 0 AND NOT t.attisdropped, \
              aclexplode(t.attacl) a) \
     SELECT schema, relation, col, sequence, \
            CASE WHEN grantee = 0 THEN NULL ELSE pg_get_userbyid(grantee)::text END, \
            privilege_type, is_grantable, grantor = relowner, pg_get_userbyid(grantor)::text \
     FROM granted \
     WHERE grantee <> relowner \
       AND privilege_type = ANY (CASE WHEN sequence THEN $2::text[] ELSE $1::text[] END) \
     ORDER BY 1, 2, 3 NULLS FIRST, 5 NULLS FIRST, 6";

/// The write privileges granted now on the relations the connected role owns outside the
/// platform's schemas, to every role but the owner; and what is left because a grantee
/// passed the privilege on.
pub(super) async fn write_privileges(client: &Client) -> Result<(Vec<WritePrivilege>, Vec<String>), DrError> {
    let rows = client
        .query(WRITE_PRIVILEGES, &[&TABLE_WRITES, &SEQUENCE_WRITES])
        .await
        .map_err(|e| refused("reading the write privileges", e))?;
    let mut granted = Vec::new();
    // (schema, relation, privilege, grantor) of every grant made by a grantee with the grant
    // option: the owner cannot take those back, nor its own grant to that grantee.
    let mut passed_on: Vec<PassedOn> = Vec::new();
    for row in rows {
        let privilege = WritePrivilege {
            schema: row.get(0),
            relation: row.get(1),
            column: row.get(2),
            sequence: row.get(3),
            grantee: row.get(4),
            privilege: row.get(5),
            grantable: row.get(6),
        };
        if platform_schema(&privilege.schema) {
            continue;
        }
        let (by_owner, grantor): (bool, String) = (row.get(7), row.get(8));
        if !by_owner {
            let passer = (privilege.schema.clone(), privilege.relation.clone(), privilege.privilege.clone(), grantor);
            if !passed_on.contains(&passer) {
                passed_on.push(passer);
            }
        }
        granted.push((privilege, by_owner));
    }
    Ok(takeable(granted, passed_on))
}

/// A grant a grantee made with its grant option: (schema, relation, privilege, grantor).
type PassedOn = (String, String, String, String);

/// The owner's own grants it can take back (not those to a grantee that passed them on), and
/// a line for each grant passed on.
fn takeable(granted: Vec<(WritePrivilege, bool)>, passed_on: Vec<PassedOn>) -> (Vec<WritePrivilege>, Vec<String>) {
    let privileges = granted
        .into_iter()
        .filter(|(p, by_owner)| {
            *by_owner
                && !passed_on.iter().any(|(schema, relation, privilege, grantor)| {
                    *schema == p.schema
                        && *relation == p.relation
                        && *privilege == p.privilege
                        && p.grantee.as_deref() == Some(grantor.as_str())
                })
        })
        .map(|(p, _)| p)
        .collect();
    let not_done = passed_on
        .into_iter()
        .map(|(schema, relation, privilege, grantor)| {
            format!(
                "{privilege} on {schema}.{relation}: {grantor} passed it on, and taking it back would lose that \
                 grant, so {grantor} and those it granted it to keep it"
            )
        })
        .collect();
    (privileges, not_done)
}

/// Ways to write the freeze leaves open: `SECURITY DEFINER` functions the role owns, and
/// writable relations of other owners, outside the platform's schemas.
pub(super) async fn open_write_paths(client: &Client) -> Result<Vec<String>, DrError> {
    let rows = client
        .query(
            "SELECT n.nspname::text, format('function %I.%I(%s): SECURITY DEFINER, it writes as its owner %I', \
                    n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), current_user) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prosecdef AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                               AND d.objid = p.oid AND d.deptype = 'e') \
             UNION ALL \
             SELECT n.nspname::text, format('%I.%I: owned by %I, whose privileges the role cannot take away', \
                    n.nspname, c.relname, pg_get_userbyid(c.relowner)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'f') \
               AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) \
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                               AND d.objid = c.oid AND d.deptype = 'e') \
               AND EXISTS (SELECT FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner \
                           AND a.privilege_type = ANY ($1::text[])) \
             ORDER BY 2",
            &[&TABLE_WRITES],
        )
        .await
        .map_err(|e| refused("looking for ways to write the freeze leaves open", e))?;
    Ok(rows.iter().filter(|row| !platform_schema(row.get(0))).map(|row| row.get(1)).collect())
}

/// The recorded privileges whose relation (and column) still exists and is the role's, and
/// the others.
pub(super) async fn still_there(
    client: &Client,
    privileges: &[WritePrivilege],
) -> Result<(Vec<WritePrivilege>, Vec<WritePrivilege>), DrError> {
    let schemas: Vec<&str> = privileges.iter().map(|p| p.schema.as_str()).collect();
    let relations: Vec<&str> = privileges.iter().map(|p| p.relation.as_str()).collect();
    let columns: Vec<Option<&str>> = privileges.iter().map(|p| p.column.as_deref()).collect();
    let rows = client
        .query(
            "SELECT p.i::int FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS p(s, r, col, i) \
             WHERE EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                           WHERE n.nspname = p.s AND c.relname = p.r \
                             AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                             AND (p.col IS NULL OR EXISTS (SELECT FROM pg_attribute t WHERE t.attrelid = c.oid \
                                  AND t.attname = p.col AND t.attnum > 0 AND NOT t.attisdropped)))",
            &[&schemas, &relations, &columns],
        )
        .await
        .map_err(|e| refused("looking for the frozen relations", e))?;
    let present: Vec<usize> = rows.iter().filter_map(|row| usize::try_from(row.get::<_, i32>(0) - 1).ok()).collect();
    let (kept, gone): (Vec<_>, Vec<_>) = privileges.iter().cloned().enumerate().partition(|(i, _)| present.contains(i));
    Ok((kept.into_iter().map(|(_, p)| p).collect(), gone.into_iter().map(|(_, p)| p).collect()))
}

/// Ends the database's other client sessions the role may end; returns (ended, left). A
/// superuser's sessions (Supabase's own) are beyond a non-superuser, and left.
pub(super) async fn end_sessions(client: &Client, database: &str) -> Result<(u64, u64), DrError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE CASE WHEN may_end THEN pg_terminate_backend(pid) ELSE false END), \
                    count(*) FILTER (WHERE NOT may_end) \
             FROM (SELECT a.pid, \
                          (NOT coalesce(r.rolsuper, false) \
                           OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) \
                          AND (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE')) AS may_end \
                   FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid \
                   WHERE a.datname = $1 AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend') s",
            &[&database],
        )
        .await
        .map_err(|e| refused("ending the open sessions", e))?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok((count(0), count(1)))
}

/// The database's own `default_transaction_read_only`, if it sets one.
pub(super) async fn read_only_setting(client: &Client, database: &str) -> Result<Option<String>, DrError> {
    let rows = client
        .query(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE d.datname = $1 AND s.setrole = 0",
            &[&database],
        )
        .await
        .map_err(|e| refused("reading the database's settings", e))?;
    Ok(rows.iter().find_map(|row| {
        let settings: Vec<String> = row.get(0);
        settings.iter().find_map(|s| s.strip_prefix("default_transaction_read_only=").map(str::to_owned))
    }))
}

pub(super) fn platform_schema(schema: &str) -> bool {
    SERVICE_SCHEMAS.contains(&schema) || ops_shared::backup::scope::platform_schema(schema).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dr::freeze_key;

    #[test]
    fn a_write_privilege_is_taken_and_given_back_as_it_was_granted() {
        let column = WritePrivilege {
            schema: "public".into(),
            relation: "Profiles".into(),
            column: Some("first name".into()),
            sequence: false,
            grantee: Some("authenticated".into()),
            privilege: "UPDATE".into(),
            grantable: true,
        };
        assert_eq!(
            column.revoke(),
            "REVOKE UPDATE (\"first name\") ON TABLE \"public\".\"Profiles\" FROM \"authenticated\";\n"
        );
        assert_eq!(
            column.grant(),
            "GRANT UPDATE (\"first name\") ON TABLE \"public\".\"Profiles\" TO \"authenticated\" WITH GRANT OPTION;\n"
        );
        let sequence = WritePrivilege {
            column: None,
            sequence: true,
            grantee: None,
            privilege: "USAGE".into(),
            grantable: false,
            ..column
        };
        assert_eq!(sequence.grant(), "GRANT USAGE ON SEQUENCE \"public\".\"Profiles\" TO PUBLIC;\n");
    }

    #[test]
    fn a_freeze_record_is_named_after_the_secret_arn() {
        assert_eq!(
            freeze_key("arn:aws:secretsmanager:eu-west-1:123456789012:secret:cineview-database-Ab12Cd"),
            "reports/dr-freezes/arn_aws_secretsmanager_eu-west-1_123456789012_secret_cineview-database-Ab12Cd.json"
        );
        assert!(platform_schema("auth") && platform_schema("realtime") && !platform_schema("public"));
    }
}
