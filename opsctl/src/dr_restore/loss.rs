//! What a restore states at its end besides its checks: the data it lost (the window from the
//! backup's end to the freeze, and the rows per table from `dr assess`'s record, else worked
//! out from the safety backup's counts), and what comes next.

use ops_shared::backup::manifest_key;
use ops_shared::objects::ObjectStore;

use crate::dr::{self, FreezeRecord};

/// What the restore states of the data it lost, and what comes next.
pub(super) struct Stated {
    pub loss: Option<dr::DataLoss>,
    /// Where the figures come from, or why there are none.
    pub source: String,
    pub next_step: String,
}

/// The data lost by restoring `backup` into the database of `target_secret`, and the next
/// step: allow writes again while they are stopped, or undo a restore that failed.
pub(super) async fn state(
    store: &impl ObjectStore,
    target_secret: &str,
    backup: &ops_shared::backup::Manifest,
    safety_backup_key: &str,
    passed: bool,
) -> Stated {
    let freeze = dr::current_freeze(store, target_secret).await;
    let next_step = match &freeze {
        _ if !passed => format!(
            "the database may be partly restored: run the same opsctl dr restore again, or undo it with opsctl dr \
             restore --backup {safety_backup_key}"
        ),
        Ok(Some(record)) => {
            format!("writes are still stopped: check the app, then allow writes again with {}", thaw(record))
        }
        Ok(None) => "writes were not stopped: the app writes already; check it (opsctl status)".to_owned(),
        Err(_) => "check the app, then allow writes again with opsctl dr thaw if they are stopped".to_owned(),
    };
    let stated = match freeze {
        Ok(freeze) => {
            dr::loss_at_restore(store, target_secret, backup, freeze.as_ref(), &manifest_key(safety_backup_key))
                .await
                .map_err(|err| err.to_string())
        }
        Err(err) => Err(err.to_string()),
    };
    match stated {
        Ok(Some(stated)) => Stated { loss: Some(stated.loss), source: stated.source, next_step },
        Ok(None) => Stated {
            loss: None,
            source: format!(
                "unknown: no dr assess of this backup under this freeze, and no row counts of {safety_backup_key}"
            ),
            next_step,
        },
        Err(why) => Stated { loss: None, source: format!("unknown: {why}"), next_step },
    }
}

/// The freeze record's own thaw command (an older opsctl's record has none).
fn thaw(record: &FreezeRecord) -> &str {
    if record.thaw_command.is_empty() { "opsctl dr thaw" } else { &record.thaw_command }
}
