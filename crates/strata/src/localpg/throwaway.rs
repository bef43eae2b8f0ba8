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

use super::cluster::{chown, free_port, prepare_socket_dir, run, server_owner, tool, SUPERUSER};
use super::{Binaries, Cluster, LocalPgError};

/// Server settings of throwaway clusters: durability off. A replica gets
/// the same (a hot standby refuses to start with fewer connections than
/// its primary).
const SETTINGS: [(&str, &str); 5] = [
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "300"),
    ("shared_buffers", "64MB"),
];

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
        Throwaway::start_with(None)
    }

    /// A throwaway cluster of PostgreSQL `major` when its binaries are on
    /// the machine (see [`Binaries::find_major`]), else of the newest:
    /// catalogs compared with another server's print alike only on the
    /// same major version (extension versions, view definitions).
    pub fn start_major(major: u32) -> Result<Throwaway, LocalPgError> {
        Throwaway::start_with(Binaries::find_major(major))
    }

    fn start_with(binaries: Option<Binaries>) -> Result<Throwaway, LocalPgError> {
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
        let cluster = Cluster::with_settings(
            dir.join("pg"),
            SETTINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "postgres",
        );
        let cluster = match binaries {
            Some(b) => cluster.with_binaries(b),
            None => cluster,
        };
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

    /// Starts a streaming replica of this cluster (`pg_basebackup`), for
    /// tests of what Strata does while a replica lags. It is stopped when
    /// dropped, and removed with the cluster's directory.
    pub fn start_standby(&self) -> Result<Standby, LocalPgError> {
        let (bin, socket, port) = self
            .cluster
            .endpoint()
            .ok_or_else(|| LocalPgError::Missing(self.dir.clone()))?;
        let owner = server_owner()?;
        let root = self.dir.join("standby");
        std::fs::create_dir_all(&root)
            .map_err(|e| LocalPgError::io(format!("cannot create {}", root.display()), e))?;
        chown(&root, owner)?;
        let data = root.join("data");
        let mut backup = tool(&bin, "pg_basebackup", owner);
        backup
            .arg("-h")
            .arg(&socket)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                SUPERUSER,
                "-X",
                "stream",
                "-D",
            ])
            .arg(&data);
        run(backup, "pg_basebackup")?;
        // The standby settings are written here rather than by `-R`: a
        // newer pg_basebackup writes connection options (sslnegotiation, …)
        // that an older server's walreceiver rejects.
        let auto_conf = data.join("postgresql.auto.conf");
        let conninfo = format!(
            "\nprimary_conninfo = 'host={} port={port} user={SUPERUSER}'\n",
            socket.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&auto_conf)
            .and_then(|mut f| std::io::Write::write_all(&mut f, conninfo.as_bytes()))
            .map_err(|e| LocalPgError::io(format!("cannot write {}", auto_conf.display()), e))?;
        let signal = data.join("standby.signal");
        std::fs::write(&signal, "")
            .map_err(|e| LocalPgError::io(format!("cannot write {}", signal.display()), e))?;
        chown(&signal, owner)?;
        let standby_socket = PathBuf::from(format!("{}-standby", socket.display()));
        prepare_socket_dir(&standby_socket, owner)?;
        let standby_port = free_port()?;
        let mut start = tool(&bin, "pg_ctl", owner);
        start
            .arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(root.join("log"))
            .args(["-w", "-t", "60", "-s", "-o"])
            .arg(format!(
                "-p {standby_port} -k {} -c listen_addresses='' -c hot_standby_feedback=on{}",
                standby_socket.display(),
                SETTINGS
                    .iter()
                    .map(|(k, v)| format!(" -c {k}={v}"))
                    .collect::<String>()
            ));
        run(start, "pg_ctl start (standby)").map_err(|e| {
            let log = std::fs::read_to_string(root.join("log")).unwrap_or_default();
            LocalPgError::Failed {
                step: "pg_ctl start (standby)".into(),
                output: format!(
                    "{e}\n{}",
                    log.lines().rev().take(10).collect::<Vec<_>>().join("\n")
                ),
            }
        })?;
        Ok(Standby {
            bin,
            data,
            socket: standby_socket,
            port: standby_port,
        })
    }
}

/// A running streaming replica of a [`Throwaway`] cluster.
pub struct Standby {
    bin: Binaries,
    data: PathBuf,
    socket: PathBuf,
    port: u16,
}

impl Standby {
    /// A conninfo for `dbname` on the replica.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={dbname}",
            self.socket.display(),
            self.port
        )
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Ok(owner) = server_owner() {
            let mut stop = tool(&self.bin, "pg_ctl", owner);
            stop.arg("stop")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-s"]);
            let _ = run(stop, "pg_ctl stop (standby)");
        }
        let _ = std::fs::remove_dir_all(&self.socket);
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
        for pidfile in "$1/standby/data/postmaster.pid" "$1/pg/data/postmaster.pid"; do
            if [ -f "$pidfile" ]; then
                kill -QUIT "$(head -n 1 "$pidfile")" 2>/dev/null
                i=0
                while [ -f "$pidfile" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
            fi
        done
        rm -rf "$1"
        [ -n "$sock" ] && rm -rf "$sock" "$sock-standby"
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
