//! `strata trace`: what a migration's statements really do, observed on a
//! throwaway copy of the schema.
//!
//! The lint rules *predict* the lock each statement takes and whether it
//! rewrites a table; this module *observes* it, so that the predictions can
//! be checked (see [`compare`]). The copy is built by replaying the history
//! up to the migration before the traced one with the engine's own `up` on
//! a [`Throwaway`] cluster (the same code `strata up` runs, so the copy is
//! what production has), optionally filled with generated rows
//! ([`sample`]), and then the traced migration's statements run one by
//! one, in the mode the runner would use, with an observation after each:
//!
//! - the relation locks its own backend holds right after it and before
//!   its commit (`pg_locks`). Each statement runs in its own transaction
//!   here, also those of a transactional file: in one transaction a lock
//!   an earlier statement took in the same mode on the same relation
//!   hides the later statement's (one pg_locks row per relation and mode).
//!   The trace says what `up`, running the file in one transaction, holds
//!   until its COMMIT: every statement's locks ([`Trace::held_until_commit`]);
//! - statements that cannot run in a transaction block (CONCURRENTLY) are
//!   watched from a second connection while they run; that connection
//!   holds an old snapshot and an ACCESS SHARE lock on the statement's
//!   tables, which CONCURRENTLY builds and drops wait for, so their locks
//!   are seen every time rather than only when a poll happens to land;
//! - whether a table or index was rewritten (its `relfilenode` changed);
//! - how long it took on the sample (a scan or rewrite grows with it);
//! - which catalog objects changed ([`Snapshot::diff`]).
//!
//! The trace is stored as `.strata/traces/<version>.json` with the
//! migration's checksum, so `lint` and `spec` can use it while the file is
//! unchanged.

pub mod compare;
pub mod sample;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::catalog::{OwnTables, Snapshot};
use super::VerifyError;
use crate::config::{BackupPolicy, Config};
use crate::db::{Connection, Target};
use crate::engine::{self, ApplyOptions, Project};
use crate::localpg::Throwaway;
use crate::source::Migration;
use crate::sql::{self, RunMode, Statement, TransactionBehavior};

/// Options of a trace.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Fill every table the migration touches with this many generated
    /// rows before it runs.
    pub sample_rows: Option<u64>,
}

/// The observed behaviour of one migration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// The version, as the layout writes it.
    pub version: String,
    /// `version_name`.
    pub label: String,
    /// The up script.
    pub file: PathBuf,
    /// The migration's checksum when it was traced: a stored trace of a
    /// file changed since is stale.
    pub checksum: String,
    /// How the statements ran: `transaction`, `no transaction (why)` or
    /// `as written`.
    pub mode: String,
    /// `server_version_num` of the throwaway server.
    pub server_version: i32,
    /// Rows generated per table (`--sample-rows`), if asked.
    pub sample_rows: Option<u64>,
    /// What the sample filled, and what it could not.
    pub sample: Vec<String>,
    /// One entry per statement run, in order.
    pub statements: Vec<StatementTrace>,
    /// For a file `up` runs in one transaction: the strongest lock on
    /// each existing relation, held from the statement that takes it
    /// until the COMMIT (`ACCESS EXCLUSIVE on users`).
    #[serde(default)]
    pub held_until_commit: Vec<String>,
}

/// What one statement did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatementTrace {
    /// 1-based line in the file.
    pub line: usize,
    /// The statement's first line.
    pub summary: String,
    /// Locks it took (held right after it, not held just before it).
    pub locks: Vec<ObservedLock>,
    /// Every user-relation lock the backend held right after it (earlier
    /// statements' locks in the same transaction included).
    pub held: Vec<ObservedLock>,
    /// How the locks were observed: `own backend` (before commit) or
    /// `second connection` (while it ran outside a transaction).
    pub observed_from: String,
    /// Relations whose relfilenode changed: rewritten (`table users`,
    /// `index users_pkey`).
    pub rewrites: Vec<String>,
    /// Wall time on the copy, in milliseconds.
    pub ms: f64,
    /// Catalog objects it changed, one line each.
    pub changes: Vec<String>,
    /// Something to know about this observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The server's error, if it failed (the trace stops there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One relation lock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ObservedLock {
    /// The relation as SQL names it on the search path (`users`, `app.t`).
    pub relation: String,
    /// `table`, `partitioned table`, `index`, `view`, `materialized view`,
    /// `sequence`, ...
    pub kind: String,
    /// The mode as PostgreSQL's documentation names it (`ACCESS EXCLUSIVE`).
    pub mode: String,
    /// True when the relation existed before the migration (a lock on a
    /// relation the migration creates blocks nobody).
    pub existed: bool,
}

impl StatementTrace {
    /// The locks worth showing: on relations that existed before the
    /// migration, strongest first.
    pub fn blocking_locks(&self) -> Vec<&ObservedLock> {
        let mut out: Vec<&ObservedLock> = self.locks.iter().filter(|l| l.existed).collect();
        out.sort_by_key(|l| std::cmp::Reverse(mode_rank(&l.mode)));
        out
    }

    /// The locks to show people: the strongest per existing relation,
    /// strongest first; locks on indexes only when the statement locks
    /// nothing else (an index is locked with its table).
    pub fn shown_locks(&self) -> Vec<&ObservedLock> {
        let all = self.blocking_locks();
        let others: Vec<&ObservedLock> =
            all.iter().copied().filter(|l| l.kind != "index").collect();
        let pool = if others.is_empty() { all } else { others };
        let mut seen = BTreeSet::new();
        pool.into_iter()
            .filter(|l| seen.insert(l.relation.clone()))
            .collect()
    }

    /// Tables rewritten (the `table …` entries of `rewrites`).
    pub fn rewritten_tables(&self) -> Vec<&str> {
        self.rewrites
            .iter()
            .filter_map(|r| {
                r.strip_prefix("table ")
                    .or_else(|| r.strip_prefix("materialized view "))
            })
            .collect()
    }
}

/// The rank of a lock mode, weakest (1) to strongest (8); 0 if unknown.
pub fn mode_rank(mode: &str) -> u8 {
    match mode {
        "ACCESS SHARE" => 1,
        "ROW SHARE" => 2,
        "ROW EXCLUSIVE" => 3,
        "SHARE UPDATE EXCLUSIVE" => 4,
        "SHARE" => 5,
        "SHARE ROW EXCLUSIVE" => 6,
        "EXCLUSIVE" => 7,
        "ACCESS EXCLUSIVE" => 8,
        _ => 0,
    }
}

/// `AccessExclusiveLock` → `ACCESS EXCLUSIVE`.
fn mode_name(pg: &str) -> String {
    let core = pg.strip_suffix("Lock").unwrap_or(pg);
    let mut out = String::new();
    for (i, c) in core.char_indices() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Finds the migration named by `which`: a version, or the path of its up
/// file.
pub fn find<'a>(project: &'a Project, which: &str) -> Result<(usize, &'a Migration), VerifyError> {
    let path = Path::new(which);
    let canonical = path.canonicalize().ok();
    let found = project.migrations.iter().enumerate().find(|(_, m)| {
        m.version.as_str() == which
            || m.version.canonical() == which
            || m.label() == which
            || (canonical.is_some() && m.up.path.canonicalize().ok() == canonical)
    });
    found.ok_or_else(|| {
        VerifyError::Usage {
            message: format!(
                "no migration is named {which}: it is neither a version nor the up file of a migration in {}",
                project
                    .config
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            help: "`strata status` lists the versions".to_owned(),
        }
    })
}

/// Where the trace of `m` is stored.
pub fn stored_path(config: &Config, m: &Migration) -> PathBuf {
    traces_dir(config).join(format!("{}.json", file_safe(&m.version.canonical())))
}

fn traces_dir(config: &Config) -> PathBuf {
    config.project_dir.join(".strata").join("traces")
}

fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The stored trace of `m`, when there is one for the file as it is now
/// (same checksum). Unreadable or stale traces count as none.
pub fn stored(config: &Config, m: &Migration) -> Option<Trace> {
    let text = std::fs::read_to_string(stored_path(config, m)).ok()?;
    let trace: Trace = serde_json::from_str(&text).ok()?;
    (trace.checksum == m.checksum).then_some(trace)
}

/// Writes the trace where [`stored`] finds it; returns the path.
pub fn store(config: &Config, m: &Migration, trace: &Trace) -> Result<PathBuf, VerifyError> {
    let path = stored_path(config, m);
    let io = |e: std::io::Error| VerifyError::Io {
        what: "cannot write the trace",
        path: path.clone(),
        source: e,
        help: "check the permissions of .strata/ in the project directory, or pass --no-store",
    };
    std::fs::create_dir_all(traces_dir(config)).map_err(io)?;
    let text = serde_json::to_string_pretty(trace).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(io)?;
    Ok(path)
}

/// Traces migration `index` of `project` on a new throwaway cluster.
pub async fn trace(
    project: &Project,
    index: usize,
    options: &TraceOptions,
) -> Result<Trace, VerifyError> {
    let m = &project.migrations[index];
    let up = m.up.load().map_err(engine::EngineError::Reread)?;
    let statements = sql::split(up.text(), &m.up.blocks).map_err(|e| {
        VerifyError::from(engine::EngineError::Source(vec![
            crate::source::SourceProblem {
                path: m.up.path.clone(),
                line: Some(m.up.first_line + e.line() - 1),
                message: e.to_string(),
                help: Some(e.help().to_owned()),
            },
        ]))
    })?;
    // Locks and rewrites differ between majors: with `pg_version` set, the
    // copy runs that major when it is installed (the header says which ran).
    let cluster = match project.config.lint.pg_version {
        Some(major) => Throwaway::start_major(major)?,
        None => Throwaway::start()?,
    };
    let admin = Target::parse(&cluster.conninfo("postgres"))?
        .connect()
        .await?;
    admin.batch("CREATE DATABASE strata_trace").await?;
    drop(admin);
    let target = Target::parse(&cluster.conninfo("strata_trace"))?;
    replay_before(project, index, &target).await?;
    let conn = target.connect().await?;
    let server_version = crate::db::catalog::server_version_num(&conn).await?;
    let mut sample_notes = Vec::new();
    if let Some(rows) = options.sample_rows {
        sample_notes = sample::fill(&conn, &statements, rows).await?;
    }
    let mode = RunMode::of(
        m.up.no_transaction.as_ref().map(|n| n.source.clone()),
        m.up.first_line,
        &statements,
    );
    let own = OwnTables::new(
        &project.config.history_schema,
        &project.config.history_table,
    );
    let mut tracer = Tracer::new(&conn, &target, m.up.first_line, own).await?;
    let traced = match &mode {
        RunMode::Transaction | RunMode::NoTransaction(_) => tracer.one_by_one(&statements).await?,
        RunMode::AsWritten => tracer.as_written(&statements).await?,
    };
    Ok(Trace {
        version: m.version.as_str().to_owned(),
        label: m.label(),
        file: m.up.path.clone(),
        checksum: m.checksum.clone(),
        mode: match &mode {
            RunMode::Transaction => "transaction".to_owned(),
            RunMode::NoTransaction(why) => format!("no transaction ({why})"),
            RunMode::AsWritten => "as written (the file's own BEGIN/COMMIT)".to_owned(),
        },
        server_version,
        sample_rows: options.sample_rows,
        sample: sample_notes,
        held_until_commit: match mode {
            RunMode::Transaction => held_until_commit(&traced),
            _ => Vec::new(),
        },
        statements: traced,
    })
}

/// Builds the schema as it is right before migration `index`: the
/// engine's `up` up to the migration before it, with what would stop or
/// slow a replay on an empty copy switched off (risk blocking, backups).
async fn replay_before(
    project: &Project,
    index: usize,
    target: &Target,
) -> Result<(), VerifyError> {
    let Some(previous) = index.checked_sub(1).map(|i| &project.migrations[i]) else {
        return Ok(());
    };
    let mut config = project.config.clone();
    config.lint.block_on = None;
    config.backup = BackupPolicy::Never;
    // The copy's schema is not the project's: never write its schema file.
    config.schema_file = None;
    // The production guards have nothing to guard on a copy nobody uses.
    config.watchdog = None;
    config.max_lock_hold = None;
    config.max_replication_lag = None;
    config.max_blocked_queries = None;
    let mut replay = project.clone();
    replay.config = config;
    let options = ApplyOptions {
        target: Some(previous.version.as_str().to_owned()),
        dry_run: false,
        gates: engine::Gates {
            through: true,
            pass: Vec::new(),
        },
    };
    engine::up(&replay, target, &options, &mut |_| {})
        .await
        .map_err(|e| VerifyError::Usage {
            message: format!(
                "cannot build the copy to trace on: the history up to {} does not apply to an empty database on the throwaway cluster (your database was not touched):\n{e}",
                previous.label()
            ),
            help: "a history that needs objects it does not create (another tool's history table, an extension, a role) cannot be replayed; trace an earlier migration or fix the history".to_owned(),
        })?;
    Ok(())
}

/// A relation of the copy, for naming locks and spotting rewrites.
#[derive(Debug, Clone)]
struct Relation {
    name: String,
    kind: &'static str,
    filenode: i64,
}

type Relations = HashMap<i64, Relation>;

const RELATIONS: &str =
    "SELECT c.oid::int8, c.oid::regclass::text, c.relkind::text, c.relfilenode::int8
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

/// Granted relation locks of one backend in this database.
const LOCKS: &str = "SELECT relation::int8, mode FROM pg_locks
     WHERE pid = $1 AND locktype = 'relation' AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

fn kind_name(relkind: &str) -> &'static str {
    match relkind {
        "r" => "table",
        "p" => "partitioned table",
        "i" | "I" => "index",
        "v" => "view",
        "m" => "materialized view",
        "S" => "sequence",
        "f" => "foreign table",
        "c" => "type",
        _ => "relation",
    }
}

async fn relations(conn: &Connection) -> Result<Relations, VerifyError> {
    Ok(conn
        .query(RELATIONS, &[])
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.get(2);
            (
                r.get::<_, i64>(0),
                Relation {
                    name: r.get(1),
                    kind: kind_name(&kind),
                    filenode: r.get(3),
                },
            )
        })
        .collect())
}

async fn locks(conn: &Connection, pid: i32) -> Result<BTreeSet<(i64, String)>, VerifyError> {
    Ok(conn
        .query(LOCKS, &[&pid])
        .await?
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
        .collect())
}

/// Runs statements and observes each.
struct Tracer<'c> {
    conn: &'c Connection,
    target: &'c Target,
    first_line: usize,
    /// Relations before the migration.
    existing: Relations,
    /// Relations right before the next statement.
    rels: Relations,
    snapshot: Snapshot,
    /// Strata's own tables, left out of the snapshots.
    own: OwnTables,
}

impl<'c> Tracer<'c> {
    async fn new(
        conn: &'c Connection,
        target: &'c Target,
        first_line: usize,
        own: OwnTables,
    ) -> Result<Tracer<'c>, VerifyError> {
        let existing = relations(conn).await?;
        Ok(Tracer {
            conn,
            target,
            first_line,
            rels: existing.clone(),
            existing,
            snapshot: Snapshot::take_with(conn, &own).await?,
            own,
        })
    }

    fn line(&self, s: &Statement) -> usize {
        self.first_line + s.line - 1
    }

    /// Each statement that may run in a transaction gets its own, observed
    /// before its COMMIT; the others (CONCURRENTLY) run alone, watched from
    /// a second connection. For a file that runs outside a transaction
    /// this is what the runner does (it wraps each statement with its
    /// progress update). A transactional file runs in one transaction in
    /// `up`, but here each statement commits on its own: in one
    /// transaction a lock an earlier statement took hides the same lock
    /// taken again (pg_locks has one row per relation and mode), so the
    /// second `ALTER TABLE users` of a file would seem to take nothing.
    /// What `up` holds until its COMMIT is the union, [`Trace::held_until_commit`].
    async fn one_by_one(
        &mut self,
        statements: &[Statement],
    ) -> Result<Vec<StatementTrace>, VerifyError> {
        let mut out = Vec::new();
        for s in statements {
            let t = match s.transaction {
                TransactionBehavior::Never(_) => self.observed_outside(s).await?,
                _ => {
                    self.conn.batch("BEGIN").await?;
                    let t = self.observed_here(s).await?;
                    let end = if t.error.is_some() {
                        "ROLLBACK"
                    } else {
                        "COMMIT"
                    };
                    self.conn.batch(end).await?;
                    t
                }
            };
            let failed = t.error.is_some();
            out.push(t);
            if failed {
                break;
            }
        }
        Ok(out)
    }

    /// A file with its own BEGIN/COMMIT: statements run exactly as written.
    /// Between the file's own transactions a statement commits at once, so
    /// its locks are gone before they can be read: those are watched from
    /// a second connection.
    async fn as_written(
        &mut self,
        statements: &[Statement],
    ) -> Result<Vec<StatementTrace>, VerifyError> {
        let mut out = Vec::new();
        let mut open = false;
        for s in statements {
            let t = match s.transaction {
                TransactionBehavior::Begin => {
                    open = true;
                    self.observed_here(s).await?
                }
                TransactionBehavior::Commit | TransactionBehavior::Rollback => {
                    open = false;
                    self.observed_here(s).await?
                }
                _ if open => self.observed_here(s).await?,
                _ => self.observed_outside(s).await?,
            };
            let failed = t.error.is_some();
            out.push(t);
            if failed {
                if open {
                    let _ = self.conn.batch("ROLLBACK").await;
                }
                break;
            }
        }
        Ok(out)
    }

    /// Runs `s` on the traced connection and reads its locks from the same
    /// backend right after it, before anything commits.
    async fn observed_here(&mut self, s: &Statement) -> Result<StatementTrace, VerifyError> {
        let pid = self.conn.pid();
        let before = locks(self.conn, pid).await?;
        let started = Instant::now();
        let result = self.conn.batch(&s.sql).await;
        let elapsed = started.elapsed();
        if let Err(e) = result {
            return Ok(self.failed(s, elapsed, e.to_string()));
        }
        let after = locks(self.conn, pid).await?;
        let taken: BTreeSet<_> = after.difference(&before).cloned().collect();
        self.finish(s, elapsed, &taken, &after, "own backend", None)
            .await
    }

    /// Runs `s` outside a transaction while a second connection watches
    /// its backend's locks. The watcher first opens a transaction with a
    /// snapshot and an ACCESS SHARE lock on the statement's tables: the
    /// CONCURRENTLY forms wait for both before they finish, so their locks
    /// stay visible until the watcher has read them and lets go.
    async fn observed_outside(&mut self, s: &Statement) -> Result<StatementTrace, VerifyError> {
        let watcher = self.target.connect().await?;
        // The tables to hold, resolved outside the transaction (a name
        // to_regclass rejects must not abort it); an index stands for its
        // table (DROP INDEX CONCURRENTLY waits for the table's lockers).
        let mut tables = Vec::new();
        for name in statement_tables(s).into_iter().chain(dropped_names(s)) {
            let found = watcher
                .query_opt(
                    "SELECT COALESCE(i.indrelid, c.oid)::regclass::text FROM pg_class c
                     LEFT JOIN pg_index i ON i.indexrelid = c.oid
                     WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm', 'i')",
                    &[&name],
                )
                .await;
            if let Ok(Some(row)) = found {
                tables.push(row.get::<_, String>(0));
            }
        }
        watcher
            .batch("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
            .await?;
        for table in &tables {
            if watcher
                .batch(&format!("LOCK TABLE {table} IN ACCESS SHARE MODE"))
                .await
                .is_err()
            {
                // Still watch, with a snapshot only.
                watcher
                    .batch("ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
                    .await?;
                break;
            }
        }
        let pid = self.conn.pid();
        let done = Cell::new(false);
        let run = async {
            let started = Instant::now();
            let result = self.conn.batch(&s.sql).await;
            done.set(true);
            (result, started.elapsed())
        };
        let watch = async {
            let mut seen: BTreeSet<(i64, String)> = BTreeSet::new();
            let mut last = BTreeSet::new();
            let mut stable = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !done.get() && Instant::now() < deadline {
                if let Ok(now) = locks(&watcher, pid).await {
                    seen.extend(now.iter().cloned());
                    stable = if !now.is_empty() && now == last {
                        stable + 1
                    } else {
                        0
                    };
                    last = now;
                    if stable >= 2 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = watcher.batch("COMMIT").await;
            seen
        };
        let ((result, elapsed), seen) = tokio::join!(run, watch);
        if let Err(e) = result {
            return Ok(self.failed(s, elapsed, e.to_string()));
        }
        let note = if seen.is_empty() {
            Some("no lock seen: it ran outside a transaction and finished between two looks of the second connection".to_owned())
        } else {
            Some("observed from a second connection while it ran; its time includes waiting for that connection to look".to_owned())
        };
        self.finish(s, elapsed, &seen, &seen, "second connection", note)
            .await
    }

    fn failed(&self, s: &Statement, elapsed: Duration, error: String) -> StatementTrace {
        StatementTrace {
            line: self.line(s),
            summary: s.summary(),
            locks: Vec::new(),
            held: Vec::new(),
            observed_from: String::new(),
            rewrites: Vec::new(),
            ms: elapsed.as_secs_f64() * 1000.0,
            changes: Vec::new(),
            note: None,
            error: Some(crate::db::redact(&error)),
        }
    }

    async fn finish(
        &mut self,
        s: &Statement,
        elapsed: Duration,
        taken: &BTreeSet<(i64, String)>,
        held: &BTreeSet<(i64, String)>,
        observed_from: &str,
        note: Option<String>,
    ) -> Result<StatementTrace, VerifyError> {
        // Plain DML changes no catalog object and rewrites nothing: reading
        // the catalog after each of a data file's thousands of INSERTs
        // would make the trace quadratic.
        if only_dml(s) {
            return Ok(self.assemble(s, elapsed, taken, held, observed_from, note, None));
        }
        let rels = relations(self.conn).await?;
        let snapshot = Snapshot::take_with(self.conn, &self.own).await?;
        let out = self.assemble(
            s,
            elapsed,
            taken,
            held,
            observed_from,
            note,
            Some((&rels, &snapshot)),
        );
        self.rels = rels;
        self.snapshot = snapshot;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        s: &Statement,
        elapsed: Duration,
        taken: &BTreeSet<(i64, String)>,
        held: &BTreeSet<(i64, String)>,
        observed_from: &str,
        note: Option<String>,
        after: Option<(&Relations, &Snapshot)>,
    ) -> StatementTrace {
        let name = |oid: i64, mode: &str| -> Option<ObservedLock> {
            let r = after
                .and_then(|(rels, _)| rels.get(&oid))
                .or_else(|| self.rels.get(&oid))?;
            Some(ObservedLock {
                relation: r.name.clone(),
                kind: r.kind.to_owned(),
                mode: mode_name(mode),
                existed: self.existing.contains_key(&oid),
            })
        };
        let named = |set: &BTreeSet<(i64, String)>| {
            let mut v: Vec<ObservedLock> = set.iter().filter_map(|(o, m)| name(*o, m)).collect();
            v.sort();
            v
        };
        let (mut rewrites, changes): (Vec<String>, Vec<String>) = match after {
            Some((rels, snapshot)) => (
                self.rels
                    .iter()
                    .filter_map(|(oid, before)| {
                        let now = rels.get(oid)?;
                        (before.filenode != 0
                            && now.filenode != 0
                            && before.filenode != now.filenode)
                            .then(|| format!("{} {}", now.kind, now.name))
                    })
                    .collect(),
                self.snapshot
                    .diff(snapshot)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        rewrites.sort();
        StatementTrace {
            line: self.line(s),
            summary: s.summary(),
            locks: named(taken),
            held: named(held),
            observed_from: observed_from.to_owned(),
            rewrites,
            ms: elapsed.as_secs_f64() * 1000.0,
            changes,
            note,
            error: None,
        }
    }
}

/// The strongest lock per existing relation over all statements.
fn held_until_commit(statements: &[StatementTrace]) -> Vec<String> {
    let locks: Vec<ObservedLock> = statements
        .iter()
        .flat_map(|s| s.shown_locks())
        .cloned()
        .collect();
    strongest_by_relation(&locks)
        .into_iter()
        .map(|(rel, mode)| format!("{mode} on {rel}"))
        .collect()
}

/// True when every statement of `s` is INSERT, UPDATE, DELETE, MERGE or
/// a plain SELECT (which cannot change the catalog, short of calling a
/// function that does).
fn only_dml(s: &Statement) -> bool {
    let nodes = s.nodes();
    !nodes.is_empty()
        && nodes.iter().all(|n| {
            matches!(
                n.node.as_ref(),
                Some(
                    pg_query::NodeEnum::InsertStmt(_)
                        | pg_query::NodeEnum::UpdateStmt(_)
                        | pg_query::NodeEnum::DeleteStmt(_)
                        | pg_query::NodeEnum::MergeStmt(_)
                )
            ) || matches!(n.node.as_ref(), Some(pg_query::NodeEnum::SelectStmt(sel)) if sel.into_clause.is_none())
        })
}

/// The objects a DROP names (`DROP INDEX CONCURRENTLY i`: the parser's
/// table list does not include them).
fn dropped_names(s: &Statement) -> Vec<String> {
    s.nodes()
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(pg_query::NodeEnum::DropStmt(d)) => Some(d),
            _ => None,
        })
        .flat_map(|d| d.objects.iter())
        .filter_map(|o| match o.node.as_ref() {
            Some(pg_query::NodeEnum::List(l)) => Some(crate::lint::ast::name(&l.items)),
            _ => None,
        })
        .collect()
}

/// The tables a statement names (as written), from the parser.
pub(crate) fn statement_tables(s: &Statement) -> Vec<String> {
    match pg_query::parse(&s.sql, 0) {
        Ok(tree) => {
            let mut seen = BTreeSet::new();
            tree.tables()
                .into_iter()
                .filter(|t| seen.insert(t.clone()))
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

/// The trace for people: one line per statement,
/// `file:line  LOCK on table; rewrite (…); 12.3 ms; changed: …`.
pub fn render_human(trace: &Trace, rel: &dyn Fn(&Path) -> String) -> String {
    let mut out = format!(
        "trace of {} ({}; PostgreSQL {}{})\n",
        trace.label,
        trace.mode,
        trace.server_version / 10000,
        match trace.sample_rows {
            Some(n) => format!("; sample of {n} rows per table"),
            None => "; empty tables (use --sample-rows N for scan and rewrite times)".to_owned(),
        }
    );
    for note in &trace.sample {
        out.push_str(&format!("  sample: {note}\n"));
    }
    let file = rel(&trace.file);
    for s in &trace.statements {
        out.push_str(&format!("{file}:{}  {}\n", s.line, statement_line(s)));
    }
    if !trace.held_until_commit.is_empty() {
        out.push_str(&format!(
            "in one transaction, `up` holds until COMMIT: {}\n",
            trace.held_until_commit.join(", ")
        ));
    }
    out
}

/// One statement's observed facts on one line (also used by `lint`).
pub fn statement_line(s: &StatementTrace) -> String {
    if let Some(e) = &s.error {
        return format!("failed: {e}");
    }
    let mut parts = Vec::new();
    let blocking = s.shown_locks();
    if blocking.is_empty() {
        parts.push("no lock on an existing relation".to_owned());
    } else {
        parts.push(
            blocking
                .iter()
                .map(|l| format!("{} on {}", l.mode, l.relation))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if s.rewrites.is_empty() {
        parts.push("no rewrite".to_owned());
    } else {
        parts.push(format!(
            "rewrite (relfilenode changed: {})",
            s.rewrites.join(", ")
        ));
    }
    parts.push(format!("{:.1} ms", s.ms));
    if !s.changes.is_empty() {
        parts.push(format!("changed: {}", s.changes.join(", ")));
    }
    if let Some(note) = &s.note {
        parts.push(format!("({note})"));
    }
    parts.join("; ")
}

/// A short form for beside lint findings: `ACCESS EXCLUSIVE on users, rewrite`.
pub fn short_facts(s: &StatementTrace) -> String {
    let mut parts: Vec<String> = s
        .shown_locks()
        .iter()
        .map(|l| format!("{} on {}", l.mode, l.relation))
        .collect();
    if parts.is_empty() {
        parts.push("no lock on an existing relation".to_owned());
    }
    parts.push(if s.rewrites.is_empty() {
        "no rewrite".to_owned()
    } else {
        "rewrite".to_owned()
    });
    parts.push(format!("{:.0} ms", s.ms));
    parts.join(", ")
}

/// Lock modes by relation, strongest per relation (for comparisons).
pub fn strongest_by_relation(locks: &[ObservedLock]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for l in locks {
        let e = out.entry(l.relation.clone()).or_default();
        if mode_rank(&l.mode) > mode_rank(e) {
            *e = l.mode.clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_follow_the_documentation() {
        assert_eq!(mode_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(
            mode_name("ShareUpdateExclusiveLock"),
            "SHARE UPDATE EXCLUSIVE"
        );
        assert_eq!(mode_name("ShareLock"), "SHARE");
        assert_eq!(mode_rank(&mode_name("RowExclusiveLock")), 3);
    }

    #[test]
    fn versions_become_safe_file_names() {
        assert_eq!(file_safe("2024.1/x"), "2024.1_x");
    }
}
