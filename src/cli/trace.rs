use anyhow::Context;

use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::verify::trace::{self, TraceOptions};
use strata::verify::VerifyError;

/// Observe what a migration really locks, rewrites and changes.
///
/// Builds a throwaway copy of the schema (a temporary PostgreSQL cluster,
/// removed at exit) by applying the history up to the migration before
/// MIGRATION with `strata up`'s own engine, then runs MIGRATION's
/// statements one by one, as `up` would (in one transaction unless the
/// file runs outside one), and records for each: the locks its backend
/// holds right after it (pg_locks, before commit; CONCURRENTLY statements
/// are watched from a second connection), whether it rewrote a table or
/// index (relfilenode changed), its time on the copy, and the catalog
/// objects it changed. The configured database is never touched.
///
/// The trace is stored in .strata/traces/<version>.json: `strata lint`
/// shows the observed facts beside its findings and reports differences
/// from its predictions (`prediction-mismatch`), and `strata spec` uses it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration: its version, or the path of its up file.
    migration: String,
    /// Fill every table the migration touches (and the tables they
    /// reference) with N generated rows first, so scans and rewrites take
    /// measurable time.
    #[arg(long, value_name = "N")]
    sample_rows: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
    /// Do not store the trace.
    #[arg(long)]
    no_store: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let project = strata::engine::Project::load(config)?;
    let (index, migration) = trace::find(&project, &args.migration).map_err(verify_error)?;
    let options = TraceOptions {
        sample_rows: args.sample_rows,
    };
    let result = trace::trace(&project, index, &options)
        .await
        .map_err(verify_error)?;
    if !args.no_store {
        let path = trace::store(&project.config, migration, &result).map_err(verify_error)?;
        if !ctx.global.quiet {
            strata::report::err(&format!("stored {}", path.display()));
        }
    }
    match (args.format, ctx.global.json) {
        (_, true) | (FormatArg::Json, _) => strata::report::out(
            &serde_json::to_string_pretty(&result).context("cannot render the trace")?,
        ),
        (FormatArg::Human, _) => strata::report::out(
            trace::render_human(&result, &|p| strata::report::lint::rel_path(p)).trim_end(),
        ),
    }
    Ok(if result.statements.iter().any(|s| s.error.is_some()) {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

/// A verification error as the error `main` takes the exit code from
/// (`strata::Error`), so bad input exits 2 and a failed database operation
/// 1; a file that cannot be written stays as it is (exit 1).
pub fn verify_error(e: VerifyError) -> anyhow::Error {
    match e {
        VerifyError::Engine(e) => e.into(),
        VerifyError::Db(e) => EngineError::from(e).into(),
        VerifyError::LocalPg(e) => EngineError::from(e).into(),
        VerifyError::Usage { message, help } => EngineError::Usage { message, help }.into(),
        other => other.into(),
    }
}
