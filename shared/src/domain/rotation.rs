//! The rotation strategies: how a kind of secret is rotated upstream. A secret names its
//! strategy in its `rotation-strategy` tag; the rotation checks it before anything changes and
//! `opsctl check-env` checks it ahead of time.

pub const STRATEGY_TAG: &str = "rotation-strategy";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    PostgresSingleUser,
    PostgresAlternatingUsers,
    HttpApiKey,
    SupabaseApiKey,
    GoogleApiKey,
}

/// Where an API-key strategy's keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyService {
    AiEngine,
    Supabase,
    Google,
}

impl KeyService {
    pub fn strategy(self) -> Strategy {
        match self {
            KeyService::AiEngine => Strategy::HttpApiKey,
            KeyService::Supabase => Strategy::SupabaseApiKey,
            KeyService::Google => Strategy::GoogleApiKey,
        }
    }
}

impl Strategy {
    pub const NAMES: &'static str =
        "postgres-single-user, postgres-alternating-users, http-api-key, supabase-api-key, google-api-key";

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::PostgresSingleUser => "postgres-single-user",
            Strategy::PostgresAlternatingUsers => "postgres-alternating-users",
            Strategy::HttpApiKey => "http-api-key",
            Strategy::SupabaseApiKey => "supabase-api-key",
            Strategy::GoogleApiKey => "google-api-key",
        }
    }

    /// The service an API-key strategy rotates keys at; `None` for database strategies.
    pub fn key_service(self) -> Option<KeyService> {
        match self {
            Strategy::HttpApiKey => Some(KeyService::AiEngine),
            Strategy::SupabaseApiKey => Some(KeyService::Supabase),
            Strategy::GoogleApiKey => Some(KeyService::Google),
            Strategy::PostgresSingleUser | Strategy::PostgresAlternatingUsers => None,
        }
    }

    pub fn parse(name: &str) -> Option<Strategy> {
        match name {
            "postgres-single-user" => Some(Strategy::PostgresSingleUser),
            "postgres-alternating-users" => Some(Strategy::PostgresAlternatingUsers),
            "http-api-key" => Some(Strategy::HttpApiKey),
            "supabase-api-key" => Some(Strategy::SupabaseApiKey),
            "google-api-key" => Some(Strategy::GoogleApiKey),
            _ => None,
        }
    }
}

/// The secrets the runbook rotates, under a stack's name prefix, with their strategy and the
/// runbook's longest interval in days (section 1.6: 90 for the critical secret, 180 for API
/// keys).
pub fn runbook_rotations(prefix: &str) -> Vec<(String, Strategy, u32)> {
    vec![
        (format!("{prefix}-supabase-service-role"), Strategy::SupabaseApiKey, 90),
        (format!("{prefix}-ai-engine-api"), Strategy::HttpApiKey, 180),
        (format!("{prefix}-gemini-api"), Strategy::GoogleApiKey, 180),
    ]
}
