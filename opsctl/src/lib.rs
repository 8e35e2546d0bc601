//! The operator CLI's commands, on the same library code as the functions.

pub mod bucket_json;
pub mod check_env;
pub mod cli;
pub mod commands;
pub mod deployed;
pub mod dr;
pub mod dr_restore;
pub mod error;
pub mod notice;
pub mod on_demand;
pub mod outcome;
pub mod preflight;
pub mod progress;
pub mod rotate;
pub mod sentry_rules;
pub mod silences;
pub mod stack;
