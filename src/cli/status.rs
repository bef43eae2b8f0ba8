use crate::cli::{args::Ctx, project_and_target, Outcome};
use strata::engine::MigrationState;

/// Show every migration with its version, name, state, applied_at and duration.
///
/// States: applied, pending, modified (checksum differs), missing (applied,
/// no file), failed (a non-transactional migration stopped part way).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit 3 when anything is pending, modified, missing or failed.
    #[arg(long)]
    exit_code: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, false).await?;
    if ctx.global.verbose > 0 {
        strata::report::warnings(&project.warnings);
    }
    let report = strata::engine::status(&project, &target).await?;
    let statuses = report.migrations;
    if ctx.global.json {
        strata::report::out(&strata::report::status_json(&statuses));
    } else {
        strata::report::out(&strata::report::status_table(&statuses, &ctx.style));
        if let Some(text) = strata::report::backfill::status(&report.backfills, &ctx.style) {
            strata::report::out(&text);
        }
        let block_on = project.config.lint.block_on;
        if report.findings.active().next().is_some() && !ctx.global.quiet {
            let text = strata::report::findings(
                &report.findings,
                block_on,
                "pending migrations",
                &ctx.style,
            );
            if let Some(text) = text {
                strata::report::err(&format!("\n{text}"));
            }
        }
    }
    let unclean = statuses.iter().any(|s| s.state != MigrationState::Applied);
    Ok(if args.exit_code && unclean {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}
