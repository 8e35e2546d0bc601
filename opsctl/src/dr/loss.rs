//! The data a restore loses: the window from the snapshot of the backup it restores (taken when
//! the backup started) to the moment writes stopped (or to now, while they go on), and each
//! table's rows beside the backup's.
//! `dr assess` records it beside the freeze record (`reports/dr-assessments/<secret ARN>.json`),
//! and `dr restore` states it.

use chrono::{DateTime, Utc};
use ops_shared::backup::Manifest;
use ops_shared::objects::ObjectStore;
use serde::{Deserialize, Serialize};

use super::DrError;
use super::record::{FreezeRecord, read_record, record_key};

/// Where the assessment records are kept in the backup bucket, beside the freeze records.
pub const ASSESSMENT_PREFIX: &str = "reports/dr-assessments/";

/// `reports/dr-assessments/<secret>.json`, the secret's ARN written as the freeze record's.
pub fn assessment_key(secret_arn: &str) -> String {
    record_key(ASSESSMENT_PREFIX, secret_arn)
}

/// A table's live rows beside a backup's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub backup: i64,
    /// `None` when the table is gone from the live database.
    pub live: Option<i64>,
}

impl TableRows {
    pub fn differs(&self) -> bool {
        self.live != Some(self.backup)
    }

    /// `public.analyses: 200 in the backup, 160 live (40 rows fewer: the restore brings them back)`.
    pub fn plain(&self) -> String {
        let Some(live) = self.live else {
            return format!(
                "{}: {} in the backup, table missing live (the restore brings it back)",
                self.table, self.backup
            );
        };
        let said = match live - self.backup {
            0 => "the same".to_owned(),
            more if more > 0 => format!("{} more: written since the backup, lost by the restore", rows(more)),
            fewer => format!("{} fewer: the restore brings them back", rows(-fewer)),
        };
        format!("{}: {} in the backup, {live} live ({said})", self.table, self.backup)
    }
}

/// `1 row`, `40 rows`.
fn rows(count: i64) -> String {
    if count == 1 { "1 row".to_owned() } else { format!("{count} rows") }
}

/// What restoring a backup loses, and when the loss began and ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataLoss {
    /// The backup the restore brings back.
    pub backup_key: String,
    /// When that backup finished: what was written after is not in it.
    pub since: DateTime<Utc>,
    /// When writes stopped (the freeze record's time); when they had not, when this was made.
    pub until: DateTime<Utc>,
    /// Whether writes were stopped at `until`; if not, the window is still open.
    pub frozen: bool,
    /// The tables whose live rows differ from the backup's (row counts only: a row changed in
    /// place is not seen).
    pub tables: Vec<TableRows>,
}

impl DataLoss {
    /// Restoring `backup` into a database whose tables hold `live` rows, frozen by `freeze`
    /// (if it is frozen), at `now`.
    pub fn of(backup: &Manifest, freeze: Option<&FreezeRecord>, live: &[TableRows], now: DateTime<Utc>) -> DataLoss {
        let frozen = freeze.filter(|record| record.frozen());
        DataLoss {
            backup_key: backup.key.clone(),
            // pg_dump dumps the snapshot taken when the backup started: what was written after
            // that is not in it.
            since: backup.started_at,
            until: frozen.map_or(now, |record| record.frozen_at),
            frozen: frozen.is_some(),
            tables: live.iter().filter(|t| t.differs()).cloned().collect(),
        }
    }

    /// `2026-05-01 02:00 UTC (the backup) to 2026-05-01 14:05 UTC (writes stopped), 12.1 h`,
    /// or, while writes go on, `... to now, 2026-05-01 14:05 UTC, 12.1 h and still open: ...`.
    pub fn window(&self) -> String {
        let (since, until, span) = (minute(self.since), minute(self.until), span(self.until - self.since));
        if self.frozen {
            format!("{since} (the backup) to {until} (writes stopped), {span}")
        } else {
            format!(
                "{since} (the backup) to now, {until}, {span} and still open: writes have NOT been stopped \
                 (opsctl dr freeze stops them)"
            )
        }
    }

    /// A line per table that differs, or one saying none does.
    pub fn table_lines(&self) -> Vec<String> {
        if self.tables.is_empty() {
            return vec!["every table holds as many rows as the backup".to_owned()];
        }
        self.tables.iter().map(TableRows::plain).collect()
    }
}

/// `2026-05-01 14:05 UTC`.
pub fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `40 s`, `45 min`, `12.1 h`.
pub fn span(length: chrono::Duration) -> String {
    let seconds = length.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{:.0} min", seconds as f64 / 60.0),
        _ => format!("{:.1} h", seconds as f64 / 3600.0),
    }
}

/// What `dr assess` recorded of the production database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssessmentRecord {
    /// The database secret's ARN: the record's key.
    pub secret: String,
    pub host: String,
    pub database: String,
    pub assessed_at: DateTime<Utc>,
    pub assessed_by: String,
    pub loss: DataLoss,
}

impl AssessmentRecord {
    /// Whether it still holds for a restore of `backup` now: it assessed that backup, under the
    /// freeze that holds now (while writes go on, the rows and the window move on).
    fn holds_for(&self, backup: &Manifest, freeze: Option<&FreezeRecord>) -> bool {
        let same_freeze = freeze.is_some_and(|f| f.frozen() && self.loss.frozen && self.loss.until == f.frozen_at);
        self.loss.backup_key == backup.key && same_freeze
    }
}

/// The loss a restore states, and where its figures come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatedLoss {
    pub loss: DataLoss,
    /// `dr assess, 2026-05-01 14:10 UTC, by ...`, or the row counts it was worked out from.
    pub source: String,
}

/// The loss of restoring `backup` into the database of `secret_arn`, as `dr restore` states
/// it: `dr assess`'s record when it assessed this backup under the freeze that holds now, else
/// worked out from the manifest at `live_key`, the backup taken as the restore began (its
/// safety backup, whose row counts are the database's then). `None` when neither is there.
pub async fn loss_at_restore(
    records: &impl ObjectStore,
    secret_arn: &str,
    backup: &Manifest,
    freeze: Option<&FreezeRecord>,
    live_key: &str,
) -> Result<Option<StatedLoss>, DrError> {
    let assessed: Option<AssessmentRecord> = read_record(records, &assessment_key(secret_arn)).await?;
    if let Some(record) = assessed.filter(|record| record.holds_for(backup, freeze)) {
        let source = format!("dr assess, {}, by {}", minute(record.assessed_at), record.assessed_by);
        return Ok(Some(StatedLoss { loss: record.loss, source }));
    }
    let Some(live) = read_record::<Manifest>(records, live_key).await? else {
        return Ok(None);
    };
    let rows: Vec<TableRows> = backup
        .tables
        .iter()
        .map(|count| TableRows {
            table: format!("{}.{}", count.schema, count.table),
            backup: count.rows,
            live: live.tables.iter().find(|t| t.schema == count.schema && t.table == count.table).map(|t| t.rows),
        })
        .collect();
    let source = format!("the row counts of {} when the restore began", live.key);
    Ok(Some(StatedLoss { loss: DataLoss::of(backup, freeze, &rows, Utc::now()), source }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_says_what_the_restore_does_to_it() {
        let rows = |live| TableRows { table: "public.analyses".into(), backup: 200, live };
        assert_eq!(
            rows(Some(160)).plain(),
            "public.analyses: 200 in the backup, 160 live (40 rows fewer: the restore brings them back)"
        );
        assert_eq!(
            rows(Some(203)).plain(),
            "public.analyses: 200 in the backup, 203 live (3 rows more: written since the backup, lost by the restore)"
        );
        assert_eq!(
            rows(None).plain(),
            "public.analyses: 200 in the backup, table missing live (the restore brings it back)"
        );
        assert!(!rows(Some(200)).differs() && rows(None).differs());
        assert!(rows(Some(199)).plain().ends_with("(1 row fewer: the restore brings them back)"));
        let spans = [40, 45 * 60, 726 * 60].map(|s| span(chrono::Duration::seconds(s)));
        assert_eq!(spans, ["40 s", "45 min", "12.1 h"]);
    }
}
