//! Supabase's own backups: the Management API lists them; one COMPLETED within the RPO (or a
//! recent physical/PITR backup) means the platform side is healthy too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct BackupsResponse {
    #[serde(default)]
    backups: Vec<PlatformBackup>,
    #[serde(default)]
    physical_backup_data: Option<PhysicalBackupData>,
}

#[derive(Debug, Deserialize)]
struct PlatformBackup {
    #[serde(default)]
    status: String,
    #[serde(default)]
    inserted_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PhysicalBackupData {
    #[serde(default)]
    latest_physical_backup_date_unix: Option<i64>,
}

/// The newest completed platform backup, or why there is none to rely on (the backup's
/// platform check, and `opsctl preflight`).
pub async fn latest_platform_backup(
    http: &reqwest::Client,
    api_url: &str,
    project_ref: &str,
    token: &str,
) -> Result<Option<DateTime<Utc>>, String> {
    let url = format!("{api_url}/v1/projects/{project_ref}/database/backups");
    let response = http.get(&url).bearer_auth(token).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    let body: BackupsResponse = response.json().await.map_err(|e| format!("GET {url}: unexpected body: {e}"))?;
    let listed = body
        .backups
        .iter()
        .filter(|b| b.status.eq_ignore_ascii_case("COMPLETED"))
        .filter_map(|b| parse_time(b.inserted_at.as_deref()?))
        .max();
    let physical = body
        .physical_backup_data
        .and_then(|p| p.latest_physical_backup_date_unix)
        .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
    Ok(listed.max(physical))
}

/// Supabase writes `2024-05-01 02:00:00.123+00` or RFC 3339; accept both.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn is_fresh(latest: Option<DateTime<Utc>>, now: DateTime<Utc>, rpo: Duration) -> bool {
    latest.is_some_and(|at| now.signed_duration_since(at).to_std().map(|age| age <= rpo).unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_formats_parse() {
        assert!(parse_time("2026-11-25T02:00:00Z").is_some());
        assert!(parse_time("2026-11-25 02:00:00.123+00").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
