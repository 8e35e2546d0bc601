//! `opsctl sentry apply`: the runbook's Sentry metric alerts (error rate and P95 latency, each
//! with a warning and a critical trigger over 5 minutes), created and kept as the runbook says
//! through Sentry's REST API, each trigger notifying the internal integration whose webhook is
//! the Function URL of `sentry-webhook` (the alert-forwarder's code).
//!
//! Sentry's API reference, "Alerts" (`/api/0/organizations/{organization_id_or_slug}/alert-rules/`
//! and `.../alert-rules/{alert_rule_id}/`: list, create, update), and "Paginating Results" (the
//! `Link` header). Rules are found by name; a rule of any other name is never read beyond its
//! name, let alone written. Writes are idempotent in effect: a rule that already matches is
//! left alone, so a second run sends no write request.

mod apply;
mod client;
mod config;
mod model;
mod plan;

use ops_shared::secret_versions::SecretVersions;

pub use apply::{Change, Outcome, RuleReport, apply};
pub use client::SentryClient;
pub use config::{SentryApiConfig, read_config, secret_template};
pub use model::{Action, MetricAlertRule, Num, Trigger};
pub use ops_shared::sentry::{error_detail, next_cursor};
pub use plan::{desired, differences};

use crate::outcome::Verdict;
use crate::stack::Names;

pub use ops_shared::sentry::DEFAULT_API_URL;

/// Both rules run on the span dataset, restricted to transactions (the root span of each
/// request). Sentry's reference lists `transactions` for a failure-rate alert and
/// `events_analytics_platform` for transaction duration; Sentry itself now refuses to create
/// rules on `transactions` and `generic_metrics` ("Creation of transaction-based alerts is
/// disabled, as we migrate to the span dataset. Create span-based alerts (dataset:
/// events_analytics_platform) with the is_transaction:true filter instead."), so both use the
/// dataset that is still accepted, with the filter Sentry names.
pub const DATASET: &str = "events_analytics_platform";
/// The app's transactions only: `is_transaction:true`, and not those of the ops functions, which
/// carry the tag `ops.component:cineview-ops` (set when their Sentry client starts) and may send
/// to the app's project: a backup is a transaction of minutes and must never count towards the
/// app's P95 or error rate. Sentry's search syntax ("Search", docs.sentry.io/concepts/search/):
/// `key:value` tokens, joined by AND when only a space is between them; `!key:value` excludes.
/// (A test holds it to `ops_shared::telemetry::OPS_COMPONENT_TAG` and `OPS_COMPONENT`.)
pub const QUERY: &str = "is_transaction:true !ops.component:cineview-ops";
/// `1`: `event.type:transaction` (the reference's "Metric Alert Rule Types": performance).
pub const QUERY_TYPE: u8 = 1;
/// The runbook's evaluation window, in minutes (`timeWindow` is in minutes).
pub const TIME_WINDOW_MINUTES: u32 = 5;
/// `thresholdType` 0: alert when the value is above the threshold.
pub const THRESHOLD_ABOVE: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction of 1: `failure_rate()` is failed transactions over all transactions, and the
    /// alert compares it as it is (Sentry shows no unit for it), so 2 % is 0.02.
    Ratio,
    Milliseconds,
}

impl Unit {
    pub(crate) fn show(self, value: f64) -> String {
        match self {
            Unit::Ratio => format!("{}% ({value})", round(value * 100.0)),
            Unit::Milliseconds => format!("{} ms", round(value)),
        }
    }
}

fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// One runbook rule: one metric, a warning and a critical threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSpec {
    pub name: &'static str,
    pub aggregate: &'static str,
    pub warning: f64,
    pub critical: f64,
    pub unit: Unit,
}

/// The runbook's rules. The error rate is `failure_rate()`: the share of transactions whose
/// status is neither ok, cancelled nor unknown, which for the Next.js app is the share of
/// requests that failed; the latency is the P95 of the transactions' duration (`span.duration`
/// of a transaction's root span is the transaction's duration).
pub fn runbook_rules() -> [RuleSpec; 2] {
    [
        RuleSpec {
            name: "CineView ops: error rate",
            aggregate: "failure_rate()",
            warning: 0.02,
            critical: 0.05,
            unit: Unit::Ratio,
        },
        RuleSpec {
            name: "CineView ops: P95 latency",
            aggregate: "p95(span.duration)",
            warning: 1500.0,
            critical: 3000.0,
            unit: Unit::Milliseconds,
        },
    ]
}

/// `<prefix>-sentry-api`.
pub fn secret_name(prefix: &str) -> String {
    Names::new(prefix).sentry_api_secret()
}

/// Why `sentry apply` could not do its work; each says what to do. All are exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    #[error("the Sentry API secret {secret} {problem}")]
    Secret { secret: String, problem: String },
    #[error(
        "Sentry refused the auth token in {secret} (401: {detail}): put a valid token into its auth_token, \
         the internal integration's token (Alerts: Read & Write) or a user auth token with alerts:read and alerts:write"
    )]
    Unauthorized { secret: String, detail: String },
    #[error(
        "the auth token in {secret} may not manage alert rules of organization {organization} (403: {detail}): \
         give it alerts:read and alerts:write (for the internal integration: permission Alerts, Read & Write)"
    )]
    Forbidden { secret: String, organization: String, detail: String },
    #[error(
        "Sentry at {api_url} has no organization {organization:?} that the token can see (404: {detail}): \
         check organization and api_url in {secret} (an organization in Sentry's EU region is at https://de.sentry.io)"
    )]
    OrganizationNotFound { secret: String, api_url: String, organization: String, detail: String },
    #[error(
        "organization {organization} has no project {project:?} that the token can see (Sentry: {detail}): \
         check project in {secret}"
    )]
    ProjectNotFound { secret: String, organization: String, project: String, detail: String },
    #[error("cannot reach Sentry at {api_url} ({detail}): check api_url in {secret} and this machine's network")]
    Unreachable {
        secret: String,
        api_url: String,
        /// The error and its causes, in one line.
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Sentry refused rule {rule:?} ({status}: {detail})")]
    Refused { rule: String, status: u16, detail: String },
    #[error("Sentry answered {what} with {status}: {detail}")]
    Unexpected { what: String, status: u16, detail: String },
}

impl SentryError {
    pub const VERDICT: Verdict = Verdict::Failed;
    pub const EXIT_CODE: u8 = Self::VERDICT.code();
}

/// `opsctl sentry apply`: reads `<prefix>-sentry-api` and applies the runbook's rules.
pub async fn run(
    store: &impl SecretVersions,
    http: &reqwest::Client,
    prefix: &str,
    dry_run: bool,
) -> Result<Outcome, SentryError> {
    let config = read_config(store, prefix).await?;
    apply(&SentryClient::new(http.clone(), config), dry_run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SentryApiConfig {
        SentryApiConfig::parse(
            "p-sentry-api",
            r#"{"organization":"acme","project":"web","auth_token":"t0ken","sentry_app_id":42}"#,
        )
        .expect("parses")
    }

    #[test]
    fn the_secret_is_parsed_with_defaults_and_errors_name_the_field() {
        let c = config();
        assert_eq!((c.api_url.as_str(), c.sentry_app_id, c.environment.as_deref()), (DEFAULT_API_URL, 42, None));
        assert!(!format!("{c:?}").contains("t0ken"), "the token is not in Debug");
        let err = |value: &str| SentryApiConfig::parse("s", value).expect_err("refused").to_string();
        assert!(err(r#"{"organization":"a","project":"p","auth_token":"t"}"#).contains("has no sentry_app_id"));
        let slug =
            err(r#"{"organization":"a","project":"p","auth_token":"secret-token","sentry_app_id":"cineview-ops"}"#);
        assert!(slug.contains("numeric id") && !slug.contains("secret-token"), "{slug}");
        assert!(err(r#"{"organization":"a","auth_token":"t","sentry_app_id":1}"#).contains("has no project"));
        assert!(err("not json, hunter2").contains("is not JSON") && !err("not json, hunter2").contains("hunter2"));
        let eu = SentryApiConfig::parse(
            "s",
            r#"{"organization":"a","project":"p","auth_token":"t","sentry_app_id":"7",
                "api_url":"https://de.sentry.io/","environment":"production"}"#,
        )
        .expect("parses");
        assert_eq!(
            (eu.api_url.as_str(), eu.sentry_app_id, eu.environment.as_deref()),
            ("https://de.sentry.io", 7, Some("production"))
        );
    }

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let link = concat!(
            r#"<https://sentry.io/api/0/organizations/acme/alert-rules/?&cursor=0:0:1>; rel="previous"; "#,
            r#"results="false"; cursor="0:0:1", "#,
            r#"<https://sentry.io/api/0/organizations/acme/alert-rules/?&cursor=0:100:0>; rel="next"; "#,
            r#"results="true"; cursor="0:100:0""#
        );
        assert_eq!(next_cursor(link).as_deref(), Some("0:100:0"));
        assert_eq!(next_cursor(&link.replace(r#"results="true""#, r#"results="false""#)), None);
    }

    #[test]
    fn a_rule_as_desired_has_no_differences_and_each_field_is_named() {
        let c = config();
        for spec in runbook_rules() {
            let mut rule = desired(&spec, &c, None);
            // Sentry answers numbers as floats and the action's identifier as an integer.
            rule.time_window = Some(Num::from(5.0));
            assert_eq!(differences(&spec, &c, &rule), Vec::<String>::new(), "{}", spec.name);
            rule.triggers[0].alert_threshold = Some(Num::from(spec.critical * 3.0));
            rule.triggers[1].actions.clear();
            rule.time_window = Some(Num::from(10));
            let found = differences(&spec, &c, &rule);
            assert_eq!(found.len(), 3, "{found:?}");
            assert!(found[0].starts_with("window: 10 min -> 5 min"), "{found:?}");
            assert!(found[1].starts_with("critical threshold:"), "{found:?}");
            assert!(found[2].starts_with("warning action: none -> Sentry App 42"), "{found:?}");
        }
    }

    #[test]
    fn the_rules_watch_transactions_and_exclude_the_ops_functions_own() {
        use ops_shared::telemetry::{OPS_COMPONENT, OPS_COMPONENT_TAG};
        let exclusion = format!("!{OPS_COMPONENT_TAG}:{OPS_COMPONENT}");
        let c = config();
        for spec in runbook_rules() {
            let rule = desired(&spec, &c, None);
            let query = rule.query.as_deref().unwrap_or_default();
            let tokens: Vec<&str> = query.split_whitespace().collect();
            assert!(tokens.contains(&"is_transaction:true"), "{}: {query}", spec.name);
            assert!(tokens.contains(&exclusion.as_str()), "{}: {query}", spec.name);
            assert_eq!(rule.dataset.as_deref(), Some(DATASET));
        }
    }

    #[test]
    fn a_rule_without_the_exclusion_differs_in_its_query() {
        let c = config();
        for spec in runbook_rules() {
            let mut rule = desired(&spec, &c, None);
            rule.query = Some("is_transaction:true".to_owned());
            let found = differences(&spec, &c, &rule);
            assert_eq!(found, [format!("query: \"is_transaction:true\" -> {QUERY:?}")], "{}", spec.name);
        }
    }

    #[test]
    fn exit_codes() {
        let report = |change| RuleReport {
            name: "r".into(),
            id: None,
            change,
            differences: vec![],
            duplicates: vec![],
            after_write: vec![],
        };
        let outcome = |dry_run, change| Outcome { dry_run, rules: vec![report(change)] };
        assert_eq!(outcome(false, Change::UpToDate).exit_code(), 0);
        assert_eq!(outcome(false, Change::PutBack).exit_code(), 0);
        assert_eq!(outcome(true, Change::WouldPutBack).exit_code(), 1);
        assert_eq!(outcome(true, Change::UpToDate).exit_code(), 0);
        let mut twice = outcome(false, Change::UpToDate);
        twice.rules[0].duplicates.push("9".into());
        assert_eq!(twice.exit_code(), 1);
        assert_eq!(SentryError::EXIT_CODE, 2);
    }
}
