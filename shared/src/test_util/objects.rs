//! The bucket's double: objects and multipart uploads, as S3 keeps them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::objects::{Bytes, ObjectBody, ObjectError, ObjectInfo, ObjectStore, UploadedPart};

/// An operation of [`ObjectStore`], to make one of its calls fail and to count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectOp {
    StartUpload,
    UploadPart,
    CompleteUpload,
    AbortUpload,
    Put,
    List,
    Get,
}

impl ObjectOp {
    /// The S3 operation's name, as [`crate::objects::S3Objects`]' errors give it.
    pub fn s3_name(self) -> &'static str {
        match self {
            ObjectOp::StartUpload => "CreateMultipartUpload",
            ObjectOp::UploadPart => "UploadPart",
            ObjectOp::CompleteUpload => "CompleteMultipartUpload",
            ObjectOp::AbortUpload => "AbortMultipartUpload",
            ObjectOp::Put => "PutObject",
            ObjectOp::List => "ListObjectsV2",
            ObjectOp::Get => "GetObject",
        }
    }
}

/// An object as the bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub body: Vec<u8>,
    pub content_type: String,
    pub last_modified: DateTime<Utc>,
}

struct Upload {
    key: String,
    /// Part number to the part as uploaded; uploading a number again replaces it, as in S3.
    parts: BTreeMap<i32, StoredPart>,
}

struct StoredPart {
    etag: String,
    /// Stands for the CRC32 S3 returns; completion must name it again.
    crc32: String,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Bucket {
    objects: BTreeMap<String, StoredObject>,
    /// By upload id.
    uploads: BTreeMap<String, Upload>,
    started: u64,
    calls: HashMap<ObjectOp, usize>,
    /// The calls (1-based, per operation) that fail.
    failing: HashMap<ObjectOp, Vec<usize>>,
}

/// A bucket, shared by its clones: objects, and multipart uploads that become an object when
/// completed or vanish when aborted. Any call of an operation can be made to fail; what was
/// stored can be read back. The multipart rules follow the Amazon S3 API Reference: UploadPart
/// (part numbers 1 to 10,000; `NoSuchUpload`), CompleteMultipartUpload (`NoSuchUpload`, parts
/// listed in ascending order or `InvalidPartOrder`, each part's number, ETag and checksum as
/// uploaded or `InvalidPart` (CompletedPart: the part's checksum, as the upload declares an
/// algorithm), an empty list `MalformedXML`) and AbortMultipartUpload (`NoSuchUpload`).
/// Its `EntityTooSmall` (a part under 5 MiB other than the last) is not checked, so tests can
/// use small parts.
#[derive(Clone, Default)]
pub struct MemoryObjects {
    bucket: Arc<Mutex<Bucket>>,
}

/// `get` hands bodies out in chunks of this size, as a connection would.
const CHUNK: usize = 4096;

fn object_error(op: ObjectOp, key: &str, detail: impl Into<String>) -> ObjectError {
    ObjectError { operation: op.s3_name(), key: key.to_owned(), detail: detail.into() }
}

impl MemoryObjects {
    /// The `nth` call (counting from 1, failed calls included) of `op` fails, as S3 does when
    /// it is throttled or has an internal error.
    pub fn fail(&self, op: ObjectOp, nth: usize) {
        if let Ok(mut bucket) = self.bucket.lock() {
            bucket.failing.entry(op).or_default().push(nth);
        }
    }

    /// How many times `op` was called, failed calls included.
    pub fn calls(&self, op: ObjectOp) -> usize {
        self.bucket.lock().map(|b| b.calls.get(&op).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Stores an object as it is, modified at `last_modified`, without counting a call.
    pub fn insert(&self, key: &str, body: impl Into<Vec<u8>>, last_modified: DateTime<Utc>) {
        if let Ok(mut bucket) = self.bucket.lock() {
            let object =
                StoredObject { body: body.into(), content_type: "application/octet-stream".into(), last_modified };
            bucket.objects.insert(key.to_owned(), object);
        }
    }

    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.bucket.lock().ok()?.objects.get(key).cloned()
    }

    /// Every object's key, in S3's order.
    pub fn keys(&self) -> Vec<String> {
        self.bucket.lock().map(|b| b.objects.keys().cloned().collect()).unwrap_or_default()
    }

    /// The keys of the multipart uploads neither completed nor aborted.
    pub fn open_uploads(&self) -> Vec<String> {
        self.bucket.lock().map(|b| b.uploads.values().map(|u| u.key.clone()).collect()).unwrap_or_default()
    }

    /// Counts the call and holds the bucket for it, or fails it as asked.
    fn call(&self, op: ObjectOp, key: &str) -> Result<std::sync::MutexGuard<'_, Bucket>, ObjectError> {
        let mut bucket = self.bucket.lock().map_err(|_| object_error(op, key, "lock poisoned"))?;
        let count = bucket.calls.entry(op).or_insert(0);
        *count += 1;
        let nth = *count;
        if bucket.failing.get(&op).is_some_and(|calls| calls.contains(&nth)) {
            return Err(object_error(
                op,
                key,
                format!("InternalError: call {nth} of {} failed (injected)", op.s3_name()),
            ));
        }
        Ok(bucket)
    }
}

impl ObjectStore for MemoryObjects {
    async fn start_upload(&self, key: &str) -> Result<String, ObjectError> {
        let mut bucket = self.call(ObjectOp::StartUpload, key)?;
        bucket.started += 1;
        let upload_id = format!("upload-{}", bucket.started);
        bucket.uploads.insert(upload_id.clone(), Upload { key: key.to_owned(), parts: BTreeMap::new() });
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        let op = ObjectOp::UploadPart;
        let mut bucket = self.call(op, key)?;
        if !(1..=10_000).contains(&number) {
            return Err(object_error(op, key, format!("InvalidArgument: part number {number}")));
        }
        let upload = bucket.uploads.get_mut(upload_id).filter(|u| u.key == key);
        let upload = upload.ok_or_else(|| object_error(op, key, "NoSuchUpload"))?;
        let etag = format!("\"{upload_id}-{number}\"");
        let crc32 = format!("crc32-{upload_id}-{number}");
        upload.parts.insert(number, StoredPart { etag: etag.clone(), crc32: crc32.clone(), bytes: body.to_vec() });
        Ok(UploadedPart { number, etag, crc32 })
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<UploadedPart>) -> Result<(), ObjectError> {
        let op = ObjectOp::CompleteUpload;
        let mut bucket = self.call(op, key)?;
        let upload = bucket.uploads.get(upload_id).filter(|u| u.key == key);
        let upload = upload.ok_or_else(|| object_error(op, key, "NoSuchUpload"))?;
        if parts.is_empty() {
            return Err(object_error(op, key, "MalformedXML: no parts"));
        }
        if parts.windows(2).any(|pair| pair[0].number >= pair[1].number) {
            return Err(object_error(op, key, "InvalidPartOrder"));
        }
        let mut body = Vec::new();
        for part in &parts {
            // S3: an upload started with a checksum algorithm needs every part's checksum.
            match upload.parts.get(&part.number) {
                Some(stored) if stored.etag == part.etag && stored.crc32 == part.crc32 => {
                    body.extend_from_slice(&stored.bytes)
                }
                _ => return Err(object_error(op, key, format!("InvalidPart: part {}", part.number))),
            }
        }
        bucket.uploads.remove(upload_id);
        let object = StoredObject { body, content_type: "application/octet-stream".into(), last_modified: Utc::now() };
        bucket.objects.insert(key.to_owned(), object);
        Ok(())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let mut bucket = self.call(ObjectOp::AbortUpload, key)?;
        match bucket.uploads.get(upload_id) {
            Some(upload) if upload.key == key => {
                bucket.uploads.remove(upload_id);
                Ok(())
            }
            _ => Err(object_error(ObjectOp::AbortUpload, key, "NoSuchUpload")),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), ObjectError> {
        let mut bucket = self.call(ObjectOp::Put, key)?;
        let object = StoredObject { body, content_type: content_type.to_owned(), last_modified: Utc::now() };
        bucket.objects.insert(key.to_owned(), object);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectError> {
        let bucket = self.call(ObjectOp::List, prefix)?;
        let under = bucket.objects.range(prefix.to_owned()..).take_while(|(key, _)| key.starts_with(prefix));
        Ok(under
            .map(|(key, object)| ObjectInfo {
                key: key.clone(),
                size: object.body.len() as u64,
                last_modified: Some(object.last_modified),
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<ObjectBody, ObjectError> {
        let bucket = self.call(ObjectOp::Get, key)?;
        let object = bucket.objects.get(key).ok_or_else(|| object_error(ObjectOp::Get, key, "NoSuchKey"))?;
        let body = Bytes::from(object.body.clone());
        let chunks: Vec<_> =
            (0..body.len()).step_by(CHUNK).map(|at| Ok(body.slice(at..body.len().min(at + CHUNK)))).collect();
        Ok(ObjectBody::from_stream(futures::stream::iter(chunks)))
    }
}
