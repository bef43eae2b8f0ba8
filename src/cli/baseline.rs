use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Mark every migration up to VERSION as applied without running it, to
/// adopt an existing database.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The last version that the database already has.
    version: String,
    /// First check that the database's schema is what the migrations up to
    /// VERSION make (replayed on a throwaway cluster); on any difference,
    /// print them object by object, mark nothing and exit 3.
    #[arg(long)]
    verify: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, false).await?;
    if args.verify {
        let check =
            strata::verify::check::check_baseline(&project, &target, &args.version, &mut |_| {})
                .await?;
        if !check.differences.is_empty() {
            if ctx.global.json {
                strata::report::out(&serde_json::to_string_pretty(&check)?);
            } else {
                strata::report::out(
                    strata::report::verify::baseline_mismatch(&check, &args.version).trim_end(),
                );
            }
            return Ok(Outcome::CheckFailed);
        }
        if !ctx.global.quiet {
            strata::report::err(&format!(
                "the schema matches the {} migration(s) up to {}",
                check.replayed, args.version
            ));
        }
    }
    let marked = strata::engine::baseline(&project, &target, &args.version).await?;
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&marked)?);
    } else if !ctx.global.quiet {
        for label in &marked {
            strata::report::err(&format!("marked {label} as applied"));
        }
        strata::report::err(&format!("{} migration(s) baselined", marked.len()));
    }
    Ok(Outcome::Ok)
}
