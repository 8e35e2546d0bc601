//! scheduled-backup's decisions against an in-memory bucket and a recording topic: a backup is
//! its parts in order with the manifest written last, and anything less leaves nothing behind.
//! No PostgreSQL, no moto, no sleeping. The integration tests run the same paths end to end
//! with pg_dump against moto.

use std::time::{Duration, Instant};

use ops_shared::FunctionError;
use ops_shared::backup::dump::stream_parts;
use ops_shared::backup::take::time_budget;
use ops_shared::backup::{Backup, BackupError, Dumped, Manifest, Plan, manifest_key};
use ops_shared::objects::ObjectStore;
use ops_shared::restore::{Selection, VerifyError};
use ops_shared::test_util::backups::{PART, at, backup, dump_bytes, plan, sha256, tables, verifier};
use ops_shared::test_util::{MemoryObjects, ObjectOp, RecordingAlerts};

/// Takes a backup of `dump` through the phases a real one goes through, `dump` standing for
/// pg_dump's output.
async fn back_up(
    b: &Backup<MemoryObjects, RecordingAlerts>,
    plan: &Plan,
    dump: &[u8],
) -> Result<Manifest, BackupError> {
    b.store_backup(plan, None, |upload_id| async move {
        let mut output = dump;
        let streamed = stream_parts(&b.store, &plan.key, &upload_id, &mut output, PART).await?;
        Ok(Dumped { tables: tables(), streamed, warnings: Vec::new() })
    })
    .await
    .map(|(manifest, _)| manifest)
}

/// Nothing under the prefix, no upload left open.
fn assert_nothing_stored(store: &MemoryObjects) {
    assert!(store.keys().is_empty(), "nothing may be left behind: {:?}", store.keys());
    assert!(store.open_uploads().is_empty(), "the upload must be aborted: {:?}", store.open_uploads());
}

#[tokio::test]
async fn a_backup_is_its_parts_in_order_with_the_manifest_written_last() {
    let store = MemoryObjects::default();
    let b = backup(&store);
    let dump = dump_bytes(5 * PART + 100);
    let manifest = back_up(&b, &plan("app", at(0), "a1"), &dump).await.expect("backup");

    assert_eq!(store.object(&manifest.key).expect("the dump").body, dump);
    assert_eq!((manifest.size_bytes, manifest.parts, manifest.part_size_bytes), (dump.len() as u64, 6, PART as u64));
    assert_eq!(manifest.sha256, sha256(&dump));
    assert_eq!(manifest.tables, tables());
    let stored = store.object(&manifest_key(&manifest.key)).expect("the manifest");
    assert_eq!(serde_json::from_slice::<Manifest>(&stored.body).expect("json"), manifest);
    assert_eq!(stored.content_type, "application/json");
    assert!(store.open_uploads().is_empty());
    assert_eq!((store.calls(ObjectOp::AbortUpload), store.calls(ObjectOp::Put)), (0, 1));
    // The restore test finds it.
    let (key, picked) = verifier(&store).select(&Selection::Latest).await.expect("a backup");
    assert_eq!((key, picked), (manifest_key(&manifest.key), manifest));
}

#[tokio::test]
async fn a_failed_part_upload_aborts_the_upload_and_writes_no_manifest() {
    let store = MemoryObjects::default();
    store.fail(ObjectOp::UploadPart, 3);
    let b = backup(&store);
    let err = back_up(&b, &plan("app", at(0), "a1"), &dump_bytes(5 * PART)).await.expect_err("part 3 fails");

    assert!(matches!(err, BackupError::Storage(_)), "{err:?}");
    assert!(err.to_string().contains("call 3 of UploadPart failed"), "{err}");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::CompleteUpload), 0, "a failed dump is never completed");
    assert_eq!(store.calls(ObjectOp::AbortUpload), 1);
    assert_eq!(store.calls(ObjectOp::Put), 0, "no manifest");
    let err = verifier(&store).select(&Selection::Latest).await.expect_err("no backup");
    assert!(matches!(err, VerifyError::NoBackup(_)), "{err:?}");
}

#[tokio::test]
async fn a_refused_completion_aborts_the_upload_and_writes_no_manifest() {
    let store = MemoryObjects::default();
    store.fail(ObjectOp::CompleteUpload, 1);
    let err = back_up(&backup(&store), &plan("app", at(0), "a1"), &dump_bytes(2 * PART)).await.expect_err("refused");

    assert!(err.to_string().contains("CompleteMultipartUpload"), "{err}");
    assert_nothing_stored(&store);
    assert_eq!((store.calls(ObjectOp::AbortUpload), store.calls(ObjectOp::Put)), (1, 0));
}

#[tokio::test]
async fn an_empty_dump_is_refused_and_its_upload_aborted() {
    let store = MemoryObjects::default();
    let err = back_up(&backup(&store), &plan("app", at(0), "a1"), b"").await.expect_err("empty");

    assert!(matches!(err, BackupError::EmptyDump), "{err:?}");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::UploadPart), 0);
}

#[tokio::test]
async fn a_dump_that_outlives_its_time_budget_is_aborted() {
    let store = MemoryObjects::default();
    let b = &backup(&store);
    let plan = &plan("app", at(0), "a1");
    // One part arrives, then pg_dump stalls; the budget is already spent.
    let stalled = b.store_backup(plan, Some(Duration::ZERO), |upload_id| async move {
        b.store.upload_part(&plan.key, &upload_id, 1, dump_bytes(PART).into()).await?;
        std::future::pending::<Result<Dumped, BackupError>>().await
    });
    // Only a guard: without a budget the dump would never end.
    let err = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("the budget ends the stalled dump")
        .expect_err("out of time");

    assert!(matches!(err, BackupError::OutOfTime { seconds: 0 }), "{err:?}");
    assert_eq!(err.kind(), "Timeout");
    assert_nothing_stored(&store);
    assert_eq!(store.calls(ObjectOp::UploadPart), 1);
}

#[test]
fn a_backup_starting_within_the_margin_of_its_deadline_is_out_of_time() {
    let margin = Duration::from_secs(30);
    assert!(time_budget(None, margin).expect("no deadline").is_none());
    let err = time_budget(Some(Instant::now() + Duration::from_secs(29)), margin).expect_err("too late");
    assert!(matches!(err, BackupError::OutOfTime { seconds: 0 }), "{err:?}");
    let budget = time_budget(Some(Instant::now() + Duration::from_secs(100)), margin).expect("time left");
    assert!(budget.is_some_and(|b| b <= Duration::from_secs(70) && b > Duration::from_secs(60)), "{budget:?}");
}
