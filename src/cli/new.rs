use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;

/// Create the next migration's files in the directory's layout.
///
/// The version is a UTC timestamp (YYYYMMDDHHMMSS), or the next number where
/// the directory uses zero-padded sequential numbers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the migration does, e.g. add_users_table.
    name: String,
}

pub fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    std::fs::create_dir_all(&config.dir)?;
    let loaded = strata::source::load(&config.dir, config.format);
    let files = strata::source::create::create(
        &config.dir,
        loaded.format,
        &loaded.migrations,
        &args.name,
        chrono::Utc::now(),
    )?;
    for path in files {
        strata::report::out(&path.display().to_string());
    }
    Ok(Outcome::Ok)
}
