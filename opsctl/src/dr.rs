//! The runbook's disaster-recovery steps as commands: stop writes to the production database
//! (`dr freeze`) and allow them again (`dr thaw`), judge the newest backups against the live
//! database (`dr assess`), and list backups with whether a restore test covered them
//! (`backups`). All act through the stored credentials (`<prefix>-database`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{MANIFEST_SUFFIX, Manifest, RestoreReport};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, describe, quote_ident, quote_literal};
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::AWSCURRENT;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::dr_restore::SOURCE;

/// The runbook's rule: a backup younger than this is restored without further ado.
pub const RESTORE_WITHOUT_ASKING_HOURS: f64 = 24.0;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DrError {
    #[error("cannot read the database secret {secret}: {detail}")]
    Secret { secret: String, detail: String },
    #[error("cannot reach the database of {secret}: {detail}")]
    Database { secret: String, detail: String },
    #[error("the database refused {what}: {detail}")]
    Refused { what: String, detail: String },
    #[error("cannot read the backups: {0} (allow s3:ListBucket and s3:GetObject on the backup bucket)")]
    Backups(String),
    #[error(
        "cannot read or write the freeze record {key}: {detail} (allow s3:ListBucket, s3:GetObject and \
         s3:PutObject on the backup bucket)"
    )]
    Record { key: String, detail: String },
}

impl DrError {
    pub const EXIT_CODE: u8 = 2;
}

/// The production database's credentials from its secret, and a connection with them.
pub async fn connect(store: &impl SecretVersions, secret: &str) -> Result<(DbCredentials, Client), DrError> {
    let value = store
        .value_at(secret, AWSCURRENT)
        .await
        .map_err(|e| DrError::Secret { secret: secret.to_owned(), detail: e.to_string() })?;
    let creds: DbCredentials = value
        .json(secret, AWSCURRENT)
        .map_err(|e| DrError::Secret { secret: secret.to_owned(), detail: e.to_string() })?;
    let client = connect_with(&creds, secret).await?;
    Ok((creds, client))
}

/// A connection with `creds` (of `secret`) whose own transactions may write.
async fn connect_with(creds: &DbCredentials, secret: &str) -> Result<Client, DrError> {
    let client = creds
        .connect(CONNECT_TIMEOUT)
        .await
        .map_err(|e| DrError::Database { secret: secret.to_owned(), detail: e.to_string() })?;
    // A session opened while the database is frozen is read-only itself: it could neither
    // freeze again nor thaw.
    client
        .batch_execute("SET default_transaction_read_only = off")
        .await
        .map_err(|e| refused("SET default_transaction_read_only", &e))?;
    Ok(client)
}

/// Where the freeze records are kept in the backup bucket: outside the database, so that a
/// `dr restore` of it cannot take the record of what the freeze changed with it.
pub const FREEZE_PREFIX: &str = "reports/dr-freezes/";
/// Table privileges that write, which the freeze takes from every role but the owner.
const TABLE_WRITES: &[&str] = &["INSERT", "UPDATE", "DELETE", "TRUNCATE"];
/// Sequence privileges that advance a sequence (`nextval`, `setval`).
const SEQUENCE_WRITES: &[&str] = &["USAGE", "UPDATE"];
/// Schemas of Supabase's services that a backup keeps but the app does not own.
const SERVICE_SCHEMAS: &[&str] = &["auth", "storage"];

/// `reports/dr-freezes/<secret>.json`, the secret's ARN with every character but letters,
/// digits, `-`, `_` and `.` written as `_`: Supabase names every database `postgres`.
pub fn freeze_key(secret_arn: &str) -> String {
    let name: String =
        secret_arn.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{FREEZE_PREFIX}{name}.json")
}

/// The ARN of the database secret (the freeze record is keyed by it, whatever name was typed).
pub async fn secret_arn(store: &impl SecretVersions, secret: &str) -> Result<String, DrError> {
    let description = store
        .describe(secret)
        .await
        .map_err(|e| DrError::Secret { secret: secret.to_owned(), detail: e.to_string() })?;
    if description.arn.is_empty() {
        return Err(DrError::Secret { secret: secret.to_owned(), detail: "Secrets Manager named no ARN".to_owned() });
    }
    Ok(description.arn)
}

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
    fn object(&self) -> String {
        let kind = if self.sequence { "SEQUENCE" } else { "TABLE" };
        let column = self.column.as_deref().map_or(String::new(), |c| format!(" ({})", quote_ident(c)));
        format!("{}{column} ON {kind} {}.{}", self.privilege, quote_ident(&self.schema), quote_ident(&self.relation))
    }

    fn grantee(&self) -> String {
        self.grantee.as_deref().map_or("PUBLIC".to_owned(), quote_ident)
    }

    fn revoke(&self) -> String {
        format!("REVOKE {} FROM {};\n", self.object(), self.grantee())
    }

    fn grant(&self) -> String {
        let option = if self.grantable { " WITH GRANT OPTION" } else { "" };
        format!("GRANT {} TO {}{option};\n", self.object(), self.grantee())
    }
}

/// What `dr freeze` changed, written to the bucket before it changes anything, and what
/// `dr thaw` puts back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FreezeRecord {
    pub secret: String,
    pub host: String,
    pub database: String,
    pub frozen_at: DateTime<Utc>,
    pub frozen_by: String,
    pub reason: String,
    /// `default_transaction_read_only` as the database's own setting had it; none when unset.
    pub read_only_before: Option<String>,
    /// Every write privilege the freeze took away, the first run's and those a later run (a
    /// second freeze, a restore's re-freeze) found granted again.
    pub revoked: Vec<WritePrivilege>,
    #[serde(default)]
    pub thawed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub thawed_by: Option<String>,
}

impl FreezeRecord {
    pub fn frozen(&self) -> bool {
        self.thawed_at.is_none()
    }
}

/// Who asks for a freeze and why, for the record and the alert.
#[derive(Debug, Clone)]
pub struct FreezeRequest {
    /// The database secret's ARN: the record's key.
    pub secret_arn: String,
    /// The caller's identity (STS), or the OS user.
    pub who: String,
    pub reason: String,
    /// The command that undoes the freeze, as the alert tells ops.
    pub thaw_command: String,
}

/// What `freeze`, `thaw` or a re-freeze did.
#[derive(Debug, Serialize)]
pub struct WriteSwitch {
    pub database: String,
    /// Whether writes are stopped now.
    pub frozen: bool,
    /// Whether new transactions are read-only now.
    pub read_only: bool,
    /// Whether this run changed anything (false: it already was so).
    pub changed: bool,
    /// Write privileges this run took away (freeze) or gave back (thaw).
    pub privileges: usize,
    /// Sessions ended so that they reconnect read-only (freeze only).
    pub sessions_ended: u64,
    /// Sessions the role may not end (a superuser's: the platform's own).
    pub sessions_left: u64,
    /// Ways to write the freeze leaves open (freeze), or privileges thaw could not give back.
    pub not_done: Vec<String>,
    /// The freeze record in the backup bucket.
    pub record_key: String,
    /// Whether the alert reached the alert topic (else why not); empty when none was due.
    pub alert: String,
}

impl WriteSwitch {
    pub fn render(&self) -> String {
        let state = if self.frozen {
            "stopped: no role but the owner may write, new transactions are read-only"
        } else if self.read_only {
            "allowed to the API roles, but new transactions are still read-only (so before the freeze)"
        } else {
            "allowed"
        };
        let mut out = format!(
            "{}: writes {state} ({}; {} write privileges {})\n",
            self.database,
            if self.changed { "changed now" } else { "already so" },
            self.privileges,
            if self.frozen { "taken away" } else { "given back" }
        );
        if self.sessions_ended > 0 || self.sessions_left > 0 {
            out.push_str(&format!(
                "  {} open sessions ended, {} left (a superuser's)\n",
                self.sessions_ended, self.sessions_left
            ));
        }
        for line in &self.not_done {
            out.push_str(&format!("  not stopped: {line}\n"));
        }
        out.push_str(&format!("  record: {}\n", self.record_key));
        if !self.alert.is_empty() {
            out.push_str(&format!("  alert: {}\n", self.alert));
        }
        out
    }
}

/// Stops writes, the Data API's included, within what Supabase lets `postgres` do (its
/// `supautils` forbids altering the API roles, so their privileges are taken away on the
/// objects the role owns instead):
///
/// - every table, view, foreign table and sequence the connected role owns, outside the
///   platform's schemas, loses its write privileges (INSERT, UPDATE, DELETE, TRUNCATE, and
///   columns' INSERT and UPDATE; a sequence's USAGE and UPDATE) for every role but the owner:
///   `anon`, `authenticated`, `service_role`, PUBLIC and the app's own roles. PostgREST's
///   writes run in an explicit read-write transaction as one of those roles, so this is what
///   stops them; reads keep their privileges;
/// - new transactions default to read-only (`ALTER DATABASE … SET default_transaction_read_only`),
///   and the database's other client sessions are ended so that they reconnect so;
/// - what was granted and set before is written to `reports/dr-freezes/<secret>.json` in the
///   backup bucket first, so that `thaw` puts it back exactly, even after a `dr restore`;
/// - one alert says who froze, when, why, and how to thaw.
///
/// What it cannot stop, and says so: the owner itself (`dr restore` writes as the owner), and
/// so a `SECURITY DEFINER` function it owns, which writes as the owner whoever calls it
/// (taking EXECUTE away would also break the row-level security policies that call such
/// functions to read); tables of other owners; the platform's services, which write `auth`
/// and `storage` as their own roles (sign-ups, and the profile trigger they fire, uploads);
/// a write privilege a grantee has passed on, for that grantee and those it granted it to
/// (taking it back would lose those grants). A second run keeps the first record and takes away what was granted since.
pub async fn freeze(
    client: &Client,
    creds: &DbCredentials,
    records: &impl ObjectStore,
    alerts: &impl AlertSink,
    request: &FreezeRequest,
) -> Result<WriteSwitch, DrError> {
    let key = freeze_key(&request.secret_arn);
    let earlier = read_record(records, &key).await?.filter(FreezeRecord::frozen);
    let first = earlier.is_none();
    let setting = read_only_setting(client, &creds.dbname).await?;
    let was_read_only = setting.as_deref() == Some("on");
    let record = match earlier {
        Some(record) => record,
        None => FreezeRecord {
            secret: request.secret_arn.clone(),
            host: creds.host.clone(),
            database: creds.dbname.clone(),
            frozen_at: Utc::now(),
            frozen_by: request.who.clone(),
            reason: request.reason.clone(),
            read_only_before: setting,
            revoked: Vec::new(),
            thawed_at: None,
            thawed_by: None,
        },
    };
    let mut switch = apply_freeze(client, records, &key, record, first).await?;
    switch.changed = first || switch.privileges > 0 || !was_read_only;
    let (ended, left) = end_sessions(client, &creds.dbname).await?;
    switch.sessions_ended = ended;
    switch.sessions_left = left;
    // A run that finds the record but not the setting finishes a freeze that stopped half-way.
    if first || !was_read_only {
        let alert = freeze_alert(creds, request, &switch);
        switch.alert = publish(alerts, &alert).await;
    }
    Ok(switch)
}

/// After a `dr restore` into a frozen database: the restored tables carry the privileges of
/// the dump, unfrozen, so the freeze is applied again to them (and what it takes is added to
/// the record, for `thaw` to give back). `None` when the database is not frozen.
pub async fn reapply_freeze_if_frozen(
    target: &DbCredentials,
    records: &impl ObjectStore,
    secret_arn: &str,
) -> Result<Option<WriteSwitch>, DrError> {
    let key = freeze_key(secret_arn);
    let Some(record) = read_record(records, &key).await?.filter(FreezeRecord::frozen) else {
        return Ok(None);
    };
    let client = connect_with(target, secret_arn).await?;
    apply_freeze(&client, records, &key, record, false).await.map(Some)
}

/// Takes away the write privileges granted now (adding them to the record, which is written
/// first) and makes new transactions read-only, in one transaction.
async fn apply_freeze(
    client: &Client,
    records: &impl ObjectStore,
    key: &str,
    mut record: FreezeRecord,
    first: bool,
) -> Result<WriteSwitch, DrError> {
    let (granted, mut not_done) = write_privileges(client).await?;
    // A relation a restore made again is granted what the record already lists: taken away
    // again, recorded once.
    let unrecorded: Vec<WritePrivilege> = granted.iter().filter(|p| !record.revoked.contains(p)).cloned().collect();
    if first || !unrecorded.is_empty() {
        record.revoked.extend(unrecorded);
        write_record(records, key, &record).await?;
    }
    let mut sql = String::from("BEGIN;\n");
    sql.extend(granted.iter().map(WritePrivilege::revoke));
    sql.push_str(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on;\nCOMMIT;",
        quote_ident(&record.database)
    ));
    if let Err(err) = client.batch_execute(&sql).await {
        // Leaves the failed transaction, for the session's next statements.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(refused("taking the write privileges away", &err));
    }
    not_done.extend(open_write_paths(client).await?);
    Ok(WriteSwitch {
        database: record.database,
        frozen: true,
        read_only: true,
        changed: !granted.is_empty(),
        privileges: granted.len(),
        sessions_ended: 0,
        sessions_left: 0,
        not_done,
        record_key: key.to_owned(),
        alert: String::new(),
    })
}

/// Allows writes again: gives back every privilege the freeze record lists and puts the
/// database's read-only setting back as it was. Without a record (a freeze by an older
/// opsctl) it resets the setting; with a thawed one it does nothing.
pub async fn thaw(
    client: &Client,
    creds: &DbCredentials,
    records: &impl ObjectStore,
    alerts: &impl AlertSink,
    secret_arn: &str,
    who: &str,
) -> Result<WriteSwitch, DrError> {
    let key = freeze_key(secret_arn);
    let read_only_now = read_only_setting(client, &creds.dbname).await?;
    let mut switch = WriteSwitch {
        database: creds.dbname.clone(),
        frozen: false,
        read_only: read_only_now.as_deref() == Some("on"),
        changed: false,
        privileges: 0,
        sessions_ended: 0,
        sessions_left: 0,
        not_done: Vec::new(),
        record_key: key.clone(),
        alert: String::new(),
    };
    let record = match read_record(records, &key).await? {
        Some(record) if !record.frozen() => return Ok(switch),
        Some(record) => record,
        None => {
            if switch.read_only {
                let sql = format!("ALTER DATABASE {} RESET default_transaction_read_only", quote_ident(&creds.dbname));
                client.batch_execute(&sql).await.map_err(|e| refused("ALTER DATABASE … RESET", &e))?;
                switch.read_only = false;
                switch.changed = true;
            }
            return Ok(switch);
        }
    };
    let (present, missing) = still_there(client, &record.revoked).await?;
    let mut sql = String::from("BEGIN;\n");
    sql.extend(present.iter().map(|p| p.grant()));
    let database = quote_ident(&record.database);
    sql.push_str(&match record.read_only_before.as_deref() {
        None => format!("ALTER DATABASE {database} RESET default_transaction_read_only;\n"),
        Some(value) => {
            format!("ALTER DATABASE {database} SET default_transaction_read_only = {};\n", quote_literal(value))
        }
    });
    sql.push_str("COMMIT;");
    if let Err(err) = client.batch_execute(&sql).await {
        // Leaves the failed transaction, for the session's next statements.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(refused("giving the write privileges back", &err));
    }
    switch.read_only = record.read_only_before.as_deref() == Some("on");
    switch.changed = true;
    switch.privileges = present.len();
    switch.not_done = missing
        .iter()
        .map(|p| format!("{} to {}: the object is gone or no longer the role's", p.object(), p.grantee()))
        .collect();
    let thawed = FreezeRecord { thawed_at: Some(Utc::now()), thawed_by: Some(who.to_owned()), ..record };
    write_record(records, &key, &thawed).await?;
    let alert = Alert::new(
        SOURCE,
        Severity::Warning,
        dedup_key(secret_arn),
        format!("Writes stopped: {}", thawed.database),
    )
    .resolved()
    .summary(format!(
        "{who} allowed writes to {} on {} again at {} ({} write privileges given back); frozen since {} by {}: {}",
        thawed.database,
        thawed.host,
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        present.len(),
        thawed.frozen_at.format("%Y-%m-%d %H:%M UTC"),
        thawed.frozen_by,
        thawed.reason
    ))
    .detail("thawed_by", who.to_owned())
    .detail("record", key);
    switch.alert = publish(alerts, &alert).await;
    Ok(switch)
}

/// The write privileges granted now on the relations the connected role owns outside the
/// platform's schemas, to every role but the owner; and what is left because a grantee
/// passed the privilege on.
async fn write_privileges(client: &Client) -> Result<(Vec<WritePrivilege>, Vec<String>), DrError> {
    let rows = client
        .query(
            "WITH owned AS ( \
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
             ORDER BY 1, 2, 3 NULLS FIRST, 5 NULLS FIRST, 6",
            &[&TABLE_WRITES, &SEQUENCE_WRITES],
        )
        .await
        .map_err(|e| refused("reading the write privileges", &e))?;
    let mut granted = Vec::new();
    // (schema, relation, privilege, grantor) of every grant made by a grantee with the grant
    // option: the owner cannot take those back, nor its own grant to that grantee.
    let mut passed_on: Vec<(String, String, String, String)> = Vec::new();
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
    Ok((privileges, not_done))
}

/// Ways to write the freeze leaves open: `SECURITY DEFINER` functions the role owns, and
/// writable relations of other owners, outside the platform's schemas.
async fn open_write_paths(client: &Client) -> Result<Vec<String>, DrError> {
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
        .map_err(|e| refused("looking for ways to write the freeze leaves open", &e))?;
    Ok(rows.iter().filter(|row| !platform_schema(row.get(0))).map(|row| row.get(1)).collect())
}

/// The recorded privileges whose relation (and column) still exists and is the role's, and
/// the others.
async fn still_there(
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
        .map_err(|e| refused("looking for the frozen relations", &e))?;
    let present: Vec<usize> = rows.iter().filter_map(|row| usize::try_from(row.get::<_, i32>(0) - 1).ok()).collect();
    let (kept, gone): (Vec<_>, Vec<_>) = privileges.iter().cloned().enumerate().partition(|(i, _)| present.contains(i));
    Ok((kept.into_iter().map(|(_, p)| p).collect(), gone.into_iter().map(|(_, p)| p).collect()))
}

/// Ends the database's other client sessions the role may end; returns (ended, left). A
/// superuser's sessions (Supabase's own) are beyond a non-superuser, and left.
async fn end_sessions(client: &Client, database: &str) -> Result<(u64, u64), DrError> {
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
        .map_err(|e| refused("ending the open sessions", &e))?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok((count(0), count(1)))
}

/// The database's own `default_transaction_read_only`, if it sets one.
async fn read_only_setting(client: &Client, database: &str) -> Result<Option<String>, DrError> {
    let rows = client
        .query(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE d.datname = $1 AND s.setrole = 0",
            &[&database],
        )
        .await
        .map_err(|e| refused("reading the database's settings", &e))?;
    Ok(rows.iter().find_map(|row| {
        let settings: Vec<String> = row.get(0);
        settings.iter().find_map(|s| s.strip_prefix("default_transaction_read_only=").map(str::to_owned))
    }))
}

fn platform_schema(schema: &str) -> bool {
    SERVICE_SCHEMAS.contains(&schema) || ops_shared::backup::scope::platform_schema(schema).is_some()
}

fn dedup_key(secret_arn: &str) -> String {
    format!("{SOURCE}:dr-freeze:{secret_arn}")
}

fn freeze_alert(creds: &DbCredentials, request: &FreezeRequest, switch: &WriteSwitch) -> Alert {
    let mut summary = format!(
        "{} stopped writes to {} on {} at {}: {}. The app and the Data API can read but not write. \
         Allow writes again with: {}",
        request.who,
        creds.dbname,
        creds.host,
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        request.reason,
        request.thaw_command
    );
    if !switch.not_done.is_empty() {
        summary.push_str(&format!(". Not stopped: {}", switch.not_done.join("; ")));
    }
    Alert::new(SOURCE, Severity::Warning, dedup_key(&request.secret_arn), format!("Writes stopped: {}", creds.dbname))
        .summary(summary)
        .detail("frozen_by", request.who.clone())
        .detail("reason", request.reason.clone())
        .detail("thaw", request.thaw_command.clone())
        .detail("record", switch.record_key.clone())
        .detail("write_privileges_taken", switch.privileges)
}

/// Publishes `alert`; says whether it went (an unsent alert is reported, never dropped).
async fn publish(alerts: &impl AlertSink, alert: &Alert) -> String {
    match alerts.publish(alert).await {
        Ok(()) => "sent".to_owned(),
        Err(err) => {
            tracing::error!(error = %err, "the freeze alert could not be published");
            format!("NOT sent: {err}")
        }
    }
}

async fn read_record(records: &impl ObjectStore, key: &str) -> Result<Option<FreezeRecord>, DrError> {
    let failed = |detail: String| DrError::Record { key: key.to_owned(), detail };
    let listed = records.list(key).await.map_err(|e| failed(e.to_string()))?;
    if !listed.iter().any(|o| o.key == key) {
        return Ok(None);
    }
    let body = records.get(key).await.map_err(|e| failed(e.to_string()))?;
    let body = body.collect().await.map_err(|e| failed(e.to_string()))?;
    serde_json::from_slice(&body).map(Some).map_err(|e| failed(format!("unreadable: {e}")))
}

async fn write_record(records: &impl ObjectStore, key: &str, record: &FreezeRecord) -> Result<(), DrError> {
    let failed = |detail: String| DrError::Record { key: key.to_owned(), detail };
    let body = serde_json::to_vec_pretty(record).map_err(|e| failed(e.to_string()))?;
    records.put(key, body, "application/json").await.map_err(|e| failed(e.to_string()))
}

fn refused(what: &str, err: &tokio_postgres::Error) -> DrError {
    DrError::Refused { what: what.to_owned(), detail: describe(err) }
}

/// One backup as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    pub key: String,
    pub label: Option<String>,
    pub finished_at: DateTime<Utc>,
    pub age_hours: f64,
    pub size_bytes: u64,
    pub rows: i64,
    /// The result of the newest restore test of this backup, if any.
    pub restore_test: Option<String>,
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Every backup (newest first), with the restore tests that covered them.
pub async fn backups(
    objects: &impl ObjectStore,
    backup_prefix: &str,
    report_prefix: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BackupEntry>, DrError> {
    let manifests: Vec<Manifest> = read_all_json(objects, backup_prefix, MANIFEST_SUFFIX).await?;
    let reports: Vec<RestoreReport> = read_all_json(objects, report_prefix, ".json").await?;
    let mut entries: Vec<BackupEntry> = manifests
        .into_iter()
        .map(|manifest| {
            let tested = reports
                .iter()
                .filter(|r| r.backup_key == manifest.key)
                .max_by_key(|r| r.verified_at)
                .map(|r| r.result.clone());
            BackupEntry {
                key: manifest.key.clone(),
                label: manifest.label.clone(),
                finished_at: manifest.finished_at,
                age_hours: (now - manifest.finished_at).num_minutes() as f64 / 60.0,
                size_bytes: manifest.size_bytes,
                rows: manifest.total_rows(),
                restore_test: tested,
                manifest,
            }
        })
        .collect();
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.finished_at));
    Ok(entries)
}

async fn read_all_json<T: serde::de::DeserializeOwned>(
    objects: &impl ObjectStore,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<T>, DrError> {
    let listed = objects.list(prefix).await.map_err(|e| DrError::Backups(e.to_string()))?;
    let mut parsed = Vec::new();
    for object in listed.iter().filter(|o| o.key.ends_with(suffix)) {
        let body = objects.get(&object.key).await.map_err(|e| DrError::Backups(e.to_string()))?;
        let body = body.collect().await.map_err(|e| DrError::Backups(e.to_string()))?;
        match serde_json::from_slice(&body) {
            Ok(value) => parsed.push(value),
            // One unreadable file must not hide the others.
            Err(err) => {
                tracing::warn!(key = %object.key, error = %err, "skipping a file that is not what the functions write")
            }
        }
    }
    Ok(parsed)
}

/// A table's live rows beside the newest backup's count.
#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub table: String,
    pub backup: i64,
    /// `None` when the table is gone from the live database.
    pub live: Option<i64>,
}

/// What `dr assess` found and advises.
#[derive(Debug, Serialize)]
pub struct Assessment {
    pub newest: Vec<BackupEntry>,
    pub tables: Vec<TableRows>,
    pub advice: String,
    pub restore_without_asking: bool,
}

/// The newest backups of the database behind `creds` (backups of other servers or databases
/// and the safety backups `dr restore` takes are never its latest), each table's live rows
/// beside the newest backup's count, and the runbook's rule: under 24 hours restore, older
/// decide with the team.
pub async fn assess(client: &Client, creds: &DbCredentials, entries: Vec<BackupEntry>) -> Result<Assessment, DrError> {
    let entries: Vec<BackupEntry> = entries
        .into_iter()
        .filter(|e| !e.manifest.is_safety_backup() && e.manifest.is_of_database(&creds.host, creds.port, &creds.dbname))
        .collect();
    let Some(newest) = entries.first() else {
        return Ok(Assessment {
            newest: Vec::new(),
            tables: Vec::new(),
            advice: "no backup exists: restore from Supabase's own backups, and decide with the team".to_owned(),
            restore_without_asking: false,
        });
    };
    let mut tables = Vec::new();
    for count in &newest.manifest.tables {
        let sql = format!("SELECT count(*) FROM {}.{}", quote_ident(&count.schema), quote_ident(&count.table));
        let live = match client.query_one(&sql, &[]).await {
            Ok(row) => Some(row.get::<_, i64>(0)),
            Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => None,
            Err(err) => return Err(refused(&format!("counting {}.{}", count.schema, count.table), &err)),
        };
        tables.push(TableRows { table: format!("{}.{}", count.schema, count.table), backup: count.rows, live });
    }
    let restore_without_asking = newest.age_hours < RESTORE_WITHOUT_ASKING_HOURS;
    let advice = if restore_without_asking {
        format!(
            "the newest backup is {:.1} h old (under {RESTORE_WITHOUT_ASKING_HOURS} h): restore it \
             (opsctl dr restore --backup {} --target <secret> --confirm {}/{})",
            newest.age_hours, newest.key, creds.host, creds.dbname
        )
    } else {
        format!(
            "the newest backup is {:.1} h old (over {RESTORE_WITHOUT_ASKING_HOURS} h): decide with the team whether \
             to restore it, or to recover from Supabase's point-in-time backups",
            newest.age_hours
        )
    };
    Ok(Assessment { newest: entries.into_iter().take(3).collect(), tables, advice, restore_without_asking })
}

impl Assessment {
    pub fn render(&self) -> String {
        let mut out = String::from("Newest backups\n");
        for b in &self.newest {
            out.push_str(&format!("  {:>6.1} h old  {:>10} rows  {}\n", b.age_hours, b.rows, b.key));
        }
        if !self.tables.is_empty() {
            out.push_str("\nRows: live database beside the newest backup\n");
            for t in &self.tables {
                let live = t.live.map_or("(table missing)".to_owned(), |n| n.to_string());
                out.push_str(&format!("  {:<40} live {:>12}  backup {:>12}\n", t.table, live, t.backup));
            }
        }
        out.push_str(&format!("\nAdvice: {}\n", self.advice));
        out
    }
}

/// `backups` as a table.
pub fn render_backups(entries: &[BackupEntry]) -> String {
    if entries.is_empty() {
        return "no backups\n".to_owned();
    }
    let mut out = format!("{:<8} {:>9} {:>10} {:<14} {:<14} key\n", "age", "size", "rows", "label", "restore test");
    for b in entries {
        out.push_str(&format!(
            "{:<8} {:>9} {:>10} {:<14} {:<14} {}\n",
            format!("{:.1} h", b.age_hours),
            format!("{:.1} MB", b.size_bytes as f64 / 1e6),
            b.rows,
            b.label.as_deref().unwrap_or("-"),
            b.restore_test.as_deref().unwrap_or("not tested"),
            b.key
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
