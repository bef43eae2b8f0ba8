use std::path::PathBuf;

use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Write the database's schema as SQL (pg_dump --schema-only, without
/// owners, privileges, Strata's own tables and run-specific lines).
///
/// The output loads into an empty database with psql and is
/// deterministic: two dumps of the same schema are byte-identical, so the
/// file can be committed and reviewed. With `schema_file` in strata.toml,
/// `strata up` and `strata down` rewrite that file after every change.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to this file instead of stdout (`-` is stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, true).await?;
    match args.out {
        Some(path) if path.as_os_str() != "-" => {
            strata::verify::dump::write_schema_file(&project.config, &target, &path).await?;
            if !ctx.global.quiet {
                strata::report::err(&format!("wrote {}", path.display()));
            }
        }
        _ => {
            let text = strata::verify::dump::dump(&project.config, &target).await?;
            strata::report::out(text.trim_end_matches('\n'));
        }
    }
    Ok(Outcome::Ok)
}

/// After `up`, `down`, `goto` and `redo`: rewrites the configured
/// `schema_file` when the run changed the database (or the file does not
/// exist yet), as dbmate does. The migrations ran whatever happens here, so
/// a failure is a warning, not a failed command; `strata verify` finds a
/// stale file.
pub async fn refresh_schema_file(
    project: &strata::engine::Project,
    target: &strata::Target,
    report: &strata::RunReport,
    ctx: &Ctx,
) {
    let Some(path) = &project.config.schema_file else {
        return;
    };
    let changed = !report.applied.is_empty() || !report.reverted.is_empty();
    if report.dry_run || (!changed && path.is_file()) {
        return;
    }
    match strata::verify::dump::write_schema_file(&project.config, target, path).await {
        Ok(()) if !ctx.global.quiet => {
            strata::report::err(&format!("schema file {} updated", path.display()))
        }
        Ok(()) => {}
        Err(e) => strata::report::err(&format!(
            "warning: the schema file {} was not updated: {}",
            path.display(),
            strata::redact(&e.to_string())
        )),
    }
}
