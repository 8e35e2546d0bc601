//! One health run: check every target concurrently, then fold each result into the target's
//! state with a conditional write, and alert on what changed.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::state::{self, StateStore};
use ops_shared::telemetry::{Metrics, Unit};
use serde::Serialize;

use ops_shared::health::{LatencyLevel, STATE_SK, TargetState, day_sk, target_key};
use ops_shared::slo::{self, BurnLevel, Judgement};

use crate::check::{CheckResult, Prober};
use crate::config::{HealthConfig, Probe, Target};
use crate::error::{HealthError, SOURCE};
use crate::transitions::{Thresholds, Transition, apply};

const DAY: i64 = 24 * 3600;
/// Conditional writes retried this often when overlapping runs race for a target.
const WRITE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub checked: usize,
    pub up: usize,
    pub elapsed_ms: u64,
    pub results: Vec<CheckResult>,
    pub alerts: Vec<String>,
}

/// What a run keeps of its time for writing the targets' state and publishing alerts.
const RECORD_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The metric record of one target's check in a run: `Up` (1 or 0) and `LatencyMs`, by `Target`.
pub fn target_metrics(target: &str, up: bool, latency_ms: u64) -> Metrics {
    Metrics::new("CineView/Ops").dimension("Target", target).value("Up", if up { 1.0 } else { 0.0 }, Unit::Count).value(
        "LatencyMs",
        latency_ms as f64,
        Unit::Milliseconds,
    )
}

/// A target's error budget left after a check, in percent of the budget (below 0 once it is
/// overspent): the dashboard's budget widget, drawn against its 0 line.
pub fn budget_metrics(target: &str, budget_left: f64) -> Metrics {
    Metrics::new("CineView/Ops").dimension("Target", target).value(
        "BudgetLeftPercent",
        budget_left * 100.0,
        Unit::Percent,
    )
}

/// The record every run ends with, whatever its checks found (the heartbeat alarm's metric).
pub fn heartbeat_metrics() -> Metrics {
    Metrics::new("CineView/Ops").dimension("Function", SOURCE).value("Heartbeat", 1.0, Unit::Count)
}

pub struct HealthRun<S, A> {
    pub prober: Prober,
    pub state: S,
    pub alerts: A,
    pub config: HealthConfig,
    /// The daily status's and weekly digest's sources, where the stack configures them.
    pub reports: Option<crate::reports::Reports>,
}

impl<S: StateStore, A: AlertSink> HealthRun<S, A> {
    pub async fn run(&self) -> Result<RunSummary, HealthError> {
        self.run_until(None).await
    }

    /// A run that ends its checks in time to record them and alert before `deadline`.
    pub async fn run_until(&self, deadline: Option<Instant>) -> Result<RunSummary, HealthError> {
        let started = Instant::now();
        let left = deadline.map(|d| d.saturating_duration_since(started).saturating_sub(RECORD_MARGIN));
        let results = join_all(self.config.targets.iter().map(|t| self.prober.check_within(t, left))).await;
        let now = Utc::now();
        let recorded = join_all(self.config.targets.iter().zip(&results).map(|(t, r)| self.record(t, r, now))).await;
        let mut alerts = Vec::new();
        let mut problems = Vec::new();
        for (target, outcome) in self.config.targets.iter().zip(recorded) {
            match outcome {
                Ok(titles) => alerts.extend(titles),
                Err(err) => problems.push(format!("{}: {err}", target.name)),
            }
        }
        for result in &results {
            target_metrics(&result.target, result.up(), result.latency_ms).emit();
        }
        heartbeat_metrics().emit();
        let summary = RunSummary {
            checked: results.len(),
            up: results.iter().filter(|r| r.up()).count(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            results,
            alerts,
        };
        tracing::info!(checked = summary.checked, up = summary.up, ms = summary.elapsed_ms, "health run done");
        if problems.is_empty() { Ok(summary) } else { Err(HealthError::Incomplete(problems)) }
    }

    /// Folds one result into the target's state; alerts only after this run's write won.
    pub async fn record(
        &self,
        target: &Target,
        result: &CheckResult,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, HealthError> {
        let thresholds = Thresholds {
            failures: self.config.failure_threshold,
            successes: self.config.success_threshold,
            reminder_secs: self.config.reminder.as_secs() as i64,
            window_secs: self.config.latency_window.as_secs() as i64,
            tls_warn_days: self.config.tls_warn_days,
            slo: self.config.slo,
        };
        let pk = target_key(&target.name);
        let expires = now.timestamp() + 90 * DAY;
        let committed = state::update(&self.state, (&pk, STATE_SK), expires, WRITE_ATTEMPTS, |before: &TargetState| {
            let mut after = before.clone();
            let transitions = apply(&mut after, result, target, now.timestamp(), &thresholds);
            (after, transitions)
        })
        .await?
        .ok_or_else(|| HealthError::Contended(target.name.clone()))?;
        // The judgement the transitions were decided on, over the committed history.
        if let Some(objective) = committed.after.objective {
            let judgement = slo::judge(&committed.after.history, objective, &self.config.slo);
            budget_metrics(&target.name, judgement.budget_left).emit();
        }

        let day = day_sk(now.date_naive());
        let counters = [("checks", 1), ("up", i64::from(result.up()))];
        self.state.increment(&pk, &day, &counters, now.timestamp() + self.config.availability_days * DAY).await?;

        let mut titles = Vec::new();
        for transition in &committed.decision {
            let alert = self.alert_for(target, result, transition);
            if let Err(err) = self.alerts.publish(&alert).await {
                // Put the state back so the next run sees the change again and re-alerts.
                if let Err(rollback) = state::roll_back(&self.state, (&pk, STATE_SK), expires, &committed).await {
                    let name = &target.name;
                    tracing::error!(target = %name, error = %rollback, "could not roll back after a failed alert");
                }
                return Err(err.into());
            }
            titles.push(alert.title);
        }
        Ok(titles)
    }

    /// The error budget's alert: critical while it burns fast (it pages), a warning while it
    /// burns slowly, resolved once it stops.
    fn budget_alert(&self, target: &Target, where_: &str, judgement: &Judgement) -> Alert {
        let name = &target.name;
        let slo = &self.config.slo;
        let objective = target.objective().unwrap_or_default() * 100.0;
        let (severity, title, rule) = match judgement.level {
            BurnLevel::Fast => (Severity::Critical, format!("{name} burns its error budget fast"), slo.fast),
            BurnLevel::Slow => (Severity::Warning, format!("{name} burns its error budget"), slo.slow),
            BurnLevel::Within => (Severity::Warning, format!("{name} is within its error budget again"), slo.fast),
        };
        let days = slo.window_days;
        let budget = format!(
            "availability over {days} days is {:.3} % against an objective of {objective} %; \
             {:.0} % of the budget is left",
            judgement.availability * 100.0,
            judgement.budget_left * 100.0
        );
        let summary = match (judgement.level, judgement.hours_to_exhaustion) {
            (BurnLevel::Within, _) => format!("{name} ({where_}) no longer burns its error budget: {budget}."),
            (_, hours) => format!(
                "{name} ({where_}) fails {:.1} times as often as its objective allows over the last {} minutes \
                 (alert at {}x); {budget}{}.",
                judgement.burn_rate,
                rule.long_minutes,
                rule.burn_rate,
                hours.map(|h| format!("; at this rate the budget is gone in {h:.0} hours")).unwrap_or_default()
            ),
        };
        Alert::new(SOURCE, severity, format!("{SOURCE}:{name}:slo"), title)
            .summary(summary)
            .detail("objective_percent", objective)
            .detail("availability_percent", (judgement.availability * 100_000.0).round() / 1000.0)
            .detail("budget_left_percent", (judgement.budget_left * 1000.0).round() / 10.0)
            .detail("burn_rate", (judgement.burn_rate * 10.0).round() / 10.0)
    }

    /// The latency alert at `level`, or its resolution when there is none.
    fn latency_alert(&self, target: &Target, where_: &str, level: Option<LatencyLevel>, p95_ms: u64) -> Alert {
        let name = &target.name;
        let key = format!("{SOURCE}:{name}:latency");
        let Some(level) = level else {
            return Alert::new(SOURCE, Severity::Warning, key, format!("{name} latency is back to normal"))
                .resolved()
                .summary(format!("{name} ({where_}) P95 is {p95_ms} ms again."))
                .detail("p95_ms", p95_ms);
        };
        let severity = if level == LatencyLevel::Critical { Severity::Critical } else { Severity::Warning };
        Alert::new(SOURCE, severity, key, format!("{name} is slow: P95 {p95_ms} ms"))
            .summary(format!(
                "{name} ({where_}) answers slowly: P95 {p95_ms} ms over {} min \
                 (warning above {} ms, critical above {} ms).",
                self.config.latency_window.as_secs() / 60,
                target.warn_ms,
                target.critical_ms
            ))
            .detail("p95_ms", p95_ms)
    }

    fn alert_for(&self, target: &Target, result: &CheckResult, transition: &Transition) -> Alert {
        let name = &target.name;
        let where_ = match &target.probe {
            Probe::Http { url, .. } => url.clone(),
            Probe::Postgres { secret_arn } => format!("database from secret {secret_arn}"),
        };
        let availability = format!("{SOURCE}:{name}");
        let alert = match transition {
            Transition::Down { since, failures, error } => {
                Alert::new(SOURCE, Severity::Critical, availability, format!("{name} is down"))
                    .summary(format!(
                        "{name} ({where_}) failed {failures} checks in a row since {}: {error}",
                        at(*since)
                    ))
                    .detail("failures", *failures)
                    .detail("since", at(*since))
            }
            Transition::StillDown { since, error } => {
                Alert::new(SOURCE, Severity::Critical, availability, format!("{name} is still down"))
                    .summary(format!(
                        "{name} ({where_}) has been down for {} (since {}): {error}",
                        duration(Utc::now().timestamp() - since),
                        at(*since)
                    ))
                    .detail("since", at(*since))
            }
            Transition::Recovered { since, down_for_secs } => {
                Alert::new(SOURCE, Severity::Critical, availability, format!("{name} recovered"))
                    .resolved()
                    .summary(format!(
                        "{name} ({where_}) is back up after being down for {} (since {}).",
                        duration(*down_for_secs),
                        at(*since)
                    ))
                    .detail("down_for_seconds", *down_for_secs)
                    .detail("since", at(*since))
            }
            Transition::Latency { level, p95_ms } => self.latency_alert(target, &where_, Some(*level), *p95_ms),
            Transition::LatencyResolved { p95_ms } => self.latency_alert(target, &where_, None, *p95_ms),
            Transition::CertificateExpiring { days_left } => Alert::new(
                SOURCE,
                Severity::Warning,
                format!("{SOURCE}:{name}:tls"),
                format!("{name} certificate expires in {days_left} days"),
            )
            .summary(format!("The TLS certificate of {where_} expires in {days_left} days; renew it."))
            .detail("days_left", *days_left),
            Transition::BudgetBurn(judgement) => self.budget_alert(target, &where_, judgement),
            Transition::BudgetBurnStopped(judgement) => self.budget_alert(target, &where_, judgement).resolved(),
        };
        let alert = alert
            .detail("target", name.clone())
            .detail("latency_ms", result.latency_ms)
            .detail("last_result", result.detail.clone());
        match &target.probe {
            Probe::Http { url, .. } => alert.link("target", url.clone()),
            Probe::Postgres { .. } => alert,
        }
    }
}

fn at(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0).map(ops_shared::alert::rfc3339).unwrap_or_else(|| epoch.to_string())
}

/// `1h 05m`, `4m 10s`, `12s`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}
