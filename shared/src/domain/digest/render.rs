//! The digest as plain text (also the weekly e-mail's body).

use super::{Digest, SentrySection, SentryWeek};
use crate::domain::sentry_numbers::Transactions;
use crate::domain::status::{P95_CRITICAL_MS, P95_WARN_MS, RPO_HOURS, RTO_MINUTES, footer, issue_lines, percent};

const TIME: &str = "%Y-%m-%d %H:%M UTC";

impl Digest {
    pub fn render(&self) -> String {
        let last_day = self.week.period.end - chrono::Duration::days(1);
        let mut out = format!(
            "CineView ops weekly digest, week {} ({} to {})\n",
            self.week.label,
            self.week.period.start.format("%Y-%m-%d"),
            last_day.format("%Y-%m-%d")
        );
        self.render_sentry(&mut out);
        self.render_targets(&mut out);
        self.render_backups(&mut out);
        self.render_rotations(&mut out);
        self.render_alerts(&mut out);
        footer(&mut out, &self.unreadable, self.verdict());
        out
    }

    fn render_sentry(&self, out: &mut String) {
        out.push_str("\nErrors and performance (Sentry, the app's transactions; error rate: warning above 2 %, ");
        out.push_str(&format!(
            "critical above 5 %; P95: warning above {P95_WARN_MS} ms, critical above {P95_CRITICAL_MS} ms)\n"
        ));
        match &self.sentry {
            SentrySection::Read(week) => sentry_lines(out, week),
            SentrySection::NotConfigured { fix } => out.push_str(&format!("  WARNING  not configured: {fix}\n")),
            SentrySection::Unreadable => out.push_str("  could not be read (below)\n"),
        }
    }

    fn render_targets(&self, out: &mut String) {
        out.push_str("\nAvailability (the week; error budget of the 30 days to its end)\n");
        if self.targets.is_empty() {
            out.push_str("  no health state recorded\n");
        }
        for t in &self.targets {
            let slo = match (t.objective, t.budget_left) {
                (Some(objective), Some(left)) => {
                    format!(", objective {:.1} %, {:.0} % of budget left", objective * 100.0, left * 100.0)
                }
                (Some(objective), None) => format!(", objective {:.1} %", objective * 100.0),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {:<8} {:<12} {} (last week {}){slo}\n",
                t.verdict.label(),
                t.name,
                percent(t.availability),
                percent(t.availability_last_week)
            ));
        }
    }

    fn render_backups(&self, out: &mut String) {
        out.push_str(&format!("\nBackups (RPO {RPO_HOURS} h, RTO {RTO_MINUTES} min)\n"));
        if let Some(week) = &self.backups {
            let nights = if week.days_without.is_empty() { ", one every day" } else { "" };
            out.push_str(&format!("  {:<8} {} backups{nights}\n", week.verdict.label(), week.backups.len()));
            for day in &week.days_without {
                out.push_str(&format!("           no backup finished on {day}\n"));
            }
            for b in &week.backups {
                out.push_str(&format!(
                    "           {}  {:.1} MB, {} tables, {} rows{} ({})\n",
                    b.finished_at.format(TIME),
                    b.size_bytes as f64 / 1e6,
                    b.tables,
                    b.rows,
                    b.label.as_ref().map(|l| format!(", label {l}")).unwrap_or_default(),
                    b.key
                ));
            }
        }
        match &self.restore_test {
            Some(r) => out.push_str(&format!(
                "  {:<8} latest restore test {} on {}, RTO {:.1} min, RPO {:.1} h ({})\n",
                r.line.verdict.label(),
                r.line.result,
                r.line.verified_at.format("%Y-%m-%d"),
                r.line.rto_minutes,
                r.rpo_hours,
                r.line.backup_key
            )),
            None => out.push_str("  WARNING  no restore test yet\n"),
        }
    }

    fn render_rotations(&self, out: &mut String) {
        out.push_str("\nRotations due within 30 days\n");
        if self.rotations_due.is_empty() {
            out.push_str("  ok       none\n");
        }
        for s in &self.rotations_due {
            let due = s.days_left.map_or("no rotation date".to_owned(), |d| format!("{d} days left of {}", s.max_days));
            out.push_str(&format!("  {:<8} {:<32} {due}\n", s.verdict.label(), s.name));
        }
    }

    fn render_alerts(&self, out: &mut String) {
        out.push_str("\nIncidents of the week\n");
        if let Some(incidents) = &self.incidents {
            out.push_str(&format!("           {} incident(s)\n", incidents.len()));
            let now = self.generated_at.timestamp();
            for incident in incidents {
                out.push_str(&format!("           {}\n", incident.line(now)));
            }
        }
        out.push_str("\nAlerts of the week\n");
        let Some(alerts) = &self.alerts else { return };
        let counts: Vec<String> = alerts.by_severity.iter().rev().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
        out.push_str(&format!(
            "           {}\n",
            if counts.is_empty() { "none".to_owned() } else { counts.join(", ") }
        ));
        for (key, severity, at) in &alerts.alerts {
            out.push_str(&format!("           {}: {key}, last sent {}\n", severity.as_str(), at.format(TIME)));
        }
    }
}

fn sentry_lines(out: &mut String, week: &SentryWeek) {
    let (this, last) = (&week.this_week, &week.last_week);
    let rate = |t: &Transactions| t.failure_rate.map_or("-".to_owned(), |r| format!("{:.2} %", r * 100.0));
    let p95 = |t: &Transactions| t.p95_ms.map_or("-".to_owned(), |ms| format!("{ms:.0} ms"));
    out.push_str(&format!(
        "  {:<8} error rate {} (last week {}), {} transactions (last week {})\n",
        this.error_verdict().label(),
        rate(this),
        rate(last),
        this.count,
        last.count
    ));
    out.push_str(&format!(
        "  {:<8} P95 {} (last week {}{})\n",
        this.latency_verdict().label(),
        p95(this),
        p95(last),
        change(this.p95_ms, last.p95_ms)
    ));
    out.push_str(&format!(
        "           error events {} (last week {}{})\n",
        week.error_events,
        week.error_events_last_week,
        change(Some(week.error_events as f64), Some(week.error_events_last_week as f64))
    ));
    issue_lines(out, "new", &week.new_issues);
    issue_lines(out, "regressed", &week.regressed);
    issue_lines(out, "top", &week.top);
}

/// `, +12 %`: this week's change over last week's, when both are known and last week's is not 0.
fn change(this: Option<f64>, last: Option<f64>) -> String {
    match (this, last) {
        (Some(this), Some(last)) if last > 0.0 => format!(", {:+.0} %", (this - last) / last * 100.0),
        _ => String::new(),
    }
}
