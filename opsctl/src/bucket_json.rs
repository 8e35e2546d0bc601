//! JSON records kept in the backup bucket (the freeze records, the restore journals): read when
//! present, written whole.

use ops_shared::objects::{ObjectError, ObjectStore};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordFault {
    #[error(transparent)]
    Store(#[from] ObjectError),
    #[error("unreadable: {0}")]
    Unreadable(#[source] serde_json::Error),
    #[error(transparent)]
    Encode(serde_json::Error),
}

/// The record at `key`, or `None` when there is none.
pub async fn read<T: DeserializeOwned>(store: &impl ObjectStore, key: &str) -> Result<Option<T>, RecordFault> {
    let listed = store.list(key).await?;
    if !listed.iter().any(|o| o.key == key) {
        return Ok(None);
    }
    let body = store.get(key).await?.collect().await?;
    serde_json::from_slice(&body).map(Some).map_err(RecordFault::Unreadable)
}

/// Writes `record` to `key`, replacing what was there.
pub async fn write(store: &impl ObjectStore, key: &str, record: &impl Serialize) -> Result<(), RecordFault> {
    let body = serde_json::to_vec_pretty(record).map_err(RecordFault::Encode)?;
    Ok(store.put(key, body, "application/json").await?)
}
