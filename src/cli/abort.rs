use crate::cli::{args::Ctx, print_run, project_and_target, Outcome};

/// Undo a plan that stopped part way, failed or is unwanted: the reverse of
/// every operation of every started phase, then its progress is forgotten
/// (a fully applied plan is rolled back with `strata rollback`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan's version.
    version: String,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let report =
        strata::engine::abort(&project, &target, &args.version, &mut ctx.observer()).await?;
    Ok(print_run(&report, ctx))
}
