//! The reports e-mailed to ops by scheduled invocations, so that nobody has to run the commands
//! for them: the runbook's daily checks every morning (the operator's `opsctl status`), and its
//! weekly checks every Monday (`opsctl digest`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_shared::alert::{Alert, AlertSink, PublishError, Severity};
use ops_shared::cloudwatch::CloudWatch;
use ops_shared::digest::{self, Week};
use ops_shared::objects::{ObjectStore, S3Objects};
use ops_shared::secret_versions::{SecretVersions, SecretsManagerVersions};
use ops_shared::secrets::SecretCache;
use ops_shared::sentry::SentryAccess;
use ops_shared::sentry_numbers::{SentryStats, SentryUnavailable};
use ops_shared::state::StateStore;
use ops_shared::status::{Alarms, Sources, Verdict, gather};
use ops_shared::telemetry::{Metrics, Unit};
use ops_shared::{ConfigError, Env};

use crate::error::SOURCE;

/// Where the reports read from, besides the state table. Its clients are built when a
/// report runs, once a day, not on every cold start of the health checks.
pub struct Reports {
    pub clients: ops_shared::aws::AwsClients,
    pub alarms: CloudWatch,
    pub secrets: Arc<SecretCache>,
    pub sentry_http: reqwest::Client,
    /// The secret with Sentry's read settings (`SENTRY_READ_SECRET_ARN`); without it the
    /// report says Sentry is not set up.
    pub sentry_secret: Option<String>,
    pub bucket: String,
    /// The stack's name prefix (secrets and alarms).
    pub prefix: String,
    pub backup_prefix: String,
    pub report_prefix: String,
}

impl Reports {
    /// `None` when the stack names no prefix (`NAME_PREFIX`): a deployment without the
    /// report. With one, the backup bucket (`BACKUP_BUCKET`) is required.
    pub fn from_env(
        env: &Env,
        startup: &ops_shared::Startup,
        http: reqwest::Client,
    ) -> Result<Option<Reports>, ConfigError> {
        let Some(prefix) = env.get("NAME_PREFIX") else { return Ok(None) };
        Ok(Some(Reports {
            clients: startup.clients.clone(),
            alarms: CloudWatch::new(&startup.sdk, http.clone()),
            secrets: Arc::clone(&startup.secrets),
            // Sentry's reads get answers in seconds or not at all within the report's budget.
            sentry_http: ops_shared::http::build_at_startup(ops_shared::http::builder(Duration::from_secs(8)))?,
            sentry_secret: env.get("SENTRY_READ_SECRET_ARN").map(str::to_owned),
            bucket: env.required("BACKUP_BUCKET")?,
            prefix: prefix.to_owned(),
            backup_prefix: env.or("BACKUP_PREFIX", "backups/"),
            report_prefix: env.or("REPORT_PREFIX", "reports/restore-tests/"),
        }))
    }

    /// The daily status over `state`, sent through `alerts`.
    pub async fn daily<T: StateStore, A: AlertSink>(
        &self,
        state: &T,
        alerts: &A,
        now: DateTime<Utc>,
    ) -> Result<Verdict, PublishError> {
        let (objects, secrets, sentry) = (self.objects(), self.secret_versions(), self.sentry().await);
        send_daily(&self.sources(state, &objects, &secrets, &sentry), alerts, now).await
    }

    /// The digest of the last whole week over `state`, sent through `alerts`.
    pub async fn weekly<T: StateStore, A: AlertSink>(
        &self,
        state: &T,
        alerts: &A,
        now: DateTime<Utc>,
    ) -> Result<Verdict, PublishError> {
        let (objects, secrets, sentry) = (self.objects(), self.secret_versions(), self.sentry().await);
        send_weekly(&self.sources(state, &objects, &secrets, &sentry), alerts, Week::last_complete(now), now).await
    }

    fn objects(&self) -> S3Objects {
        S3Objects::new(self.clients.s3(), self.bucket.clone())
    }

    fn secret_versions(&self) -> SecretsManagerVersions {
        SecretsManagerVersions::new(self.clients.secrets())
    }

    fn sources<'a, T>(
        &'a self,
        state: &'a T,
        objects: &'a S3Objects,
        secrets: &'a SecretsManagerVersions,
        sentry: &'a SentryAccess,
    ) -> Sources<'a, T, S3Objects, SecretsManagerVersions, CloudWatch, SentryAccess> {
        Sources {
            state,
            objects,
            secrets,
            alarms: &self.alarms,
            sentry,
            prefix: &self.prefix,
            backup_prefix: &self.backup_prefix,
            report_prefix: &self.report_prefix,
        }
    }

    /// Sentry's reader, from its secret as it is now (read once a day: no need to cache it).
    pub async fn sentry(&self) -> SentryAccess {
        let Some(secret) = &self.sentry_secret else {
            return SentryAccess::Unavailable(SentryUnavailable::NotConfigured {
                fix: "deploy the stack's template, which sets SENTRY_READ_SECRET_ARN on health-checker".to_owned(),
            });
        };
        SentryAccess::from_read(self.sentry_http.clone(), secret, self.secrets.refresh(secret).await)
    }
}

/// Gathers the status and sends it to ops as one alert (info when all is well, else warning),
/// its text the e-mail's body. Returns the verdict.
pub async fn send_daily<T, O, V, L, Q, A>(
    sources: &Sources<'_, T, O, V, L, Q>,
    alerts: &A,
    now: DateTime<Utc>,
) -> Result<Verdict, PublishError>
where
    T: StateStore,
    O: ObjectStore,
    V: SecretVersions,
    L: Alarms,
    Q: SentryStats,
    A: AlertSink,
{
    let status = gather(sources, now).await;
    for secret in &status.secrets {
        if let Some(days) = secret.days_left {
            rotation_metrics(&secret.name, days).emit();
        }
    }
    let verdict = status.verdict();
    let (severity, state) = report_state(verdict, status.unreadable.is_empty());
    // A report, not an incident: firing, so that its subject says what it is ("[INFO] Daily ops
    // status: ...", not "[RESOLVED] ...").
    let alert = Alert::new(SOURCE, severity, format!("{SOURCE}:daily-status"), format!("Daily ops status: {state}"))
        .summary(status.render())
        .detail("verdict", verdict_word(verdict));
    alerts.publish(&alert).await?;
    Ok(verdict)
}

/// Gathers the digest of `week` and sends it to ops as one alert (info when all is well, else
/// warning), its text the e-mail's body. Returns the verdict.
pub async fn send_weekly<T, O, V, L, Q, A>(
    sources: &Sources<'_, T, O, V, L, Q>,
    alerts: &A,
    week: Week,
    now: DateTime<Utc>,
) -> Result<Verdict, PublishError>
where
    T: StateStore,
    O: ObjectStore,
    V: SecretVersions,
    L: Alarms,
    Q: SentryStats,
    A: AlertSink,
{
    let digest = digest::gather(sources, week, now).await;
    let verdict = digest.verdict();
    let (severity, state) = report_state(verdict, digest.unreadable.is_empty());
    let title = format!("Weekly ops digest {}: {state}", digest.week.label);
    let alert = Alert::new(SOURCE, severity, format!("{SOURCE}:weekly-digest"), title)
        .summary(digest.render())
        .detail("week", digest.week.label.clone())
        .detail("verdict", verdict_word(verdict));
    alerts.publish(&alert).await?;
    Ok(verdict)
}

/// Days until a rotated secret's rotation is due (negative: overdue), from the daily report's
/// secrets' lines: the dashboard's rotation widget, drawn against its 14-day line.
pub fn rotation_metrics(secret: &str, days_left: i64) -> Metrics {
    Metrics::new("CineView/Ops").dimension("Secret", secret).value("DaysToRotation", days_left as f64, Unit::None)
}

/// A report's severity and the words for its state: info when all is well and everything was
/// read, else a warning (the pages come from the alerts and alarms themselves).
fn report_state(verdict: Verdict, all_read: bool) -> (Severity, &'static str) {
    match (verdict, all_read) {
        (Verdict::Ok, true) => (Severity::Info, "all as the runbook says"),
        (Verdict::Ok, false) => (Severity::Warning, "some sources could not be read"),
        (verdict, _) => (Severity::Warning, verdict_word(verdict)),
    }
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::Warning => "warnings",
        Verdict::Critical => "critical problems",
    }
}
