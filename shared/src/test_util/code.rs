//! A function's deployed code as the staging gate sees it, set by the test.

use std::sync::{Arc, Mutex};

use crate::deployed_code::{CodeHash, DeployedCode};

/// Reports the hash it is given (or that it is unknown), and can be changed as a redeploy would.
/// Clones share the hash.
#[derive(Clone)]
pub struct FixedCode(Arc<Mutex<CodeHash>>);

impl FixedCode {
    pub fn known(hash: &str) -> FixedCode {
        FixedCode(Arc::new(Mutex::new(CodeHash::Known(hash.to_owned()))))
    }

    pub fn unknown(reason: &str) -> FixedCode {
        FixedCode(Arc::new(Mutex::new(CodeHash::Unknown(reason.to_owned()))))
    }

    /// The code now deployed is `hash`.
    pub fn deploy(&self, hash: &str) {
        if let Ok(mut code) = self.0.lock() {
            *code = CodeHash::Known(hash.to_owned());
        }
    }
}

impl DeployedCode for FixedCode {
    async fn code_sha256(&self) -> CodeHash {
        match self.0.lock() {
            Ok(code) => code.clone(),
            Err(_) => CodeHash::Unknown("lock poisoned".to_owned()),
        }
    }
}
