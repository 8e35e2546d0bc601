//! The checks of a restored database: each table's row count against the manifest, and the
//! validation queries.

use chrono::{DateTime, Utc};

use crate::adapters::postgres::{describe, quote_ident, quote_literal};
use crate::domain::backup::manifest::TableCount;
use crate::domain::restore::config::ValidationQuery;

/// Counts each table's rows in the restored database, spread over `clients` (largest tables
/// first, each to the connection with the fewest rows to count): the tables whose count
/// differs from the manifest's (or that cannot be counted), described, in the manifest's order.
pub(super) async fn count_rows(clients: &[tokio_postgres::Client], tables: &[TableCount]) -> Vec<String> {
    let mut by_size: Vec<usize> = (0..tables.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(tables[i].rows));
    let mut shares = vec![(0_i64, Vec::new()); clients.len().max(1)];
    for i in by_size {
        if let Some((rows, share)) = shares.iter_mut().min_by_key(|(rows, _)| *rows) {
            *rows += tables[i].rows;
            share.push(i);
        }
    }
    let counted = clients.iter().zip(&shares).map(|(client, (_, share))| async move {
        let mut found = Vec::new();
        for &i in share {
            found.push((i, count_mismatch(client, &tables[i]).await));
        }
        found
    });
    let mut found: Vec<_> = futures::future::join_all(counted).await.into_iter().flatten().collect();
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().filter_map(|(_, mismatch)| mismatch).collect()
}

/// How `table`'s restored row count differs from the manifest's, if it does.
async fn count_mismatch(client: &tokio_postgres::Client, table: &TableCount) -> Option<String> {
    let sql = format!("SELECT count(*) FROM ONLY {}.{}", quote_ident(&table.schema), quote_ident(&table.table));
    match client.query_one(&sql, &[]).await {
        Ok(row) => {
            let rows: i64 = row.get(0);
            (rows != table.rows)
                .then(|| format!("{}.{}: manifest {}, restored {rows}", table.schema, table.table, table.rows))
        }
        Err(err) => Some(format!("{}.{}: {}", table.schema, table.table, describe(&err))),
    }
}

pub(super) async fn run_validation(
    client: &tokio_postgres::Client,
    query: &ValidationQuery,
    backup_started_at: DateTime<Utc>,
    rpo_hours: u64,
) -> (bool, String) {
    let sql = query
        .sql
        .replace(":backup_started_at", &format!("{}::timestamptz", quote_literal(&backup_started_at.to_rfc3339())))
        .replace(":rpo_hours", &rpo_hours.to_string());
    match client.query_one(&sql, &[]).await {
        Ok(row) => match row.try_get::<_, Option<bool>>(0) {
            Ok(Some(true)) => (true, String::new()),
            Ok(Some(false)) => (false, "returned false".to_owned()),
            Ok(None) => (false, "returned NULL".to_owned()),
            Err(_) => (false, "did not return a boolean".to_owned()),
        },
        Err(err) => (false, describe(&err)),
    }
}
