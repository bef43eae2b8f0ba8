use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;

/// Write a markdown changelog of the migrations.
///
/// For each migration, newest first: version, name, the description from
/// the up script's header comment, when and by whom it was applied (with a
/// database), whether a down script exists, and its risk class (the highest
/// unacknowledged lint finding). Running it again with the same history
/// writes the same file, byte for byte.
///
/// The applied state comes from the configured database (--database-url,
/// STRATA_DATABASE_URL, DATABASE_URL, strata.toml, PG* variables) or, with
/// none configured, the project's managed local cluster if it exists
/// (never created for this). Without either, or with --files-only, the
/// changelog is made from the files alone.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write; `-` prints to stdout [default:
    /// CHANGELOG.migrations.md next to strata.toml].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Do not read a database even when one is configured.
    #[arg(long)]
    files_only: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let project = strata::engine::Project::load(config)?;
    let target = match args.files_only {
        true => None,
        false => strata::engine::changelog::target(&project.config)?,
    };
    let log = strata::engine::changelog::changelog(&project, target.as_ref()).await?;
    let text = strata::report::changelog::markdown(&log);
    let path = match args.out {
        Some(p) if p.as_os_str() == "-" => {
            strata::report::out(text.trim_end());
            return Ok(Outcome::Ok);
        }
        Some(p) => p,
        None => project.config.project_dir.join("CHANGELOG.migrations.md"),
    };
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    if !ctx.global.quiet {
        strata::report::err(&format!(
            "wrote {} ({} migration(s))",
            path.display(),
            log.entries.len()
        ));
    }
    Ok(Outcome::Ok)
}
