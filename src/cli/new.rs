use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::source::create::{Kind, NewOptions, Numbering};

/// Create the next migration's files in the directory's layout.
///
/// The version is a UTC timestamp (YYYYMMDDHHMMSS), or the next number where
/// the directory uses zero-padded sequential numbers. With --type, the files
/// hold a commented template of both directions: table, column (nullable),
/// index (CONCURRENTLY, outside a transaction), data (a batched backfill
/// that reports progress), function or trigger.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the migration does, e.g. add_users_table.
    name: String,
    /// Write a template of this kind of change.
    #[arg(long = "type", value_name = "TYPE", value_parser = clap::builder::PossibleValuesParser::new(Kind::ALL.map(Kind::name)))]
    kind: Option<String>,
    /// Number migrations 0001, 0002, … (an empty directory starts at 0001;
    /// same as `numbering = "sequential"` in strata.toml).
    #[arg(long)]
    sequential: bool,
}

pub fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    std::fs::create_dir_all(&config.dir)?;
    let loaded = strata::source::load(&config.dir, config.format);
    let options = NewOptions {
        kind: args.kind.as_deref().and_then(Kind::from_name),
        numbering: if args.sequential {
            Numbering::Sequential
        } else {
            config.numbering
        },
    };
    let files = strata::source::create::create(
        &config.dir,
        loaded.format,
        &loaded.migrations,
        &args.name,
        chrono::Utc::now(),
        options,
    )
    .map_err(EngineError::from)?;
    for path in files {
        strata::report::out(&path.display().to_string());
    }
    Ok(Outcome::Ok)
}
