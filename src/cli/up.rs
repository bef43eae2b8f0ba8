use crate::cli::{args::Ctx, print_run, project_and_target, Outcome};

/// Apply pending migrations, in order, under the migration lock.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply up to and including this version.
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// Print the exact SQL that would run (including history writes) and stop.
    #[arg(long)]
    dry_run: bool,
    /// Allow pending migrations older than the newest applied one.
    #[arg(long)]
    allow_out_of_order: bool,
    /// Do not fail on applied migrations whose files are gone.
    #[arg(long)]
    ignore_missing: bool,
    /// Pass the gate plan VERSION waits at (its deploy happened, or its
    /// wait may be cut short) and run on. Repeatable.
    #[arg(long = "continue", value_name = "VERSION")]
    continue_: Vec<String>,
    /// Run every phase of every plan in one go, passing all gates
    /// (development and CI databases).
    #[arg(long)]
    through_gates: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) =
        project_and_target(ctx, args.allow_out_of_order, args.ignore_missing).await?;
    let options = strata::ApplyOptions {
        target: args.to,
        dry_run: args.dry_run,
        gates: strata::engine::Gates {
            through: args.through_gates,
            pass: args
                .continue_
                .iter()
                .map(|v| {
                    project
                        .format
                        .parse_version(v)
                        .map(|v| v.canonical())
                        .ok_or_else(|| strata::engine::EngineError::UnknownVersion(v.clone()))
                })
                .collect::<Result<_, _>>()?,
        },
    };
    let report = strata::engine::up(&project, &target, &options, &mut ctx.observer()).await?;
    crate::cli::dump::refresh_schema_file(&project, &target, &report, ctx).await;
    Ok(print_run(&report, ctx))
}
