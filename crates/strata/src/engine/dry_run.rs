//! `--dry-run`: the SQL that `up` and `down` would run, handed to the
//! observer a migration at a time (`Progress::DryRunSql`), never held whole.
//! Each step is described, planned and printed before the next one is
//! looked at, so a step whose statements the run did not hold
//! (`engine::statements`) is parsed once here, and dropped after.

use super::run::Direction;
use super::{
    apply, backup, os_actor, timeouts, EngineError, History, Mode, Progress, Project, Step,
    SESSION_SETUP,
};
use crate::db::Connection;
use crate::source::Migration;
use crate::sql::Statement;

/// The SQL the steps would send in `direction`, handed to `emit` a
/// migration at a time (see [`Progress::DryRunSql`]): each with what
/// will be backed up before it (`backup::Describer`) and the batched plan
/// of its `-- strata:backfill` statements.
pub(super) async fn dry_run(
    project: &Project,
    conn: &Connection,
    history: &History,
    steps: &[Step<'_>],
    direction: Direction,
    emit: &mut dyn FnMut(Progress),
) -> Result<(), EngineError> {
    if steps.is_empty() {
        emit(Progress::DryRunSql(
            match direction {
                Direction::Up => "-- nothing to apply\n",
                Direction::Down => "-- nothing to revert\n",
            }
            .into(),
        ));
        return Ok(());
    }
    if direction == Direction::Up {
        emit(Progress::DryRunSql(format!(
            "{SESSION_SETUP};\n-- the history tables are created if missing:\n{}\n",
            history.create_sql()
        )));
    }
    let timeouts = timeouts(project);
    let actor = os_actor();
    let mut backups = backup::Describer::new(&project.config);
    for step in steps {
        let m: &Migration = &step.migration;
        let statements = step.statements.get(project)?;
        let at = step.resume.at.min(statements.len());
        let first_line = match direction {
            Direction::Up => Some(m.up.first_line),
            Direction::Down => m.down.as_ref().map(|s| s.first_line),
        };
        let backup = backups.next(conn, first_line, &statements[at..]).await?;
        let plans = plan_backfills(conn, &project.config.backfill, &statements, at).await;
        let text = Text {
            history,
            timeouts: &timeouts,
            step,
            statements: &statements,
            backup: backup.as_deref().unwrap_or(""),
            backfills: &plans,
        };
        emit(Progress::DryRunSql(match direction {
            Direction::Up => text.up(&actor),
            Direction::Down => text.down(),
        }));
    }
    Ok(())
}

/// What one step's dry-run text is made of.
struct Text<'a> {
    history: &'a History,
    timeouts: &'a apply::Timeouts,
    step: &'a Step<'a>,
    statements: &'a [Statement],
    /// What will be backed up first, as comment lines (or nothing).
    backup: &'a str,
    /// The batched plan of each `-- strata:backfill` statement (its
    /// index, the plan's lines).
    backfills: &'a [(usize, String)],
}

impl<'a> Text<'a> {
    fn parts(
        &self,
    ) -> (
        &'a History,
        &'a apply::Timeouts,
        &'a Step<'a>,
        &'a [Statement],
    ) {
        (self.history, self.timeouts, self.step, self.statements)
    }

    /// The SQL `up` would send for the step.
    fn up(&self, actor: &str) -> String {
        let (history, timeouts, step, statements) = self.parts();
        let mut out = String::new();
        let m: &Migration = &step.migration;
        let mode = apply::mode(&m.up, statements);
        out.push_str(&format!(
            "\n-- {} ({}): {}\n",
            m.label(),
            m.up.path.display(),
            mode.describe()
        ));
        for note in &step.rewrites {
            out.push_str(&format!("-- safe rewrite, {note}\n"));
        }
        out.push_str(self.backup);
        let body: Vec<&Statement> = statements.iter().skip(step.resume.at).collect();
        match mode {
            Mode::Transaction => {
                out.push_str(&format!(
                    "BEGIN;\n{};\n",
                    timeouts.local_settings().replace("; ", ";\n")
                ));
                for s in body {
                    out.push_str(&format!("{};\n", s.sql));
                }
                out.push_str(&history.record_display(m, statements.len(), actor));
                out.push_str("\nCOMMIT;\n");
                out.push_str("-- on a lock timeout (55P03) the transaction is rolled back and retried with backoff\n");
            }
            _ => {
                outside_transaction(&mut out, history, timeouts, &body, self.backfills);
                out.push_str(&format!(
                    "BEGIN;\n{}\nCOMMIT;\n",
                    history.record_display(m, statements.len(), actor)
                ));
            }
        }
        out
    }

    /// The SQL `down` would send for the step.
    fn down(&self) -> String {
        let (history, timeouts, step, statements) = self.parts();
        let mut out = String::new();
        let m: &Migration = &step.migration;
        let script = m
            .down
            .as_ref()
            .expect("invariant: plan_down checked the down script");
        let mode = apply::mode(script, statements);
        out.push_str(&format!(
            "\n-- revert {} ({}): {}\n",
            m.label(),
            script.path.display(),
            mode.describe()
        ));
        out.push_str(self.backup);
        if step.resume.at > 0 {
            out.push_str(&format!(
                "-- resumes at statement {}: statements 1 to {} ran before and are recorded\n",
                step.resume.at + 1,
                step.resume.at
            ));
        }
        let body: Vec<&Statement> = statements.iter().skip(step.resume.at).collect();
        let forget = format!(
            "{}\nINSERT INTO strata_events (action, ...) VALUES ('down', ...);\nCOMMIT;\n",
            history.delete_display(m.kind.as_str(), &m.version.canonical())
        );
        match mode {
            Mode::Transaction => {
                out.push_str(&format!(
                    "BEGIN;\n{};\n",
                    timeouts.local_settings().replace("; ", ";\n")
                ));
                for s in body {
                    out.push_str(&format!("{};\n", s.sql));
                }
                out.push_str(&forget);
            }
            _ => {
                outside_transaction(&mut out, history, timeouts, &body, self.backfills);
                out.push_str(&format!("BEGIN;\n{forget}"));
            }
        }
        out
    }
}

/// The statements of a script that runs outside one transaction, as the
/// runner runs them (`Runner::run_outside_transaction`, both directions):
/// each statement that may run in a transaction is wrapped with its
/// progress write; a statement that cannot runs on its own with session
/// settings; the file's own BEGIN/COMMIT blocks run as written.
fn outside_transaction(
    out: &mut String,
    history: &History,
    timeouts: &apply::Timeouts,
    body: &[&Statement],
    backfills: &[(usize, String)],
) {
    out.push_str(&format!(
        "-- progress is recorded in {} after each statement\n",
        history.table()
    ));
    // Statements outside the file's own BEGIN/COMMIT blocks that
    // may run in a transaction are wrapped with their progress
    // write; a block's progress is written before its COMMIT.
    let mut in_block = false;
    let mut plans = backfills.iter();
    for s in body {
        use crate::sql::TransactionBehavior as T;
        if s.backfill && !in_block {
            // The engine's batches, not the statement, run (see `backfill_step`).
            out.push_str(&format!(
                "-- strata:backfill, run in batches:\n--   {};\n",
                s.sql.replace('\n', "\n--   ")
            ));
            match plans.next() {
                Some((_, plan)) => out.push_str(plan),
                None => out.push_str(
                    "--   (the batched plan needs the database: `strata up --dry-run`)\n",
                ),
            }
            continue;
        }
        let wrap = s.transaction == T::Any && !in_block;
        let settings = if wrap {
            format!("BEGIN; {}", timeouts.local_settings())
        } else if in_block {
            String::new()
        } else {
            timeouts.session_settings(s)
        };
        if !settings.is_empty() {
            out.push_str(&format!("{};\n", settings.replace("; ", ";\n")));
        }
        if in_block && s.transaction == T::Commit {
            out.push_str("-- progress is recorded here, inside the block's transaction\n");
        }
        out.push_str(&format!("{};\n", s.sql));
        match s.transaction {
            T::Begin => {
                in_block = true;
                out.push_str(&format!(
                    "{};\n",
                    timeouts.local_settings().replace("; ", ";\n")
                ));
            }
            T::Commit | T::Rollback => in_block = false,
            _ => {}
        }
        if wrap {
            out.push_str("COMMIT;\n");
        }
    }
}

/// The batched plan of each `-- strata:backfill` statement of a step from
/// statement `at` on (`backfill::plan`: key, bounds, first batch,
/// estimates; nothing is written), with its index. A statement that needs
/// the statements before it (a column added just above) cannot be planned
/// before they run; the plan says so instead.
async fn plan_backfills(
    conn: &Connection,
    settings: &crate::config::BackfillSettings,
    statements: &[Statement],
    at: usize,
) -> Vec<(usize, String)> {
    let mut plans = Vec::new();
    for (i, s) in statements.iter().enumerate().skip(at) {
        if !s.backfill {
            continue;
        }
        let text = match super::backfill::BackfillSpec::from_sql(&s.sql) {
            Ok(spec) => match super::backfill::plan(conn, &spec, settings).await {
                Ok(plan) => describe_plan(&plan, settings),
                Err(e) => format!(
                    "--   no plan now: {} (in a dry run, the statements above it have not run)\n",
                    e.to_string().replace('\n', " ")
                ),
            },
            Err(e) => format!("--   {}\n", e.to_string().replace('\n', " ")),
        };
        plans.push((i, text));
    }
    plans
}

/// The plan's lines, as comments.
fn describe_plan(
    plan: &super::backfill::BackfillPlan,
    settings: &crate::config::BackfillSettings,
) -> String {
    let mut out = format!("--   key: {} ({})\n", plan.key.describe(), plan.key.reason);
    match (&plan.upper, &plan.first_batch) {
        (Some(upper), Some(first)) => {
            out.push_str(&format!(
                "--   upper bound, fixed when it starts: {upper}\n"
            ));
            out.push_str(&format!("--   first batch: {first}\n"));
        }
        _ => out.push_str(&format!("--   {} is empty: no batch\n", plan.table)),
    }
    out.push_str(&format!(
        "--   about {} rows of {}: about {} batch(es) of {} ms, about {:.1} s\n",
        plan.estimated_rows.max(0),
        plan.table,
        plan.estimated_batches,
        settings.batch_time.as_millis(),
        plan.estimated_duration.as_secs_f64()
    ));
    out.push_str(&format!(
        "--   each batch, in its own transaction with its cursor in strata_progress:\n--   {}\n",
        plan.batch_sql.replace('\n', "\n--   ")
    ));
    out
}
