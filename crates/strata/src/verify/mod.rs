//! Verification: what the database really looks like, compared with what
//! the migrations say it should be.
//!
//! Checks return values (snapshots, per-object differences, reports) and
//! print nothing; the command line renders them. A check that finds a
//! problem is not an error: it returns the problems, and the caller decides
//! the exit code (3). [`VerifyError`] is for what stopped a check from
//! running at all.
//!
//! - [`catalog`]: [`catalog::Snapshot`], every user object of a database
//!   read from `pg_catalog`, and [`catalog::Snapshot::diff`], the
//!   per-object differences between two snapshots.
//! - [`dump`]: `strata dump` and `schema_file`, the schema as a
//!   deterministic SQL file.
//! - [`check`]: `strata verify` (checksums, drift, schema file) and
//!   `strata baseline --verify`, against the migrations replayed on a
//!   throwaway cluster with the engine's `up`.
//! - [`spec`] and [`plan_review`]: `strata spec` and `strata plan`, the
//!   review specs of a SQL migration and of a multi-phase plan.
//! - [`roundtrip`]: `strata test`, each migration's up, down and up again
//!   on a throwaway cluster, compared snapshot by snapshot.

pub mod catalog;
pub mod check;
pub mod dump;
pub mod plan_review;
pub mod roundtrip;
pub mod spec;
pub mod trace;

use crate::db::DbError;
use crate::engine::EngineError;
use crate::error::exit;
use crate::localpg::LocalPgError;

/// Why a verification could not run (not: what it found).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the catalog or running SQL failed.
    #[error("{0}")]
    Db(#[from] DbError),
    /// The throwaway cluster or a client tool failed.
    #[error(transparent)]
    LocalPg(#[from] LocalPgError),
    /// Replaying or reading the migrations failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The migrations did not replay on the throwaway cluster.
    #[error("the migrations do not replay on a throwaway cluster, so the database cannot be compared with them:\n{source}")]
    Replay {
        /// What `up` said.
        source: EngineError,
    },
    /// Reading or writing a file failed.
    #[error("{what} {}: {source}\n  help: {help}", .path.display())]
    Io {
        /// What was being done ("cannot write the schema file").
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
        /// How to fix it.
        help: &'static str,
    },
    /// Bad usage or input: nothing was run.
    #[error("{message}\n  help: {help}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
}

impl VerifyError {
    /// The process exit code this failure means (see [`exit`]): what the
    /// wrapped error says, 2 for bad usage.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Db(e) => crate::error::Failure::exit_code(e),
            VerifyError::LocalPg(_) | VerifyError::Io { .. } | VerifyError::Replay { .. } => {
                exit::FAILED
            }
            VerifyError::Engine(e) => e.exit_code(),
            VerifyError::Usage { .. } => exit::BAD_INPUT,
        }
    }
}

impl crate::error::Failure for VerifyError {
    fn exit_code(&self) -> u8 {
        VerifyError::exit_code(self)
    }
}
