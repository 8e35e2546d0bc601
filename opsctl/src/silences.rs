//! `opsctl silence add | list | expire`: the silences the forwarder applies, kept in the stack's
//! state table. Expiring one ends it now; the forwarder's sweep then tells ops what it held.

use chrono::{DateTime, Duration, Utc};
use ops_shared::silence::{Matcher, SILENCES, Silence, Silences};
use ops_shared::state::{self, StateError, StateStore};

const WRITE_ATTEMPTS: usize = 5;
/// The longest a silence may last: longer ones hide too much for too long.
pub const MAX_DAYS: i64 = 14;

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error(
        "the silences could not be read or written: {0} (allow dynamodb:GetItem and dynamodb:PutItem on the state table)"
    )]
    State(#[from] StateError),
    #[error("the silences kept changing under other writers; try again")]
    Contended,
    #[error("no silence {0}: `opsctl silence list` shows them")]
    NotFound(String),
}

/// A duration as `--for` takes it: `90m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 30m, 2h or 1d");
    let text = text.trim();
    let (number, minutes_per_unit) = [("m", 1), ("h", 60), ("d", 24 * 60)]
        .iter()
        .find_map(|(unit, minutes)| text.strip_suffix(unit).map(|n| (n, *minutes)))
        .ok_or_else(invalid)?;
    let n: i64 = number.parse().map_err(|_| invalid())?;
    match n.checked_mul(minutes_per_unit) {
        Some(minutes) if (1..=MAX_DAYS * 24 * 60).contains(&minutes) => Ok(Duration::minutes(minutes)),
        _ => Err(format!("{text:?}: a silence lasts from a minute to {MAX_DAYS} days")),
    }
}

/// A look-back as `--since` takes it: `7d`, `30d`, `400d`.
pub fn parse_days(text: &str) -> Result<chrono::Duration, String> {
    text.trim()
        .strip_suffix('d')
        .and_then(|days| days.parse::<i64>().ok())
        .filter(|days| (1..=400).contains(days))
        .map(chrono::Duration::days)
        .ok_or_else(|| format!("{text:?} is not a number of days from 1d to 400d"))
}

async fn read(store: &impl StateStore) -> Result<Silences, SilenceError> {
    let item = store.get(SILENCES.0, SILENCES.1).await?;
    Ok(item.and_then(|item| serde_json::from_value(item.data).ok()).unwrap_or_default())
}

/// What `add` asks for.
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub duration: Duration,
    pub reason: String,
    pub created_by: String,
}

/// Adds a silence from `now`; the silence as stored.
pub async fn add(store: &impl StateStore, new: NewSilence, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
    let silence = Silence {
        id: format!("s-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        matchers: new.matchers,
        starts_at: now.timestamp(),
        ends_at: (now + new.duration).timestamp(),
        reason: new.reason,
        created_by: new.created_by,
        held: Default::default(),
        held_count: 0,
        summarized: false,
    };
    // Kept as long as the last silence to end, the new one included.
    let expires =
        read(store).await?.expires_at(silence.ends_at).max(silence.ends_at + ops_shared::silence::KEEP_ENDED_SECS);
    state::update(store, SILENCES, expires, WRITE_ATTEMPTS, |stored: &Silences| {
        let mut silences = stored.clone();
        silences.prune(now.timestamp());
        silences.silences.push(silence.clone());
        (silences, ())
    })
    .await?
    .ok_or(SilenceError::Contended)?;
    Ok(silence)
}

/// Every silence, active ones first.
pub async fn list(store: &impl StateStore, now: DateTime<Utc>) -> Result<Vec<Silence>, SilenceError> {
    let mut silences = read(store).await?.silences;
    silences.sort_by_key(|s| (!s.is_active(now.timestamp()), std::cmp::Reverse(s.ends_at)));
    Ok(silences)
}

/// Ends silence `id` now (one already ended is left as it is).
pub async fn expire(store: &impl StateStore, id: &str, now: DateTime<Utc>) -> Result<Silence, SilenceError> {
    let now = now.timestamp();
    let expires = read(store).await?.expires_at(now);
    let committed = state::update(store, SILENCES, expires, WRITE_ATTEMPTS, |stored: &Silences| {
        let mut silences = stored.clone();
        let found = silences.silences.iter_mut().find(|s| s.id == id).map(|s| {
            s.ends_at = s.ends_at.min(now);
            s.clone()
        });
        (silences, found)
    })
    .await?
    .ok_or(SilenceError::Contended)?;
    committed.decision.ok_or_else(|| SilenceError::NotFound(id.to_owned()))
}

/// One line per silence.
pub fn render(silences: &[Silence], now: DateTime<Utc>) -> String {
    if silences.is_empty() {
        return "no silences\n".to_owned();
    }
    silences.iter().map(|s| format!("{}\n", line(s, now.timestamp()))).collect()
}

/// `s-1a2b3c4d  active until 2026-12-03 10:15 UTC  source=health-checker target=app  "deploy 4.2" by ops  3 held back`
pub fn line(silence: &Silence, now: i64) -> String {
    let at =
        |t: i64| DateTime::from_timestamp(t, 0).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
    let state = if silence.is_active(now) {
        format!("active until {}", at(silence.ends_at))
    } else if silence.starts_at > now {
        format!("from {} to {}", at(silence.starts_at), at(silence.ends_at))
    } else {
        format!("ended {}", at(silence.ends_at))
    };
    format!(
        "{}  {state}  {}  \"{}\" by {}  {} held back",
        silence.id,
        silence.matchers_text(),
        silence.reason,
        silence.created_by,
        silence.held_count
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_is_minutes_hours_or_days_and_never_panics() {
        assert_eq!(parse_duration("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::hours(2)));
        assert_eq!(parse_duration("14d"), Ok(Duration::days(14)));
        for wrong in ["15d", "0h", "-1h", "2", "h", "2ч", "5µ", "99999999999999999d", ""] {
            assert!(parse_duration(wrong).is_err(), "{wrong}");
        }
        assert_eq!(parse_days("30d"), Ok(Duration::days(30)));
        assert!(parse_days("401d").is_err() && parse_days("30").is_err());
    }
}
