//! API keys and the services that issue them: the secret's shape ([`KeySecret`], checked the
//! same way by the rotation and by `opsctl check-env`), and one [`KeyProvider`] per service;
//! [`for_service`] is the one place that picks one.

pub(crate) mod ai_engine;
pub(crate) mod error;
pub mod google;
pub(crate) mod provider;
pub(crate) mod secret;
pub(crate) mod supabase;

pub use error::KeyError;
pub use provider::{ATTEMPTS, Admin, BACKOFF, Call, CreateError, Found, KeyProvider, Upstream};
pub use secret::KeySecret;

use crate::domain::rotation::KeyService;

/// The provider of `service`, addressed by the secret's own fields.
pub fn for_service<'a>(
    service: KeyService,
    upstream: Upstream<'a>,
    secret: &'a KeySecret,
) -> Result<Box<dyn KeyProvider + 'a>, KeyError> {
    let missing = || upstream.malformed(format!("the fields {} needs are missing", service.strategy().as_str()));
    Ok(match service {
        KeyService::AiEngine => Box::new(ai_engine::AiEngine::new(upstream, secret).ok_or_else(missing)?),
        KeyService::Supabase => Box::new(supabase::Supabase::new(upstream, secret).ok_or_else(missing)?),
        KeyService::Google => Box::new(google::Google::new(upstream, secret).ok_or_else(missing)?),
    })
}

/// The upstream key name for a rotation token (letters, digits and `_` only, as Supabase wants;
/// short enough for Google's 63-character key ids).
pub fn key_name(token: &str) -> String {
    let safe: String = token.chars().filter(char::is_ascii_alphanumeric).take(54).collect();
    format!("rotation_{}", safe.to_ascii_lowercase())
}
