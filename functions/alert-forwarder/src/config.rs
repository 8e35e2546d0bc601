use std::time::Duration;

use ops_shared::{ConfigError, Env};
use serde::Deserialize;

/// A parent alert mutes its children while it fires (Alertmanager's inhibition). A child
/// matches its key exactly or as a prefix followed by `:` (`health-checker:app` mutes
/// `health-checker:app:latency` too).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    pub parent: String,
    pub children: Vec<String>,
}

impl InhibitRule {
    pub fn mutes(&self, dedup_key: &str) -> bool {
        self.children.iter().any(|child| {
            dedup_key == child || dedup_key.strip_prefix(child.as_str()).is_some_and(|rest| rest.starts_with(':'))
        })
    }
}

/// The largest request a Function URL passes on: Lambda's 6 MB synchronous payload. Sentry's
/// issue alerts carry the whole event and can be far above SNS's 256 KB.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub ops_topic_arn: String,
    pub sentry_secret_arn: String,
    pub slack_secret_arn: Option<String>,
    pub repeat_interval: Duration,
    pub inhibit_rules: Vec<InhibitRule>,
    /// Sentry webhooks older (or newer) than this are refused as replays.
    pub max_clock_skew: Duration,
    pub max_body_bytes: usize,
}

impl ForwarderConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(ForwarderConfig {
            ops_topic_arn: env.arn("OPS_TOPIC_ARN", "sns")?,
            sentry_secret_arn: env.required("SENTRY_WEBHOOK_SECRET_ARN")?,
            slack_secret_arn: env.optional("SLACK_WEBHOOK_SECRET_ARN"),
            repeat_interval: Duration::from_secs(
                env.parse_in_range("REPEAT_INTERVAL_MINUTES", 60_u64, 1..=7 * 24 * 60)? * 60,
            ),
            inhibit_rules: env.json_or("INHIBIT_RULES", Vec::new())?,
            max_clock_skew: Duration::from_secs(env.parse_in_range("SENTRY_MAX_SKEW_SECONDS", 300_u64, 10..=3600)?),
            max_body_bytes: MAX_BODY_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_variable_and_rules_match_prefixes() {
        let base = [("OPS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:ops"), ("SENTRY_WEBHOOK_SECRET_ARN", "s")];
        let config = ForwarderConfig::from_env(&Env::from_pairs(base)).expect("valid");
        assert!(config.inhibit_rules.is_empty());
        for (var, value) in
            [("OPS_TOPIC_ARN", "ops"), ("INHIBIT_RULES", "[{\"parent\": 1}]"), ("REPEAT_INTERVAL_MINUTES", "0")]
        {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            assert_eq!(ForwarderConfig::from_env(&Env::from_pairs(pairs)).expect_err(var).var(), Some(var));
        }
        let rule = InhibitRule { parent: "db".into(), children: vec!["health-checker:app".into()] };
        assert!(rule.mutes("health-checker:app") && rule.mutes("health-checker:app:latency"));
        assert!(!rule.mutes("health-checker:apple"));
    }
}
