//! "Backups": Supabase's own backups on and recent (the backup function's platform check, with
//! its settings as deployed), the bucket's 30-day retention as deployed, a baseline backup, and
//! the newest backup restore-tested with every validation passed.

use std::time::Duration;

use ops_shared::backup::{is_fresh, latest_platform_backup};
use ops_shared::objects::S3Objects;
use ops_shared::secret_versions::SecretVersions;
use ops_shared::secrets::AWSCURRENT;

use super::{BACKUPS, Item, Sources, State};
use crate::deployed::{Functions, SupabaseSettings};
use crate::dr::{self, BackupEntry};
use crate::stack::{BACKUP_PREFIX, REPORT_PREFIX};

/// The runbook's retention of backups, in days.
pub const RETENTION_DAYS: i32 = 30;

pub async fn items(sources: &Sources<'_>, functions: &Functions) -> Vec<Item> {
    let s3 = ops_shared::aws::s3_client(sources.sdk);
    let objects = S3Objects::new(s3.clone(), sources.stack.bucket());
    let (baseline, tested) = match dr::backups(&objects, BACKUP_PREFIX, REPORT_PREFIX, sources.now).await {
        Ok(entries) => (baseline(sources, &entries), restore_tested(sources, &entries)),
        Err(err) => {
            let reason = format!("cannot read the backups in {}: {err}", sources.stack.bucket());
            (State::could_not_check(reason.clone()), State::could_not_check(reason))
        }
    };
    vec![
        Item::new(BACKUPS, "Supabase's automated backups on and recent", supabase(sources, functions).await),
        Item::new(
            BACKUPS,
            format!("backups kept {RETENTION_DAYS} days (bucket lifecycle)"),
            retention(sources, &s3).await,
        ),
        Item::new(BACKUPS, "a baseline backup taken", baseline),
        Item::new(BACKUPS, "the newest backup restore-tested, every validation passed", tested),
    ]
}

/// The backup function's own check of Supabase's backups, with its settings as deployed.
async fn supabase(sources: &Sources<'_>, functions: &Functions) -> State {
    let settings = match functions.supabase_settings() {
        Ok(settings) => settings,
        Err(state) => return state,
    };
    let SupabaseSettings { project_ref, token_secret, api_url, rpo_hours } = settings;
    let token = match sources.store.value_at(token_secret, AWSCURRENT).await {
        Ok(token) => token,
        Err(err) => return State::could_not_check(format!("the Supabase access token {token_secret}: {err}")),
    };
    let latest = match latest_platform_backup(sources.http, api_url, project_ref, &token.value).await {
        Ok(latest) => latest,
        Err(err) => return State::could_not_check(format!("Supabase's backups could not be listed: {err}")),
    };
    if is_fresh(latest, sources.now, Duration::from_secs(rpo_hours * 3600)) {
        return State::Ok;
    }
    let reason = match latest {
        Some(at) => format!("the newest completed Supabase backup is from {at}, older than the {rpo_hours} h RPO"),
        None => format!("Supabase lists no completed backup of project {project_ref}"),
    };
    State::failed(
        reason,
        format!(
            "turn on automated backups (Supabase dashboard: project {project_ref}, Database, Backups; a paid plan), \
             then check again"
        ),
    )
}

/// A lifecycle rule on `backups/` that expires backups, and the versions they leave, after
/// the runbook's 30 days, as template.yaml's `keep-backups-30-days`.
async fn retention(sources: &Sources<'_>, s3: &aws_sdk_s3::Client) -> State {
    let bucket = sources.stack.bucket();
    let rules = match s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await {
        Ok(config) => config.rules().to_vec(),
        Err(err) if ops_shared::aws::sdk_error_code(&err) == Some("NoSuchLifecycleConfiguration") => Vec::new(),
        Err(err) => {
            let detail = ops_shared::aws::describe_sdk_error(&err);
            return State::could_not_check(format!("s3:GetLifecycleConfiguration of {bucket}: {detail}"));
        }
    };
    let kept = rules.iter().any(|rule| {
        let enabled = rule.status().as_str() == "Enabled";
        #[allow(deprecated)]
        let prefix = rule.filter().and_then(|f| f.prefix()).or(rule.prefix());
        let days = rule.expiration().and_then(|e| e.days());
        let noncurrent = rule.noncurrent_version_expiration().and_then(|n| n.noncurrent_days());
        enabled
            && prefix == Some(BACKUP_PREFIX)
            && days == Some(RETENTION_DAYS)
            && noncurrent.is_some_and(|n| n >= RETENTION_DAYS)
    });
    if kept {
        return State::Ok;
    }
    State::failed(
        format!(
            "no enabled lifecycle rule of {bucket} expires {BACKUP_PREFIX} after {RETENTION_DAYS} days and their \
             noncurrent versions after {RETENTION_DAYS} or more"
        ),
        format!(
            "aws s3api put-bucket-lifecycle-configuration --bucket {bucket} --lifecycle-configuration \
             file://lifecycle.json (the rules of template.yaml's BackupBucket, keep-backups-30-days first)"
        ),
    )
}

fn baseline(sources: &Sources<'_>, entries: &[BackupEntry]) -> State {
    if entries.is_empty() {
        let prefix = &sources.stack.prefix;
        return State::failed(
            format!("no backup with a manifest in {}", sources.stack.bucket()),
            format!("opsctl backup --prefix {prefix} --label baseline --wait"),
        );
    }
    State::Ok
}

fn restore_tested(sources: &Sources<'_>, entries: &[BackupEntry]) -> State {
    let prefix = &sources.stack.prefix;
    let Some(newest) = entries.first() else {
        return State::failed(
            "no backup to restore-test".to_owned(),
            format!("opsctl backup --prefix {prefix} --label baseline --wait, then opsctl restore-test --wait"),
        );
    };
    let fix = format!("opsctl restore-test --prefix {prefix} --backup {} --wait", newest.key);
    match newest.restore_test.as_deref() {
        Some("passed") => State::Ok,
        Some(result) => State::failed(format!("the newest restore test of {} {result}", newest.key), fix),
        None => State::failed(format!("no restore test covered the newest backup, {}", newest.key), fix),
    }
}
