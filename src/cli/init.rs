use crate::cli::{args::Ctx, Outcome};

/// Write a commented strata.toml and an empty migrations/ directory.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let created = strata::config::init(&std::env::current_dir()?).map_err(strata::Error::from)?;
    if !ctx.global.quiet {
        for path in created {
            strata::report::err(&format!("created {}", path.display()));
        }
    }
    Ok(Outcome::Ok)
}
