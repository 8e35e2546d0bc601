//! The last step: what the restore did, for the operator and in one notice, the runbook's
//! communication step: what was restored (the backup, when it finished, the database), the data
//! lost, how long the restore took, and what comes next; an alert to ops and plain words to the
//! stakeholders.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, Severity};
use ops_shared::backup::{RestoreCheck, RestoreReport};
use ops_shared::objects::ObjectStore;
use ops_shared::restore::Verifier;
use serde::Serialize;

use super::SOURCE;
use super::fetch::Fetched;
use super::journal::journal_key;
use super::loss;
use super::preflight::Prepared;
use super::tested::Tested;
use super::verify::Checked;
use crate::dr::{DataLoss, minute, span};
use crate::notice::{Audience, Notice, Told};
use crate::outcome::Verdict;

/// What the steps before the report gave.
pub(super) struct Ran {
    pub fetched: Fetched,
    pub report: RestoreReport,
    pub checked: Checked,
    /// Whether the journal says how the restore ended.
    pub closed: bool,
    pub started_at: DateTime<Utc>,
    /// Download, checks of the bytes, restore, row counts, validation and health checks.
    pub rto: Duration,
    pub jobs: u32,
    pub tested: Tested,
}

/// The outcome of the restore, with the data it lost, told in one notice.
pub(super) async fn report<S: ObjectStore, A>(
    verifier: &Verifier<S, A>,
    audience: &impl Audience,
    target: &Prepared,
    ran: Ran,
) -> RestoreOutcome {
    let Ran { fetched, report, checked, closed, started_at, rto, jobs, tested } = ran;
    let manifest = &target.manifest;
    let passed = checked == Checked::Passed && closed;
    let stated =
        loss::state(&verifier.store, &target.target_secret, manifest, &fetched.safety_backup_key, passed).await;
    let mut outcome = RestoreOutcome {
        database: target.database.clone(),
        backup_key: manifest.key.clone(),
        backup_started_at: manifest.started_at,
        backup_finished_at: manifest.finished_at,
        backup_age_hours: (Utc::now() - manifest.started_at).num_seconds().max(0) as f64 / 3600.0,
        safety_backup_key: fetched.safety_backup_key,
        resumed: fetched.resumed,
        tested,
        jobs,
        started_at,
        finished_at: Utc::now(),
        download_ms: report.download_ms,
        safety_backup_ms: fetched.safety_backup_ms,
        restore_ms: report.restore_ms,
        checks_ms: report.checks_ms,
        rto_ms: rto.as_millis() as u64,
        checks: report.checks,
        failures: report.failures,
        passed,
        journal_key: journal_key(&target.target_secret),
        loss: stated.loss,
        loss_source: stated.source,
        next_step: stated.next_step,
        told: Told::default(),
    };
    outcome.told = audience.tell(&notice(&outcome)).await;
    outcome
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub database: String,
    pub backup_key: String,
    pub backup_started_at: DateTime<Utc>,
    pub backup_finished_at: DateTime<Utc>,
    pub backup_age_hours: f64,
    /// The backup of what the target held before: restoring it undoes this restore.
    pub safety_backup_key: String,
    /// The unfinished restore this run took over from, if any.
    pub resumed: Option<String>,
    /// Whether a restore test had passed the backup, or passed it just now, first.
    pub tested: Tested,
    pub jobs: u32,
    /// When this run began (the restore test run first included), and when its checks ended.
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
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
    /// What the restore lost: the window from the backup's snapshot to the freeze, and the rows per
    /// table; none when it could not be worked out (`loss_source` says why).
    pub loss: Option<DataLoss>,
    /// Where the loss's figures come from (`dr assess`'s record, or the safety backup's counts).
    pub loss_source: String,
    /// What ops do next: allow writes again (the freeze's thaw command), or undo.
    pub next_step: String,
    /// Whether the notice reached ops (`alert`) and the stakeholders (`stakeholders`).
    #[serde(flatten)]
    pub told: Told,
}
impl RestoreOutcome {
    /// A problem found when a check failed; else, a notice that did not go (exit 2).
    pub fn verdict(&self) -> Verdict {
        self.told.verdict(Verdict::problem_if(!self.passed))
    }

    /// 0 when every check passed and the notice went, 1 when a check failed, 2 when the
    /// notice did not go.
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
        out.push_str(&self.render_loss());
        out.push_str(&format!("Undo: opsctl dr restore --backup {} (the safety backup)\n", self.safety_backup_key));
        out.push_str(&format!("Next: {}\n", self.next_step));
        out.push_str(&self.told.render(""));
        out
    }

    /// The data-loss window and the tables that differ, with where the figures come from.
    fn render_loss(&self) -> String {
        let Some(loss) = &self.loss else {
            return format!("Data lost: {}\n", self.loss_source);
        };
        let mut out = format!("Data lost: what was written from {} (figures: {})\n", loss.window(), self.loss_source);
        for line in loss.table_lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out
    }
}

/// One notice: ops' alert (info; critical if a check failed) and the stakeholders' words.
pub(super) fn notice(outcome: &RestoreOutcome) -> Notice {
    let database = &outcome.database;
    let what = format!(
        "Backup {} (finished {}, {:.1} h before the restore) was restored into {database} in {:.1} min",
        outcome.backup_key,
        minute(outcome.backup_finished_at),
        outcome.backup_age_hours,
        outcome.rto_ms as f64 / 60_000.0
    );
    let loss = match &outcome.loss {
        Some(loss) => {
            format!(" Data lost: {}; rows: {} ({}).", loss.window(), loss.table_lines().join("; "), outcome.loss_source)
        }
        None => format!(" Data lost: {}.", outcome.loss_source),
    };
    let dedup = format!("{SOURCE}:dr:{database}");
    let (alert, subject) = if outcome.passed {
        let summary = format!(
            "{what}. Row counts, validation queries and health checks passed.{}{loss} Next: {}.",
            outcome.tested.sentence(),
            outcome.next_step
        );
        let subject = format!("Data recovery of {database}: restored, as of {}", minute(outcome.backup_finished_at));
        (Alert::new(SOURCE, Severity::Info, dedup, format!("Database restored: {database}")).summary(summary), subject)
    } else {
        let summary = format!(
            "{what}, and failed: {}. It may be partly restored.{}{loss} Next: {}.",
            outcome.failures.join("; "),
            outcome.tested.sentence(),
            outcome.next_step
        );
        let subject = format!("Data recovery of {database}: the restore FAILED");
        (
            Alert::new(SOURCE, Severity::Critical, dedup, format!("Database restore failed: {database}"))
                .summary(summary),
            subject,
        )
    };
    let alert = alert
        .detail("backup_key", outcome.backup_key.clone())
        .detail("safety_backup_key", outcome.safety_backup_key.clone())
        .detail("rto_ms", outcome.rto_ms)
        .detail("loss", serde_json::to_value(&outcome.loss).unwrap_or_default());
    Notice { alert, subject, text: plain(outcome) }
}

/// The closing notice in plain words.
fn plain(outcome: &RestoreOutcome) -> String {
    let database = &outcome.database;
    let took = chrono::Duration::from_std(Duration::from_millis(outcome.rto_ms)).unwrap_or_default();
    let result = if outcome.passed {
        "Its checks passed: row counts, validation queries and health checks.".to_owned()
    } else {
        format!("It FAILED ({}): the database may be partly restored.", outcome.failures.join("; "))
    };
    let loss = match &outcome.loss {
        Some(loss) => format!(
            "Data lost: what was written from {}.\nRows per table, the backup beside the live database before the \
             restore (from {}; row counts only: rows changed in place are not counted):\n{}",
            loss.window(),
            outcome.loss_source,
            loss.table_lines().iter().map(|line| format!("  - {line}")).collect::<Vec<_>>().join("\n")
        ),
        None => format!("Data lost: since the backup finished; the rows per table are {}.", outcome.loss_source),
    };
    let restored = if outcome.passed { "was restored" } else { "was to be restored" };
    format!(
        "The database {database} {restored} from the backup {}, which finished at {}.\nThe restore took {}, from {} \
         to {}. {result}\n\n{loss}\n\nNext: {}.\n",
        outcome.backup_key,
        minute(outcome.backup_finished_at),
        span(took),
        minute(outcome.started_at),
        minute(outcome.finished_at),
        outcome.next_step
    )
}
