//! The common crate of the ops functions, in three layers:
//!
//! - `runtime`: invocation plumbing every function shares (the Lambda wrapper, configuration
//!   from the environment, logs, metrics and Sentry, cold-start phases, secret scrubbing, the
//!   scheduled triggers).
//! - `adapters`: one module per outside system (AWS: the SDK configuration, S3, DynamoDB,
//!   Secrets Manager, SNS, CloudWatch; HTTPS and TLS; PostgreSQL and its client tools). AWS and
//!   network clients are built here and nowhere else.
//! - `domain`: what the functions decide and record (alerts, backups, restore tests, API keys
//!   and their rotation, availability objectives, health state, the status screen), reaching
//!   outside systems through the adapters.
//!
//! The layers are private: the modules below are the crate's public surface, at the paths the
//! functions, `opsctl` and the tests use.

mod adapters;
mod domain;
mod runtime;

// Runtime: invocation plumbing.
pub use runtime::{config, events, lambda, phases, scrub, telemetry};

// Adapters: one per outside system.
pub use adapters::{
    aws, cloudwatch, deployed_code, ecs, http, objects, pgtools, postgres, secret_versions, secrets, sentry,
    signed_api, state, tls,
};

// Domain: alerts, backups, restore tests, keys, rotation, objectives, health and status.
pub use domain::{
    backup, digest, handoff, health, incident, keys, restore, rotation, sentry_numbers, silence, slo, staging, status,
};

/// The alert model, and the SNS publisher that sends it.
pub mod alert {
    pub use crate::adapters::sns::SnsAlertPublisher;
    pub use crate::domain::alert::*;
}

/// In-memory doubles of the traits above, for decision tests without AWS or a database.
#[cfg(feature = "test-util")]
pub mod test_util;

pub use alert::{Alert, AlertSink, Severity, SnsAlertPublisher, Status};
pub use config::{CommonConfig, ConfigError, Env};
pub use lambda::{FunctionError, Handler, Startup};
pub use runtime::redacted::Redacted;
pub use scrub::Scrubber;
pub use secrets::{SecretCache, SecretError};
