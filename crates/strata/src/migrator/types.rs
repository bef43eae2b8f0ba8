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
    /// Plans that stopped at a gate, in order: a deploy the application
    /// must make first, or a wait that has not elapsed. Empty when every
    /// plan is done. `up` succeeds in that case (the plan is where it
    /// should be); an application that must not start before a plan is
    /// through looks here.
    pub waiting: Vec<Waiting>,
}

/// A plan (`<version>_<name>.plan.toml`) that `up` left at a gate, as
/// `strata up` prints it (`V_name: phase 1 of 2 done; waiting for: deploy:
/// app v2`).
///
/// Why a value and not an error: stopping at a gate is the plan working as
/// written. The application deploys what the gate names, then passes it
/// with [`crate::Migrator::continue_plan`] (`strata up --continue V`).
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
/// for w in m.up().await?.waiting {
///     println!("{}: phase {} of {} done; waiting for: {}", w.plan, w.phases_done, w.phases, w.gate);
///     // After the deploy: pass that one gate and run on.
///     m.clone().continue_plan(&w.version).up().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waiting {
    /// `version_name` of the plan.
    pub plan: String,
    /// Its version as written in the file name (what
    /// [`crate::Migrator::continue_plan`] takes).
    pub version: String,
    /// Phases finished.
    pub phases_done: usize,
    /// Phases in the plan.
    pub phases: usize,
    /// The gate, as the plan file states it: `deploy: <text>` or
    /// `wait <duration>`.
    pub gate: String,
    /// Later migrations (`version_name`) that wait for this plan because
    /// it is not `independent`.
    pub held_back: Vec<String>,
}

impl Report {
    /// The library's report of an engine run. `labels` are the project's
    /// migrations as (`version_name`, version as written): the engine
    /// reports waiting plans as the lines the CLI prints, and the labels
    /// find where a plan's name ends in them (a name may hold `: `).
    /// `dry_run_sql` is the SQL the engine handed over piece by piece
    /// ([`engine::Progress::DryRunSql`]), kept only for a dry run.
    pub(super) fn from_engine(
        r: engine::RunReport,
        dry_run_sql: String,
        labels: &[(String, String)],
    ) -> Report {
        let steps = |v: Vec<(String, i64)>| {
            v.into_iter()
                .map(|(migration, ms)| Step {
                    migration,
                    duration: Duration::from_millis(ms.max(0) as u64),
                })
                .collect()
        };
        let mut waiting: Vec<Waiting> = Vec::new();
        for line in &r.waiting {
            if let Some(w) = parse_waiting(line, labels) {
                waiting.push(w);
            } else if let Some(w) = waiting
                .iter_mut()
                .find(|w| line.contains(&format!(" wait for plan {} (not independent): ", w.plan)))
            {
                if let Some((_, list)) = line.split_once(" (not independent): ") {
                    w.held_back = list.split(", ").map(str::to_owned).collect();
                }
            }
        }
        Report {
            applied: steps(r.applied),
            reverted: steps(r.reverted),
            dry_run_sql: r.dry_run.then_some(dry_run_sql),
            waiting,
        }
    }
}

/// Reads one `engine::phases::waiting_line` ("V_name: phase k of n done;
/// waiting for: gate") back, `None` for any other line.
fn parse_waiting(line: &str, labels: &[(String, String)]) -> Option<Waiting> {
    labels.iter().find_map(|(label, version)| {
        let rest = line
            .strip_prefix(label.as_str())?
            .strip_prefix(": phase ")?;
        let (done, rest) = rest.split_once(" of ")?;
        let (total, gate) = rest.split_once(" done; waiting for: ")?;
        Some(Waiting {
            plan: label.clone(),
            version: version.clone(),
            phases_done: done.parse().ok()?,
            phases: total.parse().ok()?,
            gate: gate.to_owned(),
            held_back: Vec::new(),
        })
    })
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

impl Event {
    /// The event of an engine progress report; `None` for a dry run's SQL,
    /// which [`Report::dry_run_sql`] carries instead.
    pub(super) fn of(p: engine::Progress) -> Option<Event> {
        use engine::Progress as P;
        Some(match p {
            P::DryRunSql(_) => return None,
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_plans_are_read_from_the_engines_lines() {
        // The line as the runner writes it, for a name holding ": phase ".
        let loaded = {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("2_a.plan.toml"),
                "[[phase]]\nname = \"x\"\noperations = [\n  { op = \"add_column\", table = \"a\", column = \"c\", type = \"int\" },\n]\ngate = { deploy = \"app v2: writes c; done\" }\n\n[[phase]]\nname = \"y\"\noperations = [\n  { op = \"add_column\", table = \"a\", column = \"d\", type = \"int\" },\n]\n",
            )
            .unwrap();
            crate::source::load(dir.path(), None)
        };
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let m = &loaded.migrations[0];
        let plan = crate::source::plans::plan_of(m).unwrap();
        let line = engine::phases::waiting_line(m, 1, 2, &plan.phases[0].gate);
        let labels = [
            ("1_x".to_owned(), "1".to_owned()),
            (m.label(), m.version.to_string()),
            ("3_after".to_owned(), "3".to_owned()),
        ];
        let report = Report::from_engine(
            engine::RunReport {
                waiting: vec![
                    line,
                    "2 later migration(s) wait for plan 2_a (not independent): 3_after, 4_b".into(),
                ],
                ..Default::default()
            },
            String::new(),
            &labels,
        );
        assert_eq!(
            report.waiting,
            [Waiting {
                plan: "2_a".into(),
                version: "2".into(),
                phases_done: 1,
                phases: 2,
                gate: "deploy: app v2: writes c; done".into(),
                held_back: vec!["3_after".into(), "4_b".into()],
            }]
        );
    }
}
