//! The managed local PostgreSQL cluster: the embedded default target when no
//! database URL is configured, and throwaway clusters for tests.
//!
//! A cluster is created with `initdb` from the PostgreSQL binaries on the
//! machine and started with `pg_ctl` on a unix socket in a private
//! directory plus a free localhost port. PostgreSQL refuses to run as root,
//! so when Strata runs as root the server runs as the `postgres` OS user and
//! Strata hands it the directories it needs.
//!
//! **Architecture Invariant:** this is the only module that finds and spawns
//! PostgreSQL binaries. The engine uses a cluster only through its URL.

mod binaries;
mod cluster;
pub mod git;
mod throwaway;
mod tools;

pub use binaries::Binaries;
pub use cluster::{Cluster, ClusterState};
pub use throwaway::{Standby, Throwaway};
pub use tools::{remove_stale_partials, Around, ClientTools, DumpScope};

/// A local-cluster failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalPgError {
    /// No PostgreSQL server binaries were found.
    #[error("no PostgreSQL server binaries found (looked on PATH, at `pg_config --bindir` and in /usr/lib/postgresql/*/bin)\n  help: install them, e.g. `sudo apt-get install postgresql` on Debian/Ubuntu or `brew install postgresql` on macOS, or set --database-url to use an existing server")]
    NoBinaries,
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root, but there is no `postgres` OS user to run the server as\n  help: create one (`useradd --system postgres`) or run strata as a normal user")]
    NoPostgresUser,
    /// A step failed; `output` is what the tool printed.
    #[error("{step} failed:\n{output}")]
    Failed {
        /// The step, e.g. `initdb`.
        step: String,
        /// The tool's output.
        output: String,
    },
    /// A file-system or process error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Running as root, the `postgres` user cannot reach the project.
    #[error("the local cluster runs as the `postgres` OS user, which cannot enter {dir} (mode {mode:o})\n  help: allow it through with `chmod o+x {dir}`, run strata as a normal user, or set --database-url")]
    Unreachable {
        /// The directory that blocks the way.
        dir: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `pg_dump` or `pg_restore` is not where Strata looked.
    #[error("`{tool}` not found (looked in {looked})\n  help: install the PostgreSQL client tools (`sudo apt-get install postgresql-client`), or set pg_bindir in strata.toml")]
    NoClientTool {
        /// The tool.
        tool: String,
        /// Where Strata looked.
        looked: String,
    },
    /// The cluster has not been created yet.
    #[error("the local cluster at {0} does not exist\n  help: `strata local start` creates it")]
    Missing(std::path::PathBuf),
}

impl LocalPgError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LocalPgError::Io {
            context: context.into(),
            source,
        }
    }
}
