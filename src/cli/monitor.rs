use std::time::Duration;

use crate::cli::{args::Ctx, Outcome};

/// Live view of the database: connections by state, the longest-running
/// queries, blocked queries with their blockers, locks on user tables,
/// index build and vacuum progress, and replication lag.
///
/// Refreshes every second until interrupted. `--once --json` prints one
/// snapshot for scripts; `--json` alone prints one JSON object per refresh
/// (JSON Lines; the shape is documented in `src/report/monitor.rs`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one snapshot and exit.
    #[arg(long)]
    once: bool,
    /// Time between refreshes (e.g. 500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = interval)]
    interval: Duration,
    /// Stop after this many refreshes.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

fn interval(text: &str) -> Result<Duration, String> {
    strata::config::parse_duration(text).and_then(|d| {
        if d < Duration::from_millis(100) {
            Err("the interval must be at least 100ms".into())
        } else if d > Duration::from_secs(24 * 3600) {
            Err("the interval must be at most 24h".into())
        } else {
            Ok(d)
        }
    })
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx
        .config(false, false)
        .map_err(strata::EngineError::from)?;
    let target = strata::engine::resolve_target(&config)?;
    let monitor = strata::engine::monitor::Monitor::connect(&target).await?;
    let count = if args.once { Some(1) } else { args.count };
    let live = !ctx.global.json && strata::report::stdout_is_terminal();
    let mut shown = 0u64;
    loop {
        let snapshot = monitor.snapshot().await?;
        if ctx.global.json {
            strata::report::out(&serde_json::to_string(&snapshot)?);
        } else {
            strata::report::screen(
                &strata::report::monitor::screen(&snapshot, &ctx.style),
                live,
            );
        }
        shown = shown.saturating_add(1);
        // Nobody reads any more (`strata monitor --json | head -1`).
        if count.is_some_and(|c| shown >= c) || strata::report::stdout_closed() {
            return Ok(Outcome::Ok);
        }
        tokio::time::sleep(args.interval).await;
    }
}
