//! The library's error contract: every error a library call returns says
//! which exit code the process should end with and how to fix it.
//!
//! [`Error`] is the one error type of the library's operations (it is
//! [`EngineError`](crate::engine::EngineError): configuration, database,
//! local-cluster, source and creation errors convert into it with `?`).
//! Callers — the `strata` binary, an application embedding Strata — ask the
//! error for its [`Failure::exit_code`] instead of guessing it from the
//! error's type: the engine knows whether anything ran when it failed, a
//! caller does not. The meanings are fixed and documented in README.md
//! ("Exit codes"); [`exit`] names them.

pub use crate::engine::EngineError as Error;

/// The exit codes, as README.md documents them.
pub mod exit {
    /// Everything asked for was done.
    pub const OK: u8 = 0;
    /// A migration or database operation failed (something may have run;
    /// the history says exactly what).
    pub const FAILED: u8 = 1;
    /// Bad usage, configuration or input: nothing was run.
    pub const BAD_INPUT: u8 = 2;
    /// A check found problems (`status --exit-code`, `lint --fail-on`, `up`
    /// refused by risk analysis): nothing was run.
    pub const CHECK_FAILED: u8 = 3;
}

/// What every library error tells its caller besides its message.
pub trait Failure: std::error::Error {
    /// The process exit code this failure means (see [`exit`]).
    fn exit_code(&self) -> u8;

    /// How to fix it: the `help:` text of the message, when it has one.
    fn help(&self) -> Option<String> {
        help_of(&self.to_string())
    }
}

/// The text after the last `help:` line of a rendered message. Messages keep
/// their help in their text (every printer shows it); this gives it to
/// callers that show it their own way.
pub(crate) fn help_of(message: &str) -> Option<String> {
    message
        .rsplit_once("\n  help: ")
        .map(|(_, help)| help.trim_end().to_owned())
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        Error::exit_code(self)
    }
}

impl Failure for crate::config::ConfigError {
    fn exit_code(&self) -> u8 {
        exit::BAD_INPUT
    }
}

impl Failure for crate::db::DbError {
    fn exit_code(&self) -> u8 {
        match self {
            crate::db::DbError::BadTarget { .. } => exit::BAD_INPUT,
            _ => exit::FAILED,
        }
    }

    fn help(&self) -> Option<String> {
        crate::db::DbError::help(self)
            .map(str::to_owned)
            .or_else(|| help_of(&self.to_string()))
    }
}

impl Failure for crate::localpg::LocalPgError {
    fn exit_code(&self) -> u8 {
        exit::FAILED
    }
}

impl Failure for crate::source::create::CreateError {
    fn exit_code(&self) -> u8 {
        exit::BAD_INPUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_exit_code_and_help() {
        let usage = Error::Usage {
            message: "unknown rule `x`".into(),
            help: "`strata rules` lists every rule".into(),
        };
        assert_eq!(Failure::exit_code(&usage), exit::BAD_INPUT);
        assert_eq!(
            Failure::help(&usage).as_deref(),
            Some("`strata rules` lists every rule")
        );
        let blocked = Error::Blocked {
            count: 1,
            threshold: crate::lint::Risk::High,
        };
        assert_eq!(blocked.exit_code(), exit::CHECK_FAILED);
        let lock = Error::LockTimeout {
            waited_secs: 1,
            holder: "pid 1".into(),
        };
        assert_eq!(lock.exit_code(), exit::FAILED);
        assert!(lock.help().is_some_and(|h| h.contains("lock_wait")));
        let bad_url = Error::from(crate::Target::parse("postgres://[::1").unwrap_err());
        assert_eq!(bad_url.exit_code(), exit::BAD_INPUT);
    }
}
