use ops_shared::FunctionError;
use ops_shared::keys::KeyError;
use ops_shared::postgres::DbError;
use ops_shared::secret_versions::StoreError;
use ops_shared::secrets::SecretError;
use ops_shared::staging::Held;

/// Everything that can stop a rotation step. Messages name the secret and never its value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("invalid rotation event: {0}")]
    InvalidEvent(String),
    #[error("rotation is not enabled for secret {secret}")]
    RotationDisabled { secret: String },
    #[error("token {token} is not a version of secret {secret}")]
    UnknownVersion { secret: String, token: String },
    #[error("version {token} of secret {secret} is not staged AWSPENDING")]
    NotPending { secret: String, token: String },
    #[error("secret {secret} has no usable rotation-strategy tag ({found}); expected one of: {expected}")]
    UnknownStrategy { secret: String, found: String, expected: &'static str },
    #[error("secret {secret} ({stage}) is malformed: {problem}")]
    MalformedSecret { secret: String, stage: String, problem: String },
    #[error("pending value of secret {secret} points at {pending}, not at {current} like the current value")]
    HostMismatch { secret: String, pending: String, current: String },
    #[error("secret {secret} has no AWSPENDING value for token {token}; createSecret has not run")]
    NoPendingValue { secret: String, token: String },
    #[error("the pending credential of secret {secret} does not work: {problem}")]
    TestFailed { secret: String, problem: String },
    #[error(
        "secret {secret} is not rotated before staging ({staging}) has: {held}. Rotate the staging secret \
         first, or let this one rotation through with `opsctl rotate {secret} --force-past-staging --reason ...`"
    )]
    HeldForStaging { secret: String, staging: String, held: Box<Held> },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot change the database password for secret {secret}: {source}")]
    Database {
        secret: String,
        #[source]
        source: DbError,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FunctionError for RotationError {
    fn kind(&self) -> &'static str {
        match self {
            RotationError::InvalidEvent(_) => "InvalidEvent",
            RotationError::RotationDisabled { .. }
            | RotationError::UnknownVersion { .. }
            | RotationError::NotPending { .. } => "RotationPrecondition",
            RotationError::UnknownStrategy { .. }
            | RotationError::MalformedSecret { .. }
            | RotationError::HostMismatch { .. } => "SecretConfiguration",
            RotationError::Key(KeyError::Malformed { .. }) => "SecretConfiguration",
            RotationError::NoPendingValue { .. } => "RotationOutOfOrder",
            RotationError::HeldForStaging { .. } => "StagingNotPassed",
            RotationError::TestFailed { .. } | RotationError::Key(KeyError::TestFailed { .. }) => "RotationTestFailed",
            RotationError::Database { .. }
            | RotationError::Key(KeyError::Upstream { .. })
            | RotationError::Secret(_)
            | RotationError::Store(_) => "DependencyFailure",
        }
    }
}
