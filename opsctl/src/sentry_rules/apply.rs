//! `apply`: the organization's rules made to match the runbook (or, with `--dry-run`, only
//! how they differ), and the report of what was found and done.

use super::client::SentryClient;
use super::model::MetricAlertRule;
use super::plan::{desired, differences};
use super::{RuleSpec, SentryError, runbook_rules};
use crate::outcome::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    UpToDate,
    Created,
    PutBack,
    WouldCreate,
    WouldPutBack,
}

#[derive(Debug, Clone)]
pub struct RuleReport {
    pub name: String,
    /// Sentry's id of the rule, once there is one.
    pub id: Option<String>,
    pub change: Change,
    /// What differed from the runbook (before a put-back).
    pub differences: Vec<String>,
    /// Ids of further rules with the same name, which are left alone.
    pub duplicates: Vec<String>,
    /// What still differs in the rule Sentry answered a write with: the write did not take.
    pub after_write: Vec<String>,
}

impl RuleReport {
    fn problem(&self) -> bool {
        !self.duplicates.is_empty() || !self.after_write.is_empty()
    }
}

/// What `apply` found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dry_run: bool,
    pub rules: Vec<RuleReport>,
}

impl Outcome {
    /// Something differs from the runbook (before any put-back).
    pub fn drift(&self) -> bool {
        self.rules.iter().any(|r| r.change != Change::UpToDate)
    }

    /// As the runbook says (or made so), or a problem found: drift left in place by
    /// `--dry-run`, a rule whose name is taken twice, or a write that did not take.
    pub fn verdict(&self) -> Verdict {
        let problem = self.rules.iter().any(RuleReport::problem);
        Verdict::problem_if(problem || (self.dry_run && self.drift()))
    }

    /// 0: as the runbook says (or made so); 1: a problem found.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            let name = match &rule.id {
                Some(id) => format!("{} (id {id})", rule.name),
                None => rule.name.clone(),
            };
            let line = match rule.change {
                Change::UpToDate => "up to date",
                Change::Created => "was missing: created",
                Change::WouldCreate => "is missing: would be created",
                Change::PutBack => "differs from the runbook: put back",
                Change::WouldPutBack => "differs from the runbook: would be put back",
            };
            out.push_str(&format!("{name}: {line}\n"));
            for difference in &rule.differences {
                out.push_str(&format!("  {difference}\n"));
            }
            if !rule.duplicates.is_empty() {
                out.push_str(&format!(
                    "PROBLEM {}: more rules carry this name (ids {}); they are left alone: delete them in Sentry\n",
                    rule.name,
                    rule.duplicates.join(", ")
                ));
            }
            if !rule.after_write.is_empty() {
                out.push_str(&format!(
                    "PROBLEM {}: Sentry answered the write with a rule that still differs: {}\n",
                    rule.name,
                    rule.after_write.join("; ")
                ));
            }
        }
        if !self.drift() {
            out.push_str("up to date\n");
        } else if self.dry_run {
            out.push_str("dry run: nothing was written\n");
        }
        out
    }
}

/// Makes the organization's rules match the runbook (or, with `dry_run`, only says how they
/// differ). Reads the organization's rule list once; writes only rules that differ.
pub async fn apply(client: &SentryClient, dry_run: bool) -> Result<Outcome, SentryError> {
    let rules = client.list_rules().await?;
    let mut reports = Vec::new();
    for spec in runbook_rules() {
        reports.push(apply_rule(client, &spec, &rules, dry_run).await?);
    }
    Ok(Outcome { dry_run, rules: reports })
}

/// One runbook rule: found by name among `rules`, then created, put back or left alone.
async fn apply_rule(
    client: &SentryClient,
    spec: &RuleSpec,
    rules: &[MetricAlertRule],
    dry_run: bool,
) -> Result<RuleReport, SentryError> {
    let config = client.config();
    let mut named: Vec<&MetricAlertRule> = rules.iter().filter(|r| r.name.as_deref() == Some(spec.name)).collect();
    // The oldest rule of the name is the one kept; Sentry's ids grow.
    named.sort_by_key(|r| r.id.as_deref().and_then(|id| id.parse::<u64>().ok()).unwrap_or(u64::MAX));
    let mut report = RuleReport {
        name: spec.name.to_owned(),
        id: None,
        change: Change::UpToDate,
        differences: Vec::new(),
        duplicates: named.iter().skip(1).filter_map(|r| r.id.clone()).collect(),
        after_write: Vec::new(),
    };
    let written = match named.first() {
        None if dry_run => {
            report.change = Change::WouldCreate;
            None
        }
        None => {
            report.change = Change::Created;
            Some(client.create_rule(spec.name, &desired(spec, config, None)).await?)
        }
        Some(rule) => {
            report.id = rule.id.clone();
            report.differences = differences(spec, config, rule);
            if report.differences.is_empty() {
                None
            } else if dry_run {
                report.change = Change::WouldPutBack;
                None
            } else {
                report.change = Change::PutBack;
                let id = report.id.clone().unwrap_or_default();
                Some(client.update_rule(&id, spec.name, &desired(spec, config, Some(rule))).await?)
            }
        }
    };
    if let Some(rule) = written {
        report.id = rule.id.clone().or(report.id);
        report.after_write = differences(spec, config, &rule);
    }
    Ok(report)
}
