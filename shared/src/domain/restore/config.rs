use std::time::Duration;

use crate::runtime::config::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// A check run against the restored database; it must return one boolean, true when healthy.
/// `:backup_started_at` and `:rpo_hours` are replaced by the backup's start time and the RPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationQuery {
    pub name: String,
    pub sql: String,
}

/// The runbook's checks. Presence is asked with `EXISTS`, which reads one row: the exact row
/// count of every table is compared with the manifest already.
pub fn default_validation_queries() -> Vec<ValidationQuery> {
    let query = |name: &str, sql: &str| ValidationQuery { name: name.to_owned(), sql: sql.to_owned() };
    vec![
        query("users exist", "SELECT EXISTS (SELECT 1 FROM auth.users)"),
        query("analyses exist", "SELECT EXISTS (SELECT 1 FROM public.analyses)"),
        query(
            "audit log has entries within the RPO before the backup",
            "SELECT coalesce(max(created_at) >= :backup_started_at - make_interval(hours => :rpo_hours), false) \
             FROM public.audit_log",
        ),
    ]
}

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub bucket: String,
    pub prefix: String,
    pub staging_secret_arn: String,
    /// The production database's secret, as the backups record it: `latest` and `random` pick
    /// among its backups only. Unset: among every backup under the prefix.
    pub database_secret_arn: Option<String>,
    /// pg_restore of every major, `<dir>/<major>/bin/pg_restore` (see `crate::adapters::pgtools`).
    pub pg_tools_dir: String,
    pub rto: Duration,
    pub rpo: Duration,
    pub validation_queries: Vec<ValidationQuery>,
    /// pg_restore's parallel jobs (`--jobs`); 1 restores in a single transaction instead.
    pub restore_jobs: u32,
    pub report_prefix: String,
    /// Backups older than this are not picked by `random` (the bucket's retention).
    pub retention: Duration,
    pub database_timeout: Duration,
}

impl VerifierConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let validation_queries = env.json_or("VALIDATION_QUERIES", default_validation_queries())?;
        if validation_queries.is_empty() {
            return Err(ConfigError::malformed("VALIDATION_QUERIES", "needs at least one query"));
        }
        Ok(VerifierConfig {
            bucket: env.required("BACKUP_BUCKET")?,
            prefix: env.or("BACKUP_PREFIX", "backups/"),
            staging_secret_arn: env.required("STAGING_DATABASE_SECRET_ARN")?,
            database_secret_arn: env.optional("DATABASE_SECRET_ARN"),
            pg_tools_dir: env.or("PG_TOOLS_DIR", crate::adapters::pgtools::DEFAULT_DIR),
            rto: Duration::from_secs(env.parse_in_range("RTO_MINUTES", 30_u64, 1..=24 * 60)? * 60),
            rpo: Duration::from_secs(env.parse_in_range("RPO_HOURS", 24_u64, 1..=24 * 30)? * 3600),
            validation_queries,
            // Most of a restore's work (COPY, index builds, constraints) is the staging
            // server's, not this function's: two jobs load one table while another's indexes
            // build, even on the ~0.6 vCPU of 1024 MB. More only pay with a larger server.
            restore_jobs: env.parse_in_range("RESTORE_JOBS", 2, 1..=16)?,
            report_prefix: env.or("REPORT_PREFIX", "reports/restore-tests/"),
            retention: Duration::from_secs(30 * 24 * 3600),
            database_timeout: Duration::from_secs(10),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_variable() {
        let base = [("BACKUP_BUCKET", "b"), ("STAGING_DATABASE_SECRET_ARN", "s")];
        let config = VerifierConfig::from_env(&Env::from_pairs(base)).expect("valid");
        assert_eq!(config.validation_queries.len(), 3);
        assert_eq!(config.rto, Duration::from_secs(1800));
        assert_eq!(config.restore_jobs, 2);
        for (var, value) in [
            ("VALIDATION_QUERIES", "[{\"name\": 1}]"),
            ("VALIDATION_QUERIES", "[]"),
            ("RTO_MINUTES", "0"),
            ("RESTORE_JOBS", "0"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((var, value));
            assert_eq!(VerifierConfig::from_env(&Env::from_pairs(pairs)).expect_err(var).var(), Some(var));
        }
        assert_eq!(
            VerifierConfig::from_env(&Env::from_pairs([("BACKUP_BUCKET", "b")])).expect_err("x").var(),
            Some("STAGING_DATABASE_SECRET_ARN")
        );
    }
}
