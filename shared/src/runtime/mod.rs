//! Invocation plumbing: the Lambda wrapper, configuration from the environment, telemetry,
//! start-up timing, secret scrubbing and the triggers of the scheduled functions.

pub mod config;
pub mod errors;
pub mod events;
pub mod lambda;
pub mod phases;
pub(crate) mod redacted;
pub mod scrub;
pub mod telemetry;
pub(crate) mod trace;
