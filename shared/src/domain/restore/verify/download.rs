//! A backup's objects read from the store: small ones whole, the dump streamed to a file and
//! hashed on the way.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::adapters::objects::{Bytes, ObjectStore};
use crate::domain::restore::error::VerifyError;

pub(super) fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

pub(super) async fn read_all<S: ObjectStore>(store: &S, key: &str) -> Result<Vec<u8>, VerifyError> {
    let body = store.get(key).await?;
    body.collect().await.map_err(|e| VerifyError::Io(format!("reading {key}: {}", e.detail)))
}

/// Streams the object to `path`, returning its size and SHA-256. A blocking thread hashes and
/// writes while the next chunks arrive, in large writes rather than one per chunk.
pub(super) async fn download<S: ObjectStore>(
    store: &S,
    key: &str,
    path: &std::path::Path,
) -> Result<(u64, String), VerifyError> {
    let mut body = store.get_dump(key).await?;
    let file = std::fs::File::create(path).map_err(|e| VerifyError::Io(e.to_string()))?;
    let (chunks, mut arriving) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = std::io::BufWriter::with_capacity(1024 * 1024, file);
        let mut hasher = Sha256::new();
        let mut size = 0_u64;
        while let Some(chunk) = arriving.blocking_recv() {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)?;
        }
        file.flush()?;
        Ok::<_, std::io::Error>((size, hex::encode(hasher.finalize())))
    });
    let mut received = Ok(());
    while let Some(chunk) = body.next_chunk().await {
        match chunk {
            // A send fails only when the writer stopped on an error, which it returns below.
            Ok(chunk) => {
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                received = Err(VerifyError::Io(format!("downloading {key}: {}", e.detail)));
                break;
            }
        }
    }
    drop(chunks);
    let written = writer.await.map_err(|e| VerifyError::Io(format!("writing {}: {e}", path.display())))?;
    received?;
    written.map_err(|e| VerifyError::Io(format!("writing {}: {e}", path.display())))
}
