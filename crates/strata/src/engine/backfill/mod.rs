//! Backfills: one data change (`UPDATE`, `DELETE`, `INSERT … SELECT`) run
//! in short, throttled, resumable batches.
//!
//! A backfill walks the key of one table (the primary key, else a unique
//! NOT NULL key, else ctid page ranges; `key`) from the start to an upper
//! bound fixed when it starts, so it ends under a continuous insert load.
//! Each batch is one transaction under `lock_timeout`: the statement with
//! the batch's key range ANDed onto its own condition (`spec`, `batch`),
//! and the cursor row in `strata_progress` (`cursor`). A batch that commits
//! is recorded with it; one that does not leaves nothing. So after `kill
//! -9` anywhere the next run continues after the last committed batch, and
//! every row of the range is handed to the statement exactly once.
//! A resume refuses when the statement (its hash) or the table (its oid,
//! its key) changed since the backfill started.
//!
//! Batch sizes adapt so each batch takes about `batch_time` (`batch`);
//! between batches the throttles pause (`throttle`); the watchdog cancels a
//! batch that blocks application queries, which is then retried smaller
//! after a pause. Progress goes to the caller as [`BackfillEvent`]s.
//!
//! **Architecture Invariant:** nothing here prints; the caller (the CLI,
//! the migration runner) decides what to show.

mod batch;
pub mod cursor;
pub mod key;
pub mod spec;
mod throttle;

use std::time::{Duration, Instant};

pub use crate::config::BackfillSettings;
pub use batch::SizeController;
pub use cursor::{Cursor, ProgressRow};
pub use key::{Key, KeyColumn, KeyKind};
pub use spec::{BackfillSpec, SpecKind};

use super::history::{Event, History};
use super::watchdog::{Limits, Watchdog};
use super::EngineError;
use crate::db::{Connection, DbError, Prepared, Target, ToSql};
use crate::error::exit;

/// Which backfill: the history table whose `strata_progress` rows hold its
/// cursor, the migration version (or `command:TABLE` for `strata
/// backfill`), and the step (the statement's index in the migration).
#[derive(Debug, Clone)]
pub struct BackfillId {
    history: History,
    /// Migration version, or a command id.
    pub version: String,
    /// Step index within the migration.
    pub step: usize,
}

impl BackfillId {
    /// The backfill of statement `step` of migration `version`.
    pub fn new(history: History, version: impl Into<String>, step: usize) -> BackfillId {
        BackfillId {
            history,
            version: version.into(),
            step,
        }
    }

    /// The backfill `strata backfill TABLE` runs: one per table at a time,
    /// so running the same command again resumes it.
    pub fn command(history: History, table: &str) -> BackfillId {
        BackfillId::new(history, format!("command:{table}"), 0)
    }

    fn progress_table(&self) -> &str {
        self.history.progress_table()
    }

    fn history_name(&self) -> &str {
        self.history.name()
    }

    /// The session advisory lock that keeps two runs of one backfill apart.
    fn lock_key(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(
            format!(
                "strata:backfill:{}:{}:{}",
                self.history.table(),
                self.version,
                self.step
            )
            .as_bytes(),
        );
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }

    /// `20240101 step 3`, `command:users`.
    pub fn label(&self) -> String {
        if self.version.starts_with("command:") {
            self.version.clone()
        } else {
            format!("{} step {}", self.version, self.step)
        }
    }
}

/// Why a backfill refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The statement is not one a backfill runs, or the server rejects it
    /// (unknown column, type error): nothing ran.
    #[error("backfill statement: {message}")]
    Statement {
        /// What is wrong, with the server's words when it said.
        message: String,
    },
    /// The table does not exist or cannot be walked: nothing ran.
    #[error("backfill of {table}: {message}\n  help: {help}")]
    Table {
        /// The table as named.
        table: String,
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A resume found the statement or the table changed: nothing ran.
    #[error("backfill {id} cannot resume: {reason}\n  help: {help}")]
    Changed {
        /// Which backfill.
        id: String,
        /// What changed.
        reason: String,
        /// What to do.
        help: String,
    },
    /// Another run of the same backfill holds it.
    #[error("backfill {id} is already running{}\n  help: wait for it to finish, or stop it; the next run resumes where it stopped", .pid.map(|p| format!(" (backend {p})")).unwrap_or_default())]
    Busy {
        /// Which backfill.
        id: String,
        /// Its backend, when known.
        pid: Option<i32>,
    },
    /// A batch failed; the batches before it are committed and recorded.
    #[error("backfill {id} failed after {batches} batch(es) ({rows_changed} row(s) changed, all recorded): {error}\n  help: fix the cause and run it again: it resumes after the last committed batch")]
    Failed {
        /// Which backfill.
        id: String,
        /// Batches committed (in all runs).
        batches: u64,
        /// Rows changed so far.
        rows_changed: i64,
        /// The server's error.
        error: DbError,
    },
    /// Reading the catalog or Strata's tables failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl BackfillError {
    /// 2 when nothing ran because the input or the state is wrong, 1 when
    /// the run failed (see `crate::error::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            BackfillError::Statement { .. }
            | BackfillError::Table { .. }
            | BackfillError::Changed { .. } => exit::BAD_INPUT,
            BackfillError::Busy { .. } | BackfillError::Failed { .. } => exit::FAILED,
            BackfillError::Db(e) => crate::error::Failure::exit_code(e),
        }
    }
}

/// What a running backfill reports.
#[derive(Debug, Clone)]
pub enum BackfillEvent {
    /// It starts or resumes.
    Started {
        /// The table walked.
        table: String,
        /// The key, described (`id`, `(a, b)`, `ctid page ranges`).
        key: String,
        /// Why that key.
        reason: String,
        /// Whether it continues an earlier run.
        resumed: bool,
        /// Where it is.
        progress: BackfillProgress,
    },
    /// A batch committed.
    Progress(BackfillProgress),
    /// It pauses, and why.
    Paused {
        /// Sleep, replica lag, application queries blocked, lock timeout.
        reason: String,
        /// For how long.
        pause: Duration,
    },
    /// `VACUUM (ANALYZE)` of the table starts.
    Vacuum {
        /// The table.
        table: String,
    },
}

/// Counters of a backfill.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackfillProgress {
    /// Batches committed (all runs).
    pub batches: u64,
    /// Rows walked (all runs; an estimate for ctid walks).
    pub rows_done: i64,
    /// Rows the statement changed (all runs).
    pub rows_changed: i64,
    /// Rows expected in all (`reltuples`, refined as it goes).
    pub estimated_rows: i64,
    /// Fraction done, 0 to 1.
    pub fraction: f64,
    /// Rows walked per second in this run.
    pub rows_per_sec: f64,
    /// Time left at that rate.
    pub eta: Option<Duration>,
    /// The size of the next batch (rows; pages for ctid).
    pub batch_size: u64,
}

/// What a finished backfill did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillOutcome {
    /// Which backfill.
    pub id: String,
    /// The table walked.
    pub table: String,
    /// The key, described.
    pub key: String,
    /// Whether it continued an earlier run.
    pub resumed: bool,
    /// It had finished before this run: nothing was done.
    pub already_done: bool,
    /// Counters (all runs).
    pub progress: BackfillProgress,
    /// This run's time.
    pub elapsed_ms: u64,
    /// `VACUUM (ANALYZE)` ran after.
    pub vacuumed: bool,
}

/// The batched plan, for dry runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillPlan {
    /// The statement, deparsed.
    pub statement: String,
    /// The table walked.
    pub table: String,
    /// The key chosen.
    pub key: Key,
    /// The upper bound fixed now (keyset: the largest key; ctid: the page
    /// count), as text; `None` for an empty table.
    pub upper: Option<String>,
    /// The first batch's range, as text.
    pub first_batch: Option<String>,
    /// Each batch's statement, with placeholders.
    pub batch_sql: String,
    /// Rows expected (`pg_class.reltuples`; -1 when never analysed).
    pub estimated_rows: i64,
    /// Batches expected at the rough rate below.
    pub estimated_batches: u64,
    /// Time expected at a rough rate of [`NOMINAL_ROWS_PER_SEC`].
    pub estimated_duration: Duration,
}

/// The rate the dry run's estimate assumes, in rows per second: a rough
/// figure for small rows on ordinary hardware; the real run measures.
pub const NOMINAL_ROWS_PER_SEC: f64 = 100_000.0;

/// How long a run waits for another run of the same backfill to let go.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The walk set up for a statement: the table, its key, the batch SQL.
struct Walk {
    facts: key::TableFacts,
    key: Key,
    sql: batch::BatchSql,
}

async fn walk(conn: &Connection, spec: &BackfillSpec) -> Result<Walk, BackfillError> {
    let facts = key::table_facts(conn, spec.keyed_table()).await?;
    if spec.kind() == SpecKind::InsertSelect {
        key::table_facts(conn, spec.written_table()).await?;
    }
    let key = key::choose(conn, spec.keyed_table(), &facts).await?;
    if let Some(col) = key
        .columns
        .iter()
        .find(|c| spec.assigned().iter().any(|a| a == &c.name))
    {
        return Err(BackfillError::Statement {
            message: format!(
                "SET assigns `{}`, a column of the key the batches walk ({}); a row whose key changes could be changed twice or missed",
                col.name, key.reason
            ),
        });
    }
    let sql = batch::sql(spec, &key)?;
    Ok(Walk { facts, key, sql })
}

/// The largest key now (keyset), as text.
async fn upper_key(
    conn: &Connection,
    spec: &BackfillSpec,
    key: &Key,
) -> Result<Option<Vec<String>>, DbError> {
    let table = spec.keyed_table();
    let row = conn
        .query_opt(
            &format!(
                "SELECT {} FROM {table} ORDER BY {} LIMIT 1",
                key.text_outputs(table),
                key.order_by(table, " DESC")
            ),
            &[],
        )
        .await?;
    Ok(row.map(|r| {
        (0..key.columns.len())
            .map(|i| r.get::<_, String>(i))
            .collect()
    }))
}

/// The plan of a backfill, as a dry run shows it: nothing is written.
pub async fn plan(
    conn: &Connection,
    spec: &BackfillSpec,
    settings: &BackfillSettings,
) -> Result<BackfillPlan, BackfillError> {
    let w = walk(conn, spec).await?;
    validate(conn, &w).await?;
    let estimated_rows = w.facts.reltuples.round() as i64;
    let (upper, first_batch) = match w.key.kind {
        KeyKind::Ctid => {
            let per_page = if w.facts.pages > 0 && estimated_rows > 0 {
                estimated_rows as f64 / w.facts.pages as f64
            } else {
                100.0
            };
            let pages = (batch::FIRST_ROWS as f64 / per_page).ceil().max(1.0) as i64;
            (
                (w.facts.pages > 0).then(|| format!("{} page(s)", w.facts.pages)),
                (w.facts.pages > 0).then(|| {
                    format!(
                        "pages 0 to {} (ctid < '({},0)')",
                        pages.min(w.facts.pages) - 1,
                        pages.min(w.facts.pages)
                    )
                }),
            )
        }
        _ => {
            let upper = upper_key(conn, spec, &w.key).await?;
            let first = match &upper {
                None => None,
                Some(u) => {
                    let mut params: Vec<String> = u.clone();
                    params.push((batch::FIRST_ROWS - 1).to_string());
                    let end = conn
                        .query_opt(
                            w.sql.end_first.as_deref().unwrap_or_default(),
                            &refs(&params),
                        )
                        .await?
                        .map(|r| {
                            (0..w.key.columns.len())
                                .map(|i| r.get::<_, String>(i))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_else(|| u.clone());
                    Some(format!("{} <= {}", w.key.describe(), tuple(&end)))
                }
            };
            (upper.map(|u| tuple(&u)), first)
        }
    };
    let rows = estimated_rows.max(0) as f64;
    let secs = rows / NOMINAL_ROWS_PER_SEC;
    let estimated_batches = if upper.is_none() {
        0
    } else {
        ((secs / settings.batch_time.as_secs_f64()).ceil() as u64).max(1)
    };
    let sleeps = settings.sleep.as_secs_f64() * estimated_batches.saturating_sub(1) as f64;
    Ok(BackfillPlan {
        statement: spec.sql().to_owned(),
        table: spec.keyed_table().to_owned(),
        key: w.key,
        upper,
        first_batch,
        batch_sql: w.sql.display,
        estimated_rows,
        estimated_batches,
        estimated_duration: Duration::from_secs_f64(secs + sleeps),
    })
}

/// `(1, 'a')`, or `5` for one value.
fn tuple(values: &[String]) -> String {
    if values.len() == 1 {
        values[0].clone()
    } else {
        format!("({})", values.join(", "))
    }
}

fn refs(values: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Prepares every statement of the walk: the server parses and analyses
/// them (unknown columns, functions, type errors) without running them.
async fn validate(conn: &Connection, w: &Walk) -> Result<Prepared4, BackfillError> {
    let prep = |sql: String| async move {
        conn.prepare(&sql).await.map_err(|e| {
            if key::is_statement_error(&e) {
                BackfillError::Statement {
                    message: format!("the server rejects it: {e}"),
                }
            } else {
                BackfillError::Db(e)
            }
        })
    };
    Ok(Prepared4 {
        end_first: match &w.sql.end_first {
            Some(s) => Some(prep(s.clone()).await?),
            None => None,
        },
        end_next: match &w.sql.end_next {
            Some(s) => Some(prep(s.clone()).await?),
            None => None,
        },
        first: prep(w.sql.first.clone()).await?,
        next: prep(w.sql.next.clone()).await?,
    })
}

/// The walk's prepared statements.
struct Prepared4 {
    end_first: Option<Prepared>,
    end_next: Option<Prepared>,
    first: Prepared,
    next: Prepared,
}

/// Runs (or resumes) backfill `id` of `spec` on `conn` (`target` opens the
/// watchdog's connection). Strata's own tables must be at the current
/// layout (`History::ensure`). Nothing is changed before the statement,
/// the table and a resume have been checked.
pub async fn run(
    target: &Target,
    conn: &Connection,
    id: &BackfillId,
    spec: &BackfillSpec,
    settings: &BackfillSettings,
    on_event: &mut dyn FnMut(BackfillEvent),
) -> Result<BackfillOutcome, BackfillError> {
    let w = walk(conn, spec).await?;
    let prepared = validate(conn, &w).await?;
    // A run killed a moment ago keeps the lock until its backend notices
    // the client has gone (at most `client_connection_check_interval`
    // after its statement): wait a little for that before giving up.
    let waited = Instant::now();
    let locked = loop {
        let locked = conn
            .query_opt("SELECT pg_try_advisory_lock($1)", &[&id.lock_key()])
            .await?
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        if locked || waited.elapsed() >= BUSY_WAIT {
            break locked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if !locked {
        let pid = cursor::read(conn, id)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.backend_pid);
        return Err(BackfillError::Busy {
            id: id.label(),
            pid,
        });
    }
    let result = async {
        // Prepared once: each batch is then a few round trips that the
        // server neither parses nor plans again.
        let setup = conn
            .prepare("SELECT txid_current()::bigint, set_config('lock_timeout', $1, true)")
            .await?;
        let write = conn.prepare(&cursor::write_sql(id)).await?;
        Runner {
            target,
            conn,
            id,
            spec,
            settings,
            walk: &w,
            prepared: &prepared,
            setup: &setup,
            write: &write,
        }
        .run(on_event)
        .await
    }
    .await;
    let _ = conn
        .query("SELECT pg_advisory_unlock($1)", &[&id.lock_key()])
        .await;
    result
}

struct Runner<'a> {
    target: &'a Target,
    conn: &'a Connection,
    id: &'a BackfillId,
    spec: &'a BackfillSpec,
    settings: &'a BackfillSettings,
    walk: &'a Walk,
    prepared: &'a Prepared4,
    /// `txid_current()` and `SET LOCAL lock_timeout`, first in each batch.
    setup: &'a Prepared,
    /// The cursor upsert.
    write: &'a Prepared,
}

/// How a batch ended.
struct Done {
    cursor: Cursor,
    /// Units walked (rows, or pages for ctid); 0 for the last batch, whose
    /// size says nothing about the rate.
    units: u64,
}

impl Runner<'_> {
    async fn run(
        &self,
        on_event: &mut dyn FnMut(BackfillEvent),
    ) -> Result<BackfillOutcome, BackfillError> {
        let started = Instant::now();
        let (mut cur, resumed) = match cursor::read(self.conn, self.id).await? {
            Some(row) if row.state == "done" && row.cursor.hash == self.spec.hash() => {
                return Ok(self.outcome(&row.cursor, false, true, started, false, 0, 0));
            }
            Some(row) if row.state != "done" => {
                self.check_resume(&row.cursor)?;
                (row.cursor, true)
            }
            _ => (self.fresh().await?, false),
        };
        cur.estimated_rows = cur
            .estimated_rows
            .max(self.walk.facts.reltuples.round() as i64);
        cursor::write(self.conn, self.id, "running", &cur, None).await?;
        self.event(if resumed { "resume" } else { "start" }, &cur, None)
            .await?;
        let rows_at_start = cur.rows_done;
        // Time of the earlier runs of a resumed backfill: the cursor's
        // `elapsed_ms` is the total, so its rate is right across resumes.
        let elapsed_before = cur.elapsed_ms;
        on_event(BackfillEvent::Started {
            table: self.spec.keyed_table().to_owned(),
            key: self.walk.key.describe(),
            reason: self.walk.key.reason.clone(),
            resumed,
            progress: self.progress(&cur, started, rows_at_start, cur.batch_size),
        });
        let (first, min, max) = match self.walk.key.kind {
            KeyKind::Ctid => {
                let pages = (batch::FIRST_ROWS as f64 / self.rows_per_page(&cur)).ceil() as u64;
                (pages, 1, batch::MAX_PAGES)
            }
            _ => (batch::FIRST_ROWS, batch::MIN_ROWS, batch::MAX_ROWS),
        };
        let mut size = SizeController::new(
            self.settings.batch_time,
            if resumed && cur.batch_size > 0 {
                cur.batch_size
            } else {
                first
            },
            min,
            max,
        );
        let watchdog = Watchdog::start(self.target, self.conn.pid(), self.limits())
            .await
            .ok();
        let mut throttle = throttle::Throttle::new(self.settings);
        let mut first_batch = true;
        while !finished(&cur) {
            throttle
                .before_batch(self.conn, first_batch, on_event)
                .await;
            first_batch = false;
            let retries_started = Instant::now();
            let mut attempt = 0u32;
            loop {
                let t0 = Instant::now();
                if let Some(w) = &watchdog {
                    w.arm(false);
                }
                // Written with the batch: the time up to its start.
                cur.elapsed_ms = elapsed_before + started.elapsed().as_millis() as u64;
                let result = self.batch(&cur, size.size()).await;
                let cancel = watchdog.as_ref().and_then(Watchdog::disarm);
                match result {
                    Ok(done) => {
                        size.observe(done.units, t0.elapsed());
                        cur = done.cursor;
                        cur.batch_size = size.size();
                        on_event(BackfillEvent::Progress(self.progress(
                            &cur,
                            started,
                            rows_at_start,
                            size.size(),
                        )));
                        break;
                    }
                    Err(error) => {
                        let _ = self.conn.batch("ROLLBACK").await;
                        let why = match (error.code(), &cancel) {
                            (Some("57014"), Some(c)) => Some(c.reason.clone()),
                            (Some("55P03"), _) => Some(format!(
                                "a batch waited longer than lock_timeout ({}) for a lock an application transaction held",
                                humantime::format_duration(self.settings.lock_timeout)
                            )),
                            (Some("40P01"), _) => Some("a batch deadlocked with an application transaction".to_owned()),
                            (Some("40001"), _) => Some("a batch hit a serialization failure".to_owned()),
                            _ => None,
                        };
                        let Some(why) = why.filter(|_| {
                            retries_started.elapsed() < self.settings.lock_retry_budget
                        }) else {
                            return Err(self.fail(&cur, started, error).await);
                        };
                        attempt += 1;
                        size.shrink();
                        let pause = super::apply::backoff(attempt);
                        on_event(BackfillEvent::Paused {
                            reason: format!(
                                "{why}; retrying with a batch of {} {}",
                                size.size(),
                                self.unit()
                            ),
                            pause,
                        });
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        drop(watchdog);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        cur.elapsed_ms = elapsed_before + elapsed_ms;
        cursor::write(self.conn, self.id, "done", &cur, None).await?;
        self.event("finish", &cur, Some(elapsed_ms)).await?;
        let mut vacuumed = false;
        if self.settings.vacuum_after {
            on_event(BackfillEvent::Vacuum {
                table: self.spec.written_table().to_owned(),
            });
            self.conn
                .batch(&format!("VACUUM (ANALYZE) {}", self.spec.written_table()))
                .await?;
            vacuumed = true;
        }
        let size_now = size.size();
        Ok(self.outcome(
            &cur,
            resumed,
            false,
            started,
            vacuumed,
            rows_at_start,
            size_now,
        ))
    }

    fn unit(&self) -> &'static str {
        match self.walk.key.kind {
            KeyKind::Ctid => "page(s)",
            _ => "row(s)",
        }
    }

    /// The watchdog's limits for a batch: a batch that keeps application
    /// queries waiting longer than a few batch times (at least 200 ms, at
    /// most `max_lock_hold`) is cancelled and retried smaller.
    fn limits(&self) -> Limits {
        let hold = (self.settings.batch_time * 4).max(Duration::from_millis(200));
        Limits {
            lock_queue: Some(self.settings.lock_timeout.max(Duration::from_millis(80))),
            max_blocked: self.settings.max_blocked_queries,
            max_replication_lag: None,
            max_lock_hold: Some(match self.settings.max_lock_hold {
                Some(max) => hold.min(max),
                None => hold,
            }),
        }
    }

    fn check_resume(&self, c: &Cursor) -> Result<(), BackfillError> {
        let help = "finish it with the statement it started with, or discard its progress and start again (`strata backfill … --restart`; rows it already changed stay changed)";
        let changed = |reason: String| BackfillError::Changed {
            id: self.id.label(),
            reason,
            help: help.to_owned(),
        };
        if c.hash != self.spec.hash() {
            return Err(changed(format!(
                "its statement changed since it started\n  started: {}\n  now:     {}",
                c.statement,
                self.spec.sql()
            )));
        }
        if c.table_oid != self.walk.facts.oid {
            return Err(changed(format!(
                "table {} is not the table it started on (oid {} then, {} now: dropped and created again?)",
                self.spec.keyed_table(),
                c.table_oid,
                self.walk.facts.oid
            )));
        }
        let key: Vec<String> = self
            .walk
            .key
            .columns
            .iter()
            .map(|k| k.name.clone())
            .collect();
        if c.mode != self.walk.key.kind || c.key != key {
            return Err(changed(format!(
                "the key it walks changed: it started on {}, the table now has {}",
                if c.key.is_empty() {
                    "ctid page ranges".to_owned()
                } else {
                    c.key.join(", ")
                },
                self.walk.key.describe()
            )));
        }
        Ok(())
    }

    /// A new cursor: the upper bound fixed now.
    async fn fresh(&self) -> Result<Cursor, BackfillError> {
        let facts = &self.walk.facts;
        let mut c = Cursor {
            table: self.spec.keyed_table().to_owned(),
            table_oid: facts.oid,
            statement: self.spec.sql().to_owned(),
            hash: self.spec.hash(),
            mode: self.walk.key.kind.clone(),
            key: self
                .walk
                .key
                .columns
                .iter()
                .map(|k| k.name.clone())
                .collect(),
            last: None,
            upper: None,
            next_page: 0,
            upper_page: 0,
            start_xid: 0,
            batches: 0,
            rows_done: 0,
            rows_changed: 0,
            estimated_rows: facts.reltuples.max(0.0).round() as i64,
            batch_size: 0,
            elapsed_ms: 0,
        };
        match self.walk.key.kind {
            KeyKind::Ctid => {
                c.upper_page = facts.pages;
                // In its own transaction, before any batch: every row
                // version written after it has a larger xid.
                c.start_xid = self
                    .conn
                    .query_opt("SELECT txid_current()::bigint", &[])
                    .await?
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or_default();
            }
            _ => c.upper = upper_key(self.conn, self.spec, &self.walk.key).await?,
        }
        Ok(c)
    }

    fn rows_per_page(&self, c: &Cursor) -> f64 {
        if c.upper_page > 0 && c.estimated_rows > 0 {
            (c.estimated_rows as f64 / c.upper_page as f64).max(1.0)
        } else {
            100.0
        }
    }

    /// One batch in one transaction: its statement and its cursor row.
    async fn batch(&self, c: &Cursor, size: u64) -> Result<Done, DbError> {
        let conn = self.conn;
        conn.batch("BEGIN").await?;
        let lock_timeout = format!("{}ms", self.settings.lock_timeout.as_millis().max(1));
        let rows = conn.query_prepared(self.setup, &[&lock_timeout]).await?;
        let xid: i64 = rows.first().map(|r| r.get(0)).unwrap_or_default();
        let mut next = c.clone();
        let (changed, units) = match self.walk.key.kind {
            KeyKind::Ctid => {
                let from = c.next_page;
                let to = (from + size as i64).min(c.upper_page);
                let since = (xid - c.start_xid)
                    .clamp(0, i32::MAX as i64 - 1)
                    .to_string();
                let params = [format!("({from},0)"), format!("({to},0)"), since];
                let changed = conn
                    .execute_prepared(&self.prepared.first, &refs(&params))
                    .await?;
                next.next_page = to;
                next.rows_done += ((to - from) as f64 * self.rows_per_page(c)).round() as i64;
                (
                    changed,
                    if to < c.upper_page {
                        (to - from) as u64
                    } else {
                        0
                    },
                )
            }
            _ => {
                let upper = c.upper.clone().unwrap_or_default();
                let offset = (size.max(1) - 1).to_string();
                let end_row = match &c.last {
                    None => {
                        let mut p = upper.clone();
                        p.push(offset);
                        conn.query_prepared(
                            self.prepared.end_first.as_ref().ok_or_else(missing)?,
                            &refs(&p),
                        )
                        .await?
                    }
                    Some(last) => {
                        let mut p = last.clone();
                        p.extend(upper.iter().cloned());
                        p.push(offset);
                        conn.query_prepared(
                            self.prepared.end_next.as_ref().ok_or_else(missing)?,
                            &refs(&p),
                        )
                        .await?
                    }
                };
                let n = self.walk.key.columns.len();
                let end: Option<Vec<String>> = end_row
                    .first()
                    .map(|r| (0..n).map(|i| r.get::<_, String>(i)).collect());
                let full = end.is_some();
                let end = end.unwrap_or_else(|| upper.clone());
                let changed = match &c.last {
                    None => {
                        conn.execute_prepared(&self.prepared.first, &refs(&end))
                            .await?
                    }
                    Some(last) => {
                        let mut p = last.clone();
                        p.extend(end.iter().cloned());
                        conn.execute_prepared(&self.prepared.next, &refs(&p))
                            .await?
                    }
                };
                next.last = Some(end);
                next.rows_done += if full { size as i64 } else { changed as i64 };
                (changed, if full { size } else { 0 })
            }
        };
        next.batches += 1;
        next.rows_changed += changed as i64;
        next.batch_size = size;
        if next.rows_done > next.estimated_rows {
            next.estimated_rows = next.rows_done;
        }
        if finished(&next) {
            next.estimated_rows = next.rows_done;
        }
        let json = serde_json::to_string(&next).unwrap_or_default();
        let (done, total) = cursor::counts(&next);
        let step = self.id.step.to_string();
        let state = "running";
        let error: Option<String> = None;
        conn.execute_prepared(
            self.write,
            &[
                &self.id.history_name(),
                &self.id.version,
                &step,
                &state,
                &done,
                &total,
                &json,
                &error,
            ],
        )
        .await?;
        conn.batch("COMMIT").await?;
        Ok(Done {
            cursor: next,
            units,
        })
    }

    /// Records a failed batch (the cursor keeps the last committed one).
    async fn fail(&self, c: &Cursor, started: Instant, error: DbError) -> BackfillError {
        let message = error.to_string();
        let _ = cursor::write(self.conn, self.id, "failed", c, Some(&message)).await;
        let _ = self
            .event_with(
                "fail",
                c,
                Some(started.elapsed().as_millis() as u64),
                Some(&message),
            )
            .await;
        BackfillError::Failed {
            id: self.id.label(),
            batches: c.batches,
            rows_changed: c.rows_changed,
            error,
        }
    }

    async fn event(&self, phase: &str, c: &Cursor, ms: Option<u64>) -> Result<(), DbError> {
        self.event_with(phase, c, ms, None).await
    }

    async fn event_with(
        &self,
        phase: &str,
        c: &Cursor,
        ms: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        self.id
            .history
            .event(
                self.conn,
                &super::os_actor(),
                &Event {
                    action: "backfill",
                    migration: None,
                    success: error.is_none(),
                    duration_ms: ms.map(|m| m as i64),
                    details: serde_json::json!({
                        "phase": phase,
                        "backfill": self.id.version,
                        "step": self.id.step,
                        "table": self.spec.keyed_table(),
                        "statement": self.spec.sql(),
                        "key": self.walk.key.describe(),
                        "batches": c.batches,
                        "rows_changed": c.rows_changed,
                        // Every run's time (a resumed backfill's
                        // `duration_ms` is its last run's alone).
                        "elapsed_ms": c.elapsed_ms,
                        "error": error,
                    }),
                },
            )
            .await
    }

    fn progress(
        &self,
        c: &Cursor,
        started: Instant,
        rows_at_start: i64,
        batch_size: u64,
    ) -> BackfillProgress {
        let secs = started.elapsed().as_secs_f64();
        let walked = (c.rows_done - rows_at_start).max(0) as f64;
        let rate = if secs > 0.0 { walked / secs } else { 0.0 };
        let fraction = if finished(c) { 1.0 } else { c.fraction() };
        let eta = if finished(c) {
            Some(Duration::ZERO)
        } else if rate > 0.0 {
            let left = match c.mode {
                KeyKind::Ctid => (1.0 - fraction) * c.estimated_rows as f64,
                _ => (c.estimated_rows - c.rows_done).max(0) as f64,
            };
            Some(Duration::from_secs_f64(left / rate))
        } else {
            None
        };
        BackfillProgress {
            batches: c.batches,
            rows_done: c.rows_done,
            rows_changed: c.rows_changed,
            estimated_rows: c.estimated_rows,
            fraction,
            rows_per_sec: rate,
            eta,
            batch_size,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn outcome(
        &self,
        c: &Cursor,
        resumed: bool,
        already_done: bool,
        started: Instant,
        vacuumed: bool,
        rows_at_start: i64,
        size: u64,
    ) -> BackfillOutcome {
        BackfillOutcome {
            id: self.id.label(),
            table: self.spec.keyed_table().to_owned(),
            key: self.walk.key.describe(),
            resumed,
            already_done,
            progress: self.progress(c, started, rows_at_start, size),
            elapsed_ms: started.elapsed().as_millis() as u64,
            vacuumed,
        }
    }
}

fn missing() -> DbError {
    DbError::Io("internal: keyset statement not prepared".into())
}

/// Whether the walk has reached its upper bound.
fn finished(c: &Cursor) -> bool {
    match c.mode {
        KeyKind::Ctid => c.next_page >= c.upper_page,
        _ => match (&c.upper, &c.last) {
            (None, _) => true,
            (Some(u), Some(l)) => u == l,
            (Some(_), None) => false,
        },
    }
}

/// `strata backfill`: opens the target, brings Strata's tables to the
/// current layout (under the migration lock, only when they are not), and
/// runs the command's backfill of `spec`'s table; with `restart`, or when
/// the last one finished, it starts from the beginning.
pub async fn command(
    config: &crate::config::Config,
    target: &Target,
    spec: &BackfillSpec,
    settings: &BackfillSettings,
    restart: bool,
    on_event: &mut dyn FnMut(BackfillEvent),
) -> Result<BackfillOutcome, EngineError> {
    let history = History::new(&config.history_schema, &config.history_table);
    let conn = super::open(target).await?;
    // Bad input fails here, before anything is written.
    let w = walk(&conn, spec).await?;
    validate(&conn, &w).await?;
    if history.layout(&conn).await? != super::history::OWN_TABLES_VERSION {
        let lock =
            super::lock::MigrationLock::acquire(target, history.lock_key(), config.lock_wait)
                .await?;
        history.ensure(&conn).await?;
        lock.release().await?;
    }
    let id = BackfillId::command(history, spec.keyed_table());
    if let Some(row) = cursor::read(&conn, &id).await? {
        if restart && row.state == "running" && row.alive {
            // Never discard the progress of a run that is still going.
            return Err(BackfillError::Busy {
                id: id.label(),
                pid: row.backend_pid,
            }
            .into());
        }
        if restart || row.state == "done" {
            cursor::delete(&conn, &id).await?;
        }
    }
    Ok(run(target, &conn, &id, spec, settings, on_event).await?)
}

/// `strata backfill --dry-run`.
pub async fn command_plan(
    target: &Target,
    spec: &BackfillSpec,
    settings: &BackfillSettings,
) -> Result<BackfillPlan, EngineError> {
    let conn = super::open(target).await?;
    Ok(plan(&conn, spec, settings).await?)
}

/// Every backfill's progress row of `history` (for `strata status`).
pub async fn progress_rows(
    conn: &Connection,
    history: &History,
) -> Result<Vec<ProgressRow>, DbError> {
    cursor::read_all(conn, &BackfillId::new(history.clone(), "", 0)).await
}
