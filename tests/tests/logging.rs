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

/// Log lines written during an invocation, captured in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut lines) = self.0.lock() {
            lines.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    let captured = Captured::default();
    let writer = captured.clone();
    ops_shared::telemetry::init_logging_to(tracing_subscriber::EnvFilter::new("warn"), move || writer.clone());
    let function = Function::new("chatty", Chatty, Scrubber::default());
    let mut ctx = Context::default();
    ctx.request_id = "req-5678".to_owned();
    let _ = function.invoke(LambdaEvent::new(json!({}), ctx)).await;
    let text = String::from_utf8(captured.0.lock().map(|l| l.clone()).unwrap_or_default()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "the handler's warning and the failure: {text}");
    for line in lines {
        let json: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
        assert_eq!(json["span"]["requestId"], "req-5678", "{line}");
    }
}
