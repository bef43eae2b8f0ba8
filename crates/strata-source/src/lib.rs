//! Migration sources and SQL, the first two stages of Strata's pipeline.
//!
//! [`source`] turns a migration directory (in any supported layout) into
//! [`source::Migration`] values, and [`sql`] splits and classifies their
//! statements with the real PostgreSQL parser. They are a crate of their own
//! so that the `strata` library and the `embed_migrations!` macro (which runs
//! at compile time and cannot depend on the library that re-exports it) read
//! migrations with exactly the same code: same layouts, checksums, directives.
//!
//! Applications use these through the `strata` crate, which re-exports them.
#![warn(missing_docs)]
#![allow(clippy::result_large_err)]

pub mod plan;
pub mod source;
pub mod sql;
