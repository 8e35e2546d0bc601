//! `scheduled-backup`.

use lambda_runtime::Context;
use ops_shared::events::Trigger;
use ops_shared::{ConfigError, FunctionError, Handler, Startup};

pub const FUNCTION_NAME: &str = "scheduled-backup";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("scheduled-backup has no behaviour yet")]
    NotBuilt,
}

impl FunctionError for Error {
    fn kind(&self) -> &'static str {
        "NotBuilt"
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {}

pub struct Function;

pub fn build(_startup: Startup) -> Result<Function, ConfigError> {
    Ok(Function)
}

impl Handler for Function {
    type Event = Trigger<Request>;
    type Output = serde_json::Value;
    type Error = Error;

    async fn handle(&self, _event: Self::Event, _ctx: Context) -> Result<serde_json::Value, Error> {
        Err(Error::NotBuilt)
    }
}
