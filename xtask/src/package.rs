//! `cargo xtask package`: the five functions as Lambda runs them. cargo-lambda (pinned, from
//! PyPI, with its zig linker) cross-compiles each for arm64 and zips its `bootstrap`; every
//! bootstrap must be an aarch64 ELF needing no glibc newer than Amazon Linux 2023's, and every
//! zip must stay within the size budget.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::pg_layer::{AL2023_GLIBC, Elf};

const CARGO_LAMBDA: &str = "cargo-lambda==1.9.2";
/// Its own virtual environment: it pins boto3, botocore and jsonschema versions of its own.
const SAM_CLI: &str = "aws-sam-cli==1.170.0";
const ZIGLANG: &str = "ziglang==0.17.1";
/// Its own virtual environment as well: it pins dozens of packages (boto3, pydantic, ...).
const CHECKOV: &str = "checkov==3.3.30";
/// The cold-start benchmark's Python anchor: AWS's runtime interface client and boto3, with
/// the botocore release that boto3 shipped with.
const AWSLAMBDARIC: &str = "awslambdaric==4.2.2";
const BOTO3: &str = "boto3==1.44.5";
const BOTOCORE: &str = "botocore==1.44.5";
/// The benchmark's operator baseline, `pg_dump -Fc | aws s3 cp -`; its own botocore pins too.
const AWS_CLI: &str = "awscli==1.46.2";
const TARGET: &str = "aarch64-unknown-linux-gnu";
/// Each zip at most 4 MB: a small package loads fast on a cold start.
const ZIP_BUDGET_BYTES: u64 = 4_000_000;

pub struct Packaged {
    pub function: &'static str,
    pub zip: PathBuf,
    pub zip_bytes: u64,
    pub newest_glibc: (u32, u32),
}

/// Runs `command`; its standard output, or the command and its standard error.
pub fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!("{command:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr)))
    }
}

/// A virtual environment `name` under `target_dir` holding `packages` (pinned), created when
/// `probe` (`program --version`, run from its `bin`) does not name the first one's version;
/// returns its `bin`.
fn venv(target_dir: &Path, python: &str, name: &str, probe: &[&str], packages: &[&str]) -> Result<PathBuf, String> {
    let venv = target_dir.join("py").join(name);
    let bin = venv.join("bin");
    let version = packages[0].split_once("==").map(|(_, v)| v).unwrap_or_default();
    let installed = Command::new(bin.join(probe[0]))
        .args(&probe[1..])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if !installed {
        println!("==> installing {} into {}", packages.join(" "), venv.display());
        run(Command::new(python).args(["-m", "venv", "--clear"]).arg(&venv))?;
        run(Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"])
            .args(packages))?;
    }
    Ok(bin)
}

/// The virtual environment of the benchmark's Python anchor; returns its `bin`.
pub fn lambda_python(target_dir: &Path, python: &str) -> Result<PathBuf, String> {
    let probe = ["python", "-c", "import importlib.metadata as m; print(m.version('awslambdaric'))"];
    venv(target_dir, python, "lambda-python", &probe, &[AWSLAMBDARIC, BOTO3, BOTOCORE])
}

/// The AWS CLI (pinned) in a virtual environment of its own; returns the `aws` program.
pub fn aws_cli(target_dir: &Path, python: &str) -> Result<PathBuf, String> {
    Ok(venv(target_dir, python, "awscli", &["aws", "--version"], &[AWS_CLI])?.join("aws"))
}

fn cargo_lambda(target_dir: &Path, python: &str) -> Result<PathBuf, String> {
    venv(target_dir, python, "cargo-lambda", &["cargo-lambda", "lambda", "--version"], &[CARGO_LAMBDA, ZIGLANG])
}

/// `sam <args>` with the pinned SAM CLI, cargo-lambda on its PATH and the shared target dir.
pub fn sam(workspace: &Path, target_dir: &Path, python: &str, args: &[&str]) -> Result<(), String> {
    let sam = venv(target_dir, python, "sam", &["sam", "--version"], &[SAM_CLI])?;
    let cargo_lambda = cargo_lambda(target_dir, python)?;
    let path = format!("{}:{}:{}", sam.display(), cargo_lambda.display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new(sam.join("sam"))
        .args(args)
        .current_dir(workspace)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("SAM_CLI_TELEMETRY", "0")
        .status()
        .map_err(|e| format!("cannot run sam: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`sam {}` failed ({status})", args.join(" "))) }
}

/// `checkov <args>` with the pinned checkov, run in `folder`; offline (no update check).
pub fn checkov(folder: &Path, target_dir: &Path, python: &str, args: &[&str]) -> Result<(), String> {
    // Asked of the package metadata: `checkov --version` looks for a newer release on PyPI first.
    let probe = ["python", "-c", "import importlib.metadata as m; print(m.version('checkov'))"];
    let bin = venv(target_dir, python, "checkov", &probe, &[CHECKOV])?;
    let status = Command::new(bin.join("checkov"))
        .args(args)
        .current_dir(folder)
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
        .status()
        .map_err(|e| format!("cannot run checkov: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`checkov {}` failed ({status})", args.join(" "))) }
}

fn rust_target() -> Result<(), String> {
    let installed = run(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|line| line.trim() == TARGET) {
        println!("==> rustup target add {TARGET}");
        run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    Ok(())
}

/// Builds, zips and checks `functions`; the zips land in `<target_dir>/lambda/<function>/`.
pub fn package(
    workspace: &Path,
    target_dir: &Path,
    python: &str,
    functions: &[&'static str],
) -> Result<Vec<Packaged>, String> {
    let bin = cargo_lambda(target_dir, python)?;
    rust_target()?;
    let lambda_dir = target_dir.join("lambda");
    let started = Instant::now();
    let mut build = Command::new(bin.join("cargo-lambda"));
    build
        .args(["lambda", "build", "--release", "--arm64", "--locked", "--output-format", "zip", "--lambda-dir"])
        .arg(&lambda_dir)
        .current_dir(workspace)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    for function in functions {
        build.args(["--package", function]);
    }
    let status = build.status().map_err(|e| format!("cannot run cargo-lambda: {e}"))?;
    if !status.success() {
        return Err(format!("cargo lambda build failed ({status})"));
    }
    println!("package: built in {:.0}s", started.elapsed().as_secs_f64());
    functions.iter().map(|function| check(&lambda_dir.join(function), function, python)).collect()
}

/// Builds `package`'s binary for arm64 as the functions are built (cargo-lambda, its zig
/// linker); returns its path, `<target_dir>/lambda/<package>/bootstrap`.
pub fn binary(workspace: &Path, target_dir: &Path, python: &str, package: &str) -> Result<PathBuf, String> {
    let bin = cargo_lambda(target_dir, python)?;
    rust_target()?;
    let lambda_dir = target_dir.join("lambda");
    let status = Command::new(bin.join("cargo-lambda"))
        .args(["lambda", "build", "--release", "--arm64", "--locked", "--output-format", "binary", "--lambda-dir"])
        .arg(&lambda_dir)
        .args(["--package", package])
        .current_dir(workspace)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .status()
        .map_err(|e| format!("cannot run cargo-lambda: {e}"))?;
    if !status.success() {
        return Err(format!("cargo lambda build of {package} failed ({status})"));
    }
    Ok(lambda_dir.join(package).join("bootstrap"))
}

/// Removes what building the packages left besides the zips: the arm64 build's files and
/// cargo-lambda's environment (with zig, 0.47 GB). The next `package` makes them again.
pub fn remove_build_files(target_dir: &Path) -> Result<(), String> {
    for dir in [target_dir.join(TARGET), target_dir.join("py").join("cargo-lambda")] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
    }
    Ok(())
}

/// The mode the zip records for its `bootstrap`: Lambda runs the file with it.
const ZIP_MODE: &str =
    "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo('bootstrap').external_attr >> 16)";

/// Unzips `bootstrap` next to its zip (executable, as Lambda lays it out) and checks what
/// Lambda will load.
fn check(dir: &Path, function: &'static str, python: &str) -> Result<Packaged, String> {
    use std::os::unix::fs::PermissionsExt;
    let zip = dir.join("bootstrap.zip");
    let zip_bytes = std::fs::metadata(&zip).map_err(|e| format!("{}: {e}", zip.display()))?.len();
    let mode: u32 = run(Command::new(python).args(["-c", ZIP_MODE]).arg(&zip))?
        .trim()
        .parse()
        .map_err(|e| format!("{function}: cannot read the mode of bootstrap in {}: {e}", zip.display()))?;
    if mode & 0o111 == 0 {
        return Err(format!("{function}: bootstrap in {} is not executable (mode {mode:o})", zip.display()));
    }
    run(Command::new(python).args(["-m", "zipfile", "-e"]).arg(&zip).arg(dir))?;
    let bootstrap = dir.join("bootstrap");
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", bootstrap.display()))?;
    let elf = Elf::read(&bootstrap)?;
    if elf.machine != "AArch64" {
        return Err(format!("{function}: bootstrap is built for {}, not AArch64", elf.machine));
    }
    let newest_glibc = elf.glibc_needed.iter().copied().max().unwrap_or((0, 0));
    if newest_glibc > AL2023_GLIBC {
        return Err(format!(
            "{function}: bootstrap needs glibc {}.{}, newer than Amazon Linux 2023's {}.{}",
            newest_glibc.0, newest_glibc.1, AL2023_GLIBC.0, AL2023_GLIBC.1
        ));
    }
    if zip_bytes > ZIP_BUDGET_BYTES {
        return Err(format!(
            "{function}: {} is {zip_bytes} bytes, over the {ZIP_BUDGET_BYTES}-byte budget",
            zip.display()
        ));
    }
    Ok(Packaged { function, zip, zip_bytes, newest_glibc })
}
