//! A line's judgement against the runbook's numbers.

use serde::Serialize;

/// The runbook's P95 lines ("P95 < 1500ms"; twice that is critical).
pub const P95_WARN_MS: u64 = 1500;
pub const P95_CRITICAL_MS: u64 = 3000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Critical,
}

impl Verdict {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
        }
    }
}
