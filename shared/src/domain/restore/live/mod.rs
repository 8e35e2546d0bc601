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

mod error;
mod plan;
mod privileges;
mod script;
mod toc;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::Client;

pub use error::LiveError;
pub(crate) use script::list;
pub use toc::TocEntry;

use crate::adapters::pgtools::PgTool;
use crate::adapters::postgres::DbCredentials;
use plan::make;
use script::{execute, run_section};

/// Restores `dump` into the live project behind `target`; see the module's description.
/// With `jobs` above 1, `jobs` connections load the tables' rows side by side, each in its
/// own transaction: faster for a large database, but a failure leaves it partly restored.
pub async fn restore(
    tool: &PgTool,
    target: &DbCredentials,
    dump: &std::path::Path,
    jobs: u32,
) -> Result<(), LiveError> {
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
            Err(LiveError::RolledBack(Box::new(err)))
        }
        Err(err) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(LiveError::PartlyRestored { jobs, source: Box::new(err) })
        }
    }
}

/// A connection that writes even while `opsctl dr freeze` makes new transactions read-only.
async fn connect(target: &DbCredentials) -> Result<Client, LiveError> {
    let client = target.connect(std::time::Duration::from_secs(10)).await?;
    execute(&client, "SET default_transaction_read_only = off").await?;
    Ok(client)
}

async fn restore_in_transaction(
    client: &Client,
    tool: &PgTool,
    toc: &[TocEntry],
    dump: &std::path::Path,
) -> Result<(), LiveError> {
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
) -> Result<(), LiveError> {
    let made = make(client, tool, toc, dump).await?;
    execute(client, "COMMIT").await?;
    let next = AtomicUsize::new(0);
    let loaders = (0..jobs).map(|_| load_rows(target, tool, dump, &made.rows, &next));
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
                    Err(LiveError::PublicationsLacking { missing, source: Box::new(err) })
                }
                _ => Err(err),
            }
        }
    }
}

/// One loader of [`restore_in_parts`]: over a connection of its own, the rows of the data
/// entries `rows` names, a table at a time, taking the next one nobody took (`next`).
async fn load_rows(
    target: &DbCredentials,
    tool: &PgTool,
    dump: &std::path::Path,
    rows: &[String],
    next: &AtomicUsize,
) -> Result<(), LiveError> {
    let loader = connect(target).await?;
    execute(&loader, "SET session_replication_role = replica").await?;
    while let Some(entry) = rows.get(next.fetch_add(1, Ordering::Relaxed)) {
        let mut one = tempfile::NamedTempFile::new().map_err(LiveError::ListFile)?;
        writeln!(one, "{entry}").map_err(LiveError::ListFile)?;
        run_section(&loader, tool, dump, one.path(), "data").await?;
    }
    Ok(())
}
