use anyhow::Context;

use crate::cli::{args::Ctx, trace::verify_error, Outcome};
use strata::engine::EngineError;

/// Write the migration spec of a migration, in markdown or JSON.
///
/// The design documents' template, filled in: risk class and why (the lint
/// findings), schema changes (from the stored trace's catalog differences
/// when `strata trace` ran on the file, else from the statements), data
/// impact (rows and size of each table, from the live statistics when a
/// database is configured), estimated duration per statement and in
/// total (rates measured on this server), downtime (which lock, for how
/// long), rollback procedure (the down script, or the backup `up` will
/// take), deploy order relative to the application, and a testing plan.
/// The markdown renders on GitHub (paste it into a pull request).
///
/// For a plan (`.plan.toml`), writes what `strata plan` writes.
///
/// Reads the configured database, or the project's managed local cluster
/// if it exists (never writes, never creates it); without either, from the
/// files alone.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration: its version, or the path of its up file.
    migration: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: FormatArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Md,
    Json,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    // The configured database, or the project's managed local cluster when
    // it exists (never created for this), as `changelog` reads.
    let target = strata::engine::changelog::target(&config)?;
    let project = strata::engine::Project::load(config)?;
    // A plan has its own review spec (phases, gates, rollback per phase).
    if strata::verify::plan_review::is_plan(&project, &args.migration) {
        let review =
            strata::verify::plan_review::review(&project, &args.migration, target.as_ref())
                .await
                .map_err(verify_error)?;
        return crate::cli::plan::render(
            &review,
            matches!(args.format, FormatArg::Json) || ctx.global.json,
        );
    }
    let spec = strata::verify::spec::spec(&project, &args.migration, target.as_ref())
        .await
        .map_err(verify_error)?;
    match (args.format, ctx.global.json) {
        (_, true) | (FormatArg::Json, _) => strata::report::out(
            &serde_json::to_string_pretty(&spec).context("cannot render the spec")?,
        ),
        (FormatArg::Md, _) => strata::report::out(
            strata::verify::spec::markdown(&spec, &|p| strata::report::lint::rel_path(p))
                .trim_end(),
        ),
    }
    Ok(Outcome::Ok)
}
