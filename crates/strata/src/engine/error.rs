//! Engine errors. Each variant names the migration, file and statement
//! involved, and says how to fix the problem.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::db::DbError;
use crate::error::exit;
use crate::localpg::LocalPgError;
use crate::source::SourceProblem;
use crate::sql::SqlError;

/// An applied migration whose file changed.
#[derive(Debug, Clone)]
pub struct ChangedFile {
    /// `version_name`.
    pub label: String,
    /// The file.
    pub path: PathBuf,
    /// The checksum recorded when it was applied.
    pub recorded: String,
    /// The checksum of the file now.
    pub current: String,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The migration directory has problems; nothing was run.
    #[error("the migration directory has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Source(Vec<SourceProblem>),
    /// A script could not be parsed; nothing was run.
    #[error("{}:{line}:{column}: {error}\n  help: {}", .path.display(), .error.help())]
    Sql {
        /// The file.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parse problem.
        error: SqlError,
    },
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A database error outside a migration (connecting, reading history).
    #[error("{}", with_help(.0))]
    Db(#[from] DbError),
    /// The managed local cluster failed.
    #[error(transparent)]
    LocalPg(#[from] LocalPgError),
    /// Applied migrations whose files changed.
    #[error("{} applied migration(s) changed since they were applied:\n{}\n  help: restore the original files, or run `strata repair` to accept the new contents", .0.len(), .0.iter().map(|c| format!("  {} ({}): recorded checksum {}, file now {}", c.label, c.path.display(), &c.recorded[..12.min(c.recorded.len())], &c.current[..12.min(c.current.len())])).collect::<Vec<_>>().join("\n"))]
    Modified(Vec<ChangedFile>),
    /// Applied migrations whose files are gone.
    #[error("{} applied migration(s) have no file any more: {}\n  help: restore the files, or pass --ignore-missing", .0.len(), .0.join(", "))]
    Missing(Vec<String>),
    /// Pending migrations older than the newest applied one.
    #[error("pending migration(s) older than the newest applied version {newest}:\n{}\n  help: give them a newer version, or pass --allow-out-of-order (or set allow_out_of_order = true)", .pending.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    OutOfOrder {
        /// The newest applied version.
        newest: String,
        /// The files of the older pending migrations.
        pending: Vec<PathBuf>,
    },
    /// Strata's own tables have a newer layout than this build knows:
    /// a newer Strata upgraded them. Nothing was read or written.
    #[error("the history table {table} has layout version {found} of Strata's own tables, but this strata ({}) knows versions up to {known}: a newer strata upgraded them\n  help: use a strata release at least as new as the one that upgraded the database (the tool_version column of strata_schema names it)", crate::TOOL_VERSION)]
    NewerOwnTables {
        /// The history table, schema-qualified.
        table: String,
        /// The layout version found in the database.
        found: i32,
        /// The newest layout version this build knows.
        known: i32,
    },
    /// Another runner holds the migration lock.
    #[error("another strata run holds the migration lock (waited {waited_secs}s): {holder}\n  help: wait for it to finish, or raise lock_wait in strata.toml")]
    LockTimeout {
        /// Seconds waited.
        waited_secs: u64,
        /// pid, application_name and query of the holder.
        holder: String,
    },
    /// A statement of a migration failed.
    #[error("migration {label} failed at {}:{line} (statement {statement} of {total}): {error}{}", .path.display(), .state_note)]
    MigrationFailed {
        /// `version_name`.
        label: String,
        /// The file.
        path: PathBuf,
        /// 1-based line of the failing statement.
        line: usize,
        /// 1-based statement number.
        statement: usize,
        /// Number of statements.
        total: usize,
        /// The server's error.
        error: DbError,
        /// What state the database was left in.
        state_note: String,
    },
    /// A migration cannot be reverted.
    #[error("migration {label} cannot be reverted: {reason}\n  help: {help}")]
    Irreversible {
        /// `version_name`.
        label: String,
        /// Why.
        reason: String,
        /// What to do.
        help: String,
    },
    /// A version named on the command line does not exist.
    #[error("no migration has version {0}\n  help: `strata status` lists the versions")]
    UnknownVersion(String),
    /// The statements that already ran of a failed migration have changed.
    #[error("statements 1 to {done} of {label} ran before it stopped, and they changed since (the file has {total} statements now)\n  help: restore statements 1 to {done} as they were: they ran and stay {}, and `strata {command}` resumes at statement {}; put changes to what they did in a new migration", stays(.command), .done + 1)]
    ResumeChanged {
        /// `version_name`.
        label: String,
        /// The command that resumes it: `up`, or `down` for a down script.
        command: &'static str,
        /// Statements that had run.
        done: usize,
        /// Statements in the file now.
        total: usize,
    },
    /// A failed (partially applied) migration blocks the operation.
    #[error("migration {label} is partially applied ({detail})\n  help: fix the cause and run `strata up` to resume it at the statement it stopped at (the statements that ran do not run again)")]
    Failed {
        /// `version_name`.
        label: String,
        /// Where it stopped.
        detail: String,
    },
    /// A migration whose `down` stopped part way blocks the operation.
    #[error("migration {label} is partly reverted ({detail})\n  help: fix the cause and run `strata down` to finish reverting it: it resumes at the statement it stopped at (the statements of the down script that ran do not run again); `strata repair` says what the next `down` does")]
    PartlyReverted {
        /// `version_name`.
        label: String,
        /// Where its down stopped.
        detail: String,
    },
    /// `repair --skip-statement` named a migration that did not stop part
    /// way.
    #[error("migration {label} is {state}, not stopped part way: there is no statement to skip or run again\n  help: `strata status` shows which migration stopped and where; --skip-statement and --rerun-statement act on the statement a failed or interrupted migration stopped at")]
    NothingToSkip {
        /// `version_name`.
        label: String,
        /// Its state.
        state: &'static str,
    },
    /// Risk analysis found unacknowledged findings at or above `block_on`.
    #[error("{count} finding(s) at or above {threshold} block `strata up` (listed above)\n  help: use the safe rewrite, or acknowledge a finding with `-- strata:allow RULE reason: why it is safe` on the line above the statement, or change block_on in strata.toml")]
    Blocked {
        /// How many findings block.
        count: usize,
        /// The threshold.
        threshold: crate::lint::Risk,
    },
    /// A backup could not be taken, so the migration did not run.
    #[error("{}could not back up {what}: {message}\n  help: {help}", .migration.as_ref().map(|m| format!("migration {m} did not run: ")).unwrap_or_default())]
    Backup {
        /// The migration that was about to run, if any.
        migration: Option<String>,
        /// What was to be backed up.
        what: String,
        /// What went wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A backup file to restore does not exist or is not a dump.
    #[error("cannot restore {}: {message}\n  help: `strata backups` lists the backups", .path.display())]
    BadBackup {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Restoring a backup would leave rows written since it pointing at
    /// rows it does not hold; the restore's one transaction was rolled back.
    #[error("cannot restore {}: rows written since the backup was taken reference rows it does not hold, so the restore would orphan them; nothing was changed:\n{detail}\n  help: a restore puts the tables back as they were when the backup was taken, and rows written since are lost; move or delete the rows named above (or restore them by hand with pg_restore), then run it again", .path.display())]
    RestoreConflict {
        /// The file.
        path: PathBuf,
        /// The server's error.
        detail: String,
    },
    /// A killed run may have left a statement done but unrecorded, and
    /// nothing in the database tells; running it again could apply it twice.
    #[error("migration {label} was interrupted at statement {statement} ({what}), which commits on its own before its progress is recorded; nothing in the database tells whether it finished, so it is not run again on a guess\n  help: check whether statement {statement} ({summary}) took effect; if it did, run `strata repair --skip-statement {version}` (records it as done); if it did not, run `strata repair --rerun-statement {version}` (runs it again); then `strata {command}`")]
    Undecided {
        /// `version_name`.
        label: String,
        /// The command that resumes it: `up`, or `down` for a down script.
        command: &'static str,
        /// The version, as written in the file name.
        version: String,
        /// 1-based statement number.
        statement: usize,
        /// What kind of statement.
        what: &'static str,
        /// Its first line.
        summary: String,
    },
    /// `adopt` refuses, or `up` points to it, or the history table is not
    /// Strata's (see `engine::adopt`).
    #[error(transparent)]
    Adopt(#[from] super::adopt::AdoptError),
    /// `strata lint --changed` could not ask git what changed.
    #[error(transparent)]
    Git(#[from] crate::localpg::git::GitError),
    /// A new migration file could not be created.
    #[error(transparent)]
    Create(#[from] crate::source::create::CreateError),
    /// The caller asked for something that does not exist or cannot be done
    /// as asked (an unknown rule, a question nobody can answer); nothing
    /// was run.
    #[error("{message}\n  help: {help}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A backfill refused or failed (`engine::backfill`).
    #[error(transparent)]
    Backfill(#[from] super::backfill::BackfillError),
    /// A migration parsed again past the run's memory budget gave other
    /// statements than the first parse (`engine::statements`).
    #[error("migration {label} did not run: parsed again right before it ran, its statements differ from those analysed at the start of the run (a bug in strata)\n  help: run the command again (what ran before it is recorded); if it happens again, report it with the migration file")]
    Reparsed {
        /// The migration.
        label: String,
    },
    /// A migration's text, released past the run's memory budget
    /// (`source::Text`), could not be read back as it was at the start of
    /// the run: its file changed or went away. Exit 1: migrations before
    /// it may have run.
    #[error(
        "{0}\n  note: migrations before it in this run may have run; `strata status` shows which"
    )]
    Reread(SourceProblem),
    /// The previous runner's statement still runs on the server.
    #[error("migration {label} was interrupted, and its statement is still running on the server in backend {pid}\n  help: wait for it to finish, or cancel it with SELECT pg_cancel_backend({pid})")]
    StillRunning {
        /// `version_name`.
        label: String,
        /// The backend pid.
        pid: i32,
    },
}

impl EngineError {
    /// The process exit code this error means (README.md, "Exit codes"):
    /// 2 when the input is wrong and nothing ran, 3 when a check refused
    /// the run, 1 when a migration or database operation failed. The
    /// variant decides, because only the engine knows whether anything ran.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Source(_)
            | EngineError::Sql { .. }
            | EngineError::Config(_)
            | EngineError::Modified(_)
            | EngineError::Missing(_)
            | EngineError::OutOfOrder { .. }
            | EngineError::Irreversible { .. }
            | EngineError::UnknownVersion(_)
            | EngineError::ResumeChanged { .. }
            | EngineError::NothingToSkip { .. }
            | EngineError::BadBackup { .. }
            | EngineError::RestoreConflict { .. }
            | EngineError::Adopt(_)
            | EngineError::Create(_)
            | EngineError::Git(_)
            | EngineError::NewerOwnTables { .. }
            | EngineError::Usage { .. } => exit::BAD_INPUT,
            EngineError::Blocked { .. } => exit::CHECK_FAILED,
            EngineError::Db(e) => crate::error::Failure::exit_code(e),
            EngineError::Backfill(e) => e.exit_code(),
            EngineError::LocalPg(_)
            | EngineError::LockTimeout { .. }
            | EngineError::MigrationFailed { .. }
            | EngineError::Failed { .. }
            | EngineError::PartlyReverted { .. }
            | EngineError::Backup { .. }
            | EngineError::Undecided { .. }
            | EngineError::Reparsed { .. }
            | EngineError::Reread(_)
            | EngineError::StillRunning { .. } => exit::FAILED,
        }
    }

    /// The error of a step that runs before any migration does (parsing
    /// and analysing the planned migrations): a file that cannot be read
    /// back as loaded is then bad input, exit 2, nothing ran.
    pub(crate) fn before_run(self) -> EngineError {
        match self {
            EngineError::Reread(problem) => EngineError::Source(vec![problem]),
            other => other,
        }
    }

    /// How to fix it: the `help:` text of the message.
    pub fn help(&self) -> Option<String> {
        crate::error::help_of(&self.to_string())
    }
}

/// What the statements that ran of a script did: applied an up script,
/// reverted with a down script.
fn stays(command: &str) -> &'static str {
    if command == "down" {
        "reverted"
    } else {
        "applied"
    }
}

fn with_help(e: &DbError) -> String {
    match e.help() {
        Some(help) => format!("{e}\n  help: {help}"),
        None => e.to_string(),
    }
}
