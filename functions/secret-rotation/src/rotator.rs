//! The four-step rotation protocol as Secrets Manager drives it. Every step re-checks the
//! secret's state first, so each is idempotent and safe to repeat after a crash.

use std::time::Instant;

use ops_shared::alert::{Alert, AlertSink, Severity};
use ops_shared::keys::{self, Admin, KeyProvider, KeySecret, Upstream};
use ops_shared::postgres::DbCredentials;
use ops_shared::rotation::{KeyService, STRATEGY_TAG, Strategy};
use ops_shared::secret_versions::{SecretDescription, SecretVersions};
use ops_shared::secrets::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretError, SecretValue};
use serde::Serialize;

use crate::api_key;
use crate::config::RotationConfig;
use crate::error::RotationError;
use crate::event::{RotationEvent, Step};
use crate::postgres::{self as pg, parse_credentials};
use crate::staging::{Admission, Ledger, forced_alert};

pub const SOURCE: &str = "secret-rotation";
/// Versions looked at for orphan keys in one rotation, the newest first.
const ORPHAN_LOOKUPS: usize = 10;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The token already holds AWSCURRENT: the rotation finished earlier.
    AlreadyCurrent,
    /// createSecret found the pending value already there.
    PendingExists,
    PendingCreated,
    /// setSecret found the pending credential already working upstream.
    AlreadySet,
    Set,
    Tested,
    Finished,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub secret: String,
    pub step: &'static str,
    pub outcome: Outcome,
    pub elapsed_ms: u128,
}

pub struct Rotator<S, A> {
    pub store: S,
    pub alerts: A,
    http: reqwest::Client,
    config: RotationConfig,
    /// Where runs are recorded and the staging gate is asked; `None` records nothing.
    ledger: Option<Box<dyn Ledger>>,
}

impl<S: SecretVersions, A: AlertSink> Rotator<S, A> {
    pub fn new(store: S, alerts: A, http: reqwest::Client, config: RotationConfig) -> Self {
        Rotator { store, alerts, http, config, ledger: None }
    }

    /// Records each run's outcome in `ledger` and asks its gate before createSecret.
    pub fn with_ledger(mut self, ledger: impl Ledger + 'static) -> Self {
        self.ledger = Some(Box::new(ledger));
        self
    }

    /// Runs one step; logs one line per step, alerts critical on failure and info when a
    /// rotation completes.
    pub async fn run(&self, event: &RotationEvent) -> Result<StepReport, RotationError> {
        let started = Instant::now();
        let mut seen = None;
        let result = self.step(event, &mut seen).await;
        let elapsed_ms = started.elapsed().as_millis();
        match result {
            Ok((name, outcome, strategy)) => {
                let step = event.step.as_str();
                tracing::info!(secret = %name, step, outcome = ?outcome, elapsed_ms, "rotation step done");
                if outcome == Outcome::Finished {
                    self.record(&seen, None).await;
                    self.announce_rotation(event, &name, strategy).await;
                }
                Ok(StepReport { secret: name, step: event.step.as_str(), outcome, elapsed_ms })
            }
            Err(err) => {
                let (secret, step) = (&event.secret_id, event.step.as_str());
                tracing::error!(secret = %secret, step, error = %err, elapsed_ms, "rotation step failed");
                self.record(&seen, Some(err.to_string())).await;
                self.alert_failure(event, &err).await;
                Err(err)
            }
        }
    }

    /// Records a finished (`error` is `None`) or failed run of the secret and strategy `seen`.
    async fn record(&self, seen: &Option<(String, Strategy)>, error: Option<String>) {
        if let (Some(ledger), Some((name, strategy))) = (&self.ledger, seen) {
            ledger.record(*strategy, name, error).await;
        }
    }

    /// The info alert of a completed rotation. A failure to publish it is logged, not returned:
    /// failing the step would make Secrets Manager retry a finished rotation.
    async fn announce_rotation(&self, event: &RotationEvent, name: &str, strategy: Option<Strategy>) {
        let alert =
            Alert::new(SOURCE, Severity::Info, format!("secret-rotation:{name}"), format!("Secret rotated: {name}"))
                .summary(format!(
                    "{name} was rotated ({}); the previous value stays valid as AWSPREVIOUS where the strategy allows.",
                    strategy.map(Strategy::as_str).unwrap_or("")
                ))
                .detail("secret", name.to_owned())
                .detail("version", event.token.clone())
                .resolved();
        if let Err(err) = self.alerts.publish(&alert).await {
            let what = "rotation completed but its info alert could not be published";
            tracing::error!(secret = %name, error = %err, "{what}");
        }
    }

    /// The critical alert of a failed step.
    async fn alert_failure(&self, event: &RotationEvent, err: &RotationError) {
        let step = event.step.as_str();
        let title = match err {
            RotationError::HeldForStaging { secret, .. } => {
                format!("Secret rotation held until staging passes: {secret}")
            }
            _ => format!("Secret rotation failed: {} ({step})", event.secret_id),
        };
        let mut alert = Alert::new(SOURCE, Severity::Critical, format!("secret-rotation:{}", event.secret_id), title)
            .summary(format!(
                "{step} failed for secret {}: {err}. AWSCURRENT was not changed by this step; \
             Secrets Manager will retry the rotation.",
                event.secret_id
            ))
            .detail("secret", event.secret_id.clone())
            .detail("step", step)
            .detail("version", event.token.clone())
            .detail("error_type", ops_shared::FunctionError::kind(err));
        if let RotationError::HeldForStaging { held, .. } = err {
            alert = alert.detail("staging_secret", held.staging_secret().unwrap_or("none").to_owned());
        }
        if let Err(publish) = self.alerts.publish(&alert).await {
            let secret = &event.secret_id;
            tracing::error!(secret = %secret, error = %publish, "the failure alert could not be published either");
        }
    }

    async fn step(
        &self,
        event: &RotationEvent,
        seen: &mut Option<(String, Strategy)>,
    ) -> Result<(String, Outcome, Option<Strategy>), RotationError> {
        let secret = &event.secret_id;
        let description = self.store.describe(secret).await?;
        let name = description.name.clone();
        if !description.rotation_enabled {
            return Err(RotationError::RotationDisabled { secret: name });
        }
        let stages = description
            .stages_of(&event.token)
            .ok_or_else(|| RotationError::UnknownVersion { secret: name.clone(), token: event.token.clone() })?;
        if stages.iter().any(|s| s == AWSCURRENT) {
            return Ok((name, Outcome::AlreadyCurrent, None));
        }
        if !stages.iter().any(|s| s == AWSPENDING) {
            return Err(RotationError::NotPending { secret: name, token: event.token.clone() });
        }
        let strategy = strategy_of(&name, &description.tags)?;
        *seen = Some((name.clone(), strategy));
        let outcome = match event.step {
            Step::Create => self.create(event, &name, strategy).await?,
            Step::Set => self.set(event, strategy).await?,
            Step::Test => self.test(event, strategy).await?,
            Step::Finish => self.finish(event, strategy, &description).await?,
        };
        Ok((name, outcome, Some(strategy)))
    }

    async fn pending_value(&self, event: &RotationEvent) -> Result<SecretValue, RotationError> {
        let secret = &event.secret_id;
        let value = self.store.value_of(secret, &event.token, AWSPENDING).await?;
        value.ok_or_else(|| RotationError::NoPendingValue { secret: secret.clone(), token: event.token.clone() })
    }

    async fn current(&self, secret: &str) -> Result<DbCredentials, RotationError> {
        let value = self.store.value_at(secret, AWSCURRENT).await?;
        parse_credentials(secret, AWSCURRENT, &value)
    }

    async fn pending(&self, event: &RotationEvent) -> Result<DbCredentials, RotationError> {
        parse_credentials(&event.secret_id, AWSPENDING, &self.pending_value(event).await?)
    }

    async fn put_pending<T: serde::Serialize>(&self, event: &RotationEvent, pending: &T) -> Result<(), RotationError> {
        let value = serde_json::to_string(pending).map_err(|e| RotationError::MalformedSecret {
            secret: event.secret_id.clone(),
            stage: AWSPENDING.to_owned(),
            problem: e.to_string(),
        })?;
        self.store.put_pending(&event.secret_id, &event.token, &value, event.rotation_token.as_deref()).await?;
        Ok(())
    }

    async fn create(&self, event: &RotationEvent, name: &str, strategy: Strategy) -> Result<Outcome, RotationError> {
        let secret = &event.secret_id;
        let current = self.store.value_at(secret, AWSCURRENT).await?;
        if self.store.value_of(secret, &event.token, AWSPENDING).await?.is_some() {
            return Ok(Outcome::PendingExists);
        }
        self.pass_staging_gate(event, name, strategy).await?;
        if let Some(service) = strategy.key_service() {
            self.create_api_key(event, service, &current).await?;
        } else {
            self.create_password(event, strategy, &parse_credentials(secret, AWSCURRENT, &current)?).await?;
        }
        Ok(Outcome::PendingCreated)
    }

    /// Staging first: refuses the rotation unless staging's rotation of `strategy` passed with
    /// this code, or an operator's pass lets this one through (ops hear who let it and why).
    async fn pass_staging_gate(
        &self,
        event: &RotationEvent,
        name: &str,
        strategy: Strategy,
    ) -> Result<(), RotationError> {
        let Some(ledger) = &self.ledger else { return Ok(()) };
        let staging = self.config.staging_prefix.clone().unwrap_or_default();
        match ledger.admit(strategy, name, &event.token).await {
            Admission::Off | Admission::Open(_) => Ok(()),
            Admission::Held(held) => {
                Err(RotationError::HeldForStaging { secret: name.to_owned(), staging, held: Box::new(held) })
            }
            Admission::Forced(pass, held) => {
                let alert = forced_alert(SOURCE, name, &staging, &pass, &held);
                tracing::warn!(secret = %name, by = %pass.by, "rotation forced past the staging gate");
                if let Err(err) = self.alerts.publish(&alert).await {
                    tracing::error!(secret = %name, error = %err, "the forced-rotation alert could not be published");
                }
                Ok(())
            }
        }
    }

    async fn create_password(
        &self,
        event: &RotationEvent,
        strategy: Strategy,
        current: &DbCredentials,
    ) -> Result<(), RotationError> {
        let secret = &event.secret_id;
        if strategy == Strategy::PostgresAlternatingUsers && current.masterarn.is_none() {
            return Err(RotationError::MalformedSecret {
                secret: secret.clone(),
                stage: AWSCURRENT.to_owned(),
                problem: "postgres-alternating-users needs masterarn".to_owned(),
            });
        }
        let mut pending = current.clone();
        pending.password =
            self.store.random_password(self.config.password_length, &self.config.exclude_characters).await?.into();
        if strategy == Strategy::PostgresAlternatingUsers {
            pending.username = pg::alternate_user(&current.username);
        }
        self.put_pending(event, &pending).await
    }

    fn upstream<'a>(&'a self, secret: &'a str) -> Upstream<'a> {
        Upstream { http: &self.http, secret, operation_timeout: self.config.operation_timeout }
    }

    /// The admin credential of `provider`, from the secret the key secret names.
    async fn admin(&self, secret: &str, key: &KeySecret, provider: &dyn KeyProvider) -> Result<Admin, RotationError> {
        let field = provider.admin_field();
        let arn = key.field(field).ok_or_else(|| RotationError::MalformedSecret {
            secret: secret.to_owned(),
            stage: AWSCURRENT.to_owned(),
            problem: format!("{field} is missing"),
        })?;
        let stored = self.store.value_at(arn, AWSCURRENT).await?.value;
        Ok(provider.admin(&stored, arn).await?)
    }

    /// Finds the key an earlier attempt created for this token, or creates it.
    async fn create_api_key(
        &self,
        event: &RotationEvent,
        service: KeyService,
        current: &SecretValue,
    ) -> Result<(), RotationError> {
        let secret = &event.secret_id;
        let current = KeySecret::parse(service, secret, AWSCURRENT, current)?;
        let provider = keys::for_service(service, self.upstream(secret), &current)?;
        let admin = self.admin(secret, &current, provider.as_ref()).await?;
        let (id, key) = api_key::obtain(provider.as_ref(), &admin, &keys::key_name(&event.token)).await?;
        self.put_pending(event, &current.with_key(id, key).to_json()).await
    }

    async fn set(&self, event: &RotationEvent, strategy: Strategy) -> Result<Outcome, RotationError> {
        match strategy.key_service() {
            Some(service) => self.set_api_key(event, service).await,
            None => self.set_password(event, strategy == Strategy::PostgresAlternatingUsers).await,
        }
    }

    async fn set_password(&self, event: &RotationEvent, alternating: bool) -> Result<Outcome, RotationError> {
        let secret = &event.secret_id;
        let timeout = self.config.database_timeout;
        let current = self.current(secret).await?;
        let pending = self.pending(event).await?;
        pg::same_server(secret, &current, &pending)?;
        let already = pg::logs_in(&pending, timeout)
            .await
            .map_err(|source| RotationError::Database { secret: secret.clone(), source })?;
        if already {
            return Ok(Outcome::AlreadySet);
        }
        if !alternating {
            let mut candidates = vec![current.clone()];
            match self.store.value_at(secret, AWSPREVIOUS).await {
                Ok(previous) => {
                    let previous = parse_credentials(secret, AWSPREVIOUS, &previous)?;
                    pg::same_server(secret, &current, &previous)?;
                    candidates.push(previous);
                }
                Err(SecretError::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
            pg::set_single_user(secret, &candidates, &pending, timeout).await?;
        } else {
            let master_arn = current.masterarn.clone().ok_or_else(|| RotationError::MalformedSecret {
                secret: secret.clone(),
                stage: AWSCURRENT.to_owned(),
                problem: "postgres-alternating-users needs masterarn".to_owned(),
            })?;
            let master_value = self.store.value_at(&master_arn, AWSCURRENT).await?;
            let master = parse_credentials(&master_arn, AWSCURRENT, &master_value)?;
            if master.host != pending.host || master.port != pending.port {
                return Err(RotationError::HostMismatch {
                    secret: secret.clone(),
                    pending: format!("{}:{}", pending.host, pending.port),
                    current: format!("{}:{} (master)", master.host, master.port),
                });
            }
            pg::set_alternating_users(secret, &master, &pending, timeout).await?;
        }
        Ok(Outcome::Set)
    }

    /// Revokes the key two generations old (AWSPREVIOUS), never the current or pending one.
    async fn set_api_key(&self, event: &RotationEvent, service: KeyService) -> Result<Outcome, RotationError> {
        let secret = &event.secret_id;
        let current = KeySecret::parse(service, secret, AWSCURRENT, &self.store.value_at(secret, AWSCURRENT).await?)?;
        let pending = KeySecret::parse(service, secret, AWSPENDING, &self.pending_value(event).await?)?;
        // Everything but the key must be the current value's: a pending value pointing at
        // another provider or project must not make us revoke keys there.
        if pending.fields != current.fields {
            return Err(RotationError::HostMismatch {
                secret: secret.clone(),
                pending: "a pending value with other provider fields".to_owned(),
                current: "the current value's".to_owned(),
            });
        }
        let previous = match self.store.value_at(secret, AWSPREVIOUS).await {
            Ok(value) => Some(KeySecret::parse(service, secret, AWSPREVIOUS, &value)?),
            Err(SecretError::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        let provider = keys::for_service(service, self.upstream(secret), &current)?;
        let admin = self.admin(secret, &current, provider.as_ref()).await?;
        let mut held = vec![current.key_id.as_str(), pending.key_id.as_str()];
        held.extend(previous.as_ref().map(|p| p.key_id.as_str()));
        self.revoke_orphans(event, provider.as_ref(), &admin, &held).await;
        match previous {
            Some(old) if old.key_id != current.key_id && old.key_id != pending.key_id => {
                provider.revoke(&admin, &old.key_id).await?;
                Ok(Outcome::Set)
            }
            _ => Ok(Outcome::AlreadySet),
        }
    }

    /// Revokes the keys a cancelled rotation of this secret left upstream, and tells ops which.
    /// A key is one only when its name is the rotation name of one of this secret's own
    /// versions (its token: no other secret's or stack's key can carry it), that version is
    /// held by no stage and is older than [`RotationConfig::orphan_after`], and no stage holds
    /// the key (`held`). The sweep never fails the rotation: what it cannot do, it reports.
    async fn revoke_orphans(&self, event: &RotationEvent, provider: &dyn KeyProvider, admin: &Admin, held: &[&str]) {
        let secret = &event.secret_id;
        let swept = async {
            let mut abandoned: Vec<_> = self
                .store
                .history(secret)
                .await?
                .into_iter()
                .filter(|v| v.stages.is_empty() && v.id != event.token && v.older_than(self.config.orphan_after))
                .collect();
            // The newest first, and a bounded number of lookups per rotation.
            abandoned.sort_by_key(|v| std::cmp::Reverse(v.created));
            abandoned.truncate(ORPHAN_LOOKUPS);
            let mut revoked = Vec::new();
            for version in abandoned {
                for found in provider.find(admin, &keys::key_name(&version.id)).await? {
                    if !held.contains(&found.id.as_str()) {
                        provider.revoke(admin, &found.id).await?;
                        revoked.push(found.id);
                    }
                }
            }
            Ok::<_, RotationError>(revoked)
        };
        let alert = match swept.await {
            Ok(revoked) if revoked.is_empty() => return,
            Ok(revoked) => Alert::new(
                SOURCE,
                Severity::Warning,
                format!("secret-rotation:orphans:{secret}"),
                format!("Orphan keys of {secret} revoked"),
            )
            .summary(format!(
                "A cancelled or abandoned rotation of {secret} had left {} live key(s) upstream that no stage \
                 holds: {}. They are revoked now.",
                revoked.len(),
                revoked.join(", ")
            ))
            .detail("secret", secret.clone())
            .detail("revoked_key_ids", revoked),
            Err(err) => Alert::new(
                SOURCE,
                Severity::Warning,
                format!("secret-rotation:orphans:{secret}"),
                format!("Orphan keys of {secret} could not be checked"),
            )
            .summary(format!(
                "Looking for keys a cancelled rotation of {secret} left upstream failed: {err}. The rotation goes \
                 on; keys left by earlier rotations may still be live."
            ))
            .detail("secret", secret.clone()),
        };
        tracing::warn!(secret = %secret, title = %alert.title, "orphan key sweep");
        if let Err(err) = self.alerts.publish(&alert).await {
            tracing::error!(secret = %secret, error = %err, "the orphan key alert could not be published");
        }
    }

    async fn test(&self, event: &RotationEvent, strategy: Strategy) -> Result<Outcome, RotationError> {
        let secret = &event.secret_id;
        if let Some(service) = strategy.key_service() {
            let pending = KeySecret::parse(service, secret, AWSPENDING, &self.pending_value(event).await?)?;
            keys::for_service(service, self.upstream(secret), &pending)?.check(&pending.api_key).await?;
        } else {
            let pending = self.pending(event).await?;
            pg::test_login(secret, &pending, self.config.database_timeout).await?;
        }
        Ok(Outcome::Tested)
    }

    /// Moves AWSCURRENT to the pending version, but only to a value the strategy can read: a
    /// replayed or manual finishSecret after a failed createSecret must not break the secret.
    async fn finish(
        &self,
        event: &RotationEvent,
        strategy: Strategy,
        description: &SecretDescription,
    ) -> Result<Outcome, RotationError> {
        let pending = self.pending_value(event).await?;
        match strategy.key_service() {
            Some(service) => drop(KeySecret::parse(service, &event.secret_id, AWSPENDING, &pending)?),
            None => drop(parse_credentials(&event.secret_id, AWSPENDING, &pending)?),
        }
        match description.version_with(AWSCURRENT) {
            Some(current) => self.store.move_current(&event.secret_id, &event.token, current).await?,
            None => {
                return Err(RotationError::MalformedSecret {
                    secret: description.name.clone(),
                    stage: AWSCURRENT.to_owned(),
                    problem: "no version is staged AWSCURRENT".to_owned(),
                });
            }
        }
        Ok(Outcome::Finished)
    }
}

/// The strategy the secret's `rotation-strategy` tag names.
fn strategy_of(secret: &str, tags: &std::collections::HashMap<String, String>) -> Result<Strategy, RotationError> {
    let tag = tags.get(STRATEGY_TAG);
    tag.and_then(|name| Strategy::parse(name)).ok_or_else(|| RotationError::UnknownStrategy {
        secret: secret.to_owned(),
        found: match tag {
            Some(name) => format!("tag {STRATEGY_TAG}={name:?}"),
            None => format!("no {STRATEGY_TAG} tag"),
        },
        expected: Strategy::NAMES,
    })
}
