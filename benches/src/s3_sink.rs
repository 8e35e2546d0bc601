//! An S3 that costs nothing: the backup measured against bare `pg_dump` without moto's CPU on
//! the same two cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// A stand-in for S3 that accepts a backup and discards it: CreateMultipartUpload, UploadPart,
/// CompleteMultipartUpload, AbortMultipartUpload and PutObject, answered with the shapes of the
/// Amazon S3 API Reference (`InitiateMultipartUploadResult`, an `ETag` and the part's
/// `x-amz-checksum-crc32` echoed, `CompleteMultipartUploadResult`, 204 for an abort); anything
/// else is `501 NotImplemented`. Path-style requests only (`/bucket/key`).
pub struct S3Sink {
    pub endpoint: String,
    received: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl S3Sink {
    pub async fn start() -> Result<S3Sink, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let received = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&received);
        let app = axum::Router::new().fallback(move |method, uri, headers, body| {
            let counted = Arc::clone(&counted);
            async move { answer(&counted, &method, &uri, &headers, body).await }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(S3Sink { endpoint: format!("http://127.0.0.1:{port}"), received, server })
    }

    /// Bytes of request bodies discarded so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// A function's environment `env` with S3 pointed here (the SDK's service-specific
    /// `AWS_ENDPOINT_URL_S3`) and the other services it may call kept on `moto`: the shared
    /// `AWS_ENDPOINT_URL` would take precedence over every service-specific one.
    pub fn env(&self, env: Vec<(String, String)>, moto: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k != "AWS_ENDPOINT_URL").collect();
        env.push(("AWS_ENDPOINT_URL_S3".into(), self.endpoint.clone()));
        for service in ["SECRETS_MANAGER", "SNS", "DYNAMODB", "STS"] {
            env.push((format!("AWS_ENDPOINT_URL_{service}"), moto.to_owned()));
        }
        env
    }
}

impl Drop for S3Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(received: &AtomicU64, method: &Method, uri: &Uri, headers: &HeaderMap, body: Body) -> Response {
    let query: Vec<(&str, &str)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let has = |name: &str| query.iter().any(|(k, _)| *k == name);
    let (bucket, key) = uri.path().trim_start_matches('/').split_once('/').unwrap_or((uri.path(), ""));
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let tail = drain(received, body).await;
    let xml = |body: String| ([("content-type", "application/xml")], body).into_response();
    match *method {
        Method::POST if has("uploads") => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{bucket}</Bucket><Key>{key}</Key>\
             <UploadId>{}</UploadId></InitiateMultipartUploadResult>",
            uuid::Uuid::new_v4().simple()
        )),
        Method::PUT => {
            let mut response = StatusCode::OK.into_response();
            let etag = format!("\"{}\"", uuid::Uuid::new_v4().simple());
            if let Ok(etag) = HeaderValue::from_str(&etag) {
                response.headers_mut().insert("etag", etag);
            }
            // The CRC32 the SDK computed: in a header, or as a trailer of an aws-chunked body.
            let crc32 = headers.get("x-amz-checksum-crc32").cloned().or_else(|| trailer(&tail, "x-amz-checksum-crc32"));
            if let Some(crc32) = crc32 {
                response.headers_mut().insert("x-amz-checksum-crc32", crc32);
            }
            response
        }
        Method::POST if has("uploadId") => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://s3.amazonaws.com/{bucket}/{key}\
             </Location><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>\"{}-1\"</ETag>\
             </CompleteMultipartUploadResult>",
            uuid::Uuid::new_v4().simple()
        )),
        Method::DELETE if has("uploadId") => StatusCode::NO_CONTENT.into_response(),
        _ => (
            StatusCode::NOT_IMPLEMENTED,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code><Message>The S3 \
             stand-in only takes uploads</Message></Error>",
        )
            .into_response(),
    }
}

/// Reads `body` to its end, counting and discarding it; returns its last bytes (a trailer).
async fn drain(received: &AtomicU64, body: Body) -> Vec<u8> {
    const KEEP: usize = 256;
    let mut tail = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(KEEP)..]);
        if tail.len() > 2 * KEEP {
            tail.drain(..tail.len() - KEEP);
        }
    }
    tail
}

/// The value of trailer `name` (`name:value\r\n`) among the last bytes of an aws-chunked body.
fn trailer(tail: &[u8], name: &str) -> Option<HeaderValue> {
    let text = String::from_utf8_lossy(tail);
    let value = text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?;
    HeaderValue::from_str(value.trim()).ok()
}
