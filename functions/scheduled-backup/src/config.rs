use std::time::Duration;

use ops_shared::{ConfigError, Env};

/// `scheduled-backup`'s settings (DESIGN.md, "Configuration per function").
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub database_secret_arn: String,
    pub bucket: String,
    pub prefix: String,
    /// pg_dump of every major, `<dir>/<major>/bin/pg_dump` (see `ops_shared::pgtools`).
    pub pg_tools_dir: String,
    pub part_size: usize,
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
            pg_tools_dir: env.or("PG_TOOLS_DIR", ops_shared::pgtools::DEFAULT_DIR),
            // S3 parts are 5 MiB to 5 GiB.
            part_size: env.parse_in_range("PART_SIZE_MIB", 16, 5..=5120)? * MIB,
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
        for (var, value) in [("PART_SIZE_MIB", "4"), ("RPO_HOURS", "zero"), ("DEADLINE_MARGIN_SECONDS", "1")] {
            assert_eq!(BackupConfig::from_env(&env(&[(var, value)])).expect_err(var).var(), Some(var));
        }
        let err = BackupConfig::from_env(&env(&[("SUPABASE_PROJECT_REF", "abc")])).expect_err("token needed");
        assert_eq!(err.var(), Some("SUPABASE_TOKEN_SECRET_ARN"));
        assert_eq!(
            BackupConfig::from_env(&Env::from_pairs([("BACKUP_BUCKET", "b")])).expect_err("db").var(),
            Some("DATABASE_SECRET_ARN")
        );
    }
}
