//! The S3 calls the backup functions make, behind a small trait; [`S3Objects`] is the adapter.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::ResponseChecksumValidation;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
pub use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, Stream, StreamExt};

use crate::adapters::aws::describe_sdk_error;

#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} on {key} failed: {detail}")]
pub struct ObjectError {
    pub operation: &'static str,
    pub key: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct UploadedPart {
    pub number: i32,
    pub etag: String,
    /// The part's CRC32 as S3 computed and checked it (base64), named again on completion.
    pub crc32: String,
}

/// An object's bytes as they arrive, chunk by chunk: a large object is never held whole in memory.
pub struct ObjectBody(BoxStream<'static, Result<Bytes, ObjectError>>);

impl ObjectBody {
    pub fn from_stream(chunks: impl Stream<Item = Result<Bytes, ObjectError>> + Send + 'static) -> Self {
        ObjectBody(chunks.boxed())
    }

    /// The next chunk; `None` at the end of the object.
    pub(crate) async fn next_chunk(&mut self) -> Option<Result<Bytes, ObjectError>> {
        self.0.next().await
    }

    /// The whole object in memory: for small ones (manifests, reports) only.
    pub async fn collect(mut self) -> Result<Vec<u8>, ObjectError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await {
            all.extend_from_slice(&chunk?);
        }
        Ok(all)
    }
}

impl Stream for ObjectBody {
    type Item = Result<Bytes, ObjectError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectBody")
    }
}

pub trait ObjectStore: Send + Sync {
    /// Starts a multipart upload whose parts each carry a CRC32, so S3 checks every part and
    /// stores the object's checksum as the combination of theirs.
    fn start_upload(&self, key: &str) -> impl Future<Output = Result<String, ObjectError>> + Send;
    /// Uploads part `number`; `body` is shared, so the caller may hash or reuse it meanwhile.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> impl Future<Output = Result<UploadedPart, ObjectError>> + Send;
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<UploadedPart>,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;
    fn abort_upload(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), ObjectError>> + Send;
    fn put(&self, key: &str, body: Vec<u8>, content_type: &str)
    -> impl Future<Output = Result<(), ObjectError>> + Send;
    /// Every object under `prefix` (all pages).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectInfo>, ObjectError>> + Send;
    /// The object's bytes, streamed as they arrive.
    fn get(&self, key: &str) -> impl Future<Output = Result<ObjectBody, ObjectError>> + Send;
    /// A dump's bytes, streamed as they arrive, for a caller that checks them against the
    /// manifest's SHA-256. A dump's checksum combines its parts' checksums, which the SDK
    /// cannot check (it would warn on every download).
    fn get_dump(&self, key: &str) -> impl Future<Output = Result<ObjectBody, ObjectError>> + Send {
        self.get(key)
    }
}

#[derive(Clone, Debug)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Objects { client, bucket: bucket.into() }
    }

    /// The SDK's chunks of a GetObject body as they come off the connection, passed on
    /// without copying.
    fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput, key: &str) -> ObjectBody {
        let chunks = futures::stream::unfold((out.body, key.to_owned()), |(mut body, key)| async move {
            let chunk = body.next().await?.map_err(|err| ObjectError {
                operation: "GetObject",
                key: key.clone(),
                detail: err.to_string(),
            });
            Some((chunk, (body, key)))
        });
        ObjectBody::from_stream(chunks)
    }
}

fn failed<E>(operation: &'static str, key: &str) -> impl FnOnce(aws_sdk_s3::error::SdkError<E>) -> ObjectError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let key = key.to_owned();
    move |err| ObjectError { operation, key, detail: describe_sdk_error(&err) }
}

impl ObjectStore for S3Objects {
    async fn start_upload(&self, key: &str) -> Result<String, ObjectError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/octet-stream")
            // The CRC32 every part carries anyway, declared for the upload: S3 checks each part
            // against it and keeps the combination of the parts' checksums (COMPOSITE) as the
            // object's. Without it, S3 gives the object a full-object CRC-64/NVME of its own.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(failed("CreateMultipartUpload", key))?;
        out.upload_id.ok_or_else(|| ObjectError {
            operation: "CreateMultipartUpload",
            key: key.to_owned(),
            detail: "no upload id returned".to_owned(),
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .customize()
            // The SDK's CRC32 checksum header, which is signed, already guards the part's bytes;
            // a signed payload would hash every part with SHA-256 once more.
            .disable_payload_signing()
            .send()
            .await
            .map_err(failed("UploadPart", key))?;
        let missing = |what: &str| ObjectError {
            operation: "UploadPart",
            key: key.to_owned(),
            detail: format!("part {number} returned no {what}"),
        };
        let etag = out.e_tag.ok_or_else(|| missing("ETag"))?;
        let crc32 = out.checksum_crc32.ok_or_else(|| missing("CRC32 checksum"))?;
        Ok(UploadedPart { number, etag, crc32 })
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<UploadedPart>) -> Result<(), ObjectError> {
        // An upload started with a checksum algorithm is completed with every part's checksum.
        let parts = parts
            .into_iter()
            .map(|p| CompletedPart::builder().part_number(p.number).e_tag(p.etag).checksum_crc32(p.crc32).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(failed("CompleteMultipartUpload", key))?;
        Ok(())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(failed("AbortMultipartUpload", key))?;
        Ok(())
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(failed("PutObject", key))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectError> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("ListObjectsV2", prefix))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    out.push(ObjectInfo {
                        key: key.to_owned(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        last_modified: object
                            .last_modified()
                            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<ObjectBody, ObjectError> {
        let out =
            self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(failed("GetObject", key))?;
        Ok(S3Objects::body(out, key))
    }

    async fn get_dump(&self, key: &str) -> Result<ObjectBody, ObjectError> {
        // Without asking for the checksum, S3 sends none and the SDK has nothing to check.
        let skip_checksum =
            aws_sdk_s3::Config::builder().response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        let get = self.client.get_object().bucket(&self.bucket).key(key).customize().config_override(skip_checksum);
        let out = get.send().await.map_err(failed("GetObject", key))?;
        Ok(S3Objects::body(out, key))
    }
}
