//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::LocalPgError;

/// A directory holding `initdb`, `pg_ctl` and `postgres`, and their major
/// version.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The directory.
    pub bindir: PathBuf,
    /// The major version (`15`).
    pub major: u32,
}

impl Binaries {
    /// Looks on `PATH`, then at `pg_config --bindir`, then in
    /// `/usr/lib/postgresql/*/bin`, newest first.
    pub fn find() -> Result<Binaries, LocalPgError> {
        for dir in candidates() {
            if is_server_dir(&dir) {
                let major = major_version(&dir.join("postgres"))?;
                return Ok(Binaries { bindir: dir, major });
            }
        }
        Err(LocalPgError::NoBinaries)
    }

    /// The first server installation of PostgreSQL `major`, looked for
    /// where [`Binaries::find`] looks; `None` when there is none.
    pub fn find_major(major: u32) -> Option<Binaries> {
        candidates()
            .into_iter()
            .filter(|dir| is_server_dir(dir))
            .find(|dir| major_version(&dir.join("postgres")).ok() == Some(major))
            .map(|bindir| Binaries { bindir, major })
    }

    /// The path of one binary: in the server's directory, or, for a client
    /// program that directory lacks, the first one on `PATH`. Server-only
    /// packages (such as the npm registry's relocatable builds) carry
    /// `initdb`, `pg_ctl` and `postgres` and nothing else; `createdb` and
    /// `pg_basebackup` from any newer release work with an older server.
    pub fn tool(&self, name: &str) -> PathBuf {
        let own = self.bindir.join(name);
        if own.is_file() || SERVER_PROGRAMS.contains(&name) {
            return own;
        }
        which(name).unwrap_or(own)
    }
}

/// Where server binaries may be, in the order [`Binaries::find`] prefers:
/// `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin` newest first.
fn candidates() -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Debian links a few binaries into /usr/local/bin or
                // /usr/bin; the real directory has all of them.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent() {
                    candidates.push(parent.to_path_buf());
                }
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_string_lossy().parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|d| std::cmp::Reverse(d.0));
    candidates.extend(debian.into_iter().map(|(_, p)| p));
    candidates
}

/// True when `dir` holds a server: `initdb`, `pg_ctl` and `postgres`.
fn is_server_dir(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// The programs that must come from the server's own directory.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// The major version a PostgreSQL program prints with `--version`.
pub(super) fn major_version(program: &Path) -> Result<u32, LocalPgError> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| LocalPgError::io(format!("cannot run {}", program.display()), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "pg_dump (PostgreSQL) 15.18 ..."
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| LocalPgError::Failed {
            step: format!("{} --version", program.display()),
            output: text.into_owned(),
        })
}

/// The first `name` on `PATH`.
pub(super) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
