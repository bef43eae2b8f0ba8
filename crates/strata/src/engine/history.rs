//! The history table (one row per applied or partially applied migration)
//! and the append-only event log.
//!
//! The history table holds the *current* state: `up` inserts a row, `down`
//! deletes it, a non-transactional migration updates its progress row after
//! each statement, and `repair` rewrites checksums or advances a stopped
//! migration by one statement (it never deletes progress).
//! The event log `strata_events` is never updated or deleted from: it is the
//! audit trail of every up, down, baseline, repair and failed attempt.
//!
//! Down progress lives in the event log, not in the history row. A `down`
//! script that runs outside a transaction commits statement by statement,
//! so a failed or killed `strata down` leaves the migration partly
//! reverted, and the next `down` must resume where it stopped. The history
//! row cannot say so without a new state or new columns (its `state` CHECK
//! allows only applied/failed/running, and `statements_done`/`done_checksum`
//! describe the *up* script), and changing Strata's own table layout
//! safely is the job of versioned own tables. So each down statement appends
//! a `down-progress` event (details: `state` running/failed, `done`,
//! `total`, `done_checksum` of the down statements done, `backend_pid`,
//! `error`) in the same transaction as the statement where it can run in
//! one, right after it otherwise, exactly like the up progress row. The row
//! stays `applied` until the last statement, then is deleted with the
//! `down` event in one transaction. A migration's down progress is its
//! newest `down-progress` event, when no `up`, `resume`, `baseline` or
//! successful `down` event came after it (those start a new life of the
//! row). Older Strata versions see such a migration as applied, which is
//! what its row says.

use chrono::{DateTime, Utc};

use crate::db::{quote_ident, quote_literal, Connection, DbError, Prepared, ToSql};
use crate::source::{Migration, MigrationKind, CHECKSUM_ALGORITHM};

use super::EngineError;

/// Where history lives.
#[derive(Debug, Clone)]
pub struct History {
    schema: String,
    table: String,
    events: String,
    /// The history table's name, unquoted: its key in `strata_schema` and
    /// `strata_progress`, which every history table of the schema shares.
    table_name: String,
    /// The schema's name, unquoted (for the lock keys).
    schema_name: String,
    /// `strata_schema`: the layout version of each history table's tables.
    versions: String,
    /// `strata_progress` (layout 2): resumable progress of steps.
    progress: String,
    /// The run's migration directories (path, as shown), so that the `up`
    /// event's details say which one a migration came from (`"dir"`); see
    /// [`History::with_dirs`].
    dirs: Vec<(std::path::PathBuf, String)>,
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRow {
    /// Canonical version (see [`crate::source::Version::canonical`]).
    pub version: String,
    /// versioned / repeatable.
    pub kind: String,
    /// The migration's name when it was applied.
    pub name: String,
    /// Checksum recorded.
    pub checksum: String,
    /// Algorithm of the checksum.
    pub checksum_algorithm: i16,
    /// `applied`, `failed` or `running`.
    pub state: String,
    /// Statements done (for non-transactional migrations).
    pub statements_done: i32,
    /// Statements in the migration.
    pub statements_total: i32,
    /// Checksum of the statements done, to check a resume is safe.
    pub done_checksum: Option<String>,
    /// When.
    pub applied_at: DateTime<Utc>,
    /// Who: database user, OS user and host.
    pub applied_by: String,
    /// How long it took.
    pub duration_ms: i64,
    /// The error of a failed migration.
    pub error: Option<String>,
    /// The backend that was running it (state `running`).
    pub backend_pid: Option<i32>,
    /// For an applied migration whose `down` stopped part way: how far it
    /// got (see the module docs).
    pub down: Option<DownProgress>,
}

/// How far a `down` outside a transaction got, from the newest
/// `down-progress` event of an applied migration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DownProgress {
    /// `running` (the run was killed, or still runs) or `failed`.
    pub state: String,
    /// Statements of the down script done.
    pub done: i32,
    /// Statements in the down script.
    pub total: i32,
    /// Checksum of the statements done (see `apply::done_checksum`).
    pub done_checksum: String,
    /// The backend of the run (state `running`).
    #[serde(default)]
    pub backend_pid: Option<i32>,
    /// The error of a failed run.
    #[serde(default)]
    pub error: Option<String>,
}

/// The event action that records down progress.
pub const DOWN_PROGRESS: &str = "down-progress";

/// The `strata_progress` step of a `down` outside a transaction.
const DOWN_STEP: &str = "down";

/// The layout of Strata's own tables that this build reads and writes.
/// Older layouts are upgraded by `ensure` (under the migration lock);
/// a newer one, written by a newer Strata, is refused.
pub const OWN_TABLES_VERSION: i32 = 2;

/// The event action that records an upgrade of Strata's own tables
/// (details: `history_table`, `from`, `to`, `steps`).
pub const OWN_TABLES_UPGRADE: &str = "own-tables-upgrade";

/// The namespace of Strata's advisory lock keys. Never change it, nor how
/// keys are derived from it: two Strata versions exclude each other only
/// while they compute the same key (see ARCHITECTURE.md).
const LOCK_NAMESPACE: &str = "strata:";

/// One upgrade of the layout of Strata's tables, from `to - 1` to `to`.
/// Steps are only ever appended: a released step never changes, since
/// databases were upgraded by it.
struct Step {
    to: i32,
    what: &'static str,
    sql: fn(&History) -> String,
}

/// Every layout, in order; the last one is [`OWN_TABLES_VERSION`]. A
/// database without Strata's tables runs them all in one transaction.
const STEPS: &[Step] = &[
    Step {
        to: 1,
        what: "history table and event log",
        sql: History::v1_sql,
    },
    Step {
        to: 2,
        what: "no fixed CHECK on kind and state; strata_progress holds down progress",
        sql: History::v2_sql,
    },
];

/// A 64-bit advisory lock key: the first 8 bytes (big-endian) of SHA-256
/// over [`LOCK_NAMESPACE`] and `name`. Deliberately not the migration
/// checksum function, whose algorithm may change.
fn advisory_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{LOCK_NAMESPACE}{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// `"schema"."table"` with embedded quotes doubled, spelled out here
/// rather than borrowed from `db::quote_ident`, so that the lock key does
/// not move if SQL quoting ever does.
fn key_name(schema: &str, table: &str) -> String {
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
}

/// What an event records.
pub struct Event<'a> {
    /// up, down, baseline, repair, resume, backup, restore, and `statement`
    /// (what a statement is about to change, for a resume to compare).
    pub action: &'a str,
    /// The migration, if the event is about one.
    pub migration: Option<&'a Migration>,
    /// Did it succeed.
    pub success: bool,
    /// Duration, if measured.
    pub duration_ms: Option<i64>,
    /// Anything else, as JSON.
    pub details: serde_json::Value,
}

impl History {
    /// History in `schema.table`, events in `schema.strata_events`.
    pub fn new(schema: &str, table: &str) -> History {
        History {
            schema: quote_ident(schema),
            table: format!("{}.{}", quote_ident(schema), quote_ident(table)),
            events: format!("{}.{}", quote_ident(schema), quote_ident("strata_events")),
            table_name: table.to_owned(),
            schema_name: schema.to_owned(),
            versions: format!("{}.{}", quote_ident(schema), quote_ident("strata_schema")),
            progress: format!("{}.{}", quote_ident(schema), quote_ident("strata_progress")),
            dirs: Vec::new(),
        }
    }

    /// Records, in each `up` event's details, the directory of `dirs` the
    /// migration was read from (the innermost one holding its file). Kept
    /// in the append-only event log rather than a new column: the layout
    /// of `strata_migrations` changes only with versioned own tables.
    pub fn with_dirs(mut self, dirs: Vec<(std::path::PathBuf, String)>) -> History {
        self.dirs = dirs;
        self
    }

    /// The qualified, quoted table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// `strata_progress`, qualified and quoted (backfill cursors).
    pub fn progress_table(&self) -> &str {
        &self.progress
    }

    /// `strata_events`, qualified and quoted (the event log).
    pub fn events_table(&self) -> &str {
        &self.events
    }

    /// The history table's name, unquoted: its key in `strata_progress`.
    pub fn name(&self) -> &str {
        &self.table_name
    }

    /// The DDL that creates the newest layout of Strata's tables where
    /// they do not exist, as `ensure` runs it (shown by dry runs).
    pub fn create_sql(&self) -> String {
        let mut sql = self.versions_sql();
        for step in STEPS {
            sql.push_str(&(step.sql)(self));
        }
        sql.push_str(&format!(
            "\nINSERT INTO {} (history_table, version, tool_version) VALUES ({}, {OWN_TABLES_VERSION}, {});",
            self.versions,
            quote_literal(&self.table_name),
            quote_literal(crate::TOOL_VERSION)
        ));
        sql
    }

    /// `strata_schema`, the table that records which layout of Strata's
    /// tables a history table has. It is read by every Strata version,
    /// older and newer alike, so its shape never changes: one row per
    /// history table of the schema, with the layout version.
    fn versions_sql(&self) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {versions} (
    history_table text PRIMARY KEY,
    version integer NOT NULL,
    upgraded_at timestamptz NOT NULL DEFAULT now(),
    tool_version text NOT NULL
);
",
            schema = self.schema,
            versions = self.versions
        )
    }

    /// Layout 1, the tables as Strata wrote them before layouts had
    /// versions (kept byte for byte: `tests/fixtures/own-tables/v1.sql`).
    fn v1_sql(&self) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    version text NOT NULL,
    kind text NOT NULL DEFAULT 'versioned' CHECK (kind IN ('versioned', 'repeatable')),
    name text NOT NULL,
    checksum text NOT NULL,
    checksum_algorithm smallint NOT NULL,
    state text NOT NULL CHECK (state IN ('applied', 'failed', 'running')),
    statements_done integer NOT NULL DEFAULT 0,
    statements_total integer NOT NULL DEFAULT 0,
    done_checksum text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL,
    duration_ms bigint NOT NULL DEFAULT 0,
    tool_version text NOT NULL,
    error text,
    backend_pid integer,
    PRIMARY KEY (kind, version)
);
CREATE TABLE IF NOT EXISTS {events} (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    action text NOT NULL,
    kind text,
    version text,
    name text,
    checksum text,
    success boolean NOT NULL,
    actor text NOT NULL,
    duration_ms bigint,
    tool_version text NOT NULL,
    details jsonb NOT NULL DEFAULT '{{}}'
);",
            schema = self.schema,
            table = self.table,
            events = self.events
        )
    }

    /// Layout 2. Kinds and states are checked by Strata, not by fixed
    /// `CHECK`s, so a new kind or state needs no layout change; and
    /// resumable progress gets its own table, keyed by migration and step
    /// with a `cursor` (a `down` outside a transaction today; backfills and
    /// the phases of multi-phase plans next). The down progress that layout
    /// 1 kept in `down-progress` events moves into it.
    fn v2_sql(&self) -> String {
        format!(
            "
DO $strata$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = {table_lit}::regclass AND contype = 'c'
               AND pg_get_constraintdef(oid) ~ '^CHECK \\(\\((kind|state) = ANY'
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', {table_lit}, c.conname);
    END LOOP;
END
$strata$;
CREATE TABLE IF NOT EXISTS {progress} (
    history_table text NOT NULL,
    kind text NOT NULL,
    version text NOT NULL,
    step text NOT NULL,
    state text NOT NULL,
    done integer NOT NULL DEFAULT 0,
    total integer NOT NULL DEFAULT 0,
    cursor jsonb NOT NULL DEFAULT '{{}}',
    backend_pid integer,
    error text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (history_table, kind, version, step)
);
INSERT INTO {progress} (history_table, kind, version, step, state, done, total, cursor, backend_pid, error, updated_at)
SELECT {name_lit}, e.kind, e.version, '{DOWN_STEP}', e.details->>'state', (e.details->>'done')::integer,
       (e.details->>'total')::integer, jsonb_build_object('done_checksum', e.details->>'done_checksum'),
       (e.details->>'backend_pid')::integer, e.details->>'error', e.at
FROM (SELECT DISTINCT ON (kind, version) kind, version, action, details, at FROM {events}
      WHERE kind IS NOT NULL AND version IS NOT NULL AND success
        AND action IN ('{DOWN_PROGRESS}', 'up', 'resume', 'baseline', 'down')
      ORDER BY kind, version, id DESC) e
JOIN {table} h ON h.kind = e.kind AND h.version = e.version AND h.state = 'applied'
WHERE e.action = '{DOWN_PROGRESS}'
ON CONFLICT DO NOTHING;
",
            table = self.table,
            table_lit = quote_literal(&self.table),
            name_lit = quote_literal(&self.table_name),
            events = self.events,
            progress = self.progress,
        )
    }

    /// Brings Strata's tables to [`OWN_TABLES_VERSION`]: creates them, or
    /// upgrades an older layout in one transaction with an
    /// `own-tables-upgrade` event; refuses a newer layout. Called under the
    /// migration lock before anything is written.
    pub async fn ensure(&self, conn: &Connection) -> Result<(), EngineError> {
        let found = self.layout(conn).await?;
        self.refuse_newer(found)?;
        if found == OWN_TABLES_VERSION {
            return Ok(());
        }
        conn.batch("BEGIN").await?;
        match self.upgrade(conn).await {
            Ok(()) => Ok(conn.batch("COMMIT").await?),
            Err(e) => {
                // The upgrade's error is the one to report.
                let _ = conn.batch("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn upgrade(&self, conn: &Connection) -> Result<(), EngineError> {
        // Every history table of the schema shares the event log,
        // `strata_schema` and `strata_progress`, and the migration lock is
        // per history table: runs on two history tables must not create
        // or change the shared tables at the same time.
        conn.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&self.own_tables_key()],
        )
        .await?;
        let from = self.layout(conn).await?;
        self.refuse_newer(from)?;
        if from == OWN_TABLES_VERSION {
            return Ok(());
        }
        let mut sql = self.versions_sql();
        let mut steps = Vec::new();
        for step in STEPS.iter().filter(|s| s.to > from) {
            sql.push_str(&(step.sql)(self));
            steps.push(format!("{}: {}", step.to, step.what));
        }
        conn.batch(&sql).await?;
        let tool = crate::TOOL_VERSION;
        conn.execute(
            &format!(
                "INSERT INTO {} (history_table, version, tool_version) VALUES ($1, $2, $3)
                 ON CONFLICT (history_table) DO UPDATE SET
                    version = EXCLUDED.version, upgraded_at = now(), tool_version = EXCLUDED.tool_version",
                self.versions
            ),
            &[&self.table_name, &OWN_TABLES_VERSION, &tool],
        )
        .await?;
        if from > 0 {
            self.event(
                conn,
                &super::os_actor(),
                &Event {
                    action: OWN_TABLES_UPGRADE,
                    migration: None,
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({
                        "history_table": self.table_name,
                        "from": from,
                        "to": OWN_TABLES_VERSION,
                        "steps": steps,
                    }),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The layout version of this history table's tables: 0 when the
    /// history table does not exist, 1 when it exists without a
    /// `strata_schema` row (every database Strata wrote before layouts had
    /// versions), else the recorded version.
    pub async fn layout(&self, conn: &Connection) -> Result<i32, DbError> {
        let row = conn
            .query_opt(
                "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
                &[&self.table, &self.versions],
            )
            .await?;
        let (history, versions) = row.map(|r| (r.get(0), r.get(1))).unwrap_or((false, false));
        if !history {
            return Ok(0);
        }
        if !versions {
            return Ok(1);
        }
        let row = conn
            .query_opt(
                &format!(
                    "SELECT version FROM {} WHERE history_table = $1",
                    self.versions
                ),
                &[&self.table_name],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i32>(0)).unwrap_or(1))
    }

    fn refuse_newer(&self, found: i32) -> Result<(), EngineError> {
        if found > OWN_TABLES_VERSION {
            return Err(EngineError::NewerOwnTables {
                table: self.table.clone(),
                found,
                known: OWN_TABLES_VERSION,
            });
        }
        Ok(())
    }

    /// True once the history table exists.
    pub async fn exists(&self, conn: &Connection) -> Result<bool, DbError> {
        crate::db::catalog::relation_exists(conn, &self.table).await
    }

    /// Every row, or nothing when the table does not exist yet. A table of
    /// that name that is not Strata's (`history_table = "schema_migrations"`
    /// pointing at golang-migrate's) is an error saying what it looks like,
    /// rather than the server's "column does not exist".
    pub async fn read(&self, conn: &Connection) -> Result<Vec<AppliedRow>, EngineError> {
        let Some(shape) = super::adopt::shapes(conn, &[&self.table]).await?.pop() else {
            return Ok(Vec::new());
        };
        super::adopt::check_ours(&shape)?;
        let layout = self.layout(conn).await?;
        self.refuse_newer(layout)?;
        if layout < 2 {
            // An older layout is read as it is (`status` never writes);
            // `up` upgrades it under the lock before writing.
            return self.read_v1(conn).await;
        }
        let rows = conn
            .query(
                &format!(
                    "SELECT h.version, h.kind, h.name, h.checksum, h.checksum_algorithm, h.state, h.statements_done,
                            h.statements_total, h.done_checksum, h.applied_at, h.applied_by, h.duration_ms, h.error,
                            h.backend_pid, p.state, p.done, p.total, p.cursor->>'done_checksum', p.backend_pid, p.error
                     FROM {table} h
                     LEFT JOIN {progress} p ON p.history_table = $1 AND p.kind = h.kind AND p.version = h.version
                          AND p.step = '{DOWN_STEP}' AND h.state = 'applied' AND p.updated_at >= h.applied_at",
                    table = self.table,
                    progress = self.progress,
                ),
                &[&self.table_name],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let down = r.get::<_, Option<String>>(14).map(|state| DownProgress {
                    state,
                    done: r.get(15),
                    total: r.get(16),
                    done_checksum: r.get::<_, Option<String>>(17).unwrap_or_default(),
                    backend_pid: r.get(18),
                    error: r.get(19),
                });
                // A down that failed at its first statement with nothing
                // done left the migration simply applied.
                applied_row(r, down.filter(|d| !(d.state == "failed" && d.done == 0)))
            })
            .collect())
    }

    /// [`History::read`] on layout 1, where down progress is the newest
    /// `down-progress` event.
    async fn read_v1(&self, conn: &Connection) -> Result<Vec<AppliedRow>, EngineError> {
        let rows = conn
            .query(
                &format!(
                    "SELECT version, kind, name, checksum, checksum_algorithm, state, statements_done,
                            statements_total, done_checksum, applied_at, applied_by, duration_ms, error, backend_pid
                     FROM {}",
                    self.table
                ),
                &[],
            )
            .await?;
        let mut down = self.read_down_progress(conn).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let progress = down
                    .remove(&(r.get::<_, String>(1), r.get::<_, String>(0)))
                    .filter(|_| r.get::<_, String>(5) == "applied");
                applied_row(r, progress)
            })
            .collect())
    }

    /// The down progress of each migration whose newest life-cycle event
    /// is a `down-progress` event, by (kind, version). A down that failed
    /// at its first statement with nothing done left the migration simply
    /// applied, and does not count.
    async fn read_down_progress(
        &self,
        conn: &Connection,
    ) -> Result<std::collections::HashMap<(String, String), DownProgress>, DbError> {
        // Both tables are created together; a history table made by hand
        // without the event log simply has no down progress.
        let events = crate::db::catalog::relation_exists(conn, &self.events).await?;
        if !events {
            return Ok(Default::default());
        }
        let rows = conn
            .query(
                &format!(
                    "SELECT DISTINCT ON (kind, version) kind, version, action, details::text
                     FROM {}
                     WHERE kind IS NOT NULL AND version IS NOT NULL AND success
                       AND action IN ('{DOWN_PROGRESS}', 'up', 'resume', 'baseline', 'down')
                     ORDER BY kind, version, id DESC",
                    self.events
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .filter(|r| r.get::<_, String>(2) == DOWN_PROGRESS)
            .filter_map(|r| {
                let progress: DownProgress = serde_json::from_str(&r.get::<_, String>(3)).ok()?;
                let nothing_done = progress.state == "failed" && progress.done == 0;
                (!nothing_done).then(|| ((r.get(0), r.get(1)), progress))
            })
            .collect())
    }

    /// Records down progress in `strata_progress` and appends the
    /// `down-progress` event (the audit trail), in one statement on the
    /// caller's connection, so both commit with the statement's transaction
    /// when there is one. The tables are at the newest layout: `down` and
    /// `repair` call [`History::ensure`] first.
    pub async fn down_progress(
        &self,
        conn: &Connection,
        actor: &str,
        m: &Migration,
        progress: &DownProgress,
    ) -> Result<(), DbError> {
        let version = m.version.canonical();
        let details = serde_json::to_value(progress)
            .unwrap_or_default()
            .to_string();
        let tool = crate::TOOL_VERSION;
        conn.execute(
            &format!(
                "WITH p AS (
    INSERT INTO {progress} AS p (history_table, kind, version, step, state, done, total, cursor, backend_pid, error,
                                 updated_at)
    VALUES ($1, $2, $3, '{DOWN_STEP}', $4, $5, $6, jsonb_build_object('done_checksum', $7::text), $8, $9,
            clock_timestamp())
    ON CONFLICT (history_table, kind, version, step) DO UPDATE SET
        state = EXCLUDED.state, done = EXCLUDED.done, total = EXCLUDED.total, cursor = EXCLUDED.cursor,
        backend_pid = EXCLUDED.backend_pid, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at
    RETURNING 1
)
INSERT INTO {events} (action, kind, version, name, checksum, success, actor, tool_version, details)
SELECT '{DOWN_PROGRESS}', $2, $3, $10, $11, true, current_user || ' ' || $12, $13, $14::text::jsonb FROM p",
                progress = self.progress,
                events = self.events,
            ),
            &[
                &self.table_name,
                &m.kind.as_str(),
                &version,
                &progress.state,
                &progress.done,
                &progress.total,
                &progress.done_checksum,
                &progress.backend_pid,
                &progress.error,
                &m.name,
                &m.checksum,
                &actor,
                &tool,
                &details,
            ],
        )
        .await
        .map(|_| ())
    }

    /// The statement that records a finished migration and its event in one
    /// round trip. Parameters: see [`History::record_params`]. The duration
    /// is `$8` (the time before this transaction began: earlier attempts)
    /// plus the transaction's own time so far, taken by the server: the
    /// runner sends this row in the round trip of the migration's last
    /// statement, so only the server knows when that statement finished.
    pub fn record_sql(&self) -> String {
        format!(
            "WITH d AS (
    SELECT $8::bigint + (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint AS ms
), h AS (
    INSERT INTO {table} AS t (version, kind, name, checksum, checksum_algorithm, state, statements_done,
                             statements_total, done_checksum, applied_by, duration_ms, tool_version, error, backend_pid)
    VALUES ($1, $2, $3, $4, $5, 'applied', $6, $6, NULL, current_user || ' ' || $7, (SELECT ms FROM d), $9, NULL, NULL)
    ON CONFLICT (kind, version) DO UPDATE SET
        name = EXCLUDED.name, checksum = EXCLUDED.checksum, checksum_algorithm = EXCLUDED.checksum_algorithm,
        state = 'applied', statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total,
        done_checksum = NULL, applied_at = now(), applied_by = EXCLUDED.applied_by,
        duration_ms = t.duration_ms + EXCLUDED.duration_ms, tool_version = EXCLUDED.tool_version,
        error = NULL, backend_pid = NULL
    RETURNING 1
)
INSERT INTO {events} (action, kind, version, name, checksum, success, actor, duration_ms, tool_version, details)
SELECT $10, $2, $1, $3, $4, true, current_user || ' ' || $7, (SELECT ms FROM d), $9, $11::text::jsonb FROM h",
            table = self.table,
            events = self.events
        )
    }

    /// Prepares [`History::record_sql`].
    pub async fn prepare_record(&self, conn: &Connection) -> Result<Prepared, DbError> {
        conn.prepare(&self.record_sql()).await
    }

    /// Records a finished migration (inside the caller's transaction).
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &self,
        conn: &Connection,
        stmt: &Prepared,
        m: &Migration,
        statements: i32,
        actor: &str,
        duration_ms: i64,
        action: &str,
        details: &serde_json::Value,
    ) -> Result<(), DbError> {
        let params = self.record_params(m, statements, actor, duration_ms, action, details);
        conn.execute_prepared(stmt, &params.as_params())
            .await
            .map(|_| ())
    }

    /// The bind parameters of [`History::record_sql`], owned, so the runner
    /// can send the row in the same round trip as the migration's last
    /// statement. `duration_ms` is the time spent before the transaction
    /// that records began (see [`History::record_sql`]).
    pub fn record_params(
        &self,
        m: &Migration,
        statements: i32,
        actor: &str,
        duration_ms: i64,
        action: &str,
        details: &serde_json::Value,
    ) -> RecordParams {
        let mut details = details.clone();
        let dir = self
            .dirs
            .iter()
            .filter(|(d, _)| m.up.path.starts_with(d))
            .max_by_key(|(d, _)| d.components().count());
        if let (Some(obj), Some((_, shown))) = (details.as_object_mut(), dir) {
            obj.insert("dir".into(), shown.clone().into());
        }
        RecordParams {
            version: m.version.canonical(),
            kind: m.kind.as_str(),
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            statements,
            actor: actor.to_owned(),
            duration_ms,
            action: action.to_owned(),
            details: details.to_string(),
        }
    }

    /// The record statement as literal SQL, for dry runs.
    pub fn record_display(&self, m: &Migration, statements: usize, actor: &str) -> String {
        format!(
            "INSERT INTO {table} (version, kind, name, checksum, checksum_algorithm, state, statements_done, statements_total, applied_by, duration_ms, tool_version)\n  VALUES ({v}, {k}, {n}, {c}, {CHECKSUM_ALGORITHM}, 'applied', {statements}, {statements}, current_user || ' ' || {a}, <duration_ms>, {t});  -- values are sent as bind parameters\nINSERT INTO {events} (action, kind, version, name, checksum, success, actor, duration_ms, tool_version) VALUES ('up', ...);",
            table = self.table,
            events = self.events,
            v = quote_literal(&m.version.canonical()),
            k = quote_literal(m.kind.as_str()),
            n = quote_literal(&m.name),
            c = quote_literal(&m.checksum),
            a = quote_literal(actor),
            t = quote_literal(crate::TOOL_VERSION),
        )
    }

    /// Inserts or updates the progress row of a non-transactional migration.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_progress(
        &self,
        conn: &Connection,
        m: &Migration,
        state: &str,
        done: i32,
        total: i32,
        done_checksum: &str,
        actor: &str,
        error: Option<&str>,
        backend_pid: Option<i32>,
    ) -> Result<(), DbError> {
        let version = m.version.canonical();
        let tool = crate::TOOL_VERSION;
        conn.execute(
            &format!(
                "INSERT INTO {} AS t (version, kind, name, checksum, checksum_algorithm, state, statements_done,
                                   statements_total, done_checksum, applied_by, tool_version, error, backend_pid)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, current_user || ' ' || $10, $11, $12, $13)
                 ON CONFLICT (kind, version) DO UPDATE SET
                    state = EXCLUDED.state, statements_done = EXCLUDED.statements_done,
                    statements_total = EXCLUDED.statements_total, done_checksum = EXCLUDED.done_checksum,
                    error = EXCLUDED.error, backend_pid = EXCLUDED.backend_pid, applied_at = now()",
                self.table
            ),
            &[
                &version,
                &m.kind.as_str(),
                &m.name,
                &m.checksum,
                &CHECKSUM_ALGORITHM,
                &state,
                &done,
                &total,
                &done_checksum,
                &actor,
                &tool,
                &error,
                &backend_pid,
            ],
        )
        .await
        .map(|_| ())
    }

    /// The SQL that updates progress inside a statement's own transaction.
    pub fn progress_sql(&self) -> String {
        format!(
            "UPDATE {} SET statements_done = $1, done_checksum = $2 WHERE kind = $3 AND version = $4",
            self.table
        )
    }

    /// Deletes a migration's row (after a revert).
    pub async fn delete(
        &self,
        conn: &Connection,
        kind: &str,
        version: &str,
    ) -> Result<u64, DbError> {
        let deleted = conn
            .execute(
                &format!(
                    "DELETE FROM {} WHERE kind = $1 AND version = $2",
                    self.table
                ),
                &[&kind, &version],
            )
            .await?;
        // Then its progress (in the caller's transaction). A progress row
        // left behind would not count anyway: it is older than the row of
        // a later `up` (see `read`).
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE history_table = $1 AND kind = $2 AND version = $3",
                self.progress
            ),
            &[&self.table_name, &kind, &version],
        )
        .await?;
        Ok(deleted)
    }

    /// The delete as literal SQL, for dry runs.
    pub fn delete_display(&self, kind: &str, version: &str) -> String {
        format!(
            "DELETE FROM {} WHERE kind = {} AND version = {};  -- values are sent as bind parameters\nDELETE FROM {} WHERE history_table = {} AND kind = {} AND version = {};",
            self.table,
            quote_literal(kind),
            quote_literal(version),
            self.progress,
            quote_literal(&self.table_name),
            quote_literal(kind),
            quote_literal(version)
        )
    }

    /// Sets the checksum of a row to the file's (repair).
    pub async fn set_checksum(
        &self,
        conn: &Connection,
        kind: &str,
        version: &str,
        checksum: &str,
    ) -> Result<u64, DbError> {
        conn.execute(
            &format!(
                "UPDATE {} SET checksum = $3, checksum_algorithm = $4 WHERE kind = $1 AND version = $2",
                self.table
            ),
            &[&kind, &version, &checksum, &CHECKSUM_ALGORITHM],
        )
        .await
    }

    /// Marks a migration applied without running it (baseline).
    pub async fn insert_baseline(
        &self,
        conn: &Connection,
        m: &Migration,
        actor: &str,
    ) -> Result<(), DbError> {
        let version = m.version.canonical();
        let tool = crate::TOOL_VERSION;
        conn.execute(
            &format!(
                "INSERT INTO {} (version, kind, name, checksum, checksum_algorithm, state, applied_by, duration_ms, tool_version)
                 VALUES ($1, $2, $3, $4, $5, 'applied', current_user || ' ' || $6, 0, $7)",
                self.table
            ),
            &[&version, &m.kind.as_str(), &m.name, &m.checksum, &CHECKSUM_ALGORITHM, &actor, &tool],
        )
        .await
        .map(|_| ())
    }

    /// Appends an event.
    pub async fn event(
        &self,
        conn: &Connection,
        actor: &str,
        event: &Event<'_>,
    ) -> Result<(), DbError> {
        let (kind, version, name, checksum) = match event.migration {
            Some(m) => (
                Some(m.kind.as_str()),
                Some(m.version.canonical()),
                Some(m.name.clone()),
                Some(m.checksum.clone()),
            ),
            None => (None, None, None, None),
        };
        let details = event.details.to_string();
        let tool = crate::TOOL_VERSION;
        conn.execute(
            &format!(
                "INSERT INTO {} (action, kind, version, name, checksum, success, actor, duration_ms, tool_version, details)
                 VALUES ($1, $2, $3, $4, $5, $6, current_user || ' ' || $7, $8, $9, $10::text::jsonb)",
                self.events
            ),
            &[
                &event.action,
                &kind,
                &version,
                &name,
                &checksum,
                &event.success,
                &actor,
                &event.duration_ms,
                &tool,
                &details,
            ],
        )
        .await
        .map(|_| ())
    }

    /// The details of the newest `statement` event of `m`'s statement
    /// `statement` (1-based): what the runner recorded just before running
    /// it, for a resume to compare with the catalog.
    pub async fn statement_event(
        &self,
        conn: &Connection,
        m: &Migration,
        statement: usize,
    ) -> Result<Option<serde_json::Value>, DbError> {
        let version = m.version.canonical();
        let statement = statement as i64;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT details::text FROM {} WHERE action = 'statement' AND kind = $1 AND version = $2
                       AND details->>'statement' = $3::bigint::text
                     ORDER BY id DESC LIMIT 1",
                    self.events
                ),
                &[&m.kind.as_str(), &version, &statement],
            )
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()))
    }

    /// The migration lock's key: derived from [`LOCK_NAMESPACE`] and the
    /// history table's schema-qualified, quoted name only, so that every
    /// Strata version computes the same key for the same table (the value
    /// is the one Strata has always used; a test pins it).
    pub fn lock_key(&self) -> i64 {
        advisory_key(&key_name(&self.schema_name, &self.table_name))
    }

    /// The key, held for one transaction, under which Strata's tables of a
    /// schema are created or upgraded.
    fn own_tables_key(&self) -> i64 {
        advisory_key(&format!("own-tables:{}", key_name(&self.schema_name, "")))
    }
}

/// Which kind a history row describes.
pub fn kind_of(row: &AppliedRow) -> MigrationKind {
    if row.kind == "repeatable" {
        MigrationKind::Repeatable
    } else if row.kind == "plan" {
        MigrationKind::Plan
    } else {
        MigrationKind::Versioned
    }
}

/// A history row from the first 14 columns both layouts select, in the
/// order `version, kind, name, checksum, checksum_algorithm, state,
/// statements_done, statements_total, done_checksum, applied_at,
/// applied_by, duration_ms, error, backend_pid`.
fn applied_row(r: &crate::db::Row, down: Option<DownProgress>) -> AppliedRow {
    AppliedRow {
        version: r.get(0),
        kind: r.get(1),
        name: r.get(2),
        checksum: r.get(3),
        checksum_algorithm: r.get(4),
        state: r.get(5),
        statements_done: r.get(6),
        statements_total: r.get(7),
        done_checksum: r.get(8),
        applied_at: r.get(9),
        applied_by: r.get(10),
        duration_ms: r.get(11),
        error: r.get(12),
        backend_pid: r.get(13),
        down,
    }
}

/// The values of one history row written by [`History::record_sql`].
pub struct RecordParams {
    version: String,
    kind: &'static str,
    name: String,
    checksum: String,
    statements: i32,
    actor: String,
    duration_ms: i64,
    action: String,
    details: String,
}

impl RecordParams {
    /// The parameters `$1`..`$11`, in order.
    pub fn as_params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.version,
            &self.kind,
            &self.name,
            &self.checksum,
            &CHECKSUM_ALGORITHM,
            &self.statements,
            &self.actor,
            &self.duration_ms,
            &crate::TOOL_VERSION,
            &self.action,
            &self.details,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_never_changes() {
        // Pinned: Strata versions exclude each other only while they
        // compute the same key. This is the value every Strata so far has
        // used for the default table; a change here lets an old and a new
        // Strata migrate the same database at once.
        let history = History::new("public", "strata_migrations");
        assert_eq!(history.lock_key(), 8_135_765_910_816_659_746);
        assert_eq!(
            History::new("ops", "my \"odd\" history").lock_key(),
            advisory_key("\"ops\".\"my \"\"odd\"\" history\"")
        );
        assert_ne!(
            History::new("ops", "strata_migrations").lock_key(),
            history.lock_key()
        );
        assert_ne!(history.own_tables_key(), history.lock_key());
    }

    #[test]
    fn layout_1_is_the_fixture_byte_for_byte() {
        let fixture = include_str!("../../../../tests/fixtures/own-tables/v1.sql");
        let ddl: String = fixture
            .lines()
            .filter(|l| !l.starts_with("--"))
            .map(|l| format!("{l}\n"))
            .collect();
        let ours = History::new("public", "strata_migrations").v1_sql();
        assert_eq!(format!("{ours}\n"), ddl);
    }

    #[test]
    fn steps_go_one_version_at_a_time_up_to_the_newest() {
        let versions: Vec<i32> = STEPS.iter().map(|s| s.to).collect();
        let expected: Vec<i32> = (1..=OWN_TABLES_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
