use crate::cli::{args::Ctx, print_run, project_and_target, Outcome};
use strata::engine::DownTarget;

/// Revert applied migrations: one by default.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revert this many migrations.
    #[arg(long, conflicts_with_all = ["to", "all"])]
    steps: Option<usize>,
    /// Revert every migration newer than this version.
    #[arg(long, value_name = "VERSION", conflicts_with = "all")]
    to: Option<String>,
    /// Revert every applied migration.
    #[arg(long)]
    all: bool,
    /// Print the exact SQL that would run and stop.
    #[arg(long)]
    dry_run: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let down_target = match (args.steps, args.to, args.all) {
        (_, _, true) => DownTarget::All,
        (_, Some(v), _) => DownTarget::To(
            project
                .format
                .parse_version(&v)
                .ok_or(strata::engine::EngineError::UnknownVersion(v))?,
        ),
        (Some(n), _, _) => DownTarget::Steps(n),
        _ => DownTarget::Steps(1),
    };
    let options = strata::DownOptions {
        target: down_target,
        dry_run: args.dry_run,
    };
    let report = strata::engine::down(&project, &target, &options, &mut ctx.observer()).await?;
    crate::cli::dump::refresh_schema_file(&project, &target, &report, ctx).await;
    Ok(print_run(&report, ctx))
}
