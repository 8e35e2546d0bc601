//! `opsctl check-env` (the runbook's `npm run check:env`): every secret of the stack exists, is
//! readable, non-empty and well-formed, the rotated ones rotate on the right cadence and are not
//! overdue, the environment the app needs is set, and (in `stack`) the stack as deployed.

pub mod stack;
pub mod subscriptions;

use ops_shared::Env;
use ops_shared::config::SentryConfig;
use ops_shared::keys::google::{self, Google};
use ops_shared::keys::{KeyError, KeyProvider, KeySecret, Upstream};
use ops_shared::postgres::DbCredentials;
use ops_shared::rotation::{KeyService, STRATEGY_TAG, Strategy, runbook_rotations};
use ops_shared::secret_versions::{SecretDescription, SecretVersions};
use ops_shared::secrets::{AWSCURRENT, SecretValue};

/// What a secret's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// AWS's RDS JSON (`engine, host, port, username, password, dbname`).
    DatabaseJson,
    /// API-key JSON as the rotation strategy reads it.
    ApiKeyJson(Strategy),
    /// A JSON object (a key file, API settings).
    JsonObject,
    PlainString,
}

#[derive(Debug, Clone)]
pub struct Requirement {
    pub secret: String,
    pub shape: Shape,
    /// Required `rotation-strategy` tag and longest rotation interval, if it must rotate.
    pub rotation: Option<(Strategy, u32)>,
}

/// The runbook's secrets under `prefix` (section 1.2 and 1.6, plus what the functions read).
pub fn runbook_requirements(prefix: &str) -> Vec<Requirement> {
    let rotated = runbook_rotations(prefix).into_iter().map(|(secret, strategy, days)| Requirement {
        secret,
        shape: Shape::ApiKeyJson(strategy),
        rotation: Some((strategy, days)),
    });
    let req = |name: &str, shape| Requirement { secret: format!("{prefix}-{name}"), shape, rotation: None };
    rotated.chain([req("database", Shape::DatabaseJson), req("sentry-webhook", Shape::PlainString)]).collect()
}

/// Every secret template.yaml creates or adopts under `prefix`: the runbook's, and those the
/// functions and `sentry apply` read.
pub fn stack_requirements(prefix: &str) -> Vec<Requirement> {
    let req = |name: &str, shape| Requirement { secret: format!("{prefix}-{name}"), shape, rotation: None };
    let mut all = runbook_requirements(prefix);
    all.extend([
        req("ai-engine-admin-token", Shape::PlainString),
        req("supabase-access-token", Shape::PlainString),
        req("google-service-account", Shape::JsonObject),
        req("health-database", Shape::DatabaseJson),
        req("staging-database", Shape::DatabaseJson),
        req("sentry-api", Shape::JsonObject),
        req("sentry-read", Shape::JsonObject),
    ]);
    all
}

/// The one command that fixes `problems` of the secret of `requirement` in the stack `prefix`.
pub fn fix_for(requirement: &Requirement, problems: &[String], prefix: &str) -> String {
    let name = &requirement.secret;
    if problems.iter().any(|p| p.contains("cannot be described")) {
        format!(
            "sam deploy --parameter-overrides NamePrefix={prefix} (the stack creates {name}; or adopt the runbook's, \
             docs/deploying.md)"
        )
    } else if problems.iter().all(|p| p.contains("rotation is not enabled")) {
        format!("sam deploy --parameter-overrides NamePrefix={prefix} EnableRotation=true")
    } else if problems.iter().all(|p| p.contains("overdue") || p.contains("rotate-secret")) {
        format!("aws secretsmanager rotate-secret --secret-id {name}")
    } else if problems.iter().all(|p| p.contains("rotates every") || p.contains("rotation schedule")) {
        format!("sam deploy --parameter-overrides NamePrefix={prefix} EnableRotation=true (template.yaml's schedule)")
    } else if problems.iter().all(|p| p.contains("rotation-strategy")) {
        format!("aws secretsmanager tag-resource --secret-id {name} --tags Key=rotation-strategy,Value=<strategy>")
    } else {
        format!(
            "aws secretsmanager put-secret-value --secret-id {name} --secret-string '<value>' \
             (its format: docs/configuration.md, \"Secrets\"), then opsctl check-env --prefix {prefix}"
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub secret: String,
    pub rotation: String,
    pub shape: &'static str,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub problems: Vec<String>,
    /// The command that fixes each problem `check` found, in the same order.
    pub fixes: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// A line per problem, or a table when all is well.
    pub fn render(&self) -> String {
        if !self.is_ok() {
            let fixes = self.fixes.iter().map(Some).chain(std::iter::repeat(None));
            return self
                .problems
                .iter()
                .zip(fixes)
                .map(|(p, fix)| match fix {
                    Some(fix) => format!("PROBLEM {p}\n        fix: {fix}\n"),
                    None => format!("PROBLEM {p}\n"),
                })
                .collect();
        }
        let width = self.rows.iter().map(|r| r.secret.len()).max().unwrap_or(6).max(6);
        let mut out = format!("{:<width$}  {:<14}  {}\n", "secret", "value", "rotation");
        for row in &self.rows {
            out.push_str(&format!("{:<width$}  {:<14}  {}\n", row.secret, row.shape, row.rotation));
        }
        out.push_str("environment: AWS_REGION, SENTRY_DSN, SENTRY_ENVIRONMENT set and valid\n");
        out
    }
}

/// Checks `requirements` in `store`; API keys whose service can say which key a key string is
/// (Google) are asked through `http`.
pub async fn check(
    store: &impl SecretVersions,
    http: &reqwest::Client,
    env: &Env,
    requirements: &[Requirement],
) -> Report {
    let mut report = Report::default();
    check_environment(env, &mut report.problems);
    let fix = "export AWS_REGION, SENTRY_DSN and SENTRY_ENVIRONMENT (docs/operations.md, \"check-env\")";
    report.fixes.resize(report.problems.len(), fix.to_owned());
    for requirement in requirements {
        let before = report.problems.len();
        check_secret(store, http, requirement, &mut report).await;
        let prefix = runbook_prefix(&requirement.secret).unwrap_or(&requirement.secret);
        let fixes: Vec<String> =
            report.problems[before..].iter().map(|p| fix_for(requirement, std::slice::from_ref(p), prefix)).collect();
        report.fixes.extend(fixes);
    }
    report
}

/// The stack prefix of a secret named `<prefix>-<one of the stack's names>`.
fn runbook_prefix(secret: &str) -> Option<&str> {
    stack_requirements("").iter().find_map(|r| secret.strip_suffix(r.secret.as_str()))
}

fn check_environment(env: &Env, problems: &mut Vec<String>) {
    if env.get("AWS_REGION").is_none() {
        problems.push("AWS_REGION is not set".to_owned());
    }
    match SentryConfig::from_env(env) {
        Err(err) => problems.push(err.to_string()),
        Ok(config) if config.dsn.is_none() => problems.push("SENTRY_DSN is not set: errors would go unseen".to_owned()),
        Ok(_) => {}
    }
    if env.get("SENTRY_ENVIRONMENT").is_none() {
        problems.push("SENTRY_ENVIRONMENT is not set".to_owned());
    }
}

/// Checks one secret of `requirements` into `report` (also `opsctl preflight`'s secrets).
pub async fn check_secret(
    store: &impl SecretVersions,
    http: &reqwest::Client,
    requirement: &Requirement,
    report: &mut Report,
) {
    let name = &requirement.secret;
    let description = match store.describe(name).await {
        Ok(description) => description,
        Err(err) => {
            report.problems.push(format!("{name}: cannot be described ({})", err.detail));
            return;
        }
    };
    let before = report.problems.len();
    let rotation = match requirement.rotation {
        None => "not required".to_owned(),
        Some((strategy, days)) => check_rotation(name, &description, strategy, days, &mut report.problems),
    };
    let shape = match store.value_at(name, AWSCURRENT).await {
        Err(err) => {
            report.problems.push(format!("{name}: not readable: {err}"));
            "unreadable"
        }
        Ok(value) if value.value.trim().is_empty() => {
            report.problems.push(format!("{name}: the value is empty"));
            "empty"
        }
        Ok(value) => match shape_problem(requirement.shape, &value.value) {
            Some(problem) => {
                report.problems.push(format!("{name}: {problem}"));
                "malformed"
            }
            None => match requirement.shape {
                Shape::DatabaseJson => "database JSON",
                Shape::ApiKeyJson(Strategy::GoogleApiKey) => {
                    report.problems.extend(gemini_key_problems(store, http, name, &value).await);
                    "API key JSON"
                }
                Shape::ApiKeyJson(_) => "API key JSON",
                Shape::JsonObject => "JSON",
                Shape::PlainString => "string",
            },
        },
    };
    if report.problems.len() == before {
        report.rows.push(Row { secret: name.clone(), rotation, shape });
    }
}

/// A Gemini key must be bound to a service account (Gemini refuses standard keys), and
/// `api_key` and `key_id` must be the same key, as Google's `keys.lookupKey` tells.
async fn gemini_key_problems(
    store: &impl SecretVersions,
    http: &reqwest::Client,
    name: &str,
    value: &SecretValue,
) -> Vec<String> {
    let Ok(secret) = KeySecret::parse(KeyService::Google, name, AWSCURRENT, value) else { return Vec::new() };
    let rotate_now = format!(
        "Gemini refuses standard keys: rotate the secret now (aws secretsmanager rotate-secret --secret-id {name}) \
         to replace it with a key bound to a service account"
    );
    if google::is_standard_key(&secret.api_key) {
        return vec![format!("{name}: api_key is a standard Google API key (AIza...). {rotate_now}")];
    }
    let upstream = Upstream { http, secret: name, operation_timeout: std::time::Duration::from_secs(30) };
    let Some(service) = Google::new(upstream, &secret) else { return Vec::new() };
    let identity = async {
        let arn = secret.field(service.admin_field()).unwrap_or_default();
        let stored = store.value_at(arn, AWSCURRENT).await.map_err(|e| e.to_string())?;
        let admin = service.admin(&stored.value, arn).await.map_err(|e| e.to_string())?;
        service.identify(&admin, &secret.api_key).await.map_err(|e| e.to_string())
    };
    let identity = match identity.await {
        Ok(identity) => identity,
        Err(err) => return vec![format!("{name}: cannot ask Google which key api_key is: {err}")],
    };
    let mut problems = Vec::new();
    if identity.name != secret.key_id {
        problems.push(format!(
            "{name}: api_key and key_id are different keys (api_key is {}, key_id says {}): \
             store the pair the key came with",
            identity.name, secret.key_id
        ));
    }
    if identity.deleted {
        problems.push(format!("{name}: api_key belongs to a deleted key. {rotate_now}"));
    } else if identity.service_account.is_none() {
        problems.push(format!("{name}: api_key is a standard key, not bound to a service account. {rotate_now}"));
    }
    problems
}

fn check_rotation(
    name: &str,
    d: &SecretDescription,
    strategy: Strategy,
    max_days: u32,
    problems: &mut Vec<String>,
) -> String {
    if !d.rotation_enabled {
        problems.push(format!(
            "{name}: rotation is not enabled (runbook: every {max_days} days); once every secret holds its real \
             value and this is the only kind of problem left, deploy with EnableRotation=true"
        ));
        return "off".to_owned();
    }
    let strategy = strategy.as_str();
    match d.tags.get(STRATEGY_TAG) {
        Some(tag) if tag == strategy => {}
        Some(tag) => problems.push(format!("{name}: rotation-strategy is {tag:?}, expected {strategy:?}")),
        None => problems.push(format!("{name}: no rotation-strategy tag (expected {strategy:?})")),
    }
    if let Some(problem) = overdue(name, d, max_days, chrono::Utc::now()) {
        problems.push(problem);
    }
    match cadence_days(d) {
        Some(days) if days <= max_days => format!("every {days} days ({strategy})"),
        Some(days) => {
            problems.push(format!("{name}: rotates every {days} days, the runbook asks for at most {max_days}"));
            format!("every {days} days")
        }
        None => {
            problems.push(format!("{name}: rotation schedule {:?} is not one check-env can read", d.rotation_schedule));
            "unknown".to_owned()
        }
    }
}

/// Overdue: the next rotation Secrets Manager planned is past, or the last one is older than
/// `max_days`.
pub fn overdue(name: &str, d: &SecretDescription, max_days: u32, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let rotate = format!("rotate it now: aws secretsmanager rotate-secret --secret-id {name}");
    if let Some(next) = d.next_rotation.filter(|next| *next < now) {
        return Some(format!("{name}: rotation overdue since {next} ({rotate})"));
    }
    match d.last_rotated {
        Some(last) if now - last > chrono::Duration::days(i64::from(max_days)) => {
            Some(format!("{name}: rotation overdue: last rotated {last}, more than {max_days} days ago ({rotate})"))
        }
        _ => None,
    }
}

/// The longest time between two rotations, in days: `AutomaticallyAfterDays`, `rate(N days)`,
/// or a monthly cron `cron(m h d */k ? *)`, whose gaps are counted on the calendar (every third
/// month from the 1st is 89 to 92 days apart).
pub fn cadence_days(d: &SecretDescription) -> Option<u32> {
    if let Some(expression) = &d.rotation_schedule {
        if let Some(days) = expression.strip_prefix("rate(").and_then(|r| r.strip_suffix(" days)")) {
            return days.trim().parse().ok();
        }
        let fields: Vec<&str> = expression.strip_prefix("cron(")?.strip_suffix(')')?.split_whitespace().collect();
        let day: u32 = fields.get(2)?.parse().ok()?;
        let months = fields.get(3)?.strip_prefix("*/")?.parse::<u32>().ok().filter(|m| (1..=12).contains(m))?;
        return longest_monthly_gap(day, months);
    }
    d.rotation_days.and_then(|days| u32::try_from(days).ok())
}

/// The longest gap between runs on day `day` of every `months`-th month, over four years
/// (leap years included). Months too short for the day are skipped, as cron skips them.
fn longest_monthly_gap(day: u32, months: u32) -> Option<u32> {
    let runs: Vec<chrono::NaiveDate> = (0..48)
        .step_by(months as usize)
        .filter_map(|offset| chrono::NaiveDate::from_ymd_opt(2024 + offset / 12, 1 + offset as u32 % 12, day))
        .collect();
    runs.windows(2).map(|pair| (pair[1] - pair[0]).num_days()).max().and_then(|days| u32::try_from(days).ok())
}

fn shape_problem(shape: Shape, value: &str) -> Option<String> {
    match shape {
        Shape::PlainString => None,
        Shape::JsonObject => match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(_)) => None,
            Ok(_) => Some("not a JSON object".to_owned()),
            Err(err) => Some(format!("not JSON: {}", err.classify_message())),
        },
        Shape::DatabaseJson => match serde_json::from_str::<DbCredentials>(value) {
            Ok(creds) if creds.password.is_empty() => Some("the database password is empty".to_owned()),
            Ok(creds) if creds.sslmode.is_none() && creds.sslrootcert.is_none() => Some(
                "names neither `sslmode` nor `sslrootcert`: the functions verify the database server, by default \
                 against the system's CAs, which Supabase's (and RDS's) certificates do not chain to. Add \
                 `sslrootcert` with the PEM of the CA that signs the server's certificate (Supabase: Database \
                 settings, SSL configuration, download the certificate), or name `sslmode` (`verify-full` when \
                 a public CA signs it)"
                    .to_owned(),
            ),
            Ok(_) => None,
            Err(err) => Some(format!(
                "not database JSON (engine, host, port, username, password, dbname): {}",
                err.classify_message()
            )),
        },
        Shape::ApiKeyJson(strategy) => {
            let value = SecretValue { version_id: None, value: value.to_owned(), arn: None };
            let Some(service) = strategy.key_service() else {
                return Some(format!("{} is not an API-key strategy", strategy.as_str()));
            };
            match KeySecret::parse(service, "", AWSCURRENT, &value) {
                Ok(_) => None,
                Err(KeyError::Malformed { problem, .. }) => Some(problem),
                Err(other) => Some(other.to_string()),
            }
        }
    }
}

trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    // The position and category only: serde's own message may quote the secret.
    fn classify_message(&self) -> String {
        format!("{:?} error at line {} column {}", self.classify(), self.line(), self.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(expression: &str) -> SecretDescription {
        SecretDescription { rotation_schedule: Some(expression.to_owned()), ..SecretDescription::default() }
    }

    #[test]
    fn a_rotation_is_overdue_past_its_planned_date_or_its_cadence() {
        let now = chrono::Utc::now();
        let rotated = |last_days: i64, next_days: i64| SecretDescription {
            last_rotated: Some(now - chrono::Duration::days(last_days)),
            next_rotation: Some(now + chrono::Duration::days(next_days)),
            ..SecretDescription::default()
        };
        assert_eq!(overdue("s", &rotated(10, 80), 90, now), None);
        let late = overdue("s", &rotated(10, -1), 90, now).unwrap_or_default();
        assert!(late.contains("overdue since") && late.contains("rotate-secret --secret-id s"), "{late}");
        assert!(overdue("s", &rotated(100, 5), 90, now).is_some_and(|p| p.contains("more than 90 days")));
        let requirement = Requirement { secret: "p-x".into(), shape: Shape::PlainString, rotation: None };
        assert!(fix_for(&requirement, &[late], "p").starts_with("aws secretsmanager rotate-secret --secret-id p-x"));
    }

    #[test]
    fn cadences_are_the_longest_real_gap() {
        assert_eq!(cadence_days(&scheduled("rate(90 days)")), Some(90));
        assert_eq!(cadence_days(&scheduled("cron(0 3 1 */3 ? *)")), Some(92), "Jul 1 to Oct 1");
        assert_eq!(cadence_days(&scheduled("cron(0 3 1 */6 ? *)")), Some(184), "Jul 1 to Jan 1");
        assert_eq!(cadence_days(&scheduled("cron(0 3 31 */1 ? *)")), Some(61), "months without a 31st are skipped");
        assert_eq!(cadence_days(&scheduled("cron(0 3 ? * MON *)")), None, "not one it can read");
    }
}
