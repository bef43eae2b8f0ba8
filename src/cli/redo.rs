use crate::cli::{args::Ctx, print_run, project_and_target, Outcome};

/// Revert the newest applied migration and apply it again.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the exact SQL that would run and stop.
    #[arg(long)]
    dry_run: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, false).await?;
    let report = strata::engine::redo(&project, &target, args.dry_run, &mut ctx.observer()).await?;
    crate::cli::dump::refresh_schema_file(&project, &target, &report, ctx).await;
    Ok(print_run(&report, ctx))
}
