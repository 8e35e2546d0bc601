//! What can go wrong with an API key or its service.

/// What can go wrong with an API key or its service. Messages name the secret, never a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secret {secret} ({stage}) is malformed: {problem}")]
    Malformed { secret: String, stage: String, problem: String },
    #[error("the provider refused to {operation} for secret {secret}: {detail}")]
    Upstream { secret: String, operation: String, detail: String },
    #[error("the pending credential of secret {secret} does not work: {problem}")]
    TestFailed { secret: String, problem: String },
}
