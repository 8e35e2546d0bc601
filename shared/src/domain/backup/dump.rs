//! One consistent dump: a transaction exports its snapshot, row counts are taken in it, and
//! `pg_dump --snapshot` streams the same snapshot into an S3 multipart upload, hashed on the way.

use std::process::Stdio;

use crate::adapters::objects::ObjectStore;
use crate::adapters::pgtools::PgTool;
use crate::adapters::postgres::{DbCredentials, DbError, quote_ident};
use bytes::BytesMut;
use futures::TryFutureExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_postgres::Client;

use super::error::BackupError;
use super::manifest::TableCount;
use super::scope::Scope;

pub use super::plan::{Plan, Streamed};

/// S3 allows at most this many parts in one upload.
pub(crate) const MAX_PARTS: u32 = 10_000;
/// How much of pg_dump's stderr is kept for the error message.
const STDERR_LIMIT: usize = 16 * 1024;

/// Opens a read-only repeatable-read transaction and exports its snapshot. The transaction
/// stays open (and the snapshot valid) as long as `client` does nothing else.
pub(crate) async fn export_snapshot(client: &Client) -> Result<String, DbError> {
    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(DbError::query)?;
    let row = client.query_one("SELECT pg_export_snapshot()", &[]).await.map_err(DbError::query)?;
    Ok(row.get(0))
}

/// Row counts of every table the dump holds, in the exported snapshot's transaction. They take
/// less time than the dump they run beside, so they take one process on the server, not
/// parallel workers.
pub(crate) async fn count_rows(client: &Client, scope: &Scope) -> Result<Vec<TableCount>, DbError> {
    client.batch_execute("SET LOCAL max_parallel_workers_per_gather = 0").await.map_err(DbError::query)?;
    let tables = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(DbError::query)?;
    let mut counts = Vec::with_capacity(tables.len());
    for row in tables {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        if !scope.holds(&schema, &table) {
            continue;
        }
        let sql = format!("SELECT count(*) FROM ONLY {}.{}", quote_ident(&schema), quote_ident(&table));
        let rows: i64 = client.query_one(&sql, &[]).await.map_err(DbError::query)?.get(0);
        counts.push(TableCount { schema, table, rows });
    }
    Ok(counts)
}

/// Appends to `buf` until it holds `size` bytes; fewer only at the end of the stream.
async fn read_part<R: AsyncRead + Unpin>(reader: &mut R, mut buf: BytesMut, size: usize) -> std::io::Result<BytesMut> {
    while buf.len() < size {
        let left = (size - buf.len()) as u64;
        if (&mut *reader).take(left).read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf)
}

/// Streams `reader` into the multipart upload: part N uploads, and is hashed on a blocking
/// thread, while part N+1 is read, so at most two parts are in memory and reading never waits
/// for the hash. The two buffers are reused, so memory stays flat however long the dump.
pub async fn stream_parts<S: ObjectStore, R: AsyncRead + Unpin>(
    store: &S,
    key: &str,
    upload_id: &str,
    reader: &mut R,
    part_size: usize,
) -> Result<Streamed, BackupError> {
    let stream_error = |e: std::io::Error| BackupError::Stream(e.to_string());
    let mut hasher = Sha256::new();
    let mut size = 0_u64;
    let mut parts = Vec::new();
    let mut spare = None;
    let mut buf = read_part(reader, BytesMut::with_capacity(part_size), part_size).await.map_err(stream_error)?;
    if buf.is_empty() {
        return Err(BackupError::EmptyDump);
    }
    let mut number = 1_u32;
    loop {
        if number > MAX_PARTS {
            return Err(BackupError::TooManyParts { parts: MAX_PARTS, part_mib: part_size / (1024 * 1024) });
        }
        let part = buf.freeze();
        size += part.len() as u64;
        let hashed = part.clone();
        let hashing = tokio::task::spawn_blocking(move || {
            hasher.update(&hashed);
            hasher
        });
        let next = spare.take().unwrap_or_else(|| BytesMut::with_capacity(part_size));
        let upload = store.upload_part(key, upload_id, number as i32, part.clone()).map_err(BackupError::from);
        // A refused part stops the stream at once, without waiting for the next part to fill.
        let (uploaded, next) = tokio::try_join!(upload, read_part(reader, next, part_size).map_err(stream_error))?;
        hasher = hashing.await.map_err(|e| BackupError::Stream(format!("hashing the dump failed: {e}")))?;
        parts.push(uploaded);
        // The upload and the hash are done with the part: its buffer takes part N+2.
        spare = part.try_into_mut().ok().map(|mut free| {
            free.clear();
            free
        });
        buf = next;
        if buf.is_empty() {
            break;
        }
        number += 1;
    }
    Ok(Streamed { size, sha256: hex::encode(hasher.finalize()), parts })
}

/// A pipe holds 64 KiB by default: whenever this process is busy for a few milliseconds (a
/// part's checksum, a socket write), pg_dump stops writing. With 1 MiB, the most an
/// unprivileged process may ask for on Linux, pg_dump keeps compressing meanwhile.
#[cfg(target_os = "linux")]
fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    const PIPE_BYTES: libc::c_int = 1 << 20;
    // SAFETY: F_SETPIPE_SZ on a pipe this process owns changes only its capacity.
    let widened = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
    if widened < 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "pg_dump's pipe keeps its default size");
    }
}

/// Other systems (an operator's laptop running opsctl) keep the default.
#[cfg(not(target_os = "linux"))]
fn widen_pipe<P>(_pipe: &P) {}

/// Runs pg_dump on the plan's snapshot, compressed as planned, and streams its output into
/// the upload. A non-zero exit, an error on stderr or an empty output is a failure, whatever
/// was uploaded.
pub(crate) async fn dump_to_upload<S: ObjectStore>(
    store: &S,
    plan: &Plan,
    upload_id: &str,
    pg_dump: &PgTool,
    creds: &DbCredentials,
    part_size: usize,
) -> Result<(Streamed, Vec<String>), BackupError> {
    let libpq = creds.libpq_env()?;
    let mut child = pg_dump
        .command()
        .args(["--format=custom", "--no-password", "--snapshot", &plan.snapshot])
        .args(plan.scope.pg_dump_args())
        .arg(format!("--compress={}", plan.compression.pg_dump_arg()))
        .args(["--host", &creds.host, "--port", &creds.port.to_string(), "--username", &creds.username])
        .args(["--dbname", &creds.dbname])
        .envs(libpq.vars.iter().cloned())
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "cineview-ops-backup")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BackupError::Stream(format!("cannot start {}: {e}", pg_dump.program().display())))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(BackupError::Stream("pg_dump's output pipes are missing".into()));
    };
    widen_pipe(&stdout);
    let stderr_task = tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut chunk = [0_u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            if kept.len() < STDERR_LIMIT {
                kept.extend_from_slice(&chunk[..n.min(STDERR_LIMIT - kept.len())]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let streamed = stream_parts(store, &plan.key, upload_id, &mut stdout, part_size).await;
    if let Err(err) = streamed {
        // Nobody reads pg_dump's output any more: it would wait on a full pipe for ever.
        if let Err(kill) = child.start_kill() {
            tracing::warn!(error = %kill, "pg_dump could not be stopped");
        }
        let _ = child.wait().await;
        return Err(err);
    }
    let status = child.wait().await.map_err(|e| BackupError::Stream(e.to_string()))?;
    let stderr = stderr_task.await.unwrap_or_default();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error") || l.contains("FATAL")).collect();
    if !status.success() || !errors.is_empty() {
        let stderr =
            if stderr.trim().is_empty() { "no message on stderr".to_owned() } else { stderr.trim().to_owned() };
        return Err(BackupError::PgDumpFailed { status: status.to_string(), stderr });
    }
    let streamed = streamed?;
    let warnings = stderr.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    Ok((streamed, warnings))
}
