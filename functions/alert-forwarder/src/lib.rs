//! `alert-forwarder`.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::Context;
use ops_shared::{ConfigError, FunctionError, Handler, Startup};

pub const FUNCTION_NAME: &str = "alert-forwarder";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("alert-forwarder has no behaviour yet")]
    NotBuilt,
}

impl FunctionError for Error {
    fn kind(&self) -> &'static str {
        "NotBuilt"
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Event {
    Sns(SnsEvent),
    FunctionUrl(Box<LambdaFunctionUrlRequest>),
}

pub struct Function;

pub fn build(_startup: Startup) -> Result<Function, ConfigError> {
    Ok(Function)
}

impl Handler for Function {
    type Event = Event;
    type Output = serde_json::Value;
    type Error = Error;

    async fn handle(&self, _event: Self::Event, _ctx: Context) -> Result<serde_json::Value, Error> {
        Err(Error::NotBuilt)
    }
}
