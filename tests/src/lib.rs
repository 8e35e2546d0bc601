//! The local stack (moto_server and PostgreSQL on loopback), stand-ins for the services that
//! cannot run here, and helpers the integration tests and the demo share.

pub mod ai_engine;
pub mod aws;
pub mod http_targets;
pub mod logs;
pub mod moto;
pub mod names;
pub mod pg;
pub mod process;
pub mod runtime_api;
pub mod sentry_ingest;
pub mod stack;
pub mod supabase;

pub use stack::{Stack, shared};
