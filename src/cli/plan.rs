use anyhow::Context;

use crate::cli::{args::Ctx, trace::verify_error, Outcome};
use strata::engine::EngineError;

/// Write the review spec of a multi-phase plan, in markdown or JSON.
///
/// For a `<version>_<name>.plan.toml`: risk class and why (the plan's lint
/// findings as `up` judges them, and what its operations lock and drop),
/// each phase's operations and schema changes and the gate after it, data
/// impact (rows and size of each table, from the live statistics), the
/// estimated duration of each phase (from table sizes, the rate of the
/// backfills that finished on the database and the rewrite rate measured
/// on this server; the output says how), the longest expected
/// lock and what bounds it, rollback per phase, the deploy steps
/// interleaved with the app deploys the gates name, and a testing plan.
/// The markdown renders on GitHub (paste it into a pull request).
///
/// Reads the configured database, or the project's managed local cluster
/// if it exists (never changes it or creates it; the rewrite rate may be
/// measured once on a temporary table, as `lint` does); without either,
/// from the files alone.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan: its version, or the path of its plan file.
    plan: String,
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
    let target = strata::engine::changelog::target(&config)?;
    let project = strata::engine::Project::load(config)?;
    let review = strata::verify::plan_review::review(&project, &args.plan, target.as_ref())
        .await
        .map_err(verify_error)?;
    render(
        &review,
        matches!(args.format, FormatArg::Json) || ctx.global.json,
    )
}

/// Prints a review (shared with `strata spec`, which hands plans over).
pub fn render(
    review: &strata::verify::plan_review::PlanReview,
    json: bool,
) -> anyhow::Result<Outcome> {
    match json {
        true => strata::report::out(
            &serde_json::to_string_pretty(review).context("cannot render the plan review")?,
        ),
        false => strata::report::out(
            strata::verify::plan_review::markdown(review, &|p| strata::report::lint::rel_path(p))
                .trim_end(),
        ),
    }
    Ok(Outcome::Ok)
}
