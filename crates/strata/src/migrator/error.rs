//! The library's one error type.

use crate::engine::EngineError;

/// Why a [`crate::Migrator`] operation failed.
///
/// One type for every operation, so an application needs one `match` or
/// one `?`. It says what went wrong and where (file, line, statement,
/// server message; passwords are never shown), how to fix it
/// ([`Error::help`]), and the exit code the `strata` command would end with
/// ([`Error::exit_code`]), so a tool built on the library can exit the same
/// way: 1 a migration or database operation failed, 2 bad input or
/// configuration (nothing ran), 3 a check refused the run (risk analysis).
///
/// ```no_run
/// # async fn f(m: strata::Migrator) {
/// if let Err(e) = m.up().await {
///     eprintln!("error: {}", e.message());
///     if let Some(help) = e.help() {
///         eprintln!("  help: {help}");
///     }
///     std::process::exit(e.exit_code());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Error {
    message: String,
    help: Option<String>,
    exit_code: i32,
    source: Option<EngineError>,
}

impl Error {
    /// What went wrong, without the help text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it, when there is something to say.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The exit code the `strata` command uses for this error: 1 a
    /// migration or database operation failed, 2 bad input or
    /// configuration (nothing ran), 3 refused by risk analysis.
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    /// A configuration mistake made through the builder (exit code 2).
    pub(crate) fn config(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            help: Some(help.into()),
            exit_code: 2,
            source: None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Error {
        // Engine errors write their help line into their text; split it
        // back out so that `help()` has it on its own. Passwords never
        // reach the text: `redact` is applied as the CLI applies it.
        let text = crate::db::redact(&e.to_string());
        let (message, help) = match text.rsplit_once("\n  help: ") {
            Some((message, help)) => (message.to_owned(), Some(help.to_owned())),
            None => (text, None),
        };
        Error {
            message,
            help,
            exit_code: exit_code(&e),
            source: Some(e),
        }
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Error {
        EngineError::from(e).into()
    }
}

/// The CLI's mapping (`src/cli/mod.rs`), until the engine's errors carry
/// their own exit code.
fn exit_code(e: &EngineError) -> i32 {
    match e {
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
        | EngineError::Adopt(_) => 2,
        EngineError::Blocked { .. } => 3,
        EngineError::Db(crate::db::DbError::BadTarget { .. }) => 2,
        _ => 1,
    }
}
