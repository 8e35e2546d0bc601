//! How long a restore test of a backup would take: its dump's size over the rate the last
//! passed test achieved (dump bytes per second, start to end), for the handoff decision.

use super::report::RestoreReport;
use super::verify::Verifier;
use crate::adapters::objects::ObjectStore;
use crate::domain::alert::AlertSink;
use crate::domain::backup::manifest::{Manifest, normalise_prefix};
use crate::domain::handoff::{Estimate, RateSource};

/// Dump bytes per second of a whole restore test at the template's 512 MB (`cargo xtask bench
/// --power`: a 213 MB dump in 5.97 s, 35.7 MB/s): the rate assumed until a test has recorded
/// its own.
pub const MEASURED_BYTES_PER_SECOND: f64 = 35_000_000.0;
/// The newest reports looked at for a rate.
const RECENT: usize = 10;

fn rate_of(report: &RestoreReport) -> Option<f64> {
    (report.passed() && report.rto_ms > 0).then(|| report.size_bytes as f64 * 1000.0 / report.rto_ms as f64)
}

impl<S: ObjectStore, A: AlertSink> Verifier<S, A> {
    /// The estimate of a restore test of the backup `manifest` describes.
    pub async fn estimate(&self, manifest: &Manifest) -> Estimate {
        let (bytes_per_second, source) =
            self.last_rate().await.unwrap_or((MEASURED_BYTES_PER_SECOND, RateSource::Measured));
        Estimate { bytes: manifest.size_bytes, bytes_per_second, source }
    }

    /// The rate of the newest passed restore test among the recent reports.
    async fn last_rate(&self) -> Option<(f64, RateSource)> {
        let prefix = normalise_prefix(&self.config.report_prefix);
        let listed = self.store.list(&prefix).await;
        if let Err(err) = &listed {
            tracing::warn!(error = %err, "the last restore tests could not be listed: the estimate uses the measured rate");
        }
        let mut reports: Vec<_> = listed.ok()?.into_iter().filter(|o| o.key.ends_with(".json")).collect();
        // `<prefix>YYYY/MM/<time>-<id>.json`: the key sorts by the test's time.
        reports.sort_by(|a, b| a.key.cmp(&b.key));
        for candidate in reports.iter().rev().take(RECENT) {
            let Ok(body) = self.store.get(&candidate.key).await else { continue };
            let Ok(bytes) = body.collect().await else { continue };
            let Ok(report) = serde_json::from_slice::<RestoreReport>(&bytes) else { continue };
            if let Some(rate) = rate_of(&report) {
                return Some((rate, RateSource::LastRun(candidate.key.clone())));
            }
        }
        None
    }
}
