//! A line's judgement against the runbook's numbers.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Critical,
}

impl Verdict {
    pub(super) fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
        }
    }
}
