//! The common crate of the ops functions: configuration, AWS clients, the secret cache, the
//! alert model and publisher, telemetry and the invocation wrapper. AWS adapters live here only.

pub mod alert;
pub mod aws;
pub mod backup;
pub mod cloudwatch;
pub mod config;
pub mod events;
pub mod health;
pub mod http;
pub mod keys;
pub mod lambda;
pub mod objects;
pub mod pgtools;
pub mod phases;
pub mod postgres;
pub mod restore;
pub mod rotation;
pub mod scrub;
pub mod secret_versions;
pub mod secrets;
pub mod slo;
pub mod state;
pub mod status;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod tls;

pub use alert::{Alert, AlertSink, Severity, SnsAlertPublisher, Status};
pub use config::{CommonConfig, ConfigError, Env};
pub use lambda::{FunctionError, Handler, Startup};
pub use scrub::Scrubber;
pub use secrets::{SecretCache, SecretError};
