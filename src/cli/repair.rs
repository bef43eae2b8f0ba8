use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Accept changed checksums and clear failed state. Every action is
/// recorded in the strata_events log.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn exec(_args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let actions = strata::engine::repair(&project, &target).await?;
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
