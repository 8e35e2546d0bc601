// The runtime, SDK and handler futures nest deeper than the default limit allows.
#![recursion_limit = "256"]

use std::process::ExitCode;

use ops_shared::secret_versions::SecretsManagerVersions;
use secret_rotation::{FUNCTION_NAME, RotationConfig, Rotator};

#[tokio::main]
async fn main() -> ExitCode {
    ops_shared::lambda::run(FUNCTION_NAME, |startup| async move {
        let config = RotationConfig::from_env(&startup.env)?;
        let store =
            SecretsManagerVersions::new(startup.clients.secrets.clone()).with_scrubber(startup.scrubber.clone());
        let http = ops_shared::http::client(std::time::Duration::from_secs(10)).map_err(|e| {
            ops_shared::ConfigError::malformed("PASSWORD_LENGTH", format!("cannot build an HTTP client: {e}"))
        })?;
        Ok::<_, ops_shared::ConfigError>(Rotator::new(store, startup.alerts, http, config))
    })
    .await
}
