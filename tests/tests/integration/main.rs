//! The integration tests against the local stack, one module per area, in one test binary:
//! the stack (moto, PostgreSQL) starts once for all of them, and the AWS SDK is linked once
//! instead of once per file. Tests that set process-wide state are binaries of their own
//! beside this one: `iam.rs` (moto's IAM enforcement), `logging.rs` (the tracing subscriber),
//! `sentry.rs` and `traces.rs` (Sentry's hub).

mod alerts;
mod api_keys;
mod arm64_packages;
mod aws_events;
mod backup_bucket;
mod backups;
mod check_env_deployed;
mod common_crate;
mod dashboard;
mod digest;
mod dr;
mod dr_freeze;
mod dr_tested;
mod engine_task;
mod functions;
mod google_keys;
mod handoff;
mod health;
mod incidents;
mod opsctl;
mod opsctl_runs;
mod postgres17;
mod preflight;
mod rotation;
mod routing;
mod sentry_rules;
mod silences;
mod status;
mod supabase;
mod supabase_dr;
mod supabase_keys;
mod template;
mod tls;
