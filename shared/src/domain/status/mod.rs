//! The runbook's daily checks in one screen (`opsctl status`, and health-checker's daily e-mail
//! to ops), from what the functions
//! already record: health state and availability counters (state table), the newest backup's
//! manifest and restore report (S3), the rotated secrets (Secrets Manager), the alerts
//! alert-forwarder keeps (state table) and the alarms in ALARM (CloudWatch). Each line has a
//! verdict against the runbook's numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::adapters::objects::{ObjectError, ObjectStore};
use crate::adapters::secret_versions::SecretVersions;
use crate::adapters::state::StateStore;
use crate::domain::alert::ALERT_RECORDS;
use crate::domain::backup::manifest::{MANIFEST_SUFFIX, Manifest};
use crate::domain::health::{STATE_SK, TargetState, p95};
use crate::domain::restore::report::RestoreReport;
use crate::domain::rotation::runbook_rotations;
use crate::domain::sentry_numbers::{self, SentryDay, SentryStats, SentryUnavailable};
use crate::domain::silence::{SILENCES, Silence, Silences};
use crate::domain::slo::{BurnLevel, budget_left};

mod alerts;
mod render;
pub(crate) use render::{footer, issue_lines, percent};
pub(crate) mod verdict;

pub use alerts::{AlarmEvent, AlertsLine, DIRECT_TO_OPS};
use alerts::{WINDOW_HOURS, alerts_line, direct_alarm_names};
pub use verdict::{P95_CRITICAL_MS, P95_WARN_MS, Verdict};

/// The runbook's numbers.
pub const RPO_HOURS: i64 = 24;
pub const RTO_MINUTES: u64 = 30;
/// Restore tests run monthly: one older than this is overdue.
pub(crate) const RESTORE_TEST_MAX_DAYS: i64 = 35;
const LATENCY_WINDOW_SECS: i64 = 300;
const AVAILABILITY_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize)]
pub struct TargetLine {
    pub name: String,
    pub up: bool,
    /// When it went down, while it is down.
    pub down_since: Option<DateTime<Utc>>,
    pub p95_ms_5min: Option<u64>,
    pub(crate) availability_today: Option<f64>,
    pub(crate) availability_30d: Option<f64>,
    pub objective: Option<f64>,
    pub budget_left: Option<f64>,
    pub burn: BurnLevel,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupLine {
    pub key: String,
    pub label: Option<String>,
    pub finished_at: DateTime<Utc>,
    pub age_hours: f64,
    pub size_bytes: u64,
    pub tables: usize,
    pub rows: i64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreLine {
    pub result: String,
    pub verified_at: DateTime<Utc>,
    pub backup_key: String,
    pub rto_minutes: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretLine {
    pub name: String,
    pub(crate) last_rotated: Option<DateTime<Utc>>,
    pub(crate) next_rotation: Option<DateTime<Utc>>,
    pub max_days: u32,
    /// Days until the runbook's cadence is exceeded (negative: overdue).
    pub days_left: Option<i64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmLine {
    pub name: String,
    pub reason: String,
}

/// Sentry's numbers of the past 24 hours, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SentryLine {
    Read(SentryDay),
    /// Not set up: the runbook's Sentry checks go unanswered (a warning).
    NotConfigured {
        fix: String,
    },
    /// Set up but not readable now; the reason is among `unreadable`.
    Unreadable,
}

impl SentryLine {
    /// The line for what reading Sentry gave; a failure to read is also one of `unreadable`.
    pub(crate) fn read(read: Result<SentryDay, SentryUnavailable>, unreadable: &mut Vec<String>) -> SentryLine {
        match read {
            Ok(day) => SentryLine::Read(day),
            Err(SentryUnavailable::NotConfigured { fix }) => SentryLine::NotConfigured { fix },
            Err(SentryUnavailable::Failed(problem)) => {
                unreadable.push(format!("Sentry: {problem}"));
                SentryLine::Unreadable
            }
        }
    }

    fn verdict(&self) -> Verdict {
        match self {
            SentryLine::Read(day) => day.verdict,
            SentryLine::NotConfigured { .. } => Verdict::Warning,
            SentryLine::Unreadable => Verdict::Ok,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub(crate) generated_at: DateTime<Utc>,
    pub sentry: SentryLine,
    pub targets: Vec<TargetLine>,
    pub backup: Option<BackupLine>,
    pub restore_test: Option<RestoreLine>,
    pub secrets: Vec<SecretLine>,
    pub alerts: Option<AlertsLine>,
    pub alarms: Vec<AlarmLine>,
    /// The alarms that page ops without the forwarder (`DIRECT_TO_OPS`) that went to ALARM in
    /// the past 24 hours.
    pub alarmed_24h: Vec<AlarmEvent>,
    /// The silences holding alerts back now.
    pub silences: Vec<Silence>,
    /// What could not be read, and what to do about it.
    pub unreadable: Vec<String>,
}

/// The alarms in ALARM whose names start with a prefix.
pub trait Alarms {
    type Error: std::fmt::Display;

    fn firing(&self, prefix: &str) -> impl Future<Output = Result<Vec<AlarmLine>, Self::Error>> + Send;

    /// The times the alarms `names` went to ALARM since `since` (their state updates).
    fn went_to_alarm(
        &self,
        names: &[String],
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AlarmEvent>, Self::Error>> + Send;
}

/// Why the newest backup or restore-test report could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Storage(#[from] ObjectError),
    #[error("{key} is not what the functions write: {source}")]
    NotOurs { key: String, source: serde_json::Error },
}

/// Where status reads from.
pub struct Sources<'a, T, O, S, A, Q> {
    pub state: &'a T,
    pub objects: &'a O,
    pub secrets: &'a S,
    pub alarms: &'a A,
    pub sentry: &'a Q,
    pub prefix: &'a str,
    pub backup_prefix: &'a str,
    pub report_prefix: &'a str,
}

pub async fn gather<T: StateStore, O: ObjectStore, S: SecretVersions, A: Alarms, Q: SentryStats>(
    sources: &Sources<'_, T, O, S, A, Q>,
    now: DateTime<Utc>,
) -> Status {
    let mut unreadable = Vec::new();
    let sentry = SentryLine::read(sentry_numbers::day(sources.sentry, now).await, &mut unreadable);
    let targets = match sources.state.scan_prefix("health-checker#").await {
        Ok(items) => targets(&items, now),
        Err(err) => {
            unreadable.push(format!("health state: {err} (allow dynamodb:Scan on the state table)"));
            Vec::new()
        }
    };
    let backup = match newest(sources.objects, sources.backup_prefix, MANIFEST_SUFFIX).await {
        Ok(found) => found.map(|manifest: Manifest| backup_line(&manifest, now)),
        Err(err) => {
            unreadable.push(format!("backups: {err} (allow s3:ListBucket and s3:GetObject on the backup bucket)"));
            None
        }
    };
    let restore_test = match newest(sources.objects, sources.report_prefix, ".json").await {
        Ok(found) => found.map(|report: RestoreReport| restore_line(&report, now)),
        Err(err) => {
            unreadable.push(format!("restore tests: {err}"));
            None
        }
    };
    let secrets = secret_lines(sources, now, &mut unreadable).await;
    let alerts = sources.state.scan_prefix(ALERT_RECORDS).await.map(|items| Some(alerts_line(&items, now)));
    let alerts = noted(alerts, None, &mut unreadable, |err| format!("alerts: {err}"));
    let alarms = sources.alarms.firing(&format!("{}-", sources.prefix)).await;
    let alarms =
        noted(alarms, Vec::new(), &mut unreadable, |err| format!("alarms: {err} (allow cloudwatch:DescribeAlarms)"));
    let names = direct_alarm_names(sources.prefix);
    let alarmed_24h = sources.alarms.went_to_alarm(&names, now - Duration::hours(WINDOW_HOURS)).await;
    let alarmed_24h = noted(alarmed_24h, Vec::new(), &mut unreadable, |err| {
        format!("alarm history: {err} (allow cloudwatch:DescribeAlarmHistory)")
    });
    let silences = active_silences(sources.state, now, &mut unreadable).await;
    Status {
        generated_at: now,
        sentry,
        targets,
        backup,
        restore_test,
        secrets,
        alerts,
        alarms,
        alarmed_24h,
        silences,
        unreadable,
    }
}

/// What was read, or `fallback`, with why it could not be read among `unreadable`.
pub(crate) fn noted<T, E>(
    read: Result<T, E>,
    fallback: T,
    unreadable: &mut Vec<String>,
    why: impl FnOnce(E) -> String,
) -> T {
    read.unwrap_or_else(|err| {
        unreadable.push(why(err));
        fallback
    })
}

/// The silences holding alerts back at `now`.
async fn active_silences(state: &impl StateStore, now: DateTime<Utc>, unreadable: &mut Vec<String>) -> Vec<Silence> {
    match state.get(SILENCES.0, SILENCES.1).await {
        Ok(item) => {
            let all: Silences = item.and_then(|i| serde_json::from_value(i.data).ok()).unwrap_or_default();
            all.silences.into_iter().filter(|s| s.is_active(now.timestamp())).collect()
        }
        Err(err) => {
            unreadable.push(format!("silences: {err} (allow dynamodb:GetItem on the state table)"));
            Vec::new()
        }
    }
}

fn targets(items: &[(String, String, serde_json::Value)], now: DateTime<Utc>) -> Vec<TargetLine> {
    let mut days: BTreeMap<&str, Vec<(NaiveDate, i64, i64)>> = BTreeMap::new();
    for (pk, sk, data) in items {
        let day = sk.strip_prefix("day#").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if let Some(day) = day {
            let count = |name: &str| data.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0);
            days.entry(pk.as_str()).or_default().push((day, count("checks"), count("up")));
        }
    }
    let today = now.date_naive();
    let availability = |counts: &[(NaiveDate, i64, i64)], since: NaiveDate| {
        let (checks, up) =
            counts.iter().filter(|(d, _, _)| *d >= since).fold((0, 0), |(c, u), (_, dc, du)| (c + dc, u + du));
        (checks > 0).then(|| up as f64 / checks as f64)
    };
    let mut lines: Vec<TargetLine> = items
        .iter()
        .filter(|(_, sk, _)| sk == STATE_SK)
        .filter_map(|(pk, _, data)| {
            let state: TargetState = serde_json::from_value(data.clone()).ok()?;
            let name = pk.strip_prefix("health-checker#")?.to_owned();
            let counts = days.get(pk.as_str()).map(Vec::as_slice).unwrap_or_default();
            let recent: Vec<u64> = state
                .latencies
                .iter()
                .filter(|(at, _)| now.timestamp() - at < LATENCY_WINDOW_SECS)
                .map(|(_, ms)| *ms)
                .collect();
            let availability_30d = availability(counts, today - Duration::days(AVAILABILITY_DAYS - 1));
            let budget = state.objective.zip(availability_30d).map(|(o, a)| budget_left(a, o));
            let mut line = TargetLine {
                name,
                up: !state.down,
                down_since: state.down_since.and_then(|at| DateTime::from_timestamp(at, 0)),
                p95_ms_5min: p95(&recent),
                availability_today: availability(counts, today),
                availability_30d,
                objective: state.objective,
                budget_left: budget,
                burn: state.burn_level,
                verdict: Verdict::Ok,
            };
            line.verdict = target_verdict(&line);
            Some(line)
        })
        .collect();
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    lines
}

fn target_verdict(line: &TargetLine) -> Verdict {
    let latency = match line.p95_ms_5min {
        Some(ms) if ms > P95_CRITICAL_MS => Verdict::Critical,
        Some(ms) if ms > P95_WARN_MS => Verdict::Warning,
        _ => Verdict::Ok,
    };
    let budget = match (line.burn, line.budget_left) {
        (BurnLevel::Fast, _) => Verdict::Critical,
        (_, Some(left)) if left < 0.0 => Verdict::Critical,
        (BurnLevel::Slow, _) => Verdict::Warning,
        _ => Verdict::Ok,
    };
    let down = if line.up { Verdict::Ok } else { Verdict::Critical };
    latency.max(budget).max(down)
}

/// The newest object under `prefix` ending in `suffix` (keys sort by time), parsed.
pub(crate) async fn newest<T: serde::de::DeserializeOwned>(
    objects: &impl ObjectStore,
    prefix: &str,
    suffix: &str,
) -> Result<Option<T>, ReadError> {
    let listed = objects.list(prefix).await?;
    let Some(newest) = listed.iter().filter(|o| o.key.ends_with(suffix)).max_by_key(|o| (o.last_modified, &o.key))
    else {
        return Ok(None);
    };
    read_json(objects, &newest.key).await.map(Some)
}

/// The object `key`, parsed as what the functions write there.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    objects: &impl ObjectStore,
    key: &str,
) -> Result<T, ReadError> {
    let body = objects.get(key).await?.collect().await?;
    serde_json::from_slice(&body).map_err(|source| ReadError::NotOurs { key: key.to_owned(), source })
}

pub(crate) fn backup_line(manifest: &Manifest, now: DateTime<Utc>) -> BackupLine {
    let age_hours = (now - manifest.finished_at).num_minutes() as f64 / 60.0;
    BackupLine {
        key: manifest.key.clone(),
        label: manifest.label.clone(),
        finished_at: manifest.finished_at,
        age_hours,
        size_bytes: manifest.size_bytes,
        tables: manifest.tables.len(),
        rows: manifest.total_rows(),
        verdict: if age_hours <= RPO_HOURS as f64 { Verdict::Ok } else { Verdict::Critical },
    }
}

pub(crate) fn restore_line(report: &RestoreReport, now: DateTime<Utc>) -> RestoreLine {
    let rto_minutes = report.rto_ms as f64 / 60_000.0;
    let verdict = if report.result != "passed" {
        Verdict::Critical
    } else if rto_minutes > RTO_MINUTES as f64 || now - report.verified_at > Duration::days(RESTORE_TEST_MAX_DAYS) {
        Verdict::Warning
    } else {
        Verdict::Ok
    };
    RestoreLine {
        result: report.result.clone(),
        verified_at: report.verified_at,
        backup_key: report.backup_key.clone(),
        rto_minutes,
        verdict,
    }
}

pub(crate) async fn secret_lines<T, O, S: SecretVersions, A, Q>(
    sources: &Sources<'_, T, O, S, A, Q>,
    now: DateTime<Utc>,
    unreadable: &mut Vec<String>,
) -> Vec<SecretLine> {
    let mut lines = Vec::new();
    for (secret, _, max_days) in runbook_rotations(sources.prefix) {
        let description = match sources.secrets.describe(&secret).await {
            Ok(description) => description,
            Err(err) => {
                unreadable.push(format!("{secret}: {err} (allow secretsmanager:DescribeSecret)"));
                continue;
            }
        };
        // Due by the runbook's cadence after the last rotation, or sooner if scheduled sooner.
        let by_cadence = description.last_rotated.map(|at| at + Duration::days(i64::from(max_days)));
        let due = match (by_cadence, description.next_rotation) {
            (Some(cadence), Some(next)) => Some(cadence.min(next)),
            (cadence, next) => cadence.or(next),
        };
        let days_left = due.map(|due| (due - now).num_days());
        let verdict = match days_left {
            _ if !description.rotation_enabled => Verdict::Warning,
            Some(left) if left < 0 => Verdict::Critical,
            Some(_) => Verdict::Ok,
            None => Verdict::Warning,
        };
        lines.push(SecretLine {
            name: secret,
            last_rotated: description.last_rotated,
            next_rotation: description.next_rotation,
            max_days,
            days_left,
            verdict,
        });
    }
    lines
}

impl Status {
    /// The worst verdict on the screen (alarms in ALARM, and alarms that paged ops straight in
    /// the past 24 hours, are critical; Sentry not set up is a warning).
    pub fn verdict(&self) -> Verdict {
        let backup = self.backup.as_ref().map_or(Verdict::Critical, |b| b.verdict);
        let restore_test = self.restore_test.as_ref().map_or(Verdict::Warning, |r| r.verdict);
        let alerts = self.alerts.as_ref().map_or(Verdict::Ok, |a| a.verdict);
        let quiet = self.alarms.is_empty() && self.alarmed_24h.is_empty();
        let alarms = if quiet { Verdict::Ok } else { Verdict::Critical };
        let lines = self.targets.iter().map(|t| t.verdict).chain(self.secrets.iter().map(|s| s.verdict));
        lines.fold(backup.max(restore_test).max(alerts).max(alarms).max(self.sentry.verdict()), Verdict::max)
    }

    /// 0 when all is as the runbook says, 1 when a line is not, 2 when something could not be read.
    pub fn exit_code(&self) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if self.verdict() == Verdict::Ok {
            0
        } else {
            1
        }
    }
}
