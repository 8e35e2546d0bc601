//! The S3 calls the backup functions make, behind a small trait; [`S3Objects`] is the adapter.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use chrono::{DateTime, Utc};

use crate::aws::describe_sdk_error;

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
}

pub trait ObjectStore: Send + Sync {
    fn start_upload(&self, key: &str) -> impl Future<Output = Result<String, ObjectError>> + Send;
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
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
    fn get(&self, key: &str) -> impl Future<Output = Result<ByteStream, ObjectError>> + Send;
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
        body: Vec<u8>,
    ) -> Result<UploadedPart, ObjectError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(failed("UploadPart", key))?;
        let etag = out.e_tag.ok_or_else(|| ObjectError {
            operation: "UploadPart",
            key: key.to_owned(),
            detail: format!("part {number} returned no ETag"),
        })?;
        Ok(UploadedPart { number, etag })
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<UploadedPart>) -> Result<(), ObjectError> {
        let parts =
            parts.into_iter().map(|p| CompletedPart::builder().part_number(p.number).e_tag(p.etag).build()).collect();
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

    async fn get(&self, key: &str) -> Result<ByteStream, ObjectError> {
        let out =
            self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(failed("GetObject", key))?;
        Ok(out.body)
    }
}
