//! The runbook's disaster-recovery steps as commands: stop writes to the production database
//! (`dr freeze`) and allow them again (`dr thaw`), judge the newest backups against the live
//! database (`dr assess`), and list backups with whether a restore test covered them
//! (`backups`). All act through the stored credentials (`<prefix>-database`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::backup::{MANIFEST_SUFFIX, Manifest, RestoreReport};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, describe, quote_ident};
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::AWSCURRENT;
use serde::Serialize;
use tokio_postgres::Client;

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
    Ok((creds, client))
}

/// What `freeze` or `thaw` did.
#[derive(Debug, Serialize)]
pub struct WriteSwitch {
    pub database: String,
    /// Whether new transactions are read-only now.
    pub read_only: bool,
    /// Whether this run changed the setting (false: it already was so).
    pub changed: bool,
    /// Sessions ended so that they reconnect read-only (freeze only).
    pub sessions_ended: u64,
}

/// Stops writes: new transactions default to read-only, and the database's other client
/// sessions are ended so that they reconnect read-only. Repeating it ends new sessions only.
pub async fn freeze(client: &Client, creds: &DbCredentials) -> Result<WriteSwitch, DrError> {
    let changed = !read_only(client, &creds.dbname).await?;
    let sql = format!("ALTER DATABASE {} SET default_transaction_read_only = on", quote_ident(&creds.dbname));
    client.batch_execute(&sql).await.map_err(|e| refused("ALTER DATABASE … read_only", &e))?;
    let ended = client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            &[&creds.dbname],
        )
        .await
        .map_err(|e| refused("ending the open sessions", &e))?;
    let sessions_ended = u64::try_from(ended.get::<_, i64>(0)).unwrap_or(0);
    Ok(WriteSwitch { database: creds.dbname.clone(), read_only: true, changed, sessions_ended })
}

/// Allows writes again (new sessions); idempotent.
pub async fn thaw(client: &Client, creds: &DbCredentials) -> Result<WriteSwitch, DrError> {
    let changed = read_only(client, &creds.dbname).await?;
    let sql = format!("ALTER DATABASE {} RESET default_transaction_read_only", quote_ident(&creds.dbname));
    client.batch_execute(&sql).await.map_err(|e| refused("ALTER DATABASE … RESET", &e))?;
    Ok(WriteSwitch { database: creds.dbname.clone(), read_only: false, changed, sessions_ended: 0 })
}

/// Whether the database's own setting makes new transactions read-only.
async fn read_only(client: &Client, database: &str) -> Result<bool, DrError> {
    let rows = client
        .query(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE d.datname = $1 AND s.setrole = 0",
            &[&database],
        )
        .await
        .map_err(|e| refused("reading the database's settings", &e))?;
    Ok(rows.iter().any(|row| {
        let settings: Vec<String> = row.get(0);
        settings.iter().any(|s| s == "default_transaction_read_only=on")
    }))
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
