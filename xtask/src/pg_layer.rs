//! The PostgreSQL tools layer: `pg_dump` and `pg_restore` of every supported major, with every
//! library they load and their own loader and C library, from Debian packages only.
//!
//! Debian 13 is the only Debian with `postgresql-client-17`, and it needs glibc 2.38; Amazon
//! Linux 2023 has 2.34. So the layer carries Debian 13's loader and glibc, and the functions
//! start the tools through that loader (`<dir>/lib/ld-linux-*.so.* --library-path <dir>/lib`).
//! `pg_dump` 15 comes from Debian 12 and runs against the same libraries (libpq is backward
//! compatible).
//!
//! Layout, mounted by Lambda under /opt: `pgtools/<major>/bin/{pg_dump,pg_restore}`,
//! `pgtools/lib/` (loader, libc, libpq and the rest), `pgtools/PACKAGES` (what it was built from).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Majors the layer holds, and the Debian suite each comes from.
const MAJORS: &[(u32, &str)] = &[(15, "bookworm"), (17, "trixie")];
const TOOLS: &[&str] = &["pg_dump", "pg_restore"];
/// Everything the tools load (the closure is checked: a missing library fails the build).
const LIBRARIES: &[&str] = &[
    "libc6",
    "libpq5",
    "libssl3t64",
    "zlib1g",
    "liblz4-1",
    "libxxhash0",
    "libzstd1",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libcom-err2",
    "libkeyutils1",
    "libldap2",
    "libsasl2-2",
];
/// Amazon Linux 2023's glibc: what `provided.al2023` offers a binary that brings no loader.
pub const AL2023_GLIBC: (u32, u32) = (2, 34);

#[derive(Debug, Clone, Copy)]
pub struct Arch {
    /// Debian's name.
    pub deb: &'static str,
    triplet: &'static str,
    loader: &'static str,
    /// `Machine:` as `readelf -h` prints it.
    machine: &'static str,
}

pub const ARM64: Arch =
    Arch { deb: "arm64", triplet: "aarch64-linux-gnu", loader: "ld-linux-aarch64.so.1", machine: "AArch64" };
pub const AMD64: Arch = Arch {
    deb: "amd64",
    triplet: "x86_64-linux-gnu",
    loader: "ld-linux-x86-64.so.2",
    machine: "Advanced Micro Devices X86-64",
};

/// What a build produced, for the closing summary.
pub struct Built {
    /// The directory holding `pgtools/`.
    pub root: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub newest_glibc_needed: (u32, u32),
    pub bundled_glibc: (u32, u32),
}

fn run(program: &str, args: &[&str], apt_config: Option<&Path>, cwd: Option<&Path>) -> Result<String, String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(config) = apt_config {
        command.env("APT_CONFIG", config);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command.output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn fresh_dir(path: &Path) -> Result<(), String> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// An apt configuration of its own (Debian 12 and 13, amd64 and arm64) under `work`, so the
/// system's sources, lists and cache stay untouched. Returns its file. The lists stay
/// compressed, without translations, and no binary cache is written: uncompressed they took
/// 470 MB of disk, now 76 MB, for the 10 MB of packages the layer needs per architecture.
fn apt_config(work: &Path) -> Result<PathBuf, String> {
    let apt = work.join("apt");
    for dir in ["lists/partial", "cache/archives/partial", "etc/parts", "etc/preferences.d"] {
        std::fs::create_dir_all(apt.join(dir)).map_err(|e| format!("cannot create {}: {e}", apt.display()))?;
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    if !Path::new(keyring).exists() {
        return Err(format!("{keyring} is missing: install debian-archive-keyring"));
    }
    let mirror = debian_mirror();
    let sources: String = MAJORS
        .iter()
        .map(|(_, suite)| format!("deb [arch=amd64,arm64 signed-by={keyring}] {mirror} {suite} main\n"))
        .collect();
    write(&apt.join("etc/sources.list"), &sources)?;
    write(&apt.join("status"), "")?;
    let a = apt.display();
    let config = format!(
        "Dir::Etc::SourceList \"{a}/etc/sources.list\";\nDir::Etc::SourceParts \"{a}/etc/parts\";\n\
         Dir::Etc::Parts \"{a}/etc/parts\";\nDir::Etc::Preferences \"{a}/etc/preferences\";\n\
         Dir::Etc::PreferencesParts \"{a}/etc/preferences.d\";\nDir::State::Lists \"{a}/lists\";\n\
         Dir::State::status \"{a}/status\";\nDir::Cache \"{a}/cache\";\n\
         APT::Architectures {{ \"amd64\"; \"arm64\"; }};\nAPT::Sandbox::User \"root\";\n\
         Acquire::Languages \"none\";\nAcquire::GzipIndexes \"true\";\n\
         Dir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n"
    );
    let path = apt.join("apt.conf");
    write(&path, &config)?;
    Ok(path)
}

/// The machine's own Debian mirror (from its apt sources), so the layer comes from where the
/// system's packages do.
fn debian_mirror() -> String {
    let mut texts = vec![std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.filter_map(Result::ok) {
            texts.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .find(|word| word.starts_with("http") && word.trim_end_matches('/').ends_with("/debian"))
        .map(|m| m.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// Downloads the packages for `arch` into `debs` and returns `package=version` for each.
fn download(config: &Path, arch: Arch, debs: &Path) -> Result<Vec<String>, String> {
    fresh_dir(debs)?;
    let mut wanted: Vec<String> = Vec::new();
    for (major, suite) in MAJORS {
        // Each major from its own suite: `pkg/suite` picks it even where another suite is newer.
        wanted.push(format!("postgresql-client-{major}:{}/{suite}", arch.deb));
    }
    wanted.extend(LIBRARIES.iter().map(|p| format!("{p}:{}", arch.deb)));
    let mut args = vec!["download", "-q"];
    args.extend(wanted.iter().map(String::as_str));
    run("apt-get", &args, Some(config), Some(debs))?;
    let mut versions: Vec<String> = std::fs::read_dir(debs)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".deb")?;
            let mut parts = stem.split('_');
            Some(format!("{}={}", parts.next()?, parts.next()?.replace("%3a", ":")))
        })
        .collect();
    versions.sort();
    Ok(versions)
}

/// Builds the layer's directory for `arch` under `work`, checks it and returns what it holds.
/// The package lists are fetched once per work directory.
pub fn build(work: &Path, arch: Arch) -> Result<Built, String> {
    let config = apt_config(work)?;
    let lists_present = std::fs::read_dir(work.join("apt/lists"))
        .map(|d| d.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().contains("_Packages")))
        .unwrap_or(false);
    if !lists_present {
        run("apt-get", &["update", "-q"], Some(&config), None)?;
    }
    let arch_dir = work.join(arch.deb);
    let debs = arch_dir.join("debs");
    // Kept lists go stale when the mirror replaces a version: refresh them once and retry.
    let versions = match download(&config, arch, &debs) {
        Ok(versions) => versions,
        Err(_) if lists_present => {
            run("apt-get", &["update", "-q"], Some(&config), None)?;
            download(&config, arch, &debs)?
        }
        Err(err) => return Err(err),
    };

    let extracted = arch_dir.join("extracted");
    fresh_dir(&extracted)?;
    for entry in std::fs::read_dir(&debs).map_err(|e| e.to_string())?.filter_map(Result::ok) {
        let deb = entry.path();
        run("dpkg-deb", &["-x", &deb.to_string_lossy(), &extracted.to_string_lossy()], None, None)?;
    }

    let root = arch_dir.join("layer");
    fresh_dir(&root)?;
    let tools = root.join("pgtools");
    let lib = tools.join("lib");
    std::fs::create_dir_all(&lib).map_err(|e| e.to_string())?;
    let mut queue = VecDeque::new();
    for (major, _) in MAJORS {
        let bin = tools.join(major.to_string()).join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        for tool in TOOLS {
            let from = extracted.join(format!("usr/lib/postgresql/{major}/bin/{tool}"));
            let to = bin.join(tool);
            copy(&from, &to)?;
            queue.push_back(to);
        }
    }
    // The loader first: every other file names it, and it must exist even if none did.
    let loader = find_library(&extracted, arch, arch.loader)
        .ok_or_else(|| format!("{} is in none of the downloaded packages", arch.loader))?;
    copy(&loader, &lib.join(arch.loader))?;
    queue.push_back(lib.join(arch.loader));

    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut needed_by: BTreeMap<String, String> = BTreeMap::new();
    while let Some(file) = queue.pop_front() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let elf = Elf::read(&file)?;
        if elf.machine != arch.machine {
            return Err(format!("{} is built for {}, not {}", file.display(), elf.machine, arch.machine));
        }
        for soname in elf.needed {
            let target = lib.join(&soname);
            needed_by.entry(soname.clone()).or_insert_with(|| relative(&file, &tools));
            if !target.exists() {
                let source = find_library(&extracted, arch, &soname).ok_or_else(|| {
                    format!(
                        "{soname} (needed by {}) is in none of the downloaded packages; add its package to LIBRARIES",
                        relative(&file, &tools)
                    )
                })?;
                copy(&source, &target)?;
            }
            queue.push_back(target);
        }
    }

    let bundled_glibc = glibc_defined(&lib.join("libc.so.6"))?;
    let mut newest = (0, 0);
    for file in &seen {
        let elf = Elf::read(file)?;
        if let Some(needed) = elf.glibc_needed.iter().max() {
            if *needed > bundled_glibc {
                return Err(format!(
                    "{} needs glibc {}.{}, newer than the layer's own {}.{}",
                    relative(file, &tools),
                    needed.0,
                    needed.1,
                    bundled_glibc.0,
                    bundled_glibc.1
                ));
            }
            newest = newest.max(*needed);
        }
    }
    // The layer's loader must not lean on anything of the host's: it is static.
    if !Elf::read(&lib.join(arch.loader))?.needed.is_empty() {
        return Err(format!("{} is not self-contained", arch.loader));
    }
    write(
        &tools.join("PACKAGES"),
        &format!(
            "Debian packages this layer was built from ({}); started through lib/{}:\n{}\n",
            arch.deb,
            arch.loader,
            versions.join("\n")
        ),
    )?;
    let (files, bytes) = size_of(&root)?;
    Ok(Built { root, files, bytes, newest_glibc_needed: newest, bundled_glibc })
}

/// Whether the layer needs its loader on Amazon Linux 2023 (it always brings one).
pub fn needs_own_loader(built: &Built) -> bool {
    built.newest_glibc_needed > AL2023_GLIBC
}

fn relative(file: &Path, base: &Path) -> String {
    file.strip_prefix(base).unwrap_or(file).display().to_string()
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    // Copies the file a symlink points at: the layer holds real files under their sonames.
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn find_library(extracted: &Path, arch: Arch, name: &str) -> Option<PathBuf> {
    [format!("usr/lib/{}", arch.triplet), format!("lib/{}", arch.triplet), "usr/lib".to_owned(), "lib".to_owned()]
        .iter()
        .map(|dir| extracted.join(dir).join(name))
        .find(|path| path.exists())
}

fn size_of(dir: &Path) -> Result<(usize, u64), String> {
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.filter_map(Result::ok) {
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        if meta.is_dir() {
            let (f, b) = size_of(&entry.path())?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}

/// What `readelf` says of one ELF file.
pub struct Elf {
    pub machine: String,
    pub needed: Vec<String>,
    pub glibc_needed: Vec<(u32, u32)>,
}

impl Elf {
    pub fn read(path: &Path) -> Result<Elf, String> {
        let path_text = path.to_string_lossy();
        let header = run("readelf", &["-h", &path_text], None, None)?;
        let machine = header
            .lines()
            .find_map(|l| l.trim().strip_prefix("Machine:"))
            .map(|m| m.trim().to_owned())
            .ok_or_else(|| format!("{} is not an ELF file", path.display()))?;
        let dynamic = run("readelf", &["-d", &path_text], None, None)?;
        let needed = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_owned()))
            .collect();
        let versions = run("readelf", &["-V", &path_text], None, None)?;
        // Only the "Version needs" section: what this file requires of the C library.
        let needs = versions.split("Version needs section").nth(1).unwrap_or("");
        let glibc_needed = needs.split_whitespace().filter_map(parse_glibc).collect();
        Ok(Elf { machine, needed, glibc_needed })
    }
}

fn parse_glibc(word: &str) -> Option<(u32, u32)> {
    let rest = word.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The newest `GLIBC_x.y` a C library defines.
fn glibc_defined(libc: &Path) -> Result<(u32, u32), String> {
    let versions = run("readelf", &["-V", &libc.to_string_lossy()], None, None)?;
    let definitions = versions.split("Version needs section").next().unwrap_or("");
    definitions
        .split_whitespace()
        .filter_map(parse_glibc)
        .max()
        .ok_or_else(|| format!("{} defines no GLIBC version", libc.display()))
}

/// Zips `root` (which holds `pgtools/`) into `zip` with Python's zipfile, which keeps the
/// executable bits Lambda needs.
pub fn zip(root: &Path, zip: &Path, python: &str) -> Result<u64, String> {
    if zip.exists() {
        std::fs::remove_file(zip).map_err(|e| e.to_string())?;
    }
    run(python, &["-m", "zipfile", "-c", &zip.to_string_lossy(), "pgtools"], None, Some(root))?;
    std::fs::metadata(zip).map(|m| m.len()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_parse_and_order() {
        assert_eq!(parse_glibc("GLIBC_2.38"), Some((2, 38)));
        assert_eq!(parse_glibc("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc("GLIBC_PRIVATE"), None);
        assert!((2, 38) > AL2023_GLIBC && (2, 34) <= AL2023_GLIBC);
    }
}
