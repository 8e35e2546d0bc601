//! What the functions decide and record: alerts, backups and restore tests, API keys and
//! their rotation, availability objectives, health state and the status screen.

pub mod alert;
pub mod backup;
pub mod digest;
pub mod handoff;
pub mod health;
pub mod incident;
pub mod keys;
pub mod restore;
pub mod rotation;
pub mod sentry_numbers;
pub mod silence;
pub mod slo;
pub mod staging;
pub mod status;
