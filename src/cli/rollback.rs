use std::path::PathBuf;

use crate::cli::{args::Ctx, print_run, project_and_target, Outcome};

/// Reverse a plan's finished phases, newest first, each operation by its
/// defined reverse. Refuses, before anything runs, when a phase dropped
/// data, unless --from-backup names the backup taken before that phase.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan's version.
    version: String,
    /// Reverse down to this phase (1-based, included); all by default.
    #[arg(long, value_name = "N")]
    phase: Option<usize>,
    /// The backup taken before the phase that dropped data: restored first.
    #[arg(long, value_name = "PATH")]
    from_backup: Option<PathBuf>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let options = strata::engine::RollbackOptions {
        version: args.version,
        phase: args.phase,
        from_backup: args.from_backup,
    };
    let report = strata::engine::rollback(&project, &target, &options, &mut ctx.observer()).await?;
    Ok(print_run(&report, ctx))
}
