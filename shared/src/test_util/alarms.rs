//! CloudWatch's alarms' double: the alarms in ALARM and the alarm history, as given.

use chrono::{DateTime, Utc};

use crate::domain::status::{AlarmEvent, AlarmLine, Alarms};

/// Alarms as CloudWatch would answer for them: `firing` by name prefix, `history` by alarm
/// name and time.
#[derive(Default, Clone, Debug)]
pub struct MemoryAlarms {
    pub firing: Vec<AlarmLine>,
    pub history: Vec<AlarmEvent>,
}

/// Never returned: the double always answers.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub struct NoError;

impl Alarms for MemoryAlarms {
    type Error = NoError;

    async fn firing(&self, prefix: &str) -> Result<Vec<AlarmLine>, NoError> {
        Ok(self.firing.iter().filter(|a| a.name.starts_with(prefix)).cloned().collect())
    }

    async fn went_to_alarm(&self, names: &[String], since: DateTime<Utc>) -> Result<Vec<AlarmEvent>, NoError> {
        Ok(self.history.iter().filter(|e| names.contains(&e.name) && e.at >= since).cloned().collect())
    }
}
