//! `strata repair`: accepts changed checksums, and explains (or, on
//! request, advances) migrations that stopped part way.
//!
//! Semantics, decided against what Flyway `repair` and golang-migrate
//! `force` users expect: those tools forget a failed migration's partial
//! state and leave the user to undo or redo it by hand. Strata knows exactly
//! which statements ran, so repair never forgets that: a failed or
//! interrupted migration keeps its progress, and the next `up` resumes at
//! the statement it stopped at. Nothing that ran runs again.
//! - When the statements that ran have changed in the file, repair refuses
//!   (as `up` does) and says to restore them: they ran, and a resume must
//!   not guess what the new text means.
//! - A killed run can leave a statement that commits on its own (a DO block
//!   with COMMIT, CREATE DATABASE, ...) finished but unrecorded, and the
//!   catalog cannot tell. `up` then refuses to guess, and the user says
//!   which it was: `--skip-statement VERSION` records that statement as done
//!   without running it (the counterpart of `force`), `--rerun-statement
//!   VERSION` lets the next `up` run it again.

use super::history::Event;
use super::lock::MigrationLock;
use super::plan::MigrationState;
use super::{apply, open, os_actor, plan, with_rewrites, EngineError, Project};
use crate::db::Target;

/// Options of `repair`.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// A migration that stopped part way whose next statement is to be
    /// recorded as done without running it.
    pub skip_statement: Option<String>,
    /// A migration interrupted at a statement that may or may not have
    /// taken effect, which the user has checked did not: the next `up` runs
    /// it again.
    pub rerun_statement: Option<String>,
}

/// Accepts changed checksums of applied migrations, and reports what the
/// next `up` does with each migration that stopped part way (its progress
/// is kept). Every change is recorded in the event log. Returns a
/// description of each.
pub async fn repair(
    project: &Project,
    target: &Target,
    options: &RepairOptions,
) -> Result<Vec<String>, EngineError> {
    let named = |v: &Option<String>| -> Result<Option<crate::source::Version>, EngineError> {
        let Some(v) = v.as_deref() else {
            return Ok(None);
        };
        let v = project.parse_version(v)?;
        if !project.migrations.iter().any(|m| m.version == v) {
            return Err(EngineError::UnknownVersion(v.to_string()));
        }
        Ok(Some(v))
    };
    let skip = named(&options.skip_statement)?;
    let rerun = named(&options.rerun_statement)?;
    let history = project.history();
    let conn = open(target).await?;
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    let statuses = plan::statuses(
        project.format,
        &project.migrations,
        &history.read(&conn).await?,
    );
    // Check everything before changing anything.
    let mut stopped = Vec::new();
    for s in &statuses {
        let (Some(i), Some(row)) = (s.index, s.row.as_ref()) else {
            continue;
        };
        if s.state != MigrationState::Failed {
            continue;
        }
        let m = &project.migrations[i];
        let (statements, _, _) = with_rewrites(project, m, apply::parse(&m.up)?);
        let done = row.statements_done.max(0) as usize;
        if done > statements.len()
            || row.done_checksum.as_deref() != Some(&apply::done_checksum(&statements, done))
        {
            return Err(EngineError::ResumeChanged {
                label: m.label(),
                done,
                total: statements.len(),
            });
        }
        if let Some(pid) = row.backend_pid.filter(|_| row.state == "running") {
            let alive = !conn
                .query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
                .await?
                .is_empty();
            if alive {
                return Err(EngineError::StillRunning {
                    label: m.label(),
                    pid,
                });
            }
        }
        stopped.push((i, row, statements, done));
    }
    for v in skip.iter().chain(rerun.iter()) {
        if !stopped
            .iter()
            .any(|(i, ..)| &project.migrations[*i].version == v)
        {
            let s = statuses
                .iter()
                .find(|s| s.index.is_some_and(|i| &project.migrations[i].version == v));
            return Err(EngineError::NothingToSkip {
                label: s
                    .and_then(|s| s.index)
                    .map(|i| project.migrations[i].label())
                    .unwrap_or_else(|| v.to_string()),
                state: s.map(|s| s.state.as_str()).unwrap_or("pending"),
            });
        }
    }
    let actor = os_actor();
    let mut actions = Vec::new();
    conn.batch("BEGIN").await?;
    for s in &statuses {
        let (Some(i), Some(row)) = (s.index, s.row.as_ref()) else {
            continue;
        };
        if s.state != MigrationState::Modified {
            continue;
        }
        let m = &project.migrations[i];
        history
            .set_checksum(&conn, &row.kind, &row.version, &m.checksum)
            .await?;
        history
            .event(
                &conn,
                &actor,
                &Event {
                    action: "repair",
                    migration: Some(m),
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({ "repair": "checksum", "old": row.checksum, "new": m.checksum }),
                },
            )
            .await?;
        actions.push(format!("accepted the changed checksum of {}", m.label()));
    }
    for (i, row, statements, done) in stopped {
        let m = &project.migrations[i];
        let how = if row.state == "running" {
            "was interrupted"
        } else {
            "stopped"
        };
        let total = statements.len();
        if skip.as_ref() == Some(&m.version) && done < total {
            let skipped = &statements[done];
            let now = done + 1;
            history
                .set_progress(
                    &conn,
                    m,
                    &row.state,
                    now as i32,
                    total as i32,
                    &apply::done_checksum(&statements, now),
                    &actor,
                    row.error.as_deref(),
                    None,
                )
                .await?;
            history
                .event(
                    &conn,
                    &actor,
                    &Event {
                        action: "repair",
                        migration: Some(m),
                        success: true,
                        duration_ms: None,
                        details: serde_json::json!({ "repair": "skip-statement", "statement": now, "sql": skipped.sql }),
                    },
                )
                .await?;
            actions.push(format!(
                "recorded statement {now} of {} ({}) as done without running it; {}",
                m.label(),
                skipped.summary(),
                next_up(&statements, now)
            ));
            continue;
        }
        if rerun.as_ref() == Some(&m.version) && done < total {
            let again = done + 1;
            if row.state == "running" {
                let note = format!(
                    "statement {again} did not take effect (strata repair --rerun-statement)"
                );
                history
                    .set_progress(
                        &conn,
                        m,
                        "failed",
                        done as i32,
                        total as i32,
                        &apply::done_checksum(&statements, done),
                        &actor,
                        Some(&note),
                        None,
                    )
                    .await?;
                history
                    .event(
                        &conn,
                        &actor,
                        &Event {
                            action: "repair",
                            migration: Some(m),
                            success: true,
                            duration_ms: None,
                            details: serde_json::json!({ "repair": "rerun-statement", "statement": again }),
                        },
                    )
                    .await?;
            }
            actions.push(format!(
                "{}: statement {again} ({}) runs again at the next `strata up`; statements 1 to {done} stay recorded as applied",
                m.label(),
                statements[done].summary()
            ));
            continue;
        }
        let at = if done >= total {
            "after its last statement".to_owned()
        } else {
            format!("at statement {} of {total}", done + 1)
        };
        actions.push(format!(
            "{} {how} {at}: {}; {}",
            m.label(),
            if done == 0 {
                "no statement had run".to_owned()
            } else {
                format!("statements 1 to {done} ran and stay recorded as applied")
            },
            next_up(&statements, done)
        ));
    }
    conn.batch("COMMIT").await?;
    lock.release().await?;
    Ok(actions)
}

/// What the next `up` does with a migration whose first `done` statements
/// are recorded.
fn next_up(statements: &[crate::sql::Statement], done: usize) -> String {
    match statements.get(done) {
        Some(next) => format!(
            "the next `strata up` resumes at statement {} ({})",
            done + 1,
            next.summary()
        ),
        None => "the next `strata up` records it as applied without running anything".to_owned(),
    }
}
