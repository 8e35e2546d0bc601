//! In-memory stand-ins for the shared crate's traits, so decisions (de-duplication, repeats,
//! inhibition, rollback after a failed publish, races between overlapping runs, aborted
//! uploads, which backup a restore test picks) are tested in milliseconds, without moto. The
//! moto tests stay as contract tests of the real adapters. Built with the `test-util` feature,
//! so each function's decision tests use them without the integration test kit.

pub mod backups;
pub mod code;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::alert::{Alert, AlertSink, PublishError};
use crate::objects::{Bytes, ObjectBody, ObjectError, ObjectInfo, ObjectStore, UploadedPart};
use crate::secret_versions::{SecretDescription, SecretVersions, StoreError};
use crate::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, Clock, SecretError, SecretValue};
use crate::state::{StateError, StateStore, Versioned};
use crate::{Scrubber, SecretCache};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A secret cache whose client reaches no endpoint: for decisions that must not read a secret,
/// a read fails instead of answering.
pub fn offline_secrets() -> SecretCache {
    let offline = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    SecretCache::new(aws_sdk_secretsmanager::Client::from_conf(offline), Scrubber::default())
}

/// A state table: versioned documents and counters, with DynamoDB's conditional-write rules.
/// Clones share the table.
#[derive(Default, Clone)]
pub struct MemoryState {
    items: Arc<Mutex<HashMap<(String, String), Versioned>>>,
}

impl MemoryState {
    fn error(operation: &'static str, pk: &str, sk: &str) -> StateError {
        StateError {
            table: "memory".into(),
            operation,
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            detail: "lock poisoned".into(),
        }
    }

    /// The document at `pk`/`sk`, if any.
    pub fn document(&self, pk: &str, sk: &str) -> Option<Value> {
        self.items.lock().ok()?.get(&(pk.to_owned(), sk.to_owned())).map(|item| item.data.clone())
    }

    /// Stores `data` as it is, as a corrupted or older-format record would be.
    pub fn overwrite(&self, pk: &str, sk: &str, data: Value) {
        if let Ok(mut items) = self.items.lock() {
            let version = items.get(&(pk.to_owned(), sk.to_owned())).map_or(1, |item| item.version + 1);
            items.insert((pk.to_owned(), sk.to_owned()), Versioned { version, data });
        }
    }
}

impl StateStore for MemoryState {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Versioned>, StateError> {
        let items = self.items.lock().map_err(|_| Self::error("GetItem", pk, sk))?;
        Ok(items.get(&(pk.to_owned(), sk.to_owned())).cloned())
    }

    async fn put(
        &self,
        pk: &str,
        sk: &str,
        data: &Value,
        expected: Option<u64>,
        _expires_at: i64,
    ) -> Result<bool, StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("PutItem", pk, sk))?;
        let key = (pk.to_owned(), sk.to_owned());
        if items.get(&key).map(|item| item.version) != expected {
            return Ok(false);
        }
        items.insert(key, Versioned { version: expected.unwrap_or(0) + 1, data: data.clone() });
        Ok(true)
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("DeleteItem", pk, sk))?;
        items.remove(&(pk.to_owned(), sk.to_owned()));
        Ok(())
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<(String, String, Value)>, StateError> {
        let items = self.items.lock().map_err(|_| Self::error("Scan", pk_prefix, "*"))?;
        let mut found: Vec<(String, String, Value)> = items
            .iter()
            .filter(|((pk, _), _)| pk.starts_with(pk_prefix))
            .map(|((pk, sk), item)| (pk.clone(), sk.clone(), item.data.clone()))
            .collect();
        found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(found)
    }

    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        counters: &[(&str, i64)],
        _expires_at: i64,
    ) -> Result<(), StateError> {
        let mut items = self.items.lock().map_err(|_| Self::error("UpdateItem", pk, sk))?;
        let item = items
            .entry((pk.to_owned(), sk.to_owned()))
            .or_insert_with(|| Versioned { version: 0, data: Value::Object(Default::default()) });
        for (name, by) in counters {
            let now = item.data.get(*name).and_then(Value::as_i64).unwrap_or(0);
            item.data[*name] = Value::from(now + by);
        }
        Ok(())
    }
}

/// One secret's versions: id, value (none yet while a rotation has only staged the version)
/// and staging labels, in the order they were made.
#[derive(Default, Clone)]
struct MemorySecret {
    tags: HashMap<String, String>,
    rotation_enabled: bool,
    versions: Vec<(String, Option<String>, Vec<String>)>,
}

/// Secrets Manager's versions and staging labels, with its rules: a label is on one version at
/// a time, moving AWSCURRENT puts AWSPREVIOUS on the version it left, and a version id once
/// used cannot take another value.
#[derive(Default)]
pub struct MemorySecrets {
    secrets: Mutex<HashMap<String, MemorySecret>>,
    writes: Mutex<usize>,
}

impl MemorySecrets {
    /// A secret whose only version, `v1`, holds `value` as AWSCURRENT.
    pub fn add(&self, name: &str, value: &str, tags: &[(&str, &str)], rotation_enabled: bool) {
        let secret = MemorySecret {
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            rotation_enabled,
            versions: vec![("v1".to_owned(), Some(value.to_owned()), vec![AWSCURRENT.to_owned()])],
        };
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.insert(name.to_owned(), secret);
        }
    }

    /// Stages `version` AWSPENDING with `value`, as a rotation's createSecret would have, or
    /// with none, as Secrets Manager does when it starts a rotation.
    pub fn add_pending(&self, name: &str, version: &str, value: Option<&str>) {
        if let Ok(mut secrets) = self.secrets.lock()
            && let Some(secret) = secrets.get_mut(name)
        {
            Self::take_label(secret, AWSPENDING);
            secret.versions.push((version.to_owned(), value.map(str::to_owned), vec![AWSPENDING.to_owned()]));
        }
    }

    /// The value staged `stage`, if any.
    pub fn value(&self, name: &str, stage: &str) -> Option<String> {
        let secrets = self.secrets.lock().ok()?;
        let secret = secrets.get(name)?;
        secret.versions.iter().find(|(_, _, stages)| stages.iter().any(|s| s == stage)).and_then(|(_, v, _)| v.clone())
    }

    /// How many versions the secret has.
    pub fn version_count(&self, name: &str) -> usize {
        self.secrets.lock().ok().and_then(|s| s.get(name).map(|secret| secret.versions.len())).unwrap_or(0)
    }

    /// How many writes (PutSecretValue, UpdateSecretVersionStage) were made.
    pub fn writes(&self) -> usize {
        self.writes.lock().map(|w| *w).unwrap_or(0)
    }

    fn take_label(secret: &mut MemorySecret, label: &str) {
        for (_, _, stages) in &mut secret.versions {
            stages.retain(|s| s != label);
        }
    }

    fn wrote(&self) {
        if let Ok(mut writes) = self.writes.lock() {
            *writes += 1;
        }
    }

    fn missing(operation: &'static str, secret: &str) -> StoreError {
        StoreError { operation, secret: secret.to_owned(), detail: "ResourceNotFoundException".to_owned() }
    }
}

impl SecretVersions for MemorySecrets {
    /// Versions here have no creation time: none is old enough to be judged abandoned.
    async fn history(&self, name: &str) -> Result<Vec<crate::secret_versions::VersionInfo>, StoreError> {
        let secrets = self.secrets.lock().map_err(|_| Self::missing("ListSecretVersionIds", name))?;
        let secret = secrets.get(name).ok_or_else(|| Self::missing("ListSecretVersionIds", name))?;
        Ok(secret
            .versions
            .iter()
            .map(|(id, _, stages)| crate::secret_versions::VersionInfo {
                id: id.clone(),
                created: None,
                stages: stages.clone(),
            })
            .collect())
    }

    async fn describe(&self, name: &str) -> Result<SecretDescription, StoreError> {
        let secrets = self.secrets.lock().map_err(|_| Self::missing("DescribeSecret", name))?;
        let secret = secrets.get(name).ok_or_else(|| Self::missing("DescribeSecret", name))?;
        Ok(SecretDescription {
            name: name.to_owned(),
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"),
            rotation_enabled: secret.rotation_enabled,
            tags: secret.tags.clone(),
            versions: secret.versions.iter().map(|(id, _, stages)| (id.clone(), stages.clone())).collect(),
            ..SecretDescription::default()
        })
    }

    async fn value_of(&self, name: &str, version: &str, stage: &str) -> Result<Option<SecretValue>, SecretError> {
        let secrets =
            self.secrets.lock().map_err(|_| SecretError::Unavailable { id: name.into(), detail: "".into() })?;
        Ok(secrets.get(name).and_then(|secret| {
            secret.versions.iter().find(|(id, _, stages)| id == version && stages.iter().any(|s| s == stage)).and_then(
                |(id, value, _)| Some(SecretValue { version_id: Some(id.clone()), value: value.clone()?, arn: None }),
            )
        }))
    }

    async fn value_at(&self, name: &str, stage: &str) -> Result<SecretValue, SecretError> {
        let not_found = || SecretError::NotFound { id: name.to_owned(), stage: stage.to_owned() };
        let secrets = self.secrets.lock().map_err(|_| not_found())?;
        let secret = secrets.get(name).ok_or_else(not_found)?;
        secret
            .versions
            .iter()
            .find(|(_, _, stages)| stages.iter().any(|s| s == stage))
            .and_then(|(id, value, _)| {
                Some(SecretValue { version_id: Some(id.clone()), value: value.clone()?, arn: None })
            })
            .ok_or_else(not_found)
    }

    async fn put_pending(
        &self,
        name: &str,
        token: &str,
        value: &str,
        _rotation: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut secrets = self.secrets.lock().map_err(|_| Self::missing("PutSecretValue", name))?;
        let secret = secrets.get_mut(name).ok_or_else(|| Self::missing("PutSecretValue", name))?;
        match secret.versions.iter_mut().find(|(id, _, _)| id == token) {
            Some((_, Some(existing), _)) if existing == value => return Ok(()),
            Some((_, Some(_), _)) => {
                let detail = "ResourceExistsException: the version exists with another value".to_owned();
                return Err(StoreError { operation: "PutSecretValue", secret: name.to_owned(), detail });
            }
            Some((_, empty, _)) => *empty = Some(value.to_owned()),
            None => {
                Self::take_label(secret, AWSPENDING);
                secret.versions.push((token.to_owned(), Some(value.to_owned()), vec![AWSPENDING.to_owned()]));
            }
        }
        drop(secrets);
        self.wrote();
        Ok(())
    }

    async fn move_current(&self, name: &str, to_version: &str, from_version: &str) -> Result<(), StoreError> {
        let mut secrets = self.secrets.lock().map_err(|_| Self::missing("UpdateSecretVersionStage", name))?;
        let secret = secrets.get_mut(name).ok_or_else(|| Self::missing("UpdateSecretVersionStage", name))?;
        let holds_current =
            |id: &str| secret.versions.iter().any(|(v, _, stages)| v == id && stages.iter().any(|s| s == AWSCURRENT));
        if !holds_current(from_version) || !secret.versions.iter().any(|(v, _, _)| v == to_version) {
            let detail = "InvalidParameterException: AWSCURRENT is not on the version to remove it from".to_owned();
            return Err(StoreError { operation: "UpdateSecretVersionStage", secret: name.to_owned(), detail });
        }
        Self::take_label(secret, AWSCURRENT);
        Self::take_label(secret, AWSPREVIOUS);
        for (id, _, stages) in &mut secret.versions {
            if id == to_version {
                stages.push(AWSCURRENT.to_owned());
            } else if id == from_version {
                stages.push(AWSPREVIOUS.to_owned());
            }
        }
        drop(secrets);
        self.wrote();
        Ok(())
    }

    async fn random_password(&self, length: i64, _exclude: &str) -> Result<String, StoreError> {
        Ok("x".repeat(usize::try_from(length).unwrap_or(32)))
    }
}

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub body: String,
    pub alert: Alert,
}

/// An alert topic that records what it is given, and fails the next publishes on request.
#[derive(Default)]
pub struct RecordingAlerts {
    published: Mutex<Vec<Published>>,
    failures: Mutex<usize>,
}

impl RecordingAlerts {
    pub fn published(&self) -> Vec<Published> {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn subjects(&self) -> Vec<String> {
        self.published().into_iter().map(|p| p.subject).collect()
    }

    /// The next `count` publishes fail, as SNS does when the topic is gone or throttled.
    pub fn fail_next(&self, count: usize) {
        if let Ok(mut failures) = self.failures.lock() {
            *failures = count;
        }
    }
}

impl AlertSink for RecordingAlerts {
    async fn publish_message(&self, subject: &str, body: &str, alert: &Alert) -> Result<(), PublishError> {
        let failed = self.failures.lock().map(|mut left| {
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        });
        if failed.unwrap_or(true) {
            return Err(PublishError {
                topic: "memory".into(),
                dedup_key: alert.dedup_key.clone(),
                detail: "publish refused (injected)".into(),
            });
        }
        if let Ok(mut published) = self.published.lock() {
            published.push(Published { subject: subject.to_owned(), body: body.to_owned(), alert: alert.clone() });
        }
        Ok(())
    }
}

/// A clock that moves only when told, shared by its clones.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.lock().map(|now| *now).unwrap_or_else(|_| Instant::now())
    }
}

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
