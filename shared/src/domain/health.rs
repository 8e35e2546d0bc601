//! What health-checker records per target in the state table, read back by `opsctl status`:
//! the target's state document and its per-day availability counters.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::slo::{BurnLevel, History};

/// The state table key of a target's records.
pub fn target_key(target: &str) -> String {
    format!("health-checker#{target}")
}

/// The sort key of the target's state document.
pub const STATE_SK: &str = "state";

/// The sort key of a day's counters (`checks`, `up`).
pub fn day_sk(day: NaiveDate) -> String {
    format!("day#{}", day.format("%Y-%m-%d"))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyLevel {
    #[default]
    Normal,
    Warning,
    Critical,
}

/// What the state table keeps per target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetState {
    pub down: bool,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// When the current run of failures began (epoch seconds).
    pub failing_since: Option<i64>,
    /// When the target was declared down.
    pub down_since: Option<i64>,
    pub last_notified: Option<i64>,
    pub last_error: Option<String>,
    /// (epoch seconds, milliseconds) of successful checks inside the latency window.
    pub latencies: Vec<(i64, u64)>,
    pub latency_level: LatencyLevel,
    pub tls_warned: bool,
    /// The availability objective (fraction) the target is judged against, if it has one.
    pub objective: Option<f64>,
    /// Check counts for the availability objective (targets with one only).
    pub history: History,
    pub burn_level: BurnLevel,
}

/// Nearest-rank 95th percentile.
pub fn p95(samples: &[u64]) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (0.95 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}
