//! Sentry's numbers as given: the same answer for any period, or why there is none.

use crate::domain::sentry_numbers::{Issue, IssueFilter, Period, SentryStats, SentryUnavailable, Transactions};

#[derive(Debug, Clone)]
pub struct MemorySentry {
    pub answer: Result<MemorySentryNumbers, SentryUnavailable>,
}

#[derive(Debug, Clone)]
pub struct MemorySentryNumbers {
    pub transactions: Transactions,
    pub error_events: u64,
    pub new: Vec<Issue>,
    pub regressed: Vec<Issue>,
    pub escalating: Vec<Issue>,
    pub frequent: Vec<Issue>,
}

impl Default for MemorySentry {
    /// A quiet app: 10,000 transactions, 0.5 % failed, P95 400 ms, no issues.
    fn default() -> MemorySentry {
        MemorySentry {
            answer: Ok(MemorySentryNumbers {
                transactions: Transactions { count: 10_000, failure_rate: Some(0.005), p95_ms: Some(400.0) },
                error_events: 0,
                new: Vec::new(),
                regressed: Vec::new(),
                escalating: Vec::new(),
                frequent: Vec::new(),
            }),
        }
    }
}

impl MemorySentry {
    fn numbers(&self) -> Result<&MemorySentryNumbers, SentryUnavailable> {
        self.answer.as_ref().map_err(Clone::clone)
    }
}

impl SentryStats for MemorySentry {
    async fn transactions(&self, _: Period) -> Result<Transactions, SentryUnavailable> {
        Ok(self.numbers()?.transactions)
    }

    async fn error_events(&self, _: Period) -> Result<u64, SentryUnavailable> {
        Ok(self.numbers()?.error_events)
    }

    async fn issues(&self, _: Period, filter: IssueFilter, limit: usize) -> Result<Vec<Issue>, SentryUnavailable> {
        let numbers = self.numbers()?;
        let issues = match filter {
            IssueFilter::New => &numbers.new,
            IssueFilter::Regressed => &numbers.regressed,
            IssueFilter::Escalating => &numbers.escalating,
            IssueFilter::Frequent => &numbers.frequent,
        };
        Ok(issues.iter().take(limit).cloned().collect())
    }
}
