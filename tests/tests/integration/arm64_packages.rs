//! The arm64 bootstraps `cargo xtask package` zips, started as Lambda starts them: under qemu
//! user-mode emulation (binfmt_misc, Debian's arm64 glibc as the system library) through the
//! Runtime API, against the local stack. Each must answer a malformed event with InvalidEvent:
//! the artifact that ships starts and handles a request. Start-up times here are emulated and
//! only a smoke figure.

use std::time::{Duration, Instant};

use ops_testkit::runtime_api::{LambdaProcess, Outcome};
use serde_json::json;

const FUNCTIONS: [&str; 5] =
    ["secret-rotation", "scheduled-backup", "restore-verifier", "health-checker", "alert-forwarder"];

#[tokio::test]
async fn every_arm64_bootstrap_starts_and_refuses_a_malformed_event() {
    let stack = ops_testkit::shared();
    let mut env = stack.env();
    env.push(("QEMU_LD_PREFIX".into(), "/usr/aarch64-linux-gnu".into()));
    env.push((
        "HEALTH_TARGETS".into(),
        json!([{"name": "app", "kind": "http", "url": "http://127.0.0.1:9/"}]).to_string(),
    ));
    for function in FUNCTIONS {
        let bootstrap = ops_testkit::pg::arm64_bootstrap(function).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let mut process = LambdaProcess::start(function, &bootstrap, &env, stack.root()).await.expect("start");
        let outcome = process.invoke(&json!({"not": "an event of this function"}), Duration::from_secs(60)).await;
        let elapsed = started.elapsed();
        match outcome {
            Outcome::Error { error_type, .. } => {
                assert_eq!(error_type, "InvalidEvent", "{function}: {}", process.logs())
            }
            other => panic!("{function}: expected InvalidEvent, got {other:?}\n{}", process.logs()),
        }
        process.stop();
        println!("{function}: arm64 bootstrap answered in {} ms under emulation", elapsed.as_millis());
    }
}
