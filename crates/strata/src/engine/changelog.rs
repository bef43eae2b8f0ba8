//! `strata changelog`: what each migration does, when and by whom it was
//! applied, whether it can be reverted, and how risky it is, gathered from
//! the files, the history table and the event log.
//!
//! The result is plain data ([`Changelog`]); `report::changelog` renders it
//! as markdown. Everything in it is a function of the files and the
//! database's history, never of the time it is gathered, so generating it
//! twice gives the same text (the file can be committed and checked in CI).
//! The risk class is the offline analysis of the file alone (no table
//! sizes): table sizes change from day to day, a file's risk does not.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::plan::{self, MigrationState};
use super::{EngineError, Project};
use crate::config::Config;
use crate::db::{quote_ident, Connection, Target};
use crate::lint::{self, Risk};
use crate::localpg::{Cluster, ClusterState};
use crate::source::{self, Format, Migration, MigrationKind};

/// The changelog of a migration directory.
#[derive(Debug, Clone)]
pub struct Changelog {
    /// The layout of the directory.
    pub format: Format,
    /// The migrations directory, relative to the project when it is inside.
    pub dir: String,
    /// The database whose history was read (`` `dbname` on `server` ``), or
    /// `None` when the changelog comes from the files only.
    pub database: Option<String>,
    /// Every migration, newest first (repeatable ones before versioned ones,
    /// as they run last).
    pub entries: Vec<Entry>,
}

/// One migration of the changelog.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The version as written in the file name (canonical when the file is
    /// missing); `None` for repeatable migrations.
    pub version: Option<String>,
    /// The migration's name.
    pub name: String,
    /// The first comment paragraph of the up script.
    pub description: Option<String>,
    /// Whether a down script exists; `None` when the file is missing.
    pub has_down: Option<bool>,
    /// The highest unacknowledged finding, and the rules at that level.
    pub risk: Option<(Risk, Vec<&'static str>)>,
    /// What the database says; `None` without a database.
    pub applied: Option<Applied>,
}

/// The state of a migration in the database, with who and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied (`how`: `up`, `baseline`, `adopt`, …, the action of the
    /// event that applied it); `changed` when the file changed since, and
    /// `missing` when the file is gone.
    Yes {
        /// When.
        at: DateTime<Utc>,
        /// Database user, OS user and host.
        by: String,
        /// The event that applied it.
        how: String,
        /// The file changed since it was applied.
        changed: bool,
        /// The file is gone.
        missing: bool,
    },
    /// Not applied; `reverted` holds when and by whom it was last reverted.
    No {
        /// The last successful `down`, if any.
        reverted: Option<(DateTime<Utc>, String)>,
    },
    /// Stopped part way (up or down), with where.
    Partial {
        /// When the attempt started.
        at: DateTime<Utc>,
        /// Who ran it.
        by: String,
        /// Where it stopped.
        detail: String,
    },
}

/// The database a changelog reads: the configured one, or else the managed
/// local cluster when it exists (started if stopped, as `status` does). A
/// changelog never creates a cluster: without either, it comes from the
/// files alone.
pub fn target(config: &Config) -> Result<Option<Target>, EngineError> {
    if config.database.is_none()
        && Cluster::for_project(&config.project_dir).state() == ClusterState::Missing
    {
        return Ok(None);
    }
    super::resolve_target(config).map(Some)
}

/// Gathers the changelog; with `target`, the applied state comes from that
/// database (read only: nothing is written, no lock is taken).
pub async fn changelog(
    project: &Project,
    target: Option<&Target>,
) -> Result<Changelog, EngineError> {
    let (statuses, events, database) = match target {
        Some(target) => {
            let conn = target.connect().await?;
            let rows = project.history().read(&conn).await?;
            let events = last_events(project, &conn).await?;
            let dbname = target.dbname().unwrap_or("(default database)");
            // The local cluster's socket directory and port change when it
            // is recreated; its name says enough and keeps the text stable.
            let database = match project.config.database {
                Some(_) => format!("`{dbname}` on `{}`", target.server_key()),
                None => format!("`{dbname}` of the managed local cluster"),
            };
            (Some(project.statuses(&rows)), events, Some(database))
        }
        None => (None, HashMap::new(), None),
    };
    let risks = risks(project)?;
    let mut entries = Vec::new();
    match statuses {
        Some(statuses) => {
            for s in statuses {
                let m = s.index.and_then(|i| project.migrations.get(i));
                let key = (
                    s.kind.as_str(),
                    m.map(|m| m.version.canonical())
                        .unwrap_or_else(|| s.version.clone()),
                );
                let last = events.get(&(key.0.to_owned(), key.1.clone()));
                let applied = applied(&s, last);
                entries.push(match m {
                    Some(m) => entry(m, &risks, Some(applied)),
                    None => Entry {
                        version: (s.kind != MigrationKind::Repeatable).then(|| s.version.clone()),
                        name: s.name.clone(),
                        description: None,
                        has_down: None,
                        risk: None,
                        applied: Some(applied),
                    },
                });
            }
        }
        None => {
            for m in &project.migrations {
                entries.push(entry(m, &risks, None));
            }
        }
    }
    entries.reverse();
    let dir = project
        .config
        .dir
        .strip_prefix(&project.config.project_dir)
        .unwrap_or(&project.config.dir)
        .display()
        .to_string();
    Ok(Changelog {
        format: project.format,
        dir,
        database,
        entries,
    })
}

fn entry(
    m: &Migration,
    risks: &HashMap<std::path::PathBuf, (Risk, Vec<&'static str>)>,
    applied: Option<Applied>,
) -> Entry {
    Entry {
        version: (m.kind != MigrationKind::Repeatable).then(|| m.version.to_string()),
        name: m.name.clone(),
        description: description(m),
        has_down: Some(m.down.is_some()),
        risk: risks.get(&m.up.path).cloned(),
        applied,
    }
}

/// The state of one migration, from its status and its latest event.
fn applied(s: &plan::MigrationStatus, last: Option<&(String, DateTime<Utc>, String)>) -> Applied {
    let Some(r) = s.row.as_deref() else {
        return Applied::No {
            reverted: last
                .filter(|(action, _, _)| action == "down")
                .map(|(_, at, by)| (*at, by.clone())),
        };
    };
    match s.state {
        MigrationState::Failed | MigrationState::Reverting => Applied::Partial {
            at: r.applied_at,
            by: r.applied_by.clone(),
            detail: s.detail.clone().unwrap_or_default(),
        },
        // Pending with a row: a repeatable migration changed since it ran.
        state => Applied::Yes {
            at: r.applied_at,
            by: r.applied_by.clone(),
            how: match last.map(|(action, _, _)| action.as_str()) {
                Some(action @ ("baseline" | "adopt")) => action.to_owned(),
                _ => "up".to_owned(),
            },
            changed: matches!(state, MigrationState::Modified | MigrationState::Pending),
            missing: state == MigrationState::Missing,
        },
    }
}

/// The newest successful event that applied or reverted each migration:
/// (kind, canonical version) → (action, at, actor).
async fn last_events(
    project: &Project,
    conn: &Connection,
) -> Result<HashMap<(String, String), (String, DateTime<Utc>, String)>, EngineError> {
    let events = format!(
        "{}.{}",
        quote_ident(&project.config.history_schema),
        quote_ident("strata_events")
    );
    let exists = crate::db::catalog::relation_exists(conn, &events).await?;
    if !exists {
        return Ok(HashMap::new());
    }
    let rows = conn
        .query(
            &format!(
                "SELECT kind, version, action, at, actor FROM {events}
                 WHERE success AND kind IS NOT NULL AND version IS NOT NULL
                   AND action IN ('up', 'resume', 'down', 'baseline', 'adopt')
                 ORDER BY id"
            ),
            &[],
        )
        .await?;
    let mut last = HashMap::new();
    for r in rows {
        last.insert(
            (r.get::<_, String>(0), r.get::<_, String>(1)),
            (r.get::<_, String>(2), r.get(3), r.get::<_, String>(4)),
        );
    }
    Ok(last)
}

/// The highest unacknowledged finding of each up file, from the offline
/// analysis of the whole directory (later files see earlier ones' schema).
fn risks(project: &Project) -> Result<Risks, EngineError> {
    let all: HashSet<usize> = (0..project.migrations.len()).collect();
    let options = super::analyze::options(&project.config);
    let report =
        lint::lint_migrations(&project.migrations, &all, &options).map_err(EngineError::Reread)?;
    let mut out: HashMap<std::path::PathBuf, (Risk, Vec<&'static str>)> = HashMap::new();
    for f in report.active() {
        let slot = out.entry(f.file.clone()).or_insert((f.risk, Vec::new()));
        if f.risk > slot.0 {
            *slot = (f.risk, Vec::new());
        }
        if f.risk == slot.0 && !slot.1.contains(&f.rule) {
            slot.1.push(f.rule);
        }
    }
    for (_, rules) in out.values_mut() {
        rules.sort_unstable();
    }
    Ok(out)
}

/// Each up file's highest risk and the rules that gave it.
type Risks = HashMap<std::path::PathBuf, (Risk, Vec<&'static str>)>;

/// The first paragraph of comment lines at the top of the up script
/// (`--` lines up to the first blank line or statement), without tool
/// directives (`-- strata:…`, `-- +goose …`, sqlx's `-- no-transaction`,
/// dbmate's `-- migrate:…`). For a goose file the lines above
/// `-- +goose Up` count too.
pub fn description(m: &Migration) -> Option<String> {
    let mut text = String::new();
    if m.up.first_line > 1 {
        if let Ok(file) = source::read_text(&m.up.path) {
            for line in file.lines().take(m.up.first_line - 1) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    // A file that can no longer be read has no description here (the
    // changelog's risk analysis reports it).
    text.push_str(m.up.load().ok()?.text());
    header_paragraph(&text)
}

fn header_paragraph(text: &str) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let comment = comment.trim();
        let directive = comment.starts_with("strata:")
            || comment.starts_with("+goose")
            || comment.starts_with("migrate:")
            || comment == "no-transaction";
        if directive {
            continue;
        }
        lines.push(comment.to_owned());
    }
    // A bare `--` line separates paragraphs too.
    let end = lines
        .iter()
        .position(String::is_empty)
        .unwrap_or(lines.len());
    let text = lines[..end].join(" ");
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::{description, header_paragraph};

    #[test]
    fn goose_description_may_sit_above_the_up_annotation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1_a.sql"),
            "-- +goose NO TRANSACTION\n-- Adds a.\n-- +goose Up\nSELECT 1;\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("2_b.sql"),
            "-- +goose Up\n-- Adds b.\nSELECT 1;\n-- +goose Down\nSELECT 2;\n",
        )
        .unwrap();
        let loaded = crate::source::load(dir.path(), None);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let found: Vec<_> = loaded.migrations.iter().map(description).collect();
        assert_eq!(
            found,
            [Some("Adds a.".to_owned()), Some("Adds b.".to_owned())]
        );
    }

    #[test]
    fn description_is_the_first_comment_paragraph_without_directives() {
        assert_eq!(
            header_paragraph(
                "-- no-transaction\n-- strata:no-transaction\n\n-- Adds the users table,\n--   for sign-up.\n\n-- More notes.\nCREATE TABLE t ();\n"
            )
            .as_deref(),
            Some("Adds the users table, for sign-up.")
        );
        assert_eq!(
            header_paragraph(
                "-- +goose NO TRANSACTION\n-- +goose Up\n-- One.\n--\n-- Two.\nSELECT 1;"
            )
            .as_deref(),
            Some("One.")
        );
        assert_eq!(header_paragraph("SELECT 1; -- no\n-- late comment"), None);
        assert_eq!(header_paragraph(""), None);
    }
}
