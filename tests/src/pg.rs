//! A PostgreSQL server in a temp dir on a free loopback port, run as the `postgres` user when
//! we are root (initdb and postgres refuse to run as root): Debian's PostgreSQL 15, or the
//! PostgreSQL 17 server `cargo xtask setup` unpacks from npm. The client tools the functions
//! run are those `cargo xtask setup` builds, laid out as the Lambda layer is.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ops_shared::postgres::DbCredentials;

use crate::process::{free_port, spawn_tied, stop_child, wait_for_port};

/// The system user the servers run as, and the bootstrap superuser of a plain server.
pub const SUPERUSER: &str = "postgres";

pub struct Postgres {
    pub port: u16,
    /// The bootstrap superuser initdb made (`postgres`, or Supabase's `supabase_admin`).
    pub superuser_name: String,
    /// PEM of the CA that signed the server's TLS certificate (for `verify-full`).
    pub ca_pem: String,
    pub major: u32,
    /// Debian's psql (15): talks to either server.
    psql: PathBuf,
    superuser_password: String,
    child: Mutex<Option<Child>>,
}

/// Debian's directory holding initdb, postgres and psql (`PG_BIN` overrides).
pub fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
                .filter(|(_, bin)| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server found under /usr/lib/postgresql; run `cargo xtask demo` once to install it".to_owned()
    })
}

/// The cargo target directory these binaries were built in (`cargo xtask setup` puts the
/// PostgreSQL 17 server and the client tools there).
pub fn target_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a cargo target directory", exe.display()))
}

/// `path` if it exists, else what is missing and the command that makes it.
fn built_by(path: PathBuf, what: &str, command: &str) -> Result<PathBuf, String> {
    if path.exists() { Ok(path) } else { Err(format!("{what} is missing ({}): run `{command}`", path.display())) }
}

/// `pg_dump` and `pg_restore` 15 and 17 for this machine, as the Lambda layer lays them out
/// (`<dir>/<major>/bin`, their own loader in `<dir>/lib`).
pub fn tools_dir() -> Result<PathBuf, String> {
    built_by(target_dir()?.join("pg-layer/amd64/layer/pgtools"), "the PostgreSQL client tools", "cargo xtask setup")
}

/// The arm64 layer's tools, built by `cargo xtask pg-layer`; they run here under qemu.
pub fn arm64_tools_dir() -> Result<PathBuf, String> {
    built_by(target_dir()?.join("pg-layer/arm64/layer/pgtools"), "the arm64 tools layer", "cargo xtask pg-layer")
}

/// The arm64 `bootstrap` of `function` as it ships to Lambda, built by `cargo xtask package`.
pub fn arm64_bootstrap(function: &str) -> Result<PathBuf, String> {
    built_by(target_dir()?.join("lambda").join(function).join("bootstrap"), "the arm64 package", "cargo xtask package")
}

/// The engine task's image (an OCI image layout), built by `cargo xtask image`.
pub fn engine_image() -> Result<PathBuf, String> {
    built_by(target_dir()?.join("image/engine-task"), "the engine task's image", "cargo xtask image")
}

/// Which server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Debian's newest (15 on Debian 12).
    Debian,
    /// PostgreSQL 17 from npm.
    Pg17,
}

impl Server {
    fn bin_dir(self) -> Result<PathBuf, String> {
        match self {
            Server::Debian => find_bin_dir(),
            Server::Pg17 => built_by(
                target_dir()?.join("pg-server-17/package/native/bin"),
                "the PostgreSQL 17 server",
                "cargo xtask setup",
            ),
        }
    }
}

/// uid and gid of the `postgres` system user, when we run as root.
fn service_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new(SUPERUSER).map_err(|e| e.to_string())?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(
            "running as root needs a `postgres` system user (run `cargo xtask demo` once to create it)".to_owned()
        );
    }
    // SAFETY: entry is non-null and points at a valid passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_service_user(command: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
}

impl Postgres {
    /// initdb in `root` (created by the caller, removed by the caller) and start the server.
    pub fn start(root: &Path, server: Server) -> Result<Postgres, String> {
        Postgres::start_as(root, server, SUPERUSER)
    }

    /// [`Postgres::start`] with `bootstrap` as the superuser initdb makes (a Supabase server's is
    /// `supabase_admin`, so that `postgres` can be an ordinary, demoted role).
    pub fn start_as(root: &Path, server: Server, bootstrap: &str) -> Result<Postgres, String> {
        let bin_dir = server.bin_dir()?;
        let psql = find_bin_dir()?.join("psql");
        std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let user = service_user()?;
        let data_dir = root.join("data");
        let socket_dir = root.join("sock");
        let password = uuid::Uuid::new_v4().simple().to_string();
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, &password).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&socket_dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        set_mode(root, 0o755)?;
        set_mode(&data_dir, 0o700)?;
        if let Some((uid, gid)) = user {
            for path in [&pwfile, &socket_dir, &data_dir] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
        }

        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-U",
                bootstrap,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        as_service_user(&mut initdb, user);
        let output = initdb.output().map_err(|e| format!("cannot run initdb: {e}"))?;
        if !output.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        let ca_pem = make_certificates(root, user)?;
        let major = std::fs::read_to_string(data_dir.join("PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or("initdb wrote no PG_VERSION")?;

        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut server = Command::new(bin_dir.join("postgres"));
        server.arg("-D").arg(&data_dir).arg("-p").arg(port.to_string()).arg("-k").arg(&socket_dir).args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            "ssl=on",
            // Checkpoints every 64 MB of WAL: at the default 1 GB each server kept ~240 MB of
            // WAL on disk during a test run, disk a CI machine may not have.
            "-c",
            "min_wal_size=32MB",
            "-c",
            "max_wal_size=64MB",
        ]);
        server.arg("-c").arg(format!("ssl_cert_file={}", root.join("server.crt").display()));
        server.arg("-c").arg(format!("ssl_key_file={}", root.join("server.key").display()));
        as_service_user(&mut server, user);
        let mut child =
            spawn_tied(server, Some(root.join("postgres.log"))).map_err(|e| format!("cannot start postgres: {e}"))?;
        if let Err(err) = wait_for_port(port, &mut child, "postgres", Duration::from_secs(30)) {
            stop_child(&mut child, libc::SIGQUIT, Duration::from_secs(2));
            return Err(format!("{err}\n{}", std::fs::read_to_string(root.join("postgres.log")).unwrap_or_default()));
        }
        let pg = Postgres {
            port,
            superuser_name: bootstrap.to_owned(),
            ca_pem,
            major,
            psql,
            superuser_password: password,
            child: Mutex::new(Some(child)),
        };
        pg.wait_ready(Duration::from_secs(30))?;
        Ok(pg)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match self.psql("postgres", "SELECT 1") {
                Ok(_) => return Ok(()),
                Err(err) if start.elapsed() > limit => {
                    return Err(format!("postgres never became ready: {err}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The bootstrap superuser's credentials, verifying the server against its CA (as a
    /// production secret carries its database's CA in `sslrootcert`).
    pub fn superuser(&self, dbname: &str) -> DbCredentials {
        DbCredentials {
            engine: "postgres".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: self.port,
            username: self.superuser_name.clone(),
            password: self.superuser_password.clone().into(),
            dbname: dbname.to_owned(),
            masterarn: None,
            sslmode: None,
            sslrootcert: Some(self.ca_pem.clone()),
        }
    }

    /// Runs SQL with psql as the superuser; returns unaligned, tuples-only output.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(&self.psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", &self.superuser_name])
            .args(["-p", &self.port.to_string(), "-d", dbname, "-c", sql])
            .env("PGPASSWORD", &self.superuser_password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    /// Creates database `name` and loads the Supabase-like fixture with `seed` rows.
    pub fn create_seeded_database(&self, name: &str, seed: Seed) -> Result<DbCredentials, String> {
        self.psql("postgres", &format!("CREATE DATABASE {}", ops_shared::postgres::quote_ident(name)))?;
        self.psql(name, &seed.sql())?;
        Ok(self.superuser(name))
    }

    pub fn database_exists(&self, name: &str) -> Result<bool, String> {
        let sql =
            format!("SELECT count(*) FROM pg_database WHERE datname = {}", ops_shared::postgres::quote_literal(name));
        Ok(self.psql("postgres", &sql)? == "1")
    }

    pub fn stop(&self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(mut child) = guard.take()
        {
            // SIGINT is PostgreSQL's fast shutdown: backends end, no recovery needed.
            stop_child(&mut child, libc::SIGINT, Duration::from_secs(10));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it, so TLS is real:
/// `verify-full` against the CA works, against another CA fails. Returns the CA's PEM.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let output =
        Command::new("openssl").args(args).current_dir(dir).output().map_err(|e| format!("cannot run openssl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("openssl {}: {}", args[0], String::from_utf8_lossy(&output.stderr)))
    }
}

/// A self-signed CA (`ca.key`, `ca.crt`) in `dir`, named `name`; returns the certificate's PEM.
pub fn make_ca(dir: &Path, name: &str) -> Result<String, String> {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", &subject,
        ],
    )?;
    std::fs::read_to_string(dir.join("ca.crt")).map_err(|e| e.to_string())
}

fn make_certificates(root: &Path, user: Option<(u32, u32)>) -> Result<String, String> {
    let ca_pem = make_ca(root, "cineview-ops test CA")?;
    let openssl = |args: &[&str]| openssl(root, args);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    std::fs::write(
        root.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    let key = root.join("server.key");
    set_mode(&key, 0o600)?;
    if let Some((uid, gid)) = user {
        for file in ["server.key", "server.crt"] {
            std::os::unix::fs::chown(root.join(file), Some(uid), Some(gid))
                .map_err(|e| format!("chown {file}: {e}"))?;
        }
    }
    Ok(ca_pem)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Size of the Supabase-like fixture: `auth.users`, `public.analyses`, `public.audit_log`.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub users: u32,
    pub analyses_per_user: u32,
    pub audit_entries: u32,
}

impl Seed {
    pub const SMALL: Seed = Seed { users: 50, analyses_per_user: 4, audit_entries: 300 };

    /// Deterministic rows (ids and contents derive from the row number); audit entries are
    /// recent so the restore checks' RPO query holds.
    pub fn sql(&self) -> String {
        let Seed { users, analyses_per_user, audit_entries } = *self;
        let analyses = users * analyses_per_user;
        format!(
            r#"
CREATE SCHEMA IF NOT EXISTS auth;
CREATE TABLE auth.users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    encrypted_password text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE public.analyses (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id),
    image_url text NOT NULL,
    result jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE public.audit_log (
    id bigserial PRIMARY KEY,
    actor_id uuid REFERENCES auth.users (id),
    action text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO auth.users
SELECT md5('user' || i)::uuid, 'user' || i || '@example.com', md5('password' || i),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, {users}) AS i;
INSERT INTO public.analyses (user_id, image_url, result, created_at)
SELECT md5('user' || (1 + i % {users}))::uuid, 'https://cdn.example.com/images/' || i || '.jpg',
       jsonb_build_object('score', i % 100, 'labels', jsonb_build_array('label' || (i % 7), 'label' || (i % 11)),
                          'summary', repeat(md5(i::text), 4)),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, {analyses}) AS i;
INSERT INTO public.audit_log (actor_id, action, created_at)
SELECT md5('user' || (1 + i % {users}))::uuid, (ARRAY['login', 'analysis.create', 'export'])[1 + i % 3],
       now() - (i % 600) * interval '1 minute'
FROM generate_series(1, {audit_entries}) AS i;
ANALYZE;
"#
        )
    }
}

/// A tools directory whose `<major>/bin/pg_dump` is a shell script `body` around the real
/// pg_dump 15 of `tools` (started, as the functions do, through the tools' own loader), which
/// the script calls as `REAL`. Returns the directory (removed on drop) and its path.
pub fn pg_dump_wrapper(tools: &Path, major: u32, body: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join(major.to_string()).join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let lib = tools.join("lib");
    let real = format!(
        "'{}' --library-path '{}' '{}'",
        lib.join("ld-linux-x86-64.so.2").display(),
        lib.display(),
        tools.join("15/bin/pg_dump").display()
    );
    let path = bin.join("pg_dump");
    std::fs::write(&path, format!("#!/bin/sh\nREAL() {{ {real} \"$@\"; }}\n{body}\n")).expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text = dir.path().display().to_string();
    (dir, text)
}
