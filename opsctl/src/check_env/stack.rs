//! check-env's checks of the stack as deployed: each function's environment naming secrets
//! that exist, `SENTRY_DSN` set, the runbook's health targets, Supabase's backup check
//! configured, the Sentry rules as `sentry apply` makes them, and the ops and pager topics'
//! subscriptions confirmed. The configuration checks are the ones `opsctl preflight` makes.

use aws_config::SdkConfig;
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};

use ops_shared::Env;
use serde::Serialize;

use super::{Report, check, stack_requirements, subscriptions};
use crate::deployed::{self, Deployed, Functions, Item, RUNBOOK_TARGETS, State};
use crate::outcome::Verdict;
use crate::stack::Stack;

pub const DEPLOYED: &str = "Deployed";

/// What the checks read.
pub struct Sources<'a> {
    pub sdk: &'a SdkConfig,
    pub store: &'a SecretsManagerVersions,
    pub http: &'a reqwest::Client,
    pub stack: &'a Stack,
}

/// check-env's answer: the secrets and the shell, and the stack as deployed.
#[derive(Debug, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub secrets: Report,
    pub deployed: Vec<Item>,
}

impl Checked {
    /// Ok when nothing is wrong; a problem when something is; failed when a check could not run.
    pub fn verdict(&self) -> Verdict {
        let any = |f: fn(&State) -> bool| self.deployed.iter().any(|i| f(&i.state));
        if any(|s| matches!(s, State::CouldNotCheck { .. })) {
            return Verdict::Failed;
        }
        Verdict::problem_if(!self.secrets.is_ok() || any(|s| matches!(s, State::Failed { .. })))
    }

    pub fn render(&self) -> String {
        format!("{}\n{}", self.secrets.render(), render(&self.deployed))
    }
}

/// Every secret of the stack and the shell's `env`, then the stack as deployed.
pub async fn run(sources: &Sources<'_>, env: &Env) -> Checked {
    let secrets = check(sources.store, sources.http, env, &stack_requirements(&sources.stack.prefix)).await;
    Checked { secrets, deployed: items(sources).await }
}

/// Every check of the stack as deployed, in order.
pub async fn items(sources: &Sources<'_>) -> Vec<Item> {
    let lambda = aws_sdk_lambda::Client::new(sources.sdk);
    let functions = Functions::read(&lambda, &sources.stack.names()).await;
    let mut items = Vec::new();
    for (function, deployed) in functions.all() {
        let item = format!("{}-{function}'s environment names secrets that exist", functions.prefix);
        items.push(Item::new(DEPLOYED, item, named_secrets(sources, &functions, function, deployed).await));
    }
    items.push(Item::new(DEPLOYED, "SENTRY_DSN set in every function", deployed::dsn(&functions)));
    for (label, name) in RUNBOOK_TARGETS {
        let state = functions.runbook_target(label, name).map_or_else(|state| state, |_| State::Ok);
        items.push(Item::new(DEPLOYED, format!("health-checker probes the {label}"), state));
    }
    let supabase = functions.supabase_settings().map_or_else(|state| state, |_| State::Ok);
    items.push(Item::new(DEPLOYED, "scheduled-backup checks Supabase's own backups", supabase));
    let prefix = &sources.stack.prefix;
    let rules = deployed::sentry_rules(sources.store, sources.http, prefix).await;
    items.push(Item::new(DEPLOYED, "Sentry alert rules as `opsctl sentry apply` makes them", rules));
    let numbers = deployed::sentry_numbers(sources.store, sources.http, prefix).await;
    items.push(Item::new(DEPLOYED, "Sentry's numbers readable for the status and digest", numbers));
    items.extend(topics(sources).await);
    items
}

/// The variables template.yaml names a function's secrets in.
pub const SECRET_VARIABLES: [&str; 5] = [
    "DATABASE_SECRET_ARN",
    "STAGING_DATABASE_SECRET_ARN",
    "SUPABASE_TOKEN_SECRET_ARN",
    "SENTRY_WEBHOOK_SECRET_ARN",
    "SENTRY_READ_SECRET_ARN",
];

/// Every secret variable of the function's environment names a secret Secrets Manager has.
async fn named_secrets(sources: &Sources<'_>, functions: &Functions, function: &str, deployed: &Deployed) -> State {
    let env = match deployed {
        Deployed::Found(env) => env,
        Deployed::Unreadable(reason) => return State::could_not_check(reason.clone()),
        Deployed::Missing => return functions.env(function).map_or_else(|state| state, |_| State::Ok),
    };
    let mut missing = Vec::new();
    let named = SECRET_VARIABLES.iter().filter_map(|variable| env.get(variable).map(|secret| (variable, secret)));
    for (variable, secret) in named {
        if let Err(err) = sources.store.describe(secret).await {
            missing.push(format!("{variable} names {secret}, which cannot be described ({})", err.detail));
        }
    }
    if missing.is_empty() {
        return State::Ok;
    }
    let prefix = &functions.prefix;
    State::failed(
        missing.join("; "),
        format!(
            "sam deploy --parameter-overrides NamePrefix={prefix} (the stack creates its secrets; an adopted one: \
             Existing*SecretArn=<its full ARN>)"
        ),
    )
}

/// The ops topic's subscriptions (e-mail, and the pager's) and the pager topic's, confirmed.
async fn topics(sources: &Sources<'_>) -> Vec<Item> {
    let sns = aws_sdk_sns::Client::new(sources.sdk);
    let prefix = &sources.stack.prefix;
    let mut items = Vec::new();
    let wanted = [
        (sources.stack.ops_topic_arn(), "alerts", "ops e-mail (and pager) subscriptions confirmed"),
        (sources.stack.pager_topic_arn(), "pages", "pager subscription confirmed"),
    ];
    for (topic, what, item) in wanted {
        let state = match subscriptions::list(&sns, &topic).await {
            Ok(found) => subscriptions::judge(&topic, what, &found, prefix),
            Err(detail) if detail.contains("NotFound") => State::failed(
                format!("no topic {topic}: {what} go nowhere"),
                format!(
                    "sam deploy --parameter-overrides NamePrefix={prefix} OpsEmail=<address> \
                     PagerEndpoint=<the pager's address or URL>"
                ),
            ),
            Err(detail) => State::could_not_check(format!("sns:ListSubscriptionsByTopic of {topic}: {detail}")),
        };
        items.push(Item::new(DEPLOYED, item, state));
    }
    items
}

/// A line per item; a failed one with its reason and fix.
pub fn render(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        match &item.state {
            State::Ok => out.push_str(&format!("ok      {}\n", item.item)),
            State::Failed { reason, fix } => {
                out.push_str(&format!("PROBLEM {}: {reason}\n        fix: {fix}\n", item.item));
            }
            State::NotCheckable { why } => out.push_str(&format!("        {}: not checkable here, {why}\n", item.item)),
            State::CouldNotCheck { reason } => out.push_str(&format!("COULD NOT CHECK {}: {reason}\n", item.item)),
        }
    }
    out
}
