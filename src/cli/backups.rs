use crate::cli::{args::Ctx, Outcome};

/// List the backups in the backup directory, oldest first: file, when,
/// before which migration, what it holds and its size.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx
        .config(false, false)
        .map_err(strata::EngineError::from)?;
    let backups = strata::engine::backups(&config);
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&backups)?);
    } else {
        strata::report::out(&strata::report::backups(&backups, &ctx.style));
    }
    Ok(Outcome::Ok)
}
