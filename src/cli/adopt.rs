use crate::cli::{args::Ctx, project_and_target, Outcome};

/// Take over a database that golang-migrate, goose, diesel, sqlx, Flyway or
/// dbmate migrated: record the migrations its history table lists as
/// applied in Strata's history, without running them.
///
/// The table is found by its default name (schema_migrations,
/// goose_db_version, __diesel_schema_migrations, _sqlx_migrations,
/// flyway_schema_history) and recognised by its columns. A dirty or failed
/// state is refused; sqlx's checksums are checked against the files.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The other tool's history table, when it is not at its default name
    /// (SCHEMA.TABLE, written as in SQL).
    #[arg(long, value_name = "TABLE")]
    from: Option<String>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (project, target) = project_and_target(ctx, false, false).await?;
    let options = strata::engine::AdoptOptions { from: args.from };
    let report = strata::engine::adopt(&project, &target, &options).await?;
    if ctx.global.json {
        strata::report::out(&strata::report::adopt::json(&report));
    } else if !ctx.global.quiet {
        strata::report::err(&strata::report::adopt::summary(
            &report,
            ctx.global.verbose > 0,
        ));
    }
    Ok(Outcome::Ok)
}
