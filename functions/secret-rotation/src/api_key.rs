//! API-key rotation, the same for every service: a key is created upstream under a name
//! derived from the rotation token (so a retried step finds it instead of making another), the
//! key two generations old is revoked in setSecret (so the previous key works until the next
//! rotation), and testSecret calls the service with the new key.

use ops_shared::keys::{self, Admin, CreateError, Found, KeyProvider};

use crate::error::RotationError;

/// The key named `name`: the one an earlier attempt made, else a new one. A create whose
/// outcome is unknown is never repeated blindly: the name is looked up first. Should two live
/// keys carry the name, the first is kept and the others revoked before this returns.
pub async fn obtain(provider: &dyn KeyProvider, admin: &Admin, name: &str) -> Result<(String, String), RotationError> {
    let mut attempt = 1;
    loop {
        let found = provider.find(admin, name).await?;
        if let Some((keep, extra)) = found.split_first() {
            revoke_all(provider, admin, extra).await?;
            return Ok((keep.id.clone(), provider.reveal(admin, keep).await?));
        }
        match provider.create(admin, name).await {
            Ok((id, key)) => {
                let others: Vec<Found> = provider.find(admin, name).await?.into_iter().filter(|f| f.id != id).collect();
                revoke_all(provider, admin, &others).await?;
                return Ok((id, key));
            }
            Err(CreateError::Refused(err)) => return Err(err.into()),
            Err(CreateError::Unknown(err)) if attempt >= keys::ATTEMPTS => return Err(err.into()),
            Err(CreateError::Unknown(err)) => {
                let next = "looking it up before trying again";
                tracing::warn!(error = %err, attempt, "a key create ended without a clear answer; {next}");
                tokio::time::sleep(keys::BACKOFF * 2_u32.saturating_pow(attempt - 1)).await;
                attempt += 1;
            }
        }
    }
}

async fn revoke_all(provider: &dyn KeyProvider, admin: &Admin, keys: &[Found]) -> Result<(), RotationError> {
    for duplicate in keys {
        tracing::warn!(key_id = %duplicate.id, "revoking a second key made under the same rotation name");
        provider.revoke(admin, &duplicate.id).await?;
    }
    Ok(())
}
