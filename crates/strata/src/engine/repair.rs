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
//! - A `down` outside a transaction that stopped part way (state
//!   `reverting`) is handled the same way, with `down` in place of `up`:
//!   its progress (the `down-progress` events) is kept, the same checks
//!   apply, and `--skip-statement`/`--rerun-statement` act on the statement
//!   of the down script it stopped at.

use super::analyze::Parsed;
use super::history::{Event, History};
use super::plan::MigrationState;
use super::{apply, open_locked, os_actor, with_rewrites, EngineError, Project};
use crate::db::{Connection, DbError, Target};
use crate::source::Migration;

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
    let (history, conn, lock, statuses) = open_locked(project, target).await?;
    // Check everything before changing anything.
    let mut stopped = Vec::new();
    for s in &statuses {
        let (Some(i), Some(row)) = (s.index, s.row.as_deref()) else {
            continue;
        };
        let m = &project.migrations[i];
        let (command, statements, state, done, checksum, pid, error) = match (s.state, &row.down) {
            (MigrationState::Failed, _) => {
                let (statements, _, _) = with_rewrites(m, Parsed::up(&project.config, i, m)?);
                (
                    "up",
                    statements,
                    row.state.clone(),
                    row.statements_done,
                    row.done_checksum.clone(),
                    row.backend_pid,
                    row.error.clone(),
                )
            }
            (MigrationState::Reverting, Some(d)) => {
                let Some(script) = m.down.as_ref() else {
                    return Err(EngineError::Irreversible {
                        label: m.label(),
                        reason:
                            "its down script stopped part way, and the file has no down script now"
                                .into(),
                        help: "restore the down script: the next `strata down` resumes it".into(),
                    });
                };
                (
                    "down",
                    apply::parse(script)?,
                    d.state.clone(),
                    d.done,
                    Some(d.done_checksum.clone()),
                    d.backend_pid,
                    d.error.clone(),
                )
            }
            _ => continue,
        };
        let done = done.max(0) as usize;
        if done > statements.len()
            || checksum.as_deref() != Some(&apply::done_checksum(&statements, done))
        {
            return Err(EngineError::ResumeChanged {
                label: m.label(),
                command,
                done,
                total: statements.len(),
            });
        }
        if let Some(pid) = pid.filter(|_| state == "running") {
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
        stopped.push(Stopped {
            index: i,
            command,
            state,
            error,
            statements,
            done,
        });
    }
    for v in skip.iter().chain(rerun.iter()) {
        if !stopped
            .iter()
            .any(|st| &project.migrations[st.index].version == v)
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
        let (Some(i), Some(row)) = (s.index, s.row.as_deref()) else {
            continue;
        };
        if s.state != MigrationState::Modified {
            continue;
        }
        let m = &project.migrations[i];
        history
            .set_checksum(&conn, &row.kind, &row.version, &m.checksum)
            .await?;
        record_repair(
            &history,
            &conn,
            &actor,
            m,
            serde_json::json!({ "repair": "checksum", "old": row.checksum, "new": m.checksum }),
        )
        .await?;
        actions.push(format!("accepted the changed checksum of {}", m.label()));
    }
    for Stopped {
        index,
        command,
        state,
        error,
        statements,
        done,
    } in stopped
    {
        let m = &project.migrations[index];
        let how = if state == "running" {
            "was interrupted"
        } else {
            "stopped"
        };
        let total = statements.len();
        // Records `done` statements as done (and the state), in the up
        // progress row or, for a down script, as a `down-progress` event.
        let record = |state: &'static str, now: usize, error: Option<String>| {
            let (conn, history, actor, statements) = (&conn, &history, &actor, &statements);
            async move {
                if command == "down" {
                    let progress = apply::down_progress(statements, state, now, None, error);
                    history.down_progress(conn, actor, m, &progress).await
                } else {
                    history
                        .set_progress(
                            conn,
                            m,
                            state,
                            now as i32,
                            total as i32,
                            &apply::done_checksum(statements, now),
                            actor,
                            error.as_deref(),
                            None,
                        )
                        .await
                }
            }
        };
        let script = if command == "down" {
            " of the down script"
        } else {
            ""
        };
        if skip.as_ref() == Some(&m.version) && done < total {
            let skipped = &statements[done];
            let now = done + 1;
            let kept = if state == "running" {
                "running"
            } else {
                "failed"
            };
            record(kept, now, error.clone()).await?;
            let details = serde_json::json!({ "repair": "skip-statement", "direction": command, "statement": now, "sql": skipped.sql });
            record_repair(&history, &conn, &actor, m, details).await?;
            actions.push(format!(
                "recorded statement {now}{script} of {} ({}) as done without running it; {}",
                m.label(),
                skipped.summary(),
                next_run(command, &statements, now)
            ));
            continue;
        }
        if rerun.as_ref() == Some(&m.version) && done < total {
            let again = done + 1;
            if state == "running" {
                let note = format!(
                    "statement {again} did not take effect (strata repair --rerun-statement)"
                );
                record("failed", done, Some(note)).await?;
                let details = serde_json::json!({ "repair": "rerun-statement", "direction": command, "statement": again });
                record_repair(&history, &conn, &actor, m, details).await?;
            }
            actions.push(format!(
                "{}: statement {again}{script} ({}) runs again at the next `strata {command}`; {}",
                m.label(),
                statements[done].summary(),
                if done == 0 {
                    "no statement before it had run".to_owned()
                } else {
                    format!(
                        "statements 1 to {done} stay recorded as {}",
                        done_state(command)
                    )
                }
            ));
            continue;
        }
        let at = if done >= total {
            "after its last statement".to_owned()
        } else {
            format!("at statement {} of {total}", done + 1)
        };
        actions.push(format!(
            "{}{} {how} {at}{script}: {}; {}",
            m.label(),
            if command == "down" {
                ": its `strata down`"
            } else {
                ""
            },
            if done == 0 {
                "no statement had run".to_owned()
            } else {
                format!(
                    "statements 1 to {done} ran and stay recorded as {}",
                    done_state(command)
                )
            },
            next_run(command, &statements, done)
        ));
    }
    conn.batch("COMMIT").await?;
    lock.release().await?;
    Ok(actions)
}

/// A migration that stopped part way: `command` (`up`, or `down` for a
/// down script) resumes it after `done` of `statements`.
struct Stopped {
    index: usize,
    command: &'static str,
    /// `running` (killed) or `failed`.
    state: String,
    error: Option<String>,
    statements: Vec<crate::sql::Statement>,
    done: usize,
}

/// What the statements that ran of a `command` (`up` or `down`) are.
fn done_state(command: &str) -> &'static str {
    if command == "down" {
        "reverted"
    } else {
        "applied"
    }
}

/// Records one change of `repair` to `m` in the event log.
async fn record_repair(
    history: &History,
    conn: &Connection,
    actor: &str,
    m: &Migration,
    details: serde_json::Value,
) -> Result<(), DbError> {
    history
        .event(
            conn,
            actor,
            &Event {
                action: "repair",
                migration: Some(m),
                success: true,
                duration_ms: None,
                details,
            },
        )
        .await
}

/// What the next `command` (`up` or `down`) does with a migration whose
/// first `done` statements are recorded.
fn next_run(command: &str, statements: &[crate::sql::Statement], done: usize) -> String {
    match statements.get(done) {
        Some(next) => format!(
            "the next `strata {command}` resumes at statement {} ({})",
            done + 1,
            next.summary()
        ),
        None if command == "down" => {
            "the next `strata down` records it as reverted without running anything".to_owned()
        }
        None => "the next `strata up` records it as applied without running anything".to_owned(),
    }
}
