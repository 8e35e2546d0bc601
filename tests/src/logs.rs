//! Everything the process logs, captured in memory at debug level, so tests can search the
//! log output for values that must never appear (keys, passwords).

use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut lines) = self.0.lock() {
            lines.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        self.0.lock().map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }
}

/// Installs the project's JSON logging at debug level into memory, once per test binary.
pub fn capture() -> Captured {
    capture_at("debug")
}

/// Like [`capture`] with another filter. The subscriber is global: the first call in a test
/// binary sets the filter for all of it.
pub fn capture_at(filter: &str) -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            ops_shared::telemetry::init_logging_to(tracing_subscriber::EnvFilter::new(filter), move || writer.clone());
            captured
        })
        .clone()
}
