//! pg_restore: the one that suits a dump and a server, and a restore with it into a scratch
//! database or, for disaster recovery, into the database in use.

use std::io::Write;
use std::process::{ExitStatus, Stdio};

use crate::adapters::pgtools::{PgTool, PgTools, Tool, major_of};
use crate::adapters::postgres::{DbCredentials, DbError, server_version};
use crate::domain::alert::cut_at_char;
use crate::domain::backup::manifest::Manifest;
use crate::domain::backup::scope::Platform;
use crate::domain::restore::error::VerifyError;
use crate::domain::restore::live::{self, LiveError};

/// Why pg_restore did not restore a dump.
#[derive(Debug, thiserror::Error)]
pub enum PgRestoreError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("{0}")]
    Libpq(#[source] DbError),
    #[error("cannot run {program}: {source}")]
    Run { program: String, source: std::io::Error },
    #[error("cannot write the restore list: {0}")]
    ListFile(#[source] std::io::Error),
    /// `cause` is what the output says went wrong (a role missing), if it says, with advice.
    #[error("{cause}{program} exited {status}: {stderr}")]
    Failed { cause: String, program: String, status: ExitStatus, stderr: String },
}

/// pg_restore of the oldest major that reads the dump (the major of the pg_dump that wrote
/// it) and suits the server it restores into (at least its major).
pub async fn pick_pg_restore(
    dir: &str,
    staging: &tokio_postgres::Client,
    manifest: &Manifest,
) -> Result<PgTool, VerifyError> {
    let (staging_major, _) = server_version(staging).await?;
    let dump_major = major_of(&manifest.pg_dump_version).unwrap_or(staging_major);
    Ok(PgTools::open(dir)?.pick(Tool::PgRestore, staging_major.max(dump_major))?)
}

/// What a restore goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A database just created for the test.
    Empty,
    /// A database in use (disaster recovery): each object the dump holds is dropped first, and
    /// the restore writes even while `opsctl dr freeze` makes the database read-only. A
    /// Supabase project's gets the app and the users' rows back ([`live`]).
    Existing,
}

/// `pg_restore` into `target` with `jobs` parallel jobs (one: in a single transaction, which
/// parallel jobs cannot share), stopping at the first error.
pub async fn pg_restore(
    tool: &PgTool,
    target: &DbCredentials,
    dump: &std::path::Path,
    jobs: u32,
    kind: Target,
    platform: Platform,
) -> Result<(), PgRestoreError> {
    if kind == Target::Existing && platform == Platform::Supabase {
        return Ok(live::restore(tool, target, dump, jobs).await?);
    }
    let program = tool.program().display();
    let libpq = target.libpq_env().map_err(PgRestoreError::Libpq)?;
    let parallel = if jobs > 1 { format!("--jobs={jobs}") } else { "--single-transaction".to_owned() };
    let mut command = tool.command();
    let _list = match platform {
        Platform::Postgres => None,
        Platform::Supabase => {
            let list = supabase_list(tool, dump).await?;
            command.arg("--use-list").arg(list.path());
            Some(list)
        }
    };
    if kind == Target::Existing {
        command.args(["--clean", "--if-exists"]).env("PGOPTIONS", "-c default_transaction_read_only=off");
    }
    let output = command
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "--no-password", &parallel])
        .args(["--host", &target.host, "--port", &target.port.to_string(), "--username", &target.username])
        .args(["--dbname", &target.dbname])
        .arg(dump)
        .envs(libpq.vars.iter().cloned())
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| PgRestoreError::Run { program: program.to_string(), source })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let cause = match missing_role(&stderr) {
        Some(role) => format!(
            "the staging server has no role {role:?}, which the dump refers to (in a row-level security policy, \
             for one); create the source database's roles on the staging server first (README: \"Staging server \
             for a Supabase dump\"). "
        ),
        None => String::new(),
    };
    let (program, stderr) = (program.to_string(), cut_at_char(stderr.trim(), 4000).to_owned());
    Err(PgRestoreError::Failed { cause, program, status: output.status, stderr })
}

/// The table of contents of a Supabase dump without what every database already has: a dump
/// that names its schemas one by one holds `CREATE SCHEMA public`, which fails in any database.
async fn supabase_list(tool: &PgTool, dump: &std::path::Path) -> Result<tempfile::NamedTempFile, PgRestoreError> {
    let listing = live::list(tool, dump).await?;
    let kept: String = listing.lines().filter(|line| !is_public_schema(line)).map(|line| format!("{line}\n")).collect();
    let mut file = tempfile::NamedTempFile::new().map_err(PgRestoreError::ListFile)?;
    file.write_all(kept.as_bytes()).map_err(PgRestoreError::ListFile)?;
    Ok(file)
}

/// A table-of-contents line (`<id>; <catalog> <oid> <type> <schema> <name> <owner>`) that
/// creates schema `public`.
fn is_public_schema(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.get(3..6) == Some(&["SCHEMA", "-", "public"][..])
}

/// The role named in `role "<name>" does not exist`, PostgreSQL's message for a missing role.
fn missing_role(stderr: &str) -> Option<&str> {
    let (_, rest) = stderr.split_once("role \"")?;
    let (role, rest) = rest.split_once('"')?;
    rest.trim_start().starts_with("does not exist").then_some(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_schema_is_known_in_a_table_of_contents() {
        assert!(is_public_schema("5; 2615 2200 SCHEMA - public pg_database_owner"));
        assert!(!is_public_schema("6; 2615 16390 SCHEMA - auth supabase_admin"));
        assert!(!is_public_schema("215; 1259 16500 TABLE public profiles postgres"));
        assert!(!is_public_schema(";     Dump Version: 1.16-0"));
    }

    #[test]
    fn a_missing_role_is_named() {
        let stderr = "pg_restore: error: could not execute query: \
                      ERROR:  role \"authenticated\" does not exist\nCommand was: CREATE POLICY";
        assert_eq!(missing_role(stderr), Some("authenticated"));
        assert_eq!(missing_role("ERROR:  role \"x\" already exists"), None);
        assert_eq!(missing_role("ERROR:  relation \"t\" does not exist"), None);
    }
}
