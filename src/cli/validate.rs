use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;

/// Check the migration directory offline: every file parses, versions are
/// unique, up/down pairs are consistent, directives are known. Exit 2 on
/// any problem; each names its file:line.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let (format, count, problems, warnings) = strata::engine::validate_config(&config);
    if !ctx.global.quiet {
        strata::report::warnings(&warnings);
    }
    if !problems.is_empty() {
        return Err(EngineError::Source(problems).into());
    }
    if !ctx.global.quiet {
        let format = format.map(|f| f.to_string()).unwrap_or_default();
        strata::report::err(&format!(
            "{count} migration(s) in {} ({format} layout): no problems",
            config
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Outcome::Ok)
}
