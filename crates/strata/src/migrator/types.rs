//! The plain data the library API hands out: run reports, statuses,
//! findings and progress events. Each is a copy of the engine's own value
//! with the engine's internals left out, so the engine can change without
//! breaking applications.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::engine;
pub use crate::engine::MigrationState;
pub use crate::lint::Risk;

/// Which way a migration runs.
///
/// Reported with [`Event::Started`] and [`Event::Finished`], so a progress
/// display can tell an apply from a revert.
///
/// ```
/// let d = strata::Direction::Up;
/// assert_eq!(d.to_string(), "up");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applying (`up`).
    Up,
    /// Reverting (`down`).
    Down,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Up => "up",
            Direction::Down => "down",
        })
    }
}

impl Direction {
    fn of(text: &str) -> Direction {
        if text == "down" {
            Direction::Down
        } else {
            Direction::Up
        }
    }
}

/// One migration that a run applied or reverted.
///
/// Applications log these at startup ("applied 3 migrations in 120 ms"),
/// so the label and the time are all it carries.
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
/// for step in m.up().await?.applied {
///     println!("applied {} in {:?}", step.migration, step.duration);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// `version_name`, as the CLI prints it (`20240101120000_add_users`).
    pub migration: String,
    /// How long it took.
    pub duration: Duration,
}

/// What [`crate::Migrator::up`], [`crate::Migrator::down`] or
/// [`crate::Migrator::goto`] did.
///
/// A run that had nothing to do returns an empty report, not an error, so
/// migrating at every startup is cheap and quiet.
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
/// let report = m.up().await?;
/// if report.applied.is_empty() {
///     println!("database already up to date");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Migrations applied, in order.
    pub applied: Vec<Step>,
    /// Migrations reverted, in order.
    pub reverted: Vec<Step>,
    /// With [`crate::Migrator::dry_run`]: the exact SQL the run would send,
    /// history writes included. Nothing was changed.
    pub dry_run_sql: Option<String>,
}

impl From<engine::RunReport> for Report {
    fn from(r: engine::RunReport) -> Report {
        let steps = |v: Vec<(String, i64)>| {
            v.into_iter()
                .map(|(migration, ms)| Step {
                    migration,
                    duration: Duration::from_millis(ms.max(0) as u64),
                })
                .collect()
        };
        Report {
            applied: steps(r.applied),
            reverted: steps(r.reverted),
            dry_run_sql: r.dry_run_sql,
        }
    }
}

/// One migration's state, as `strata status` shows it.
///
/// An application can refuse to start while something is `Modified`,
/// `Missing` or `Failed`, or show the list on an admin page.
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
/// use strata::MigrationState;
/// let pending = m
///     .status()
///     .await?
///     .iter()
///     .filter(|s| s.state == MigrationState::Pending)
///     .count();
/// println!("{pending} migration(s) to apply");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The version as written in the file name (as recorded, when the file
    /// is missing).
    pub version: String,
    /// The descriptive part of the name.
    pub name: String,
    /// Applied, pending, modified, missing, failed or reverting.
    pub state: MigrationState,
    /// When it was applied.
    pub applied_at: Option<SystemTime>,
    /// How long applying it took.
    pub duration: Option<Duration>,
    /// The database user, OS user and host that applied it.
    pub applied_by: Option<String>,
    /// Its up file (for embedded migrations, the path it had when the
    /// binary was built, relative to the crate).
    pub file: Option<PathBuf>,
    /// Details: where a failed migration stopped, what changed.
    pub detail: Option<String>,
}

impl From<engine::MigrationStatus> for MigrationStatus {
    fn from(s: engine::MigrationStatus) -> MigrationStatus {
        MigrationStatus {
            version: s.version,
            name: s.name,
            state: s.state,
            applied_at: s.applied_at.map(SystemTime::from),
            duration: s
                .duration_ms
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            applied_by: s.applied_by,
            file: s.file,
            detail: s.detail,
        }
    }
}

/// A risk found in a migration by the same analysis as `strata lint`.
///
/// Lets a test suite fail on risky migrations before they reach a database
/// (see [`crate::Migrator::lint`]).
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
/// for f in m.lint()?.iter().filter(|f| !f.acknowledged) {
///     println!("{}:{}: {} {}: {}", f.file.display(), f.line, f.risk, f.rule, f.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The rule id (`strata explain RULE` prints its documentation).
    pub rule: &'static str,
    /// LOW, MEDIUM or HIGH, after the project's overrides.
    pub risk: Risk,
    /// The file.
    pub file: PathBuf,
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The lock the statement takes and what it blocks, in words.
    pub lock: Option<String>,
    /// Why the statement is dangerous.
    pub message: String,
    /// The safe alternative, as SQL to paste.
    pub fix: Option<String>,
    /// True when a `-- strata:allow` comment acknowledged it.
    pub acknowledged: bool,
}

impl From<&crate::lint::Finding> for Finding {
    fn from(f: &crate::lint::Finding) -> Finding {
        Finding {
            rule: f.rule,
            risk: f.risk,
            file: f.file.clone(),
            line: f.line,
            column: f.column,
            lock: f.lock.clone(),
            message: f.message.clone(),
            fix: f.fix.clone(),
            acknowledged: f.allowed,
        }
    }
}

/// What a run reports while it works, given to the callback of
/// [`crate::Migrator::on_progress`].
///
/// An application at startup logs these; a long index build reports its
/// progress, a lock retry says who held the lock. Send them to a channel
/// from the callback to handle them elsewhere.
///
/// ```no_run
/// # async fn f() -> Result<(), strata::Error> {
/// let (tx, rx) = std::sync::mpsc::channel();
/// let migrator = strata::Migrator::from_dir("migrations")
///     .database_url("postgres://app@localhost/app")
///     .on_progress(move |event| {
///         let _ = tx.send(event);
///     });
/// std::thread::spawn(move || {
///     for event in rx {
///         if let strata::Event::Finished { migration, duration, .. } = event {
///             eprintln!("{migration}: {duration:?}");
///         }
///     }
/// });
/// migrator.up().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Something worth knowing: a file runs outside a transaction, an
    /// invalid index was dropped, a backup was taken.
    Notice(String),
    /// The risk analysis of the migrations about to run.
    Findings(Vec<Finding>),
    /// A migration starts.
    Started {
        /// `version_name`.
        migration: String,
        /// Up or down.
        direction: Direction,
        /// How it runs (in a transaction, statement by statement, ...).
        detail: String,
    },
    /// A statement of a migration starts.
    Statement {
        /// `version_name`.
        migration: String,
        /// 1-based statement number.
        index: usize,
        /// Statements in the migration.
        total: usize,
        /// The statement's first line.
        summary: String,
    },
    /// A lock wait was cut short (lock_timeout or the watchdog) and the
    /// statement will be retried.
    Retry {
        /// Retries of this migration so far.
        attempt: u32,
        /// What happened, who held the lock, when the retry comes.
        message: String,
    },
    /// A NOTICE or WARNING the server sent while a migration ran
    /// (`RAISE NOTICE 'migrated % rows'`).
    Server {
        /// `version_name`.
        migration: String,
        /// The line of the statement that raised it.
        line: Option<usize>,
        /// `NOTICE`, `WARNING`, ...
        severity: String,
        /// What the server said.
        message: String,
    },
    /// Progress of a running index build.
    IndexBuild {
        /// The table.
        table: String,
        /// The index, once known.
        index: String,
        /// The build phase, as PostgreSQL names it.
        phase: String,
        /// Percent done in this phase, when the phase has a size.
        percent: Option<f64>,
    },
    /// A migration finished.
    Finished {
        /// `version_name`.
        migration: String,
        /// Up or down.
        direction: Direction,
        /// How long it took.
        duration: Duration,
    },
}

impl From<engine::Progress> for Event {
    fn from(p: engine::Progress) -> Event {
        use engine::Progress as P;
        match p {
            P::Notice(text) => Event::Notice(text),
            P::Findings { report, .. } => {
                Event::Findings(report.findings.iter().map(Finding::from).collect())
            }
            P::Started {
                label,
                direction,
                detail,
            } => Event::Started {
                migration: label,
                direction: Direction::of(direction),
                detail,
            },
            P::Statement {
                label,
                index,
                total,
                summary,
            } => Event::Statement {
                migration: label,
                index,
                total,
                summary,
            },
            P::Retry { attempt, message } => Event::Retry { attempt, message },
            P::Server {
                label,
                line,
                notice,
            } => Event::Server {
                migration: label,
                line,
                severity: notice.severity,
                message: notice.message,
            },
            P::IndexBuild(b) => Event::IndexBuild {
                percent: b.percent(),
                table: b.table,
                index: b.index,
                phase: b.phase,
            },
            P::Finished {
                label,
                direction,
                duration_ms,
            } => Event::Finished {
                migration: label,
                direction: Direction::of(direction),
                duration: Duration::from_millis(duration_ms.max(0) as u64),
            },
        }
    }
}
