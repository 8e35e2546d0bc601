//! Logging from the invocation wrapper. Its own test binary: the subscriber is global.

use lambda_runtime::{Context, LambdaEvent};
use ops_shared::Scrubber;
use ops_shared::lambda::{Function, FunctionError, Handler};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

impl FunctionError for Failure {
    fn kind(&self) -> &'static str {
        "DependencyFailure"
    }
}

struct Chatty;

impl Handler for Chatty {
    type Event = serde_json::Value;
    type Output = ();
    type Error = Failure;

    async fn handle(&self, _event: serde_json::Value, _ctx: Context) -> Result<(), Failure> {
        tracing::warn!("a warning from inside the handler");
        Err(Failure("nothing secret".into()))
    }
}

#[tokio::test]
async fn every_log_line_of_an_invocation_carries_the_request_id_even_at_warn() {
    let captured = ops_testkit::logs::capture_at("warn");
    let function = Function::new("chatty", Chatty, Scrubber::default());
    let mut ctx = Context::default();
    ctx.request_id = "req-5678".to_owned();
    let _ = function.invoke(LambdaEvent::new(json!({}), ctx)).await;
    let text = captured.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "the handler's warning and the failure: {text}");
    for line in lines {
        let json: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
        assert_eq!(json["span"]["requestId"], "req-5678", "{line}");
    }
}
