//! Throwaway clusters for tests and verification.
//!
//! One cluster per test binary, on tmpfs where there is one, with
//! durability switched off. It is removed when the process exits, however
//! it exits (normally, by panic, or killed): a small reaper process waits
//! for the end of a pipe that only this process holds open, then stops the
//! server and deletes the directory.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use super::cluster::{chown, server_owner};
use super::{Cluster, LocalPgError};

/// A running throwaway cluster.
pub struct Throwaway {
    cluster: Cluster,
    dir: PathBuf,
    _reaper: Child,
    _reaper_pipe: ChildStdin,
}

impl Throwaway {
    /// Creates and starts a throwaway cluster.
    pub fn start() -> Result<Throwaway, LocalPgError> {
        let base = ["/dev/shm", "/tmp"]
            .iter()
            .map(Path::new)
            .find(|p| p.is_dir() && tempfile::tempdir_in(p).is_ok())
            .unwrap_or_else(|| Path::new("/tmp"));
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir_in(base)
            .map_err(|e| LocalPgError::io("cannot create a temporary directory", e))?
            .keep();
        chown(&dir, server_owner()?)?;
        let reaper = spawn_reaper(&dir)?;
        let settings = [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "300"),
            ("shared_buffers", "64MB"),
        ];
        let cluster = Cluster::with_settings(
            dir.join("pg"),
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "postgres",
        );
        let (child, pipe) = reaper;
        let throwaway = Throwaway {
            cluster,
            dir,
            _reaper: child,
            _reaper_pipe: pipe,
        };
        throwaway.cluster.ensure_running()?;
        Ok(throwaway)
    }

    /// A conninfo for `dbname` on this cluster.
    pub fn conninfo(&self, dbname: &str) -> String {
        let base = self
            .cluster
            .conninfo()
            .expect("invariant: a started cluster has state");
        format!("{base} dbname={dbname}")
    }

    /// The cluster's directory (removed at exit).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        // Closing the pipe tells the reaper to clean up now.
        let _ = self._reaper_pipe.flush();
    }
}

fn spawn_reaper(dir: &Path) -> Result<(Child, ChildStdin), LocalPgError> {
    let script = r#"
        read _ignored
        sock=$(sed -n 's/.*"socket_dir": *"\(.*\)".*/\1/p' "$1/pg/cluster.json" 2>/dev/null)
        pidfile="$1/pg/data/postmaster.pid"
        if [ -f "$pidfile" ]; then
            kill -QUIT "$(head -n 1 "$pidfile")" 2>/dev/null
            i=0
            while [ -f "$pidfile" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        fi
        rm -rf "$1"
        [ -n "$sock" ] && rm -rf "$sock"
    "#;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script, "strata-reaper"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: a Ctrl-C to the test run must not kill the reaper
    // before it has cleaned up.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| LocalPgError::io("cannot start the cleanup process", e))?;
    let pipe = child.stdin.take().expect("invariant: stdin was piped");
    Ok((child, pipe))
}
