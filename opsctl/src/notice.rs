//! What opsctl tells while it works (a freeze, an assessment, a restore, a thaw): the alert to
//! ops, and the same news in plain words to the stakeholders' topic when one is given
//! (`--notify-topic`). Each is sent or said to be unsent, never dropped silently.

use std::fmt;

use ops_shared::alert::{Alert, AlertSink};
use serde::{Serialize, Serializer};

use crate::outcome::Verdict;

/// Whether a notice reached its topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Sent {
    /// None was due (or no topic was given).
    #[default]
    NotDue,
    Sent,
    /// It was not; why.
    NotSent(String),
}

impl Sent {
    /// Whether a notice that was due did not go.
    pub fn failed(&self) -> bool {
        matches!(self, Sent::NotSent(_))
    }
}

/// `sent`, `NOT sent: <why>`, or empty when none was due: what the command prints.
impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sent::NotDue => Ok(()),
            Sent::Sent => f.write_str("sent"),
            Sent::NotSent(why) => write!(f, "NOT sent: {why}"),
        }
    }
}

/// As the command prints it, so that `--json` reads as the text does.
impl Serialize for Sent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One step's news: the alert for ops (the project's alert contract, which the forwarder reads)
/// and, for the stakeholders, a subject and plain words.
#[derive(Debug, Clone)]
pub struct Notice {
    pub alert: Alert,
    /// Short: the SNS publisher cuts it to 99 ASCII characters, as SNS takes no more than 100.
    pub subject: String,
    pub text: String,
}

/// What a notice reached: ops' alert topic, and the stakeholders' topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Told {
    #[serde(rename = "alert")]
    pub ops: Sent,
    /// `NotDue` when no stakeholders' topic was given.
    pub stakeholders: Sent,
}

impl Told {
    /// Whether a notice that was due did not go.
    pub fn failed(&self) -> bool {
        self.ops.failed() || self.stakeholders.failed()
    }

    /// A line per notice that was due, each `indent`ed: where it went, or why it did not.
    pub fn render(&self, indent: &str) -> String {
        let mut out = String::new();
        if self.ops != Sent::NotDue {
            out.push_str(&format!("{indent}alert to ops: {}\n", self.ops));
        }
        if self.stakeholders != Sent::NotDue {
            out.push_str(&format!("{indent}notice to the stakeholders: {}\n", self.stakeholders));
        }
        out
    }

    /// The command's verdict: `done`, unless it went well and a notice did not go: then
    /// `Failed` (exit 2), so that an unsent notice is never missed.
    pub fn verdict(&self, done: Verdict) -> Verdict {
        if done == Verdict::Ok && self.failed() { Verdict::Failed } else { done }
    }
}

/// Who hears a step's notice.
pub trait Audience: Send + Sync {
    fn tell(&self, notice: &Notice) -> impl Future<Output = Told> + Send;
}

/// An alert topic alone: ops, and no stakeholders.
impl<A: AlertSink> Audience for A {
    async fn tell(&self, notice: &Notice) -> Told {
        Told { ops: publish(self, &notice.alert).await, stakeholders: Sent::NotDue }
    }
}

/// Ops, and the stakeholders' topic when one was given.
pub struct Recipients<'a, A> {
    pub ops: &'a A,
    pub stakeholders: Option<&'a A>,
}

impl<A: AlertSink> Audience for Recipients<'_, A> {
    async fn tell(&self, notice: &Notice) -> Told {
        let ops = publish(self.ops, &notice.alert).await;
        let stakeholders = match self.stakeholders {
            Some(topic) => plain(topic, notice).await,
            None => Sent::NotDue,
        };
        Told { ops, stakeholders }
    }
}

/// Publishes `alert` to ops; says whether it went, for the command's output.
pub async fn publish(alerts: &impl AlertSink, alert: &Alert) -> Sent {
    match alerts.publish(alert).await {
        Ok(()) => Sent::Sent,
        Err(err) => {
            tracing::error!(error = %err, title = %alert.title, "an alert could not be published");
            Sent::NotSent(err.to_string())
        }
    }
}

/// Publishes the notice's plain words (with the alert's `severity` and `source` attributes,
/// which subscriptions may filter on).
async fn plain(topic: &impl AlertSink, notice: &Notice) -> Sent {
    match topic.publish_message(&notice.subject, &notice.text, &notice.alert).await {
        Ok(()) => Sent::Sent,
        Err(err) => {
            tracing::error!(error = %err, subject = %notice.subject, "a stakeholders' notice could not be published");
            Sent::NotSent(err.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsent_notice_says_why_in_the_text_and_the_json() {
        let unsent = Sent::NotSent("no such topic".into());
        assert!(unsent.failed() && !Sent::Sent.failed() && !Sent::NotDue.failed());
        assert_eq!(serde_json::to_value(&unsent).ok(), Some(serde_json::json!("NOT sent: no such topic")));
        assert_eq!((Sent::Sent.to_string(), Sent::NotDue.to_string()), ("sent".to_owned(), String::new()));
        let told = Told { ops: Sent::Sent, stakeholders: unsent };
        assert_eq!(told.render("  "), "  alert to ops: sent\n  notice to the stakeholders: NOT sent: no such topic\n");
        assert_eq!((told.verdict(Verdict::Ok), told.verdict(Verdict::Problem)), (Verdict::Failed, Verdict::Problem));
        assert_eq!(Told { ops: Sent::Sent, stakeholders: Sent::NotDue }.verdict(Verdict::Ok), Verdict::Ok);
        assert_eq!(Told::default().render("  "), "");
    }
}
