//! What a backup is on S3 (the object layout and the manifest written beside each dump) and
//! the engine that takes one, shared by the functions and `opsctl`.

pub(crate) mod config;
pub mod dump;
pub(crate) mod error;
pub mod estimate;
pub(crate) mod manifest;
pub(crate) mod plan;
pub(crate) mod platform;
pub mod scope;
pub mod take;

pub use config::{BackupConfig, Compression, SupabaseCheck};
pub use error::BackupError;
pub use manifest::{
    BackupSource, DUMP_SUFFIX, MANIFEST_SUFFIX, Manifest, SAFETY_LABEL, TableCount, dump_key, manifest_key,
};
pub use plan::{Dumped, Plan};
pub use platform::{is_fresh, latest_platform_backup};
pub use scope::{LeftOut, Platform, Scope};
pub use take::{Backup, BackupPhases, BackupSummary, valid_label};

// The restore test's report, which the backups' readers have always found here.
pub use crate::domain::restore::report::{RestoreCheck, RestoreReport};
