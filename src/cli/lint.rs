use std::path::PathBuf;

use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::lint::Risk;
use strata::report::lint::Format;

/// Analyse migrations for risk: every statement is parsed with the
/// PostgreSQL parser and checked against the rule catalogue (`strata rules`).
///
/// With a database URL configured (or --database-url), real table sizes
/// adjust the risk and findings carry duration estimates.
/// Exit 3 when a finding at or above --fail-on exists.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (any layout); default: the migrations directory.
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
    /// Lowest risk that fails the run (exit 3).
    #[arg(long, value_enum, default_value = "high")]
    fail_on: RiskArg,
    /// The SQL will be applied by another tool: also require lock_timeout
    /// and statement_timeout in the files.
    #[arg(long)]
    external: bool,
    /// Also show findings acknowledged by strata:allow.
    #[arg(long)]
    show_acknowledged: bool,
    /// Report only the migrations after VERSION (the one deployed); the
    /// whole history is still replayed for context.
    #[arg(long, value_name = "VERSION", conflicts_with_all = ["paths", "changed"])]
    since: Option<String>,
    /// Report only the migrations whose files changed in git since the
    /// merge-base with --base (committed, staged, modified or untracked);
    /// the whole history is still replayed for context.
    #[arg(long, conflicts_with = "paths")]
    changed: bool,
    /// The base for --changed (default: origin/HEAD, else origin/main,
    /// origin/master, main, master; the first that exists).
    #[arg(long, value_name = "REF", requires = "changed")]
    base: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Human,
    Json,
    Github,
    Sarif,
    Gitlab,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RiskArg {
    Low,
    Medium,
    High,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let mut config = ctx.config(false, false).map_err(EngineError::from)?;
    config.lint.external_runner |= args.external;
    let paths = if args.paths.is_empty() {
        vec![config.dir.clone()]
    } else {
        args.paths
    };
    // Connected only when a database is configured; lint never starts the local cluster.
    let target = match &config.database {
        Some((url, _)) => Some(strata::Target::parse(url).map_err(EngineError::from)?),
        None => None,
    };
    let selection = match (args.since, args.changed) {
        (Some(version), _) => Some(strata::engine::LintSelection::Since(version)),
        (None, true) => Some(strata::engine::LintSelection::Changed(args.base)),
        (None, false) => None,
    };
    let mut report = match selection {
        Some(selection) => {
            strata::engine::lint_selection(&config, target.as_ref(), selection).await?
        }
        None => strata::engine::lint_paths(&paths, &config, target.as_ref()).await?,
    };
    // Observed facts from stored traces (`strata trace`), and where they
    // differ from the prediction.
    strata::verify::trace::compare::annotate(&config, &mut report);
    let format = match (args.format, ctx.global.json) {
        (_, true) | (FormatArg::Json, _) => Format::Json,
        (FormatArg::Human, _) => Format::Human,
        (FormatArg::Github, _) => Format::Github,
        (FormatArg::Sarif, _) => Format::Sarif,
        (FormatArg::Gitlab, _) => Format::Gitlab,
    };
    strata::report::out(&strata::report::lint::render(
        &report,
        format,
        &ctx.style,
        args.show_acknowledged,
    ));
    let threshold = match args.fail_on {
        RiskArg::Low => Risk::Low,
        RiskArg::Medium => Risk::Medium,
        RiskArg::High => Risk::High,
    };
    Ok(if report.fails(Some(threshold)) {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}
