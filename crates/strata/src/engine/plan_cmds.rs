//! `strata rollback V [--phase N] [--from-backup PATH]` and `strata abort
//! V`: reversing a plan's phases (see `engine::phases`).
//!
//! `rollback` reverses finished phases newest first, each operation's
//! reverse in reverse operation order, and refuses before anything runs
//! when an operation's data is gone (a dropped column) unless
//! `--from-backup` names the backup taken before that phase, which is then
//! restored first. `abort` undoes a plan that is part way or failed: the
//! reverse of every operation of every started phase (reverses are
//! idempotent), then its progress is forgotten.

use std::path::PathBuf;

use super::history::Event;
use super::lock::MigrationLock;
use super::phases::{self, PlanRunner, PlanState, Reverse};
use super::{backup, open, os_actor, EngineError, History, Progress, Project, RunReport};
use crate::db::{Connection, Target};
use crate::plan::file::Plan;
use crate::source::{Migration, MigrationKind};

/// Options of `rollback`.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// The plan's version.
    pub version: String,
    /// Reverse down to this phase (1-based), included; all by default.
    pub phase: Option<usize>,
    /// The backup taken before a phase that dropped data.
    pub from_backup: Option<PathBuf>,
}

fn find_plan<'a>(project: &'a Project, version: &str) -> Result<&'a Migration, EngineError> {
    let v = project.parse_version(version)?;
    project
        .migrations
        .iter()
        .find(|m| m.kind == MigrationKind::Plan && m.version == v)
        .ok_or_else(|| EngineError::UnknownVersion(format!("{version} (as a plan)")))
}

async fn event(
    conn: &crate::db::Connection,
    history: &super::History,
    actor: &str,
    m: &Migration,
    action: &str,
    details: serde_json::Value,
) -> Result<(), EngineError> {
    history
        .event(
            conn,
            actor,
            &Event {
                action,
                migration: Some(m),
                success: true,
                duration_ms: None,
                details,
            },
        )
        .await?;
    Ok(())
}

/// A plan opened for `rollback` or `abort`: its file and its state, read
/// under the migration lock, which it holds until released.
struct Opened<'a> {
    m: &'a Migration,
    plan: Plan,
    /// The canonical version.
    version: String,
    history: History,
    conn: Connection,
    lock: MigrationLock,
    /// Its history row says applied (every phase done).
    applied: bool,
    /// Its progress row, if it started and was not forgotten.
    state: Option<PlanState>,
}

async fn open_plan<'a>(
    project: &'a Project,
    target: &Target,
    version: &str,
) -> Result<Opened<'a>, EngineError> {
    let m = find_plan(project, version)?;
    let plan = phases::load_plan(m)?;
    let version = m.version.canonical();
    let history = project.history();
    let conn = open(target).await?;
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    let applied = history
        .read(&conn)
        .await?
        .iter()
        .any(|r| r.kind == "plan" && r.version == version && r.state == "applied");
    let state = phases::read_state(&conn, &history, &version).await?;
    Ok(Opened {
        m,
        plan,
        version,
        history,
        conn,
        lock,
        applied,
        state,
    })
}

/// Reverses finished phases of a plan, newest first.
pub async fn rollback(
    project: &Project,
    target: &Target,
    options: &RollbackOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let Opened {
        m,
        plan,
        version,
        history,
        conn,
        lock,
        applied,
        state: st,
    } = open_plan(project, target, &options.version).await?;
    let total = plan.phases.len();
    let done = match (&st, applied) {
        (_, true) => total,
        (Some(s), false) if s.state == "waiting" => s.done,
        (Some(s), false) if s.state == "running" || s.state == "failed" => {
            return Err(EngineError::Usage {
                message: format!(
                    "plan {} stopped part way through phase {} ({})",
                    m.label(),
                    s.cursor.phase + 1,
                    s.state
                ),
                help: format!(
                    "finish the phase with `strata up`, or undo the whole plan with `strata abort {}`",
                    m.version
                ),
            })
        }
        _ => 0,
    };
    if done == 0 {
        return Err(EngineError::Usage {
            message: format!("plan {} has no finished phase to roll back", m.label()),
            help: "`strata status` shows where each plan is".into(),
        });
    }
    let to = options.phase.unwrap_or(1);
    if to == 0 || to > done {
        return Err(EngineError::Usage {
            message: format!(
                "--phase {to}: plan {} has finished phases 1 to {done}",
                m.label()
            ),
            help: format!("give a phase from 1 to {done}: phases from it to {done} are reversed"),
        });
    }
    let cursor = st.as_ref().map(|s| s.cursor.clone()).unwrap_or_default();
    if cursor.checksum.as_ref().is_some_and(|c| *c != m.checksum) {
        return Err(EngineError::Usage {
            message: format!("plan {} changed since its phases ran", m.label()),
            help:
                "restore the file as it was: its operations' reverses are what undoes those phases"
                    .into(),
        });
    }
    let reversed: Vec<usize> = (to - 1..done).rev().collect();
    let gone = phases::irreversible(m, &plan, &cursor, &reversed)?;
    if !gone.is_empty() {
        let taken: Vec<&(usize, String)> = cursor
            .backups
            .iter()
            .filter(|(k, _)| gone.iter().any(|(g, _)| g == k))
            .collect();
        let reason = gone
            .iter()
            .map(|(k, why)| format!("phase {}: {why}", k + 1))
            .collect::<Vec<_>>()
            .join("; ");
        match &options.from_backup {
            None => {
                return Err(EngineError::Irreversible {
                    label: m.label(),
                    reason,
                    help: if taken.is_empty() {
                        "no backup was recorded before those phases; restore one by hand (`strata backups`), or reverse fewer phases with --phase".into()
                    } else {
                        format!(
                            "add --from-backup {} (the backup taken before phase {})",
                            taken[0].1,
                            taken[0].0 + 1
                        )
                    },
                })
            }
            Some(path) => {
                let same =
                    |f: &String| std::fs::canonicalize(f).ok() == std::fs::canonicalize(path).ok();
                if !taken.iter().any(|(_, f)| same(f)) {
                    return Err(EngineError::BadBackup {
                        path: path.clone(),
                        message: format!(
                            "it is not the backup taken before the phase that dropped data ({})",
                            if taken.is_empty() {
                                "none was recorded".to_owned()
                            } else {
                                taken
                                    .iter()
                                    .map(|(k, f)| format!("phase {}: {f}", k + 1))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ),
                    });
                }
                observer(Progress::Notice(format!(
                    "{}: restoring {} ({reason})",
                    m.label(),
                    path.display()
                )));
                backup::restore(&project.config, target, &history, path, &[]).await?;
            }
        }
    }
    let actor = os_actor();
    let reverse = Reverse {
        runner: PlanRunner::start(project, target, &conn, &history, &actor).await?,
    };
    reverse
        .run_downs(m, &plan, &cursor, &reversed, None, observer)
        .await?;
    conn.batch("BEGIN").await?;
    if applied {
        history.delete(&conn, "plan", &version).await?;
    }
    if to == 1 {
        phases::forget(&conn, &history, &version).await?;
    } else {
        let mut kept = cursor.clone();
        kept.phase = to - 1;
        kept.action = 0;
        kept.failed_action = None;
        kept.phase_done_at = Some(chrono::Utc::now().timestamp());
        kept.backups.retain(|(k, _)| *k < to - 1);
        phases::save(
            &conn,
            &history,
            &version,
            &PlanState {
                state: "waiting".into(),
                done: to - 1,
                total,
                cursor: kept,
                error: None,
                backend_pid: None,
            },
        )
        .await?;
    }
    event(
        &conn,
        &history,
        &actor,
        m,
        "plan-rollback",
        serde_json::json!({ "phases": reversed.iter().map(|k| k + 1).collect::<Vec<_>>(),
                            "from_backup": options.from_backup.as_ref().map(|p| p.display().to_string()) }),
    )
    .await?;
    conn.batch("COMMIT").await?;
    lock.release().await?;
    Ok(RunReport {
        reverted: vec![(format!("{} (phases {} to {done})", m.label(), to), 0)],
        ..RunReport::default()
    })
}

/// Undoes a plan that is part way or failed, and forgets its progress.
pub async fn abort(
    project: &Project,
    target: &Target,
    version: &str,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let Opened {
        m,
        plan,
        version: canonical,
        history,
        conn,
        lock,
        applied,
        state,
    } = open_plan(project, target, version).await?;
    if applied {
        return Err(EngineError::Usage {
            message: format!("plan {} is applied", m.label()),
            help: format!("roll it back with `strata rollback {}`", m.version),
        });
    }
    let Some(st) = state else {
        return Err(EngineError::Usage {
            message: format!(
                "plan {} has not started: there is nothing to abort",
                m.label()
            ),
            help: "`strata status` shows where each plan is".into(),
        });
    };
    let total = plan.phases.len();
    // Every phase that ran, the one that stopped part way included.
    let last = match st.state.as_str() {
        "running" | "failed" => st.cursor.phase.min(total - 1) + 1,
        _ => st.done.min(total),
    };
    let started: Vec<usize> = (0..last).rev().collect();
    // The phase it stopped in ran up to this action: its later operations
    // never started.
    let stopped = matches!(st.state.as_str(), "running" | "failed")
        .then_some((st.cursor.phase, st.cursor.action));
    let actor = os_actor();
    let reverse = Reverse {
        runner: PlanRunner::start(project, target, &conn, &history, &actor).await?,
    };
    let skipped = reverse
        .run_downs(m, &plan, &st.cursor, &started, stopped, observer)
        .await?;
    for s in &skipped {
        observer(Progress::Notice(format!("{}: not undone, {s}", m.label())));
    }
    phases::forget(&conn, &history, &canonical).await?;
    event(
        &conn,
        &history,
        &actor,
        m,
        "plan-aborted",
        serde_json::json!({ "state": st.state, "phase": st.cursor.phase + 1,
                            "action": st.cursor.action, "error": st.error, "not_undone": skipped }),
    )
    .await?;
    lock.release().await?;
    Ok(RunReport {
        reverted: vec![(format!("{} (aborted)", m.label()), 0)],
        ..RunReport::default()
    })
}
