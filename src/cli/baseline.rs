use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Mark every migration up to VERSION as applied without running it, to
/// adopt an existing database.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The last version that the database already has.
    version: String,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, false).await?;
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
