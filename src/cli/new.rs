use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::plan::file::generate::{generate, Pattern, PatternArgs, PatternError};
use strata::source::create::CreateError;
use strata::source::create::{Kind, NewOptions, Numbering};

/// Create the next migration's files in the directory's layout.
///
/// The version is a UTC timestamp (YYYYMMDDHHMMSS), or the next number where
/// the directory uses zero-padded sequential numbers. With --type, the files
/// hold a commented template of both directions: table, column (nullable),
/// index (CONCURRENTLY, outside a transaction), data (a batched backfill
/// that reports progress), function or trigger. With --pattern, a plan file
/// (`<version>_<name>.plan.toml`) of phases, gates and validations for one
/// zero-downtime change; the README's "Generating plans" lists the flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the migration does, e.g. add_users_table.
    name: String,
    /// Without --pattern: write a template of this kind of change (table,
    /// column, index, data, function, trigger). With --pattern: the
    /// column's type, as SQL.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Write a multi-phase plan for this change.
    #[arg(long, value_name = "PATTERN", value_parser = clap::builder::PossibleValuesParser::new(Pattern::ALL.map(Pattern::name)))]
    pattern: Option<String>,
    #[command(flatten)]
    flags: Box<PatternFlags>,
    /// Number migrations 0001, 0002, … (an empty directory starts at 0001;
    /// same as `numbering = "sequential"` in strata.toml).
    #[arg(long)]
    sequential: bool,
}

/// The values a `--pattern` plan is written from; each pattern says which
/// it needs (strata_source::plan::generate).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Plan patterns (with --pattern)")]
struct PatternFlags {
    /// The table, as SQL.
    #[arg(long)]
    table: Option<String>,
    /// A column, as SQL (repeat for an index's or a foreign key's columns).
    #[arg(long = "column")]
    columns: Vec<String>,
    /// A default expression, as SQL.
    #[arg(long)]
    default: Option<String>,
    /// rename-column: the current name.
    #[arg(long)]
    from: Option<String>,
    /// rename-column: the new name.
    #[arg(long)]
    to: Option<String>,
    /// change-column-type: how an old value becomes a new one.
    #[arg(long)]
    using: Option<String>,
    /// split-column: NAME:TYPE:EXPRESSION per new column (repeat);
    /// normalize-json: the child table.
    #[arg(long)]
    into: Vec<String>,
    /// normalize-json: NAME:TYPE:EXPRESSION over `elem` per child column (repeat).
    #[arg(long = "field")]
    fields: Vec<String>,
    /// add-foreign-key: the referenced table and columns, `users(id)`.
    #[arg(long)]
    references: Option<String>,
    /// add-foreign-key: fail, delete, set_null or move_to:TABLE.
    #[arg(long)]
    orphans: Option<String>,
    /// add-foreign-key: the ON DELETE action (cascade, set null, …).
    #[arg(long)]
    on_delete: Option<String>,
    /// add-foreign-key: the constraint's name.
    #[arg(long)]
    constraint_name: Option<String>,
    /// partition-table: the partition key column.
    #[arg(long)]
    key: Option<String>,
    /// partition-table: day, month, quarter or year.
    #[arg(long)]
    interval: Option<String>,
    /// partition-table: the first partition's lower bound (2024-01-01).
    #[arg(long)]
    range_from: Option<String>,
    /// partition-table: the last partition's upper bound.
    #[arg(long)]
    range_to: Option<String>,
    /// backfill: the assignments, `email_lower = lower(email)`.
    #[arg(long)]
    set: Option<String>,
    /// backfill: which rows; add-index: a partial index's predicate.
    #[arg(long = "where")]
    predicate: Option<String>,
    /// An expression that fills existing rows.
    #[arg(long)]
    backfill: Option<String>,
    /// add-index: a unique index.
    #[arg(long)]
    unique: bool,
    /// add-index: the index's name.
    #[arg(long)]
    index_name: Option<String>,
    /// soft-delete: the view of active rows.
    #[arg(long)]
    view: Option<String>,
    /// add-jsonb-column: an expression to index (repeat).
    #[arg(long = "path-index")]
    path_indexes: Vec<String>,
}

pub fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let numbering = if args.sequential {
        Numbering::Sequential
    } else {
        config.numbering
    };
    let flags = pattern_args(*args.flags, args.pattern.as_ref().and(args.kind.clone()));
    let plan = match &args.pattern {
        Some(name) => {
            let pattern = Pattern::from_name(name)
                .ok_or_else(|| PatternError::Unknown { name: name.clone() });
            Some(
                pattern
                    .and_then(|p| generate(p, &flags))
                    .map_err(|e| EngineError::from(CreateError::from(e)))?,
            )
        }
        None => {
            if let Some(flag) = flags.given().first() {
                return Err(usage(
                    format!("{} is a flag of --pattern", flag.name()),
                    "add --pattern PATTERN (see `strata new --help`), or drop the flag".into(),
                ));
            }
            None
        }
    };
    let kind = match (&plan, args.kind.as_deref()) {
        (None, Some(name)) => Some(Kind::from_name(name).ok_or_else(|| {
            let kinds = Kind::ALL.map(Kind::name).join(", ");
            usage(
                format!("unknown --type `{name}`"),
                format!("--type is one of {kinds} (or a column type with --pattern)"),
            )
        })?),
        _ => None,
    };
    std::fs::create_dir_all(&config.dir)?;
    let loaded = strata::source::load(&config.dir, config.format);
    let files = match plan {
        Some(text) => vec![strata::source::create::create_plan(
            &config.dir,
            loaded.format,
            &loaded.migrations,
            &args.name,
            chrono::Utc::now(),
            numbering,
            &text,
        )
        .map_err(EngineError::from)?],
        None => strata::source::create::create(
            &config.dir,
            loaded.format,
            &loaded.migrations,
            &args.name,
            chrono::Utc::now(),
            NewOptions { kind, numbering },
        )
        .map_err(EngineError::from)?,
    };
    for path in files {
        strata::report::out(&path.display().to_string());
    }
    Ok(Outcome::Ok)
}

fn usage(message: String, help: String) -> anyhow::Error {
    EngineError::Usage { message, help }.into()
}

/// The library's view of the pattern flags; `column_type` is `--type`
/// when --pattern is given (without it, `--type` names a template).
fn pattern_args(f: PatternFlags, column_type: Option<String>) -> PatternArgs {
    PatternArgs {
        table: f.table,
        columns: f.columns,
        column_type,
        default: f.default,
        from: f.from,
        to: f.to,
        using: f.using,
        into: f.into,
        fields: f.fields,
        references: f.references,
        orphans: f.orphans,
        on_delete: f.on_delete,
        key: f.key,
        interval: f.interval,
        range_from: f.range_from,
        range_to: f.range_to,
        set: f.set,
        predicate: f.predicate,
        backfill: f.backfill,
        unique: f.unique,
        name: f.index_name,
        constraint_name: f.constraint_name,
        view: f.view,
        path_indexes: f.path_indexes,
    }
}
