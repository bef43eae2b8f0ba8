use std::time::Duration;

use crate::cli::{args::Ctx, Outcome};
use strata::engine::backfill::{self, BackfillSpec};
use strata::engine::EngineError;

/// Change the rows of a table in short, throttled, resumable batches:
/// `UPDATE TABLE SET … [WHERE …]`, one batch per transaction, with its
/// progress recorded in the same transaction. Run the same command again
/// after an interruption and it continues where it stopped.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The table, schema-qualified if it is not on the search path.
    table: String,
    /// The assignments, as in UPDATE: "col = expr, other = expr".
    #[arg(long, value_name = "ASSIGNMENTS")]
    set: String,
    /// Only rows matching this condition.
    #[arg(long = "where", value_name = "COND")]
    where_: Option<String>,
    /// Target duration of each batch [default: [backfill] batch_time, 50ms].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    batch_time: Option<Duration>,
    /// Pause between batches [default: [backfill] sleep, 0s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    sleep: Option<Duration>,
    /// Pause while a replica lags more than this [default: [backfill] max_replication_lag, off].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    max_replication_lag: Option<Duration>,
    /// VACUUM (ANALYZE) the table afterwards.
    #[arg(long)]
    vacuum: bool,
    /// Show the batched plan (key, first batch, estimates) and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Discard the progress of an unfinished backfill of this table and
    /// start from the beginning (rows it changed stay changed).
    #[arg(long, conflicts_with = "dry_run")]
    restart: bool,
}

fn duration(text: &str) -> Result<Duration, String> {
    let d = strata::config::parse_duration(text)?;
    Ok(d)
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let spec = BackfillSpec::update(&args.table, &args.set, args.where_.as_deref())
        .map_err(EngineError::from)?;
    let mut settings = config.backfill.clone();
    if let Some(d) = args.batch_time {
        if d.is_zero() {
            return Err(EngineError::Usage {
                message: "--batch-time must be above 0".into(),
                help: "give a duration such as 50ms".into(),
            }
            .into());
        }
        settings.batch_time = d;
    }
    if let Some(d) = args.sleep {
        settings.sleep = d;
    }
    if let Some(d) = args.max_replication_lag {
        settings.max_replication_lag = Some(d);
    }
    settings.vacuum_after |= args.vacuum;
    let target = strata::engine::resolve_target(&config)?;
    if args.dry_run {
        let plan = backfill::command_plan(&target, &spec, &settings).await?;
        if ctx.global.json {
            strata::report::out(&serde_json::to_string_pretty(&plan)?);
        } else {
            strata::report::out(&strata::report::backfill::plan(&plan));
        }
        return Ok(Outcome::Ok);
    }
    let mut live = super::live::BackfillLive::new(&ctx.style);
    let outcome = backfill::command(&config, &target, &spec, &settings, args.restart, &mut |e| {
        live.handle(&e)
    })
    .await;
    drop(live);
    let outcome = outcome?;
    if ctx.global.json {
        strata::report::out(&serde_json::to_string_pretty(&outcome)?);
    } else if !ctx.global.quiet {
        strata::report::err(&strata::report::backfill::outcome(&outcome, &ctx.style));
    }
    Ok(Outcome::Ok)
}
