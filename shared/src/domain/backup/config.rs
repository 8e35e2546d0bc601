use std::time::Duration;

use crate::runtime::config::{ConfigError, Env};

/// `scheduled-backup`'s settings: the database secret, where dumps go (bucket and prefix), the
/// PostgreSQL tools, the part size and compression of the upload, the RPO the platform's own
/// backups are held to and the time kept back from the Lambda deadline.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub database_secret_arn: String,
    pub bucket: String,
    pub prefix: String,
    /// pg_dump of every major, `<dir>/<major>/bin/pg_dump` (see `crate::adapters::pgtools`).
    pub pg_tools_dir: String,
    pub part_size: usize,
    pub compression: Compression,
    pub rpo: Duration,
    pub supabase: Option<SupabaseCheck>,
    /// Time kept back from the Lambda deadline to abort the upload and alert.
    pub deadline_margin: Duration,
    pub database_timeout: Duration,
}

/// Where to ask Supabase whether its own backups are fresh.
#[derive(Debug, Clone)]
pub struct SupabaseCheck {
    pub project_ref: String,
    pub token_secret_arn: String,
    pub api_url: String,
}

pub const MIB: usize = 1024 * 1024;

/// A `DUMP_COMPRESSION` that is none of the methods and levels pg_dump takes.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("level {level:?}")]
    Level { level: String, source: std::num::ParseIntError },
    #[error("{text:?} is not auto, gzip[:0-9] or zstd[:1-22]")]
    Unknown { text: String },
}

/// How pg_dump compresses the dump (`DUMP_COMPRESSION`: `auto`, `gzip[:0-9]` or `zstd[:1-22]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at level 3 where pg_dump has it (16 and newer), else gzip at pg_dump's default 6.
    Auto,
    Gzip(u32),
    Zstd(u32),
}

impl Compression {
    pub fn parse(text: &str) -> Result<Compression, CompressionError> {
        let (method, level) = match text.trim().split_once(':') {
            Some((method, level)) => {
                let parsed = level
                    .parse::<u32>()
                    .map_err(|source| CompressionError::Level { level: level.to_owned(), source })?;
                (method, Some(parsed))
            }
            None => (text.trim(), None),
        };
        match (method, level) {
            ("auto", None) => Ok(Compression::Auto),
            ("gzip", None) => Ok(Compression::Gzip(6)),
            ("gzip", Some(level @ 0..=9)) => Ok(Compression::Gzip(level)),
            ("zstd", None) => Ok(Compression::Zstd(3)),
            ("zstd", Some(level @ 1..=22)) => Ok(Compression::Zstd(level)),
            _ => Err(CompressionError::Unknown { text: text.to_owned() }),
        }
    }

    /// What pg_dump of `major` is asked for, and why that is not what was configured. A
    /// setting the tool cannot honour costs a warning, never the night's backup.
    pub(crate) fn for_pg_dump(self, major: u32) -> (Compression, Option<String>) {
        let has_zstd = major >= 16;
        match self {
            Compression::Auto if has_zstd => (Compression::Zstd(3), None),
            Compression::Auto => (Compression::Gzip(6), None),
            Compression::Zstd(level) if !has_zstd => (
                Compression::Gzip(6),
                Some(format!("DUMP_COMPRESSION zstd:{level} needs pg_dump 16 or newer; pg_dump {major} used gzip:6")),
            ),
            chosen => (chosen, None),
        }
    }

    /// pg_dump's `--compress` value: a bare level means gzip to every pg_dump.
    pub(crate) fn pg_dump_arg(self) -> String {
        match self {
            Compression::Auto => "6".to_owned(),
            Compression::Gzip(level) => level.to_string(),
            Compression::Zstd(level) => format!("zstd:{level}"),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::Auto => f.write_str("auto"),
            Compression::Gzip(level) => write!(f, "gzip:{level}"),
            Compression::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

impl BackupConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let supabase = match (env.optional("SUPABASE_PROJECT_REF"), env.optional("SUPABASE_TOKEN_SECRET_ARN")) {
            (None, _) => None,
            (Some(_), None) => return Err(ConfigError::Missing { var: "SUPABASE_TOKEN_SECRET_ARN".into() }),
            (Some(project_ref), Some(token_secret_arn)) => Some(SupabaseCheck {
                project_ref,
                token_secret_arn,
                api_url: env.or("SUPABASE_API_URL", "https://api.supabase.com").trim_end_matches('/').to_owned(),
            }),
        };
        Ok(BackupConfig {
            database_secret_arn: env.required("DATABASE_SECRET_ARN")?,
            bucket: env.required("BACKUP_BUCKET")?,
            prefix: env.or("BACKUP_PREFIX", "backups/"),
            pg_tools_dir: env.or("PG_TOOLS_DIR", crate::adapters::pgtools::DEFAULT_DIR),
            // S3 parts are 5 MiB to 5 GiB.
            part_size: env.parse_in_range("PART_SIZE_MIB", 16, 5..=5120)? * MIB,
            compression: Compression::parse(&env.or("DUMP_COMPRESSION", "auto"))
                .map_err(|problem| ConfigError::malformed("DUMP_COMPRESSION", problem))?,
            rpo: Duration::from_secs(env.parse_in_range("RPO_HOURS", 24_u64, 1..=24 * 30)? * 3600),
            supabase,
            deadline_margin: Duration::from_secs(env.parse_in_range("DEADLINE_MARGIN_SECONDS", 30, 5..=300)?),
            database_timeout: Duration::from_secs(10),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = vec![("DATABASE_SECRET_ARN", "cineview-database"), ("BACKUP_BUCKET", "b")];
        pairs.extend_from_slice(extra);
        Env::from_pairs(pairs)
    }

    #[test]
    fn defaults_and_errors() {
        let config = BackupConfig::from_env(&env(&[])).expect("valid");
        assert_eq!(config.part_size, 16 * MIB);
        assert_eq!(config.prefix, "backups/");
        assert!(config.supabase.is_none());
        assert_eq!(config.compression, Compression::Auto);
        for (var, value) in [
            ("PART_SIZE_MIB", "4"),
            ("RPO_HOURS", "zero"),
            ("DEADLINE_MARGIN_SECONDS", "1"),
            ("DUMP_COMPRESSION", "lz4"),
            ("DUMP_COMPRESSION", "zstd:0"),
            ("DUMP_COMPRESSION", "gzip:10"),
            ("DUMP_COMPRESSION", "auto:3"),
        ] {
            assert_eq!(BackupConfig::from_env(&env(&[(var, value)])).expect_err(var).var(), Some(var));
        }
        let err = BackupConfig::from_env(&env(&[("SUPABASE_PROJECT_REF", "abc")])).expect_err("token needed");
        assert_eq!(err.var(), Some("SUPABASE_TOKEN_SECRET_ARN"));
        assert_eq!(
            BackupConfig::from_env(&Env::from_pairs([("BACKUP_BUCKET", "b")])).expect_err("db").var(),
            Some("DATABASE_SECRET_ARN")
        );
    }

    #[test]
    fn compression_follows_the_pg_dump_that_runs() {
        let parsed = |text: &str| Compression::parse(text).expect(text);
        assert_eq!(parsed("gzip"), Compression::Gzip(6));
        assert_eq!(parsed("gzip:0"), Compression::Gzip(0));
        assert_eq!(parsed("zstd"), Compression::Zstd(3));
        assert_eq!(parsed(" zstd:19 "), Compression::Zstd(19));
        assert_eq!(Compression::Auto.for_pg_dump(17), (Compression::Zstd(3), None));
        assert_eq!(Compression::Auto.for_pg_dump(15), (Compression::Gzip(6), None));
        assert_eq!(parsed("gzip:1").for_pg_dump(17), (Compression::Gzip(1), None));
        let (chosen, warning) = parsed("zstd:5").for_pg_dump(15);
        assert_eq!(chosen, Compression::Gzip(6));
        assert!(warning.is_some_and(|w| w.contains("needs pg_dump 16")));
        assert_eq!(Compression::Gzip(6).pg_dump_arg(), "6");
        assert_eq!(Compression::Zstd(3).pg_dump_arg(), "zstd:3");
        assert_eq!(Compression::Zstd(3).to_string(), "zstd:3");
    }
}
