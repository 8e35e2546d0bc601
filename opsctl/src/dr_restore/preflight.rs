//! The first step of a restore: the target read from its secret, confirmed by the operator,
//! reached and locked for this run, and the backup and its pg_restore found. Nothing is
//! touched yet.

use ops_shared::alert::AlertSink;
use ops_shared::backup::Manifest;
use ops_shared::objects::ObjectStore;
use ops_shared::pgtools::PgTool;
use ops_shared::postgres::{DbCredentials, describe};
use ops_shared::restore::{Selection, Verifier, pick_pg_restore};
use ops_shared::secrets::AWSCURRENT;
use tokio_postgres::Client;

use super::journal::{self, Journal, Phase};
use super::{CONNECT_TIMEOUT, RestoreError, RestoreRequest};

/// What the steps after the preflight work with. The restore lock is held while it lives.
pub(super) struct Prepared {
    pub creds: DbCredentials,
    /// The target's secret by ARN, whether its name or its ARN was typed: the journal's key.
    pub target_secret: String,
    pub database: String,
    pub manifest: Manifest,
    pub pg_restore: PgTool,
    /// An earlier restore into the target that did not finish.
    pub earlier: Option<Journal>,
    /// The connection that holds the restore lock.
    _lock: Client,
}

/// The advisory lock a restore holds on its target: `opsc`, `drrs` in ASCII.
const LOCK: (i32, i32) = (0x6f70_7363, 0x6472_7273);

pub(super) async fn preflight<S: ObjectStore, A: AlertSink>(
    verifier: &Verifier<S, A>,
    request: &RestoreRequest,
) -> Result<Prepared, RestoreError> {
    let (creds, target_secret) = read_target(verifier, request).await?;
    let named = format!("{}/{}", creds.host, creds.dbname);
    match request.confirm.as_deref() {
        None => return Err(RestoreError::NotConfirmed { target: named }),
        Some(given) if given != named => {
            return Err(RestoreError::WrongTarget { given: given.to_owned(), target: named });
        }
        Some(_) => {}
    }
    let database = creds.dbname.clone();
    let client = creds.connect(CONNECT_TIMEOUT).await.map_err(|source| RestoreError::Unreachable {
        secret: request.target_secret.clone(),
        database: database.clone(),
        source,
    })?;
    one_run_at_a_time(&client, &database).await?;
    let backup_error = |source| RestoreError::Backup { key: request.backup_key.clone(), source };
    let (_, manifest) = verifier.select(&Selection::Key(request.backup_key.clone())).await.map_err(backup_error)?;
    let pg_restore = pick_pg_restore(&verifier.config.pg_tools_dir, &client, &manifest).await.map_err(backup_error)?;
    let earlier = journal::read(&verifier.store, &target_secret).await?.filter(|j| j.phase != Phase::Finished);
    Ok(Prepared { creds, target_secret, database, manifest, pg_restore, earlier, _lock: client })
}

/// The target's credentials, and its secret's ARN (the name typed when none is known).
async fn read_target<S, A>(
    verifier: &Verifier<S, A>,
    request: &RestoreRequest,
) -> Result<(DbCredentials, String), RestoreError> {
    let unreadable = |source| RestoreError::TargetSecret { secret: request.target_secret.clone(), source };
    let secret = verifier.secrets.get(&request.target_secret).await.map_err(unreadable)?;
    let creds: DbCredentials = secret.json(&request.target_secret, AWSCURRENT).map_err(unreadable)?;
    let arn = secret.arn.clone().unwrap_or_else(|| request.target_secret.clone());
    Ok((creds, arn))
}

/// Takes the target's restore lock for as long as `client` is open, or says who holds it.
async fn one_run_at_a_time(client: &Client, database: &str) -> Result<(), RestoreError> {
    let taken: bool = client
        .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK.0, &LOCK.1])
        .await
        .map_err(|source| RestoreError::Lock { database: database.to_owned(), detail: describe(&source), source })?
        .get(0);
    if taken {
        return Ok(());
    }
    let holder = client
        .query_opt(
            "SELECT format('session %s of %s, started %s', l.pid, a.usename, \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC')) \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = $2::int::oid \
             AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&LOCK.0, &LOCK.1],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get::<_, Option<String>>(0))
        .unwrap_or_else(|| "another session".to_owned());
    Err(RestoreError::Busy { database: database.to_owned(), holder })
}
