use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Accept changed checksums, and show where each migration that stopped
/// part way resumes. Progress is kept: statements that ran never run again.
/// Every change is recorded in the strata_events log.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Record the statement at which migration VERSION stopped as done,
    /// without running it: for a statement that took effect before an
    /// interruption could record it (the error of `strata up` or, for a
    /// down script, `strata down` says when).
    #[arg(long, value_name = "VERSION")]
    pub skip_statement: Option<String>,
    /// Let the next `strata up` (or `strata down`, for a down script) run
    /// again the statement at which migration VERSION was interrupted,
    /// after you checked that it did not take effect.
    #[arg(long, value_name = "VERSION", conflicts_with = "skip_statement")]
    pub rerun_statement: Option<String>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let options = strata::engine::RepairOptions {
        skip_statement: args.skip_statement,
        rerun_statement: args.rerun_statement,
    };
    let actions = strata::engine::repair(&project, &target, &options).await?;
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&actions)?);
    } else if !ctx.global.quiet {
        if actions.is_empty() {
            strata::report::err("nothing to repair");
        }
        for action in &actions {
            strata::report::err(action);
        }
    }
    Ok(Outcome::Ok)
}
