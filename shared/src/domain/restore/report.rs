//! The report of a restore test: what was checked, how long it took against the RTO and how
//! old the backup was against the RPO. Filed as JSON and read back by the status screen.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::backup::manifest::Manifest;

/// One check of a restore test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What a restore test found, filed under `reports/restore-tests/` and read back by the
/// operator's status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    pub version: u32,
    pub result: String,
    pub backup_key: String,
    pub backup_id: String,
    pub database: String,
    pub backup_started_at: DateTime<Utc>,
    pub verified_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub tables: usize,
    pub rows: i64,
    pub download_ms: u64,
    pub restore_ms: u64,
    pub checks_ms: u64,
    pub rto_ms: u64,
    pub rto_target_ms: u64,
    pub rto_met: bool,
    pub backup_age_hours: f64,
    pub rpo_target_hours: u64,
    pub rpo_met: bool,
    pub scratch_database: Option<String>,
    pub scratch_dropped: bool,
    /// Scratch databases that killed runs had left, dropped by this one.
    #[serde(default)]
    pub abandoned_scratch_dropped: Vec<String>,
    pub checks: Vec<RestoreCheck>,
    pub failures: Vec<String>,
    pub report_key: String,
}

impl RestoreReport {
    /// The report of a test of the backup `manifest` describes, before anything is checked,
    /// against an RTO of `rto` and an RPO of `rpo`.
    pub fn new(manifest: &Manifest, rto: std::time::Duration, rpo: std::time::Duration) -> RestoreReport {
        RestoreReport {
            version: 1,
            result: String::new(),
            backup_key: manifest.key.clone(),
            backup_id: manifest.backup_id.clone(),
            database: manifest.database.clone(),
            backup_started_at: manifest.started_at,
            verified_at: Utc::now(),
            size_bytes: manifest.size_bytes,
            tables: manifest.tables.len(),
            rows: manifest.total_rows(),
            download_ms: 0,
            restore_ms: 0,
            checks_ms: 0,
            rto_ms: 0,
            rto_target_ms: rto.as_millis() as u64,
            rto_met: false,
            backup_age_hours: 0.0,
            rpo_target_hours: rpo.as_secs() / 3600,
            rpo_met: false,
            scratch_database: None,
            scratch_dropped: false,
            abandoned_scratch_dropped: Vec::new(),
            checks: Vec::new(),
            failures: Vec::new(),
            report_key: String::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Judges the time the test took (`rto`: download, restore and checks) and the backup's
    /// age at `now` against their targets, and settles the result.
    pub fn judge(&mut self, rto: std::time::Duration, now: DateTime<Utc>) {
        self.rto_ms = rto.as_millis() as u64;
        self.rto_met = self.rto_ms <= self.rto_target_ms;
        if !self.rto_met {
            self.failures.push(format!("RTO {} ms exceeds the target of {} ms", self.rto_ms, self.rto_target_ms));
        }
        let age = now.signed_duration_since(self.backup_started_at);
        self.backup_age_hours = age.num_seconds().max(0) as f64 / 3600.0;
        self.rpo_met = self.backup_age_hours <= self.rpo_target_hours as f64;
        if !self.rpo_met {
            self.failures.push(format!(
                "the backup is {:.1} h old, beyond the RPO of {} h",
                self.backup_age_hours, self.rpo_target_hours
            ));
        }
        self.result = if self.passed() { "passed" } else { "failed" }.to_owned();
    }

    /// Records a check; a failed one is a failure of the test.
    pub fn check(&mut self, name: &str, passed: bool, detail: String) {
        if !passed {
            self.failures.push(if detail.is_empty() { name.to_owned() } else { format!("{name}: {detail}") });
        }
        self.checks.push(RestoreCheck { name: name.to_owned(), passed, detail });
    }
}
