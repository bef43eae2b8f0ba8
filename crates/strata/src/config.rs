//! Configuration: `strata.toml`, environment variables and command-line
//! flags, resolved once into a [`Config`].
//!
//! Precedence is flags > environment > file > defaults. For the database:
//! `--database-url`, then `STRATA_DATABASE_URL`, `DATABASE_URL`,
//! `database_url` in the file, the libpq variables (`PGHOST`, `PGPORT`,
//! `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`) when `PGHOST` or
//! `PGDATABASE` is set, and finally the managed local cluster.
//!
//! **Architecture Invariant:** this is the only module that reads
//! environment variables, and it never touches the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::source::create::Numbering;
use crate::source::Format;

/// Where the database URL came from; shown by `status` so users know which
/// database they are looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// `--database-url`.
    Flag,
    /// An environment variable (its name).
    Env(&'static str),
    /// `database_url` in the config file.
    ConfigFile(PathBuf),
    /// Built from `PGHOST`, `PGDATABASE`, ...
    Libpq,
}

/// What the command line contributes; filled in by the CLI.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--dir`.
    pub dir: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--allow-out-of-order`.
    pub allow_out_of_order: bool,
    /// `--ignore-missing`.
    pub ignore_missing: bool,
    /// `--env`: the `[env.NAME]` table to apply (else `STRATA_ENV`).
    pub env: Option<String>,
}

/// The contents of `strata.toml`. Unknown keys are errors, so a typo never
/// silently falls back to a default.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The database to migrate.
    pub database_url: Option<String>,
    /// The migrations directory, relative to the config file.
    pub dir: Option<PathBuf>,
    /// Several migration directories, merged into one version order
    /// (`dirs = ["migrations", "migrations/development"]`); instead of `dir`.
    pub dirs: Option<Vec<PathBuf>>,
    /// The layout: `auto` (default), `native`, `goose`, `diesel`, `sqlx`, `flyway`.
    pub format: Option<String>,
    /// How `strata new` numbers migrations: `auto` (default: continue the
    /// directory's scheme, timestamps when empty), `timestamp`, `sequential`.
    pub numbering: Option<Numbering>,
    /// Schema of the history table and event log (default `public`).
    pub history_schema: Option<String>,
    /// Name of the history table (default `strata_migrations`).
    pub history_table: Option<String>,
    /// How long to wait for another runner's lock (default `60s`).
    pub lock_wait: Option<DurationSetting>,
    /// `lock_timeout` for each statement that takes a lock (default `30ms`).
    pub lock_timeout: Option<DurationSetting>,
    /// Total time to keep retrying after lock timeouts (default `10m`).
    pub lock_retry_budget: Option<DurationSetting>,
    /// `statement_timeout` for DDL; CONCURRENTLY statements are exempt (default: none).
    pub statement_timeout: Option<DurationSetting>,
    /// How long application queries may queue behind a waiting statement
    /// before the watchdog cancels it (default `80ms`; `off` disables it).
    pub watchdog: Option<OffOrDuration>,
    /// Allow pending versions older than the newest applied one.
    pub allow_out_of_order: Option<bool>,
    /// Ignore applied migrations whose files are gone.
    pub ignore_missing: Option<bool>,
    /// PostgreSQL major version to assume when not connected (default: newest).
    pub pg_version: Option<u32>,
    /// Run the safe form of statements that have one (default false).
    pub safe_rewrites: Option<bool>,
    /// Which unacknowledged findings block `strata up`: high (default), medium, never.
    pub block_on: Option<String>,
    /// Backups before risky migrations: `auto` (default: before migrations
    /// that lose data), `always`, `never`.
    pub backup: Option<BackupPolicy>,
    /// Where backups go, relative to the config file (default `.strata/backups`).
    pub backup_dir: Option<PathBuf>,
    /// A `DELETE ... WHERE` (or an `UPDATE` that overwrites a column with a
    /// constant) whose planner estimate exceeds this many rows, or 10 % of
    /// the table, backs the table up first (default 10,000).
    pub backup_min_rows: Option<i64>,
    /// Directory of `pg_dump` and `pg_restore` (default: the newest
    /// PostgreSQL installation found, then `PATH`).
    pub pg_bindir: Option<PathBuf>,
    /// A schema file (`schema.sql`), relative to the config file, that
    /// `strata up` and `strata down` rewrite with `strata dump` after they
    /// change the database, and `strata verify` checks (default: none).
    pub schema_file: Option<PathBuf>,
    /// How long pre-flight waits for transactions that hold locks on the
    /// migration's tables before it warns and goes on (default `10s`).
    pub preflight_wait: Option<DurationSetting>,
    /// Cancel and retry the running statement when more application queries
    /// than this are blocked behind Strata (default: off).
    pub max_blocked_queries: Option<u32>,
    /// The longest an application query may wait behind a migration
    /// statement (default `1s`; `off` disables both checks): `up` refuses a
    /// statement whose estimated lock hold is longer, and the watchdog
    /// cancels, without retrying, one that blocks the application longer.
    pub max_lock_hold: Option<OffOrDuration>,
    /// Pause between statements while a replica lags more than this
    /// (default: off), e.g. `30s`.
    pub max_replication_lag: Option<DurationSetting>,
    /// How many times a CREATE INDEX CONCURRENTLY that failed transiently
    /// (deadlock, serialization failure) is rebuilt within one run, after
    /// its invalid index is dropped (default 2).
    pub index_build_retries: Option<u32>,
    /// Lint settings.
    pub lint: Option<LintFileConfig>,
    /// `${name}` values for files that opt in with `-- strata:placeholders`.
    pub placeholders: Option<BTreeMap<String, String>>,
    /// `[env.NAME]` tables: any of the settings above, applied over the top
    /// level when the environment is selected (`--env NAME`, `STRATA_ENV`).
    pub env: Option<BTreeMap<String, FileConfig>>,
}

/// When Strata backs up tables before a migration (`backup = "auto"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupPolicy {
    /// Before a migration that loses data (DROP TABLE/COLUMN/SCHEMA,
    /// TRUNCATE, UPDATE or DELETE without WHERE, a rewriting type change).
    #[default]
    Auto,
    /// Before every migration.
    Always,
    /// Never.
    Never,
}

/// A duration setting as written in `strata.toml`: humantime's syntax
/// (`250ms`, `60s`, `5m`, `1h 30m`, `1.5s`) or a plain number of seconds.
/// Checked when the file is read, so a bad value is an error at its line;
/// the text is kept for messages about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationSetting {
    /// As written.
    pub text: String,
    /// The duration.
    pub value: Duration,
}

impl<'de> serde::Deserialize<'de> for DurationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value = parse_duration_in_range(&text).map_err(|e| {
            serde::de::Error::custom(if text.trim() == "off" {
                "`off` is not accepted here (write a duration such as 60s, 500ms, 5m)".to_owned()
            } else {
                e
            })
        })?;
        Ok(DurationSetting { text, value })
    }
}

/// A [`DurationSetting`] that `off` switches off (`watchdog`,
/// `max_lock_hold`).
#[derive(Debug, Clone, PartialEq)]
pub struct OffOrDuration {
    /// As written.
    pub text: String,
    /// `None` for `off`.
    pub value: Option<Duration>,
}

impl<'de> serde::Deserialize<'de> for OffOrDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value = if text.trim() == "off" {
            None
        } else {
            Some(parse_duration_in_range(&text).map_err(|e| {
                serde::de::Error::custom(format!("{e}, or \"off\" to switch it off"))
            })?)
        };
        Ok(OffOrDuration { text, value })
    }
}

/// The `[lint]` table of `strata.toml`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintFileConfig {
    /// Rule ids to switch off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Risk overrides: `rule-id = "low" | "medium" | "high"`.
    #[serde(default)]
    pub risk: std::collections::BTreeMap<String, String>,
    /// The SQL is run by another tool (turns on `require-timeouts`).
    pub external_runner: Option<bool>,
}

/// Resolved lint settings.
#[derive(Debug, Clone, Default)]
pub struct LintSettings {
    /// Assumed server version when not connected.
    pub pg_version: Option<u32>,
    /// Findings at or above this risk block `up`; `None` never blocks.
    pub block_on: Option<crate::lint::Risk>,
    /// Disabled rule ids.
    pub disabled: Vec<String>,
    /// Risk overrides.
    pub risk_overrides: Vec<(String, crate::lint::Risk)>,
    /// See [`LintFileConfig::external_runner`].
    pub external_runner: bool,
}

/// A configuration problem: exit code 2, nothing was run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The config file is not valid.
    #[error("invalid config file {path}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// The migration directories of one environment of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvDirs {
    /// The `[env.NAME]` name; `None` for the top level (no `--env`).
    pub env: Option<String>,
    /// Its directories, resolved like [`Config::dirs`].
    pub dirs: Vec<PathBuf>,
    /// Its layout, or `None` to detect it.
    pub format: Option<Format>,
}

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The project directory: where `strata.toml` is, or the working
    /// directory. The managed local cluster lives in `<project>/.strata/`.
    pub project_dir: PathBuf,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The database URL and where it came from; `None` means the managed
    /// local cluster.
    pub database: Option<(String, DatabaseSource)>,
    /// The primary migrations directory (the first of `dirs`): where
    /// `strata new` writes.
    pub dir: PathBuf,
    /// Every migration directory of this run, merged into one version order.
    pub dirs: Vec<PathBuf>,
    /// The selected environment (`--env`, `STRATA_ENV`), if any.
    pub env: Option<String>,
    /// Placeholder values: the top level's `[placeholders]` with the
    /// selected environment's over them.
    pub placeholders: BTreeMap<String, String>,
    /// The directories of every environment the config defines (the top
    /// level included), so that `status` can tell a migration applied from
    /// another environment's directory from one whose file is gone.
    pub environments: Vec<EnvDirs>,
    /// The layout, or `None` to detect it.
    pub format: Option<Format>,
    /// How `strata new` numbers migrations.
    pub numbering: Numbering,
    /// Schema of the history table and event log.
    pub history_schema: String,
    /// Name of the history table. The event log is `strata_events`.
    pub history_table: String,
    /// Bounded wait for the advisory lock.
    pub lock_wait: Duration,
    /// `lock_timeout` for statements that take locks.
    pub lock_timeout: Duration,
    /// Total retry time after lock timeouts.
    pub lock_retry_budget: Duration,
    /// `statement_timeout` for DDL, if any.
    pub statement_timeout: Option<Duration>,
    /// The watchdog budget; `None` is off.
    pub watchdog: Option<Duration>,
    /// See [`FileConfig::allow_out_of_order`].
    pub allow_out_of_order: bool,
    /// See [`FileConfig::ignore_missing`].
    pub ignore_missing: bool,
    /// Risk analysis settings.
    pub lint: LintSettings,
    /// Run the safe form of statements that have one (see `engine::rewrite`).
    pub safe_rewrites: bool,
    /// See [`BackupPolicy`].
    pub backup: BackupPolicy,
    /// Where backups are written.
    pub backup_dir: PathBuf,
    /// See [`FileConfig::backup_min_rows`].
    pub backup_min_rows: i64,
    /// Where to find `pg_dump`/`pg_restore`, when configured.
    pub pg_bindir: Option<PathBuf>,
    /// See [`FileConfig::schema_file`]: resolved against the project directory.
    pub schema_file: Option<PathBuf>,
    /// Bounded wait of the pre-flight check.
    pub preflight_wait: Duration,
    /// See [`FileConfig::max_blocked_queries`].
    pub max_blocked_queries: Option<u32>,
    /// See [`FileConfig::max_lock_hold`]; `None` is off.
    pub max_lock_hold: Option<Duration>,
    /// See [`FileConfig::max_replication_lag`].
    pub max_replication_lag: Option<Duration>,
    /// See [`FileConfig::index_build_retries`].
    pub index_build_retries: u32,
}

impl Config {
    /// Where measurements worth keeping between runs are cached (the
    /// server's rewrite rate): the project's `.strata/` when there is a
    /// `strata.toml`, else the user's cache directory (`$XDG_CACHE_HOME/strata`,
    /// `~/.cache/strata`), so that a run in an arbitrary directory leaves
    /// nothing behind in it. `None` when there is neither.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match &self.config_file {
            Some(_) => Some(self.project_dir.join(".strata")),
            None => dirs::cache_dir().map(|d| d.join("strata")),
        }
    }
}

impl Config {
    /// Resolves flags, the process environment and the config file.
    pub fn resolve(flags: &Flags) -> Result<Config, ConfigError> {
        Self::resolve_with(
            flags,
            &|name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            &std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        )
    }

    /// Like [`Config::resolve`] with an explicit environment and working
    /// directory, so that tests do not depend on the process.
    pub fn resolve_with(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Config, ConfigError> {
        let config_file = match &flags.config {
            Some(path) => Some(cwd.join(path)),
            None => Some(cwd.join("strata.toml")).filter(|p| p.is_file()),
        };
        let project_dir = config_file
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.to_path_buf());
        let env_name = flags.env.clone().or_else(|| env("STRATA_ENV"));
        let (file, environments) = match &config_file {
            Some(path) => read_file(path, env_name.as_deref(), &project_dir)?,
            None => match &env_name {
                Some(name) => {
                    return Err(ConfigError::Invalid {
                        path: cwd.join("strata.toml"),
                        line: None,
                        message: format!(
                            "environment `{name}` selected (--env or STRATA_ENV), but there is no config file to define it; add an [env.{name}] table to strata.toml"
                        ),
                    })
                }
                None => (FileConfig::default(), Vec::new()),
            },
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: config_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("strata.toml")),
            line: None,
            message,
        };

        let database = if let Some(url) = &flags.database_url {
            Some((url.clone(), DatabaseSource::Flag))
        } else if let Some(url) = env("STRATA_DATABASE_URL") {
            Some((url, DatabaseSource::Env("STRATA_DATABASE_URL")))
        } else if let Some(url) = env("DATABASE_URL") {
            Some((url, DatabaseSource::Env("DATABASE_URL")))
        } else if let Some(url) = &file.database_url {
            Some((
                url.clone(),
                DatabaseSource::ConfigFile(config_file.clone().unwrap_or_default()),
            ))
        } else {
            libpq_conninfo(env).map(|c| (c, DatabaseSource::Libpq))
        };

        let dirs = match &flags.dir {
            Some(dir) => vec![cwd.join(dir)],
            None => file_dirs(&file, &project_dir, cwd).map_err(&invalid)?,
        };
        let dir = dirs[0].clone();
        let placeholders = file.placeholders.clone().unwrap_or_default();
        if let Some((name, _)) = placeholders.iter().find(|(_, v)| v.contains('\n')) {
            return Err(invalid(format!(
                "placeholder `{name}`: values must be on one line (a line break would shift the line numbers of every message about the file)"
            )));
        }
        let format = match file.format.as_deref() {
            None | Some("auto") => None,
            Some(name) => Some(Format::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "unknown format `{name}` (use auto, native, goose, diesel, sqlx or flyway)"
                ))
            })?),
        };
        let numbering = file.numbering.unwrap_or_default();
        // Durations were parsed and range-checked when the file was read.
        let duration = |value: &Option<DurationSetting>, default: Option<Duration>| {
            value.as_ref().map(|d| d.value).or(default)
        };
        let lock_wait =
            duration(&file.lock_wait, Some(Duration::from_secs(60))).unwrap_or_default();
        let lock_timeout =
            duration(&file.lock_timeout, Some(Duration::from_millis(30))).unwrap_or_default();
        if lock_timeout.is_zero() {
            return Err(invalid(
                "lock_timeout: must be above 0 (0 would wait in the lock queue forever)".into(),
            ));
        }
        let lock_retry_budget =
            duration(&file.lock_retry_budget, Some(Duration::from_secs(600))).unwrap_or_default();
        let statement_timeout = duration(&file.statement_timeout, None).filter(|d| !d.is_zero());
        let watchdog = match &file.watchdog {
            Some(setting) => setting.value,
            None => Some(Duration::from_millis(80)),
        };
        let history_schema = file
            .history_schema
            .clone()
            .unwrap_or_else(|| "public".to_owned());
        let history_table = file
            .history_table
            .clone()
            .unwrap_or_else(|| "strata_migrations".to_owned());
        for (key, value) in [
            ("history_schema", &history_schema),
            ("history_table", &history_table),
        ] {
            if value.is_empty() || value.len() > 63 {
                return Err(invalid(format!("{key} must be 1 to 63 bytes long")));
            }
        }
        let lint = lint_settings(&file).map_err(invalid)?;
        let backup = file.backup.unwrap_or_default();
        let backup_dir = project_dir.join(
            file.backup_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".strata/backups")),
        );
        let backup_min_rows = match file.backup_min_rows {
            None => 10_000,
            Some(n) if n >= 0 => n,
            Some(n) => {
                return Err(invalid(format!(
                    "backup_min_rows: {n} is negative (use a row count, 0 or more)"
                )))
            }
        };
        let preflight_wait =
            duration(&file.preflight_wait, Some(Duration::from_secs(10))).unwrap_or_default();
        let max_replication_lag = duration(&file.max_replication_lag, None);
        let max_lock_hold = match &file.max_lock_hold {
            Some(setting) => setting.value,
            None => Some(DEFAULT_MAX_LOCK_HOLD),
        };
        if let Some(hold) = max_lock_hold {
            if !(MIN_LOCK_HOLD..=MAX_LOCK_HOLD).contains(&hold) {
                return Err(invalid(format!(
                    "max_lock_hold: `{}` is out of range (use 100ms to 1h, or \"off\" to disable the limit)",
                    file.max_lock_hold.as_ref().map(|s| s.text.as_str()).unwrap_or_default()
                )));
            }
        }
        Ok(Config {
            backup,
            backup_dir,
            backup_min_rows,
            pg_bindir: file.pg_bindir.as_ref().map(|d| project_dir.join(d)),
            schema_file: file.schema_file.as_ref().map(|f| project_dir.join(f)),
            preflight_wait,
            max_blocked_queries: file.max_blocked_queries.filter(|n| *n > 0),
            max_lock_hold,
            max_replication_lag,
            index_build_retries: file.index_build_retries.unwrap_or(2),
            safe_rewrites: file.safe_rewrites.unwrap_or(false),
            lint,
            project_dir,
            config_file,
            database,
            dir,
            dirs,
            env: env_name,
            placeholders,
            environments,
            format,
            numbering,
            history_schema,
            history_table,
            lock_wait,
            lock_timeout,
            lock_retry_budget,
            statement_timeout,
            watchdog,
            allow_out_of_order: flags.allow_out_of_order
                || file.allow_out_of_order.unwrap_or(false),
            ignore_missing: flags.ignore_missing || file.ignore_missing.unwrap_or(false),
        })
    }
}

/// The default `max_lock_hold`: an application request that waits a second
/// is already an outage for most users.
pub const DEFAULT_MAX_LOCK_HOLD: Duration = Duration::from_secs(1);
/// Below this the watchdog (one look every 20 ms, then a cancel) could not
/// tell a stall from an ordinary lock wait.
const MIN_LOCK_HOLD: Duration = Duration::from_millis(100);
/// Above this the limit protects nothing; `off` says so honestly.
const MAX_LOCK_HOLD: Duration = Duration::from_secs(3600);

fn lint_settings(file: &FileConfig) -> Result<LintSettings, String> {
    use crate::lint::{rules, Risk};
    let block_on = match file.block_on.as_deref() {
        None => Some(Risk::High),
        Some("never") => None,
        Some(text) => Some(
            Risk::parse(text)
                .ok_or_else(|| format!("block_on: `{text}` is not high, medium, low or never"))?,
        ),
    };
    let section = file.lint.clone().unwrap_or_default();
    let known = |id: &str| -> Result<(), String> {
        match rules::find(id) {
            Some(_) => Ok(()),
            None => Err(format!(
                "[lint]: unknown rule `{id}` (`strata rules` lists them)"
            )),
        }
    };
    for id in &section.disable {
        known(id)?;
    }
    let mut risk_overrides = Vec::new();
    for (id, level) in &section.risk {
        known(id)?;
        let risk = Risk::parse(level)
            .ok_or_else(|| format!("[lint.risk] {id}: `{level}` is not low, medium or high"))?;
        risk_overrides.push((id.clone(), risk));
    }
    Ok(LintSettings {
        pg_version: file.pg_version,
        block_on,
        disabled: section.disable,
        risk_overrides,
        external_runner: section.external_runner.unwrap_or(false),
    })
}

/// The directories a file config names: `dirs`, or `dir`, or `migrations`
/// in the working directory (as before `dirs` existed).
fn file_dirs(file: &FileConfig, project_dir: &Path, cwd: &Path) -> Result<Vec<PathBuf>, String> {
    match (&file.dir, &file.dirs) {
        (Some(_), Some(_)) => Err("set either `dir` or `dirs`, not both (`dirs` lists every directory, the first is where `strata new` writes)".into()),
        (None, Some(dirs)) if dirs.is_empty() => {
            Err("`dirs` is empty: list at least one migration directory".into())
        }
        (None, Some(dirs)) => {
            let joined: Vec<PathBuf> = dirs.iter().map(|d| project_dir.join(d)).collect();
            match joined.iter().enumerate().find(|(i, d)| joined[..*i].contains(d)) {
                Some((i, _)) => Err(format!(
                    "`dirs` lists {} twice",
                    dirs[i].display()
                )),
                None => Ok(joined),
            }
        }
        (Some(dir), None) => Ok(vec![project_dir.join(dir)]),
        (None, None) => Ok(vec![cwd.join("migrations")]),
    }
}

/// Reads the config file and applies the selected environment's table.
///
/// The file is deserialized once as written, so that an unknown key, at
/// the top level or inside any `[env.NAME]` table (selected or not), is an
/// error naming its line. The environment is then applied on the TOML
/// tables themselves, its values over the top level's (sub-tables such as
/// `[lint]` and `[placeholders]` merged key by key), and the result
/// deserialized again: every setting, including ones added later, can be
/// overridden per environment without a hand-kept list of fields.
fn read_file(
    path: &Path,
    env: Option<&str>,
    project_dir: &Path,
) -> Result<(FileConfig, Vec<EnvDirs>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
    };
    let invalid = |line: Option<usize>, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
    };
    // A value the file's types refuse (a bad duration, an unknown
    // `backup` value) is reported at its line, prefixed with its key.
    let toml_error = |e: toml::de::Error| {
        let line = line_of(e.span());
        let key = line
            .and_then(|l| text.lines().nth(l - 1))
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let message = match key {
            Some(key) if !e.message().contains(key) => format!("{key}: {}", e.message()),
            _ => e.message().to_owned(),
        };
        invalid(line, message)
    };
    let checked: FileConfig = toml::from_str(&text).map_err(toml_error)?;
    let envs = checked.env.clone().unwrap_or_default();
    if let Some((name, _)) = envs.iter().find(|(_, t)| t.env.is_some()) {
        return Err(invalid(
            None,
            format!("[env.{name}] cannot hold [env] tables of its own"),
        ));
    }
    let format_of = |file: &FileConfig| file.format.as_deref().and_then(Format::from_name);
    // Directories of each environment, for `status`: relative ones resolve
    // against the project directory (`migrations` when nothing is set).
    let mut environments = vec![EnvDirs {
        env: None,
        dirs: file_dirs(&checked, project_dir, project_dir).unwrap_or_default(),
        format: format_of(&checked),
    }];
    let mut table: toml::Table = toml::from_str(&text).map_err(toml_error)?;
    let env_tables = match table.remove("env") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    for (name, overrides) in &env_tables {
        let mut merged = table.clone();
        if let toml::Value::Table(o) = overrides {
            merge(&mut merged, o);
        }
        if let Ok(file) = toml::Value::Table(merged).try_into::<FileConfig>() {
            environments.push(EnvDirs {
                env: Some(name.clone()),
                dirs: file_dirs(&file, project_dir, project_dir).unwrap_or_default(),
                format: format_of(&file),
            });
        }
    }
    let Some(name) = env else {
        return Ok((checked, environments));
    };
    let Some(toml::Value::Table(overrides)) = env_tables.get(name) else {
        let defined: Vec<&str> = envs.keys().map(String::as_str).collect();
        return Err(invalid(
            None,
            if defined.is_empty() {
                format!("environment `{name}` (--env or STRATA_ENV) is not defined: the file has no [env.NAME] tables; add [env.{name}]")
            } else {
                format!(
                    "environment `{name}` (--env or STRATA_ENV) is not defined; defined: {}",
                    defined.join(", ")
                )
            },
        ));
    };
    merge(&mut table, overrides);
    let file = toml::Value::Table(table)
        .try_into::<FileConfig>()
        .map_err(|e| invalid(None, format!("[env.{name}]: {}", e.message())))?;
    Ok((file, environments))
}

/// Applies `over` onto `base`: tables merge key by key, anything else is
/// replaced. `dir` and `dirs` are one setting: either replaces both.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    if over.contains_key("dir") || over.contains_key("dirs") {
        base.remove("dir");
        base.remove("dirs");
    }
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Builds a libpq `key=value` string from the standard `PG*` variables, when
/// `PGHOST` or `PGDATABASE` says the user means it.
fn libpq_conninfo(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if env("PGHOST").is_none() && env("PGDATABASE").is_none() {
        return None;
    }
    let quote = |v: String| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let parts: Vec<String> = [
        ("PGHOST", "host"),
        ("PGPORT", "port"),
        ("PGUSER", "user"),
        ("PGPASSWORD", "password"),
        ("PGDATABASE", "dbname"),
        ("PGSSLMODE", "sslmode"),
    ]
    .iter()
    .filter_map(|(var, key)| env(var).map(|v| format!("{key}={}", quote(v))))
    .collect();
    Some(parts.join(" "))
}

/// The longest duration a setting may have: PostgreSQL's limit for
/// `lock_timeout`, `statement_timeout` and the like (2147483647 ms, about
/// 24.8 days). Timeouts go to the server, which would reject more when the
/// migration is already running; the others share the limit, which keeps
/// every deadline computed from them far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_millis(2_147_483_647);

/// [`parse_duration`], refusing values above [`MAX_DURATION`].
fn parse_duration_in_range(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > MAX_DURATION {
        return Err(format!(
            "`{}` is above PostgreSQL's limit for timeouts, 2147483647ms (about 24.8 days)",
            text.trim()
        ));
    }
    Ok(d)
}

/// Parses a duration with humantime (`250ms`, `60s`, `5m`, `1h 30m`,
/// `1.5s`, `2d`), or a plain number of seconds as Strata always accepted.
/// Values too large for a `Duration` are an error, never a panic.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("`{text}` is out of range"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}; write e.g. 60s, 500ms, 5m, 1h 30m)"))
}

/// The commented `strata.toml` that `strata init` writes.
pub const TEMPLATE: &str = r#"# strata.toml: configuration for Strata (https://example.invalid/strata).
# Precedence: command-line flags > environment variables > this file.

# The database to migrate. Without one (here, in --database-url,
# STRATA_DATABASE_URL, DATABASE_URL or the PG* variables) Strata uses its
# managed local cluster in .strata/pg. Prefer an environment variable for
# production URLs so the password stays out of version control.
# database_url = "postgres://app@localhost:5432/app"

# The migrations directory, relative to this file.
dir = "migrations"

# The layout: auto (detect), native (golang-migrate), goose, diesel, sqlx, flyway.
format = "auto"

# How `strata new` numbers migrations: auto (continue the directory's scheme;
# timestamps YYYYMMDDHHMMSS in an empty one), timestamp, or sequential
# (0001, 0002, …).
# numbering = "auto"

# Where the history table and the strata_events audit log live.
history_schema = "public"
history_table = "strata_migrations"

# How long to wait for another strata run holding the migration lock.
lock_wait = "60s"

# Every statement that takes a lock runs under this lock_timeout, so Strata
# never waits in a table's lock queue in front of application queries for
# longer than this. On a lock timeout the statement's transaction is retried
# with exponential backoff and jitter, for at most lock_retry_budget.
lock_timeout = "30ms"
lock_retry_budget = "10m"

# statement_timeout for DDL (CONCURRENTLY statements are exempt). Off by default.
# statement_timeout = "15m"

# The lock-queue watchdog: if a statement waits for a lock while application
# queries queue behind it for longer than this, Strata cancels and retries it.
# "off" disables it.
watchdog = "80ms"

# Allow applying a pending migration older than the newest applied one.
allow_out_of_order = false

# Ignore applied migrations whose files were deleted.
ignore_missing = false

# Safe rewrites: run CREATE INDEX as CREATE INDEX CONCURRENTLY, ADD FOREIGN KEY
# and ADD CHECK as NOT VALID + VALIDATE, SET NOT NULL via a validated CHECK,
# ADD UNIQUE / PRIMARY KEY via a concurrently built index, DROP INDEX as
# DROP INDEX CONCURRENTLY. Same end state, no blocking. A migration with a
# rewrite runs outside a transaction, statement by statement (resumable).
safe_rewrites = true

# Risk analysis runs before `strata up` and `strata status`. Unacknowledged
# findings at or above this level block `up`: "high", "medium" or "never".
# Acknowledge one in the file: -- strata:allow RULE reason: why it is safe
block_on = "high"

# PostgreSQL major version to assume when not connected (default: the newest).
# pg_version = 15

# Backups with pg_dump -Fc before a migration runs: "auto" (before migrations
# that lose data: DROP TABLE/COLUMN/SCHEMA, TRUNCATE, UPDATE/DELETE without
# WHERE, a type change), "always" or "never". Files are mode 0600. Every
# backup is checked with pg_restore --list; a failed or incomplete backup
# stops the migration before it runs.
backup = "auto"
backup_dir = ".strata/backups"
# A DELETE ... WHERE (or an UPDATE setting a column to a constant) that the
# planner expects to touch more rows than this, or 10 % of the table, is
# backed up too.
backup_min_rows = 10000
# Where pg_dump/pg_restore live (default: the newest PostgreSQL found, then PATH).
# Use a pg_dump at least as new as the server.
# pg_bindir = "/usr/lib/postgresql/16/bin"

# A schema file that `strata up` and `strata down` keep up to date (as
# `strata dump` writes it), for fresh installs and review; `strata verify`
# checks it against the migrations.
# schema_file = "schema.sql"

# Pre-flight: before each migration, wait at most this long for transactions
# that hold locks on its tables, then warn and go on (lock_timeout keeps
# Strata from queueing behind them).
preflight_wait = "10s"

# A CREATE INDEX CONCURRENTLY that fails leaves an INVALID index: Strata drops
# it (concurrently) and, after a deadlock or serialization failure, builds it
# again up to this many times within the run. Reruns always drop a leftover
# invalid index before building.
index_build_retries = 2

# Live limits while a migration runs (off by default): cancel the running
# statement and retry it later when more application queries than this are
# blocked behind Strata, and pause between statements while a replica lags.
# max_blocked_queries = 20
# max_replication_lag = "30s"

# No stall: the longest an application query may wait behind a migration
# statement. `up` refuses a statement whose estimated lock hold on an existing
# table (its size times the measured rewrite rate) is longer, and the watchdog
# cancels a running statement that blocks application queries for longer;
# that statement is not retried (it would stall again), its transaction is
# rolled back and the message gives the safe alternative. "off" disables both.
max_lock_hold = "1s"

[lint]
# Rules to switch off (`strata rules` lists them).
disable = []
# The SQL is applied by another tool: also require lock_timeout/statement_timeout.
external_runner = false

[lint.risk]
# Change a rule's risk, e.g.:
# prefer-text = "medium"

# ${name} placeholders, replaced in files that say `-- strata:placeholders`
# (not inside $$ bodies or comments; checksums use the file as written).
# [placeholders]
# app_role = "app"

# Environments: `--env dev` (or STRATA_ENV=dev) applies [env.dev] over the
# settings above; any setting can be overridden. Extra directories merge
# into one version order.
# [env.dev]
# database_url = "postgres://app@localhost:5432/app_dev"
# dirs = ["migrations", "migrations/development"]
# block_on = "never"
# [env.dev.placeholders]
# app_role = "app_dev"
"#;

/// Writes `strata.toml` and the migrations directory into `dir`. An
/// existing config file is never overwritten.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let config = dir.join("strata.toml");
    let migrations = dir.join("migrations");
    let mut created = Vec::new();
    let io = |path: &Path, e: std::io::Error| ConfigError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if config.exists() {
        return Err(ConfigError::Invalid {
            path: config,
            line: None,
            message:
                "already exists; strata init never overwrites it (delete it first to start over)"
                    .into(),
        });
    }
    std::fs::write(&config, TEMPLATE).map_err(|e| io(&config, e))?;
    created.push(config);
    if !migrations.exists() {
        std::fs::create_dir_all(&migrations).map_err(|e| io(&migrations, e))?;
        created.push(migrations);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        flags: Flags,
        vars: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = file {
            std::fs::write(dir.path().join("strata.toml"), text).unwrap();
        }
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve_with(&flags, &|k| vars.get(k).cloned(), dir.path())
    }

    #[test]
    fn database_url_precedence() {
        let file = Some("database_url = \"postgres://file/db\"\n");
        let flag = Flags {
            database_url: Some("postgres://flag/db".into()),
            ..Flags::default()
        };
        let all = [
            ("STRATA_DATABASE_URL", "postgres://strata/db"),
            ("DATABASE_URL", "postgres://env/db"),
            ("PGHOST", "pg"),
        ];
        assert_eq!(
            resolve(flag, &all, file).unwrap().database.unwrap().1,
            DatabaseSource::Flag
        );
        let c = resolve(Flags::default(), &all, file).unwrap();
        assert_eq!(c.database.unwrap().0, "postgres://strata/db");
        let c = resolve(Flags::default(), &all[1..], file).unwrap();
        assert_eq!(c.database.unwrap().1, DatabaseSource::Env("DATABASE_URL"));
        let c = resolve(Flags::default(), &all[2..], file).unwrap();
        assert!(matches!(
            c.database.unwrap().1,
            DatabaseSource::ConfigFile(_)
        ));
        let c = resolve(
            Flags::default(),
            &[("PGHOST", "pg"), ("PGPASSWORD", "it's")],
            None,
        )
        .unwrap();
        assert_eq!(c.database.unwrap().0, "host='pg' password='it\\'s'");
        assert!(resolve(Flags::default(), &[("PGUSER", "u")], None)
            .unwrap()
            .database
            .is_none());
    }

    #[test]
    fn bad_config_says_where() {
        let err = resolve(
            Flags::default(),
            &[],
            Some("dir = \"m\"\nlock_wiat = \"5s\"\n"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("strata.toml:2") && text.contains("lock_wiat"),
            "{text}"
        );
        let err = resolve(Flags::default(), &[], Some("format = \"liquibase\"\n")).unwrap_err();
        assert!(err.to_string().contains("unknown format `liquibase`"));
    }

    #[test]
    fn env_tables_override_the_top_level() {
        let file = Some(
            "database_url = \"postgres://prod/db\"\nlock_timeout = \"50ms\"\n\n\
             [placeholders]\nrole = \"app\"\nschema = \"public\"\n\n\
             [lint]\ndisable = [\"prefer-text\"]\n\n\
             [env.dev]\ndatabase_url = \"postgres://dev/db\"\nbackup = \"never\"\n\
             dirs = [\"migrations\", \"migrations/development\"]\n\n\
             [env.dev.placeholders]\nrole = \"app_dev\"\n\n\
             [env.ci]\ndir = \"other\"\n",
        );
        let dev = Flags {
            env: Some("dev".into()),
            ..Flags::default()
        };
        let c = resolve(dev.clone(), &[], file).unwrap();
        assert_eq!(c.database.unwrap().0, "postgres://dev/db");
        assert_eq!(c.backup, BackupPolicy::Never);
        // Not overridden: the top level's.
        assert_eq!(c.lock_timeout, Duration::from_millis(50));
        assert_eq!(c.lint.disabled, ["prefer-text"]);
        assert_eq!(c.dirs.len(), 2);
        assert!(c.dirs[1].ends_with("migrations/development") && c.dir == c.dirs[0]);
        assert_eq!(c.placeholders["role"], "app_dev");
        assert_eq!(c.placeholders["schema"], "public");
        assert_eq!(c.env.as_deref(), Some("dev"));
        let names: Vec<Option<&str>> = c.environments.iter().map(|e| e.env.as_deref()).collect();
        assert_eq!(names, [None, Some("ci"), Some("dev")]);
        assert!(c.environments[1].dirs[0].ends_with("other"));
        // STRATA_ENV selects too; the flag wins; environment variables
        // still win over the file's database_url.
        let c = resolve(Flags::default(), &[("STRATA_ENV", "ci")], file).unwrap();
        assert!(c.dir.ends_with("other") && c.dirs.len() == 1);
        let c = resolve(dev.clone(), &[("STRATA_ENV", "ci")], file).unwrap();
        assert_eq!(c.env.as_deref(), Some("dev"));
        let c = resolve(dev, &[("DATABASE_URL", "postgres://env/db")], file).unwrap();
        assert_eq!(c.database.unwrap().0, "postgres://env/db");
        let c = resolve(Flags::default(), &[], file).unwrap();
        assert_eq!(c.database.unwrap().0, "postgres://prod/db");
        assert_eq!(c.placeholders["role"], "app");
    }

    #[test]
    fn env_mistakes_are_config_errors() {
        let err =
            |flags: Flags, file: &str| resolve(flags, &[], Some(file)).unwrap_err().to_string();
        let prod = Flags {
            env: Some("prod".into()),
            ..Flags::default()
        };
        let text = err(prod.clone(), "[env.dev]\n[env.ci]\n");
        assert!(
            text.contains("`prod`") && text.contains("defined: ci, dev"),
            "{text}"
        );
        let text = err(prod.clone(), "dir = \"m\"\n");
        assert!(text.contains("no [env.NAME] tables"), "{text}");
        let text = resolve(prod, &[], None).unwrap_err().to_string();
        assert!(text.contains("no config file"), "{text}");
        // Unknown keys inside an env table name their line, selected or not.
        let text = err(
            Flags::default(),
            "[env.dev]\nbackup = \"never\"\nlok_wait = \"1s\"\n",
        );
        assert!(
            text.contains("strata.toml:3") && text.contains("lok_wait"),
            "{text}"
        );
        let text = err(Flags::default(), "dirs = [\"b\", \"b\"]\n");
        assert!(text.contains("lists b twice"), "{text}");
        let text = err(Flags::default(), "dir = \"a\"\ndirs = [\"b\"]\n");
        assert!(text.contains("either `dir` or `dirs`"), "{text}");
        let text = err(Flags::default(), "[placeholders]\nx = \"a\\nb\"\n");
        assert!(text.contains("placeholder `x`"), "{text}");
        let text = err(Flags::default(), "[env.a.env.b]\n");
        assert!(text.contains("cannot hold [env]"), "{text}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("soon").is_err());
        // Too large for a Duration: an error, not a panic.
        assert!(parse_duration("99999999999999999999999999h").is_err());
        assert!(parse_duration(&"9".repeat(400)).is_err());
        assert_eq!(
            parse_duration_in_range("2147483647ms").unwrap(),
            MAX_DURATION
        );
        assert!(parse_duration_in_range("600h")
            .unwrap_err()
            .contains("2147483647ms"));
        // humantime's units and forms; days are accepted now, within the
        // limit.
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("90min").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration(" 0.25 ").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_duration_in_range("24d").is_ok());
        assert!(parse_duration_in_range("25d").is_err());
        assert!(parse_duration("-5s").is_err() && parse_duration("-5").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn bad_values_name_their_line_key_and_the_accepted_values() {
        let err = |file: &str| {
            resolve(Flags::default(), &[], Some(file))
                .unwrap_err()
                .to_string()
        };
        for (file, says) in [
            (
                "dir = \"m\"\nlock_wait = \"5 parsecs\"\n",
                &[
                    "strata.toml:2",
                    "lock_wait: `5 parsecs` is not a duration",
                    "60s",
                ][..],
            ),
            (
                "\nstatement_timeout = \"30d\"\n",
                &["strata.toml:2", "statement_timeout:", "2147483647ms"],
            ),
            (
                "backup = \"sometimes\"\n",
                &[
                    "strata.toml:1",
                    "backup:",
                    "`sometimes`",
                    "`auto`, `always`, `never`",
                ],
            ),
            (
                "numbering = \"random\"\n",
                &[
                    "strata.toml:1",
                    "numbering:",
                    "`auto`, `timestamp`, `sequential`",
                ],
            ),
            (
                "[env.dev]\nbackup = \"Always\"\n",
                &["strata.toml:2", "backup:", "`always`"],
            ),
            (
                "lock_wait = \"off\"\n",
                &["lock_wait: `off` is not accepted"],
            ),
        ] {
            let text = err(file);
            for s in says {
                assert!(text.contains(s), "{file:?}: {text}");
            }
        }
    }

    #[test]
    fn accepted_spellings_still_work() {
        let c = resolve(
            Flags::default(),
            &[],
            Some(
                "backup = \"always\"\nnumbering = \"sequential\"\nwatchdog = \"off\"\n\
                 lock_wait = \"5\"\nlock_timeout = \"50ms\"\nlock_retry_budget = \"2m\"\n\
                 preflight_wait = \"1h\"\nmax_replication_lag = \"30s\"\n",
            ),
        )
        .unwrap();
        assert_eq!(c.backup, BackupPolicy::Always);
        assert_eq!(c.numbering, Numbering::Sequential);
        assert_eq!(c.watchdog, None);
        assert_eq!(c.lock_wait, Duration::from_secs(5));
        assert_eq!(c.lock_timeout, Duration::from_millis(50));
        assert_eq!(c.lock_retry_budget, Duration::from_secs(120));
        assert_eq!(c.preflight_wait, Duration::from_secs(3600));
        assert_eq!(c.max_replication_lag, Some(Duration::from_secs(30)));
        for (text, policy) in [("auto", BackupPolicy::Auto), ("never", BackupPolicy::Never)] {
            let c = resolve(
                Flags::default(),
                &[],
                Some(&format!("backup = \"{text}\"\n")),
            );
            assert_eq!(c.unwrap().backup, policy);
        }
        // The template `strata init` writes reads back.
        assert!(resolve(Flags::default(), &[], Some(TEMPLATE)).is_ok());
    }

    #[test]
    fn max_lock_hold_defaults_to_a_second_and_is_checked_when_read() {
        let hold =
            |file: Option<&str>| resolve(Flags::default(), &[], file).map(|c| c.max_lock_hold);
        assert_eq!(hold(None).unwrap(), Some(Duration::from_secs(1)));
        assert_eq!(hold(Some("max_lock_hold = \"off\"\n")).unwrap(), None);
        assert_eq!(
            hold(Some("max_lock_hold = \"250ms\"\n")).unwrap(),
            Some(Duration::from_millis(250))
        );
        for (bad, says) in [
            ("\"10ms\"", "max_lock_hold: `10ms` is out of range"),
            ("\"2h\"", "max_lock_hold: `2h` is out of range"),
            ("\"0\"", "max_lock_hold: `0` is out of range"),
            ("\"soon\"", "max_lock_hold: `soon` is not a duration"),
            ("5", "strata.toml:1"),
        ] {
            let err = hold(Some(&format!("max_lock_hold = {bad}\n"))).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }
}
