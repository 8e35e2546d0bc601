// The runtime, SDK and handler futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ops_shared::lambda::run(restore_verifier::FUNCTION_NAME, |startup| async move { restore_verifier::build(startup) })
        .await
}
