//! Resource names: the template's defaults (`NamePrefix` = `cineview`), used by the local stack.

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT_ID: &str = "123456789012";

/// The template's `NamePrefix` default.
pub const PREFIX: &str = "cineview";

pub const ALERT_TOPIC: &str = "cineview-ops-alerts";
pub const OPS_TOPIC: &str = "cineview-ops-notifications";
pub const STATE_TABLE: &str = "cineview-ops-state";
pub const DATABASE_SECRET: &str = "cineview-database";
pub const STAGING_DATABASE_SECRET: &str = "cineview-staging-database";
/// The health check's login, which may only connect.
pub const HEALTH_DATABASE_SECRET: &str = "cineview-health-database";
/// Its role on the app database.
pub const HEALTH_ROLE: &str = "cineview_health";
pub const SENTRY_WEBHOOK_SECRET: &str = "cineview-sentry-webhook";

pub fn backup_bucket() -> String {
    format!("cineview-ops-backups-{ACCOUNT_ID}")
}
