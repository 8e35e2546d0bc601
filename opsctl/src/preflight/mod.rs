//! `opsctl preflight`: the runbook's deployment checklist (section 4), item by item, against
//! the deployed stack and the services it relies on. Each item is ok, FAILED with the reason and
//! the command that fixes it, not checkable here (with why), or could not be checked (the check
//! itself could not run). One module per section of the checklist.

mod backups;
mod general;
mod secrets;
mod sentry;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use ops_shared::secret_versions::SecretsManagerVersions;
use serde::Serialize;

use crate::outcome::Verdict;
use crate::stack::Stack;

pub use crate::deployed::{FUNCTIONS, Functions, Item, State};

/// `opsctl preflight --help`.
pub const HELP: &str = "\
The runbook's deployment checklist (section 4), item by item, against the deployed stack and
the services it relies on. Each item is ok, FAILED with the reason and the command that fixes
it, not checkable here (with why), or COULD NOT CHECK (a service could not be reached or read).

Secrets Manager  each of the stack's secrets created, readable and well-formed, the rotated ones
                 rotating on the runbook's cadence (check-env's checks)
Sentry           SENTRY_DSN set in every function as deployed; the alert rules as `sentry apply`
                 makes them (its dry run finds no difference); a health target named ai-engine
Backups          Supabase's own backups on and within the RPO (as the backup function checks
                 them, with its settings as deployed); the bucket's lifecycle keeping backups
                 30 days; a backup in the bucket; the newest backup restore-tested and passed
General          the health checks of the app, the AI engine and the database passing (the state
                 health-checker keeps); the backup bucket's public access block, KMS default
                 encryption and TLS-only policy; the Sentry webhook's signing secret set.
                 CI/CD, load testing, the security audit and the documentation are not
                 checkable here.

Reads lambda:GetFunctionConfiguration of each <prefix>-<function>; secretsmanager:DescribeSecret
and GetSecretValue of the stack's secrets, <prefix>-sentry-api and the Supabase access token;
s3:GetLifecycleConfiguration, GetBucketPublicAccessBlock, GetEncryptionConfiguration,
GetBucketPolicy, ListBucket and GetObject on the backup bucket; dynamodb:GetItem on
<prefix>-ops-state; Sentry's alert rules (read only) and Supabase's backups list.

Exit 0 when every checkable item is ok, 1 when an item failed, 2 when a check could not run.";

pub const SECRETS: &str = "Secrets Manager";
pub const SENTRY: &str = "Sentry";
pub const BACKUPS: &str = "Backups";
pub const GENERAL: &str = "General";

/// The checklist, answered.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub prefix: String,
    pub items: Vec<Item>,
}

impl Report {
    /// Ok when every checkable item is; a problem when one failed; failed when a check could
    /// not run.
    pub fn verdict(&self) -> Verdict {
        if self.items.iter().any(|i| matches!(i.state, State::CouldNotCheck { .. })) {
            Verdict::Failed
        } else {
            Verdict::problem_if(self.items.iter().any(|i| matches!(i.state, State::Failed { .. })))
        }
    }

    /// The items under their sections; a failed one with its reason and fix.
    pub fn render(&self) -> String {
        let mut out = format!("Deployment checklist of stack {}\n", self.prefix);
        let mut section = "";
        for item in &self.items {
            if item.section != section {
                section = item.section;
                out.push_str(&format!("\n{section}\n"));
            }
            match &item.state {
                State::Ok => out.push_str(&format!("  ok                  {}\n", item.item)),
                State::Failed { reason, fix } => {
                    out.push_str(&format!("  FAILED              {}\n", item.item));
                    out.push_str(&format!("                      {reason}\n                      fix: {fix}\n"));
                }
                State::NotCheckable { why } => {
                    out.push_str(&format!("  not checkable here  {}\n                      {why}\n", item.item));
                }
                State::CouldNotCheck { reason } => {
                    out.push_str(&format!("  COULD NOT CHECK     {}\n                      {reason}\n", item.item));
                }
            }
        }
        let count = |f: fn(&State) -> bool| self.items.iter().filter(|i| f(&i.state)).count();
        out.push_str(&format!(
            "\n{} ok, {} failed, {} could not be checked, {} not checkable here\n",
            count(|s| matches!(s, State::Ok)),
            count(|s| matches!(s, State::Failed { .. })),
            count(|s| matches!(s, State::CouldNotCheck { .. })),
            count(|s| matches!(s, State::NotCheckable { .. })),
        ));
        out
    }
}

/// What the checks read: the stack, the AWS settings to reach it with, the secrets and one
/// HTTPS client (Sentry, Supabase).
pub struct Sources<'a> {
    pub sdk: &'a SdkConfig,
    pub store: &'a SecretsManagerVersions,
    pub http: &'a reqwest::Client,
    pub stack: &'a Stack,
    pub now: DateTime<Utc>,
}

/// Every item of the checklist, section by section.
pub async fn run(sources: &Sources<'_>) -> Report {
    let lambda = aws_sdk_lambda::Client::new(sources.sdk);
    let functions = Functions::read(&lambda, &sources.stack.names()).await;
    let secrets = secrets::items(sources).await;
    let webhook_secret = secrets::state_of(&secrets, &sources.stack.secret("sentry-webhook"));
    let mut items = secrets;
    items.extend(sentry::items(sources, &functions).await);
    items.extend(backups::items(sources, &functions).await);
    items.extend(general::items(sources, &functions, webhook_secret).await);
    Report { prefix: sources.stack.prefix.clone(), items }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn item(state: State) -> Item {
        Item::new(GENERAL, "x", state)
    }

    #[test]
    fn the_verdict_is_the_worst_checkable_item() {
        let report = |states: Vec<State>| Report { prefix: "p".into(), items: states.into_iter().map(item).collect() };
        let why = || State::NotCheckable { why: "people".into() };
        assert_eq!(report(vec![State::Ok, why()]).verdict(), Verdict::Ok);
        assert_eq!(report(vec![State::Ok, State::failed("r", "f"), why()]).verdict(), Verdict::Problem);
        let worst = report(vec![State::failed("r", "f"), State::could_not_check("down")]);
        assert_eq!(worst.verdict(), Verdict::Failed);
        let text = worst.render();
        assert!(text.contains("FAILED") && text.contains("fix: f") && text.contains("COULD NOT CHECK"), "{text}");
        let json = serde_json::to_value(&worst).expect("json");
        assert_eq!(json["items"][0]["state"], "failed");
        assert_eq!(json["items"][0]["fix"], "f");
    }

    #[test]
    fn preflight_takes_the_stack_options() {
        let cli = Cli::try_parse_from(["opsctl", "preflight", "--prefix", "staging", "--json"]).expect("parses");
        let Command::Preflight { stack } = cli.command else { panic!("preflight") };
        assert_eq!((stack.prefix.as_str(), stack.json), ("staging", true));
        let help = Cli::try_parse_from(["opsctl", "preflight", "--help"]).expect_err("help").to_string();
        assert!(help.contains("Exit 0 when") && help.contains("not checkable here"), "{help}");
    }
}
