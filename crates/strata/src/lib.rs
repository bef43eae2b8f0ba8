//! Strata: safe, zero-downtime PostgreSQL schema migrations, as a library.
//!
//! An application migrates its database at startup with a [`Migrator`],
//! from migrations compiled into the binary ([`embed_migrations!`]) or read
//! from a directory, in any layout the `strata` command reads
//! (golang-migrate, goose, diesel, sqlx, Flyway, dbmate). It runs the same
//! engine as `strata up`: the risk analysis that refuses dangerous
//! statements, short lock timeouts with retries, exactly-once resume, and
//! the same history table, so the command line can take over at any time.
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), strata::Error> {
//!     let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
//!     let report = strata::Migrator::embedded(strata::embed_migrations!("migrations"))
//!         .database_url(url)
//!         .on_progress(|event| eprintln!("{event:?}"))
//!         .up()
//!         .await?;
//!     println!("applied {} migration(s)", report.applied.len());
//!     Ok(())
//! }
//! ```
//!
//! The public API is the names at this crate's root. The modules behind it
//! (`config`, `db`, `engine`, `error`, `lint`, `localpg`, `report`, `source`,
//! `sql`)
//! are public only with the `internal` feature, which exists for the
//! `strata` command (the `strata-cli` package): they are unstable, not
//! covered by semver, and may change in any release. Do not enable it.
//!
//! Inside, the library is a pipeline over plain data. `source` turns a
//! migration directory into `Migration` values, `sql` splits and classifies
//! their statements with the real PostgreSQL parser, `engine` applies them
//! under an advisory lock while recording history, and `report` renders
//! results for the command line. `localpg` manages the local PostgreSQL
//! cluster the command uses when no database URL is configured.
#![warn(missing_docs)]
// Errors carry their context (file, line, statement, server message) as data;
// they are built once per failed run, so their size does not matter.
#![allow(clippy::result_large_err)]
// Without `internal`, the modules serve only the facade: the parts only the
// command line uses are dead code there, by design.
#![cfg_attr(not(feature = "internal"), allow(dead_code, unused_imports))]

mod migrator;

#[cfg(feature = "internal")]
pub mod config;
#[cfg(not(feature = "internal"))]
mod config;
#[cfg(feature = "internal")]
pub mod db;
#[cfg(not(feature = "internal"))]
mod db;
#[cfg(feature = "internal")]
pub mod engine;
#[cfg(not(feature = "internal"))]
mod engine;
#[cfg(feature = "internal")]
pub mod error;
#[cfg(not(feature = "internal"))]
mod error;
#[cfg(feature = "internal")]
pub mod lint;
#[cfg(not(feature = "internal"))]
mod lint;
#[cfg(feature = "internal")]
pub mod localpg;
#[cfg(not(feature = "internal"))]
mod localpg;
#[cfg(feature = "internal")]
pub mod plan;
#[cfg(not(feature = "internal"))]
mod plan;
#[cfg(feature = "internal")]
pub mod report;
#[cfg(not(feature = "internal"))]
mod report;
#[cfg(feature = "internal")]
pub mod verify;
#[cfg(not(feature = "internal"))]
mod verify;
#[cfg(feature = "internal")]
pub use strata_source::{source, sql};
#[cfg(not(feature = "internal"))]
use strata_source::{source, sql};

// The internal names the command line uses at the root (unstable); without
// `internal` they stay importable inside the crate (`crate::Target`).
#[cfg(feature = "internal")]
pub use config::{Config, ConfigError, DatabaseSource};
#[cfg(feature = "internal")]
pub use db::{redact, Target};
#[cfg(feature = "internal")]
pub use engine::{ApplyOptions, DownOptions, EngineError, RunReport};
#[cfg(feature = "internal")]
pub use error::Failure;
#[cfg(feature = "internal")]
pub use source::{Migration, MigrationKind, SourceProblem, Version};
#[cfg(not(feature = "internal"))]
use {
    config::{Config, ConfigError, DatabaseSource},
    db::{redact, Target},
    engine::{ApplyOptions, DownOptions, EngineError, RunReport},
    error::Failure,
    source::{Migration, MigrationKind, SourceProblem, Version},
};

// The public API.

/// Why an operation failed: the library's one error type.
///
/// It says what went wrong and where (file, line, statement, server
/// message; never a password), ends with a `help:` line on how to fix it
/// (also given alone by `help()`), and knows the exit code the `strata`
/// command ends with for it (`exit_code()`: 1 a migration or database
/// operation failed, 2 bad input or configuration and nothing ran, 3
/// refused by risk analysis), so a program built on the library can exit
/// the same way.
///
/// ```no_run
/// # async fn f(m: strata::Migrator) -> std::process::ExitCode {
/// match m.up().await {
///     Ok(_) => std::process::ExitCode::SUCCESS,
///     Err(e) => {
///         eprintln!("error: {e}");
///         std::process::ExitCode::from(e.exit_code())
///     }
/// }
/// # }
/// ```
pub use error::Error;
pub use migrator::{
    Direction, EmbeddedMigrations, Event, Finding, MigrationState, MigrationStatus, Migrator,
    Report, Risk, Step, Waiting,
};
pub use source::Format;
pub use strata_macros::embed_migrations;

/// The version of this build of Strata, recorded in the history table's
/// `tool_version` column with every migration it applies; compare it with
/// what an older deployment recorded.
///
/// ```
/// assert!(!strata::TOOL_VERSION.is_empty());
/// ```
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
