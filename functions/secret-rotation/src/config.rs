use std::time::Duration;

use ops_shared::{ConfigError, Env};

/// `secret-rotation`'s own settings (DESIGN.md, "Configuration per function").
#[derive(Debug, Clone)]
pub struct RotationConfig {
    pub password_length: i64,
    pub exclude_characters: String,
    pub database_timeout: Duration,
    /// How long a provider's long-running operation (Google key create/delete) may take.
    pub operation_timeout: Duration,
}

pub const DEFAULT_EXCLUDE_CHARACTERS: &str = ":/@\"'\\";

impl RotationConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(RotationConfig {
            password_length: env.parse_in_range("PASSWORD_LENGTH", 32, 16..=4096)?,
            exclude_characters: env.or("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS),
            database_timeout: Duration::from_secs(env.parse_in_range("DATABASE_TIMEOUT_SECONDS", 10, 1..=120)?),
            operation_timeout: Duration::from_secs(env.parse_in_range("OPERATION_TIMEOUT_SECONDS", 30, 1..=600)?),
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
