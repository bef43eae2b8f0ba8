//! Where a backfill is: its row in `strata_progress` (kind `backfill`),
//! written in the same transaction as each batch, so that after a crash
//! the next run continues from the last batch that committed.

use crate::db::{Connection, DbError};

use super::key::KeyKind;
use super::BackfillId;

/// The `kind` of backfill rows in `strata_progress`.
pub const KIND: &str = "backfill";

/// The `cursor` column of a backfill's progress row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The table walked, as SQL text.
    pub table: String,
    /// Its oid when the backfill started.
    pub table_oid: u32,
    /// The statement, deparsed.
    pub statement: String,
    /// SHA-256 of the statement.
    pub hash: String,
    /// How batches are delimited.
    pub mode: KeyKind,
    /// The key columns (empty for ctid).
    #[serde(default)]
    pub key: Vec<String>,
    /// Keyset: the last key done (as text), `None` before the first batch.
    #[serde(default)]
    pub last: Option<Vec<String>>,
    /// Keyset: the largest key when the backfill started (`None`: the table
    /// was empty).
    #[serde(default)]
    pub upper: Option<Vec<String>>,
    /// Ctid: the first page not yet done.
    #[serde(default)]
    pub next_page: i64,
    /// Ctid: the table's pages when the backfill started.
    #[serde(default)]
    pub upper_page: i64,
    /// Ctid: a transaction id taken when the backfill started; row versions
    /// written after it (by its own batches among others) are not walked
    /// again.
    #[serde(default)]
    pub start_xid: i64,
    /// Batches committed.
    pub batches: u64,
    /// Rows walked (keyset: rows of the key range; ctid: an estimate).
    pub rows_done: i64,
    /// Rows the statement changed.
    pub rows_changed: i64,
    /// Rows expected in all (`reltuples` at the start, refined).
    pub estimated_rows: i64,
    /// The batch size last used (rows, or pages for ctid).
    pub batch_size: u64,
    /// Time spent in runs so far.
    pub elapsed_ms: u64,
}

impl Cursor {
    /// Fraction done, 0 to 1.
    pub fn fraction(&self) -> f64 {
        match self.mode {
            KeyKind::Ctid if self.upper_page > 0 => {
                (self.next_page as f64 / self.upper_page as f64).clamp(0.0, 1.0)
            }
            KeyKind::Ctid => 1.0,
            _ if self.estimated_rows > 0 => {
                (self.rows_done as f64 / self.estimated_rows as f64).clamp(0.0, 1.0)
            }
            _ => 0.0,
        }
    }
}

/// A backfill's progress row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgressRow {
    /// Migration version, or `command:TABLE` for `strata backfill`.
    pub version: String,
    /// The step of the migration (0 for the command).
    pub step: String,
    /// `running` (also after a crash), `done` or `failed`.
    pub state: String,
    /// The backend of the run (`running`).
    pub backend_pid: Option<i32>,
    /// Whether that backend is still connected (a `running` row whose
    /// backend has gone was interrupted).
    pub alive: bool,
    /// The error of a failed run.
    pub error: Option<String>,
    /// When the row was last written.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Where it is.
    pub cursor: Cursor,
}

/// Reads the progress row of `id`, if any.
pub async fn read(conn: &Connection, id: &BackfillId) -> Result<Option<ProgressRow>, DbError> {
    let rows = read_where(conn, id, Some((&id.version, &id.step.to_string()))).await?;
    Ok(rows.into_iter().next())
}

/// Every backfill progress row of `id`'s history table (for `status`).
pub async fn read_all(conn: &Connection, id: &BackfillId) -> Result<Vec<ProgressRow>, DbError> {
    read_where(conn, id, None).await
}

async fn read_where(
    conn: &Connection,
    id: &BackfillId,
    only: Option<(&str, &str)>,
) -> Result<Vec<ProgressRow>, DbError> {
    let exists = crate::db::catalog::relation_exists(conn, id.progress_table()).await?;
    if !exists {
        return Ok(Vec::new());
    }
    let (version, step) = only.unzip();
    let rows = conn
        .query(
            &format!(
                "SELECT version, step, state, backend_pid,
                        backend_pid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p.backend_pid),
                        error, updated_at, cursor::text
                 FROM {} p
                 WHERE history_table = $1 AND kind = '{KIND}'
                   AND ($2::text IS NULL OR (version = $2 AND step = $3))
                 ORDER BY updated_at, version, step",
                id.progress_table()
            ),
            &[&id.history_name(), &version, &step],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let cursor: Cursor = serde_json::from_str(&r.get::<_, String>(7)).ok()?;
            Some(ProgressRow {
                version: r.get(0),
                step: r.get(1),
                state: r.get(2),
                backend_pid: r.get(3),
                alive: r.get(4),
                error: r.get(5),
                updated_at: r.get(6),
                cursor,
            })
        })
        .collect())
}

/// The upsert that records `cursor` (parameters: history table, version,
/// step, state, done, total, cursor json, error): run inside each batch's
/// transaction.
pub fn write_sql(id: &BackfillId) -> String {
    format!(
        "INSERT INTO {} AS p (history_table, kind, version, step, state, done, total, cursor, backend_pid, error, updated_at)
         VALUES ($1, '{KIND}', $2, $3, $4, $5, $6, $7::text::jsonb, pg_backend_pid(), $8, clock_timestamp())
         ON CONFLICT (history_table, kind, version, step) DO UPDATE SET
            state = EXCLUDED.state, done = EXCLUDED.done, total = EXCLUDED.total, cursor = EXCLUDED.cursor,
            backend_pid = EXCLUDED.backend_pid, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
        id.progress_table()
    )
}

/// Writes `cursor` with `state` (outside a batch: start, finish, failure).
pub async fn write(
    conn: &Connection,
    id: &BackfillId,
    state: &str,
    cursor: &Cursor,
    error: Option<&str>,
) -> Result<(), DbError> {
    let json = serde_json::to_string(cursor).unwrap_or_default();
    let (done, total) = counts(cursor);
    let step = id.step.to_string();
    conn.execute(
        &write_sql(id),
        &[
            &id.history_name(),
            &id.version,
            &step,
            &state,
            &done,
            &total,
            &json,
            &error,
        ],
    )
    .await
    .map(|_| ())
}

/// Removes the progress row of `id` (a finished command backfill that is
/// run again, or `--restart`).
pub async fn delete(conn: &Connection, id: &BackfillId) -> Result<(), DbError> {
    let step = id.step.to_string();
    conn.execute(
        &format!(
            "DELETE FROM {} WHERE history_table = $1 AND kind = '{KIND}' AND version = $2 AND step = $3",
            id.progress_table()
        ),
        &[&id.history_name(), &id.version, &step],
    )
    .await
    .map(|_| ())
}

/// `done` and `total` columns: rows, clamped to the column's range.
pub fn counts(cursor: &Cursor) -> (i32, i32) {
    let clamp = |n: i64| n.clamp(0, i32::MAX as i64) as i32;
    (
        clamp(cursor.rows_done),
        clamp(cursor.estimated_rows.max(cursor.rows_done)),
    )
}
