//! Google's key names (`projects/<p>/locations/global/keys/<id>`) and key ids, checked before
//! anything is deleted.

/// A key resource name this strategy may delete: `projects/<p>/locations/global/keys/<id>`, so
/// that a tampered secret cannot point the DELETE elsewhere.
pub(crate) fn is_key_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let safe =
        |part: &&str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "locations"
        && parts[3] == "global"
        && parts[4] == "keys"
        && parts.iter().all(safe)
}

/// Google key ids: lowercase letters, digits and hyphens, starting with a letter, at most 63.
pub fn key_id(name: &str) -> String {
    let id: String = name.replace('_', "-").chars().take(63).collect();
    id.trim_end_matches('-').to_owned()
}

/// A Google API key whose `api_key` is a standard key (`AIza...`), which Gemini refuses since
/// September 2026; keys bound to a service account start with `AQ.`.
pub fn is_standard_key(key: &str) -> bool {
    key.starts_with("AIza")
}
