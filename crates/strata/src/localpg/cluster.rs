//! One local cluster: create, start, stop, destroy, and its connection info.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::unistd::{Gid, Uid, User};

use super::{Binaries, LocalPgError};

/// The database that commands use on the project cluster.
pub const PROJECT_DATABASE: &str = "strata";
/// The superuser created by initdb.
pub const SUPERUSER: &str = "postgres";

/// What is recorded about a cluster beside its data directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct State {
    port: u16,
    socket_dir: PathBuf,
    bindir: PathBuf,
    major: u32,
}

/// Whether a cluster exists and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Never created (or destroyed).
    Missing,
    /// Created, not running.
    Stopped,
    /// Running.
    Running {
        /// The postmaster's pid.
        pid: i32,
        /// The TCP port on 127.0.0.1.
        port: u16,
        /// The private unix socket directory.
        socket_dir: PathBuf,
    },
}

/// A local cluster rooted at a directory (`<project>/.strata/pg`, or a
/// per-project directory elsewhere when the server's OS user cannot reach
/// the project).
#[derive(Debug, Clone)]
pub struct Cluster {
    root: PathBuf,
    /// The `flock` file serialising create and start. For a project it
    /// stays in `.strata/` wherever the data lives, so every process of the
    /// project takes the same lock before deciding anything.
    lock: PathBuf,
    /// For a cluster kept outside the project: the file in `.strata/` that
    /// records where (written on creation, removed by `destroy`).
    location_file: Option<PathBuf>,
    settings: Vec<(String, String)>,
    database: String,
    /// The binaries to create it with; `None`: the newest found.
    binaries: Option<Binaries>,
}

/// The file in `.strata/` that records where a project's cluster lives
/// when it is not in `.strata/pg`.
pub const LOCATION_FILE: &str = "pg-location";

impl Cluster {
    /// The project cluster of `project_dir`: in `<project_dir>/.strata/pg`,
    /// or, when the server runs as another OS user (root runs it as
    /// `postgres`) who cannot enter the project (a clone in root's mode-700
    /// home), in a per-project directory under `/var/lib/strata` (or
    /// `/tmp/strata-<uid>-data` where that cannot be created), named by a
    /// hash of the canonical project path. That place is recorded in
    /// `.strata/pg-location`, so the project keeps its cluster even if it
    /// is moved or made reachable later. Decides only; creates nothing.
    pub fn for_project(project_dir: &Path) -> Cluster {
        let project = fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
        let strata_dir = project.join(".strata");
        let local = strata_dir.join("pg");
        let location_file = strata_dir.join(LOCATION_FILE);
        let root = if local.join("cluster.json").is_file() {
            local
        } else if let Some(recorded) = read_location(&location_file) {
            recorded
        } else {
            match server_owner() {
                Ok(Some(owner)) if check_reachable(&local, Some(owner)).is_err() => {
                    external_root(&project)
                }
                _ => local,
            }
        };
        Cluster {
            root,
            lock: strata_dir.join("pg.lock"),
            location_file: Some(location_file),
            settings: Vec::new(),
            database: PROJECT_DATABASE.to_owned(),
            binaries: None,
        }
    }

    pub(crate) fn with_settings(
        root: PathBuf,
        settings: Vec<(String, String)>,
        database: &str,
    ) -> Cluster {
        Cluster {
            lock: root.with_extension("lock"),
            root,
            location_file: None,
            settings,
            database: database.to_owned(),
            binaries: None,
        }
    }

    /// Creates the cluster with these binaries rather than the newest.
    pub(crate) fn with_binaries(mut self, binaries: Binaries) -> Cluster {
        self.binaries = Some(binaries);
        self
    }

    /// True when the cluster lives outside `.strata/pg` (see `for_project`).
    fn is_external(&self) -> bool {
        self.location_file
            .as_ref()
            .and_then(|f| f.parent())
            .is_some_and(|strata_dir| self.root != strata_dir.join("pg"))
    }

    /// The directory holding the data directory, log and state.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn state_file(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn read_state(&self) -> Option<State> {
        let text = fs::read_to_string(self.state_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the cluster exists and runs. Cheap: reads two small files
    /// and probes the pid, spawns nothing.
    pub fn state(&self) -> ClusterState {
        let Some(state) = self.read_state() else {
            return ClusterState::Missing;
        };
        if !self.data_dir().join("PG_VERSION").is_file() {
            return ClusterState::Missing;
        }
        match postmaster_pid(&self.data_dir()) {
            Some(pid) => ClusterState::Running {
                pid,
                port: state.port,
                socket_dir: state.socket_dir,
            },
            None => ClusterState::Stopped,
        }
    }

    /// A libpq `key=value` string for the cluster's database over the
    /// private socket (no password needed: only the server's OS user and
    /// root can enter the socket directory).
    pub fn conninfo(&self) -> Option<String> {
        let state = self.read_state()?;
        Some(format!(
            "host={} port={} user={SUPERUSER} dbname={}",
            state.socket_dir.display(),
            state.port,
            self.database
        ))
    }

    /// The same as a URL, for tools such as psql.
    pub fn url(&self) -> Option<String> {
        let state = self.read_state()?;
        Some(format!(
            "postgresql://{SUPERUSER}@/{}?host={}&port={}",
            self.database,
            state.socket_dir.display(),
            state.port
        ))
    }

    /// Creates the cluster if needed and starts it if stopped; returns its
    /// conninfo. Safe to call from many processes at once: a file lock
    /// serialises creation and start.
    pub fn ensure_running(&self) -> Result<String, LocalPgError> {
        if let ClusterState::Running { .. } = self.state() {
            if let Some(info) = self.conninfo() {
                return Ok(info);
            }
        }
        if let Some(parent) = self.lock.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| LocalPgError::io(format!("cannot create {}", parent.display()), e))?;
        }
        let _lock = FileLock::acquire(&self.lock)?;
        match self.state() {
            ClusterState::Running { .. } => {}
            ClusterState::Stopped => self.start_locked()?,
            ClusterState::Missing => {
                self.create_locked()?;
                self.start_locked()?;
                self.create_database()?;
            }
        }
        self.conninfo()
            .ok_or_else(|| LocalPgError::Missing(self.root.clone()))
    }

    fn create_locked(&self) -> Result<(), LocalPgError> {
        let bin = match &self.binaries {
            Some(b) => b.clone(),
            None => Binaries::find()?,
        };
        let owner = server_owner()?;
        let data = self.data_dir();
        if data.exists() {
            // A half-created cluster from an interrupted initdb.
            fs::remove_dir_all(&data)
                .map_err(|e| LocalPgError::io(format!("cannot remove {}", data.display()), e))?;
        }
        if self.is_external() {
            prepare_external_root(&self.root, owner)?;
            if let Some(file) = &self.location_file {
                fs::write(file, format!("{}\n", self.root.display()))
                    .map_err(|e| LocalPgError::io(format!("cannot write {}", file.display()), e))?;
            }
        }
        fs::create_dir_all(&self.root)
            .map_err(|e| LocalPgError::io("cannot create cluster directory", e))?;
        check_reachable(&self.root, owner)?;
        chown(&self.root, owner)?;
        let mut cmd = tool(&bin, "initdb", owner);
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]);
        run(cmd, "initdb")?;
        let state = State {
            port: free_port()?,
            socket_dir: socket_dir_for(&self.root),
            bindir: bin.bindir.clone(),
            major: bin.major,
        };
        self.write_state(&state)
    }

    fn write_state(&self, state: &State) -> Result<(), LocalPgError> {
        let text = serde_json::to_string_pretty(state).expect("invariant: State serialises");
        fs::write(self.state_file(), text)
            .map_err(|e| LocalPgError::io("cannot write cluster.json", e))
    }

    /// The binaries, socket directory and port of a created cluster.
    pub(super) fn endpoint(&self) -> Option<(Binaries, PathBuf, u16)> {
        self.read_state().map(|s| {
            (
                Binaries {
                    bindir: s.bindir,
                    major: s.major,
                },
                s.socket_dir,
                s.port,
            )
        })
    }

    /// Starts a created cluster.
    pub fn start(&self) -> Result<(), LocalPgError> {
        let _lock = FileLock::acquire(&self.lock)?;
        match self.state() {
            ClusterState::Missing => Err(LocalPgError::Missing(self.root.clone())),
            ClusterState::Running { .. } => Ok(()),
            ClusterState::Stopped => self.start_locked(),
        }
    }

    fn start_locked(&self) -> Result<(), LocalPgError> {
        let mut state = self
            .read_state()
            .ok_or_else(|| LocalPgError::Missing(self.root.clone()))?;
        let bin = Binaries {
            bindir: state.bindir.clone(),
            major: state.major,
        };
        let owner = server_owner()?;
        prepare_socket_dir(&state.socket_dir, owner)?;
        let mut last_error = None;
        for attempt in 0..3 {
            if attempt > 0 || !port_is_free(state.port) {
                state.port = free_port()?;
                self.write_state(&state)?;
            }
            let mut options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                state.port,
                state.socket_dir.display()
            );
            for (k, v) in &self.settings {
                options.push_str(&format!(" -c {k}={v}"));
            }
            let mut cmd = tool(&bin, "pg_ctl", owner);
            cmd.arg("start")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-s", "-o", &options]);
            match run(cmd, "pg_ctl start") {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let log = fs::read_to_string(self.log_file()).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    let in_use = log.contains("Address already in use");
                    last_error = Some(LocalPgError::Failed {
                        step: "pg_ctl start".into(),
                        output: format!(
                            "{e}\nlast lines of {}:\n{}",
                            self.log_file().display(),
                            tail.join("\n")
                        ),
                    });
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_error.expect("invariant: the loop ran at least once"))
    }

    fn create_database(&self) -> Result<(), LocalPgError> {
        if self.database == "postgres" {
            return Ok(()); // initdb creates it
        }
        let state = self
            .read_state()
            .ok_or_else(|| LocalPgError::Missing(self.root.clone()))?;
        let bin = Binaries {
            bindir: state.bindir.clone(),
            major: state.major,
        };
        let mut cmd = tool(&bin, "createdb", server_owner()?);
        cmd.arg("-h").arg(&state.socket_dir).args([
            "-p",
            &state.port.to_string(),
            "-U",
            SUPERUSER,
            &self.database,
        ]);
        run(cmd, "createdb")
    }

    /// Stops the cluster (fast shutdown). Returns false if it was not running.
    pub fn stop(&self) -> Result<bool, LocalPgError> {
        let ClusterState::Running { .. } = self.state() else {
            return Ok(false);
        };
        let state = self
            .read_state()
            .ok_or_else(|| LocalPgError::Missing(self.root.clone()))?;
        let bin = Binaries {
            bindir: state.bindir,
            major: state.major,
        };
        let mut cmd = tool(&bin, "pg_ctl", server_owner()?);
        cmd.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-s"]);
        run(cmd, "pg_ctl stop")?;
        Ok(true)
    }

    /// Stops the cluster and deletes all its files.
    pub fn destroy(&self) -> Result<bool, LocalPgError> {
        let recorded = self.location_file.as_ref().is_some_and(|f| f.is_file());
        if self.state() == ClusterState::Missing && !self.root.exists() && !recorded {
            return Ok(false);
        }
        if let ClusterState::Running { pid, .. } = self.state() {
            if self.stop().is_err() {
                // Immediate shutdown as a last resort.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGQUIT,
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        if let Some(state) = self.read_state() {
            let _ = fs::remove_dir_all(&state.socket_dir);
        }
        match fs::remove_dir_all(&self.root) {
            Ok(()) => {}
            // An external directory already gone (a cleared /tmp): only
            // the record is left to remove.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LocalPgError::io(
                    format!("cannot remove {}", self.root.display()),
                    e,
                ))
            }
        }
        if let Some(file) = &self.location_file {
            let _ = fs::remove_file(file);
        }
        let _ = fs::remove_file(&self.lock);
        Ok(true)
    }

    /// The server log, for error messages.
    pub fn log_path(&self) -> PathBuf {
        self.log_file()
    }
}

/// The places a cluster may be kept outside its project: under the
/// system's state directory, or in a private directory under /tmp where
/// that cannot be created (a read-only /var). `$XDG_STATE_HOME` is no
/// option: it lies in the home directory the server cannot enter.
fn external_bases() -> [PathBuf; 2] {
    [
        PathBuf::from("/var/lib/strata"),
        PathBuf::from(format!("/tmp/strata-{}-data", nix::unistd::geteuid())),
    ]
}

/// The per-project directory outside the project: the first base that
/// exists or can be created, plus a hash of the canonical project path.
fn external_root(project: &Path) -> PathBuf {
    let sum = crate::source::checksum(&project.to_string_lossy());
    let name = &sum[..16.min(sum.len())];
    let [state, tmp] = external_bases();
    let usable = state.is_dir()
        || state
            .parent()
            .is_some_and(|p| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok());
    if usable { state } else { tmp }.join(name)
}

/// The recorded location, accepted only when it is one Strata chooses (a
/// hex name directly under one of `external_bases`): `destroy` deletes it,
/// so an edited record must never point anywhere else.
fn read_location(file: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(file).ok()?;
    let path = PathBuf::from(text.trim());
    let name = path.file_name()?.to_str()?;
    let ours = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_hexdigit())
        && external_bases()
            .iter()
            .any(|b| path.parent() == Some(b.as_path()));
    ours.then_some(path)
}

/// Creates the base directory (owned by the current user, passable by
/// everyone, mode 0711, so the server's user can reach its own directory
/// inside without listing the others) and the cluster directory (owned by
/// the server's user, mode 0700). A base under /tmp that someone else
/// created, or a symlink, is refused.
fn prepare_external_root(root: &Path, owner: Option<(Uid, Gid)>) -> Result<(), LocalPgError> {
    use std::os::unix::fs::MetadataExt;
    if let Some(base) = root.parent() {
        if !base.is_dir() {
            fs::create_dir_all(base)
                .map_err(|e| LocalPgError::io(format!("cannot create {}", base.display()), e))?;
            fs::set_permissions(base, fs::Permissions::from_mode(0o711))
                .map_err(|e| LocalPgError::io(format!("cannot chmod {}", base.display()), e))?;
        }
        let meta = fs::symlink_metadata(base)
            .map_err(|e| LocalPgError::io(format!("cannot read {}", base.display()), e))?;
        if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(LocalPgError::io(
                format!("{} is not a directory of the current user", base.display()),
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
    }
    fs::create_dir_all(root)
        .map_err(|e| LocalPgError::io(format!("cannot create {}", root.display()), e))?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o700))
        .map_err(|e| LocalPgError::io(format!("cannot chmod {}", root.display()), e))?;
    chown(root, owner)
}

/// When the server runs as another OS user (root runs it as `postgres`),
/// every directory above the cluster must let that user through.
fn check_reachable(root: &Path, owner: Option<(Uid, Gid)>) -> Result<(), LocalPgError> {
    use std::os::unix::fs::MetadataExt;
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    for dir in canonical.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let mode = meta.mode();
        let passable = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !passable {
            return Err(LocalPgError::Unreachable {
                dir: dir.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// The postmaster pid if `postmaster.pid` exists and the process lives.
pub(super) fn postmaster_pid(data: &Path) -> Option<i32> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    Some(pid)
}

/// The OS user the server must run as: `None` for the current user, the
/// `postgres` user when running as root.
pub(super) fn server_owner() -> Result<Option<(Uid, Gid)>, LocalPgError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        _ => Err(LocalPgError::NoPostgresUser),
    }
}

pub(super) fn tool(bin: &Binaries, name: &str, owner: Option<(Uid, Gid)>) -> Command {
    let mut cmd = Command::new(bin.tool(name));
    if let Some((uid, gid)) = owner {
        // std drops supplementary groups when it changes the uid as root.
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
        // HOME of root is not readable by postgres; tools may look there.
        cmd.env("HOME", "/tmp");
        cmd.current_dir("/");
    }
    cmd.env("LC_ALL", "C");
    cmd
}

pub(super) fn run(mut cmd: Command, step: &str) -> Result<(), LocalPgError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| LocalPgError::io(format!("cannot run {step}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(LocalPgError::Failed {
        step: step.to_owned(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

pub(super) fn chown(path: &Path, owner: Option<(Uid, Gid)>) -> Result<(), LocalPgError> {
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(uid), Some(gid))
            .map_err(|e| LocalPgError::io(format!("cannot chown {}", path.display()), e.into()))?;
    }
    Ok(())
}

/// A private socket directory. Unix socket paths are limited to about 100
/// bytes, so it lives in /tmp under a name derived from the cluster path
/// rather than inside the (possibly deep) project directory.
pub(super) fn socket_dir_for(root: &Path) -> PathBuf {
    let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let sum = crate::source::checksum(&canonical.to_string_lossy());
    PathBuf::from(format!(
        "/tmp/strata-{}-{}",
        nix::unistd::geteuid(),
        &sum[..12]
    ))
}

pub(super) fn prepare_socket_dir(
    dir: &Path,
    owner: Option<(Uid, Gid)>,
) -> Result<(), LocalPgError> {
    fs::create_dir_all(dir)
        .map_err(|e| LocalPgError::io(format!("cannot create {}", dir.display()), e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| LocalPgError::io(format!("cannot chmod {}", dir.display()), e))?;
    chown(dir, owner)
}

pub(super) fn free_port() -> Result<u16, LocalPgError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LocalPgError::io("cannot find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| LocalPgError::io("cannot find a free port", e))
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// An exclusive `flock` held until dropped.
pub(super) struct FileLock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

impl FileLock {
    pub(super) fn acquire(path: &Path) -> Result<FileLock, LocalPgError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| LocalPgError::io(format!("cannot open {}", path.display()), e))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map(FileLock)
            .map_err(|(_, e)| LocalPgError::io(format!("cannot lock {}", path.display()), e.into()))
    }
}
