use crate::cli::{args::Ctx, Outcome};

/// Back up tables (or the whole database) now with `pg_dump -Fc`.
///
/// The dump goes to the backup directory (`backup_dir`, default
/// `.strata/backups`) with file mode 0600, beside a `.json` description,
/// and is recorded in the strata_events log. A partitioned table or an
/// inheritance parent is dumped with all its partitions and children, and
/// the dump is checked with `pg_restore --list` (every table's data must
/// be in it). `strata up` takes the same kind of backup by itself before
/// migrations that lose data (see `backup` in strata.toml).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A table to dump (repeatable), written as in SQL: `users`,
    /// `app.orders`, `'"Users"'` for a mixed-case name. Without any, the
    /// whole database.
    #[arg(long = "table", short = 't', value_name = "TABLE")]
    tables: Vec<String>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx
        .config(false, false)
        .map_err(strata::EngineError::from)?;
    let target = strata::engine::resolve_target(&config)?;
    let backup = strata::engine::backup_now(&config, &target, &args.tables).await?;
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&backup)?);
    } else if !ctx.global.quiet {
        strata::report::err(&strata::report::backups(backup.as_slice(), &ctx.style));
    }
    Ok(Outcome::Ok)
}
