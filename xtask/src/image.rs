//! `cargo xtask image`: the engine task's container image for ECS Fargate (arm64), built
//! without a container daemon as an OCI image layout (OCI Image Format Specification v1.1:
//! "Image Layout", "Image Manifest", "Image Configuration", "Image Layer Filesystem
//! Changeset"). Two layers: the PostgreSQL tools layer the Lambda functions use (`/opt/pgtools`,
//! with its own loader and glibc), and the `engine-task` binary with the loader's link, the CA
//! roots and `/tmp`. Layers are reproducible: sorted, owned by root, dated 1970, gzip without
//! a name or time. `skopeo copy oci:<dir>:latest docker://<registry>/<repository>:<tag>` pushes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::package::run;
use crate::pg_layer::Elf;

const ENTRYPOINT: &str = "/usr/local/bin/engine-task";
const LOADER: &str = "ld-linux-aarch64.so.1";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Libraries of the binary's that the tools layer does not hold.
const OWN_LIBS: &str = "/opt/engine-task/lib";

/// A layer written to the layout: its blob's digest and size, and its uncompressed digest.
struct Layer {
    digest: String,
    size: u64,
    diff_id: String,
}

pub struct Image {
    /// The OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`).
    pub dir: PathBuf,
    pub manifest_digest: String,
    /// The compressed layers' sizes: what a task pulls.
    pub pulled_bytes: u64,
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(|h| format!("sha256:{h}"))
        .ok_or_else(|| format!("no digest of {}", path.display()))
}

fn size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `bytes` as a blob; returns its digest and size.
fn blob(blobs: &Path, bytes: &[u8]) -> Result<(String, u64), String> {
    let staged = blobs.join("staged");
    std::fs::write(&staged, bytes).map_err(|e| format!("{}: {e}", staged.display()))?;
    let digest = sha256(&staged)?;
    let name = digest.trim_start_matches("sha256:");
    std::fs::rename(&staged, blobs.join(name)).map_err(|e| e.to_string())?;
    Ok((digest, bytes.len() as u64))
}

/// The files under `root` as one gzip'd tar layer in `blobs`.
fn layer(root: &Path, blobs: &Path) -> Result<Layer, String> {
    let tar = blobs.join("layer.tar");
    let mut entries: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    run(Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=posix"])
        .args(["--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(&tar)
        .args(&entries))?;
    let diff_id = sha256(&tar)?;
    run(Command::new("gzip").args(["-n", "-9", "-f"]).arg(&tar))?;
    let gz = blobs.join("layer.tar.gz");
    let digest = sha256(&gz)?;
    let size = size(&gz)?;
    std::fs::rename(&gz, blobs.join(digest.trim_start_matches("sha256:"))).map_err(|e| e.to_string())?;
    Ok(Layer { digest, size, diff_id })
}

/// The engine layer's files: the binary, the loader where its ELF header looks for it, the
/// libraries it loads that the tools layer lacks (glibc's `libpthread` and `libdl` stubs, from
/// the same Debian package as the layer's `libc.so.6`, unpacked in `debian`), the CA roots
/// (the SDK and reqwest read the system's), and `/tmp`.
fn engine_root(root: &Path, binary: &Path, pgtools: &Path, debian: &Path) -> Result<(), String> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let elf = Elf::read(binary)?;
    if elf.machine != "AArch64" {
        return Err(format!("{} is built for {}, not AArch64", binary.display(), elf.machine));
    }
    let mkdir = |dir: &Path| std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()));
    for dir in ["usr/local/bin", "lib", "etc/ssl/certs", "tmp", OWN_LIBS.trim_start_matches('/')] {
        mkdir(&root.join(dir))?;
    }
    for lib in elf.needed.iter().filter(|lib| !pgtools.join("lib").join(lib).exists()) {
        let from = ["usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu"]
            .iter()
            .map(|dir| debian.join(dir).join(lib))
            .find(|path| path.exists())
            .ok_or_else(|| format!("engine-task needs {lib}, which neither the tools layer nor libc6 brings"))?;
        std::fs::copy(&from, root.join(OWN_LIBS.trim_start_matches('/')).join(lib))
            .map_err(|e| format!("{}: {e}", from.display()))?;
    }
    let installed = root.join(ENTRYPOINT.trim_start_matches('/'));
    std::fs::copy(binary, &installed).map_err(|e| format!("{}: {e}", binary.display()))?;
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    symlink(format!("/opt/pgtools/lib/{LOADER}"), root.join("lib").join(LOADER)).map_err(|e| e.to_string())?;
    std::fs::copy(CA_BUNDLE, root.join(CA_BUNDLE.trim_start_matches('/')))
        .map_err(|e| format!("{CA_BUNDLE} (Debian's ca-certificates): {e}"))?;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).map_err(|e| e.to_string())
}

/// Builds the layout in `out` from the tools layer's `pgtools` directory, the Debian packages
/// it was made from (unpacked in `debian`) and the arm64 binary.
pub fn build(out: &Path, pgtools: &Path, debian: &Path, binary: &Path) -> Result<Image, String> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let blobs = out.join("blobs").join("sha256");
    let staging = out.with_extension("staging");
    let _ = std::fs::remove_dir_all(&staging);
    let (tools_root, engine) = (staging.join("tools"), staging.join("engine"));
    std::fs::create_dir_all(tools_root.join("opt")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    run(Command::new("cp").arg("-a").arg(pgtools).arg(tools_root.join("opt").join("pgtools")))?;
    engine_root(&engine, binary, pgtools, debian)?;
    let layers = [layer(&tools_root, &blobs)?, layer(&engine, &blobs)?];
    let _ = std::fs::remove_dir_all(&staging);

    let config = json!({
        "architecture": "arm64",
        "os": "linux",
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                // The binary's own C library is the tools layer's (glibc with its loader).
                format!("LD_LIBRARY_PATH=/opt/pgtools/lib:{OWN_LIBS}"),
                "PG_TOOLS_DIR=/opt/pgtools",
                format!("SSL_CERT_FILE={CA_BUNDLE}"),
            ],
            "WorkingDir": "/tmp",
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": [
            {"created": "1970-01-01T00:00:00Z", "created_by": "cargo xtask pg-layer: pg_dump and pg_restore 15 and 17"},
            {"created": "1970-01-01T00:00:00Z", "created_by": "cargo xtask image: engine-task"},
        ],
    });
    let (config_digest, config_size) = blob(&blobs, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size) = blob(&blobs, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": "arm64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    let write = |name: &str, text: String| std::fs::write(out.join(name), text).map_err(|e| e.to_string());
    write("oci-layout", json!({"imageLayoutVersion": "1.0.0"}).to_string())?;
    write("index.json", index.to_string())?;
    Ok(Image { dir: out.to_path_buf(), manifest_digest, pulled_bytes: layers.iter().map(|l| l.size).sum() })
}
