//! The library API: [`Migrator`], a thin facade over the engine.
//!
//! An application migrates its database at startup from a directory or from
//! migrations compiled into the binary ([`crate::embed_migrations!`]), with
//! the CLI's defaults and the same engine calls the CLI makes
//! (`engine::status`, `up`, `down`, `goto`), so the library and `strata up`
//! record the same history. Nothing here decides anything: it builds a
//! `Config` and a `Project`, calls the engine, and converts its results into
//! the plain types of [`types`], which hide the engine's internals.

mod types;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{BackupPolicy, Config, DatabaseSource, Flags, MAX_DURATION};
use crate::db::Target;
use crate::engine::{self, ApplyOptions, DownOptions, DownTarget, EngineError, Project};
use crate::source;
use crate::Error;

pub use types::{
    Direction, Event, Finding, MigrationState, MigrationStatus, Report, Risk, Step, Waiting,
};

/// Migrations compiled into the binary by [`crate::embed_migrations!`].
///
/// An application that migrates at startup then needs no migration files
/// next to it: the files were read, checked and checksummed when it was
/// built, with the same code as the `strata` command, so the history rows
/// it writes are the ones `strata up` writes for the same files. Hand it to
/// [`Migrator::embedded`].
///
/// ```ignore
/// static MIGRATIONS: strata::EmbeddedMigrations = strata::embed_migrations!("migrations");
/// let migrator = strata::Migrator::embedded(MIGRATIONS);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedMigrations {
    json: &'static str,
}

impl EmbeddedMigrations {
    /// Used by the expansion of [`crate::embed_migrations!`]; not an API.
    #[doc(hidden)]
    pub const fn __from_macro(json: &'static str) -> EmbeddedMigrations {
        EmbeddedMigrations { json }
    }
}

/// Where the migrations come from.
#[derive(Debug, Clone)]
enum Source {
    Dir(PathBuf),
    Embedded(EmbeddedMigrations),
}

/// The builder's settings; `None` keeps the CLI's default (or the config
/// file's value).
#[derive(Debug, Clone, Default)]
struct Settings {
    database_url: Option<String>,
    project_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    history_schema: Option<String>,
    history_table: Option<String>,
    lock_timeout: Option<Duration>,
    lock_wait: Option<Duration>,
    lock_retry_budget: Option<Duration>,
    statement_timeout: Option<Duration>,
    block_on: Option<Option<Risk>>,
    allow_out_of_order: Option<bool>,
    ignore_missing: Option<bool>,
    safe_rewrites: Option<bool>,
    backups: Option<bool>,
    placeholders: BTreeMap<String, String>,
    dry_run: bool,
    through_gates: bool,
    continue_plans: Vec<String>,
}

type Callback = Arc<dyn Fn(Event) + Send + Sync>;

/// Runs migrations against one database: the `strata` command as a library.
///
/// Why a builder: an application states only what differs from the CLI's
/// defaults (the database URL, usually), and every setting keeps the
/// meaning it has in `strata.toml` (see the README's *Configuration*):
/// a 30 ms `lock_timeout` with retries for 10 minutes, a 60 s wait for the
/// migration lock, the risk analysis that refuses HIGH findings, backups
/// before data-losing statements, history in `public.strata_migrations`.
/// Building a `Migrator` reads and connects to nothing; each operation
/// reads the migrations, connects, and does its work under Strata's
/// advisory lock, so several instances of an application starting at once
/// migrate exactly once.
///
/// The operations are `async` and need a Tokio runtime (Strata's driver is
/// tokio-postgres).
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn f() -> Result<(), strata::Error> {
/// let migrator = strata::Migrator::from_dir("migrations")
///     .database_url("postgres://app@localhost/app")
///     .lock_timeout(Duration::from_millis(50))
///     .history_table("app_migrations");
/// let report = migrator.up().await?;
/// println!("applied {} migration(s)", report.applied.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Migrator {
    source: Source,
    settings: Settings,
    on_progress: Option<Callback>,
}

impl std::fmt::Debug for Migrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut settings = self.settings.clone();
        settings.database_url = settings.database_url.map(|u| crate::db::redact(&u));
        f.debug_struct("Migrator")
            .field("source", &self.source)
            .field("settings", &settings)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

impl Migrator {
    /// Migrations read from a directory when each operation runs, in any
    /// layout Strata reads (detected, as the CLI detects it). A relative
    /// path is relative to the current directory.
    ///
    /// For tools and tests that ship the files; an application usually
    /// embeds them instead ([`Migrator::embedded`]).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), strata::Error> {
    /// let status = strata::Migrator::from_dir("migrations")
    ///     .database_url("postgres://app@localhost/app")
    ///     .status()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn from_dir(dir: impl Into<PathBuf>) -> Migrator {
        Migrator::new(Source::Dir(dir.into()))
    }

    /// Migrations compiled into the binary by [`crate::embed_migrations!`]:
    /// nothing is read from disk at run time.
    ///
    /// ```ignore
    /// let report = strata::Migrator::embedded(strata::embed_migrations!("migrations"))
    ///     .database_url(&url)
    ///     .up()
    ///     .await?;
    /// ```
    pub fn embedded(migrations: EmbeddedMigrations) -> Migrator {
        Migrator::new(Source::Embedded(migrations))
    }

    fn new(source: Source) -> Migrator {
        Migrator {
            source,
            settings: Settings::default(),
            on_progress: None,
        }
    }

    /// The database: a URL (`postgres://user:pw@host/db?sslmode=require`)
    /// or a libpq `key=value` string. Required unless the config file
    /// names one; the library never reads `DATABASE_URL` by itself.
    pub fn database_url(mut self, url: impl Into<String>) -> Migrator {
        self.settings.database_url = Some(url.into());
        self
    }

    /// Reads settings from a `strata.toml`, as the CLI does (without
    /// `[env.NAME]` selection and without environment variables), so an
    /// application and the `strata` command share one configuration. The
    /// builder's own settings win over the file's.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Migrator {
        self.settings.config_file = Some(path.into());
        self
    }

    /// Where Strata keeps its files (`.strata/backups`, the cached rewrite
    /// rate). Default: the config file's directory, else the current
    /// directory.
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Migrator {
        self.settings.project_dir = Some(dir.into());
        self
    }

    /// The history table (default `strata_migrations`). The event log is
    /// `strata_events` beside it.
    pub fn history_table(mut self, name: impl Into<String>) -> Migrator {
        self.settings.history_table = Some(name.into());
        self
    }

    /// The schema of the history table and event log (default `public`).
    pub fn history_schema(mut self, name: impl Into<String>) -> Migrator {
        self.settings.history_schema = Some(name.into());
        self
    }

    /// `lock_timeout` for every statement that takes a lock (default 30 ms):
    /// a migration waiting behind a long transaction gives up quickly and
    /// retries, instead of queueing the application's queries behind it.
    pub fn lock_timeout(mut self, timeout: Duration) -> Migrator {
        self.settings.lock_timeout = Some(timeout);
        self
    }

    /// How long the retries after lock timeouts may take in total
    /// (default 10 minutes).
    pub fn lock_retry_budget(mut self, budget: Duration) -> Migrator {
        self.settings.lock_retry_budget = Some(budget);
        self
    }

    /// How long to wait for Strata's migration lock while another instance
    /// migrates (default 60 s).
    pub fn lock_wait(mut self, wait: Duration) -> Migrator {
        self.settings.lock_wait = Some(wait);
        self
    }

    /// `statement_timeout` for migration statements (default: none).
    pub fn statement_timeout(mut self, timeout: Duration) -> Migrator {
        self.settings.statement_timeout = Some(timeout);
        self
    }

    /// The lowest unacknowledged risk that makes `up` refuse to run
    /// (default HIGH); `None` never refuses.
    pub fn block_on(mut self, risk: Option<Risk>) -> Migrator {
        self.settings.block_on = Some(risk);
        self
    }

    /// Apply pending migrations older than the newest applied one instead
    /// of refusing (default: refuse).
    pub fn allow_out_of_order(mut self, allow: bool) -> Migrator {
        self.settings.allow_out_of_order = Some(allow);
        self
    }

    /// Do not refuse to run when applied migrations have no file any more
    /// (default: refuse).
    pub fn ignore_missing(mut self, ignore: bool) -> Migrator {
        self.settings.ignore_missing = Some(ignore);
        self
    }

    /// Run the safe form of statements that have one (default: off).
    pub fn safe_rewrites(mut self, on: bool) -> Migrator {
        self.settings.safe_rewrites = Some(on);
        self
    }

    /// Back up with `pg_dump` the tables a data-losing statement touches,
    /// before it runs (default: on; the host needs `pg_dump`).
    pub fn backups(mut self, on: bool) -> Migrator {
        self.settings.backups = Some(on);
        self
    }

    /// A value for `${name}` in files that opt in with
    /// `-- strata:placeholders`.
    pub fn placeholder(mut self, name: impl Into<String>, value: impl Into<String>) -> Migrator {
        self.settings.placeholders.insert(name.into(), value.into());
        self
    }

    /// `up`, `down` and `goto` change nothing and return the exact SQL they
    /// would run in [`Report::dry_run_sql`].
    pub fn dry_run(mut self, on: bool) -> Migrator {
        self.settings.dry_run = on;
        self
    }

    /// Run every phase of every plan in one go, passing all their gates,
    /// as `strata up --through-gates` does (default: off, `up` stops at
    /// each gate and reports it in [`Report::waiting`]). For development
    /// and CI databases, and tests: in production a `deploy` gate stands
    /// for an application deploy that must happen in between.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), strata::Error> {
    /// strata::Migrator::from_dir("migrations")
    ///     .database_url("postgres://app@localhost/app_test")
    ///     .through_gates(true)
    ///     .up()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn through_gates(mut self, on: bool) -> Migrator {
        self.settings.through_gates = on;
        self
    }

    /// Pass the gate the plan with `version` (as written in its file name)
    /// waits at, and run on, as `strata up --continue V` does: that one
    /// gate, not the gates after it, which wait for their own deploys.
    /// Call it once per plan to pass several.
    ///
    /// Why an option of the builder and not an operation of its own: it
    /// changes what `up` (and `up_to`, `dry_run`) may do, like the CLI's
    /// flag changes `strata up`; the run, its lock, its report and its
    /// errors are `up`'s. `up` refuses (nothing runs) when no plan with
    /// that version is in progress.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// // app v2 is deployed: the plan that waited for it runs on.
    /// let report = m.continue_plan("20260301120000").up().await?;
    /// # Ok(()) }
    /// ```
    pub fn continue_plan(mut self, version: impl Into<String>) -> Migrator {
        self.settings.continue_plans.push(version.into());
        self
    }

    /// Calls `f` with every [`Event`] of a run (migration started, statement,
    /// lock retry, index build progress, finished). Send the events to a
    /// channel from `f` to handle them on another thread or task.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), strata::Error> {
    /// strata::Migrator::from_dir("migrations")
    ///     .database_url("postgres://app@localhost/app")
    ///     .on_progress(|e| eprintln!("{e:?}"))
    ///     .up()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_progress(mut self, f: impl Fn(Event) + Send + Sync + 'static) -> Migrator {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Every migration with its state, as `strata status` lists them.
    /// Reads the history; never writes.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// for s in m.status().await? {
    ///     println!("{} {} {:?}", s.version, s.name, s.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Vec<MigrationStatus>, Error> {
        let (project, target) = self.connect_project()?;
        let report = engine::status(&project, &target).await?;
        Ok(report.migrations.into_iter().map(Into::into).collect())
    }

    /// Applies every pending migration, in order, as `strata up` does.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// let report = m.up().await?;
    /// # Ok(()) }
    /// ```
    pub async fn up(&self) -> Result<Report, Error> {
        self.apply(None).await
    }

    /// Applies pending migrations up to and including `version` (as written
    /// in the file name), as `strata up --to` does.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// m.up_to("20240101120000").await?;
    /// # Ok(()) }
    /// ```
    pub async fn up_to(&self, version: &str) -> Result<Report, Error> {
        self.apply(Some(version.to_owned())).await
    }

    async fn apply(&self, to: Option<String>) -> Result<Report, Error> {
        let (project, target) = self.connect_project()?;
        let pass = self
            .settings
            .continue_plans
            .iter()
            .map(|v| {
                project
                    .format
                    .parse_version(v)
                    .map(|v| v.canonical())
                    .ok_or_else(|| EngineError::UnknownVersion(v.clone()))
            })
            .collect::<Result<_, _>>()?;
        let options = ApplyOptions {
            target: to,
            dry_run: self.settings.dry_run,
            gates: engine::Gates {
                through: self.settings.through_gates,
                pass,
            },
        };
        let mut sql = String::new();
        let report = engine::up(&project, &target, &options, &mut self.observer(&mut sql)).await?;
        Ok(Report::from_engine(report, sql, &labels(&project)))
    }

    /// Reverts the newest `steps` applied migrations with their down
    /// scripts, as `strata down --steps` does. Every step is checked (down
    /// script present, file unchanged) before any runs.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// m.down(1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn down(&self, steps: usize) -> Result<Report, Error> {
        let (project, target) = self.connect_project()?;
        let options = DownOptions {
            target: DownTarget::Steps(steps),
            dry_run: self.settings.dry_run,
        };
        let mut sql = String::new();
        let report =
            engine::down(&project, &target, &options, &mut self.observer(&mut sql)).await?;
        Ok(Report::from_engine(report, sql, &labels(&project)))
    }

    /// Moves to exactly `version`: applies what is missing up to it and
    /// reverts what is newer, as `strata goto` does.
    ///
    /// ```no_run
    /// # async fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// m.goto("3").await?;
    /// # Ok(()) }
    /// ```
    pub async fn goto(&self, version: &str) -> Result<Report, Error> {
        let (project, target) = self.connect_project()?;
        let mut sql = String::new();
        let report = engine::goto(
            &project,
            &target,
            version,
            self.settings.dry_run,
            &mut self.observer(&mut sql),
        )
        .await?;
        Ok(Report::from_engine(report, sql, &labels(&project)))
    }

    /// The risk analysis of every migration, offline, as `strata lint`
    /// runs it on the directory: each finding with its rule, risk, file and
    /// line, and a safe rewrite. Acknowledged findings are included, marked.
    /// A test can fail the build on a HIGH finding before a migration ever
    /// reaches a database.
    ///
    /// ```no_run
    /// # fn f(m: strata::Migrator) -> Result<(), strata::Error> {
    /// let high = m
    ///     .lint()?
    ///     .into_iter()
    ///     .filter(|f| !f.acknowledged && f.risk == strata::Risk::High)
    ///     .count();
    /// assert_eq!(high, 0);
    /// # Ok(()) }
    /// ```
    pub fn lint(&self) -> Result<Vec<Finding>, Error> {
        let project = self.project(self.config()?)?;
        let all: HashSet<usize> = (0..project.migrations.len()).collect();
        let options = engine::lint_options(&project.config);
        let report = crate::lint::lint_migrations(&project.migrations, &all, &options)
            .map_err(EngineError::Reread)?;
        Ok(report.findings.iter().map(Finding::from).collect())
    }

    /// The engine's observer for one run: a dry run's SQL is collected
    /// into `sql` (for [`Report::dry_run_sql`]), every other event goes to
    /// the `on_progress` callback.
    fn observer<'s>(&'s self, sql: &'s mut String) -> impl FnMut(engine::Progress) + 's {
        move |p| match p {
            engine::Progress::DryRunSql(piece) => sql.push_str(&piece),
            p => {
                if let (Some(f), Some(event)) = (&self.on_progress, Event::of(p)) {
                    f(event)
                }
            }
        }
    }

    fn connect_project(&self) -> Result<(Project, Target), Error> {
        let config = self.config()?;
        let url = match &config.database {
            Some((url, _)) => url.clone(),
            None => {
                return Err(usage(
                    "no database URL",
                    "call Migrator::database_url(...) (or name one in the config file)",
                ))
            }
        };
        let target = Target::parse(&url).map_err(EngineError::from)?;
        Ok((self.project(config)?, target))
    }

    /// The migrations, with the config they run under.
    fn project(&self, mut config: Config) -> Result<Project, Error> {
        let embedded = match &self.source {
            Source::Dir(_) => return Project::load(config),
            Source::Embedded(e) => source::embedded::Embedded::from_json(e.json)
                .map_err(|m| usage(m, "rebuild the application"))?,
        };
        config.dir = embedded.dir.clone();
        config.dirs = vec![embedded.dir];
        config.format = Some(embedded.format);
        let mut migrations = embedded.migrations;
        let problems = source::placeholders::apply(&mut migrations, &config.placeholders);
        if !problems.is_empty() {
            return Err(EngineError::Source(problems));
        }
        Ok(Project {
            format: embedded.format,
            migrations,
            warnings: Vec::new(),
            foreign: Vec::new(),
            config,
        })
    }

    /// The CLI's configuration with the builder's settings over it.
    fn config(&self) -> Result<Config, Error> {
        let s = &self.settings;
        let cwd = std::env::current_dir().map_err(|e| {
            usage(
                format!("cannot read the current directory: {e}"),
                "run from a directory that exists, or pass absolute paths",
            )
        })?;
        let mut config = match &s.config_file {
            Some(file) => {
                let flags = Flags {
                    config: Some(file.clone()),
                    ..Flags::default()
                };
                Config::resolve_with(&flags, &|_| None, &cwd)?
            }
            None => defaults(&s.project_dir.as_ref().map_or(cwd.clone(), |p| cwd.join(p)))?,
        };
        if let (Some(dir), Some(_)) = (&s.project_dir, &s.config_file) {
            config.project_dir = cwd.join(dir);
        }
        if let Source::Dir(dir) = &self.source {
            config.dir = cwd.join(dir);
            config.dirs = vec![config.dir.clone()];
        }
        if let Some(url) = &s.database_url {
            config.database = Some((url.clone(), DatabaseSource::Flag));
        }
        for (key, value) in [
            ("history_schema", &s.history_schema),
            ("history_table", &s.history_table),
        ] {
            if let Some(value) = value {
                if value.is_empty() || value.len() > 63 {
                    return Err(usage(
                        format!("{key} `{value}` must be 1 to 63 bytes long"),
                        "PostgreSQL identifiers are at most 63 bytes",
                    ));
                }
            }
        }
        if let Some(v) = &s.history_schema {
            config.history_schema = v.clone();
        }
        if let Some(v) = &s.history_table {
            config.history_table = v.clone();
        }
        for (key, value) in [
            ("lock_timeout", s.lock_timeout),
            ("lock_wait", s.lock_wait),
            ("lock_retry_budget", s.lock_retry_budget),
            ("statement_timeout", s.statement_timeout),
        ] {
            if value.is_some_and(|d| d > MAX_DURATION) {
                return Err(usage(
                    format!("{key} {value:?} is longer than PostgreSQL's limit of 2147483647 ms"),
                    "use a shorter duration",
                ));
            }
        }
        if s.lock_timeout.is_some_and(|d| d.is_zero()) {
            return Err(usage(
                "lock_timeout must be above 0 (0 would wait in the lock queue forever)",
                "use a few tens of milliseconds: retries cover longer waits",
            ));
        }
        config.lock_timeout = s.lock_timeout.unwrap_or(config.lock_timeout);
        config.lock_wait = s.lock_wait.unwrap_or(config.lock_wait);
        config.lock_retry_budget = s.lock_retry_budget.unwrap_or(config.lock_retry_budget);
        if let Some(d) = s.statement_timeout {
            config.statement_timeout = Some(d).filter(|d| !d.is_zero());
        }
        if let Some(block_on) = s.block_on {
            config.lint.block_on = block_on;
        }
        config.allow_out_of_order = s.allow_out_of_order.unwrap_or(config.allow_out_of_order);
        config.ignore_missing = s.ignore_missing.unwrap_or(config.ignore_missing);
        config.safe_rewrites = s.safe_rewrites.unwrap_or(config.safe_rewrites);
        match s.backups {
            Some(false) => config.backup = BackupPolicy::Never,
            Some(true) if config.backup == BackupPolicy::Never => {
                config.backup = BackupPolicy::Auto
            }
            _ => {}
        }
        config
            .placeholders
            .extend(s.placeholders.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(config)
    }
}

/// Every migration's (`version_name`, version as written), for
/// [`Report::from_engine`].
fn labels(project: &Project) -> Vec<(String, String)> {
    project
        .migrations
        .iter()
        .map(|m| (m.label(), m.version.to_string()))
        .collect()
}

/// A mistake in how the library was called (exit code 2: nothing ran).
fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::Usage {
        message: message.into(),
        help: help.into(),
    }
}

/// The CLI's defaults for a project in `project_dir`: `Config::resolve_with`
/// with no environment, run in an empty directory (so no `strata.toml` is
/// found), then moved to `project_dir`. The defaults are thereby the ones
/// `Config` documents, never a second copy kept here.
fn defaults(project_dir: &Path) -> Result<Config, Error> {
    let empty = tempfile::tempdir().map_err(|e| {
        usage(
            format!("cannot create a temporary directory: {e}"),
            "check that the temporary directory (TMPDIR) is writable",
        )
    })?;
    let mut config = Config::resolve_with(&Flags::default(), &|_| None, empty.path())?;
    let moved = |p: &Path| match p.strip_prefix(empty.path()) {
        Ok(inside) => project_dir.join(inside),
        Err(_) => p.to_path_buf(),
    };
    config.backup_dir = moved(&config.backup_dir);
    config.dir = moved(&config.dir);
    config.dirs = config.dirs.iter().map(|d| moved(d)).collect();
    config.project_dir = project_dir.to_path_buf();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_clis_in_the_project_dir() {
        let project = tempfile::tempdir().unwrap();
        let config = defaults(project.path()).unwrap();
        assert_eq!(config.project_dir, project.path());
        assert_eq!(config.backup_dir, project.path().join(".strata/backups"));
        assert_eq!(config.history_table, "strata_migrations");
        assert_eq!(config.lock_timeout, Duration::from_millis(30));
        assert!(config.database.is_none());
    }

    #[test]
    fn builder_settings_override_the_defaults() {
        let config = Migrator::from_dir("m")
            .database_url("postgres://u:secret@h/db")
            .history_table("app_migrations")
            .lock_timeout(Duration::from_millis(75))
            .backups(false)
            .block_on(None)
            .placeholder("role", "app")
            .config()
            .unwrap();
        assert_eq!(config.history_table, "app_migrations");
        assert_eq!(config.lock_timeout, Duration::from_millis(75));
        assert_eq!(config.backup, BackupPolicy::Never);
        assert_eq!(config.lint.block_on, None);
        assert_eq!(config.placeholders["role"], "app");
        assert!(config.dir.ends_with("m") && config.dir.is_absolute());
    }

    #[test]
    fn bad_settings_are_config_errors_with_help() {
        let e = Migrator::from_dir("m")
            .lock_timeout(Duration::ZERO)
            .config()
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("lock_timeout"), "{e}");
        assert!(e.help().is_some());
        let e = Migrator::from_dir("m")
            .history_table("x".repeat(64))
            .config()
            .unwrap_err();
        assert!(e.to_string().contains("history_table"), "{e}");
    }

    #[test]
    fn no_database_url_is_an_error_not_a_local_cluster() {
        let e = Migrator::from_dir("m").connect_project().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("no database URL"), "{e}");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let m = Migrator::from_dir("m").database_url("postgres://u:secret@h/db");
        assert!(!format!("{m:?}").contains("secret"));
    }

    #[test]
    fn lint_reports_findings_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1_t.up.sql"),
            "-- Drops a column the running application may still read.\nALTER TABLE users DROP COLUMN email;\n",
        )
        .unwrap();
        let findings = Migrator::from_dir(dir.path()).lint().unwrap();
        let drop = findings
            .iter()
            .find(|f| f.rule == "ban-drop-column")
            .unwrap_or_else(|| panic!("ban-drop-column: {findings:?}"));
        assert_eq!(drop.line, 2);
        assert!(drop.file.ends_with("1_t.up.sql"));
    }

    #[test]
    fn embedded_migrations_rebuild_without_the_files() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("migrations");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("1_t.up.sql"), "CREATE TABLE t (id int);\n").unwrap();
        let scanned = source::embedded::scan(base.path(), Path::new("migrations")).unwrap();
        let json: &'static str = Box::leak(scanned.embedded.to_json().unwrap().into_boxed_str());
        let on_disk = source::load(&dir, None).migrations;
        drop(base);
        let m = Migrator::embedded(EmbeddedMigrations::__from_macro(json));
        let project = m.project(m.config().unwrap()).unwrap();
        assert_eq!(project.migrations.len(), 1);
        assert_eq!(project.migrations[0].checksum, on_disk[0].checksum);
        assert_eq!(project.format, source::Format::Native);
        assert_eq!(project.config.dirs, [PathBuf::from("migrations")]);
    }
}
