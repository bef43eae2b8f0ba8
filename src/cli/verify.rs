use std::path::PathBuf;

use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Check the database against its migrations.
///
/// Three checks: the checksums of the applied migrations against their
/// files; drift, the live schema against the applied migrations replayed on
/// a throwaway PostgreSQL cluster (objects added, removed or changed by
/// hand, one line per object); and the schema file (`schema_file` in
/// strata.toml, or --schema-file) loaded into a throwaway database against
/// the same replay. Exit 3 with the per-object report when anything
/// differs, 0 when everything matches. Changes nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also check this schema file (default: `schema_file` in strata.toml).
    #[arg(long, value_name = "FILE")]
    schema_file: Option<PathBuf>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    let options = strata::verify::check::VerifyOptions {
        schema_file: args.schema_file.or(project.config.schema_file.clone()),
    };
    let report = strata::verify::check::verify(&project, &target, &options, &mut |_| {}).await?;
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&report)?);
    } else if !ctx.global.quiet || report.problems() > 0 {
        strata::report::out(strata::report::verify::verify_text(&report).trim_end());
    }
    Ok(match report.problems() {
        0 => Outcome::Ok,
        _ => Outcome::CheckFailed,
    })
}
