//! The restore engine: a backup's bytes checked against its manifest, restored with
//! `pg_restore`, its row counts and validation queries run. The monthly restore test runs it
//! into a scratch database; `opsctl dr restore` into the database being recovered (a Supabase
//! project's with [`live`]).

pub(crate) mod config;
pub(crate) mod error;
pub mod estimate;
pub(crate) mod live;
pub(crate) mod report;
pub(crate) mod verify;

pub use config::{ValidationQuery, VerifierConfig, default_validation_queries};
pub use error::VerifyError;
pub use report::{RestoreCheck, RestoreReport};
pub use verify::{Selection, Target, Verifier, pick_pg_restore, report_metrics};
