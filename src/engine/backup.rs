//! Backups before risky steps: deciding what a migration can lose, dumping
//! it with `pg_dump -Fc` before the migration runs, listing backups and
//! restoring them.
//!
//! What a migration can lose comes from the risk analysis: findings of the
//! data-loss rules ([`DATA_LOSS_RULES`]) name the tables involved. The
//! analysis runs with every rule on, whatever `[lint] disable` says, because
//! switching off a warning is no reason to lose the backup. A finding with
//! no table (DROP SCHEMA, ...) widens the backup to the whole database.
//!
//! A backup is `<backup_dir>/<UTC timestamp>_<version>.dump` (mode 0600,
//! in a 0700 directory) with a `.json` sidecar describing it, and an entry
//! in the event log. A failed backup stops the migration before it runs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::history::{Event, History};
use super::{EngineError, Project};
use crate::config::{BackupPolicy, Config};
use crate::db::{catalog, quote_ident, Connection, Target};
use crate::localpg::{ClientTools, DumpScope};
use crate::source::Migration;

/// Rules whose findings mean the statement destroys or overwrites data.
pub const DATA_LOSS_RULES: &[&str] = &[
    "ban-column-type-change",
    "ban-drop-column",
    "ban-drop-schema",
    "ban-drop-table",
    "ban-truncate",
    "ban-truncate-cascade",
    "ban-unbatched-update-delete",
];

/// What a migration needs backed up before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Tables named by data-loss findings (as written in the SQL).
    pub tables: BTreeSet<String>,
    /// The objects cannot be narrowed down: dump the whole database.
    pub whole_database: bool,
    /// Why, for messages and the sidecar: the rules that fired.
    pub reason: String,
}

/// A backup on disk, as described by its `.json` sidecar.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Backup {
    /// The dump file.
    pub file: PathBuf,
    /// When it was taken (UTC, RFC 3339).
    pub created_at: String,
    /// The migration it was taken before, if any (`version_name`).
    pub migration: Option<String>,
    /// Tables dumped; empty with `whole_database`.
    pub tables: Vec<String>,
    /// True when the whole database was dumped.
    pub whole_database: bool,
    /// Size of the dump in bytes.
    pub bytes: u64,
    /// The database, redacted.
    pub database: String,
    /// Why it was taken.
    pub reason: String,
}

/// What each migration at `indexes` needs backed up under the configured
/// policy, going up or (with `down`) reverting it. One analysis pass covers
/// all of them, so planning stays linear in the size of the directory.
/// `analysed` is the risk analysis of the same migrations going up, when
/// the caller has it: with no rules disabled or overridden it holds every
/// data-loss finding, and the pass is saved.
pub fn needs(
    project: &Project,
    indexes: &[usize],
    down: bool,
    analysed: Option<&crate::lint::LintReport>,
) -> HashMap<usize, Need> {
    let policy = project.config.backup;
    if policy == BackupPolicy::Never || indexes.is_empty() {
        return HashMap::new();
    }
    let lint = &project.config.lint;
    let reusable =
        analysed.filter(|_| !down && lint.disabled.is_empty() && lint.risk_overrides.is_empty());
    let mut found = match reusable {
        Some(report) => collect(by_migration(
            &project.migrations,
            indexes,
            report.findings.iter().cloned(),
        )),
        None => data_loss(&project.config, &project.migrations, indexes, down),
    };
    if policy == BackupPolicy::Always {
        for &i in indexes {
            found.entry(i).or_insert_with(|| Need {
                tables: BTreeSet::new(),
                whole_database: true,
                reason: "backup = \"always\"".into(),
            });
        }
    }
    found
}

fn data_loss(
    config: &Config,
    migrations: &[Migration],
    indexes: &[usize],
    down: bool,
) -> HashMap<usize, Need> {
    let mut opts = super::analyze::options(config);
    opts.disabled.clear();
    opts.risk_overrides.clear();
    let mut findings: Vec<(usize, crate::lint::Finding)> = Vec::new();
    if down {
        // A down script is analysed on its own: its tables count as
        // existing unless it creates them itself.
        for &i in indexes {
            let m = &migrations[i];
            let Some(script) = m.down.clone() else {
                continue;
            };
            let alone = [Migration {
                up: script,
                down: None,
                ..m.clone()
            }];
            let report = crate::lint::lint_migrations(&alone, &HashSet::from([0]), &opts);
            findings.extend(report.findings.into_iter().map(|f| (i, f)));
        }
    } else {
        let which: HashSet<usize> = indexes.iter().copied().collect();
        let report = crate::lint::lint_migrations(migrations, &which, &opts);
        findings = by_migration(migrations, indexes, report.findings.into_iter());
    }
    collect(findings)
}

/// Findings paired with the index of the migration whose up script they are in.
fn by_migration(
    migrations: &[Migration],
    indexes: &[usize],
    findings: impl Iterator<Item = crate::lint::Finding>,
) -> Vec<(usize, crate::lint::Finding)> {
    let by_path: HashMap<&Path, usize> = indexes
        .iter()
        .map(|&i| (migrations[i].up.path.as_path(), i))
        .collect();
    findings
        .filter_map(|f| Some((*by_path.get(f.file.as_path())?, f)))
        .collect()
}

/// Groups data-loss findings into one [`Need`] per migration.
fn collect(findings: Vec<(usize, crate::lint::Finding)>) -> HashMap<usize, Need> {
    let mut out: HashMap<usize, (Need, BTreeSet<&'static str>)> = HashMap::new();
    for (i, f) in findings
        .into_iter()
        .filter(|(_, f)| DATA_LOSS_RULES.contains(&f.rule))
    {
        let (need, rules) = out.entry(i).or_insert_with(|| {
            (
                Need {
                    tables: BTreeSet::new(),
                    whole_database: false,
                    reason: String::new(),
                },
                BTreeSet::new(),
            )
        });
        rules.insert(f.rule);
        match f.table {
            Some(t) => {
                need.tables.insert(t);
            }
            None => need.whole_database = true,
        }
    }
    out.into_iter()
        .map(|(i, (mut need, rules))| {
            need.reason = format!(
                "data loss ({})",
                rules.into_iter().collect::<Vec<_>>().join(", ")
            );
            (i, need)
        })
        .collect()
}

/// Takes a backup of `need` before `migration` (or a manual one), and
/// records it in the event log when `history` is given. Tables that do not
/// exist (yet) are skipped; `Ok(None)` when nothing is left to dump.
pub async fn take(
    config: &Config,
    target: &Target,
    conn: &Connection,
    history: Option<(&History, &str)>,
    need: &Need,
    migration: Option<&Migration>,
) -> Result<Option<Backup>, EngineError> {
    let label = migration.map(Migration::label);
    let what = if need.whole_database {
        "the whole database".to_owned()
    } else {
        need.tables.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let fail = |message: String, help: &str| EngineError::Backup {
        migration: label.clone(),
        what: what.clone(),
        message,
        help: help.to_owned(),
    };
    let tables = if need.whole_database {
        Vec::new()
    } else {
        let found =
            catalog::qualified_tables(conn, &need.tables.iter().cloned().collect::<Vec<_>>())
                .await?;
        if found.is_empty() {
            return Ok(None);
        }
        found
    };
    let tools = ClientTools::find(config.pg_bindir.as_deref()).map_err(|e| {
        fail(
            e.to_string(),
            "install the PostgreSQL client tools, set pg_bindir, or set backup = \"never\"",
        )
    })?;
    let server = catalog::server_version_num(conn).await? / 10_000;
    let dump_major = tools
        .pg_dump_major()
        .map_err(|e| fail(e.to_string(), "check pg_bindir"))?;
    if (dump_major as i32) < server {
        return Err(fail(
            format!("pg_dump {dump_major} is older than the server ({server}), and pg_dump cannot dump a newer server"),
            &format!("install the client tools of PostgreSQL {server} or newer (e.g. `apt-get install postgresql-client-{server}`) and point pg_bindir at them, or set backup = \"never\""),
        ));
    }
    let dir = &config.backup_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            fail(
                format!("cannot create {}: {e}", dir.display()),
                "check the directory's permissions, or set backup_dir",
            )
        })?;
    let now = chrono::Utc::now();
    let stem = format!(
        "{}_{}",
        now.format("%Y%m%d%H%M%S"),
        migration
            .map(|m| m.version.canonical())
            .unwrap_or_else(|| "manual".into())
    );
    let mut file = dir.join(format!("{stem}.dump"));
    let mut n = 2;
    while file.exists() {
        file = dir.join(format!("{stem}_{n}.dump"));
        n += 1;
    }
    let scope = DumpScope {
        tables: tables
            .iter()
            .map(|(s, t)| format!("{}.{}", quote_ident(s), quote_ident(t)))
            .collect(),
        schemas: Vec::new(),
    };
    let env = target.libpq_env();
    let path = file.clone();
    let bytes = tokio::task::spawn_blocking(move || tools.dump(&env, &scope, &path))
        .await
        .map_err(|e| fail(e.to_string(), "run it again"))?
        .map_err(|e| {
            fail(
                e.to_string(),
                "fix the cause above, or set backup = \"never\" to run without a backup",
            )
        })?;
    let backup = Backup {
        file: file.clone(),
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        migration: label.clone(),
        tables: tables.iter().map(|(s, t)| format!("{s}.{t}")).collect(),
        whole_database: need.whole_database,
        bytes,
        database: target.to_string(),
        reason: need.reason.clone(),
    };
    write_sidecar(&backup).map_err(|e| fail(e, "check the directory's permissions"))?;
    if let Some((history, actor)) = history {
        history.ensure(conn).await?;
        history
            .event(
                conn,
                actor,
                &Event {
                    action: "backup",
                    migration,
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({
                        "file": backup.file.display().to_string(),
                        "tables": backup.tables,
                        "whole_database": backup.whole_database,
                        "bytes": backup.bytes,
                        "reason": backup.reason,
                    }),
                },
            )
            .await?;
    }
    Ok(Some(backup))
}

fn sidecar(file: &Path) -> PathBuf {
    file.with_extension("json")
}

fn write_sidecar(backup: &Backup) -> Result<(), String> {
    use std::io::Write;
    let path = sidecar(&backup.file);
    let text = serde_json::to_string_pretty(backup).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Every backup in the configured directory, oldest first. A dump without
/// a readable sidecar is listed with what its file tells.
pub fn list(config: &Config) -> Vec<Backup> {
    let mut out: Vec<Backup> = std::fs::read_dir(&config.backup_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .map(|file| {
            std::fs::read_to_string(sidecar(&file))
                .ok()
                .and_then(|t| serde_json::from_str::<Backup>(&t).ok())
                .map(|b| Backup {
                    file: file.clone(),
                    ..b
                })
                .unwrap_or_else(|| Backup {
                    bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
                    file: file.clone(),
                    created_at: String::new(),
                    migration: None,
                    tables: Vec::new(),
                    whole_database: false,
                    database: String::new(),
                    reason: "no description (.json) next to the dump".into(),
                })
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Restores `file` (only `tables`, when given) into the target database in
/// one transaction; records the restore in the event log.
pub async fn restore(
    config: &Config,
    target: &Target,
    history: &History,
    file: &Path,
    tables: &[String],
) -> Result<(), EngineError> {
    let bad = |message: String| EngineError::BadBackup {
        path: file.to_path_buf(),
        message,
    };
    if !file.is_file() {
        return Err(bad("no such file".into()));
    }
    let tools = ClientTools::find(config.pg_bindir.as_deref())?;
    let contents = {
        let (tools, file) = (tools.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || tools.tables_in(&file))
            .await
            .map_err(|e| bad(e.to_string()))?
            .map_err(|e| bad(format!("not a pg_dump custom-format file ({e})")))?
    };
    for t in tables {
        let bare = t.rsplit('.').next().unwrap_or(t);
        if !contents
            .iter()
            .any(|c| c == t || c.rsplit('.').next() == Some(bare))
        {
            return Err(bad(format!(
                "it holds no table {t} (it holds: {})",
                if contents.is_empty() {
                    "no tables".to_owned()
                } else {
                    contents.join(", ")
                }
            )));
        }
    }
    let env = target.libpq_env();
    let (path, names) = (file.to_path_buf(), tables.to_vec());
    tokio::task::spawn_blocking(move || tools.restore(&env, &path, &names))
        .await
        .map_err(|e| bad(e.to_string()))??;
    let conn = target.connect().await?;
    history.ensure(&conn).await?;
    history
        .event(
            &conn,
            &super::os_actor(),
            &Event {
                action: "restore",
                migration: None,
                success: true,
                duration_ms: None,
                details: serde_json::json!({ "file": file.display().to_string(), "tables": tables }),
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;

    fn project(files: &[(&str, &str)], backup: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let mig = dir.path().join("migrations");
        std::fs::create_dir(&mig).unwrap();
        for (name, sql) in files {
            std::fs::write(mig.join(name), sql).unwrap();
        }
        std::fs::write(
            dir.path().join("strata.toml"),
            format!("backup = \"{backup}\"\n"),
        )
        .unwrap();
        let config = Config::resolve_with(&Flags::default(), &|_| None, dir.path()).unwrap();
        let project = Project::load(config).unwrap();
        (dir, project)
    }

    fn need(p: &Project, i: usize, down: bool) -> Option<Need> {
        needs(p, &[i], down, None).remove(&i)
    }

    const FILES: &[(&str, &str)] = &[
        ("1_users.up.sql", "CREATE TABLE users (id int, email text);"),
        ("1_users.down.sql", "DROP TABLE users;"),
        ("2_add.up.sql", "ALTER TABLE users ADD COLUMN nick text;"),
        ("2_add.down.sql", "ALTER TABLE users DROP COLUMN nick;"),
        (
            "3_drop.up.sql",
            "ALTER TABLE users DROP COLUMN email;\nTRUNCATE audit;",
        ),
        ("4_new.up.sql", "CREATE TABLE t (a int);\nDROP TABLE t;"),
        ("5_schema.up.sql", "DROP SCHEMA old CASCADE;"),
    ];

    #[test]
    fn data_loss_names_the_tables() {
        let (_d, p) = project(FILES, "auto");
        let need = need(&p, 2, false).expect("drop column and truncate lose data");
        assert_eq!(
            need.tables.iter().cloned().collect::<Vec<_>>(),
            ["audit", "users"]
        );
        assert!(!need.whole_database);
        assert!(need.reason.contains("ban-drop-column"), "{}", need.reason);
    }

    #[test]
    fn additive_changes_and_new_tables_need_nothing() {
        let (_d, p) = project(FILES, "auto");
        assert_eq!(need(&p, 0, false), None);
        assert_eq!(need(&p, 1, false), None);
        assert_eq!(
            need(&p, 3, false),
            None,
            "a table created in the same migration holds no data"
        );
    }

    #[test]
    fn down_scripts_that_drop_are_backed_up() {
        let (_d, p) = project(FILES, "auto");
        assert_eq!(
            need(&p, 0, true)
                .unwrap()
                .tables
                .into_iter()
                .collect::<Vec<_>>(),
            ["users"]
        );
        assert_eq!(
            need(&p, 1, true)
                .unwrap()
                .tables
                .into_iter()
                .collect::<Vec<_>>(),
            ["users"]
        );
    }

    #[test]
    fn unnamed_objects_widen_to_the_whole_database() {
        let (_d, p) = project(FILES, "auto");
        assert!(need(&p, 4, false).unwrap().whole_database);
    }

    #[test]
    fn reuses_the_risk_analysis_when_nothing_is_disabled() {
        let (_d, p) = project(FILES, "auto");
        let opts = crate::engine::analyze::options(&p.config);
        let report = crate::lint::lint_migrations(&p.migrations, &HashSet::from([2, 4]), &opts);
        assert_eq!(
            needs(&p, &[2, 4], false, Some(&report)),
            needs(&p, &[2, 4], false, None)
        );
    }

    #[test]
    fn policy_always_and_never() {
        let (_d, p) = project(FILES, "always");
        assert!(need(&p, 0, false).unwrap().whole_database);
        let (_d, p) = project(FILES, "never");
        assert_eq!(need(&p, 2, false), None);
    }
}
