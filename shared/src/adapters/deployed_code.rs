//! The code a function runs as Lambda deployed it: the `CodeSha256` Lambda reports for the
//! function's own name. The staging-first gate compares it with the staging twin's.

use std::future::Future;

use aws_sdk_lambda::Client;
use tokio::sync::OnceCell;

use crate::adapters::aws::describe_sdk_error;

/// The deployed code's hash, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeHash {
    Known(String),
    /// Plain words: what was asked and what went wrong.
    Unknown(String),
}

impl CodeHash {
    pub fn known(&self) -> Option<&str> {
        match self {
            CodeHash::Known(hash) => Some(hash),
            CodeHash::Unknown(_) => None,
        }
    }
}

/// Where a function learns the hash of its own deployed code.
pub trait DeployedCode: Send + Sync {
    fn code_sha256(&self) -> impl Future<Output = CodeHash> + Send;
}

/// `GetFunctionConfiguration` on the function's own name (`AWS_LAMBDA_FUNCTION_NAME`), asked
/// once: the first answer is kept for the life of the execution environment. A failed read is
/// not kept, so the next invocation asks again.
#[derive(Debug)]
pub struct LambdaCode {
    client: Client,
    function: Option<String>,
    cached: OnceCell<String>,
}

impl LambdaCode {
    /// `function` is `None` outside Lambda (no `AWS_LAMBDA_FUNCTION_NAME`): the hash is unknown.
    pub fn new(client: Client, function: Option<String>) -> Self {
        LambdaCode { client, function, cached: OnceCell::new() }
    }

    async fn read(&self, function: &str) -> Result<String, String> {
        let out = self
            .client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| format!("GetFunctionConfiguration on {function} failed: {}", describe_sdk_error(&e)))?;
        out.code_sha256
            .filter(|hash| !hash.is_empty())
            .ok_or_else(|| format!("Lambda reported no CodeSha256 for {function}"))
    }
}

impl DeployedCode for LambdaCode {
    async fn code_sha256(&self) -> CodeHash {
        let Some(function) = self.function.as_deref() else {
            return CodeHash::Unknown(
                "AWS_LAMBDA_FUNCTION_NAME is not set, so the function cannot look itself up".into(),
            );
        };
        match self.cached.get_or_try_init(|| self.read(function)).await {
            Ok(hash) => CodeHash::Known(hash.clone()),
            Err(reason) => CodeHash::Unknown(reason),
        }
    }
}
