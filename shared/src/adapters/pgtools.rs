//! The PostgreSQL client tools the functions run, one set per major version, as the tools
//! layer lays them out: `<dir>/<major>/bin/{pg_dump,pg_restore}`. When `<dir>/lib` holds a
//! dynamic loader (`ld-linux-*.so.*`), the tools are started through it with `<dir>/lib` as
//! their library path: the layer brings a newer C library than Amazon Linux 2023's.

use std::path::{Path, PathBuf};

/// Where Lambda mounts the tools layer's `pgtools/`.
pub const DEFAULT_DIR: &str = "/opt/pgtools";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    PgDump,
    PgRestore,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::PgDump => "pg_dump",
            Tool::PgRestore => "pg_restore",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("no PostgreSQL tools in {dir}: {detail} (the PostgreSQL tools layer provides them)")]
    Missing { dir: String, detail: String },
    #[error(
        "PostgreSQL {needed} needs {tool} {needed} or newer, and {dir} has {tool} for PostgreSQL {available} only; \
         rebuild the tools layer with that major"
    )]
    NoMajor { tool: &'static str, needed: u32, dir: String, available: String },
    #[error("{0}")]
    Unusable(String),
}

/// The tools found in one directory.
#[derive(Debug, Clone)]
pub struct PgTools {
    dir: PathBuf,
    majors: Vec<u32>,
    loader: Option<PathBuf>,
}

impl PgTools {
    /// Lists the majors under `dir` (read at every run: cheap, and a layer can change).
    pub fn open(dir: impl Into<PathBuf>) -> Result<PgTools, ToolsError> {
        let dir = dir.into();
        let missing = |detail: String| ToolsError::Missing { dir: dir.display().to_string(), detail };
        let entries = std::fs::read_dir(&dir).map_err(|e| missing(e.to_string()))?;
        let mut majors: Vec<u32> =
            entries.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
        majors.sort_unstable();
        if majors.is_empty() {
            return Err(missing("no <major>/bin directory".to_owned()));
        }
        let loader = std::fs::read_dir(dir.join("lib")).ok().and_then(|entries| {
            entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ld-linux") && n.contains(".so"))
            })
        });
        Ok(PgTools { dir, majors, loader })
    }

    pub fn majors(&self) -> &[u32] {
        &self.majors
    }

    /// `tool` of the oldest major that is at least `needed` (the server's major, or the
    /// dump's): the same major when the layer has it.
    pub fn pick(&self, tool: Tool, needed: u32) -> Result<PgTool, ToolsError> {
        let found = self
            .majors
            .iter()
            .filter(|major| **major >= needed)
            .map(|major| (*major, self.dir.join(major.to_string()).join("bin").join(tool.name())))
            .find(|(_, program)| program.exists());
        match found {
            Some((major, program)) => Ok(PgTool {
                tool,
                major,
                program,
                loader: self.loader.clone().map(|loader| (loader, self.dir.join("lib"))),
            }),
            None => Err(ToolsError::NoMajor {
                tool: tool.name(),
                needed,
                dir: self.dir.display().to_string(),
                available: self.majors.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

/// One tool of one major, ready to start.
#[derive(Debug, Clone)]
pub struct PgTool {
    pub tool: Tool,
    pub major: u32,
    program: PathBuf,
    /// The loader and the library directory, when the tools bring their own C library.
    loader: Option<(PathBuf, PathBuf)>,
}

impl PgTool {
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A command that starts the tool (through the layer's loader when it has one).
    pub fn command(&self) -> tokio::process::Command {
        match &self.loader {
            None => tokio::process::Command::new(&self.program),
            Some((loader, lib)) => {
                let mut command = tokio::process::Command::new(loader);
                command.arg("--library-path").arg(lib).arg(&self.program);
                command
            }
        }
    }

    /// The version line the tool prints; fails unless it runs and is of the major its
    /// directory says.
    pub async fn version(&self) -> Result<String, ToolsError> {
        let shown = self.program.display();
        let output = self
            .command()
            .arg("--version")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| ToolsError::Unusable(format!("cannot run {shown}: {e}")))?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(ToolsError::Unusable(format!(
                "{shown} --version failed ({}): {}",
                output.status,
                stderr.trim()
            )));
        }
        match major_of(&text) {
            Some(major) if major == self.major => Ok(text),
            Some(major) => Err(ToolsError::Unusable(format!(
                "{shown} is {} {major}, but sits under the directory of major {}",
                self.tool.name(),
                self.major
            ))),
            None => Err(ToolsError::Unusable(format!("{shown} --version printed {text:?}, not a PostgreSQL version"))),
        }
    }
}

/// The major of a tool's version line (`pg_dump (PostgreSQL) 17.12 (Debian ...)` -> 17).
pub(crate) fn major_of(version_line: &str) -> Option<u32> {
    version_line.split(')').nth(1)?.split_whitespace().next()?.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines() {
        assert_eq!(major_of("pg_dump (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)"), Some(17));
        assert_eq!(major_of("pg_restore (PostgreSQL) 15.18"), Some(15));
        assert_eq!(major_of("pg_dump 15"), None);
    }

    fn layout(majors: &[u32]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for major in majors {
            let bin = dir.path().join(major.to_string()).join("bin");
            std::fs::create_dir_all(&bin).expect("bin");
            std::fs::write(bin.join("pg_dump"), "").expect("tool");
        }
        dir
    }

    #[test]
    fn the_servers_major_or_the_next_newer_is_picked() {
        let dir = layout(&[15, 17]);
        let tools = PgTools::open(dir.path()).expect("tools");
        assert_eq!(tools.majors(), &[15, 17]);
        assert_eq!(tools.pick(Tool::PgDump, 15).expect("15").major, 15);
        assert_eq!(tools.pick(Tool::PgDump, 16).expect("16 takes 17").major, 17);
        assert_eq!(tools.pick(Tool::PgDump, 17).expect("17").major, 17);
        let err = tools.pick(Tool::PgDump, 18).expect_err("no 18");
        assert!(err.to_string().contains("PostgreSQL 18 needs pg_dump 18 or newer"), "{err}");
        assert!(err.to_string().contains("for PostgreSQL 15, 17 only"), "{err}");
        let err = tools.pick(Tool::PgRestore, 15).expect_err("no pg_restore");
        assert!(matches!(err, ToolsError::NoMajor { tool: "pg_restore", .. }), "{err}");
    }

    #[test]
    fn an_empty_or_absent_directory_is_named() {
        let dir = layout(&[]);
        let err = PgTools::open(dir.path()).expect_err("empty");
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        assert!(PgTools::open(dir.path().join("absent")).is_err());
    }
}
