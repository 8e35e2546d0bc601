//! How long each phase of a cold start took: read from a monotonic clock between phases (no
//! allocation, no I/O) and logged once, at INFO, when the first event arrives, so cold starts
//! can be compared in CloudWatch (`phases_us.<phase>`) and by the benchmark.

use std::time::Instant;

/// Microseconds per start-up phase of [`crate::runtime::lambda::run`], in the order they run.
#[derive(Debug, Clone)]
pub struct Phases {
    last: Instant,
    /// Logging set up (`RUST_LOG` parsed).
    pub logging: u64,
    /// The environment and the shared configuration read.
    pub config: u64,
    /// The Sentry client started (nothing without a DSN).
    pub sentry: u64,
    /// The AWS SDK configuration loaded (region, credentials chain, HTTP client).
    pub sdk_config: u64,
    /// The AWS service clients built.
    pub aws_clients: u64,
    /// The secret cache and the alert publisher.
    pub shared_state: u64,
    /// The function's own `build`: its configuration and clients.
    pub build: u64,
    /// The Lambda runtime started and the first event fetched.
    pub runtime: u64,
}

impl Phases {
    /// Starts timing the first phase now.
    pub fn start() -> Self {
        Phases {
            last: Instant::now(),
            logging: 0,
            config: 0,
            sentry: 0,
            sdk_config: 0,
            aws_clients: 0,
            shared_state: 0,
            build: 0,
            runtime: 0,
        }
    }

    /// Microseconds since the previous lap (or the start); the next phase begins now.
    pub(crate) fn lap(&mut self) -> u64 {
        let now = Instant::now();
        let took = now.duration_since(self.last).as_micros();
        self.last = now;
        u64::try_from(took).unwrap_or(u64::MAX)
    }

    /// All phases added up.
    pub fn total(&self) -> u64 {
        [
            self.logging,
            self.config,
            self.sentry,
            self.sdk_config,
            self.aws_clients,
            self.shared_state,
            self.build,
            self.runtime,
        ]
        .iter()
        .fold(0, |sum, phase| sum.saturating_add(*phase))
    }

    /// The one `start-up phases` line of a cold start. Flat `phases_us.<phase>` keys are what
    /// CloudWatch Logs Insights makes of nested JSON anyway, and the JSON log layer can only
    /// write flat fields.
    pub fn log(&self, function: &str) {
        tracing::info!(
            function,
            phases_us.logging = self.logging,
            phases_us.config = self.config,
            phases_us.sentry = self.sentry,
            phases_us.sdk_config = self.sdk_config,
            phases_us.aws_clients = self.aws_clients,
            phases_us.shared_state = self.shared_state,
            phases_us.build = self.build,
            phases_us.runtime = self.runtime,
            phases_us.total = self.total(),
            "start-up phases"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_follow_each_other_and_add_up() {
        let mut phases = Phases::start();
        std::thread::sleep(std::time::Duration::from_millis(2));
        phases.logging = phases.lap();
        phases.config = phases.lap();
        assert!(phases.logging >= 2_000, "{phases:?}");
        assert!(phases.config < phases.logging, "{phases:?}");
        assert_eq!(phases.total(), phases.logging + phases.config);
    }

    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_phases_are_one_json_line_of_numbers_at_info() {
        let lines = Lines::default();
        let writer = lines.clone();
        let logs =
            crate::runtime::telemetry::json_logs(tracing_subscriber::EnvFilter::new("info"), move || writer.clone());
        let mut phases = Phases::start();
        phases.build = 1_500;
        phases.runtime = 250;
        tracing::subscriber::with_default(logs, || phases.log("secret-rotation"));
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "start-up phases");
        assert_eq!(line["function"], "secret-rotation");
        assert_eq!(line["phases_us.build"], 1_500);
        assert_eq!(line["phases_us.total"], 1_750);
        assert_eq!(line["phases_us.logging"], 0);
    }
}
