//! AWS's example events, read from the files the `aws_lambda_events` crate ships (its
//! `src/fixtures`), so tests feed the functions AWS's shapes and not only ours.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// The crate's fixtures folder, found through `cargo metadata` (the version Cargo.lock pins).
fn fixtures_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = crate::workspace_file("Cargo.toml");
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
            .arg(&manifest)
            .output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
        let metadata: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
        let manifest_path = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "aws_lambda_events")
            .and_then(|p| p["manifest_path"].as_str())
            .ok_or("aws_lambda_events is not in the dependency graph")?;
        let dir = PathBuf::from(manifest_path).with_file_name("src").join("fixtures");
        if dir.is_dir() { Ok(dir) } else { Err(format!("{} is missing", dir.display())) }
    })
    .clone()
}

/// The example event `name` (e.g. `example-sns-event.json`).
pub fn event(name: &str) -> Value {
    let dir = fixtures_dir().unwrap_or_else(|e| panic!("AWS's example events: {e}"));
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}
