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

pub mod adopt;
mod analyze;
mod apply;
pub mod backup;
pub mod changelog;
mod error;
mod history;
mod lock;
pub mod monitor;
mod notices;
mod plan;
mod preflight;
mod repair;
mod resume;
mod rewrite;
mod watchdog;

use std::time::Duration;

pub use adopt::{adopt, AdoptOptions, AdoptReport};
pub use analyze::{analyze, lint_paths, options as lint_options, shown_in_full};
pub use apply::Mode;
pub use backup::Backup;
pub use error::{ChangedFile, EngineError};
pub use history::{AppliedRow, History};
pub use plan::{DownTarget, MigrationState, MigrationStatus};
pub use repair::{repair, RepairOptions};

use crate::config::Config;
use crate::db::{Connection, Target};
use crate::localpg::Cluster;
use crate::source::{self, Format, Migration, SourceProblem, Version};
use crate::sql::Statement;
use apply::Runner;
use history::Event;
use lock::MigrationLock;

/// What the engine reports while it works.
#[derive(Debug, Clone)]
pub enum Progress {
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
/// [`source::load_all`]).
pub fn load_dirs(config: &Config) -> source::Loaded {
    let nested: Vec<std::path::PathBuf> = config
        .environments
        .iter()
        .flat_map(|e| e.dirs.iter().cloned())
        .collect();
    source::load_all(&config.dirs, config.format, &config.placeholders, &nested)
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

    fn history(&self) -> History {
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

/// Checks a migration directory offline: every file loads and parses,
/// versions are unique, up/down pairs are consistent, directives are known,
/// and explicit transactions are balanced. Returns every problem found,
/// and the warnings (ignored files, pairing notes) last.
pub fn validate(
    dir: &std::path::Path,
    format: Option<Format>,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    validate_loaded(source::load(dir, format))
}

/// [`validate`] for the configured directories of this run, merged, with
/// placeholders substituted (an undefined one is a problem at its line).
pub fn validate_config(
    config: &Config,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    validate_loaded(load_dirs(config))
}

fn validate_loaded(
    loaded: source::Loaded,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    let mut problems = loaded.problems;
    for m in &loaded.migrations {
        for script in std::iter::once(&m.up).chain(m.down.as_ref()) {
            match apply::parse(script) {
                Ok(statements) => {
                    problems.extend(check_transactions(script, &statements));
                    problems.extend(self_undoing(script, &statements));
                }
                Err(EngineError::Sql {
                    path, line, error, ..
                }) => problems.push(SourceProblem {
                    path,
                    line: Some(line),
                    message: error.to_string(),
                    help: Some(error.help().to_owned()),
                }),
                Err(_) => {}
            }
        }
    }
    (
        Some(loaded.format),
        loaded.migrations.len(),
        problems,
        loaded.warnings,
    )
}

/// The HIGH `ban-self-undoing-migration` finding as a validate problem: a
/// file that drops everything it creates is never what its author meant.
fn self_undoing(script: &source::Script, statements: &[Statement]) -> Option<SourceProblem> {
    use crate::lint::rules::ban_self_undoing_migration::{check_script, META};
    let allowed = script.directives.iter().any(|(_, d)| {
        matches!(d, source::Directive::Allow { rules, .. } if rules.iter().any(|r| r == META.id))
    });
    if allowed {
        return None;
    }
    let (index, finding) = check_script(statements)?;
    Some(SourceProblem {
        path: script.path.clone(),
        line: Some(script.first_line + statements[index].line - 1),
        message: format!("HIGH {}: {}", META.id, finding.message),
        help: Some(format!(
            "mark the two parts so that `up` runs only the first and `down` only the second:\n{}",
            finding.fix.unwrap_or_default()
        )),
    })
}

fn check_transactions(script: &source::Script, statements: &[Statement]) -> Vec<SourceProblem> {
    use crate::sql::TransactionBehavior as T;
    let mut problems = Vec::new();
    let mut open: Option<usize> = None;
    for s in statements {
        let line = script.first_line + s.line - 1;
        match s.transaction {
            T::Begin if open.is_some() => problems.push(SourceProblem {
                path: script.path.clone(),
                line: Some(line),
                message: "BEGIN inside a transaction that is already open (nested transactions are not supported by PostgreSQL)".into(),
                help: Some("use SAVEPOINT, or COMMIT the first transaction".into()),
            }),
            T::Begin => open = Some(line),
            T::Commit | T::Rollback => open = None,
            T::Never(why) if open.is_some() => problems.push(SourceProblem {
                path: script.path.clone(),
                line: Some(line),
                message: format!("{why} cannot run inside the transaction opened above"),
                help: Some("move it after the COMMIT".into()),
            }),
            _ => {}
        }
    }
    if let Some(line) = open {
        problems.push(SourceProblem {
            path: script.path.clone(),
            line: Some(line),
            message: "BEGIN without a matching COMMIT".into(),
            help: Some("add COMMIT at the end of the transaction".into()),
        });
    }
    problems
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

/// The result of `status`: every migration's state, and the risk analysis
/// of the pending ones.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// Every migration, in run order.
    pub migrations: Vec<MigrationStatus>,
    /// Findings in pending migrations.
    pub findings: crate::lint::LintReport,
}

/// Reads every migration's state and analyses the pending ones.
pub async fn status(project: &Project, target: &Target) -> Result<StatusReport, EngineError> {
    let conn = target.connect().await?;
    let rows = project.history().read(&conn).await?;
    let migrations = project.statuses(&rows);
    let pending: Vec<usize> = migrations
        .iter()
        .filter(|s| s.state == MigrationState::Pending)
        .filter_map(|s| s.index)
        .collect();
    // Files that do not parse are reported by `up` and `validate`; status
    // still shows the states.
    let findings = analyze(project, Some(&conn), &pending)
        .await
        .unwrap_or_default();
    Ok(StatusReport {
        migrations,
        findings,
    })
}

/// Options of `up`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Stop after this version.
    pub target: Option<String>,
    /// Print the SQL instead of running it.
    pub dry_run: bool,
}

/// Options of `down`.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// How far to go.
    pub target: DownTarget,
    /// Print the SQL instead of running it.
    pub dry_run: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Migrations applied: (label, ms).
    pub applied: Vec<(String, i64)>,
    /// Migrations reverted: (label, ms).
    pub reverted: Vec<(String, i64)>,
    /// For dry runs: the exact SQL that would run.
    pub dry_run_sql: Option<String>,
    /// For dry runs: risk analysis would block the real run.
    pub blocked: bool,
}

/// A planned step with its parsed statements.
struct Step<'a> {
    /// The migration; a modified copy when safe rewrites force it outside a
    /// transaction.
    migration: std::borrow::Cow<'a, Migration>,
    statements: Vec<Statement>,
    resume: apply::Resume,
    /// Safe rewrites applied, one description each.
    rewrites: Vec<String>,
    /// Dry runs: what will be backed up before the step runs (the real
    /// run decides right before each step, see `backup`).
    backup: Option<String>,
}

fn parse_up_steps<'a>(
    project: &'a Project,
    statuses: &[MigrationStatus],
    plan: &[usize],
) -> Result<Vec<Step<'a>>, EngineError> {
    plan.iter()
        .map(|&i| {
            let m = &project.migrations[i];
            let (statements, migration, rewrites) = with_rewrites(project, m, apply::parse(&m.up)?);
            let row = statuses
                .iter()
                .find(|s| s.index == Some(i))
                .and_then(|s| s.row.as_ref());
            let resume = match row.filter(|r| r.state != "applied") {
                Some(r) => {
                    let done = r.statements_done.max(0) as usize;
                    if done > statements.len()
                        || r.done_checksum.as_deref()
                            != Some(&apply::done_checksum(&statements, done))
                    {
                        return Err(EngineError::ResumeChanged {
                            label: m.label(),
                            command: "up",
                            done,
                            total: statements.len(),
                        });
                    }
                    apply::Resume {
                        at: done,
                        pid: r.backend_pid,
                        interrupted: true,
                        killed: r.state == "running",
                    }
                }
                None => apply::Resume::default(),
            };
            Ok(Step {
                migration,
                statements,
                resume,
                rewrites,
                backup: None,
            })
        })
        .collect()
}

/// Applies safe rewrites when they are switched on. A rewritten migration
/// runs outside a transaction, statement by statement.
fn with_rewrites<'a>(
    project: &Project,
    m: &'a Migration,
    statements: Vec<Statement>,
) -> (Vec<Statement>, std::borrow::Cow<'a, Migration>, Vec<String>) {
    if !project.config.safe_rewrites {
        return (statements, std::borrow::Cow::Borrowed(m), Vec::new());
    }
    let pg_version = project
        .config
        .lint
        .pg_version
        .unwrap_or(crate::lint::context::NEWEST_PG);
    let result = rewrite::rewrite(&statements, m.up.first_line, pg_version);
    if result.notes.is_empty() {
        return (statements, std::borrow::Cow::Borrowed(m), Vec::new());
    }
    let mut owned = m.clone();
    owned.up.no_transaction = Some(source::NoTransaction {
        line: None,
        source: "safe rewrites need separate transactions".into(),
    });
    (
        result.statements,
        std::borrow::Cow::Owned(owned),
        result.notes,
    )
}

/// The down steps of `plan`. A migration whose `down` stopped part way
/// resumes at the statement it stopped at, after the same check as an `up`
/// resume: the down statements that ran are unchanged.
fn parse_down_steps<'a>(
    project: &'a Project,
    statuses: &[MigrationStatus],
    plan: &[usize],
) -> Result<Vec<Step<'a>>, EngineError> {
    plan.iter()
        .map(|&i| {
            let m = &project.migrations[i];
            let script = m
                .down
                .as_ref()
                .expect("invariant: plan_down checked the down script");
            let statements = apply::parse(script)?;
            let progress = statuses
                .iter()
                .find(|s| s.index == Some(i))
                .and_then(|s| s.row.as_ref())
                .and_then(|r| r.down.as_ref());
            let resume = match progress {
                Some(d) => {
                    let done = d.done.max(0) as usize;
                    if done > statements.len()
                        || d.done_checksum != apply::done_checksum(&statements, done)
                    {
                        return Err(EngineError::ResumeChanged {
                            label: m.label(),
                            command: "down",
                            done,
                            total: statements.len(),
                        });
                    }
                    apply::Resume {
                        at: done,
                        pid: d.backend_pid,
                        interrupted: true,
                        killed: d.state == "running",
                    }
                }
                None => apply::Resume::default(),
            };
            Ok(Step {
                migration: std::borrow::Cow::Borrowed(m),
                rewrites: Vec::new(),
                statements,
                resume,
                backup: None,
            })
        })
        .collect()
}

fn up_rules(project: &Project, target: Option<&str>) -> Result<plan::UpRules, EngineError> {
    Ok(plan::UpRules {
        target: target.map(|t| project.parse_version(t)).transpose()?,
        allow_out_of_order: project.config.allow_out_of_order,
        ignore_missing: project.config.ignore_missing,
    })
}

/// Applies pending migrations.
pub async fn up(
    project: &Project,
    target: &Target,
    options: &ApplyOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let rules = up_rules(project, options.target.as_deref())?;
    if let Some(t) = &rules.target {
        if !project.migrations.iter().any(|m| &m.version == t) {
            return Err(EngineError::UnknownVersion(t.to_string()));
        }
    }
    let conn = open(target).await?;
    let rows = history.read(&conn).await?;
    if rows.is_empty() {
        // Another tool migrated this database: running its history again
        // would fail on "already exists" (or worse, succeed twice).
        adopt::refuse_if_foreign(project, &conn, &history).await?;
    }
    let statuses = project.statuses(&rows);
    let plan = plan::plan_up(&project.migrations, &statuses, &rules)?;
    let findings = analyze(project, Some(&conn), &plan).await?;
    // Parse everything before taking the lock: bad SQL must fail before
    // anything runs.
    let mut steps = parse_up_steps(project, &statuses, &plan)?;
    let threshold = project.config.lint.block_on;
    let blocking = match threshold {
        Some(t) => findings.active().filter(|f| f.risk >= t).count(),
        None => 0,
    };
    if !findings.findings.is_empty() {
        observer(Progress::Findings {
            report: findings,
            block_on: threshold,
        });
    }
    if options.dry_run {
        backup::describe(&project.config, &conn, &mut steps, false).await?;
        return Ok(RunReport {
            dry_run_sql: Some(dry_run_up(&history, &timeouts(project), &steps)),
            blocked: blocking > 0,
            ..RunReport::default()
        });
    }
    if let (Some(threshold), true) = (threshold, blocking > 0) {
        return Err(EngineError::Blocked {
            count: blocking,
            threshold,
        });
    }
    if steps.is_empty() {
        return Ok(RunReport::default());
    }
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    // Check again under the lock: another runner may have done the work.
    let statuses_now = project.statuses(&history.read(&conn).await?);
    let plan_now = plan::plan_up(&project.migrations, &statuses_now, &rules)?;
    // Usually nothing changed while we waited for the lock; then the steps
    // parsed above stand.
    let steps = if plan_now == plan && same_rows(&statuses, &statuses_now, &plan) {
        steps
    } else {
        parse_up_steps(project, &statuses_now, &plan_now)?
    };
    let report = run_steps(
        project,
        target,
        &conn,
        &history,
        &steps,
        Direction::Up,
        observer,
    )
    .await;
    lock.release().await?;
    report
}

/// True when the planned migrations have the same history rows in both
/// readings (nobody applied or resumed them in between).
fn same_rows(before: &[MigrationStatus], after: &[MigrationStatus], plan: &[usize]) -> bool {
    let key = |statuses: &[MigrationStatus], i: usize| {
        statuses
            .iter()
            .find(|s| s.index == Some(i))
            .and_then(|s| s.row.as_ref())
            .map(|r| {
                (
                    r.state.clone(),
                    r.statements_done,
                    r.done_checksum.clone(),
                    r.backend_pid,
                )
            })
    };
    plan.iter().all(|&i| key(before, i) == key(after, i))
}

async fn runner<'a>(
    project: &Project,
    target: &Target,
    conn: &'a Connection,
    history: &'a History,
    actor: &'a str,
) -> Result<Runner<'a>, EngineError> {
    // The watchdog also samples index-build progress, so it runs even when
    // all its limits are off.
    let limits = watchdog::Limits {
        lock_queue: project.config.watchdog,
        max_blocked: project.config.max_blocked_queries,
        max_replication_lag: project.config.max_replication_lag,
        max_lock_hold: project.config.max_lock_hold,
    };
    let watchdog = Some(watchdog::Watchdog::start(target, conn.pid(), limits).await?);
    Ok(Runner {
        watchdog,
        conn,
        history,
        actor,
        record: history.prepare_record(conn).await?,
        progress: conn.prepare(&history.progress_sql()).await?,
        wait: project.config.lock_wait,
        timeouts: timeouts(project),
        index_build_attempts: project.config.index_build_retries,
    })
}

fn timeouts(project: &Project) -> apply::Timeouts {
    apply::Timeouts {
        lock: project.config.lock_timeout,
        budget: project.config.lock_retry_budget,
        statement: project.config.statement_timeout,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// Runs planned steps in one direction on one connection, reporting each.
async fn run_steps(
    project: &Project,
    target: &Target,
    conn: &Connection,
    history: &History,
    steps: &[Step<'_>],
    direction: Direction,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let actor = os_actor();
    let runner = runner(project, target, conn, history, &actor).await?;
    // What the server said about analysis and bookkeeping is not news.
    let _ = conn.take_notices();
    if let Some(notice) = backup::sweep(&project.config) {
        observer(Progress::Notice(notice));
    }
    let mut report = RunReport::default();
    for (n, step) in steps.iter().enumerate() {
        let m: &Migration = &step.migration;
        let pending = &step.statements[step.resume.at.min(step.statements.len())..];
        let checked =
            preflight::check(conn, pending, project.config.preflight_wait, n == 0).await?;
        if let Some(line) = preflight::describe(&checked) {
            observer(Progress::Notice(format!("{}: {line}", m.label())));
        }
        // Decided now, from the catalog as the earlier steps left it.
        let script = match direction {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_ref().unwrap_or(&m.up),
        };
        if let Some(need) = backup::before_migration(&project.config, conn, script, pending).await?
        {
            if let Some(b) = backup::take(
                &project.config,
                target,
                conn,
                Some((history, &actor)),
                &need,
                Some(m),
            )
            .await?
            {
                observer(Progress::Notice(format!(
                    "{}: backed up {} to {} ({} bytes; {})",
                    m.label(),
                    if b.whole_database {
                        "the whole database".to_owned()
                    } else {
                        b.tables.join(", ")
                    },
                    b.file.display(),
                    b.bytes,
                    b.reason
                )));
            }
        }
        let mut notices = notices::Forward::new(conn, m, script, &step.statements);
        let ran = {
            let mut observer = |p: Progress| notices.observe(p, observer);
            match direction {
                Direction::Up => {
                    runner
                        .up(
                            m,
                            &step.statements,
                            step.resume,
                            &step.rewrites,
                            &mut observer,
                        )
                        .await
                }
                Direction::Down => {
                    runner
                        .down(m, &step.statements, step.resume, &mut observer)
                        .await
                }
            }
        };
        notices.flush(observer);
        let ms = ran?;
        let (name, done) = match direction {
            Direction::Up => ("up", &mut report.applied),
            Direction::Down => ("down", &mut report.reverted),
        };
        observer(Progress::Finished {
            label: m.label(),
            direction: name,
            duration_ms: ms,
        });
        done.push((m.label(), ms));
    }
    Ok(report)
}

fn dry_run_up(history: &History, timeouts: &apply::Timeouts, steps: &[Step<'_>]) -> String {
    let actor = os_actor();
    let mut out = String::new();
    if steps.is_empty() {
        out.push_str("-- nothing to apply\n");
        return out;
    }
    out.push_str(&format!(
        "{SESSION_SETUP};\n-- the history tables are created if missing:\n{}\n",
        history.create_sql()
    ));
    for step in steps {
        let m: &Migration = &step.migration;
        let mode = apply::mode(&m.up, &step.statements);
        out.push_str(&format!(
            "\n-- {} ({}): {}\n",
            m.label(),
            m.up.path.display(),
            mode.describe()
        ));
        for note in &step.rewrites {
            out.push_str(&format!("-- safe rewrite, {note}\n"));
        }
        out.push_str(&dry_run_backup(step));
        let body: Vec<&Statement> = step.statements.iter().skip(step.resume.at).collect();
        match mode {
            Mode::Transaction => {
                out.push_str(&format!(
                    "BEGIN;\n{};\n",
                    timeouts.local_settings().replace("; ", ";\n")
                ));
                for s in body {
                    out.push_str(&format!("{};\n", s.sql));
                }
                out.push_str(&history.record_display(m, step.statements.len(), &actor));
                out.push_str("\nCOMMIT;\n");
                out.push_str("-- on a lock timeout (55P03) the transaction is rolled back and retried with backoff\n");
            }
            _ => {
                out.push_str(&format!(
                    "-- progress is recorded in {} after each statement\n",
                    history.table()
                ));
                // Statements outside the file's own BEGIN/COMMIT blocks that
                // may run in a transaction are wrapped with their progress
                // write; a block's progress is written before its COMMIT.
                let mut in_block = false;
                for s in body {
                    use crate::sql::TransactionBehavior as T;
                    let wrap = s.transaction == T::Any && !in_block;
                    let settings = if wrap {
                        format!("BEGIN; {}", timeouts.local_settings())
                    } else if in_block {
                        String::new()
                    } else {
                        timeouts.session_settings(s)
                    };
                    if !settings.is_empty() {
                        out.push_str(&format!("{};\n", settings.replace("; ", ";\n")));
                    }
                    if in_block && s.transaction == T::Commit {
                        out.push_str(
                            "-- progress is recorded here, inside the block's transaction\n",
                        );
                    }
                    out.push_str(&format!("{};\n", s.sql));
                    match s.transaction {
                        T::Begin => {
                            in_block = true;
                            out.push_str(&format!(
                                "{};\n",
                                timeouts.local_settings().replace("; ", ";\n")
                            ));
                        }
                        T::Commit | T::Rollback => in_block = false,
                        _ => {}
                    }
                    if wrap {
                        out.push_str("COMMIT;\n");
                    }
                }
                out.push_str(&format!(
                    "BEGIN;\n{}\nCOMMIT;\n",
                    history.record_display(m, step.statements.len(), &actor)
                ));
            }
        }
    }
    out
}

fn dry_run_backup(step: &Step<'_>) -> String {
    step.backup.clone().unwrap_or_default()
}

fn dry_run_down(history: &History, timeouts: &apply::Timeouts, steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        out.push_str("-- nothing to revert\n");
    }
    for step in steps {
        let m: &Migration = &step.migration;
        let script = m
            .down
            .as_ref()
            .expect("invariant: plan_down checked the down script");
        let mode = apply::mode(script, &step.statements);
        out.push_str(&format!(
            "\n-- revert {} ({}): {}\n",
            m.label(),
            script.path.display(),
            mode.describe()
        ));
        out.push_str(&dry_run_backup(step));
        out.push_str(&format!(
            "BEGIN;\n{};\n",
            timeouts.local_settings().replace("; ", ";\n")
        ));
        if step.resume.at > 0 {
            out.push_str(&format!(
                "-- resumes at statement {}: statements 1 to {} ran before and are recorded\n",
                step.resume.at + 1,
                step.resume.at
            ));
        }
        for s in step.statements.iter().skip(step.resume.at) {
            out.push_str(&format!("{};\n", s.sql));
        }
        out.push_str(&history.delete_display(m.kind.as_str(), &m.version.canonical()));
        out.push_str("\nINSERT INTO strata_events (action, ...) VALUES ('down', ...);\nCOMMIT;\n");
    }
    out
}

/// Reverts applied migrations.
pub async fn down(
    project: &Project,
    target: &Target,
    options: &DownOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let conn = open(target).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &options.target)?;
    let mut steps = parse_down_steps(project, &statuses, &plan)?;
    if options.dry_run {
        backup::describe(&project.config, &conn, &mut steps, true).await?;
        return Ok(RunReport {
            dry_run_sql: Some(dry_run_down(&history, &timeouts(project), &steps)),
            ..RunReport::default()
        });
    }
    if steps.is_empty() {
        return Ok(RunReport::default());
    }
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &options.target)?;
    let steps = parse_down_steps(project, &statuses, &plan)?;
    let report = run_steps(
        project,
        target,
        &conn,
        &history,
        &steps,
        Direction::Down,
        observer,
    )
    .await;
    lock.release().await?;
    report
}

/// Moves to exactly `version`: up if it is ahead, down if it is behind.
pub async fn goto(
    project: &Project,
    target: &Target,
    version: &str,
    dry_run: bool,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let v = project.parse_version(version)?;
    if !project.migrations.iter().any(|m| m.version == v) {
        return Err(EngineError::UnknownVersion(version.to_owned()));
    }
    let mut report = down(
        project,
        target,
        &DownOptions {
            target: DownTarget::To(v),
            dry_run,
        },
        observer,
    )
    .await?;
    let up_report = up(
        project,
        target,
        &ApplyOptions {
            target: Some(version.to_owned()),
            dry_run,
        },
        observer,
    )
    .await?;
    report.applied = up_report.applied;
    if let Some(sql) = up_report.dry_run_sql {
        report.dry_run_sql = Some(format!("{}{}", report.dry_run_sql.unwrap_or_default(), sql));
    }
    Ok(report)
}

/// Reverts the newest applied migration and applies it again.
pub async fn redo(
    project: &Project,
    target: &Target,
    dry_run: bool,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let conn = target.connect().await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &DownTarget::Steps(1))?;
    let Some(&last) = plan.first() else {
        return Ok(RunReport::default());
    };
    let version = project.migrations[last].version.to_string();
    let mut report = down(
        project,
        target,
        &DownOptions {
            target: DownTarget::Steps(1),
            dry_run,
        },
        observer,
    )
    .await?;
    if dry_run {
        let sql = report.dry_run_sql.take().unwrap_or_default();
        let steps = parse_up_steps(project, &[], &[last])?;
        report.dry_run_sql = Some(format!(
            "{sql}{}",
            dry_run_up(&history, &timeouts(project), &steps)
        ));
        return Ok(report);
    }
    let up_report = up(
        project,
        target,
        &ApplyOptions {
            target: Some(version),
            dry_run,
        },
        observer,
    )
    .await?;
    report.applied = up_report.applied;
    Ok(report)
}

/// Opens `target` for a command that changes only the history (`baseline`,
/// `repair`): the history table (created if missing), the migration lock
/// (the caller releases it), and every migration's status read under it.
async fn open_locked(
    project: &Project,
    target: &Target,
) -> Result<(History, Connection, MigrationLock, Vec<MigrationStatus>), EngineError> {
    let history = project.history();
    let conn = open(target).await?;
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    Ok((history, conn, lock, statuses))
}

/// Marks every migration up to `version` as applied without running it.
pub async fn baseline(
    project: &Project,
    target: &Target,
    version: &str,
) -> Result<Vec<String>, EngineError> {
    let v = project.parse_version(version)?;
    if !project.migrations.iter().any(|m| m.version == v) {
        return Err(EngineError::UnknownVersion(version.to_owned()));
    }
    let (history, conn, lock, statuses) = open_locked(project, target).await?;
    let actor = os_actor();
    let mut marked = Vec::new();
    conn.batch("BEGIN").await?;
    for s in statuses
        .iter()
        .filter(|s| s.state == MigrationState::Pending)
    {
        let Some(i) = s.index else { continue };
        let m = &project.migrations[i];
        if m.kind != source::MigrationKind::Versioned || m.version > v {
            continue;
        }
        history.insert_baseline(&conn, m, &actor).await?;
        history
            .event(
                &conn,
                &actor,
                &Event {
                    action: "baseline",
                    migration: Some(m),
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({ "baseline": version }),
                },
            )
            .await?;
        marked.push(m.label());
    }
    conn.batch("COMMIT").await?;
    lock.release().await?;
    Ok(marked)
}

/// `strata backup`: dumps `tables` (every table when empty) now, into the
/// configured backup directory, and records it in the event log.
pub async fn backup_now(
    config: &Config,
    target: &Target,
    tables: &[String],
) -> Result<Option<Backup>, EngineError> {
    let actor = os_actor();
    let history = History::new(&config.history_schema, &config.history_table);
    backup::manual(config, target, tables, &history, &actor).await
}

/// `strata backups`: the backups in the configured directory, oldest first.
pub fn backups(config: &Config) -> Vec<Backup> {
    backup::list(config)
}

/// `strata restore`: restores a backup (only `tables`, when given) in one
/// transaction.
pub async fn restore(
    config: &Config,
    target: &Target,
    file: &std::path::Path,
    tables: &[String],
) -> Result<(), EngineError> {
    let history = History::new(&config.history_schema, &config.history_table);
    backup::restore(config, target, &history, file, tables).await
}

/// How long `lock_wait` is, for messages.
pub fn lock_wait(project: &Project) -> Duration {
    project.config.lock_wait
}
