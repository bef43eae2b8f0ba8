//! Strata: safe, zero-downtime PostgreSQL schema migrations.
//!
//! The library is a pipeline over plain data. [`source`] turns a migration
//! directory (in any supported layout) into [`Migration`] values, [`sql`] splits
//! and classifies their statements with the real PostgreSQL parser, [`engine`]
//! applies them to a database under an advisory lock while recording history,
//! and [`report`] renders results for people and machines. [`localpg`] manages
//! the local PostgreSQL cluster that is used when no database URL is configured.
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin shell over these modules.
#![warn(missing_docs)]
// Errors carry their context (file, line, statement, server message) as data;
// they are built once per failed run, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod db;
pub mod engine;
pub mod error;
pub mod lint;
pub mod localpg;
pub mod report;
pub use strata_source::{source, sql};

pub use config::{Config, ConfigError, DatabaseSource};
pub use db::{redact, Target};
pub use engine::{
    ApplyOptions, DownOptions, EngineError, MigrationState, MigrationStatus, RunReport,
};
pub use error::{Error, Failure};
pub use source::{Format, Migration, MigrationKind, SourceProblem, Version};

/// The version of this build of Strata, recorded in the history table.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
