//! The step of a migration that a `-- strata:backfill` directive turns
//! into a backfill: the runner hands the statement to the backfill engine
//! (`engine::backfill`) instead of running it as one statement.
//!
//! A file with a backfill runs outside a transaction (the directive says
//! so, see `source::mark_backfills`), statement by statement with its
//! progress recorded, like any `-- strata:no-transaction` file. The
//! backfill keeps its own cursor in `strata_progress`, keyed by (history
//! table, migration version, statement index), committed with each batch;
//! the migration's row records the statement done once the backfill has
//! finished. So a kill during the backfill leaves the migration stopped at
//! that statement, and the next `up` calls the engine again with the same
//! id: it continues after the last committed batch. A kill after the
//! backfill finished but before the statement was recorded finds the
//! cursor `done`, and the engine does nothing.

use std::time::{Duration, Instant};

use super::apply::{Resume, Runner};
use super::backfill::{self, BackfillEvent, BackfillId, BackfillSpec};
use super::history::Event;
use super::{EngineError, Progress};
use crate::source::{Migration, Script};
use crate::sql::Statement;

/// How often a running backfill says how far it got.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The step index of statement `index` in the backfill's id. A down
/// script's statements are numbered after a gap, so a backfill in a down
/// script never shares a cursor with one of the up script.
pub(super) fn step_of(direction: &str, index: usize) -> usize {
    match direction {
        "down" => 1_000_000 + index,
        _ => index,
    }
}

/// The id of the backfill that statement `index` of `m` runs.
pub(super) fn id_of(
    history: &super::History,
    m: &Migration,
    direction: &str,
    index: usize,
) -> BackfillId {
    BackfillId::new(
        history.clone(),
        m.version.canonical(),
        step_of(direction, index),
    )
}

/// What the backfill engine refuses among the statements marked
/// `backfill` (RETURNING, WITH, …), at their lines: found while parsing,
/// so `up` stops before anything runs and `validate` reports it.
pub(super) fn spec_problems(
    script: &Script,
    statements: &[Statement],
) -> Vec<crate::source::SourceProblem> {
    statements
        .iter()
        .filter(|s| s.backfill)
        .filter_map(|s| {
            let error = BackfillSpec::from_sql(&s.sql).err()?;
            Some(crate::source::SourceProblem {
                path: script.path.clone(),
                line: Some(script.first_line + s.line - 1),
                message: format!("`-- strata:backfill`: {error}"),
                help: Some(
                    "write the statement in a form the backfill supports, or remove `-- strata:backfill` to run it as one statement".to_owned(),
                ),
            })
        })
        .collect()
}

impl Runner<'_> {
    /// Runs statement `index` of `m` (marked `backfill`) as a backfill.
    /// `from` says whether an interrupted run stopped at this statement:
    /// then the backfill resumes from its cursor; otherwise it starts
    /// afresh (a cursor left by an earlier life of the migration, before a
    /// `down`, is discarded).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_backfill(
        &self,
        direction: &'static str,
        m: &Migration,
        script: &Script,
        statements: &[Statement],
        index: usize,
        from: Resume,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), EngineError> {
        let stmt = &statements[index];
        let line = script.first_line + stmt.line - 1;
        let where_ = format!("{}:{line}", script.path.display());
        let spec = BackfillSpec::from_sql(&stmt.sql)?;
        let id = id_of(self.history, m, direction, index);
        let resuming = from.interrupted && from.at == index;
        if !resuming {
            backfill::cursor::delete(self.conn, &id).await?;
        }
        observer(Progress::Statement {
            label: m.label(),
            index: index + 1,
            total: statements.len(),
            summary: format!("backfill: {}", stmt.summary()),
        });
        let label = m.label();
        let mut last_log: Option<Instant> = None;
        let mut last_pause: Option<Instant> = None;
        let mut on_event = |event: BackfillEvent| match event {
            BackfillEvent::Started {
                table,
                key,
                reason,
                resumed,
                progress,
            } => {
                last_log = Some(Instant::now());
                observer(Progress::Notice(if resumed {
                    format!(
                        "{label}: {where_}: backfill of {table} resumes after {} batch(es), {} of about {} rows done; batches by {key} ({reason})",
                        progress.batches, progress.rows_done, progress.estimated_rows
                    )
                } else {
                    format!(
                        "{label}: {where_}: backfill of {table} starts, about {} rows; batches by {key} ({reason})",
                        progress.estimated_rows
                    )
                }));
            }
            BackfillEvent::Progress(p) => {
                if !last_log.is_some_and(|t| t.elapsed() < LOG_EVERY) {
                    last_log = Some(Instant::now());
                    observer(Progress::Notice(format!(
                        "{label}: backfill: {} rows done of about {} ({:.0} %), {} batches, {:.0} rows/s{}",
                        p.rows_done,
                        p.estimated_rows,
                        p.fraction * 100.0,
                        p.batches,
                        p.rows_per_sec,
                        p.eta
                            .map(|eta| format!(", about {} s left", eta.as_secs()))
                            .unwrap_or_default()
                    )));
                }
            }
            BackfillEvent::Paused { reason, pause } => {
                // The configured sleep between batches is not news.
                if !reason.starts_with("sleep")
                    && !last_pause.is_some_and(|t| t.elapsed() < LOG_EVERY)
                {
                    last_pause = Some(Instant::now());
                    observer(Progress::Notice(format!(
                        "{label}: backfill paused {} ms: {reason}",
                        pause.as_millis()
                    )));
                }
            }
            BackfillEvent::Vacuum { table } => {
                observer(Progress::Notice(format!(
                    "{label}: backfill done; VACUUM (ANALYZE) {table}"
                )));
            }
        };
        let result = backfill::run(
            self.target,
            self.conn,
            &id,
            &spec,
            &self.backfill,
            &mut on_event,
        )
        .await;
        match result {
            Ok(outcome) => {
                let p = &outcome.progress;
                observer(Progress::Notice(if outcome.already_done {
                    format!("{label}: {where_}: the backfill had finished before the interruption ({} rows changed)", p.rows_changed)
                } else {
                    format!(
                        "{label}: {where_}: backfill done: {} rows changed in {} batches, {:.1} s{}",
                        p.rows_changed,
                        p.batches,
                        outcome.elapsed_ms as f64 / 1000.0,
                        if outcome.elapsed_ms > 0 {
                            format!(
                                ", {:.0} rows/s",
                                p.rows_done as f64 * 1000.0 / outcome.elapsed_ms as f64
                            )
                        } else {
                            String::new()
                        }
                    )
                }));
                Ok(())
            }
            Err(error) => {
                let _ = self
                    .history
                    .event(
                        self.conn,
                        self.actor,
                        &Event {
                            action: direction,
                            migration: Some(m),
                            success: false,
                            duration_ms: None,
                            details: serde_json::json!({
                                "statement": index + 1,
                                "line": line,
                                "file": script.path.display().to_string(),
                                "backfill": id.label(),
                                "error": error.to_string(),
                            }),
                        },
                    )
                    .await;
                let detail = format!(
                    "stopped at {where_}, statement {} of {}, the backfill: {error}; statements 1 to {index} are applied and recorded, and the next `strata {direction}` resumes the backfill after its last committed batch",
                    index + 1,
                    statements.len()
                );
                Err(match direction {
                    "down" => EngineError::PartlyReverted { label, detail },
                    _ => EngineError::Failed { label, detail },
                })
            }
        }
    }
}
