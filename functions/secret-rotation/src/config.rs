use std::time::Duration;

use ops_shared::{ConfigError, Env};

/// `secret-rotation`'s own settings, from its environment (docs/configuration.md lists them).
#[derive(Debug, Clone)]
pub struct RotationConfig {
    pub password_length: i64,
    pub exclude_characters: String,
    pub database_timeout: Duration,
    /// How long a provider's long-running operation (Google key create/delete) may take.
    pub operation_timeout: Duration,
    /// A key left by a version of the secret that no stage holds any more, and that is older
    /// than this (a rotation still under way is younger), is an orphan to revoke.
    pub orphan_after: Duration,
    /// The staging twin's name prefix (`STAGING_NAME_PREFIX`), set in production only: a
    /// rotation waits until staging's rotation of the same strategy passed with this code.
    /// `None`: the gate is off.
    pub staging_prefix: Option<String>,
}

pub const DEFAULT_EXCLUDE_CHARACTERS: &str = ":/@\"'\\";
/// Secrets Manager's rotation window is at most a day: a version without a stage that old was
/// left by a rotation that was cancelled or whose pending version was removed.
pub const ORPHAN_AFTER: Duration = Duration::from_secs(24 * 3600);

impl RotationConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(RotationConfig {
            password_length: env.parse_in_range("PASSWORD_LENGTH", 32, 16..=4096)?,
            exclude_characters: env.or("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS),
            database_timeout: Duration::from_secs(env.parse_in_range("DATABASE_TIMEOUT_SECONDS", 10, 1..=120)?),
            operation_timeout: Duration::from_secs(env.parse_in_range("OPERATION_TIMEOUT_SECONDS", 30, 1..=600)?),
            orphan_after: ORPHAN_AFTER,
            staging_prefix: env.optional("STAGING_NAME_PREFIX"),
        })
    }
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            password_length: 32,
            exclude_characters: DEFAULT_EXCLUDE_CHARACTERS.to_owned(),
            database_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            orphan_after: ORPHAN_AFTER,
            staging_prefix: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("PASSWORD_LENGTH", "8"),
            ("PASSWORD_LENGTH", "long"),
            ("DATABASE_TIMEOUT_SECONDS", "0"),
            ("OPERATION_TIMEOUT_SECONDS", "0"),
        ] {
            let err = RotationConfig::from_env(&Env::from_pairs([(var, value)])).expect_err("refused");
            assert_eq!(err.var(), Some(var));
        }
        let config = RotationConfig::from_env(&Env::default()).expect("defaults");
        assert_eq!(config.password_length, 32);
        assert_eq!(config.exclude_characters, ":/@\"'\\");
    }
}
