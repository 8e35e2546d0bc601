//! What the restore keeps as the project had it: the tables its publications stream, and the
//! restoring role's default privileges (set aside while the dump's objects are made).

use tokio_postgres::Client;

use super::error::LiveError;
use super::script::{execute, query};

/// The project's publications and the tables in them (`supabase_realtime`, which Realtime
/// streams): a table made again has left them.
pub(super) struct Publications(Vec<(String, String)>);

impl Publications {
    pub(super) async fn read(client: &Client) -> Result<Publications, LiveError> {
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

    pub(super) async fn put_back(&self, client: &Client) -> Result<(), LiveError> {
        for statement in self.missing(client).await? {
            execute(client, &statement).await?;
        }
        Ok(())
    }

    /// The statements that put back the tables the publications had and lack now.
    pub(super) async fn missing(&self, client: &Client) -> Result<Vec<String>, LiveError> {
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
pub(super) struct DefaultPrivileges(Vec<DefaultGrant>);

struct DefaultGrant {
    /// `IN SCHEMA x `, or empty for the role's defaults everywhere.
    scope: String,
    objects: &'static str,
    grantee: String,
    privilege: String,
    grantable: bool,
}

impl DefaultPrivileges {
    pub(super) async fn read(client: &Client) -> Result<DefaultPrivileges, LiveError> {
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
                other => return Err(LiveError::UnknownDefaultPrivilege(other.to_owned())),
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

    pub(super) async fn set_aside(&self, client: &Client) -> Result<(), LiveError> {
        for grant in &self.0 {
            let DefaultGrant { scope, objects, grantee, privilege, .. } = grant;
            let sql = format!("ALTER DEFAULT PRIVILEGES {scope}REVOKE {privilege} ON {objects} FROM {grantee}");
            execute(client, &sql).await?;
        }
        Ok(())
    }

    pub(super) async fn put_back(&self, client: &Client) -> Result<(), LiveError> {
        for grant in &self.0 {
            let DefaultGrant { scope, objects, grantee, privilege, grantable } = grant;
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            let sql = format!("ALTER DEFAULT PRIVILEGES {scope}GRANT {privilege} ON {objects} TO {grantee}{option}");
            execute(client, &sql).await?;
        }
        Ok(())
    }
}
