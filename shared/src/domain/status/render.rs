//! The status as one screen of plain text.

use super::{SentryLine, Status};
use crate::domain::sentry_numbers::Issue;

const TIME: &str = "%Y-%m-%d %H:%M UTC";

impl Status {
    /// One screen of plain text (also the daily e-mail's body).
    pub fn render(&self) -> String {
        let mut out = format!("CineView ops status at {}\n", self.generated_at.format("%Y-%m-%d %H:%M UTC"));
        self.render_sentry(&mut out);
        self.render_health(&mut out);
        self.render_backups(&mut out);
        self.render_secrets(&mut out);
        self.render_alerts(&mut out);
        footer(&mut out, &self.unreadable, self.verdict());
        out
    }

    fn render_sentry(&self, out: &mut String) {
        out.push_str(
            "\nSentry, the app's past 24 h (error rate: warning above 2 %, critical above 5 %; P95 as below)\n",
        );
        match &self.sentry {
            SentryLine::Read(day) => {
                let t = &day.transactions;
                out.push_str(&format!(
                    "  {:<8} error rate {}, P95 {}, {} transactions\n",
                    day.verdict.label(),
                    t.failure_rate.map_or("-".to_owned(), |r| format!("{:.2} %", r * 100.0)),
                    t.p95_ms.map_or("-".to_owned(), |ms| format!("{ms:.0} ms")),
                    t.count
                ));
                issue_lines(out, "new", &day.new_issues);
                issue_lines(out, "escalating", &day.escalating);
            }
            SentryLine::NotConfigured { fix } => out.push_str(&format!("  WARNING  not configured: {fix}\n")),
            SentryLine::Unreadable => out.push_str("  could not be read (below)\n"),
        }
    }

    fn render_health(&self, out: &mut String) {
        out.push_str("\nHealth (P95 over 5 min: warning above 1500 ms, critical above 3000 ms)\n");
        if self.targets.is_empty() {
            out.push_str("  no health state recorded yet\n");
        }
        for t in &self.targets {
            let state = match t.down_since {
                _ if t.up => "up".to_owned(),
                Some(since) => format!("DOWN since {}", since.format("%Y-%m-%d %H:%M")),
                None => "DOWN".to_owned(),
            };
            let p95 = t.p95_ms_5min.map_or("-".to_owned(), |ms| format!("{ms} ms"));
            let slo = match (t.objective, t.budget_left) {
                (Some(objective), Some(left)) => {
                    format!(", objective {:.1} %, {:.0} % of budget left", objective * 100.0, left * 100.0)
                }
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {:<8} {:<12} {:<14} P95 {p95:<8} today {} 30 days {}{slo}\n",
                t.verdict.label(),
                t.name,
                state,
                percent(t.availability_today),
                percent(t.availability_30d),
            ));
        }
    }

    fn render_backups(&self, out: &mut String) {
        out.push_str("\nBackups (RPO 24 h, RTO 30 min)\n");
        match &self.backup {
            Some(b) => out.push_str(&format!(
                "  {:<8} newest {:.1} h old, {:.1} MB, {} tables, {} rows{} ({})\n",
                b.verdict.label(),
                b.age_hours,
                b.size_bytes as f64 / 1e6,
                b.tables,
                b.rows,
                b.label.as_ref().map(|l| format!(", label {l}")).unwrap_or_default(),
                b.key
            )),
            None => out.push_str("  CRITICAL no backup found\n"),
        }
        match &self.restore_test {
            Some(r) => out.push_str(&format!(
                "  {:<8} restore test {} on {}, RTO {:.1} min ({})\n",
                r.verdict.label(),
                r.result,
                r.verified_at.format("%Y-%m-%d"),
                r.rto_minutes,
                r.backup_key
            )),
            None => out.push_str("  WARNING  no restore test yet\n"),
        }
    }

    fn render_secrets(&self, out: &mut String) {
        out.push_str("\nSecrets (rotation: 90 days critical, 180 days API keys)\n");
        for s in &self.secrets {
            let last = s.last_rotated.map_or("never".to_owned(), |at| at.format("%Y-%m-%d").to_string());
            let next = s.next_rotation.map_or("-".to_owned(), |at| at.format("%Y-%m-%d").to_string());
            let left = s.days_left.map_or("-".to_owned(), |d| format!("{d} days left of {}", s.max_days));
            out.push_str(&format!("  {:<8} {:<32} last {last}, next {next}, {left}\n", s.verdict.label(), s.name));
        }
    }

    fn render_alerts(&self, out: &mut String) {
        out.push_str("\nAlerts (the runbook: no critical alerts in the past 24 hours)\n");
        if let Some(a) = &self.alerts {
            let counts: Vec<String> = a.last_24h.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
            let counts = if counts.is_empty() { "none".to_owned() } else { counts.join(", ") };
            out.push_str(&format!("  {:<8} past 24 h: {counts}\n", a.verdict.label()));
            for (key, at) in &a.critical_24h {
                out.push_str(&format!("           critical: {key}, last sent {}\n", at.format(TIME)));
            }
            for (key, severity) in &a.firing {
                out.push_str(&format!("           still firing: {key} ({})\n", severity.as_str()));
            }
        }
        for event in &self.alarmed_24h {
            out.push_str(&format!(
                "  CRITICAL alarm {} went to ALARM at {} (straight to ops): {}\n",
                event.name,
                event.at.format(TIME),
                event.summary
            ));
        }
        for alarm in &self.alarms {
            out.push_str(&format!("  CRITICAL alarm {} in ALARM: {}\n", alarm.name, alarm.reason));
        }
        for silence in &self.silences {
            let until = chrono::DateTime::from_timestamp(silence.ends_at, 0).map(|t| t.format(TIME).to_string());
            out.push_str(&format!(
                "           silenced until {}: {} ({}, \"{}\" by {}), {} held back\n",
                until.unwrap_or_default(),
                silence.matchers_text(),
                silence.id,
                silence.reason,
                silence.created_by,
                silence.held_count
            ));
        }
    }
}

/// What could not be read, and the verdict: a report's last lines.
pub(crate) fn footer(out: &mut String, unreadable: &[String], verdict: super::Verdict) {
    for problem in unreadable {
        out.push_str(&format!("\nCANNOT READ {problem}\n"));
    }
    out.push_str(&format!("\nVerdict: {}\n", verdict.label()));
}

/// Issues of one kind, one line each, or that there are none.
pub(crate) fn issue_lines(out: &mut String, kind: &str, issues: &[Issue]) {
    if issues.is_empty() {
        out.push_str(&format!("           {kind} issues: none\n"));
    }
    for issue in issues {
        out.push_str(&format!(
            "           {kind}: {} {} ({} events, {} users) {}\n",
            issue.short_id, issue.title, issue.events, issue.users, issue.permalink
        ));
    }
}

pub(crate) fn percent(fraction: Option<f64>) -> String {
    fraction.map_or("-".to_owned(), |f| format!("{:.2} %", f * 100.0))
}
