//! The local stack (moto_server and PostgreSQL on loopback), stand-ins for the services that
//! cannot run here, and helpers the integration tests and the demo share.

pub mod ai_engine;
pub mod aws;
pub mod aws_examples;
pub mod ecs;
pub mod google;
pub mod http_targets;
pub mod iam;
pub mod iam_policy;
pub mod logs;
pub mod moto;
pub mod names;
pub mod pg;
pub mod process;
pub mod rotation;
pub mod runtime_api;
pub mod sentry_api;
pub mod sentry_events;
pub mod sentry_ingest;
pub mod sentry_search;
pub mod slack;
pub mod sns_filter;
pub mod stack;
pub mod supabase;
pub mod supabase_schema;

pub use stack::{Stack, shared};

/// A file of the workspace cargo is running in. Read at run time: cargo may reuse a binary
/// built in another checkout of the same sources, whose compile-time path points there.
pub fn workspace_file(relative: &str) -> std::path::PathBuf {
    let kit = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    std::path::Path::new(&kit).join("..").join(relative)
}
