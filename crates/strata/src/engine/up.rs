//! `strata up`: plans the pending migrations, parses them into steps, and runs them.

use super::analyze::{analyze_parsed, Parsed};
use super::lock::MigrationLock;
use super::run::{run_steps, Direction};
use super::statements::{Budget, Statements, BUDGET};
use super::{
    adopt, apply, dry_run, open, phases, plan, EngineError, MigrationStatus, Progress, Project,
    RunReport, Step, StepMigration,
};
use crate::db::Target;
use crate::source::{self, Migration, MigrationKind};
use crate::sql::Statement;

/// Options of `up`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Stop after this version.
    pub target: Option<String>,
    /// Print the SQL instead of running it.
    pub dry_run: bool,
    /// Which plan gates this run may pass (`--continue`, `--through-gates`).
    pub gates: super::phases::Gates,
}

/// Parses the planned migrations, each once for the whole run (see
/// [`Parsed`]): bad SQL and unbalanced transactions fail here, before
/// anything runs. The statements are held within the run's memory budget
/// (`engine::statements`); past it, they are parsed again where used.
pub(super) fn parse_pending(project: &Project, plan: &[usize]) -> Result<Vec<Parsed>, EngineError> {
    // Sized up front: collecting into a `Result` cannot know the length,
    // and doubling a vector of one entry per pending migration would
    // reserve up to twice the room.
    let mut parsed = Vec::with_capacity(plan.len());
    let mut budget = Budget::new(BUDGET);
    for &i in plan {
        let mut p = Parsed::up(&project.config, i, &project.migrations[i])
            .map_err(EngineError::before_run)?;
        p.hold_within(&mut budget);
        parsed.push(p);
    }
    Ok(parsed)
}

/// Parses the planned migrations and turns them into steps.
pub(super) fn parse_up_steps<'a>(
    project: &'a Project,
    statuses: &[MigrationStatus],
    plan: &[usize],
) -> Result<Vec<Step<'a>>, EngineError> {
    up_steps(project, statuses, parse_pending(project, plan)?)
}

/// The steps of `up` from the migrations parsed once for the run: the
/// statements that run (rewritten where safe rewrites changed them) and
/// where an interrupted run resumes.
pub(super) fn up_steps<'a>(
    project: &'a Project,
    statuses: &[MigrationStatus],
    parsed: Vec<Parsed>,
) -> Result<Vec<Step<'a>>, EngineError> {
    let rows = plan::RowIndex::new(statuses);
    // Collected in place: a step is no larger than a parse, so the steps
    // take over the parses' vector instead of a second one per pending
    // migration beside it.
    parsed
        .into_iter()
        .map(|p| {
            let i = p.index;
            let m = &project.migrations[i];
            let released = p.released;
            let (statements, migration, rewrites) = with_rewrites(m, p);
            let statements = match released {
                Some(r) => Statements::Released(r),
                None => Statements::Held(statements),
            };
            let resume = match rows.get(i).filter(|r| r.state != "applied") {
                Some(r) => {
                    let done = r.statements_done.max(0) as usize;
                    let statements = statements.get(project)?;
                    if done > statements.len()
                        || r.done_checksum.as_deref()
                            != Some(&apply::done_checksum(&statements, done))
                    {
                        return Err(EngineError::ResumeChanged {
                            label: m.label(),
                            command: "up",
                            done,
                            total: statements.len(),
                        });
                    }
                    apply::Resume {
                        at: done,
                        pid: r.backend_pid,
                        interrupted: true,
                        killed: r.state == "running",
                    }
                }
                None => apply::Resume::default(),
            };
            Ok(Step {
                migration,
                statements,
                resume,
                rewrites,
            })
        })
        .collect()
}

/// The statements that run: the safe rewrites' when they changed anything
/// (see [`Parsed::up`]). A rewritten migration runs outside a
/// transaction, statement by statement.
pub(super) fn with_rewrites(
    m: &Migration,
    parsed: Parsed,
) -> (Vec<Statement>, StepMigration<'_>, Vec<String>) {
    let Some(result) = parsed.rewritten else {
        return (parsed.statements, StepMigration::Borrowed(m), Vec::new());
    };
    let mut owned = m.clone();
    owned.up.no_transaction = Some(source::NoTransaction {
        line: None,
        source: "safe rewrites need separate transactions".into(),
    });
    (
        result.statements,
        StepMigration::Owned(Box::new(owned)),
        result.notes,
    )
}

fn up_rules(project: &Project, target: Option<&str>) -> Result<plan::UpRules, EngineError> {
    Ok(plan::UpRules {
        target: target.map(|t| project.parse_version(t)).transpose()?,
        allow_out_of_order: project.config.allow_out_of_order,
        ignore_missing: project.config.ignore_missing,
    })
}

/// Applies pending migrations.
pub async fn up(
    project: &Project,
    target: &Target,
    options: &ApplyOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let history = project.history();
    let rules = up_rules(project, options.target.as_deref())?;
    if let Some(t) = &rules.target {
        if !project.migrations.iter().any(|m| &m.version == t) {
            return Err(EngineError::UnknownVersion(t.to_string()));
        }
    }
    let conn = open(target).await?;
    let rows = history.read(&conn).await?;
    if rows.is_empty() {
        // Another tool migrated this database: running its history again
        // would fail on "already exists" (or worse, succeed twice).
        adopt::refuse_if_foreign(project, &conn, &history).await?;
    }
    // The rows are kept: under the lock, the same rows mean the same plan
    // (it is a function of the files and the history), so nothing is
    // planned or parsed again.
    let plan::UpPlan {
        plan,
        rows: statuses,
    } = project.plan_up(&rows, &rules)?;
    for v in &options.gates.pass {
        if !plan.iter().any(|&i| {
            let m = &project.migrations[i];
            m.kind == MigrationKind::Plan && &m.version.canonical() == v
        }) {
            return Err(EngineError::Usage {
                message: format!("`--continue {v}`: no plan with version {v} is in progress"),
                help: "`strata status` shows the plans and the gates they wait at".into(),
            });
        }
    }
    let sql_plan = sql_only(project, &plan);
    // Parse everything once, before taking the lock: bad SQL must fail
    // before anything runs, and analysis, rewrites, backups, the dry run
    // and apply all use this one parse.
    let parsed = parse_pending(project, &sql_plan)?;
    // Plans are analysed as the statements they compile to (lint and
    // status see them so), so `block_on` refuses a risky plan like a risky
    // SQL migration.
    let mut findings = analyze_parsed(project, Some(&conn), &plan, &parsed)
        .await
        .map_err(EngineError::before_run)?;
    let planned: Vec<Migration> = plan
        .iter()
        .map(|&i| &project.migrations[i])
        .filter(|m| m.kind == MigrationKind::Plan)
        .cloned()
        .collect();
    phases::acknowledge_planned_drops(&planned, &mut findings);
    let steps = up_steps(project, &statuses, parsed)?;
    let threshold = project.config.lint.block_on;
    let blocking = match threshold {
        Some(t) => findings.active().filter(|f| f.risk >= t).count(),
        None => 0,
    };
    if !findings.findings.is_empty() {
        observer(Progress::Findings {
            report: findings,
            block_on: threshold,
        });
    }
    if options.dry_run {
        dry_run::dry_run(project, &conn, &history, &steps, Direction::Up, observer).await?;
        for &i in &plan {
            let m = &project.migrations[i];
            if m.kind == MigrationKind::Plan {
                let st = phases::read_state(&conn, &history, &m.version.canonical()).await?;
                let described = phases::describe(m, st.as_ref(), Some(&conn)).await?;
                observer(Progress::DryRunSql(format!("\n{described}")));
            }
        }
        return Ok(RunReport {
            dry_run: true,
            blocked: blocking > 0,
            ..RunReport::default()
        });
    }
    if let (Some(threshold), true) = (threshold, blocking > 0) {
        return Err(EngineError::Blocked {
            count: blocking,
            threshold,
        });
    }
    if plan.is_empty() {
        return Ok(RunReport::default());
    }
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    // Check again under the lock: another runner may have done the work.
    // Usually nothing changed while we waited for it: the same history
    // rows, so the plan and the steps parsed above stand, and no status
    // per migration of the directory is built again beside them.
    let rows_now = history.read(&conn).await?;
    let (plan_now, steps) = if rows_now == rows {
        (plan, steps)
    } else {
        drop((rows, steps));
        let plan::UpPlan {
            plan: plan_now,
            rows: statuses_now,
        } = project.plan_up(&rows_now, &rules)?;
        let steps = parse_up_steps(project, &statuses_now, &sql_only(project, &plan_now))?;
        (plan_now, steps)
    };
    drop(rows_now);
    let report = run_in_order(
        project, target, &conn, &history, &plan_now, &steps, options, observer,
    )
    .await;
    lock.release().await?;
    report
}

/// The SQL migrations of `plan` (plans run through `engine::phases`).
fn sql_only(project: &Project, plan: &[usize]) -> Vec<usize> {
    plan.iter()
        .copied()
        .filter(|&i| project.migrations[i].kind != MigrationKind::Plan)
        .collect()
}

/// Runs the planned migrations in version order: runs of SQL migrations
/// through the runner, each plan through `engine::phases`. A plan that
/// stops at a gate stops the run unless it is `independent`.
#[allow(clippy::too_many_arguments)]
async fn run_in_order(
    project: &Project,
    target: &Target,
    conn: &crate::db::Connection,
    history: &super::History,
    plan: &[usize],
    steps: &[Step<'_>],
    options: &ApplyOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<RunReport, EngineError> {
    let mut report = RunReport::default();
    let actor = super::os_actor();
    let mut next = 0;
    for (n, &i) in plan.iter().enumerate() {
        let m = &project.migrations[i];
        if m.kind != MigrationKind::Plan {
            continue;
        }
        // The SQL migrations before this plan.
        let before = plan[..n]
            .iter()
            .filter(|&&j| project.migrations[j].kind != MigrationKind::Plan)
            .count();
        if before > next {
            let ran = run_steps(
                project,
                target,
                conn,
                history,
                &steps[next..before],
                Direction::Up,
                observer,
            )
            .await?;
            report.applied.extend(ran.applied);
            next = before;
        }
        let runner = phases::PlanRunner::start(project, target, conn, history, &actor).await?;
        match runner.run(m, &options.gates, observer).await? {
            phases::Outcome::Finished => report.applied.push((m.label(), 0)),
            phases::Outcome::Waiting(line) => {
                report.waiting.push(line);
                let independent = phases::load_plan(m)?.independent;
                if !independent {
                    let later: Vec<String> = plan[n + 1..]
                        .iter()
                        .map(|&j| project.migrations[j].label())
                        .collect();
                    if !later.is_empty() {
                        report.waiting.push(format!(
                            "{} later migration(s) wait for plan {} (not independent): {}",
                            later.len(),
                            m.label(),
                            later.join(", ")
                        ));
                    }
                    return Ok(report);
                }
            }
        }
    }
    if steps.len() > next {
        let ran = run_steps(
            project,
            target,
            conn,
            history,
            &steps[next..],
            Direction::Up,
            observer,
        )
        .await?;
        report.applied.extend(ran.applied);
    }
    Ok(report)
}
