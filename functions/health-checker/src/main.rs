// The runtime, SDK and handler futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ops_shared::lambda::run(health_checker::FUNCTION_NAME, |startup| async move { health_checker::build(startup) })
        .await
}
