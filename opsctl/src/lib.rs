//! The operator CLI's commands, on the same library code as the functions.

pub mod check_env;
pub mod cli;
pub mod dr;
pub mod dr_restore;
pub mod on_demand;
pub mod progress;
pub mod sentry_rules;
pub mod stack;
