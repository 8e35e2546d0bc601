//! What a backup is on S3 (the object layout and the manifest written beside each dump) and
//! the engine that takes one, shared by the functions and `opsctl`.

pub mod config;
pub mod dump;
pub mod error;
pub mod manifest;
pub mod plan;
pub mod platform;
pub mod scope;
pub mod take;

pub use config::{BackupConfig, Compression, SupabaseCheck};
pub use error::BackupError;
pub use manifest::{
    BackupSource, DUMP_SUFFIX, MANIFEST_SUFFIX, Manifest, SAFETY_LABEL, TableCount, dump_key, dump_key_of_manifest,
    manifest_key, normalise_prefix,
};
pub use plan::{Dumped, Plan};
pub use scope::{LeftOut, Platform, Scope};
pub use take::{Backup, BackupPhases, BackupSummary, valid_label};

// The restore test's report, which the backups' readers have always found here.
pub use crate::domain::restore::report::{RestoreCheck, RestoreReport};
