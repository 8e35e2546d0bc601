//! The floor of a Rust cold start, measured beside the functions by `cargo xtask bench`: a
//! `lambda_runtime` hello world in the same release profile and nothing else (no logging, no
//! configuration, no AWS SDK, no TLS). It refuses the benchmark's invalid event the way the
//! functions do, as an error answer.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;

#[derive(Deserialize)]
struct Greeting {
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Greeting>| async move {
        Ok::<_, Error>(format!("hello, {}", event.payload.name))
    }))
    .await
}
