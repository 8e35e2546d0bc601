//! `dr thaw`: every privilege and setting the freeze recorded, put back.

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, Severity};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, quote_ident, quote_literal};
use tokio_postgres::Client;

use super::freeze::dedup_key;
use super::loss::{minute, span};
use super::privileges::{WritePrivilege, read_only_setting, still_there};
use super::record::{FreezeRecord, WriteSwitch, freeze_key, read_record, write_record};
use super::{DrError, refused};
use crate::dr_restore::SOURCE;
use crate::notice::{Audience, Notice, Told};

/// Allows writes again: gives back every privilege the freeze record lists and puts the
/// database's read-only setting back as it was, and tells `audience` (ops resolve the freeze's
/// alert). Without a record (a freeze by an older opsctl) it resets the setting; with a thawed
/// one it does nothing.
pub async fn thaw(
    client: &Client,
    creds: &DbCredentials,
    records: &impl ObjectStore,
    audience: &impl Audience,
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
        told: Told::default(),
    };
    let record = match read_record::<FreezeRecord>(records, &key).await? {
        Some(record) if !record.frozen() => return Ok(switch),
        Some(record) => record,
        None => {
            reset_without_record(client, creds, &mut switch).await?;
            return Ok(switch);
        }
    };
    let (present, missing) = still_there(client, &record.revoked).await?;
    give_back(client, &record, &present).await?;
    switch.read_only = record.read_only_before.as_deref() == Some("on");
    switch.changed = true;
    switch.privileges = present.len();
    switch.not_done = missing
        .iter()
        .map(|p| format!("{} to {}: the object is gone or no longer the role's", p.object(), p.grantee()))
        .collect();
    let now = Utc::now();
    let thawed = FreezeRecord { thawed_at: Some(now), thawed_by: Some(who.to_owned()), ..record };
    write_record(records, &key, &thawed).await?;
    switch.told = audience.tell(&thaw_notice(&thawed, now, secret_arn, who, present.len(), &key)).await;
    Ok(switch)
}

/// A freeze without a record (an older opsctl's): the read-only setting reset, if it is on.
async fn reset_without_record(client: &Client, creds: &DbCredentials, switch: &mut WriteSwitch) -> Result<(), DrError> {
    if switch.read_only {
        let sql = format!("ALTER DATABASE {} RESET default_transaction_read_only", quote_ident(&creds.dbname));
        client.batch_execute(&sql).await.map_err(|e| refused("ALTER DATABASE … RESET", e))?;
        switch.read_only = false;
        switch.changed = true;
    }
    Ok(())
}

/// Grants `present` back and puts the read-only setting as the record found it, in one
/// transaction.
async fn give_back(client: &Client, record: &FreezeRecord, present: &[WritePrivilege]) -> Result<(), DrError> {
    let mut sql = String::from("BEGIN;\n");
    sql.extend(present.iter().map(WritePrivilege::grant));
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
        return Err(refused("giving the write privileges back", err));
    }
    Ok(())
}

/// The freeze's alert, resolved: who allowed writes again, and the freeze it ends; for the
/// stakeholders, since when writes are allowed and how long they were stopped.
fn thaw_notice(
    thawed: &FreezeRecord,
    now: DateTime<Utc>,
    secret_arn: &str,
    who: &str,
    given_back: usize,
    key: &str,
) -> Notice {
    let (frozen_at, database) = (minute(thawed.frozen_at), &thawed.database);
    let alert = Alert::new(SOURCE, Severity::Warning, dedup_key(secret_arn), format!("Writes stopped: {database}"))
        .resolved()
        .summary(format!(
            "{who} allowed writes to {database} on {} again at {} ({given_back} write privileges given back); frozen \
             since {frozen_at} by {}: {}",
            thawed.host,
            minute(now),
            thawed.frozen_by,
            thawed.reason
        ))
        .detail("thawed_by", who.to_owned())
        .detail("record", key.to_owned());
    let text = format!(
        "Writes to the database {database} on {} are allowed again since {}, by {who}: the app saves changes again.\n\
         They were stopped for {}, since {frozen_at} by {}: {}.\n",
        thawed.host,
        minute(now),
        span(now - thawed.frozen_at),
        thawed.frozen_by,
        thawed.reason
    );
    Notice { alert, subject: format!("Data recovery of {database}: writes allowed again"), text }
}
