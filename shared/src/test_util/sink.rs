//! The alert topic's double, and a clock the tests move.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::alert::{Alert, AlertSink, PublishError};
use crate::secrets::Clock;

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub body: String,
    pub alert: Alert,
}

/// An alert topic that records what it is given, and fails the next publishes on request.
#[derive(Default)]
pub struct RecordingAlerts {
    published: Mutex<Vec<Published>>,
    failures: Mutex<usize>,
}

impl RecordingAlerts {
    pub fn published(&self) -> Vec<Published> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.published().into_iter().map(|p| p.subject).collect()
    }

    /// The next `count` publishes fail, as SNS does when the topic is gone or throttled.
    pub fn fail_next(&self, count: usize) {
        if let Ok(mut failures) = self.failures.lock() {
            *failures = count;
        }
    }
}

impl AlertSink for RecordingAlerts {
    async fn publish_message(&self, subject: &str, body: &str, alert: &Alert) -> Result<(), PublishError> {
        let failed = self.failures.lock().map(|mut left| {
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        });
        if failed.unwrap_or(true) {
            return Err(PublishError {
                topic: "memory".into(),
                dedup_key: alert.dedup_key.clone(),
                detail: "publish refused (injected)".into(),
            });
        }
        if let Ok(mut published) = self.published.lock() {
            published.push(Published { subject: subject.to_owned(), body: body.to_owned(), alert: alert.clone() });
        }
        Ok(())
    }
}

/// A clock that moves only when told, shared by its clones.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.lock().map(|now| *now).unwrap_or_else(|_| Instant::now())
    }
}
