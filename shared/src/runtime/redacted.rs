//! [`Redacted`]: a value that never shows in `Debug` output, for the secrets a struct holds
//! (an API key, a password), so the struct can derive `Debug` and still be logged safely.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value: `Debug` prints `"[redacted]"`; the value itself is read through `Deref` or
/// [`Redacted::expose`]. Serialised as the bare value (it is stored in secrets as such). No
/// `Display`, so it cannot end up in a message by accident.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub fn new(value: T) -> Self {
        Redacted(value)
    }

    /// The secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl<T> Deref for Redacted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Redacted(value)
    }
}

impl<T: Serialize> Serialize for Redacted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Redacted<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_serde_sees_it() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Login {
            user: String,
            password: Redacted<String>,
        }
        let login: Login = serde_json::from_str(r#"{"user":"app","password":"s3cr3t-value"}"#).expect("parses");
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cr3t-value") && shown.contains("[redacted]"), "{shown}");
        assert_eq!(login.password.expose(), "s3cr3t-value");
        assert_eq!(login.password.len(), 12, "derefs to the value");
        assert!(serde_json::to_string(&login).expect("json").contains("s3cr3t-value"));
    }
}
