//! Per-target state and what a new check result changes: Gatus-style thresholds (alert after
//! N failures, resolve after M successes), reminders while down, latency P95 levels.

use ops_shared::health::{LatencyLevel, TargetState, p95};
use ops_shared::slo::{self, BurnLevel, Judgement, SloPolicy};

use crate::check::CheckResult;
use crate::config::Target;

#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Down {
        since: i64,
        failures: u32,
        error: String,
    },
    StillDown {
        since: i64,
        error: String,
    },
    Recovered {
        since: i64,
        down_for_secs: i64,
    },
    Latency {
        level: LatencyLevel,
        p95_ms: u64,
    },
    LatencyResolved {
        p95_ms: u64,
    },
    CertificateExpiring {
        days_left: i64,
    },
    /// The error budget burns at a tier's rate (`level` is never `Within`).
    BudgetBurn(Judgement),
    /// It no longer does.
    BudgetBurnStopped(Judgement),
}

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub failures: u32,
    pub successes: u32,
    pub reminder_secs: i64,
    pub window_secs: i64,
    pub tls_warn_days: i64,
    pub slo: SloPolicy,
}

/// Fewer samples than this in the window never raise a latency alert (one slow answer is noise).
pub const MIN_LATENCY_SAMPLES: usize = 3;

/// Folds one check result into the target's state; what changed, in the order ops read it.
pub fn apply(
    state: &mut TargetState,
    result: &CheckResult,
    target: &Target,
    now: i64,
    t: &Thresholds,
) -> Vec<Transition> {
    let mut out = Vec::new();
    out.extend(availability(state, result, now, t));
    out.extend(latency(state, result, target, now, t));
    out.extend(budget(state, result, target, now, t));
    out.extend(certificate(state, result, t));
    out
}

/// Down after `failures` failures in a row, recovered after `successes` successes, reminded
/// every `reminder_secs` while down.
fn availability(state: &mut TargetState, result: &CheckResult, now: i64, t: &Thresholds) -> Option<Transition> {
    if result.up() {
        state.consecutive_successes += 1;
        state.consecutive_failures = 0;
        state.failing_since = None;
        if state.down && state.consecutive_successes >= t.successes {
            let since = state.down_since.unwrap_or(now);
            state.down = false;
            state.down_since = None;
            state.last_notified = Some(now);
            return Some(Transition::Recovered { since, down_for_secs: now - since });
        }
        return None;
    }
    state.consecutive_failures += 1;
    state.consecutive_successes = 0;
    let since = *state.failing_since.get_or_insert(now);
    state.last_error = Some(result.detail.clone());
    if !state.down && state.consecutive_failures >= t.failures {
        state.down = true;
        state.down_since = Some(since);
        state.last_notified = Some(now);
        Some(Transition::Down { since, failures: state.consecutive_failures, error: result.detail.clone() })
    } else if state.down && state.last_notified.is_none_or(|at| now - at >= t.reminder_secs) {
        state.last_notified = Some(now);
        Some(Transition::StillDown { since: state.down_since.unwrap_or(since), error: result.detail.clone() })
    } else {
        None
    }
}

/// The P95 of the successful answers in the window against the target's thresholds.
fn latency(
    state: &mut TargetState,
    result: &CheckResult,
    target: &Target,
    now: i64,
    t: &Thresholds,
) -> Option<Transition> {
    if result.up() {
        state.latencies.push((now, result.latency_ms));
    }
    state.latencies.retain(|(at, _)| now - at < t.window_secs);
    let samples: Vec<u64> = state.latencies.iter().map(|(_, ms)| *ms).collect();
    if samples.len() < MIN_LATENCY_SAMPLES {
        return None;
    }
    let p95_ms = p95(&samples)?;
    let level = if p95_ms > target.critical_ms {
        LatencyLevel::Critical
    } else if p95_ms > target.warn_ms {
        LatencyLevel::Warning
    } else {
        LatencyLevel::Normal
    };
    let previous = std::mem::replace(&mut state.latency_level, level);
    // Critical easing to warning stays quiet; only a return to normal resolves.
    if level > previous {
        Some(Transition::Latency { level, p95_ms })
    } else if level == LatencyLevel::Normal && previous != LatencyLevel::Normal {
        Some(Transition::LatencyResolved { p95_ms })
    } else {
        None
    }
}

/// The availability objective's error budget, for targets that have one.
fn budget(
    state: &mut TargetState,
    result: &CheckResult,
    target: &Target,
    now: i64,
    t: &Thresholds,
) -> Option<Transition> {
    state.objective = target.objective();
    let objective = state.objective?;
    state.history.record(now, result.up(), &t.slo);
    let judgement = slo::judge(&state.history, objective, &t.slo);
    let previous = std::mem::replace(&mut state.burn_level, judgement.level);
    // A fast burn easing to a slow one stays quiet, as latency does.
    if judgement.level > previous {
        Some(Transition::BudgetBurn(judgement))
    } else if judgement.level == BurnLevel::Within && previous != BurnLevel::Within {
        Some(Transition::BudgetBurnStopped(judgement))
    } else {
        None
    }
}

/// A certificate closer to expiry than `tls_warn_days`, once until it is renewed.
fn certificate(state: &mut TargetState, result: &CheckResult, t: &Thresholds) -> Option<Transition> {
    match result.tls_days_left {
        Some(days) if days < t.tls_warn_days && !state.tls_warned => {
            state.tls_warned = true;
            Some(Transition::CertificateExpiring { days_left: days })
        }
        Some(days) if days >= t.tls_warn_days => {
            state.tls_warned = false;
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Class;

    fn target() -> Target {
        serde_json::from_str(r#"{"name": "app", "kind": "http", "url": "http://x"}"#).expect("target")
    }

    fn result(class: Class, latency_ms: u64) -> CheckResult {
        CheckResult { target: "app".into(), class, latency_ms, detail: format!("{class:?}"), tls_days_left: None }
    }

    const T: Thresholds = Thresholds {
        failures: 3,
        successes: 2,
        reminder_secs: 3600,
        window_secs: 300,
        tls_warn_days: 14,
        slo: SloPolicy {
            window_days: 30,
            fast: slo::BurnRule { long_minutes: 60, short_minutes: 5, burn_rate: 14.4 },
            slow: slo::BurnRule { long_minutes: 4320, short_minutes: 360, burn_rate: 1.0 },
        },
    };

    fn run(state: &mut TargetState, steps: &[(Class, u64)], start: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for (i, (class, ms)) in steps.iter().enumerate() {
            out.extend(apply(state, &result(*class, *ms), &target(), start + 60 * i as i64, &T));
        }
        out
    }

    #[test]
    fn flapping_below_the_threshold_stays_silent() {
        let mut state = TargetState::default();
        let steps = [(Class::Failing, 10), (Class::Healthy, 10), (Class::Failing, 10), (Class::Healthy, 10)];
        assert!(run(&mut state, &steps, 0).is_empty());
    }

    #[test]
    fn three_failures_alert_once_and_two_successes_resolve_with_the_downtime() {
        let mut state = TargetState::default();
        let down = run(
            &mut state,
            &[(Class::Failing, 10), (Class::Hanging, 5000), (Class::TlsFailed, 10), (Class::Failing, 10)],
            0,
        );
        assert_eq!(down, vec![Transition::Down { since: 0, failures: 3, error: "TlsFailed".into() }]);
        let up = run(&mut state, &[(Class::Healthy, 10), (Class::Healthy, 10)], 240);
        assert_eq!(up, vec![Transition::Recovered { since: 0, down_for_secs: 300 }]);
    }

    #[test]
    fn reminders_come_at_the_interval_while_down() {
        let mut state = TargetState::default();
        let steps = vec![(Class::Failing, 10); 3 + 61];
        let transitions = run(&mut state, &steps, 0);
        assert!(matches!(transitions[0], Transition::Down { .. }));
        assert_eq!(transitions.iter().filter(|t| matches!(t, Transition::StillDown { .. })).count(), 1);
    }

    #[test]
    fn latency_p95_warns_escalates_and_resolves() {
        let mut state = TargetState::default();
        let slow = run(&mut state, &[(Class::Slow, 1800), (Class::Slow, 1800), (Class::Slow, 1800)], 0);
        assert_eq!(slow, vec![Transition::Latency { level: LatencyLevel::Warning, p95_ms: 1800 }]);
        let worse = run(&mut state, &[(Class::Slow, 3500)], 180);
        assert_eq!(worse, vec![Transition::Latency { level: LatencyLevel::Critical, p95_ms: 3500 }]);
        // The window slides past the slow samples.
        let fast = run(&mut state, &[(Class::Healthy, 100); 5], 600);
        assert!(fast.iter().any(|t| matches!(t, Transition::LatencyResolved { .. })), "{fast:?}");
        assert_eq!(state.latency_level, LatencyLevel::Normal);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        assert_eq!(p95(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100]), Some(19));
        assert_eq!(p95(&[7]), Some(7));
        assert_eq!(p95(&[]), None);
    }
}
