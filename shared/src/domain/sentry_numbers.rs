//! What Sentry says about the app over a period: its transactions' failure rate and P95, its
//! error events, and its issues (new, regressed, escalating, the most frequent), judged against
//! the runbook's numbers ("Sentry error rate < 2%", "P95 < 1500ms").

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::status::verdict::{P95_CRITICAL_MS, P95_WARN_MS, Verdict};

/// The runbook's error-rate lines: under 2 % is as it should be, above 5 % is critical.
pub const ERROR_RATE_WARN: f64 = 0.02;
pub const ERROR_RATE_CRITICAL: f64 = 0.05;

/// From `start` (included) to `end` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The app's transactions over a period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Transactions {
    pub count: u64,
    /// Failed transactions over all (a fraction of 1); `None` without transactions.
    pub failure_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

impl Transactions {
    pub fn verdict(&self) -> Verdict {
        self.error_verdict().max(self.latency_verdict())
    }

    /// The failure rate against the runbook's 2 % and 5 %.
    pub fn error_verdict(&self) -> Verdict {
        match self.failure_rate {
            Some(rate) if rate > ERROR_RATE_CRITICAL => Verdict::Critical,
            Some(rate) if rate > ERROR_RATE_WARN => Verdict::Warning,
            Some(_) => Verdict::Ok,
            // No transaction at all: the app is not traced, or not used; either way unanswered.
            None => Verdict::Warning,
        }
    }

    /// The P95 against the runbook's 1500 and 3000 ms.
    pub fn latency_verdict(&self) -> Verdict {
        match self.p95_ms {
            Some(ms) if ms > P95_CRITICAL_MS as f64 => Verdict::Critical,
            Some(ms) if ms > P95_WARN_MS as f64 => Verdict::Warning,
            _ => Verdict::Ok,
        }
    }
}

/// A Sentry issue, as the digest and status list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub short_id: String,
    pub title: String,
    pub culprit: Option<String>,
    pub level: String,
    /// Events of the issue in the period asked about.
    pub events: u64,
    pub users: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub substatus: Option<String>,
    pub permalink: String,
}

/// Which issues to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueFilter {
    /// Unresolved, first seen in the period.
    New,
    /// Unresolved, seen in the period, come back after being resolved.
    Regressed,
    /// Unresolved, seen in the period, with more events than they used to have.
    Escalating,
    /// Unresolved, seen in the period, the most frequent first.
    Frequent,
}

/// Why Sentry's numbers could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentryUnavailable {
    /// No read settings: the operator has not set Sentry up for the status.
    #[error("not configured: {fix}")]
    NotConfigured { fix: String },
    #[error("{0}")]
    Failed(String),
}

/// Sentry's numbers for the app's project and environment.
pub trait SentryStats {
    fn transactions(&self, period: Period) -> impl Future<Output = Result<Transactions, SentryUnavailable>> + Send;

    /// Error events (not transactions) in the period.
    fn error_events(&self, period: Period) -> impl Future<Output = Result<u64, SentryUnavailable>> + Send;

    /// Up to `limit` issues, the most events in the period first.
    fn issues(
        &self,
        period: Period,
        filter: IssueFilter,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Issue>, SentryUnavailable>> + Send;
}

/// The status screen's Sentry line: the past 24 hours.
#[derive(Debug, Clone, Serialize)]
pub struct SentryDay {
    pub transactions: Transactions,
    pub new_issues: Vec<Issue>,
    pub escalating: Vec<Issue>,
    pub verdict: Verdict,
}

/// Issues of each kind the status lists.
pub const TOP_ISSUES: usize = 5;
/// How long a report waits for all of Sentry's answers: a slow Sentry must not take the rest of
/// the report (and the function's time) with it.
pub const SENTRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// `read`, or `Failed` once `SENTRY_BUDGET` has passed.
pub async fn within_budget<T>(
    read: impl Future<Output = Result<T, SentryUnavailable>>,
) -> Result<T, SentryUnavailable> {
    tokio::time::timeout(SENTRY_BUDGET, read).await.unwrap_or_else(|_| {
        Err(SentryUnavailable::Failed(format!("Sentry did not answer within {} s", SENTRY_BUDGET.as_secs())))
    })
}

/// Sentry's numbers of the day before `now`.
pub async fn day(sentry: &impl SentryStats, now: DateTime<Utc>) -> Result<SentryDay, SentryUnavailable> {
    within_budget(async {
        let period = Period { start: now - chrono::Duration::hours(24), end: now };
        let transactions = sentry.transactions(period).await?;
        let new_issues = sentry.issues(period, IssueFilter::New, TOP_ISSUES).await?;
        let escalating = sentry.issues(period, IssueFilter::Escalating, TOP_ISSUES).await?;
        Ok(SentryDay { verdict: transactions.verdict(), transactions, new_issues, escalating })
    })
    .await
}
