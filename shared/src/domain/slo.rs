//! Availability judged as a service level objective. A target with an objective (the AI
//! engine's is 99.5 % over 30 days) alerts on the rate at which it burns its error budget, in
//! two tiers as the SRE workbook's multi-window burn-rate alerts: a fast burn over a short
//! window pages (the budget would be gone within days), a slow burn over a long window warns
//! (a leak that would use up the month's budget). Each tier needs its long and its short window
//! both above the rate, so an alert stops soon after the burning stops.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Checks are counted in buckets of this many seconds for the burn windows.
pub(crate) const BUCKET_SECS: i64 = 300;
const DAY_SECS: i64 = 86_400;

/// One burn-rate alert: the budget burns at least `burn_rate` times the sustainable rate over
/// both windows.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRule {
    pub long_minutes: u32,
    pub short_minutes: u32,
    pub burn_rate: f64,
}

/// The objective's window and its two burn-rate tiers (`SLO_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloPolicy {
    pub window_days: u32,
    /// Pages: at 14.4x, 2 % of a 30-day budget goes in an hour and all of it in about 2 days.
    pub fast: BurnRule,
    /// Warns: at 1x over 3 days, the month's budget would be used up by the month's end.
    pub slow: BurnRule,
}

impl Default for SloPolicy {
    fn default() -> Self {
        SloPolicy {
            window_days: 30,
            fast: BurnRule { long_minutes: 60, short_minutes: 5, burn_rate: 14.4 },
            slow: BurnRule { long_minutes: 3 * 24 * 60, short_minutes: 6 * 60, burn_rate: 1.0 },
        }
    }
}

impl SloPolicy {
    /// What makes no sense, if anything.
    pub fn problem(&self) -> Option<String> {
        if !(1..=90).contains(&self.window_days) {
            return Some(format!("window_days is {}, expected 1 to 90", self.window_days));
        }
        for (tier, rule) in [("fast", self.fast), ("slow", self.slow)] {
            let longest = self.window_days * 24 * 60;
            let sane = rule.short_minutes >= 5
                && rule.short_minutes < rule.long_minutes
                && rule.long_minutes <= longest
                && rule.burn_rate > 0.0;
            if !sane {
                return Some(format!(
                    "{tier}: expected 5 <= short_minutes < long_minutes <= window_days in minutes and burn_rate > 0"
                ));
            }
        }
        None
    }

    fn recent_buckets(&self) -> usize {
        (self.fast.long_minutes.max(self.slow.long_minutes) as i64 * 60 / BUCKET_SECS) as usize
    }
}

/// `(checks, failures)` of one bucket.
type Counts = (u32, u32);

/// Check counts kept in the target's state: 5-minute buckets over the longest burn window, and
/// days over the objective's window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    /// Start of the newest 5-minute bucket (epoch seconds).
    pub bucket: i64,
    /// Oldest first; the last is the bucket starting at `bucket`.
    pub recent: VecDeque<Counts>,
    /// Start of the newest day (epoch seconds, UTC midnight).
    pub day: i64,
    pub daily: VecDeque<Counts>,
}

impl History {
    pub fn record(&mut self, now: i64, up: bool, policy: &SloPolicy) {
        let failed = u32::from(!up);
        let (recent, days) = (policy.recent_buckets(), policy.window_days as usize);
        advance(&mut self.recent, &mut self.bucket, now - now.rem_euclid(BUCKET_SECS), BUCKET_SECS, recent);
        advance(&mut self.daily, &mut self.day, now - now.rem_euclid(DAY_SECS), DAY_SECS, days);
        for counts in [self.recent.back_mut(), self.daily.back_mut()].into_iter().flatten() {
            counts.0 += 1;
            counts.1 += failed;
        }
        trim(&mut self.recent, recent);
        trim(&mut self.daily, days);
    }

    /// Checks and failures in the last `minutes`.
    fn recent_counts(&self, minutes: u32) -> Counts {
        let buckets = (i64::from(minutes) * 60 / BUCKET_SECS).max(1) as usize;
        sum(self.recent.iter().rev().take(buckets))
    }

    /// Availability over the objective's window, as a fraction, if anything was checked.
    pub fn availability(&self) -> Option<f64> {
        let (checks, failures) = sum(self.daily.iter());
        (checks > 0).then(|| 1.0 - f64::from(failures) / f64::from(checks))
    }
}

/// Moves the newest bucket to `start`, adding empty buckets for the time nothing was checked.
/// A check stamped before the newest bucket (a clock behind by a little) counts into it.
fn advance(buckets: &mut VecDeque<Counts>, newest: &mut i64, start: i64, width: i64, keep: usize) {
    let gap = (start - *newest) / width;
    if buckets.is_empty() || gap >= keep as i64 {
        buckets.clear();
        buckets.push_back((0, 0));
        *newest = start;
    } else if gap > 0 {
        buckets.extend(std::iter::repeat_n((0, 0), gap as usize));
        *newest = start;
    }
}

fn trim(buckets: &mut VecDeque<Counts>, keep: usize) {
    while buckets.len() > keep.max(1) {
        buckets.pop_front();
    }
}

fn sum<'a>(buckets: impl Iterator<Item = &'a Counts>) -> Counts {
    buckets.fold((0, 0), |(c, f), (checks, failures)| (c + checks, f + failures))
}

/// How fast the budget burns: the SLO's tier now reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BurnLevel {
    #[default]
    Within,
    Slow,
    Fast,
}

/// The judgement of one target's SLO after a check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub level: BurnLevel,
    /// Burn rate over the long window of the tier reached (the fast tier's when within).
    pub burn_rate: f64,
    /// Availability over the objective's window (fraction).
    pub availability: f64,
    /// Error budget left over the objective's window (fraction of the budget, may be negative).
    pub budget_left: f64,
    /// Hours until the budget left is gone at `burn_rate`, if it burns at all.
    pub hours_to_exhaustion: Option<f64>,
}

/// The share of the error budget not used (may be negative) at `availability` against
/// `objective`, both fractions.
pub fn budget_left(availability: f64, objective: f64) -> f64 {
    1.0 - (1.0 - availability) / (1.0 - objective)
}

/// Judges `history` against `objective` (a fraction, 0.995).
pub fn judge(history: &History, objective: f64, policy: &SloPolicy) -> Judgement {
    let budget = 1.0 - objective;
    // Checks run once a minute: a window is divided by at least its minutes, so the first
    // failures after a deploy (or after a gap) are not taken for a whole window's rate.
    let rate = |minutes: u32| {
        let (checks, failures) = history.recent_counts(minutes);
        f64::from(failures) / f64::from(checks.max(minutes)) / budget
    };
    let burning = |rule: &BurnRule| {
        let long = rate(rule.long_minutes);
        (long >= rule.burn_rate && rate(rule.short_minutes) >= rule.burn_rate).then_some(long)
    };
    let (level, burn_rate) = match (burning(&policy.fast), burning(&policy.slow)) {
        (Some(long), _) => (BurnLevel::Fast, long),
        (None, Some(long)) => (BurnLevel::Slow, long),
        (None, None) => (BurnLevel::Within, rate(policy.fast.long_minutes)),
    };
    let availability = history.availability().unwrap_or(1.0);
    let budget_left = budget_left(availability, objective);
    let window_hours = f64::from(policy.window_days) * 24.0;
    let hours_to_exhaustion = (burn_rate > 0.0).then(|| (budget_left.max(0.0) * window_hours / burn_rate).max(0.0));
    Judgement { level, burn_rate, availability, budget_left, hours_to_exhaustion }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECTIVE: f64 = 0.995;
    const MINUTE: i64 = 60;

    /// One check a minute from `start` for `minutes`, failing where `fails(minute)` says.
    fn checks(history: &mut History, start: i64, minutes: i64, fails: impl Fn(i64) -> bool) -> Vec<BurnLevel> {
        let policy = SloPolicy::default();
        (0..minutes)
            .map(|m| {
                history.record(start + m * MINUTE, !fails(m), &policy);
                judge(history, OBJECTIVE, &policy).level
            })
            .collect()
    }

    #[test]
    fn a_healthy_month_never_alerts_and_keeps_its_budget() {
        let mut history = History::default();
        // One failed check every 12 hours: 0.14 % of checks, well inside 0.5 %.
        let levels = checks(&mut history, 0, 30 * 24 * 60, |m| m % 720 == 0);
        assert!(levels.iter().all(|l| *l == BurnLevel::Within));
        let judgement = judge(&history, OBJECTIVE, &SloPolicy::default());
        assert!(judgement.availability > 0.998 && judgement.budget_left > 0.7, "{judgement:?}");
        assert_eq!(history.daily.len(), 30);
        assert_eq!(history.recent.len(), 3 * 24 * 12, "5-minute buckets over the slow window only");
    }

    #[test]
    fn a_burst_outage_pages_within_minutes_and_stops_soon_after() {
        let mut history = History::default();
        let day = 24 * 60;
        checks(&mut history, 0, day, |_| false);
        // 20 minutes down.
        let levels = checks(&mut history, day * MINUTE, 20, |_| true);
        let paged_at = levels.iter().position(|l| *l == BurnLevel::Fast).expect("pages");
        assert!(paged_at < 10, "paged after {paged_at} minutes");
        let judgement = judge(&history, OBJECTIVE, &SloPolicy::default());
        assert!(judgement.hours_to_exhaustion.is_some_and(|h| h < 48.0), "{judgement:?}");
        // Back up: the short window clears within its 5 minutes.
        let after = checks(&mut history, (day + 20) * MINUTE, 30, |_| false);
        let cleared = after.iter().position(|l| *l != BurnLevel::Fast).expect("clears");
        assert!(cleared <= 6, "still paging {cleared} minutes after the outage");
    }

    #[test]
    fn a_slow_leak_warns_without_paging() {
        let mut history = History::default();
        // 1 check in 80 fails (1.25 %): 2.5x the budget's rate, far below a page.
        let levels = checks(&mut history, 0, 4 * 24 * 60, |m| m % 80 == 0);
        assert!(!levels.contains(&BurnLevel::Fast), "a slow leak must not page");
        assert_eq!(levels.last(), Some(&BurnLevel::Slow), "but it warns");
        let first_warning = levels.iter().position(|l| *l == BurnLevel::Slow).expect("warns");
        assert!(first_warning >= 6 * 60, "not before the short window has seen it: {first_warning}");
    }

    #[test]
    fn a_few_checks_are_no_trend() {
        let mut history = History::default();
        let levels = checks(&mut history, 0, 3, |_| true);
        assert!(levels.iter().all(|l| *l == BurnLevel::Within), "{levels:?}");
    }

    #[test]
    fn a_gap_in_checks_leaves_empty_buckets_and_a_gap_past_the_windows_starts_over() {
        let mut history = History::default();
        let policy = SloPolicy::default();
        history.record(0, true, &policy);
        history.record(3 * BUCKET_SECS, false, &policy);
        assert_eq!(history.recent, VecDeque::from([(1, 0), (0, 0), (0, 0), (1, 1)]));
        history.record(3 * BUCKET_SECS - 1, true, &policy);
        assert_eq!(history.recent.back(), Some(&(2, 1)), "a clock a little behind counts into the newest");
        history.record(4 * DAY_SECS, true, &policy);
        assert_eq!(history.recent, VecDeque::from([(1, 0)]));
        assert_eq!(history.daily, VecDeque::from([(3, 1), (0, 0), (0, 0), (0, 0), (1, 0)]));
    }

    #[test]
    fn policies_that_make_no_sense_are_refused() {
        assert_eq!(SloPolicy::default().problem(), None);
        let mut policy = SloPolicy::default();
        policy.fast.short_minutes = 90;
        assert!(policy.problem().is_some_and(|p| p.starts_with("fast")));
        let policy = SloPolicy { window_days: 0, ..SloPolicy::default() };
        assert!(policy.problem().is_some());
    }
}
