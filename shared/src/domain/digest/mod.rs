//! The weekly digest (health-checker's Monday e-mail, `opsctl digest`): the runbook's weekly
//! checks for one ISO week, from what the functions record and what Sentry says: error trends
//! week over week (error events, new and regressed issues, the top 5), the app's P95 this week
//! against last and against 1500 ms, availability and error budget of each target with an
//! objective, every backup of the week and the latest restore test with its RTO and RPO, the
//! rotations due within 30 days, and the week's incidents and alerts.

mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde::Serialize;

use crate::adapters::objects::ObjectStore;
use crate::adapters::secret_versions::SecretVersions;
use crate::adapters::state::StateStore;
use crate::domain::alert::{ALERT_RECORDS, AlertRecord, Severity, is_notice};
use crate::domain::backup::manifest::{MANIFEST_SUFFIX, Manifest};
use crate::domain::health::{STATE_SK, TargetState};
use crate::domain::incident::{self, Incident};
use crate::domain::restore::report::RestoreReport;
use crate::domain::sentry_numbers::{
    self, Issue, IssueFilter, Period, SentryStats, SentryUnavailable, TOP_ISSUES, Transactions,
};
use crate::domain::slo::budget_left;
use crate::domain::status::{
    Alarms, BackupLine, RestoreLine, SecretLine, Sources, Verdict, backup_line, newest, noted, restore_line,
    secret_lines,
};

/// Rotations due within this many days are listed.
const ROTATION_HORIZON_DAYS: i64 = 30;
/// The error budget is judged over the 30 days that end with the week.
const BUDGET_DAYS: i64 = 30;

/// An ISO week: Monday 00:00 UTC to the next Monday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Week {
    /// `YYYY-Www`.
    pub label: String,
    pub period: Period,
}

impl Week {
    /// The week `YYYY-Www` (ISO 8601: weeks start on Monday, week 1 holds the year's first
    /// Thursday).
    pub fn parse(text: &str) -> Result<Week, String> {
        let invalid = || format!("{text:?} is not an ISO week: write YYYY-Www, e.g. 2026-W48");
        let (year, week) = text.split_once("-W").ok_or_else(invalid)?;
        let (year, week) = (year.parse::<i32>().map_err(|_| invalid())?, week.parse::<u32>().map_err(|_| invalid())?);
        let monday = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(invalid)?;
        Ok(Week::starting(monday))
    }

    /// The last whole week before `now`: on a Monday morning, the week that just ended.
    pub fn last_complete(now: DateTime<Utc>) -> Week {
        let today = now.date_naive();
        let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        Week::starting(this_monday - Duration::days(7))
    }

    pub fn previous(&self) -> Week {
        Week::starting(self.period.start.date_naive() - Duration::days(7))
    }

    fn starting(monday: NaiveDate) -> Week {
        let iso = monday.iso_week();
        let start = monday.and_time(chrono::NaiveTime::MIN).and_utc();
        Week {
            label: format!("{}-W{:02}", iso.year(), iso.week()),
            period: Period { start, end: start + Duration::days(7) },
        }
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        at >= self.period.start && at < self.period.end
    }

    fn contains_ts(&self, at: i64) -> bool {
        DateTime::from_timestamp(at, 0).is_some_and(|at| self.contains(at))
    }
}

/// Sentry's week against the week before.
#[derive(Debug, Clone, Serialize)]
pub struct SentryWeek {
    pub this_week: Transactions,
    pub last_week: Transactions,
    pub error_events: u64,
    pub error_events_last_week: u64,
    /// First seen this week.
    pub new_issues: Vec<Issue>,
    /// Regressed now (Sentry keeps the substatus for 7 days, so an older week's regressions are
    /// no longer told apart).
    pub regressed: Vec<Issue>,
    /// The most events this week.
    pub top: Vec<Issue>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SentrySection {
    Read(SentryWeek),
    NotConfigured { fix: String },
    Unreadable,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetWeek {
    pub name: String,
    pub availability: Option<f64>,
    pub availability_last_week: Option<f64>,
    pub objective: Option<f64>,
    /// Of the 30 days that end with the week.
    pub budget_left: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupsWeek {
    pub backups: Vec<BackupLine>,
    /// Days of the week (up to now) without a finished backup.
    pub days_without: Vec<NaiveDate>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreWeek {
    #[serde(flatten)]
    pub line: RestoreLine,
    /// The restored backup's age when the test ran: the data a restore then would have lost.
    pub rpo_hours: f64,
}

/// Alerts ops were told of during the week (each alert key once, by its last sending).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertsWeek {
    pub by_severity: BTreeMap<Severity, usize>,
    pub alerts: Vec<(String, Severity, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    pub week: Week,
    pub(crate) generated_at: DateTime<Utc>,
    pub sentry: SentrySection,
    pub targets: Vec<TargetWeek>,
    pub backups: Option<BackupsWeek>,
    pub restore_test: Option<RestoreWeek>,
    pub rotations_due: Vec<SecretLine>,
    pub alerts: Option<AlertsWeek>,
    /// The incidents opened in the week.
    pub incidents: Option<Vec<Incident>>,
    pub unreadable: Vec<String>,
}

impl Digest {
    /// The worst line: Sentry's numbers, targets, backups, the restore test and overdue rotations.
    pub fn verdict(&self) -> Verdict {
        let sentry = match &self.sentry {
            SentrySection::Read(week) => week.verdict,
            SentrySection::NotConfigured { .. } => Verdict::Warning,
            SentrySection::Unreadable => Verdict::Ok,
        };
        let backups = self.backups.as_ref().map_or(Verdict::Ok, |b| b.verdict);
        let restore = self.restore_test.as_ref().map_or(Verdict::Warning, |r| r.line.verdict);
        let lines = self.targets.iter().map(|t| t.verdict).chain(self.rotations_due.iter().map(|s| s.verdict));
        lines.fold(sentry.max(backups).max(restore), Verdict::max)
    }
}

/// The digest of `week`, as of `now`.
pub async fn gather<T, O, S, A, Q>(sources: &Sources<'_, T, O, S, A, Q>, week: Week, now: DateTime<Utc>) -> Digest
where
    T: StateStore,
    O: ObjectStore,
    S: SecretVersions,
    A: Alarms,
    Q: SentryStats,
{
    let mut unreadable = Vec::new();
    let sentry = match sentry_numbers::within_budget(sentry_week(sources.sentry, &week)).await {
        Ok(read) => SentrySection::Read(read),
        Err(SentryUnavailable::NotConfigured { fix }) => SentrySection::NotConfigured { fix },
        Err(SentryUnavailable::Failed(problem)) => {
            unreadable.push(format!("Sentry: {problem}"));
            SentrySection::Unreadable
        }
    };
    let targets = sources.state.scan_prefix("health-checker#").await.map(|items| target_weeks(&items, &week));
    let targets = noted(targets, Vec::new(), &mut unreadable, |err| {
        format!("health state: {err} (allow dynamodb:Scan on the state table)")
    });
    let alerts = sources.state.scan_prefix(ALERT_RECORDS).await.map(|items| Some(alerts_of(&items, &week, now)));
    let alerts = noted(alerts, None, &mut unreadable, |err| format!("alerts: {err}"));
    let backups = match backups_of(sources.objects, sources.backup_prefix, &week, now).await {
        Ok(backups) => Some(backups),
        Err(err) => {
            unreadable.push(format!("backups: {err} (allow s3:ListBucket and s3:GetObject on the backup bucket)"));
            None
        }
    };
    let restore_test = match newest(sources.objects, sources.report_prefix, ".json").await {
        Ok(found) => found.map(|report: RestoreReport| RestoreWeek {
            rpo_hours: report.backup_age_hours,
            line: restore_line(&report, week.period.end.min(now)),
        }),
        Err(err) => {
            unreadable.push(format!("restore tests: {err}"));
            None
        }
    };
    let incidents = incident::since(sources.objects, sources.state, week.period.start).await;
    let incidents = incidents.map(|all| Some(all.into_iter().filter(|i| week.contains_ts(i.opened_at)).collect()));
    let incidents = noted(incidents, None, &mut unreadable, |err| format!("incidents: {err}"));
    let rotations_due = secret_lines(sources, now, &mut unreadable)
        .await
        .into_iter()
        .filter(|s| s.days_left.is_none_or(|days| days <= ROTATION_HORIZON_DAYS))
        .collect();
    Digest {
        week,
        generated_at: now,
        sentry,
        targets,
        backups,
        restore_test,
        rotations_due,
        alerts,
        incidents,
        unreadable,
    }
}

async fn sentry_week(sentry: &impl SentryStats, week: &Week) -> Result<SentryWeek, SentryUnavailable> {
    let (this, last) = (week.period, week.previous().period);
    let this_week = sentry.transactions(this).await?;
    let last_week = sentry.transactions(last).await?;
    Ok(SentryWeek {
        verdict: this_week.verdict(),
        this_week,
        last_week,
        error_events: sentry.error_events(this).await?,
        error_events_last_week: sentry.error_events(last).await?,
        new_issues: sentry.issues(this, IssueFilter::New, TOP_ISSUES).await?,
        regressed: sentry.issues(this, IssueFilter::Regressed, TOP_ISSUES).await?,
        top: sentry.issues(this, IssueFilter::Frequent, TOP_ISSUES).await?,
    })
}

/// Each target's availability this week and last, and its budget over the 30 days to the
/// week's end, from health-checker's daily counters.
fn target_weeks(items: &[(String, String, serde_json::Value)], week: &Week) -> Vec<TargetWeek> {
    let end = week.period.end.date_naive();
    let availability = |pk: &str, from: NaiveDate, to: NaiveDate| {
        let (checks, up) = items
            .iter()
            .filter(|(p, _, _)| p == pk)
            .filter_map(|(_, sk, data)| {
                let day = NaiveDate::parse_from_str(sk.strip_prefix("day#")?, "%Y-%m-%d").ok()?;
                let count = |name: &str| data.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0);
                (day >= from && day < to).then(|| (count("checks"), count("up")))
            })
            .fold((0, 0), |(c, u), (dc, du)| (c + dc, u + du));
        (checks > 0).then(|| up as f64 / checks as f64)
    };
    let mut lines: Vec<TargetWeek> = items
        .iter()
        .filter(|(_, sk, _)| sk == STATE_SK)
        .filter_map(|(pk, _, data)| {
            let state: TargetState = serde_json::from_value(data.clone()).ok()?;
            let this_week = availability(pk, end - Duration::days(7), end);
            let budget = state
                .objective
                .zip(availability(pk, end - Duration::days(BUDGET_DAYS), end))
                .map(|(o, a)| budget_left(a, o));
            let verdict = match (state.objective, this_week, budget) {
                (_, _, Some(left)) if left < 0.0 => Verdict::Critical,
                (Some(objective), Some(a), _) if a < objective => Verdict::Warning,
                _ => Verdict::Ok,
            };
            Some(TargetWeek {
                name: pk.strip_prefix("health-checker#")?.to_owned(),
                availability: this_week,
                availability_last_week: availability(pk, end - Duration::days(14), end - Duration::days(7)),
                objective: state.objective,
                budget_left: budget,
                verdict,
            })
        })
        .collect();
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    lines
}

/// Every backup that finished in the week, and the days (up to `now`) without one.
async fn backups_of(
    objects: &impl ObjectStore,
    prefix: &str,
    week: &Week,
    now: DateTime<Utc>,
) -> Result<BackupsWeek, crate::domain::status::ReadError> {
    let listed = objects.list(prefix).await?;
    // Every manifest is read (a few dozen small objects: backups are kept 35 days); the time an
    // object was written is not trusted to say when its backup finished.
    let mut backups = Vec::new();
    for object in listed.iter().filter(|o| o.key.ends_with(MANIFEST_SUFFIX)) {
        let manifest: Manifest = crate::domain::status::read_json(objects, &object.key).await?;
        // A dr restore's safety backup is no night's backup.
        if week.contains(manifest.finished_at) && !manifest.is_safety_backup() {
            backups.push(backup_line(&manifest, now));
        }
    }
    backups.sort_by_key(|b| b.finished_at);
    let last_day = week.period.end.min(now).date_naive();
    let days_without: Vec<NaiveDate> = week
        .period
        .start
        .date_naive()
        .iter_days()
        .take_while(|day| *day < last_day)
        .filter(|day| !backups.iter().any(|b| b.finished_at.date_naive() == *day))
        .collect();
    let verdict = if days_without.is_empty() { Verdict::Ok } else { Verdict::Critical };
    Ok(BackupsWeek { backups, days_without, verdict })
}

/// The alerts whose last sending fell in the week.
fn alerts_of(items: &[(String, String, serde_json::Value)], week: &Week, now: DateTime<Utc>) -> AlertsWeek {
    let mut out = AlertsWeek::default();
    for (_, key, data) in items.iter().filter(|(_, key, _)| !is_notice(key)) {
        let Ok(record) = serde_json::from_value::<AlertRecord>(data.clone()) else { continue };
        let record = record.settled(now.timestamp_millis());
        let Some(sent) = DateTime::from_timestamp(record.last_sent, 0).filter(|at| week.contains(*at)) else {
            continue;
        };
        let severity = record.severity.unwrap_or(Severity::Warning);
        *out.by_severity.entry(severity).or_insert(0) += 1;
        out.alerts.push((key.clone(), severity, sent));
    }
    out.alerts.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn a_week_is_read_as_iso_8601_numbers_it() {
        let week = Week::parse("2026-W48").expect("week");
        assert_eq!(week.period.start, at("2026-11-23T00:00:00Z"));
        assert_eq!(week.period.end, at("2026-11-30T00:00:00Z"));
        // 2027's week 1 holds its first Thursday, 7 January; 4 January is its Monday.
        assert_eq!(Week::parse("2027-W01").expect("week").period.start, at("2027-01-04T00:00:00Z"));
        assert_eq!(Week::parse("2026-W53").expect("2026 has 53 weeks").previous().label, "2026-W52");
        for wrong in ["2026-48", "2026-W54", "2026-W00", "W48", "2026-Wxx", ""] {
            let err = Week::parse(wrong).expect_err(wrong);
            assert!(err.contains("YYYY-Www"), "{err}");
        }
    }

    #[test]
    fn on_monday_morning_the_last_whole_week_is_the_one_that_just_ended() {
        assert_eq!(Week::last_complete(at("2026-11-30T08:00:00Z")).label, "2026-W48");
        assert_eq!(Week::last_complete(at("2026-12-06T23:59:59Z")).label, "2026-W48");
        assert_eq!(Week::last_complete(at("2027-01-04T08:00:00Z")).label, "2026-W53");
    }
}
