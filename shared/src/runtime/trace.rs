//! Spans of the invocation's Sentry transaction: the AWS calls, the database and the upstream
//! requests made on its behalf. Descriptions name operations and hosts, never values:
//! transactions are not scrubbed.

/// A span of the invocation's Sentry transaction (an AWS call, the database, an upstream
/// request), finished when dropped; nothing at all when the invocation is not sampled.
/// Descriptions name operations and hosts, never values: transactions are not scrubbed.
pub struct TraceSpan(Option<sentry::TransactionOrSpan>);

/// A child of the current scope's span, if an invocation's transaction is running; its status
/// is `ok` until told otherwise. The caller finishes it.
pub(crate) fn child_span(op: &str, description: &str) -> Option<sentry::TransactionOrSpan> {
    let parent = sentry::configure_scope(|scope| scope.get_span())?;
    let span: sentry::TransactionOrSpan = parent.start_child(op, description).into();
    span.set_status(sentry::protocol::SpanStatus::Ok);
    Some(span)
}

impl TraceSpan {
    pub fn start(op: &str, description: &str) -> TraceSpan {
        TraceSpan(child_span(op, description))
    }

    /// Marks the span failed.
    pub fn fail(&self) {
        if let Some(span) = &self.0 {
            span.set_status(sentry::protocol::SpanStatus::InternalError);
        }
    }
}

impl Drop for TraceSpan {
    fn drop(&mut self) {
        if let Some(span) = self.0.take() {
            span.finish();
        }
    }
}

/// `METHOD scheme://host/path` of a request: the query and any credentials in the URL are
/// left out of traces.
pub fn request_description(method: &reqwest::Method, url: &reqwest::Url) -> String {
    let port = url.port().map(|port| format!(":{port}")).unwrap_or_default();
    format!("{method} {}://{}{port}{}", url.scheme(), url.host_str().unwrap_or_default(), url.path())
}
