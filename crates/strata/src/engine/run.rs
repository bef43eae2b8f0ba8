//! Runs planned steps: the part of `up` and `down` that touches the database.

use super::apply::Runner;
use super::{
    backup, notices, os_actor, preflight, timeouts, watchdog, EngineError, History, Progress,
    Project, RunReport, Step,
};
use crate::db::{Connection, Target};
use crate::source::Migration;

async fn runner<'a>(
    project: &Project,
    target: &'a Target,
    conn: &'a Connection,
    history: &'a History,
    actor: &'a str,
) -> Result<Runner<'a>, EngineError> {
    // The watchdog also samples index-build progress, so it runs even when
    // all its limits are off.
    let watchdog =
        Some(watchdog::Watchdog::start(target, conn.pid(), watchdog_limits(project)).await?);
    Ok(Runner {
        watchdog,
        conn,
        history,
        actor,
        record: history.prepare_record(conn).await?,
        progress: conn.prepare(&history.progress_sql()).await?,
        wait: project.config.lock_wait,
        timeouts: timeouts(project),
        index_build_attempts: project.config.index_build_retries,
        target,
        backfill: project.config.backfill.clone(),
    })
}

/// The watchdog's limits from the configuration (SQL migrations and plan
/// actions alike).
pub(super) fn watchdog_limits(project: &Project) -> watchdog::Limits {
    watchdog::Limits {
        lock_queue: project.config.watchdog,
        max_blocked: project.config.max_blocked_queries,
        max_replication_lag: project.config.max_replication_lag,
        max_lock_hold: project.config.max_lock_hold,
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Direction {
    Up,
    Down,
}

/// Runs planned steps in one direction on one connection, reporting each.
pub(super) async fn run_steps(
    project: &Project,
    target: &Target,
    conn: &Connection,
    history: &History,
    steps: &[Step<'_>],
    direction: Direction,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let actor = os_actor();
    let runner = runner(project, target, conn, history, &actor).await?;
    // What the server said about analysis and bookkeeping is not news.
    let _ = conn.take_notices();
    if let Some(notice) = backup::sweep(&project.config) {
        observer(Progress::Notice(notice));
    }
    let mut report = RunReport::default();
    for (n, step) in steps.iter().enumerate() {
        let m: &Migration = &step.migration;
        // Parsed again here if the run did not hold them (its memory
        // budget), and checked against the first parse.
        let statements = step.statements.get(project)?;
        let pending = &statements[step.resume.at.min(statements.len())..];
        let checked =
            preflight::check(conn, pending, project.config.preflight_wait, n == 0).await?;
        if let Some(line) = preflight::describe(&checked) {
            observer(Progress::Notice(format!("{}: {line}", m.label())));
        }
        // Decided now, from the catalog as the earlier steps left it.
        let script = match direction {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_deref().unwrap_or(&m.up),
        };
        if let Some(need) = backup::before_migration(&project.config, conn, script, pending).await?
        {
            if let Some(b) = backup::take(
                &project.config,
                target,
                conn,
                Some((history, &actor)),
                &need,
                Some(m),
            )
            .await?
            {
                observer(Progress::Notice(format!(
                    "{}: backed up {} to {} ({} bytes; {})",
                    m.label(),
                    if b.whole_database {
                        "the whole database".to_owned()
                    } else {
                        b.tables.join(", ")
                    },
                    b.file.display(),
                    b.bytes,
                    b.reason
                )));
            }
        }
        let mut notices = notices::Forward::new(conn, m, script, &statements);
        let ran = {
            let mut observer = |p: Progress| notices.observe(p, observer);
            match direction {
                Direction::Up => {
                    runner
                        .up(m, &statements, step.resume, &step.rewrites, &mut observer)
                        .await
                }
                Direction::Down => {
                    runner
                        .down(m, &statements, step.resume, &mut observer)
                        .await
                }
            }
        };
        notices.flush(observer);
        let ms = ran?;
        let (name, done) = match direction {
            Direction::Up => ("up", &mut report.applied),
            Direction::Down => ("down", &mut report.reverted),
        };
        observer(Progress::Finished {
            label: m.label(),
            direction: name,
            duration_ms: ms,
        });
        done.push((m.label(), ms));
    }
    Ok(report)
}
