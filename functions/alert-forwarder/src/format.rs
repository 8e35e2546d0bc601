//! What ops read: an ASCII subject of at most 99 characters, severity first, and a plain-text
//! body an on-call engineer can act on (what, where, since when, figures, links).

use ops_shared::alert::{Alert, Status};
use serde_json::Value;

pub fn subject(alert: &Alert) -> String {
    alert.subject()
}

pub fn body(alert: &Alert, muted_children: usize) -> String {
    let state = match alert.status {
        Status::Firing => format!("{} - firing", alert.severity.as_str().to_ascii_uppercase()),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let mut out = format!("{state}: {}\n\n", alert.title);
    if !alert.summary.is_empty() {
        out.push_str(&alert.summary);
        out.push_str("\n\n");
    }
    out.push_str(&format!("Source:    {}\n", alert.source));
    out.push_str(&format!("At:        {}\n", alert.occurred_at));
    out.push_str(&format!("Severity:  {}\n", alert.severity));
    if !alert.details.is_empty() {
        out.push_str("\nDetails:\n");
        for (key, value) in &alert.details {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("  {key}: {shown}\n"));
        }
    }
    if !alert.links.is_empty() {
        out.push_str("\nLinks:\n");
        for link in &alert.links {
            out.push_str(&format!("  {}: {}\n", link.title, link.url));
        }
    }
    if muted_children > 0 {
        out.push_str(&format!("\n{muted_children} dependent alert(s) are muted while this fires.\n"));
    }
    out.push_str(&format!(
        "\n--\nAlert key {} - repeats of it are suppressed for the repeat interval.\n",
        alert.dedup_key
    ));
    out
}

/// Text as Slack wants it in a message: `&`, `<` and `>` escaped, so alert text cannot
/// mention `<!channel>` or forge a link.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_shared::Severity;

    #[test]
    fn body_says_what_where_since_and_links() {
        let alert = Alert::new("health-checker", Severity::Critical, "health-checker:app", "app is down")
            .summary("app failed 3 checks")
            .detail("failures", 3)
            .link("target", "https://cineview.ai/api/health");
        let text = body(&alert, 0);
        assert!(text.starts_with("CRITICAL - firing: app is down\n"));
        assert!(text.contains("  failures: 3\n") && text.contains("target: https://cineview.ai/api/health"));
        assert!(text.contains("At:"));
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(slack_escape("<!channel> a & b <https://x|y>"), "&lt;!channel&gt; a &amp; b &lt;https://x|y&gt;");
    }
}
