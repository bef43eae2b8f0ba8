//! `strata test`: every migration's up, down and up again on a throwaway
//! cluster, with the catalog compared after each step.
//!
//! Users get hurt by down scripts nobody ran: one that fails (it drops a
//! function other objects still use), one that leaves something behind (an
//! index, a column of another type), a migration that has none. Reading the
//! files cannot tell; running them can. For each migration in order:
//! snapshot → up → snapshot → down → compare with the snapshot before →
//! up again → compare with the snapshot after.
//!
//! How it is run, and why:
//! - One [`Throwaway`] cluster for the whole run (initdb costs a second or
//!   two; a migration's round trip costs milliseconds). Work happens in one
//!   database; the history before `--from` is replayed there once.
//! - Each step is the engine's own operation (`engine::up`, `engine::down`:
//!   the code `strata up`/`strata down` run, with their transaction modes,
//!   resume records and `file:line` errors), on a [`Project`] holding just
//!   the migration under test, with `ignore_missing` so the rows of the
//!   migrations before it count as applied elsewhere. The engine lints the
//!   project's whole history before each run; with the full history that
//!   would make the test quadratic in the number of migrations.
//! - Before the down runs, the state after the up is kept as a template
//!   database (`CREATE DATABASE … TEMPLATE`, a file copy). When the down or
//!   the second up fails, or the second up does not give the same catalog,
//!   the kept copy is renamed into place, so the next migration starts from
//!   the state the up gave, exactly as in production. When everything
//!   matches, the copy is dropped.
//! - Risk analysis does not block, no backups are taken and the watchdog
//!   is off: nobody else uses the throwaway cluster, and the test is about
//!   what the scripts do, not how safely they lock.
//! - A plan (`.plan.toml`, `engine::phases`) is tested the same way with
//!   its own up and down: every phase in one go (`--through-gates`: the
//!   app deploys the gates wait for do not exist here), then `strata
//!   rollback V` of all its phases, each operation's defined reverse. A
//!   phase whose data is gone after it ran (a dropped column, the old
//!   values of a type change) has no reverse but the backup taken before
//!   it; the rollback refuses before anything runs, and the plan is
//!   reported irreversible with that reason, as a SQL migration without a
//!   down script is.
//!
//! Results are values ([`RoundTrip`], one [`Checked`] per migration); the
//! command line renders them.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Instant;

use super::catalog::{Difference, OwnTables, Snapshot};
use super::VerifyError;
use crate::config::BackupPolicy;
use crate::db::{quote_ident, Connection, Target};
use crate::engine::{self, ApplyOptions, DownOptions, DownTarget, EngineError, Project};
use crate::localpg::Throwaway;
use crate::source::{Migration, MigrationKind, Version};

/// What to test.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The first migration to test (the ones before are replayed).
    pub from: Option<String>,
    /// The last migration to test.
    pub to: Option<String>,
    /// Also apply each up twice and report those that fail the second time.
    pub idempotent: bool,
}

/// The result of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundTrip {
    /// The server's major version.
    pub server_major: u32,
    /// Migrations replayed before the first tested one.
    pub replayed: usize,
    /// How long replaying them took.
    pub replay_ms: u64,
    /// The tested migrations, in order.
    pub migrations: Vec<Checked>,
    /// Migrations of the range left untested because an up failed.
    pub untested: usize,
    /// Repeatable migrations of the range: not tested (they have no down,
    /// and run after every versioned one), nor applied.
    pub repeatables: usize,
    /// The whole run, cluster start included.
    pub total_ms: u64,
    /// Where the time of the checks went.
    pub phases: Phases,
}

impl RoundTrip {
    /// True when every tested migration is ok (and nothing was left out).
    pub fn all_ok(&self) -> bool {
        self.untested == 0 && self.migrations.iter().all(Checked::is_ok)
    }
}

/// Where the time of the checks went, in milliseconds, summed over the
/// tested migrations.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Phases {
    /// The engine's up and down runs (connections, lock, history, the SQL).
    pub engine_ms: u64,
    /// Reading catalog snapshots.
    pub snapshot_ms: u64,
    /// Copying, dropping and renaming databases.
    pub copy_ms: u64,
}

/// Accumulates [`Phases`] while the checks run.
#[derive(Default)]
struct Clock {
    engine: Cell<u64>,
    snapshot: Cell<u64>,
    copy: Cell<u64>,
}

impl Clock {
    fn add(cell: &Cell<u64>, since: Instant) {
        cell.set(cell.get() + since.elapsed().as_millis() as u64);
    }

    fn phases(&self) -> Phases {
        Phases {
            engine_ms: self.engine.get(),
            snapshot_ms: self.snapshot.get(),
            copy_ms: self.copy.get(),
        }
    }
}

/// One migration's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    /// `version_name`.
    pub label: String,
    /// The version, as written in the file name.
    pub version: String,
    /// What the round trip found.
    pub result: Verdict,
    /// With `--idempotent`: the error of the second up, `None` when it
    /// passed (or was not asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_idempotent: Option<StepError>,
    /// How long its checks took.
    pub ms: u64,
}

impl Checked {
    /// Ok, and idempotent when that was asked.
    pub fn is_ok(&self) -> bool {
        matches!(self.result, Verdict::Ok) && self.not_idempotent.is_none()
    }
}

/// What the round trip found for one migration.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Verdict {
    /// Down restored the catalog before the up, and up again gave the same
    /// catalog as the first up.
    Ok,
    /// No down script, or one without statements; for a plan, a phase
    /// whose reverse needs the backup taken before it.
    Irreversible {
        /// Why.
        reason: String,
    },
    /// The down script failed. The next migration starts from the state
    /// after the up (a copy kept before the down ran).
    BrokenDown {
        /// Where and why.
        error: StepError,
    },
    /// The down ran, but did not undo the up.
    NotInverse {
        /// Differences between the catalog before the up and after the
        /// down.
        after_down: Vec<Difference>,
        /// The up failed when run again after the down.
        #[serde(skip_serializing_if = "Option::is_none")]
        up_again_failed: Option<StepError>,
        /// Differences between the catalog after the first up and after
        /// the second.
        after_up_again: Vec<Difference>,
    },
    /// The up itself failed: the migrations after it are not tested.
    UpFailed {
        /// Where and why.
        error: StepError,
    },
}

/// Why a script failed: the failing statement's place and the server's
/// message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepError {
    /// The file.
    pub file: Option<PathBuf>,
    /// The 1-based line of the failing statement in the file.
    pub line: Option<usize>,
    /// The server's (or parser's) message, first line.
    pub message: String,
    /// The server's DETAIL and HINT lines (`detail: view answers depends
    /// on function answer()`): which objects a failed DROP still has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl StepError {
    /// From a rendered message: its first line, and the rest as details.
    fn from_message(file: Option<PathBuf>, line: Option<usize>, text: &str) -> StepError {
        let mut lines = text.lines();
        StepError {
            file,
            line,
            message: lines.next().unwrap_or_default().to_owned(),
            details: lines
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// The failure of a migration script, as a result; any other error (the
/// cluster, a lost connection) stops the run.
fn step_error(e: EngineError) -> Result<StepError, VerifyError> {
    match e {
        EngineError::MigrationFailed {
            path, line, error, ..
        } => Ok(StepError::from_message(
            Some(path),
            Some(line),
            &error.to_string(),
        )),
        EngineError::Sql {
            path, line, error, ..
        } => Ok(StepError::from_message(
            Some(path),
            Some(line),
            &error.to_string(),
        )),
        // The engine's own message about a stopped migration ends with how
        // to resume it with `strata up`, which does not apply here.
        e @ (EngineError::Failed { .. }
        | EngineError::PartlyReverted { .. }
        | EngineError::Undecided { .. }) => {
            let text = e.to_string();
            Ok(StepError::from_message(
                None,
                None,
                text.lines().next().unwrap_or_default(),
            ))
        }
        other => Err(other.into()),
    }
}

/// Why a down did not undo the up.
enum Undone {
    /// It failed.
    Failed(StepError),
    /// A plan whose rollback needs a backup; the reason.
    Irreversible(String),
}

/// The database names on the throwaway cluster.
const WORK: &str = "strata_test";
const KEPT: &str = "strata_test_kept";
const TWICE: &str = "strata_test_twice";

/// Runs the round trip of the selected migrations; `on_checked` sees each
/// result as soon as it is known (a long history takes minutes).
pub async fn roundtrip(
    project: &Project,
    options: &Options,
    on_checked: &mut dyn FnMut(&Checked),
) -> Result<RoundTrip, VerifyError> {
    let started = Instant::now();
    let (first, last) = select(project, options)?;
    let config = throwaway_config(project);
    let cluster = Throwaway::start()?;
    let admin_target = Target::parse(&cluster.conninfo("postgres"))?;
    let mut admin = Admin {
        conn: admin_target.connect().await?,
        major: 0,
    };
    admin.major = admin.server_major().await?;
    let server_major = admin.major;
    admin.create(WORK, None).await?;
    let work = admin_target.with_dbname(WORK);

    let replay_started = Instant::now();
    let replayed = project.migrations[..first]
        .iter()
        .filter(|m| tested_kind(m.kind))
        .count();
    if let Some(before) = project.migrations[..first]
        .iter()
        .rfind(|m| tested_kind(m.kind))
    {
        let full = Project {
            config: config.clone(),
            ..project.clone()
        };
        let options = ApplyOptions {
            target: Some(before.version.to_string()),
            dry_run: false,
            gates: engine::Gates {
                through: true,
                pass: Vec::new(),
            },
        };
        engine::up(&full, &work, &options, &mut |_| {}).await?;
    }
    let replay_ms = replay_started.elapsed().as_millis() as u64;

    let own = OwnTables::new(&config.history_schema, &config.history_table);
    let mut current = snapshot(&work, &own).await?;
    let mut out = RoundTrip {
        server_major,
        replayed,
        replay_ms,
        migrations: Vec::new(),
        untested: 0,
        repeatables: project.migrations[first..=last]
            .iter()
            .filter(|m| m.kind == MigrationKind::Repeatable)
            .count(),
        total_ms: 0,
        phases: Phases::default(),
    };
    let clock = Clock::default();
    let tested: Vec<&Migration> = project.migrations[first..=last]
        .iter()
        .filter(|m| tested_kind(m.kind))
        .collect();
    for (n, m) in tested.iter().enumerate() {
        let one = Project {
            config: config.clone(),
            format: project.format,
            migrations: vec![(*m).clone()],
            warnings: Vec::new(),
            foreign: Vec::new(),
        };
        let step = Step {
            admin: &admin,
            admin_target: &admin_target,
            work: &work,
            project: &one,
            migration: m,
            clock: &clock,
            own: &own,
        };
        let checked_started = Instant::now();
        let (result, not_idempotent, next) = step.check(&current, options.idempotent).await?;
        let checked = Checked {
            label: m.label(),
            version: m.version.to_string(),
            result,
            not_idempotent,
            ms: checked_started.elapsed().as_millis() as u64,
        };
        on_checked(&checked);
        let stop = matches!(checked.result, Verdict::UpFailed { .. });
        out.migrations.push(checked);
        match next {
            Some(next) => current = next,
            None if stop => {
                out.untested = tested.len() - n - 1;
                break;
            }
            None => {}
        }
    }
    drop(admin);
    out.phases = clock.phases();
    out.total_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// Versioned migrations and plans are tested; repeatable ones are not
/// (they have no down, and run after every versioned one).
fn tested_kind(kind: MigrationKind) -> bool {
    matches!(kind, MigrationKind::Versioned | MigrationKind::Plan)
}

/// The indexes of the first and last migration to test.
fn select(project: &Project, options: &Options) -> Result<(usize, usize), VerifyError> {
    let find = |flag: &str, text: &str| -> Result<usize, VerifyError> {
        let version: Option<Version> = project.format.parse_version(text);
        version
            .and_then(|v| {
                project
                    .migrations
                    .iter()
                    .position(|m| tested_kind(m.kind) && m.version == v)
            })
            .ok_or_else(|| VerifyError::Usage {
                message: format!("{flag} {text}: no migration has this version"),
                help: "`strata status` lists the versions".into(),
            })
    };
    let first = match &options.from {
        Some(v) => find("--from", v)?,
        None => 0,
    };
    let last = match &options.to {
        Some(v) => find("--to", v)?,
        None => project.migrations.len().saturating_sub(1),
    };
    let any = project
        .migrations
        .get(first..=last)
        .is_some_and(|ms| ms.iter().any(|m| tested_kind(m.kind)));
    if !any {
        return Err(VerifyError::Usage {
            message: match (&options.from, &options.to) {
                (Some(f), Some(t)) => format!("--from {f} comes after --to {t}: nothing to test"),
                _ => "the migration directory has no versioned migrations to test".into(),
            },
            help: "check --dir and the versions given (`strata status` lists them)".into(),
        });
    }
    Ok((first, last))
}

/// The project's configuration, for a cluster nobody else uses.
fn throwaway_config(project: &Project) -> crate::config::Config {
    let mut config = project.config.clone();
    config.lint.block_on = None;
    config.backup = BackupPolicy::Never;
    config.watchdog = None;
    config.max_blocked_queries = None;
    config.max_replication_lag = None;
    config.max_lock_hold = None;
    config.ignore_missing = true;
    config.allow_out_of_order = false;
    config
}

/// The catalog of `target`, without Strata's own tables (the configured
/// history table included).
async fn snapshot(target: &Target, own: &OwnTables) -> Result<Snapshot, VerifyError> {
    let conn = target.connect().await?;
    Snapshot::take_with(&conn, own).await
}

/// The connection to the cluster's `postgres` database, which creates,
/// copies and renames the others.
struct Admin {
    conn: Connection,
    major: u32,
}

impl Admin {
    async fn server_major(&self) -> Result<u32, VerifyError> {
        let row = self
            .conn
            .query_opt(
                "SELECT current_setting('server_version_num')::int / 10000",
                &[],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get::<_, i32>(0).max(0) as u32))
    }

    /// Creates `name`, empty or as a copy of `template` (which must have no
    /// connection open: the server refuses to copy a database in use).
    async fn create(&self, name: &str, template: Option<&str>) -> Result<(), VerifyError> {
        let sql = match template {
            // A file copy: WAL_LOG, the default from PostgreSQL 15 on,
            // writes every block of the copy to the WAL and takes about
            // twice as long for a schema of a hundred tables.
            Some(t) if self.major >= 15 => format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                quote_ident(name),
                quote_ident(t)
            ),
            Some(t) => format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(name),
                quote_ident(t)
            ),
            None => format!("CREATE DATABASE {}", quote_ident(name)),
        };
        Ok(self.conn.batch(&sql).await?)
    }

    async fn drop(&self, name: &str) -> Result<(), VerifyError> {
        Ok(self
            .conn
            .batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await?)
    }

    /// Puts the kept copy in place of the work database.
    async fn restore(&self) -> Result<(), VerifyError> {
        self.drop(WORK).await?;
        Ok(self
            .conn
            .batch(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(KEPT),
                quote_ident(WORK)
            ))
            .await?)
    }
}

/// One migration's checks.
struct Step<'a> {
    admin: &'a Admin,
    admin_target: &'a Target,
    work: &'a Target,
    project: &'a Project,
    migration: &'a Migration,
    clock: &'a Clock,
    own: &'a OwnTables,
}

impl Step<'_> {
    async fn up(&self, target: &Target) -> Result<Result<(), StepError>, VerifyError> {
        let options = ApplyOptions {
            target: Some(self.migration.version.to_string()),
            dry_run: false,
            gates: engine::Gates {
                through: true,
                pass: Vec::new(),
            },
        };
        let started = Instant::now();
        let result = engine::up(self.project, target, &options, &mut |_| {}).await;
        Clock::add(&self.clock.engine, started);
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => step_error(e).map(Err),
        }
    }

    /// Reverts the migration: its down script, or for a plan the
    /// rollback of all its phases. `Ok(Err(Undone::Irreversible))` when a
    /// plan's rollback refused before running anything because a phase's
    /// data is gone.
    async fn down(&self) -> Result<Result<(), Undone>, VerifyError> {
        let started = Instant::now();
        let result = if self.migration.kind == MigrationKind::Plan {
            let options = engine::RollbackOptions {
                version: self.migration.version.to_string(),
                phase: None,
                from_backup: None,
            };
            engine::rollback(self.project, self.work, &options, &mut |_| {}).await
        } else {
            let options = DownOptions {
                target: DownTarget::Steps(1),
                dry_run: false,
            };
            engine::down(self.project, self.work, &options, &mut |_| {}).await
        };
        Clock::add(&self.clock.engine, started);
        match result {
            Ok(_) => Ok(Ok(())),
            Err(EngineError::Irreversible { reason, .. })
                if self.migration.kind == MigrationKind::Plan =>
            {
                // The reason names the plan file by its full path; show it
                // relative to the project, as the other results do.
                let path = &self.migration.up.path;
                let reason = match path.strip_prefix(&self.project.config.project_dir) {
                    Ok(rel) => reason.replace(
                        &format!("{}:", path.display()),
                        &format!("{}:", rel.display()),
                    ),
                    Err(_) => reason,
                };
                Ok(Err(Undone::Irreversible(format!(
                    "its rollback needs the backup taken before the phase: {reason}"
                ))))
            }
            Err(e) => step_error(e).map(|e| Err(Undone::Failed(e))),
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, VerifyError> {
        let started = Instant::now();
        let snapshot = snapshot(self.work, self.own).await;
        Clock::add(&self.clock.snapshot, started);
        snapshot
    }

    /// Copies, drops or renames databases, timed.
    async fn copy<F: std::future::Future<Output = Result<(), VerifyError>>>(
        &self,
        work: F,
    ) -> Result<(), VerifyError> {
        let started = Instant::now();
        let result = work.await;
        Clock::add(&self.clock.copy, started);
        result
    }

    /// The verdict, the second-up error with `idempotent`, and the snapshot
    /// of the state the next migration starts from (`None` after a failed
    /// up: nothing after it can be tested).
    async fn check(
        &self,
        before: &Snapshot,
        idempotent: bool,
    ) -> Result<(Verdict, Option<StepError>, Option<Snapshot>), VerifyError> {
        if let Err(error) = self.up(self.work).await? {
            return Ok((Verdict::UpFailed { error }, None, None));
        }
        let after = self.snapshot().await?;
        let not_idempotent = if idempotent {
            self.up_twice().await?
        } else {
            None
        };
        let irreversible = match &self.migration.down {
            // Reversed by its operations (see `down`), not by a script.
            _ if self.migration.kind == MigrationKind::Plan => None,
            None => Some("no down script"),
            // A file that cannot be read back fails where the down runs.
            Some(script) if script.load().is_ok_and(|sql| sql.is_blank()) => {
                Some("the down script has no statements")
            }
            Some(_) => None,
        };
        if let Some(reason) = irreversible {
            let verdict = Verdict::Irreversible {
                reason: reason.into(),
            };
            return Ok((verdict, not_idempotent, Some(after)));
        }
        self.copy(self.admin.create(KEPT, Some(WORK))).await?;
        match self.down().await? {
            Ok(()) => {}
            Err(Undone::Failed(error)) => {
                self.copy(self.admin.restore()).await?;
                return Ok((Verdict::BrokenDown { error }, not_idempotent, Some(after)));
            }
            Err(Undone::Irreversible(reason)) => {
                // Refused before anything ran; the copy goes back anyway,
                // so the next migration surely starts from the up's state.
                self.copy(self.admin.restore()).await?;
                let verdict = Verdict::Irreversible { reason };
                return Ok((verdict, not_idempotent, Some(after)));
            }
        }
        let reverted = self.snapshot().await?;
        let after_down = before.diff(&reverted);
        let (up_again_failed, after_up_again, next) = match self.up(self.work).await? {
            Err(error) => {
                self.copy(self.admin.restore()).await?;
                (Some(error), Vec::new(), after)
            }
            Ok(()) => {
                let again = self.snapshot().await?;
                let changes = after.diff(&again);
                if changes.is_empty() {
                    self.copy(self.admin.drop(KEPT)).await?;
                    (None, changes, again)
                } else {
                    self.copy(self.admin.restore()).await?;
                    (None, changes, after)
                }
            }
        };
        let verdict =
            if after_down.is_empty() && up_again_failed.is_none() && after_up_again.is_empty() {
                Verdict::Ok
            } else {
                Verdict::NotInverse {
                    after_down,
                    up_again_failed,
                    after_up_again,
                }
            };
        Ok((verdict, not_idempotent, Some(next)))
    }

    /// Applies the up a second time on a copy of the state after the first:
    /// the migration's history row is deleted in the copy so the engine
    /// runs it again.
    async fn up_twice(&self) -> Result<Option<StepError>, VerifyError> {
        self.copy(self.admin.create(TWICE, Some(WORK))).await?;
        let twice = self.admin_target.with_dbname(TWICE);
        {
            let conn = twice.connect().await?;
            let config = &self.project.config;
            engine::History::new(&config.history_schema, &config.history_table)
                .delete(
                    &conn,
                    self.migration.kind.as_str(),
                    &self.migration.version.canonical(),
                )
                .await?;
        }
        let result = self.up(&twice).await?;
        self.copy(self.admin.drop(TWICE)).await?;
        Ok(result.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_script_is_a_result_and_anything_else_stops_the_run() {
        let failed = EngineError::MigrationFailed {
            label: "3_answer".into(),
            path: PathBuf::from("migrations/3_answer.down.sql"),
            line: 2,
            statement: 1,
            total: 2,
            error: crate::db::DbError::Server {
                severity: "ERROR".into(),
                code: "2BP01".into(),
                message: "cannot drop function answer()".into(),
                detail: Some("view answers depends on function answer()".into()),
                hint: None,
                position: None,
            },
            state_note: "; the transaction was rolled back".into(),
        };
        let e = step_error(failed).unwrap();
        assert_eq!(
            e.to_string(),
            "migrations/3_answer.down.sql:2: ERROR 2BP01: cannot drop function answer()"
        );
        assert_eq!(
            e.details,
            ["detail: view answers depends on function answer()"]
        );
        let lock = EngineError::LockTimeout {
            waited_secs: 1,
            holder: "pid 1".into(),
        };
        assert!(matches!(step_error(lock), Err(VerifyError::Engine(_))));
    }
}
