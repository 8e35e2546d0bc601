//! The last step: what the restore did, for the operator and in one alert.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::backup::{RestoreCheck, RestoreReport};
use ops_shared::restore::Verifier;
use serde::Serialize;

use super::SOURCE;
use super::fetch::Fetched;
use super::journal::journal_key;
use super::preflight::Prepared;
use super::tested::Tested;
use super::verify::Checked;
use crate::outcome::Verdict;

/// What the steps before the report gave.
pub(super) struct Ran {
    pub fetched: Fetched,
    pub report: RestoreReport,
    pub checked: Checked,
    /// Whether the journal says how the restore ended.
    pub closed: bool,
    /// Download, checks of the bytes, restore, row counts, validation and health checks.
    pub rto: Duration,
    pub jobs: u32,
    pub tested: Tested,
}

/// The outcome of the restore, told in one alert.
pub(super) async fn report<S, A: AlertSink>(verifier: &Verifier<S, A>, target: &Prepared, ran: Ran) -> RestoreOutcome {
    let Ran { fetched, report, checked, closed, rto, jobs, tested } = ran;
    let manifest = &target.manifest;
    let mut outcome = RestoreOutcome {
        database: target.database.clone(),
        backup_key: manifest.key.clone(),
        backup_started_at: manifest.started_at,
        backup_age_hours: (Utc::now() - manifest.started_at).num_seconds().max(0) as f64 / 3600.0,
        safety_backup_key: fetched.safety_backup_key,
        resumed: fetched.resumed,
        tested,
        jobs,
        download_ms: report.download_ms,
        safety_backup_ms: fetched.safety_backup_ms,
        restore_ms: report.restore_ms,
        checks_ms: report.checks_ms,
        rto_ms: rto.as_millis() as u64,
        checks: report.checks,
        failures: report.failures,
        passed: checked == Checked::Passed && closed,
        journal_key: journal_key(&target.target_secret),
        alert: String::new(),
    };
    outcome.alert = crate::notice::publish(&verifier.alerts, &outcome_alert(&outcome)).await;
    outcome
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub database: String,
    pub backup_key: String,
    pub backup_started_at: DateTime<Utc>,
    pub backup_age_hours: f64,
    /// The backup of what the target held before: restoring it undoes this restore.
    pub safety_backup_key: String,
    /// The unfinished restore this run took over from, if any.
    pub resumed: Option<String>,
    /// Whether a restore test had passed the backup, or passed it just now, first.
    pub tested: Tested,
    pub jobs: u32,
    pub download_ms: u64,
    /// Zero when the safety backup of an earlier, unfinished run is kept.
    pub safety_backup_ms: u64,
    pub restore_ms: u64,
    pub checks_ms: u64,
    /// The restore test run first, download, checks of the bytes, restore, row counts,
    /// validation and health checks.
    pub rto_ms: u64,
    pub checks: Vec<RestoreCheck>,
    pub failures: Vec<String>,
    pub passed: bool,
    pub journal_key: String,
    /// Whether the alert reached the alert topic (else why not).
    pub alert: String,
}
impl RestoreOutcome {
    /// A problem found when a check failed.
    pub fn verdict(&self) -> Verdict {
        Verdict::problem_if(!self.passed)
    }

    /// 0 when every check passed, 1 when one failed.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(resumed) = &self.resumed {
            out.push_str(&format!("Resumed: {resumed}\n"));
        }
        out.push_str(&format!(
            "{} {} from {} (taken {}, {:.1} h ago)\n",
            if self.passed { "Restored" } else { "Restore FAILED:" },
            self.database,
            self.backup_key,
            self.backup_started_at.format("%Y-%m-%d %H:%M UTC"),
            self.backup_age_hours
        ));
        out.push_str(&format!("{}\n", self.tested.render()));
        let tested_first = match self.tested.took_ms() {
            0 => String::new(),
            ms => format!("restore test first {:.1} s, ", ms as f64 / 1000.0),
        };
        out.push_str(&format!(
            "RTO {:.1} s: {tested_first}download {:.1} s beside the safety backup {:.1} s, restore {:.1} s ({} jobs), \
             checks {:.1} s\n",
            self.rto_ms as f64 / 1000.0,
            self.download_ms as f64 / 1000.0,
            self.safety_backup_ms as f64 / 1000.0,
            self.restore_ms as f64 / 1000.0,
            self.jobs,
            self.checks_ms as f64 / 1000.0
        ));
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let detail = if check.detail.is_empty() { String::new() } else { format!(": {}", check.detail) };
            out.push_str(&format!("  {mark} {}{detail}\n", check.name));
        }
        out.push_str(&format!("Undo: opsctl dr restore --backup {} (the safety backup)\n", self.safety_backup_key));
        out.push_str(&format!("Alert: {}\n", self.alert));
        if !self.passed {
            out.push_str("The database may be partly restored: run the same command again to restore again.\n");
        }
        out
    }
}

/// The runbook's communication step: what was restored, from when, how long it took.
fn outcome_alert(outcome: &RestoreOutcome) -> Alert {
    let what = format!(
        "Backup {} (taken {}, {:.1} h before the restore) was restored into {} in {:.1} min",
        outcome.backup_key,
        outcome.backup_started_at.format("%Y-%m-%d %H:%M UTC"),
        outcome.backup_age_hours,
        outcome.database,
        outcome.rto_ms as f64 / 60_000.0
    );
    let dedup = format!("{SOURCE}:dr:{}", outcome.database);
    let alert = if outcome.passed {
        Alert::new(SOURCE, Severity::Info, dedup, format!("Database restored: {}", outcome.database)).summary(format!(
            "{what}. Row counts, validation queries and health checks passed.{}",
            outcome.tested.sentence()
        ))
    } else {
        Alert::new(SOURCE, Severity::Critical, dedup, format!("Database restore failed: {}", outcome.database)).summary(
            format!(
                "{what}, and failed: {}. It may be partly restored.{}",
                outcome.failures.join("; "),
                outcome.tested.sentence()
            ),
        )
    };
    alert
        .detail("backup_key", outcome.backup_key.clone())
        .detail("safety_backup_key", outcome.safety_backup_key.clone())
        .detail("rto_ms", outcome.rto_ms)
}
