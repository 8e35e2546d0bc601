//! `backups` and `dr assess`: every backup with the restore tests that covered it, and the
//! newest ones judged against the live database.

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, Severity, rfc3339};
use ops_shared::backup::{MANIFEST_SUFFIX, Manifest, RestoreReport};
use ops_shared::objects::ObjectStore;
use ops_shared::postgres::{DbCredentials, quote_ident};
use serde::Serialize;
use tokio_postgres::Client;

use super::loss::{AssessmentRecord, DataLoss, TableRows, assessment_key, minute};
use super::record::{current_freeze, write_record};
use super::{DrError, RESTORE_WITHOUT_ASKING_HOURS, refused};
use crate::dr_restore::SOURCE;
use crate::notice::{Audience, Notice, Told};
use crate::outcome::Verdict;

/// One backup as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    pub key: String,
    pub label: Option<String>,
    pub finished_at: DateTime<Utc>,
    pub age_hours: f64,
    pub size_bytes: u64,
    pub rows: i64,
    /// The result of the newest restore test of this backup, if any.
    pub restore_test: Option<String>,
    /// Whether a restore test passed this backup, and when.
    pub tested: Tested,
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Every backup (newest first), with the restore tests that covered them.
pub async fn backups(
    objects: &impl ObjectStore,
    backup_prefix: &str,
    report_prefix: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BackupEntry>, DrError> {
    let manifests: Vec<Manifest> = read_all_json(objects, backup_prefix, MANIFEST_SUFFIX).await?;
    let reports = restore_tests(objects, report_prefix).await?;
    let mut entries: Vec<BackupEntry> = manifests
        .into_iter()
        .map(|manifest| {
            let tested = reports
                .iter()
                .filter(|r| r.backup_key == manifest.key)
                .max_by_key(|r| r.verified_at)
                .map(|r| r.result.clone());
            BackupEntry {
                key: manifest.key.clone(),
                label: manifest.label.clone(),
                finished_at: manifest.finished_at,
                age_hours: (now - manifest.finished_at).num_minutes() as f64 / 60.0,
                size_bytes: manifest.size_bytes,
                rows: manifest.total_rows(),
                restore_test: tested,
                tested: Tested::of(&reports, &manifest.key),
                manifest,
            }
        })
        .collect();
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.finished_at));
    Ok(entries)
}

/// Every restore test's report under `report_prefix`, as the restore-verifier and
/// `opsctl restore-test` file them.
pub async fn restore_tests(objects: &impl ObjectStore, report_prefix: &str) -> Result<Vec<RestoreReport>, DrError> {
    read_all_json(objects, report_prefix, ".json").await
}

/// Whether a restore test passed a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Passed {
    Yes,
    /// No restore test of it was filed.
    No,
    /// Every restore test of it failed.
    Failed,
}

/// The restore tests of one backup: whether one passed it, and the report that says so (the
/// newest that passed, else the newest that failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tested {
    pub passed: Passed,
    pub report_key: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
}

impl Tested {
    /// What the reports say of the backup `key`: reports of exactly that key only.
    pub fn of(reports: &[RestoreReport], key: &str) -> Tested {
        let of_key = || reports.iter().filter(|r| r.backup_key == key);
        let (passed, report) = match of_key().filter(|r| restores(r)).max_by_key(|r| r.verified_at) {
            Some(report) => (Passed::Yes, Some(report)),
            None => match of_key().max_by_key(|r| r.verified_at) {
                Some(report) => (Passed::Failed, Some(report)),
                None => (Passed::No, None),
            },
        };
        Tested { passed, report_key: report.map(|r| r.report_key.clone()), verified_at: report.map(|r| r.verified_at) }
    }

    /// `yes (2026-05-01)`, `no`, `FAILED (2026-05-01)`.
    pub fn render(&self) -> String {
        let word = match self.passed {
            Passed::Yes => "yes",
            Passed::No => "no",
            Passed::Failed => "FAILED",
        };
        match self.verified_at {
            Some(at) => format!("{word} ({})", at.format("%Y-%m-%d")),
            None => word.to_owned(),
        }
    }
}

/// Whether a report shows that its backup restores: its bytes, the restore, the row counts
/// and the validation queries passed. A test that missed only the RTO or the RPO target (a
/// slow staging server, a backup older than a day) judges the schedule and the server, not
/// the backup: it still restores.
pub fn restores(report: &RestoreReport) -> bool {
    let targets_missed = usize::from(!report.rto_met) + usize::from(!report.rpo_met);
    report.result == "passed"
        || (!report.checks.is_empty()
            && report.checks.iter().all(|check| check.passed)
            && report.failures.len() == targets_missed)
}

async fn read_all_json<T: serde::de::DeserializeOwned>(
    objects: &impl ObjectStore,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<T>, DrError> {
    let listed = objects.list(prefix).await.map_err(DrError::Backups)?;
    let mut parsed = Vec::new();
    for object in listed.iter().filter(|o| o.key.ends_with(suffix)) {
        let body = objects.get(&object.key).await.map_err(DrError::Backups)?;
        let body = body.collect().await.map_err(DrError::Backups)?;
        match serde_json::from_slice(&body) {
            Ok(value) => parsed.push(value),
            // One unreadable file must not hide the others.
            Err(err) => {
                tracing::warn!(key = %object.key, error = %err, "skipping a file that is not what the functions write")
            }
        }
    }
    Ok(parsed)
}

/// What `dr assess` found and advises.
#[derive(Debug, Serialize)]
pub struct Assessment {
    pub newest: Vec<BackupEntry>,
    pub tables: Vec<TableRows>,
    pub advice: String,
    pub restore_without_asking: bool,
    /// What restoring the newest backup loses; none without a backup.
    pub loss: Option<DataLoss>,
    /// The assessment record in the backup bucket, which `dr restore` states.
    pub record_key: Option<String>,
    /// Whether the notice reached ops (`alert`) and the stakeholders (`stakeholders`).
    #[serde(flatten)]
    pub told: Told,
}

/// Whose production database is assessed, and by whom: for the record and the notice.
#[derive(Debug, Clone)]
pub struct AssessRequest {
    /// The database secret's ARN: the records' key.
    pub secret_arn: String,
    /// The caller's identity (STS), or the OS user.
    pub who: String,
}

/// The newest backups of the database behind `creds` judged against it (see [`judge`]), and
/// the data-loss window of restoring the newest: from its snapshot (when it started) to the freeze (the freeze
/// record's time; to now, said so, when writes go on), with each table whose live rows differ
/// from its count. That is recorded beside the freeze record (`reports/dr-assessments/`), for
/// `dr restore` to state, and told to `audience`.
pub async fn assess(
    client: &Client,
    creds: &DbCredentials,
    entries: Vec<BackupEntry>,
    records: &impl ObjectStore,
    audience: &impl Audience,
    request: &AssessRequest,
) -> Result<Assessment, DrError> {
    let mut assessment = judge(client, creds, entries).await?;
    let freeze = current_freeze(records, &request.secret_arn).await?;
    let now = Utc::now();
    if let Some(newest) = assessment.newest.first() {
        let loss = DataLoss::of(&newest.manifest, freeze.as_ref(), &assessment.tables, now);
        let record = AssessmentRecord {
            secret: request.secret_arn.clone(),
            host: creds.host.clone(),
            database: creds.dbname.clone(),
            assessed_at: now,
            assessed_by: request.who.clone(),
            loss: loss.clone(),
        };
        let key = assessment_key(&request.secret_arn);
        write_record(records, &key, &record).await?;
        assessment.record_key = Some(key);
        assessment.loss = Some(loss);
    }
    assessment.told = audience.tell(&assess_notice(creds, &assessment, request, now)).await;
    Ok(assessment)
}

/// The newest backups of the database behind `creds` (backups of other servers or databases
/// and the safety backups `dr restore` takes are never its latest), each table's live rows
/// beside the newest backup's count, and the runbook's rule: under 24 hours restore, older
/// decide with the team.
async fn judge(client: &Client, creds: &DbCredentials, entries: Vec<BackupEntry>) -> Result<Assessment, DrError> {
    let entries: Vec<BackupEntry> = entries
        .into_iter()
        .filter(|e| !e.manifest.is_safety_backup() && e.manifest.is_of_database(&creds.host, creds.port, &creds.dbname))
        .collect();
    let Some(newest) = entries.first() else {
        return Ok(Assessment {
            newest: Vec::new(),
            tables: Vec::new(),
            advice: "no backup exists: restore from Supabase's own backups, and decide with the team".to_owned(),
            restore_without_asking: false,
            loss: None,
            record_key: None,
            told: Told::default(),
        });
    };
    let mut tables = Vec::new();
    for count in &newest.manifest.tables {
        let sql = format!("SELECT count(*) FROM {}.{}", quote_ident(&count.schema), quote_ident(&count.table));
        let live = match client.query_one(&sql, &[]).await {
            Ok(row) => Some(row.get::<_, i64>(0)),
            Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => None,
            Err(err) => return Err(refused(&format!("counting {}.{}", count.schema, count.table), err)),
        };
        tables.push(TableRows { table: format!("{}.{}", count.schema, count.table), backup: count.rows, live });
    }
    let restore_without_asking = newest.age_hours < RESTORE_WITHOUT_ASKING_HOURS;
    let advice = if restore_without_asking {
        format!(
            "the newest backup is {:.1} h old (under {RESTORE_WITHOUT_ASKING_HOURS} h): restore it \
             (opsctl dr restore --backup {} --target <secret> --confirm {}/{})",
            newest.age_hours, newest.key, creds.host, creds.dbname
        )
    } else {
        format!(
            "the newest backup is {:.1} h old (over {RESTORE_WITHOUT_ASKING_HOURS} h): decide with the team whether \
             to restore it, or to recover from Supabase's point-in-time backups",
            newest.age_hours
        )
    } + &untested_note(&newest.tested);
    Ok(Assessment {
        newest: entries.into_iter().take(3).collect(),
        tables,
        advice,
        restore_without_asking,
        loss: None,
        record_key: None,
        told: Told::default(),
    })
}

/// What the advice adds about a newest backup no restore test has passed.
fn untested_note(tested: &Tested) -> String {
    match tested.passed {
        Passed::Yes => String::new(),
        Passed::No => ". No restore test has passed it: dr restore tests it on the staging server first \
                       (--untested skips that)"
            .to_owned(),
        Passed::Failed => ". It FAILED its restore test: dr restore tests it again on the staging server first and \
                           stops if it fails again; pick an older tested backup, or decide with the team"
            .to_owned(),
    }
}

impl Assessment {
    pub fn render(&self) -> String {
        let mut out = String::from("Newest backups (tested: whether a restore test passed it)\n");
        for b in &self.newest {
            let tested = b.tested.render();
            out.push_str(&format!(
                "  {:>6.1} h old  {:>10} rows  tested {tested:<17} {}\n",
                b.age_hours, b.rows, b.key
            ));
        }
        if !self.tables.is_empty() {
            out.push_str("\nRows: live database beside the newest backup\n");
            for t in &self.tables {
                let live = t.live.map_or("(table missing)".to_owned(), |n| n.to_string());
                out.push_str(&format!("  {:<40} live {:>12}  backup {:>12}\n", t.table, live, t.backup));
            }
        }
        if let Some(loss) = &self.loss {
            out.push_str(&format!("\nData-loss window: {}\n", loss.window()));
            for line in loss.table_lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out.push_str(&format!("\nAdvice: {}\n", self.advice));
        if let Some(key) = &self.record_key {
            out.push_str(&format!("Record: {key}\n"));
        }
        out.push_str(&self.told.render(""));
        out
    }

    /// Assessed, and every notice that was due sent; else a notice did not go (exit 2).
    pub fn verdict(&self) -> Verdict {
        self.told.verdict(Verdict::Ok)
    }
}

/// The data-loss window and the tables that differ, to ops and in plain words.
fn assess_notice(
    creds: &DbCredentials,
    assessment: &Assessment,
    request: &AssessRequest,
    now: DateTime<Utc>,
) -> Notice {
    let (database, host) = (&creds.dbname, &creds.host);
    let (summary, text) = match (&assessment.loss, assessment.newest.first()) {
        (Some(loss), Some(newest)) => {
            let tables = loss.table_lines();
            let summary = format!(
                "{} assessed {database} on {host}: restoring {} loses what was written from {}. Rows: {}. Advice: {}",
                request.who,
                newest.key,
                loss.window(),
                tables.join("; "),
                assessment.advice
            );
            let text = format!(
                "{} assessed the database {database} on {host} at {}.\n\n\
                 A restore would bring back the backup {}, which finished at {}.\n\
                 Data-loss window: {}.\nWhat was written in this window is not in the backup: the restore loses \
                 it.\n\nRows per table, the backup beside the live database (row counts only: rows changed in \
                 place are not counted):\n{}\n\nNext: {}\n",
                request.who,
                minute(now),
                newest.key,
                minute(loss.since),
                loss.window(),
                tables.iter().map(|line| format!("  - {line}")).collect::<Vec<_>>().join("\n"),
                if assessment.restore_without_asking {
                    "the backup is under a day old, so it is restored now; a further notice follows once it is."
                } else {
                    "the backup is over a day old: the team decides whether to restore it or to recover the data \
                     another way; a further notice follows."
                }
            );
            (summary, text)
        }
        _ => {
            let said = format!("no backup of the database {database} on {host} was found: {}", assessment.advice);
            (
                format!("{} assessed {database}: {said}", request.who),
                format!("{} assessed the database: {said}.\n", request.who),
            )
        }
    };
    let mut alert = Alert::new(
        SOURCE,
        Severity::Warning,
        format!("{SOURCE}:dr-assess:{}:{}", request.secret_arn, rfc3339(now)),
        format!("Data-loss assessment: {database}"),
    )
    .summary(summary)
    .detail("assessed_by", request.who.clone())
    // Part of the write freeze's incident, while it is open.
    .detail(ops_shared::incident::JOINS_DETAIL, super::freeze::dedup_key(&request.secret_arn));
    if let Some(loss) = &assessment.loss {
        alert = alert
            .detail("backup_key", loss.backup_key.clone())
            .detail("loss_since", rfc3339(loss.since))
            .detail("loss_until", rfc3339(loss.until))
            .detail("frozen", loss.frozen)
            .detail("tables", serde_json::to_value(&loss.tables).unwrap_or_default());
    }
    Notice { alert, subject: format!("Data recovery of {database}: data-loss assessment"), text }
}

/// `backups` as a table.
pub fn render_backups(entries: &[BackupEntry]) -> String {
    if entries.is_empty() {
        return "no backups\n".to_owned();
    }
    let mut out = format!("{:<8} {:>9} {:>10} {:<14} {:<14} key\n", "age", "size", "rows", "label", "restore test");
    for b in entries {
        out.push_str(&format!(
            "{:<8} {:>9} {:>10} {:<14} {:<14} {}\n",
            format!("{:.1} h", b.age_hours),
            format!("{:.1} MB", b.size_bytes as f64 / 1e6),
            b.rows,
            b.label.as_deref().unwrap_or("-"),
            b.restore_test.as_deref().unwrap_or("not tested"),
            b.key
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(key: &str, day: u32, failures: &[&str], rpo_met: bool, checks_pass: bool) -> RestoreReport {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 5, day, 3, 0, 0).single().unwrap_or_default();
        let check =
            |passed| ops_shared::backup::RestoreCheck { name: "row counts".into(), passed, detail: String::new() };
        let value = serde_json::json!({"version": 1, "result": if failures.is_empty() { "passed" } else { "failed" },
            "backup_key": key, "backup_id": "b", "database": "app", "backup_started_at": at, "verified_at": at,
            "size_bytes": 1, "tables": 0, "rows": 0, "download_ms": 0, "restore_ms": 0, "checks_ms": 0, "rto_ms": 1,
            "rto_target_ms": 1, "rto_met": true, "backup_age_hours": 1.0, "rpo_target_hours": 24, "rpo_met": rpo_met,
            "scratch_database": null, "scratch_dropped": true, "checks": [check(checks_pass)],
            "failures": failures, "report_key": format!("reports/restore-tests/{day}.json")});
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_backup_is_tested_by_a_passed_report_of_exactly_its_key() {
        assert_eq!(Tested::of(&[report("k2", 1, &[], true, true)], "k").passed, Passed::No);
        let failed = [report("k", 2, &["row counts: 1 != 2"], true, false)];
        let tested = Tested::of(&failed, "k");
        assert_eq!((tested.passed, tested.render().as_str()), (Passed::Failed, "FAILED (2026-05-02)"));
        let both = [report("k", 3, &["row counts"], true, false), report("k", 1, &[], true, true)];
        let tested = Tested::of(&both, "k");
        assert_eq!((tested.passed, tested.report_key.as_deref()), (Passed::Yes, Some("reports/restore-tests/1.json")));
        // Only the RPO missed: the backup restores.
        let old = report("k", 4, &["the backup is 30.0 h old, beyond the RPO of 24 h"], false, true);
        assert!(restores(&old) && !old.passed());
        assert_eq!(Tested::of(&[old], "k").render(), "yes (2026-05-04)");
    }
}
