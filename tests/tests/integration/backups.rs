//! scheduled-backup and restore-verifier against moto and real PostgreSQL 15 and 17 servers,
//! with the client tools laid out as the Lambda layer is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::types::{ChecksumType, ObjectAttributes};
use ops_shared::backup::{Backup, BackupConfig, BackupError, Compression};
use ops_shared::backup::{Manifest, manifest_key};
use ops_shared::objects::{Bytes, ObjectBody, ObjectError, ObjectInfo, ObjectStore, S3Objects, UploadedPart};
use ops_shared::pgtools::{PgTools, Tool};
use ops_shared::postgres::DbCredentials;
use ops_shared::restore::{Selection, Verifier, VerifierConfig, default_validation_queries};
use ops_shared::{Scrubber, SecretCache, Severity, SnsAlertPublisher};
use ops_testkit::aws::{Aws, Inbox, unique};
use ops_testkit::names;
use ops_testkit::pg::{Postgres, Seed};

const MIB: usize = 1024 * 1024;

pub(crate) struct Fixture {
    pub(crate) aws: Aws,
    pub(crate) prefix: String,
    pub(crate) alerts: Inbox,
    pub(crate) topic: String,
    pub(crate) secrets: Arc<SecretCache>,
    /// The server backed up, also the staging server restores go to.
    pub(crate) major: u32,
    pub(crate) staging_secret: String,
}

/// A fixture on PostgreSQL 15.
pub(crate) async fn fixture() -> Fixture {
    fixture_on(15).await
}

async fn fixture_on(major: u32) -> Fixture {
    let aws = Aws::new(ops_testkit::shared()).await;
    let topic = aws.create_topic(&unique("backup-alerts")).await;
    let alerts = aws.subscribe_queue(&topic).await;
    let secrets = Arc::new(SecretCache::new(aws.secrets.clone(), Scrubber::default()));
    let mut f = Fixture {
        prefix: format!("{}/", unique("backups")),
        aws,
        alerts,
        topic,
        secrets,
        major,
        staging_secret: String::new(),
    };
    f.staging_secret = f.secret(&f.pg().superuser("postgres")).await;
    f
}

impl Fixture {
    pub(crate) fn pg(&self) -> &'static Postgres {
        ops_testkit::shared().server(self.major)
    }

    /// A fresh seeded database and a secret holding its credentials.
    pub(crate) async fn database(&self, seed: Seed) -> (String, DbCredentials) {
        let name = unique("db").replace('-', "_");
        let creds = self.pg().create_seeded_database(&name, seed).expect("seeded database");
        (self.secret(&creds).await, creds)
    }

    pub(crate) async fn secret(&self, creds: &DbCredentials) -> String {
        let name = unique("db-secret");
        let value = serde_json::to_string(creds).expect("json");
        self.aws.secrets.create_secret().name(&name).secret_string(value).send().await.expect("secret");
        name
    }

    pub(crate) fn store(&self) -> S3Objects {
        S3Objects::new(self.aws.s3.clone(), names::backup_bucket())
    }

    pub(crate) fn backup_config(&self, secret: &str) -> BackupConfig {
        BackupConfig {
            database_secret_arn: secret.to_owned(),
            bucket: names::backup_bucket(),
            prefix: self.prefix.clone(),
            pg_tools_dir: ops_testkit::shared().tools_dir.display().to_string(),
            part_size: 5 * MIB,
            compression: Compression::Auto,
            rpo: Duration::from_secs(24 * 3600),
            supabase: None,
            deadline_margin: Duration::from_secs(30),
            database_timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn backup<S: ObjectStore>(&self, store: S, config: BackupConfig) -> Backup<S, SnsAlertPublisher> {
        Backup {
            store,
            alerts: SnsAlertPublisher::new(self.aws.sns.clone(), self.topic.clone()),
            secrets: Arc::clone(&self.secrets),
            http: ops_shared::http::client(Duration::from_secs(5)).expect("http"),
            config,
        }
    }

    pub(crate) fn verifier(&self) -> Verifier<S3Objects, SnsAlertPublisher> {
        self.verifier_with(ops_testkit::shared().tools_dir.display().to_string())
    }

    pub(crate) fn verifier_with(&self, pg_tools_dir: String) -> Verifier<S3Objects, SnsAlertPublisher> {
        Verifier {
            store: self.store(),
            alerts: SnsAlertPublisher::new(self.aws.sns.clone(), self.topic.clone()),
            secrets: Arc::clone(&self.secrets),
            config: VerifierConfig {
                bucket: names::backup_bucket(),
                prefix: self.prefix.clone(),
                staging_secret_arn: self.staging_secret.clone(),
                database_secret_arn: None,
                pg_tools_dir,
                rto: Duration::from_secs(30 * 60),
                rpo: Duration::from_secs(24 * 3600),
                validation_queries: default_validation_queries(),
                restore_jobs: 2,
                report_prefix: format!("{}reports/", self.prefix),
                retention: Duration::from_secs(30 * 24 * 3600),
                database_timeout: Duration::from_secs(5),
            },
        }
    }

    pub(crate) async fn objects(&self) -> Vec<ObjectInfo> {
        self.store().list(&self.prefix).await.expect("list")
    }

    pub(crate) async fn open_uploads(&self) -> usize {
        let out = self
            .aws
            .s3
            .list_multipart_uploads()
            .bucket(names::backup_bucket())
            .prefix(&self.prefix)
            .send()
            .await
            .expect("list uploads");
        out.uploads().len()
    }

    /// The object's checksum as S3 stores it: it must be the combination of its parts' CRC32s.
    pub(crate) async fn stored_crc32(&self, key: &str) -> String {
        let out = self
            .aws
            .s3
            .get_object_attributes()
            .bucket(names::backup_bucket())
            .key(key)
            .object_attributes(ObjectAttributes::Checksum)
            .send()
            .await
            .expect("object attributes");
        let checksum = out.checksum().expect("the object has a checksum");
        assert_eq!(checksum.checksum_type(), Some(&ChecksumType::Composite));
        // S3 may add the part count ("...-3"), moto does not.
        let crc32 = checksum.checksum_crc32().expect("a CRC32 checksum");
        crc32.split('-').next().unwrap_or(crc32).to_owned()
    }

    /// The object's bytes, which the tests check themselves, as the verifier does.
    pub(crate) async fn download(&self, key: &str) -> Vec<u8> {
        self.store().get_dump(key).await.expect("get").collect().await.expect("body")
    }

    /// A failed backup: a critical alert naming the reason, no manifest, no object, no upload.
    pub(crate) async fn assert_failed_cleanly(&self, err: &BackupError, reason: &str) {
        assert!(err.to_string().contains(reason), "{err}");
        let objects = self.objects().await;
        assert!(objects.is_empty(), "nothing may be left behind: {objects:?}");
        assert_eq!(self.open_uploads().await, 0, "the multipart upload must be aborted");
        let notes = self.alerts.receive(1, Duration::from_secs(3)).await;
        assert_eq!(notes.len(), 1);
        let alert = notes[0].alert();
        assert_eq!(alert.severity, Severity::Critical);
        assert!(alert.summary.contains(reason), "{}", alert.summary);
    }
}

/// True if the report's scratch database still exists on the staging server.
fn scratch_left(f: &Fixture, report: &ops_shared::backup::RestoreReport) -> bool {
    let name = report.scratch_database.as_deref().expect("a scratch database was created");
    f.pg().database_exists(name).expect("query pg_database")
}

async fn pg_restore_list(path: &std::path::Path) -> String {
    let tools = PgTools::open(&ops_testkit::shared().tools_dir).expect("tools");
    let output =
        tools.pick(Tool::PgRestore, 17).expect("pg_restore 17").command().arg("--list").arg(path).output().await;
    let output = output.expect("pg_restore");
    assert!(output.status.success(), "pg_restore --list refused the dump: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_postgres_15_taken_during_writes_is_consistent_and_restores() {
    consistent_backup_restores(15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_postgres_17_taken_during_writes_is_consistent_and_restores() {
    consistent_backup_restores(17).await;
}

async fn consistent_backup_restores(major: u32) {
    let logs = ops_testkit::logs::capture();
    let f = fixture_on(major).await;
    // Big enough for several 5 MiB parts, with zstd too.
    let (secret, creds) = f.database(Seed { users: 2_000, analyses_per_user: 150, audit_entries: 5_000 }).await;

    // Keep inserting while the dump runs; the writer publishes how many rows it has inserted.
    let writing = Arc::new(AtomicBool::new(true));
    let (progress, mut inserts) = tokio::sync::watch::channel(0_u64);
    let writer = {
        let writing = Arc::clone(&writing);
        let creds = creds.clone();
        tokio::spawn(async move {
            let client = creds.connect(Duration::from_secs(5)).await.expect("writer connects");
            let mut inserted = 0_u64;
            while writing.load(Ordering::Relaxed) {
                client
                    .batch_execute(
                        "INSERT INTO public.audit_log (action) VALUES ('concurrent'); \
                         INSERT INTO public.analyses (user_id, image_url, result, created_at) \
                         SELECT id, 'x', '{}', now() FROM auth.users LIMIT 1",
                    )
                    .await
                    .expect("insert");
                inserted += 1;
                progress.send_replace(inserted);
            }
            inserted
        })
    };
    // The backup starts once the writes are under way.
    inserts.wait_for(|inserted| *inserted > 0).await.expect("the writer inserts");
    let before_backup = *inserts.borrow();
    let backup = f.backup(f.store(), f.backup_config(&secret));
    let (manifest, summary) = backup.run(Some("pre-deploy".into()), None).await.expect("backup");
    let during_backup = *inserts.borrow() - before_backup;
    writing.store(false, Ordering::Relaxed);
    let inserted = writer.await.expect("writer");
    assert!(inserted > 0, "rows were inserted during the backup");
    assert!(during_backup > 0, "rows were inserted while the backup ran");

    // The object: exactly as the manifest says, and pg_restore accepts it.
    let bytes = f.download(&manifest.key).await;
    assert_eq!(bytes.len() as u64, manifest.size_bytes);
    assert_eq!(hex_sha256(&bytes), manifest.sha256);
    assert!(manifest.parts >= 2, "multipart: {} parts", manifest.parts);
    assert_eq!(f.stored_crc32(&manifest.key).await, composite_crc32(&bytes, manifest.part_size_bytes as usize));
    assert!(manifest.key.starts_with(&f.prefix) && manifest.key.ends_with(".dump"));
    assert!(manifest.backup_id.starts_with("pre-deploy-"));
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), &bytes).expect("write");
    let listing = pg_restore_list(file.path()).await;
    assert!(listing.contains("TABLE DATA public analyses"), "{listing}");
    // The tools of the server's own major made it.
    assert!(manifest.server_version.starts_with(&format!("{major}.")), "{}", manifest.server_version);
    assert!(manifest.pg_dump_version.contains(&format!("(PostgreSQL) {major}.")), "{}", manifest.pg_dump_version);
    // By default pg_dump 17 compresses with zstd, which pg_dump 15 has not.
    assert_eq!(manifest.compression, if major >= 17 { "zstd:3" } else { "gzip:6" });
    let stored: Manifest = serde_json::from_slice(&f.download(&manifest_key(&manifest.key)).await).expect("manifest");
    assert_eq!(stored, manifest);
    assert_eq!(summary.size_bytes, manifest.size_bytes);
    let phases = &summary.phases;
    assert!(phases.dump_ms > 0 && phases.dump_ms >= phases.counts_ms, "{phases:?}");
    let timed = phases.open_ms + phases.dump_ms + phases.complete_ms + phases.manifest_ms;
    assert!(timed <= summary.duration_ms, "{phases:?} within {} ms", summary.duration_ms);

    // Row counts are those of the dump's snapshot, not of the live (still growing) database.
    let live: i64 =
        f.pg().psql(&creds.dbname, "SELECT count(*) FROM public.audit_log").expect("count").parse().expect("number");
    let counted = manifest.tables.iter().find(|t| t.table == "audit_log").expect("audit_log counted").rows;
    assert!(counted >= 5_000 && counted < live, "snapshot count {counted}, live {live}");
    assert_eq!(f.open_uploads().await, 0);

    // The verifier restores it, row counts match exactly, and the scratch database is gone.
    let report = f.verifier().run(Selection::Latest, None).await.expect("verification ran");
    assert!(report.passed(), "{:#?}", report.failures);
    assert_eq!(report.backup_key, manifest.key);
    assert!(report.checks.iter().any(|c| c.name == "row counts match the manifest" && c.passed));
    assert!(report.rto_met && report.rpo_met && report.rto_ms > 0);
    assert!(report.scratch_dropped);
    assert!(!scratch_left(&f, &report), "no scratch database is left");
    // The dump's checksum combines its parts'; the SDK cannot check it and must not try (it
    // would warn on every download): the SHA-256 against the manifest is the check.
    assert!(!logs.text().contains("part-level checksum"), "the SDK tried to check the dump's checksum");
    let filed = f.objects().await;
    assert!(filed.iter().any(|o| o.key == report.report_key), "report filed under {}", report.report_key);
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].attribute("severity"), Some("info"));
    assert!(notes[0].alert().title.starts_with("Backup/restore successful"));
}

#[tokio::test]
async fn dump_compression_is_what_the_servers_pg_dump_can_do_and_either_restores() {
    for (major, asked, used) in [(17, "gzip:1", "gzip:1"), (15, "zstd:5", "gzip:6")] {
        let f = fixture_on(major).await;
        let (secret, _) = f.database(Seed::SMALL).await;
        let mut config = f.backup_config(&secret);
        config.compression = Compression::parse(asked).expect("setting");
        let (manifest, _) = f.backup(f.store(), config).run(None, None).await.expect("backup");
        assert_eq!(manifest.compression, used);
        let warned = manifest.warnings.iter().any(|w| w.contains("needs pg_dump 16 or newer"));
        assert_eq!(warned, asked != used, "{:?}", manifest.warnings);
        // One job: the single-transaction restore.
        let mut verifier = f.verifier();
        verifier.config.restore_jobs = 1;
        let report = verifier.run(Selection::Latest, None).await.expect("verification ran");
        assert!(report.passed(), "{used} on {major}: {:#?}", report.failures);
        assert!(!scratch_left(&f, &report));
    }
}

/// S3's COMPOSITE CRC32 of an object uploaded in parts of `part_size`: the CRC32 of the parts'
/// big-endian CRC32s, base64-encoded.
fn composite_crc32(bytes: &[u8], part_size: usize) -> String {
    use base64::Engine;
    let parts: Vec<u8> = bytes.chunks(part_size).flat_map(|part| crc32fast::hash(part).to_be_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&parts).to_be_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn an_unreachable_database_is_a_failed_backup() {
    let f = fixture().await;
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.port = ops_testkit::process::free_port().expect("port");
    let secret = f.secret(&creds).await;
    let err = f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect_err("must fail");
    f.assert_failed_cleanly(&err, "unreachable").await;
}

#[tokio::test]
async fn a_wrong_password_is_a_failed_backup() {
    let f = fixture().await;
    let mut creds = ops_testkit::shared().pg.superuser("app");
    creds.password = "not-the-password".to_owned().into();
    let secret = f.secret(&creds).await;
    let err = f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect_err("must fail");
    f.assert_failed_cleanly(&err, "refused the credentials").await;
}

fn wrapper(major: u32, body: &str) -> (tempfile::TempDir, String) {
    ops_testkit::pg::pg_dump_wrapper(&ops_testkit::shared().tools_dir, major, body)
}

fn dir_text(dir: &tempfile::TempDir) -> String {
    dir.path().display().to_string()
}

#[tokio::test]
async fn pg_dump_killed_mid_stream_is_a_failed_backup() {
    let f = fixture().await;
    let (secret, _) = f.database(Seed::SMALL).await;
    let (_dir, tools) = wrapper(
        15,
        "if [ \"$1\" = --version ]; then REAL --version; exit; fi\nREAL \"$@\" | { head -c 20000; kill -9 $$; }",
    );
    let mut config = f.backup_config(&secret);
    config.pg_tools_dir = tools;
    let err = f.backup(f.store(), config).run(None, None).await.expect_err("must fail");
    f.assert_failed_cleanly(&err, "pg_dump failed").await;
}

#[tokio::test]
async fn a_pg_dump_of_another_major_than_its_directory_says_is_refused_before_any_upload() {
    let f = fixture().await;
    let (secret, _) = f.database(Seed::SMALL).await;
    let (_dir, tools) =
        wrapper(15, "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 14.11'; exit 0; fi\nREAL \"$@\"");
    let mut config = f.backup_config(&secret);
    config.pg_tools_dir = tools;
    let err = f.backup(f.store(), config).run(None, None).await.expect_err("must fail");
    assert!(matches!(err, BackupError::Tools(_)), "{err:?}");
    f.assert_failed_cleanly(&err, "is pg_dump 14, but sits under the directory of major 15").await;
}

#[tokio::test]
async fn a_server_newer_than_every_pg_dump_is_refused_naming_the_versions_there_are() {
    let f = fixture_on(17).await;
    let (secret, _) = f.database(Seed::SMALL).await;
    // The real tools, 15 only.
    let dir = tempfile::tempdir().expect("temp dir");
    let tools = &ops_testkit::shared().tools_dir;
    for part in ["15", "lib"] {
        std::os::unix::fs::symlink(tools.join(part), dir.path().join(part)).expect("symlink");
    }
    let mut config = f.backup_config(&secret);
    config.pg_tools_dir = dir_text(&dir);
    let err = f.backup(f.store(), config).run(None, None).await.expect_err("must fail");
    f.assert_failed_cleanly(&err, "PostgreSQL 17 needs pg_dump 17 or newer").await;
    assert!(err.to_string().contains("has pg_dump for PostgreSQL 15 only"), "{err}");

    // The restore test refuses as plainly when the tools cannot read the dump or suit the server.
    let (secret, _) = f.database(Seed::SMALL).await;
    f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect("backup with all tools");
    let err = f.verifier_with(dir_text(&dir)).run(Selection::Latest, None).await.expect_err("no pg_restore 17");
    assert!(err.to_string().contains("PostgreSQL 17 needs pg_restore 17 or newer"), "{err}");
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].alert().summary.contains("has pg_restore for PostgreSQL 15 only"), "{}", notes[0].alert().summary);
}

/// S3 as it is, except that it refuses every part from part `.1` on (moto cannot be told to),
/// as S3 answers 500 to each retry.
struct RefusingParts(S3Objects, i32);

impl ObjectStore for RefusingParts {
    async fn start_upload(&self, key: &str) -> Result<String, ObjectError> {
        self.0.start_upload(key).await
    }
    async fn upload_part(&self, key: &str, id: &str, number: i32, body: Bytes) -> Result<UploadedPart, ObjectError> {
        if number < self.1 {
            return self.0.upload_part(key, id, number, body).await;
        }
        Err(ObjectError {
            operation: "UploadPart",
            key: key.to_owned(),
            detail: format!("InternalError: part {number} refused"),
        })
    }
    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<UploadedPart>) -> Result<(), ObjectError> {
        self.0.complete_upload(key, upload_id, parts).await
    }
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        self.0.abort_upload(key, upload_id).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), ObjectError> {
        self.0.put(key, body, content_type).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectError> {
        self.0.list(prefix).await
    }
    async fn get(&self, key: &str) -> Result<ObjectBody, ObjectError> {
        self.0.get(key).await
    }
}

#[tokio::test]
async fn s3_refusing_a_part_is_a_failed_backup() {
    let f = fixture().await;
    let (secret, _) = f.database(Seed::SMALL).await;
    let err =
        f.backup(RefusingParts(f.store(), 1), f.backup_config(&secret)).run(None, None).await.expect_err("must fail");
    f.assert_failed_cleanly(&err, "part 1 refused").await;
}

/// A part S3 refuses while pg_dump is still writing (a dump larger than the pipe and a part)
/// stops the backup within seconds with S3's error: pg_dump is stopped, not left waiting on a
/// pipe nobody reads, and the upload is aborted.
#[tokio::test]
async fn s3_refusing_a_part_while_pg_dump_writes_stops_the_backup_within_seconds() {
    let f = fixture().await;
    let (secret, _) = f.database(Seed::SMALL).await;
    // 400 MB of noise, a size of its own so that the process can be found afterwards.
    let size = 400_000_000 + u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 1000;
    let marker = format!("head -c {size} /dev/urandom");
    let (_dir, tools) =
        wrapper(15, &format!("if [ \"$1\" = --version ]; then REAL --version; exit; fi\nexec {marker}"));
    let mut config = f.backup_config(&secret);
    config.pg_tools_dir = tools;
    let started = std::time::Instant::now();
    let backup = f.backup(RefusingParts(f.store(), 2), config);
    let outcome = tokio::time::timeout(Duration::from_secs(60), backup.run(None, None)).await;
    let err = outcome.expect("the backup answered within a minute").expect_err("must fail");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    f.assert_failed_cleanly(&err, "part 2 refused").await;
    let left = std::process::Command::new("pgrep").args(["-f", &marker]).output().expect("pgrep");
    assert!(left.stdout.is_empty(), "pg_dump is still running: {}", String::from_utf8_lossy(&left.stdout));
}

/// Backs up a small database and returns its manifest (draining the backup's own alerts).
pub(crate) async fn small_backup(f: &Fixture) -> Manifest {
    let (secret, _) = f.database(Seed::SMALL).await;
    let (manifest, _) = f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect("backup");
    manifest
}

async fn assert_detected(f: &Fixture, failure: &str) {
    let report = f.verifier().run(Selection::Latest, None).await.expect("the test ran");
    assert!(!report.passed());
    assert!(report.failures.iter().any(|x| x.contains(failure)), "{:?}", report.failures);
    assert_eq!(report.result, "failed");
    if report.scratch_database.is_some() {
        assert!(!scratch_left(f, &report), "the scratch database is dropped on failure too");
        assert!(report.scratch_dropped);
    }
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].attribute("severity"), Some("critical"));
    assert!(notes[0].alert().summary.contains(failure));
}

#[tokio::test]
async fn the_verifier_detects_a_flipped_byte() {
    let f = fixture().await;
    let manifest = small_backup(&f).await;
    let mut bytes = f.download(&manifest.key).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    f.store().put(&manifest.key, bytes, "application/octet-stream").await.expect("corrupt");
    assert_detected(&f, "sha256 matches the manifest").await;
}

#[tokio::test]
async fn the_verifier_detects_a_truncated_object() {
    let f = fixture().await;
    let manifest = small_backup(&f).await;
    let bytes = f.download(&manifest.key).await;
    f.store()
        .put(&manifest.key, bytes[..bytes.len() - 100].to_vec(), "application/octet-stream")
        .await
        .expect("truncate");
    assert_detected(&f, "size matches the manifest").await;
}

#[tokio::test]
async fn the_verifier_detects_counts_that_disagree_and_still_drops_its_database() {
    let f = fixture().await;
    let mut manifest = small_backup(&f).await;
    let users = manifest.tables.iter_mut().find(|t| t.table == "users").expect("users counted");
    users.rows += 1;
    let body = serde_json::to_vec(&manifest).expect("json");
    f.store().put(&manifest_key(&manifest.key), body, "application/json").await.expect("tamper");
    assert_detected(&f, "auth.users: manifest 51, restored 50").await;
}

#[tokio::test]
async fn the_verifier_skips_backups_without_a_manifest() {
    let f = fixture().await;
    let manifest = small_backup(&f).await;
    f.aws
        .s3
        .delete_object()
        .bucket(names::backup_bucket())
        .key(manifest_key(&manifest.key))
        .send()
        .await
        .expect("delete");
    let err = f.verifier().run(Selection::Latest, None).await.expect_err("no complete backup");
    assert!(err.to_string().contains("no backup with a manifest"), "{err}");
    let err = f.verifier().run(Selection::Key(manifest.key.clone()), None).await.expect_err("named, no manifest");
    assert!(err.to_string().contains("has no manifest"), "{err}");
}

/// A stand-in of Supabase's `GET /v1/projects/{ref}/database/backups` that answers with
/// `backups` to the right bearer token and 401 otherwise.
async fn supabase_stand_in(token: &'static str, backups: serde_json::Value) -> String {
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/v1/projects/{project}/database/backups",
        axum::routing::get(move |Path(project): Path<String>, headers: HeaderMap| {
            let backups = backups.clone();
            async move {
                let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
                let authorised = bearer == Some(&format!("Bearer {token}"));
                if !authorised || project != "abcdefghijklmnop" {
                    return (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"message": "Unauthorized"})));
                }
                let body = serde_json::json!({
                    "region": "us-east-1", "walg_enabled": true, "pitr_enabled": false, "backups": backups
                });
                (StatusCode::OK, axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn platform_check(f: &Fixture, api_url: String, token: &str) -> String {
    let (secret, _) = f.database(Seed::SMALL).await;
    let token_secret = unique("supabase-token");
    f.aws.secrets.create_secret().name(&token_secret).secret_string(token).send().await.expect("token secret");
    let mut config = f.backup_config(&secret);
    config.supabase = Some(ops_shared::backup::SupabaseCheck {
        project_ref: "abcdefghijklmnop".into(),
        token_secret_arn: token_secret,
        api_url,
    });
    let (_, summary) = f.backup(f.store(), config).run(None, None).await.expect("the backup itself succeeds");
    summary.platform_backups
}

#[tokio::test]
async fn fresh_platform_backups_raise_nothing() {
    let f = fixture().await;
    let recent = (chrono::Utc::now() - chrono::Duration::hours(3)).format("%Y-%m-%d %H:%M:%S%.3f+00").to_string();
    let url = supabase_stand_in(
        "sbp_token",
        serde_json::json!([{"is_physical_backup": true, "status": "COMPLETED", "inserted_at": recent}]),
    )
    .await;
    let outcome = platform_check(&f, url, "sbp_token").await;
    assert!(outcome.starts_with("fresh"), "{outcome}");
    assert!(f.alerts.receive(0, Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn stale_or_unreadable_platform_backups_warn() {
    let f = fixture().await;
    let old = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let url = supabase_stand_in(
        "sbp_token",
        serde_json::json!([
            {"status": "COMPLETED", "inserted_at": old},
            {"status": "FAILED", "inserted_at": chrono::Utc::now().to_rfc3339()}
        ]),
    )
    .await;
    let outcome = platform_check(&f, url.clone(), "sbp_token").await;
    assert!(outcome.contains("older than the 24 h RPO"), "{outcome}");
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].attribute("severity"), Some("warning"));

    let outcome = platform_check(&f, url, "wrong-token").await;
    assert!(outcome.contains("could not be checked") && outcome.contains("401"), "{outcome}");
    assert_eq!(f.alerts.receive(1, Duration::from_secs(3)).await.len(), 1);
}

#[tokio::test]
async fn a_restore_needing_a_role_the_staging_server_lacks_names_the_role() {
    let f = fixture_on(17).await;
    let name = unique("roles").replace('-', "_");
    let role = unique("analyst").replace('-', "_");
    let pg = f.pg();
    pg.psql("postgres", &format!("CREATE DATABASE {name}")).expect("database");
    pg.psql(
        &name,
        &format!(
            "CREATE ROLE {role} NOLOGIN; CREATE TABLE public.reports (id int PRIMARY KEY, body text); \
             INSERT INTO public.reports VALUES (1, 'q3'); ALTER TABLE public.reports ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY analysts_read ON public.reports FOR SELECT TO {role} USING (true)"
        ),
    )
    .expect("a policy for the role");
    let secret = f.secret(&pg.superuser(&name)).await;
    f.backup(f.store(), f.backup_config(&secret)).run(None, None).await.expect("backup");
    // The staging server no longer has the role the dump's policy names.
    pg.psql("postgres", &format!("ALTER ROLE {role} RENAME TO {role}_renamed")).expect("rename role");

    let mut verifier = f.verifier();
    verifier.config.validation_queries =
        vec![ops_shared::restore::ValidationQuery { name: "reports".into(), sql: "SELECT true".into() }];
    let report = verifier.run(Selection::Latest, None).await.expect("the test ran");
    assert!(!report.passed());
    let failure = report.failures.iter().find(|x| x.starts_with("pg_restore succeeds")).expect("pg_restore failed");
    assert!(failure.contains(&format!("the staging server has no role \"{role}\"")), "{failure}");
    assert!(!scratch_left(&f, &report));
    let notes = f.alerts.receive(1, Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].alert().summary.contains(&format!("no role \"{role}\"")), "{}", notes[0].alert().summary);
}

/// The first bytes of an ELF file's machine field: 0xB7 is AArch64.
fn elf_machine(path: &std::path::Path) -> u16 {
    let bytes = std::fs::read(path).expect("read ELF");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arm64_layer_backs_up_and_restores_postgres_17_over_verified_tls_under_emulation() {
    let arm64 = ops_testkit::pg::arm64_tools_dir().expect("the arm64 layer");
    let tools = PgTools::open(&arm64).expect("arm64 tools");
    assert_eq!(tools.majors(), &[15, 17]);
    let pg_dump = tools.pick(Tool::PgDump, 17).expect("pg_dump 17");
    assert_eq!(elf_machine(pg_dump.program()), 0xB7, "the layer's pg_dump is an arm64 binary");

    let mut f = fixture_on(17).await;
    let pg = f.pg();
    let verify_full = |mut creds: DbCredentials, ca: &str| {
        creds.sslmode = Some(ops_shared::postgres::SslMode::VerifyFull);
        creds.sslrootcert = Some(ca.to_owned());
        creds
    };
    let name = unique("arm64").replace('-', "_");
    let creds = verify_full(pg.create_seeded_database(&name, Seed::SMALL).expect("database"), &pg.ca_pem);
    let secret = f.secret(&creds).await;
    f.staging_secret = f.secret(&verify_full(pg.superuser("postgres"), &pg.ca_pem)).await;

    let started = std::time::Instant::now();
    let mut config = f.backup_config(&secret);
    config.pg_tools_dir = arm64.display().to_string();
    let (manifest, _) = f.backup(f.store(), config).run(None, None).await.expect("backup by the arm64 pg_dump");
    assert!(manifest.pg_dump_version.starts_with("pg_dump (PostgreSQL) 17."), "{}", manifest.pg_dump_version);
    let report = f.verifier_with(arm64.display().to_string()).run(Selection::Latest, None).await.expect("ran");
    assert!(report.passed(), "{:#?}", report.failures);
    println!("emulated arm64 round trip (backup and restore test): {:.1} s", started.elapsed().as_secs_f64());

    // The layer's libpq verifies the server: a CA that did not sign it is refused.
    let dir = tempfile::tempdir().expect("temp");
    let other_ca = ops_testkit::pg::make_ca(dir.path(), "other CA").expect("another CA");
    for (ca, expected_ok) in [(pg.ca_pem.as_str(), true), (other_ca.as_str(), false)] {
        let creds = verify_full(pg.superuser(&name), ca);
        let libpq = creds.libpq_env().expect("libpq env");
        let output = pg_dump
            .command()
            .args(["--schema-only", "--no-password", "--host", &creds.host, "--port", &creds.port.to_string()])
            .args(["--username", &creds.username, "--dbname", &creds.dbname])
            .envs(libpq.vars.iter().cloned())
            .output()
            .await
            .expect("run the arm64 pg_dump");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.success(), expected_ok, "{stderr}");
        if !expected_ok {
            assert!(stderr.contains("certificate verify failed"), "{stderr}");
        }
    }
}
