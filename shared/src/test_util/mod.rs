//! In-memory stand-ins for the shared crate's traits, so decisions (de-duplication, repeats,
//! inhibition, rollback after a failed publish, races between overlapping runs, aborted
//! uploads, which backup a restore test picks) are tested in milliseconds, without moto. The
//! moto tests stay as contract tests of the real adapters. Built with the `test-util` feature,
//! so each function's decision tests use them without the integration test kit.

mod alarms;
pub mod backups;
pub mod code;
mod objects;
mod secrets;
mod sentry;
mod sink;
mod state;

pub use alarms::{MemoryAlarms, NoError};
pub use objects::{MemoryObjects, ObjectOp, StoredObject};
pub use secrets::MemorySecrets;
pub use sentry::{MemorySentry, MemorySentryNumbers};
pub use sink::{ManualClock, Published, RecordingAlerts};
pub use state::MemoryState;

use crate::{Scrubber, SecretCache};

/// A secret cache whose client reaches no endpoint: for decisions that must not read a secret,
/// a read fails instead of answering.
pub fn offline_secrets() -> SecretCache {
    let offline = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    SecretCache::new(aws_sdk_secretsmanager::Client::from_conf(offline), Scrubber::default())
}
