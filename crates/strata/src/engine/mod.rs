//! The execution engine: status, up, down, goto, redo, baseline and repair.
//!
//! Every operation that changes the database follows the same shape: load
//! and parse everything first (bad input fails before anything runs), read
//! the history, and only when there is work take the migration lock, read
//! the history again under it, and run. Progress is reported through a
//! callback, never printed here.
//!
//! **Architecture Invariant:** nothing is recorded as applied unless it was.
//! A transactional migration commits its statements and its history row
//! together. A non-transactional one records progress after each statement
//! and resumes there.
//!
//! One file per operation: `status`, `up`, `down`, `goto` (and `redo`),
//! `baseline`, `repair`, `adopt`, `validate`, `backups` (backup, backups,
//! restore), `changelog`; `run` executes planned steps for `up` and `down`,
//! `dry_run` renders them. This file keeps only what they share.

pub mod adopt;
mod analyze;
mod apply;
pub mod backfill;
mod backfill_step;
pub mod backup;
mod backups;
mod baseline;
pub mod changelog;
mod down;
mod dry_run;
mod error;
mod goto;
mod history;
mod lock;
pub mod monitor;
mod notices;
pub mod phases;
mod plan;
mod plan_cmds;
mod preflight;
mod repair;
mod resume;
mod rewrite;
mod run;
mod statements;
mod status;
mod table_facts;
mod up;
mod validate;
mod watchdog;

use std::time::Duration;

pub use adopt::{adopt, AdoptOptions, AdoptReport};
pub use analyze::{
    analyze, lint_paths, lint_selection, options as lint_options, rewrite_rate, shown_in_full,
    LintSelection, RateSource,
};
pub use apply::Mode;
pub use backup::Backup;
pub use backups::{backup_now, backups, restore};
pub use baseline::baseline;
pub use down::{down, DownOptions};
pub use error::{ChangedFile, EngineError};
pub use goto::{goto, redo};
pub use history::{AppliedRow, History};
pub use phases::Gates;
pub use plan::{DownTarget, MigrationState, MigrationStatus};
pub use plan_cmds::{abort, rollback, RollbackOptions};
pub use repair::{repair, RepairOptions};
pub use status::{status, StatusReport};
pub use table_facts::table_facts;
pub use up::{up, ApplyOptions};
pub use validate::{validate, validate_config};

use baseline::open_locked;
use up::with_rewrites;

use crate::config::Config;
use crate::db::{Connection, Target};
use crate::localpg::Cluster;
use crate::source::{self, Format, Migration, SourceProblem, Version};

/// What the engine reports while it works.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A dry run's next piece of SQL (what one migration would send, with
    /// its comments), in the order it would run. Handed over as it is
    /// made, so that a dry run of many migrations never holds all of its
    /// text: the caller prints it, or collects it.
    DryRunSql(String),
    /// Something the user should know (a file runs outside a transaction,
    /// an invalid index was dropped, ...).
    Notice(String),
    /// A migration starts.
    Started {
        /// `version_name`.
        label: String,
        /// `up` or `down`.
        direction: &'static str,
        /// How it runs.
        detail: String,
    },
    /// Risk analysis of the migrations about to run, and the `block_on`
    /// threshold it was judged by (which findings block is for `report`
    /// to show; `analyze::shown_in_full`).
    Findings {
        /// The findings.
        report: crate::lint::LintReport,
        /// The configured `block_on`.
        block_on: Option<crate::lint::Risk>,
    },
    /// A NOTICE or WARNING the server sent while a migration ran
    /// (`RAISE NOTICE 'migrated % rows'`).
    Server {
        /// `version_name`.
        label: String,
        /// The line in the file of the statement that raised it.
        line: Option<usize>,
        /// What the server said.
        notice: crate::db::Notice,
    },
    /// A statement's lock wait was cut short (lock_timeout or the
    /// watchdog); it is retried after a pause.
    Retry {
        /// Retries of this migration so far.
        attempt: u32,
        /// What happened, who held the lock, and when the retry comes.
        message: String,
    },
    /// A statement of a migration starts.
    Statement {
        /// `version_name`.
        label: String,
        /// 1-based statement number.
        index: usize,
        /// Statements in the migration.
        total: usize,
        /// The statement's first line.
        summary: String,
    },
    /// A sample of the running index build's progress.
    IndexBuild(crate::db::activity::IndexBuild),
    /// A migration finished.
    Finished {
        /// `version_name`.
        label: String,
        /// `up` or `down`.
        direction: &'static str,
        /// Duration.
        duration_ms: i64,
    },
}

/// A loaded migration directory with its configuration.
#[derive(Debug, Clone)]
pub struct Project {
    /// The resolved configuration.
    pub config: Config,
    /// The layout in use.
    pub format: Format,
    /// The migrations, in run order.
    pub migrations: Vec<Migration>,
    /// Files the layout ignores and pairing notes (`status -v` shows them).
    pub warnings: Vec<SourceProblem>,
    /// Migrations in the directories of the config's other environments
    /// (not in this one's): applied rows of theirs are not "missing".
    pub foreign: Vec<plan::Foreign>,
}

/// Loads the configured directories of this run as one (see
/// [`source::load_all`]), holding script texts within
/// [`source::TEXT_BUDGET`]: past it, each step reads its file again where
/// it uses the text, so memory does not grow with the directory's size.
pub fn load_dirs(config: &Config) -> source::Loaded {
    let nested: Vec<std::path::PathBuf> = config
        .environments
        .iter()
        .flat_map(|e| e.dirs.iter().cloned())
        .collect();
    source::load_all(
        &config.dirs,
        config.format,
        &config.placeholders,
        &nested,
        source::TEXT_BUDGET,
    )
}

/// The migrations of directories that other environments of the config
/// include and this one does not.
///
/// The `up` event records the directory a migration came from (see
/// [`History::with_dirs`]), for the audit trail; `strata_migrations` keeps
/// its layout (changing Strata's own tables is left to versioned own
/// tables, issue 12). Whether an applied row is "missing" is decided here,
/// from the config and the files as they are now: a row whose file is in
/// another environment's directory is applied from there; one whose file
/// is in no configured directory (deleted, or its directory dropped from
/// the config) stays "missing", whatever the event says.
fn foreign_migrations(config: &Config) -> Vec<plan::Foreign> {
    let mut seen: Vec<&std::path::Path> = Vec::new();
    let mut out = Vec::new();
    for e in config.environments.iter().filter(|e| e.env != config.env) {
        for dir in &e.dirs {
            if config.dirs.contains(dir) || seen.contains(&dir.as_path()) {
                continue;
            }
            seen.push(dir);
            let shown = dir
                .strip_prefix(&config.project_dir)
                .unwrap_or(dir)
                .display()
                .to_string();
            for m in source::load(dir, e.format.or(config.format)).migrations {
                out.push(plan::Foreign {
                    kind: m.kind,
                    version: m.version.canonical(),
                    file: m.up.path,
                    dir: shown.clone(),
                    env: e.env.clone(),
                });
            }
        }
    }
    out
}

impl Project {
    /// Loads the configured directories (merged, placeholders substituted);
    /// any problem is an error (exit 2).
    pub fn load(config: Config) -> Result<Project, EngineError> {
        let loaded = load_dirs(&config);
        if !loaded.problems.is_empty() {
            return Err(EngineError::Source(loaded.problems));
        }
        Ok(Project {
            format: loaded.format,
            migrations: loaded.migrations,
            warnings: loaded.warnings,
            foreign: foreign_migrations(&config),
            config,
        })
    }

    /// Every migration's state (see [`plan::statuses_with`]).
    fn statuses(&self, rows: &[history::AppliedRow]) -> Vec<plan::MigrationStatus> {
        plan::statuses_with(self.format, &self.migrations, &self.foreign, rows)
    }

    /// What `up` runs given the history `rows`, planned from the statuses
    /// one at a time (see [`plan::UpPlanner`]).
    fn plan_up(
        &self,
        rows: &[history::AppliedRow],
        rules: &plan::UpRules,
    ) -> Result<plan::UpPlan, EngineError> {
        let mut planner = plan::UpPlanner::new(&self.migrations, rules);
        plan::each_status(
            self.format,
            &self.migrations,
            &self.foreign,
            rows,
            &mut |s| planner.see(s),
        );
        planner.finish()
    }

    /// The history table of this project (and where its migrations live).
    pub fn history(&self) -> History {
        let dirs = self.config.dirs.iter().map(|d| {
            let shown = d.strip_prefix(&self.config.project_dir).unwrap_or(d);
            (d.clone(), shown.display().to_string())
        });
        History::new(&self.config.history_schema, &self.config.history_table)
            .with_dirs(dirs.collect())
    }

    fn parse_version(&self, text: &str) -> Result<Version, EngineError> {
        self.format
            .parse_version(text)
            .ok_or_else(|| EngineError::UnknownVersion(text.to_owned()))
    }
}

/// Resolves where to connect: the configured URL, or the managed local
/// cluster (created and started on first use).
pub fn resolve_target(config: &Config) -> Result<Target, EngineError> {
    match &config.database {
        Some((url, _)) => Ok(Target::parse(url)?),
        None => {
            let info = Cluster::for_project(&config.project_dir).ensure_running()?;
            Ok(Target::parse(&info)?)
        }
    }
}

/// The OS user and host, recorded with the database user in `applied_by`.
fn os_actor() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string());
    let host = nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("({user}@{host})")
}

/// Session settings applied on every migration connection.
///
/// `client_connection_check_interval` makes the server abort a statement
/// soon after our process dies, so that a crashed run does not leave a
/// statement running behind a resume.
pub const SESSION_SETUP: &str = "SET client_connection_check_interval = '1s'";

async fn open(target: &Target) -> Result<Connection, EngineError> {
    let conn = target.connect().await?;
    conn.batch(SESSION_SETUP).await?;
    Ok(conn)
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Migrations applied: (label, ms).
    pub applied: Vec<(String, i64)>,
    /// Migrations reverted: (label, ms).
    pub reverted: Vec<(String, i64)>,
    /// A dry run: nothing ran, and the exact SQL that would run went to
    /// the observer as [`Progress::DryRunSql`], piece by piece.
    pub dry_run: bool,
    /// For dry runs: risk analysis would block the real run.
    pub blocked: bool,
    /// Plans that stopped at a gate ("V: phase k of n done; waiting for:
    /// …"), and which later migrations wait behind them.
    pub waiting: Vec<String>,
}

/// A planned step with its parsed statements.
struct Step<'a> {
    /// The migration; a modified copy when safe rewrites force it outside a
    /// transaction.
    migration: StepMigration<'a>,
    /// The statements it runs: held from the run's one parse, or parsed
    /// again right before use past the run's memory budget.
    statements: statements::Statements,
    resume: apply::Resume,
    /// Safe rewrites applied, one description each.
    rewrites: Vec<String>,
}

/// The migration of a [`Step`]: the project's own, or a modified copy
/// (boxed). Not a `Cow<Migration>`, which holds a whole `Migration` inline
/// even when it borrows: `up` keeps one step per pending migration, and
/// memory must stay flat in their number.
enum StepMigration<'a> {
    Borrowed(&'a Migration),
    Owned(Box<Migration>),
}

impl std::ops::Deref for StepMigration<'_> {
    type Target = Migration;

    fn deref(&self) -> &Migration {
        match self {
            StepMigration::Borrowed(m) => m,
            StepMigration::Owned(m) => m,
        }
    }
}

fn timeouts(project: &Project) -> apply::Timeouts {
    apply::Timeouts {
        lock: project.config.lock_timeout,
        budget: project.config.lock_retry_budget,
        statement: project.config.statement_timeout,
    }
}

/// How long `lock_wait` is, for messages.
pub fn lock_wait(project: &Project) -> Duration {
    project.config.lock_wait
}
