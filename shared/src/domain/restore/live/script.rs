//! The SQL pg_restore writes, run through one connection as it arrives: statements as they
//! are, each table's rows streamed into `COPY ... FROM STDIN`.

use std::process::Stdio;

use bytes::Bytes;
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_postgres::Client;

use super::error::LiveError;
use crate::adapters::pgtools::PgTool;
use crate::domain::alert::cut_at_char;

/// How much of a table's rows go to the server in one message.
const COPY_CHUNK: usize = 256 * 1024;

/// `pg_restore --list` of the dump.
pub(crate) async fn list(tool: &PgTool, dump: &std::path::Path) -> Result<String, LiveError> {
    let output = tool
        .command()
        .arg("--list")
        .arg(dump)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| cannot_run(tool, source))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(LiveError::ListFailed { stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs one section of the listed entries: pg_restore writes its SQL, and each statement
/// runs here as it arrives; a table's rows go straight on into `COPY ... FROM STDIN`.
pub(super) async fn run_section(
    client: &Client,
    tool: &PgTool,
    dump: &std::path::Path,
    list: &std::path::Path,
    section: &str,
) -> Result<(), LiveError> {
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
        .map_err(|source| cannot_run(tool, source))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(LiveError::NoOutput);
    };
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let ran = run_script(client, BufReader::with_capacity(1024 * 1024, stdout)).await;
    let status = child.wait().await.map_err(LiveError::Wait)?;
    let stderr = errors.await.unwrap_or_default();
    ran.map_err(|source| LiveError::Section { section: section.to_owned(), source: Box::new(source) })?;
    if !status.success() {
        let (section, stderr) = (section.to_owned(), stderr.trim().to_owned());
        return Err(LiveError::SectionFailed { section, status, stderr });
    }
    Ok(())
}

/// Runs a script pg_restore wrote. Statements gather until a `COPY ... FROM stdin;` line or
/// the end and run together; the lines after a COPY up to `\.` are its rows. psql's own
/// commands (`\restrict`) and the transaction pg_restore opens around large objects are left
/// out: the restore is one transaction already.
async fn run_script<R: tokio::io::AsyncBufRead + Unpin>(client: &Client, mut script: R) -> Result<(), LiveError> {
    let mut statements = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = script.read_until(b'\n', &mut line).await.map_err(LiveError::ReadOutput)?;
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
) -> Result<(), LiveError> {
    let failed = |source| LiveError::Copy { copy: copy.to_owned(), source };
    let sink = client.copy_in::<_, Bytes>(copy).await.map_err(failed)?;
    futures::pin_mut!(sink);
    let mut chunk = Vec::with_capacity(COPY_CHUNK + 64 * 1024);
    loop {
        // Each line is read straight into the chunk; the end marker is taken back out.
        let start = chunk.len();
        let read = script.read_until(b'\n', &mut chunk).await.map_err(LiveError::ReadOutput)?;
        if read == 0 {
            return Err(LiveError::CopyCut { copy: copy.to_owned() });
        }
        if matches!(&chunk[start..], b"\\.\n" | b"\\.") {
            chunk.truncate(start);
            break;
        }
        if chunk.len() >= COPY_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(COPY_CHUNK + 64 * 1024));
            sink.send(Bytes::from(full)).await.map_err(failed)?;
        }
    }
    if !chunk.is_empty() {
        sink.send(Bytes::from(chunk)).await.map_err(failed)?;
    }
    sink.as_mut().finish().await.map_err(failed)?;
    Ok(())
}

pub(super) async fn execute(client: &Client, sql: &str) -> Result<(), LiveError> {
    if sql.trim().is_empty() {
        return Ok(());
    }
    client
        .batch_execute(sql)
        .await
        .map_err(|source| LiveError::Statement { statement: cut_at_char(sql.trim(), 300).to_owned(), source })
}

pub(super) async fn query(client: &Client, sql: &str) -> Result<Vec<tokio_postgres::Row>, LiveError> {
    client.query(sql, &[]).await.map_err(LiveError::Query)
}

fn cannot_run(tool: &PgTool, source: std::io::Error) -> LiveError {
    LiveError::Run { program: tool.program().display().to_string(), source }
}
