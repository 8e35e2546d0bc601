//! `dr freeze`, and the re-freeze after a `dr restore` into a frozen database.

use chrono::Utc;
use ops_shared::alert::{Alert, Severity};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, quote_ident};
use tokio_postgres::Client;

use super::loss::minute;
use super::privileges::{WritePrivilege, end_sessions, open_write_paths, read_only_setting, write_privileges};
use super::record::{FreezeRecord, FreezeRequest, WriteSwitch, current_freeze, freeze_key, write_record};
use super::{DrError, connect_with, refused};
use crate::dr_restore::SOURCE;
use crate::notice::{Audience, Notice, Told};

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
/// - one notice says who froze, when, why, and how to thaw: an alert to ops, and plain words to
///   the stakeholders when `audience` includes them.
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
    audience: &impl Audience,
    request: &FreezeRequest,
) -> Result<WriteSwitch, DrError> {
    let key = freeze_key(&request.secret_arn);
    let earlier = current_freeze(records, &request.secret_arn).await?;
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
            thaw_command: request.thaw_command.clone(),
        },
    };
    let mut switch = apply_freeze(client, records, &key, record.clone(), first).await?;
    switch.changed = first || switch.privileges > 0 || !was_read_only;
    let (ended, left) = end_sessions(client, &creds.dbname).await?;
    switch.sessions_ended = ended;
    switch.sessions_left = left;
    // A run that finds the record but not the setting finishes a freeze that stopped half-way.
    if first || !was_read_only {
        switch.told = audience.tell(&freeze_notice(creds, &record, request, &switch)).await;
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
    let Some(record) = current_freeze(records, secret_arn).await? else {
        return Ok(None);
    };
    let key = freeze_key(secret_arn);
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
        return Err(refused("taking the write privileges away", err));
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
        told: Told::default(),
    })
}

pub(super) fn dedup_key(secret_arn: &str) -> String {
    format!("{SOURCE}:dr-freeze:{secret_arn}")
}

/// Who stopped writes (the record's: a second run that finishes a freeze names the first),
/// since when, why, and how to allow them again.
fn freeze_notice(
    creds: &DbCredentials,
    record: &FreezeRecord,
    request: &FreezeRequest,
    switch: &WriteSwitch,
) -> Notice {
    let since = minute(record.frozen_at);
    let mut summary = format!(
        "{} stopped writes to {} on {} at {since}: {}. The app and the Data API can read but not write. \
         Allow writes again with: {}",
        record.frozen_by, creds.dbname, creds.host, record.reason, request.thaw_command
    );
    if !switch.not_done.is_empty() {
        summary.push_str(&format!(". Not stopped: {}", switch.not_done.join("; ")));
    }
    let alert = Alert::new(
        SOURCE,
        Severity::Warning,
        dedup_key(&request.secret_arn),
        format!("Writes stopped: {}", creds.dbname),
    )
    .summary(summary)
    .detail("frozen_by", record.frozen_by.clone())
    .detail("frozen_at", ops_shared::alert::rfc3339(record.frozen_at))
    .detail("reason", record.reason.clone())
    .detail("thaw", request.thaw_command.clone())
    .detail("record", switch.record_key.clone())
    .detail("write_privileges_taken", switch.privileges);
    let text = format!(
        "Writes to the database {} on {} are stopped since {since}, by {}.\n\
         Why: {}.\n\n\
         The app can still show its data, but it cannot save changes until writes are allowed again.\n\
         Next: the backups are assessed; further notices will say what data is lost and when the database is \
         restored.\n",
        creds.dbname, creds.host, record.frozen_by, record.reason
    );
    Notice { alert, subject: format!("Data recovery of {}: writes stopped since {since}", creds.dbname), text }
}
