//! Typed configuration from the environment. Every function reads its settings through
//! [`Env`], so a missing or malformed variable is always an error that names it.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use serde::de::DeserializeOwned;

/// A configuration problem, naming the variable so ops can fix the template or stack.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration variable {var} is not set")]
    Missing { var: String },
    #[error("configuration variable {var} is malformed: {problem}")]
    Malformed { var: String, problem: String },
    /// Something the function builds at start-up failed, whatever the configuration says.
    #[error("cannot set up {what}: {problem}")]
    Setup { what: &'static str, problem: String },
}

impl ConfigError {
    pub fn malformed(var: &str, problem: impl Display) -> Self {
        ConfigError::Malformed { var: var.to_owned(), problem: problem.to_string() }
    }

    /// The variable this error is about, if it is about one.
    pub fn var(&self) -> Option<&str> {
        match self {
            ConfigError::Missing { var } | ConfigError::Malformed { var, .. } => Some(var),
            ConfigError::Setup { .. } => None,
        }
    }
}

/// A snapshot of environment variables. Built from the process environment in production and
/// from explicit pairs in tests, so configuration parsing never depends on global state.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Env { vars: std::env::vars().collect() }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Env { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// These settings, with `pairs` set over them.
    pub fn with<K: Into<String>, V: Into<String>>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        self.vars.extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The value of `var` if set and not blank; surrounding whitespace is trimmed.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.get(var).map(str::to_owned).ok_or_else(|| ConfigError::Missing { var: var.to_owned() })
    }

    pub fn optional(&self, var: &str) -> Option<String> {
        self.get(var).map(str::to_owned)
    }

    pub fn or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).to_owned()
    }

    /// Parses `var` with [`FromStr`], or returns `default` when it is unset.
    pub(crate) fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| ConfigError::malformed(var, format!("{raw:?}: {e}"))),
        }
    }

    /// Like [`Env::parse_or`] but also refuses values outside `range`.
    pub fn parse_in_range<T>(&self, var: &str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
        T::Err: Display,
    {
        let value = self.parse_or(var, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::malformed(var, format!("{value} is outside {}..={}", range.start(), range.end())))
        }
    }

    /// Parses `var` as JSON, or returns `default` when it is unset.
    pub fn json_or<T: DeserializeOwned>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => {
                serde_json::from_str(raw).map_err(|e| ConfigError::malformed(var, format!("invalid JSON: {e}")))
            }
        }
    }

    pub fn json_required<T: DeserializeOwned>(&self, var: &str) -> Result<T, ConfigError> {
        let raw = self.required(var)?;
        serde_json::from_str(&raw).map_err(|e| ConfigError::malformed(var, format!("invalid JSON: {e}")))
    }

    /// An ARN-valued variable: must look like `arn:<partition>:<service>:...`.
    pub fn arn(&self, var: &str, service: &str) -> Result<String, ConfigError> {
        let value = self.required(var)?;
        check_arn(var, &value, service)?;
        Ok(value)
    }
}

fn check_arn(var: &str, value: &str, service: &str) -> Result<(), ConfigError> {
    let mut parts = value.splitn(6, ':');
    let well_formed = parts.next() == Some("arn")
        && parts.next().is_some_and(|p| !p.is_empty())
        && parts.next() == Some(service)
        && parts.count() == 3;
    if well_formed { Ok(()) } else { Err(ConfigError::malformed(var, format!("{value:?} is not an {service} ARN"))) }
}

/// Settings every function shares: its region and (off AWS) endpoint, Sentry, the SNS topic
/// alerts go to and the DynamoDB table of its state. A function refuses to start without them.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub sentry: SentryConfig,
    pub alert_topic_arn: String,
    pub state_table: String,
}

#[derive(Debug, Clone)]
pub struct SentryConfig {
    /// `None` when `SENTRY_DSN` is empty: Sentry is off.
    pub dsn: Option<sentry::types::Dsn>,
    pub environment: String,
    pub(crate) traces_sample_rate: f32,
}

impl SentryConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        // Parse the DSN here: sentry panics on an invalid DSN string.
        let dsn = match env.get("SENTRY_DSN") {
            None => None,
            Some(raw) => Some(
                raw.parse::<sentry::types::Dsn>()
                    .map_err(|e| ConfigError::malformed("SENTRY_DSN", format!("not a valid DSN: {e}")))?,
            ),
        };
        let traces_sample_rate = env.parse_or("SENTRY_TRACES_SAMPLE_RATE", 0.1_f32)?;
        if !(0.0..=1.0).contains(&traces_sample_rate) {
            return Err(ConfigError::malformed(
                "SENTRY_TRACES_SAMPLE_RATE",
                format!("{traces_sample_rate} is outside 0.0..=1.0"),
            ));
        }
        Ok(SentryConfig { dsn, environment: env.or("SENTRY_ENVIRONMENT", "production"), traces_sample_rate })
    }
}

impl CommonConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(CommonConfig {
            region: env.required("AWS_REGION")?,
            endpoint_url: env.optional("AWS_ENDPOINT_URL"),
            sentry: SentryConfig::from_env(env)?,
            alert_topic_arn: env.arn("ALERT_TOPIC_ARN", "sns")?,
            state_table: env.required("STATE_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_REGION", "us-east-1"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:ops-alerts"),
            ("STATE_TABLE", "ops-state"),
        ]
    }

    fn with(overrides: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = base();
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        Env::from_pairs(pairs)
    }

    #[test]
    fn common_config_reads_defaults() {
        let config = CommonConfig::from_env(&with(&[])).expect("valid config");
        assert!(config.sentry.dsn.is_none());
        assert_eq!(config.sentry.traces_sample_rate, 0.1);
        assert_eq!(config.sentry.environment, "production");
    }

    #[test]
    fn each_error_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("AWS_REGION", "")], "AWS_REGION"),
            (&[("STATE_TABLE", "")], "STATE_TABLE"),
            (&[("ALERT_TOPIC_ARN", "")], "ALERT_TOPIC_ARN"),
            (&[("ALERT_TOPIC_ARN", "ops-alerts")], "ALERT_TOPIC_ARN"),
            (&[("ALERT_TOPIC_ARN", "arn:aws:sqs:us-east-1:1:q")], "ALERT_TOPIC_ARN"),
            (&[("SENTRY_DSN", "not a dsn")], "SENTRY_DSN"),
            (&[("SENTRY_TRACES_SAMPLE_RATE", "lots")], "SENTRY_TRACES_SAMPLE_RATE"),
            (&[("SENTRY_TRACES_SAMPLE_RATE", "1.5")], "SENTRY_TRACES_SAMPLE_RATE"),
        ];
        for (overrides, var) in cases {
            let err = CommonConfig::from_env(&with(overrides)).expect_err("config must be refused");
            assert_eq!(err.var(), Some(*var));
            assert!(err.to_string().contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn blank_values_count_as_missing() {
        let env = Env::from_pairs([("X", "   ")]);
        assert!(matches!(env.required("X"), Err(ConfigError::Missing { .. })));
    }

    #[test]
    fn range_and_json_checks_name_the_variable() {
        let env = Env::from_pairs([("N", "0"), ("J", "{oops")]);
        assert_eq!(env.parse_in_range("N", 5_u32, 1..=10).expect_err("out of range").var(), Some("N"));
        assert_eq!(
            env.json_or::<serde_json::Value>("J", serde_json::Value::Null).expect_err("bad json").var(),
            Some("J")
        );
    }
}
