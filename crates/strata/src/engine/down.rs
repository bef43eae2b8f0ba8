//! `strata down`: plans the reverts, parses the down scripts into steps, and runs them.

use super::lock::MigrationLock;
use super::run::{run_steps, Direction};
use super::statements::{Budget, Statements, BUDGET};
use super::{
    apply, dry_run, open, plan, DownTarget, EngineError, MigrationStatus, Progress, Project,
    RunReport, Step, StepMigration,
};
use crate::db::Target;

/// Options of `down`.
#[derive(Debug, Clone)]
pub struct DownOptions {
    /// How far to go.
    pub target: DownTarget,
    /// Print the SQL instead of running it.
    pub dry_run: bool,
}

/// The down steps of `plan`. A migration whose `down` stopped part way
/// resumes at the statement it stopped at, after the same check as an `up`
/// resume: the down statements that ran are unchanged. Statements are
/// held within the run's memory budget (`engine::statements`).
fn parse_down_steps<'a>(
    project: &'a Project,
    statuses: &[MigrationStatus],
    plan: &[usize],
) -> Result<Vec<Step<'a>>, EngineError> {
    let rows = plan::RowIndex::new(statuses);
    let mut budget = Budget::new(BUDGET);
    plan.iter()
        .map(|&i| {
            let m = &project.migrations[i];
            let script = m
                .down
                .as_ref()
                .expect("invariant: plan_down checked the down script");
            let statements = apply::parse(script).map_err(EngineError::before_run)?;
            let progress = rows.get(i).and_then(|r| r.down.as_ref());
            let resume = match progress {
                Some(d) => {
                    let done = d.done.max(0) as usize;
                    if done > statements.len()
                        || d.done_checksum != apply::done_checksum(&statements, done)
                    {
                        return Err(EngineError::ResumeChanged {
                            label: m.label(),
                            command: "down",
                            done,
                            total: statements.len(),
                        });
                    }
                    apply::Resume {
                        at: done,
                        pid: d.backend_pid,
                        interrupted: true,
                        killed: d.state == "running",
                    }
                }
                None => apply::Resume::default(),
            };
            Ok(Step {
                migration: StepMigration::Borrowed(m),
                rewrites: Vec::new(),
                statements: Statements::within(&mut budget, i, true, statements),
                resume,
            })
        })
        .collect()
}

/// Reverts applied migrations.
pub async fn down(
    project: &Project,
    target: &Target,
    options: &DownOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let conn = open(target).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &options.target)?;
    let steps = parse_down_steps(project, &statuses, &plan)?;
    if options.dry_run {
        dry_run::dry_run(project, &conn, &history, &steps, Direction::Down, observer).await?;
        return Ok(RunReport {
            dry_run: true,
            ..RunReport::default()
        });
    }
    if steps.is_empty() {
        return Ok(RunReport::default());
    }
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &options.target)?;
    let steps = parse_down_steps(project, &statuses, &plan)?;
    let report = run_steps(
        project,
        target,
        &conn,
        &history,
        &steps,
        Direction::Down,
        observer,
    )
    .await;
    lock.release().await?;
    report
}
