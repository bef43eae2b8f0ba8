//! The command line: argument parsing, one file per command, and the single
//! place that maps outcomes to exit codes.
//!
//! **Architecture Invariant:** commands hold no logic. Each `exec` turns its
//! arguments into options, makes one library call and hands the result to
//! `strata::report`.

mod abort;
mod adopt;
mod args;
mod backfill;
mod backup;
mod backups;
mod baseline;
mod changelog;
mod down;
mod dump;
mod explain;
mod goto;
mod init;
mod lint;
mod live;
mod local;
mod monitor;
mod new;
mod plan;
mod redo;
mod repair;
mod restore;
mod rollback;
mod rules;
mod spec;
mod status;
mod test;
mod trace;
mod up;
mod validate;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use args::{Ctx, GlobalArgs};
use strata::engine::EngineError;

/// Strata: safe, zero-downtime PostgreSQL schema migrations.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::Args),
    New(new::Args),
    Status(status::Args),
    Up(up::Args),
    Down(down::Args),
    Rollback(rollback::Args),
    Abort(abort::Args),
    Redo(redo::Args),
    Goto(goto::Args),
    Validate(validate::Args),
    Baseline(baseline::Args),
    Adopt(adopt::Args),
    Repair(repair::Args),
    Local(local::Args),
    Lint(lint::Args),
    Rules(rules::Args),
    Explain(explain::Args),
    Backfill(backfill::Args),
    Backup(backup::Args),
    Backups(backups::Args),
    Restore(restore::Args),
    Monitor(monitor::Args),
    Changelog(changelog::Args),
    Trace(trace::Args),
    Spec(spec::Args),
    Plan(plan::Args),
    Dump(dump::Args),
    Verify(verify::Args),
    Test(test::Args),
}

/// The outcome of a command that did not fail outright.
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 3: a check found problems.
    CheckFailed,
}

/// The exit code of a failed command: the library's error says it (see
/// `strata::error`). Every command turns library errors into
/// `strata::Error` with `?`; anything else (writing a file the user named,
/// JSON output) is an operation that failed, exit 1.
fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(e) = error.downcast_ref::<strata::verify::VerifyError>() {
        return e.exit_code();
    }
    error
        .downcast_ref::<strata::Error>()
        .map_or(strata::error::exit::FAILED, strata::Error::exit_code)
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let level = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "strata={level}"
        )))
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
    let ctx = Ctx::new(cli.global);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            strata::report::err(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init(args) => init::exec(args, &ctx),
            Command::New(args) => new::exec(args, &ctx),
            Command::Status(args) => status::exec(args, &ctx).await,
            Command::Up(args) => up::exec(args, &ctx).await,
            Command::Down(args) => down::exec(args, &ctx).await,
            Command::Rollback(args) => rollback::exec(args, &ctx).await,
            Command::Abort(args) => abort::exec(args, &ctx).await,
            Command::Redo(args) => redo::exec(args, &ctx).await,
            Command::Goto(args) => goto::exec(args, &ctx).await,
            Command::Validate(args) => validate::exec(args, &ctx),
            Command::Baseline(args) => baseline::exec(args, &ctx).await,
            Command::Adopt(args) => adopt::exec(args, &ctx).await,
            Command::Repair(args) => repair::exec(args, &ctx).await,
            Command::Local(args) => local::exec(args, &ctx),
            Command::Lint(args) => lint::exec(args, &ctx).await,
            Command::Rules(args) => rules::exec(args, &ctx),
            Command::Explain(args) => explain::exec(args, &ctx),
            Command::Backfill(args) => backfill::exec(args, &ctx).await,
            Command::Backup(args) => backup::exec(args, &ctx).await,
            Command::Backups(args) => backups::exec(args, &ctx),
            Command::Restore(args) => restore::exec(args, &ctx).await,
            Command::Monitor(args) => monitor::exec(args, &ctx).await,
            Command::Changelog(args) => changelog::exec(args, &ctx).await,
            Command::Trace(args) => trace::exec(args, &ctx).await,
            Command::Spec(args) => spec::exec(args, &ctx).await,
            Command::Plan(args) => plan::exec(args, &ctx).await,
            Command::Dump(args) => dump::exec(args, &ctx).await,
            Command::Verify(args) => verify::exec(args, &ctx).await,
            Command::Test(args) => test::exec(args, &ctx).await,
        }
    });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(3),
        Err(error) => {
            strata::report::err(&strata::report::error(&top_message(&error), &ctx.style));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The message of the outermost error. Strata's errors already carry their
/// cause in their own text, so the source chain is shown only for foreign
/// errors that have no such text.
fn top_message(error: &anyhow::Error) -> String {
    if error.downcast_ref::<EngineError>().is_some()
        || error.downcast_ref::<strata::ConfigError>().is_some()
        || error
            .downcast_ref::<strata::verify::VerifyError>()
            .is_some()
    {
        error.to_string()
    } else {
        format!("{error:#}")
    }
}

/// Loads the project and resolves the target: the first two steps of most
/// commands.
async fn project_and_target(
    ctx: &Ctx,
    allow_out_of_order: bool,
    ignore_missing: bool,
) -> anyhow::Result<(strata::engine::Project, strata::Target)> {
    let config = ctx
        .config(allow_out_of_order, ignore_missing)
        .map_err(EngineError::from)?;
    let project = strata::engine::Project::load(config)?;
    let target = strata::engine::resolve_target(&project.config)?;
    Ok((project, target))
}

/// Prints a run's result.
fn print_run(report: &strata::RunReport, ctx: &Ctx) -> Outcome {
    if report.dry_run {
        // The SQL went to stdout as it was made (`Live`); the line end
        // after its last piece.
        strata::report::out("");
        if report.blocked {
            strata::report::err("risk analysis: the findings above would block `strata up` (see block_on in strata.toml)");
            return Outcome::CheckFailed;
        }
        return Outcome::Ok;
    }
    if ctx.global.json {
        strata::report::out(&strata::report::run_json(report));
    } else if !ctx.global.quiet {
        strata::report::err(&strata::report::run_summary(report));
    }
    Outcome::Ok
}
