//! The operator CLI's commands, on the same library code as the functions.

pub mod check_env;
pub mod cli;
pub mod dr;
pub mod sentry_rules;
