//! `strata goto` and `strata redo`: a down and an up in one command.

use super::run::Direction;
use super::up::parse_up_steps;
use super::{
    down, dry_run, plan, up, ApplyOptions, DownOptions, DownTarget, EngineError, Progress, Project,
    RunReport,
};
use crate::db::Target;

/// Moves to exactly `version`: up if it is ahead, down if it is behind.
pub async fn goto(
    project: &Project,
    target: &Target,
    version: &str,
    dry_run: bool,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let v = project.parse_version(version)?;
    if !project.migrations.iter().any(|m| m.version == v) {
        return Err(EngineError::UnknownVersion(version.to_owned()));
    }
    let mut report = down(
        project,
        target,
        &DownOptions {
            target: DownTarget::To(v),
            dry_run,
        },
        observer,
    )
    .await?;
    let up_report = up(
        project,
        target,
        &ApplyOptions {
            target: Some(version.to_owned()),
            dry_run,
            gates: Default::default(),
        },
        observer,
    )
    .await?;
    report.applied = up_report.applied;
    Ok(report)
}

/// Reverts the newest applied migration and applies it again.
pub async fn redo(
    project: &Project,
    target: &Target,
    dry_run: bool,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let conn = target.connect().await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    let plan = plan::plan_down(&project.migrations, &statuses, &DownTarget::Steps(1))?;
    let Some(&last) = plan.first() else {
        return Ok(RunReport::default());
    };
    let version = project.migrations[last].version.to_string();
    let mut report = down(
        project,
        target,
        &DownOptions {
            target: DownTarget::Steps(1),
            dry_run,
        },
        observer,
    )
    .await?;
    if dry_run {
        let steps = parse_up_steps(project, &[], &[last])?;
        dry_run::dry_run(project, &conn, &history, &steps, Direction::Up, observer).await?;
        return Ok(report);
    }
    let up_report = up(
        project,
        target,
        &ApplyOptions {
            target: Some(version),
            dry_run,
            gates: Default::default(),
        },
        observer,
    )
    .await?;
    report.applied = up_report.applied;
    Ok(report)
}
