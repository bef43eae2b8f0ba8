//! The client tools `pg_dump` and `pg_restore`, for backups.
//!
//! Connection settings reach the tools as libpq environment variables (see
//! `db::Target::libpq_env`), never as arguments, so a password never shows
//! in the process list or in an error message.
//!
//! An interrupted backup leaves nothing running and nothing that looks like
//! a backup: every tool is started with `PR_SET_PDEATHSIG` = SIGKILL, so
//! it dies with Strata even when Strata is killed with SIGKILL (a child
//! does not die with its parent by itself, and a signal to our process
//! group would not reach it if it had its own); the dump is written to
//! `<file>.partial` under an exclusive `flock` that pg_dump's own file
//! descriptor keeps held for as long as pg_dump lives, and
//! [`remove_stale_partials`] removes the partial files whose lock is free
//! (their writer is gone) at the next backup.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Binaries, LocalPgError};

mod schema;

/// SQL a restore runs in its transaction before and after the dump's own
/// script (see `engine::backup`): what a table-level dump leaves out.
#[derive(Debug, Clone, Default)]
pub struct Around {
    /// Runs first.
    pub before: String,
    /// Runs last.
    pub after: String,
}

impl Around {
    fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// `pg_dump` and `pg_restore` from one directory (or from `PATH`).
#[derive(Debug, Clone)]
pub struct ClientTools {
    pg_dump: PathBuf,
    pg_restore: PathBuf,
    /// Only needed to restore into a server older than `pg_restore`.
    psql: Option<PathBuf>,
}

/// What to dump.
#[derive(Debug, Clone, Default)]
pub struct DumpScope {
    /// Schema-qualified tables (`--table`); with no tables and no schemas,
    /// the whole database.
    pub tables: Vec<String>,
    /// Whole schemas (`--schema`).
    pub schemas: Vec<String>,
}

impl ClientTools {
    /// Finds the tools: in `bindir` when configured, else next to the
    /// newest PostgreSQL server binaries, else on `PATH`.
    pub fn find(bindir: Option<&Path>) -> Result<ClientTools, LocalPgError> {
        let dir = match bindir {
            Some(dir) => Some(dir.to_path_buf()),
            None => Binaries::find()
                .ok()
                .map(|b| b.bindir)
                .filter(|d| d.join("pg_dump").is_file()),
        };
        let tool = |name: &str| -> Result<PathBuf, LocalPgError> {
            match &dir {
                Some(dir) => {
                    let path = dir.join(name);
                    if path.is_file() {
                        Ok(path)
                    } else {
                        Err(LocalPgError::NoClientTool {
                            tool: name.to_owned(),
                            looked: dir.display().to_string(),
                        })
                    }
                }
                None => super::binaries::which(name).ok_or_else(|| LocalPgError::NoClientTool {
                    tool: name.to_owned(),
                    looked: "PATH and /usr/lib/postgresql/*/bin".to_owned(),
                }),
            }
        };
        Ok(ClientTools {
            pg_dump: tool("pg_dump")?,
            pg_restore: tool("pg_restore")?,
            psql: tool("psql").ok(),
        })
    }

    /// The major version of `pg_dump`, so that the caller can refuse a
    /// pg_dump older than the server before it starts.
    pub fn pg_dump_major(&self) -> Result<u32, LocalPgError> {
        super::binaries::major_version(&self.pg_dump)
    }

    /// Dumps `scope` in the custom format (`-Fc`) to `out`, created with
    /// mode 0600 because a dump holds the data itself. The dump is written
    /// to `<out>.partial` and renamed when pg_dump succeeds, so a failed
    /// dump never looks like a backup. Returns the size in bytes.
    pub fn dump(
        &self,
        env: &[(&'static str, String)],
        scope: &DumpScope,
        out: &Path,
    ) -> Result<u64, LocalPgError> {
        let partial = out.with_extension("dump.partial");
        // create_new: never truncate a partial file another backup writes.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| LocalPgError::io(format!("cannot create {}", partial.display()), e))?;
        // The lock belongs to the open file, which pg_dump's stdout shares:
        // it stays held while pg_dump runs, even if we are killed.
        let lock = file
            .try_clone()
            .map_err(|e| LocalPgError::io(format!("cannot open {}", partial.display()), e))
            .and_then(|f| {
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
                    |(_, e)| {
                        LocalPgError::io(format!("cannot lock {}", partial.display()), e.into())
                    },
                )
            })?;
        let mut cmd = command(&self.pg_dump);
        cmd.arg("--format=custom").arg("--no-password");
        for t in &scope.tables {
            cmd.arg("--table").arg(t);
        }
        for s in &scope.schemas {
            cmd.arg("--schema").arg(s);
        }
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file));
        let result = run(cmd, "pg_dump");
        if let Err(e) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::rename(&partial, out)
            .map_err(|e| LocalPgError::io(format!("cannot rename {}", partial.display()), e))?;
        drop(lock);
        Ok(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
    }

    /// Restores `file` in one transaction (`--single-transaction
    /// --exit-on-error`: all or nothing), replacing the objects it holds
    /// (`--clean --if-exists`). With `tables`, only those tables.
    ///
    /// `server_major` is the major version of the server restored into.
    /// A `pg_restore` of 17 or later starts every session with `SET
    /// transaction_timeout = 0`, a setting older servers do not have, so
    /// the restore would fail before it began. For such a server the
    /// archive is turned into a script and fed to `psql` in one
    /// transaction, without that one line of the script's preamble.
    pub fn restore(
        &self,
        env: &[(&'static str, String)],
        file: &Path,
        tables: &[String],
        server_major: u32,
        around: &Around,
    ) -> Result<(), LocalPgError> {
        let dbname = env
            .iter()
            .find(|(k, _)| *k == "PGDATABASE")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        // Tables are chosen with a use-list rather than --table, which
        // leaves out the ATTACH PARTITION entries: restored that way,
        // partitions come back as unattached tables.
        let list = if tables.is_empty() {
            None
        } else {
            let listing = self.list(file)?;
            let chosen: String = listing
                .lines()
                .filter(|l| selected(l, tables))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut list = tempfile::NamedTempFile::new()
                .map_err(|e| LocalPgError::io("cannot create a restore list", e))?;
            std::io::Write::write_all(&mut list, chosen.as_bytes())
                .map_err(|e| LocalPgError::io("cannot write a restore list", e))?;
            Some(list)
        };
        let mut cmd = command(&self.pg_restore);
        cmd.args(["--clean", "--if-exists", "--no-owner", "--no-password"]);
        if let Some(list) = &list {
            cmd.arg("--use-list").arg(list.path());
        }
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null());
        // pg_restore runs its script alone; anything around it, and a
        // script for an older server, goes through psql in one transaction.
        let older_server = server_major < 17 && self.pg_restore_major().is_ok_and(|m| m >= 17);
        match (&self.psql, older_server || !around.is_empty()) {
            (None, _) if !around.is_empty() => Err(LocalPgError::Failed {
                step: "restore".into(),
                output: format!(
                    "psql was not found next to pg_restore ({}), and this restore must run SQL around the dump's script in one transaction (trigger functions the dump leaves out, or other tables' foreign keys into it)",
                    self.pg_restore.display()
                ),
            }),
            (Some(psql), true) => {
                cmd.arg("--file=-").arg(file);
                let mut psql_cmd = command(psql);
                psql_cmd
                    .args([
                        "--no-psqlrc",
                        "--quiet",
                        "--no-password",
                        "--single-transaction",
                        "--set=ON_ERROR_STOP=1",
                    ])
                    .arg("--dbname")
                    .arg(&dbname)
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .envs(env.iter().map(|(k, v)| (*k, v)))
                    .stdout(Stdio::null());
                pipe_script(cmd, psql_cmd, around)
            }
            _ => {
                cmd.args(["--single-transaction", "--exit-on-error"])
                    .arg("--dbname")
                    .arg(dbname)
                    .arg(file)
                    .stdout(Stdio::null());
                run(cmd, "pg_restore")
            }
        }
    }

    /// The major version of `pg_restore`.
    fn pg_restore_major(&self) -> Result<u32, LocalPgError> {
        super::binaries::major_version(&self.pg_restore)
    }

    /// The table of contents of a dump (`pg_restore --list`): the tables it
    /// holds data for.
    pub fn tables_in(&self, file: &Path) -> Result<Vec<String>, LocalPgError> {
        let listing = self.list(file)?;
        // "215; 1259 16390 TABLE public users postgres"
        Ok(listing
            .lines()
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let at = words.iter().position(|w| *w == "TABLE")?;
                let (schema, name) = (words.get(at + 1)?, words.get(at + 2)?);
                (*schema != "DATA").then(|| format!("{schema}.{name}"))
            })
            .collect())
    }

    /// The oids of the tables whose rows a dump holds: its `TABLE DATA`
    /// entries in `pg_restore --list` ("3401; 0 16390 TABLE DATA public
    /// users postgres": the third number is the table's oid). Read by oid,
    /// not by name, because names with spaces make the listing ambiguous.
    pub fn data_oids(&self, file: &Path) -> Result<HashSet<u32>, LocalPgError> {
        Ok(self
            .list(file)?
            .lines()
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (words.get(3..5) == Some(&["TABLE", "DATA"][..]))
                    .then(|| words.get(2)?.parse().ok())
                    .flatten()
            })
            .collect())
    }

    /// The DDL a dump would run (`pg_restore --schema-only --file=-`),
    /// for reading which tables are partitions or children of which.
    pub fn schema_script(&self, file: &Path) -> Result<String, LocalPgError> {
        let out = command(&self.pg_restore)
            .arg("--schema-only")
            .arg("--file=-")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LocalPgError::io("cannot run pg_restore --schema-only", e))?;
        if !out.status.success() {
            return Err(LocalPgError::Failed {
                step: format!("pg_restore --schema-only {}", file.display()),
                output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn list(&self, file: &Path) -> Result<String, LocalPgError> {
        let out = command(&self.pg_restore)
            .arg("--list")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LocalPgError::io("cannot run pg_restore --list", e))?;
        if !out.status.success() {
            return Err(LocalPgError::Failed {
                step: format!("pg_restore --list {}", file.display()),
                output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// True when a `pg_restore --list` line ("215; 1259 16390 TABLE public
/// users postgres") is the definition, the rows or the partition attachment
/// of one of `tables` (bare names).
fn selected(line: &str, tables: &[String]) -> bool {
    if line.starts_with(';') {
        return false;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.get(3) != Some(&"TABLE") || words.len() < 7 {
        return false;
    }
    let from = match words[4] {
        "DATA" | "ATTACH" => 6,
        _ => 5,
    };
    // The owner is the last word; a name may hold spaces.
    let name = words[from..words.len() - 1].join(" ");
    tables.contains(&name)
}

/// Removes the `*.partial` files in `dir` that no live pg_dump writes: the
/// leftovers of a backup whose Strata was killed. A partial file still
/// locked belongs to a backup in progress and stays. Returns the removed files.
pub fn remove_stale_partials(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for path in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "partial"))
    {
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        if let Ok(lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        {
            if std::fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
            drop(lock);
        }
    }
    removed
}

/// A command for a client tool that is killed when Strata dies, however it
/// dies (`PR_SET_PDEATHSIG`), so that a killed backup leaves no pg_dump
/// running. The signal follows the thread that spawned the tool; tools run
/// to completion on the thread that started them, so it cannot fire early.
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    let parent = nix::unistd::getpid();
    // SAFETY: prctl and getppid are async-signal-safe system calls, and the
    // closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            // Strata died before prctl took effect: stop here.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("strata exited"));
            }
            Ok(())
        });
    }
    cmd
}

/// Runs `pg_restore --file=-` into `psql`, dropping the preamble's `SET
/// transaction_timeout` (see [`ClientTools::restore`]). Only the preamble
/// is filtered: from the first line that is not a comment, a blank line, a
/// `SET` or a `set_config` call on, the script passes through untouched, so
/// table data can never be altered.
fn pipe_script(
    mut restore: Command,
    mut psql: Command,
    around: &Around,
) -> Result<(), LocalPgError> {
    use std::io::{BufRead, BufReader, Write};
    let mut producer = restore
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LocalPgError::io("cannot run pg_restore", e))?;
    let mut consumer = psql
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LocalPgError::io("cannot run psql", e))?;
    let (Some(script), Some(mut sink)) = (producer.stdout.take(), consumer.stdin.take()) else {
        return Err(LocalPgError::io(
            "cannot connect pg_restore to psql",
            std::io::Error::other("no pipe"),
        ));
    };
    // Both stderr pipes are drained on their own threads, so that neither
    // program can block on a full pipe while we wait for the other.
    let drain = |pipe: Option<std::process::ChildStderr>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let restore_err = drain(producer.stderr.take());
    let psql_err = drain(consumer.stderr.take());
    let mut copied = sink.write_all(around.before.as_bytes());
    let mut in_preamble = true;
    let mut reader = BufReader::new(script);
    let mut line = Vec::new();
    while copied.is_ok() {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                copied = Err(e);
                break;
            }
        }
        if in_preamble {
            let text = String::from_utf8_lossy(&line);
            let t = text.trim();
            if t == "SET transaction_timeout = 0;" {
                continue;
            }
            in_preamble = t.is_empty()
                || t.starts_with("--")
                || t.starts_with("\\restrict")
                || t.starts_with("SET ")
                || t.starts_with("SELECT pg_catalog.set_config(");
        }
        if let Err(e) = sink.write_all(&line) {
            copied = Err(e);
            break;
        }
    }
    if copied.is_ok() {
        copied = sink.write_all(around.after.as_bytes());
    }
    drop(sink);
    let restored = producer.wait();
    let applied = consumer.wait();
    let restore_err = restore_err.join().unwrap_or_default();
    let psql_err = psql_err.join().unwrap_or_default();
    let failed = |step: &str, output: &str| LocalPgError::Failed {
        step: step.to_owned(),
        output: crate::db::redact(output.trim()),
    };
    match restored {
        Ok(status) if status.success() => {}
        Ok(_) => return Err(failed("pg_restore", &restore_err)),
        Err(e) => return Err(LocalPgError::io("pg_restore did not finish", e)),
    }
    match applied {
        Ok(status) if status.success() => {}
        Ok(_) => return Err(failed("psql (restoring the pg_restore script)", &psql_err)),
        Err(e) => return Err(LocalPgError::io("psql did not finish", e)),
    }
    copied.map_err(|e| LocalPgError::io("cannot pass the restore script to psql", e))
}

fn run(mut cmd: Command, step: &str) -> Result<(), LocalPgError> {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LocalPgError::io(format!("cannot run {step}"), e))?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| LocalPgError::io(format!("{step} did not finish"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(LocalPgError::Failed {
            step: step.to_owned(),
            output: crate::db::redact(stderr.trim()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::selected;

    #[test]
    fn restore_lists_pick_tables_rows_and_attachments() {
        let t = vec!["orders".to_owned(), "my table".to_owned()];
        assert!(selected("215; 1259 16390 TABLE public orders postgres", &t));
        assert!(selected(
            "3401; 0 16390 TABLE DATA public orders postgres",
            &t
        ));
        assert!(selected(
            "3402; 0 0 TABLE ATTACH public orders postgres",
            &t
        ));
        assert!(selected(
            "216; 1259 16391 TABLE public my table postgres",
            &t
        ));
        assert!(!selected(
            "217; 1259 16392 INDEX public orders_pkey postgres",
            &t
        ));
        assert!(!selected(
            "218; 1259 16393 TABLE public orders_2 postgres",
            &t
        ));
        assert!(!selected(
            ";  215; 1259 16390 TABLE public orders postgres",
            &t
        ));
    }
}
