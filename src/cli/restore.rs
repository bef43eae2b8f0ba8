use std::path::PathBuf;

use crate::cli::{args::Ctx, Outcome};

/// Restore a backup with pg_restore, in one transaction (all or nothing).
///
/// The objects in the dump replace the ones in the database (`--clean
/// --if-exists`): rows written since the backup are lost for those tables.
/// Asks for confirmation unless `--yes` is given.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump file (`strata backups` lists them).
    file: PathBuf,
    /// Restore only this table (repeatable).
    #[arg(long = "table", short = 't', value_name = "TABLE")]
    tables: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx
        .config(false, false)
        .map_err(strata::EngineError::from)?;
    let target = strata::engine::resolve_target(&config)?;
    if !args.yes {
        let what = if args.tables.is_empty() {
            "every object in the dump".to_owned()
        } else {
            args.tables.join(", ")
        };
        let question = format!(
            "restore {what} from {} into {target}? The current contents are replaced. [y/N] ",
            args.file.display()
        );
        match strata::report::confirm(&question) {
            Some(true) => {}
            Some(false) => {
                strata::report::err("not restored");
                return Ok(Outcome::CheckFailed);
            }
            None => {
                return Err(strata::Error::Usage {
                    message: "restore replaces data and needs confirmation, but standard input is not a terminal".into(),
                    help: "pass --yes to restore without asking".into(),
                }
                .into())
            }
        }
    }
    strata::engine::restore(&config, &target, &args.file, &args.tables).await?;
    if !ctx.global.quiet {
        strata::report::err(&format!("restored {}", args.file.display()));
    }
    Ok(Outcome::Ok)
}
