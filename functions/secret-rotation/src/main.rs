// The runtime, SDK and handler futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ops_shared::lambda::run(secret_rotation::FUNCTION_NAME, |startup| async move { secret_rotation::build(startup) })
        .await
}
