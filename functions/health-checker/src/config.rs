//! Targets and thresholds. Targets read as configuration, like Gatus endpoints.

use std::collections::BTreeMap;
use std::time::Duration;

use ops_shared::{ConfigError, Env};
use serde::Deserialize;
use serde_json::Value;

use ops_shared::slo::SloPolicy;

/// The runbook's availability objective for the AI engine, the target named `ai-engine`.
pub const AI_ENGINE_OBJECTIVE_PERCENT: f64 = 99.5;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Target {
    pub name: String,
    #[serde(flatten)]
    pub probe: Probe,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_warn_ms")]
    pub warn_ms: u64,
    #[serde(default = "default_critical_ms")]
    pub critical_ms: u64,
    /// Availability objective in percent, judged by error-budget burn rate (see `slo`).
    #[serde(default)]
    pub slo_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Probe {
    Http {
        url: String,
        #[serde(default = "default_method")]
        method: String,
        #[serde(default)]
        headers: BTreeMap<String, HeaderSource>,
        #[serde(default = "default_status")]
        expect_status: u16,
        /// Conditions on fields of a JSON body, all of which must hold.
        #[serde(default)]
        body: Vec<BodyCondition>,
    },
    Postgres {
        secret_arn: String,
    },
}

/// A header value, literal or drawn from a secret (optionally a JSON field of it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum HeaderSource {
    Literal(String),
    Secret {
        secret_arn: String,
        #[serde(default)]
        json_key: Option<String>,
        #[serde(default)]
        prefix: String,
    },
}

/// `{"path": "checks.database", "equals": "ok"}`: the JSON body's field at a dotted path.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyCondition {
    pub path: String,
    pub equals: Value,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_warn_ms() -> u64 {
    1_500
}
fn default_critical_ms() -> u64 {
    3_000
}
fn default_method() -> String {
    "GET".to_owned()
}
fn default_status() -> u16 {
    200
}

impl Target {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The availability objective as a fraction: the target's own, else the runbook's 99.5 %
    /// for the AI engine; none for others.
    pub fn objective(&self) -> Option<f64> {
        let default = (self.name == "ai-engine").then_some(AI_ENGINE_OBJECTIVE_PERCENT);
        self.slo_percent.or(default).map(|percent| percent / 100.0)
    }
}

#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub targets: Vec<Target>,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub reminder: Duration,
    pub latency_window: Duration,
    pub tls_warn_days: i64,
    /// Days availability counters are kept (the AI engine's 99.5 % is computed over a month).
    pub availability_days: i64,
    pub slo: SloPolicy,
}

impl HealthConfig {
    /// `targets` with every other setting at its default (the template's values).
    pub fn with_defaults(targets: Vec<Target>) -> Self {
        HealthConfig {
            targets,
            failure_threshold: 3,
            success_threshold: 2,
            reminder: Duration::from_secs(60 * 60),
            latency_window: Duration::from_secs(5 * 60),
            tls_warn_days: 14,
            availability_days: 35,
            slo: SloPolicy::default(),
        }
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw: Vec<Value> = env.json_required("HEALTH_TARGETS")?;
        unknown_fields(&raw)?;
        let targets: Vec<Target> = serde_json::from_value(Value::Array(raw)).map_err(malformed_targets)?;
        validate_targets(&targets)?;
        Ok(HealthConfig {
            targets,
            failure_threshold: env.parse_in_range("FAILURE_THRESHOLD", 3, 1..=100)?,
            success_threshold: env.parse_in_range("SUCCESS_THRESHOLD", 2, 1..=100)?,
            reminder: Duration::from_secs(env.parse_in_range("REMINDER_MINUTES", 60_u64, 1..=7 * 24 * 60)? * 60),
            latency_window: Duration::from_secs(env.parse_in_range("LATENCY_WINDOW_MINUTES", 5_u64, 1..=60)? * 60),
            tls_warn_days: env.parse_in_range("TLS_WARN_DAYS", 14, 1..=365)?,
            availability_days: 35,
            slo: slo_policy(env)?,
        })
    }
}

fn slo_policy(env: &Env) -> Result<SloPolicy, ConfigError> {
    let policy: SloPolicy = env.json_or("SLO_POLICY", SloPolicy::default())?;
    match policy.problem() {
        Some(problem) => Err(ConfigError::malformed("SLO_POLICY", problem)),
        None => Ok(policy),
    }
}

/// Refuses unknown keys (a typo would otherwise silently take a default).
fn unknown_fields(raw: &[Value]) -> Result<(), ConfigError> {
    const COMMON: &[&str] = &["name", "kind", "timeout_ms", "warn_ms", "critical_ms", "slo_percent"];
    for target in raw {
        let Value::Object(map) = target else { return Err(malformed_targets("each target must be a JSON object")) };
        let specific: &[&str] = match map.get("kind").and_then(Value::as_str) {
            Some("http") => &["url", "method", "headers", "expect_status", "body"],
            Some("postgres") => &["secret_arn"],
            _ => &[],
        };
        if let Some(key) = map.keys().find(|k| !COMMON.contains(&k.as_str()) && !specific.contains(&k.as_str())) {
            return Err(malformed_targets(format!(
                "unknown field {key:?} in target {:?}",
                map.get("name").and_then(Value::as_str).unwrap_or("?")
            )));
        }
    }
    Ok(())
}

fn validate_targets(targets: &[Target]) -> Result<(), ConfigError> {
    if targets.is_empty() {
        return Err(malformed_targets("needs at least one target"));
    }
    let mut names = std::collections::HashSet::new();
    for target in targets {
        if target.name.trim().is_empty() || !names.insert(target.name.as_str()) {
            return Err(malformed_targets(format!("target names must be non-empty and unique ({:?})", target.name)));
        }
        if !(target.warn_ms <= target.critical_ms && target.timeout_ms > 0 && target.timeout_ms <= 60_000) {
            return Err(malformed_targets(format!(
                "target {}: need warn_ms <= critical_ms and 0 < timeout_ms <= 60000",
                target.name
            )));
        }
        if target.slo_percent.is_some_and(|p| !(50.0..100.0).contains(&p)) {
            return Err(malformed_targets(format!(
                "target {}: slo_percent must be at least 50 and below 100",
                target.name
            )));
        }
        if let Probe::Http { url, method, .. } = &target.probe {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(malformed_targets(format!("target {}: url {url:?} is not http(s)", target.name)));
            }
            if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
                return Err(malformed_targets(format!(
                    "target {}: method {method:?} is not an HTTP method",
                    target.name
                )));
            }
        }
    }
    Ok(())
}

fn malformed_targets(problem: impl std::fmt::Display) -> ConfigError {
    ConfigError::malformed("HEALTH_TARGETS", problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_target_takes_the_documented_defaults() {
        let env = Env::from_pairs([(
            "HEALTH_TARGETS",
            r#"[{"name": "app", "kind": "http", "url": "https://cineview.ai/api/health"},
                {"name": "database", "kind": "postgres", "secret_arn": "cineview-database"},
                {"name": "ai-engine", "kind": "http", "url": "https://ai.cineview.ai/health",
                 "headers": {"Authorization":
                     {"secret_arn": "cineview-ai-engine-api", "json_key": "api_key", "prefix": "Bearer "}},
                 "body": [{"path": "status", "equals": "ok"}]}]"#,
        )]);
        let config = HealthConfig::from_env(&env).expect("valid");
        let app = &config.targets[0];
        assert_eq!((app.timeout_ms, app.warn_ms, app.critical_ms), (5000, 1500, 3000));
        assert!(matches!(&app.probe, Probe::Http { method, expect_status: 200, .. } if method == "GET"));
        assert!(matches!(&config.targets[1].probe, Probe::Postgres { .. }));
        assert_eq!((config.failure_threshold, config.success_threshold), (3, 2));
    }

    #[test]
    fn bad_targets_name_the_variable() {
        for raw in [
            "not json",
            "[]",
            r#"[{"name": "a", "kind": "ftp", "url": "x"}]"#,
            r#"[{"name": "a", "kind": "http", "url": "ftp://x"}]"#,
            r#"[{"name": "a", "kind": "http", "url": "http://x"}, {"name": "a", "kind": "http", "url": "http://y"}]"#,
            r#"[{"name": "a", "kind": "http", "url": "http://x", "warn_ms": 5000, "critical_ms": 100}]"#,
            r#"[{"name": "a", "kind": "http", "url": "http://x", "tiemout_ms": 5}]"#,
        ] {
            let err = HealthConfig::from_env(&Env::from_pairs([("HEALTH_TARGETS", raw)])).expect_err(raw);
            assert_eq!(err.var(), Some("HEALTH_TARGETS"), "{raw}");
        }
        assert_eq!(HealthConfig::from_env(&Env::default()).expect_err("missing").var(), Some("HEALTH_TARGETS"));
    }
}
