use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::verify::catalog::Difference;
use strata::verify::roundtrip::{self, Checked, RoundTrip, StepError, Verdict};
use strata::verify::VerifyError;

/// Test every migration's down on a throwaway cluster: up, down, up again.
///
/// For each migration in order: catalog snapshot, up, snapshot, down,
/// compare with the catalog before the up, up again, compare with the
/// catalog after the first up. Each is reported as ok, irreversible (no
/// down), broken down (the failing statement's file:line and error) or not
/// inverse (what differs, object by object). The migrations before --from
/// are replayed first. The configured database is not used.
/// Exit 3 when any migration is not ok.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first migration to test [default: the first].
    #[arg(long, value_name = "VERSION")]
    from: Option<String>,
    /// The last migration to test [default: the last].
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// Also apply each up a second time on the state after the first, and
    /// report the migrations whose second run fails (for files meant to be
    /// re-runnable, `IF NOT EXISTS` style).
    #[arg(long)]
    idempotent: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

pub async fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let project = strata::engine::Project::load(config)?;
    let json = ctx.global.json || args.format == FormatArg::Json;
    let options = roundtrip::Options {
        from: args.from,
        to: args.to,
        idempotent: args.idempotent,
    };
    let root = project.config.project_dir.clone();
    let verbose = ctx.global.verbose > 0;
    let mut show = |c: &Checked| {
        if !json {
            strata::report::out(&render(c, &root, verbose));
        }
    };
    let result = roundtrip::roundtrip(&project, &options, &mut show)
        .await
        .map_err(engine_error)?;
    if json {
        strata::report::out(&serde_json::to_string_pretty(&result)?);
    } else if !ctx.global.quiet {
        strata::report::err(&summary(&result));
    }
    Ok(if result.all_ok() {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

/// The library's error with its exit code (2 for bad usage: nothing ran).
fn engine_error(e: VerifyError) -> anyhow::Error {
    match e {
        VerifyError::Engine(e) => e.into(),
        VerifyError::Db(e) => EngineError::Db(e).into(),
        VerifyError::LocalPg(e) => EngineError::LocalPg(e).into(),
        VerifyError::Usage { message, help } => EngineError::Usage { message, help }.into(),
        other => other.into(),
    }
}

/// One migration: a status line, then its details indented; files are
/// shown relative to the project directory.
fn render(c: &Checked, root: &std::path::Path, verbose: bool) -> String {
    // The error's first line with the file relative to the project, then
    // the server's detail and hint lines below it.
    let place = |e: &StepError| {
        let mut e = e.clone();
        if let Some(rel) = e.file.as_deref().and_then(|f| f.strip_prefix(root).ok()) {
            e.file = Some(rel.to_path_buf());
        }
        let mut text = e.to_string();
        for d in &e.details {
            text.push_str(&format!("\n      {d}"));
        }
        text
    };
    let mut out = match &c.result {
        Verdict::Ok => format!("ok              {}", c.label),
        Verdict::Irreversible { reason } => format!("irreversible    {} ({reason})", c.label),
        Verdict::BrokenDown { error } => format!(
            "broken down     {}\n    {}\n    continued from the state after its up",
            c.label,
            place(error)
        ),
        Verdict::NotInverse {
            after_down,
            up_again_failed,
            after_up_again,
        } => {
            let mut s = format!("not inverse     {}", c.label);
            differences(&mut s, "after down", after_down, verbose);
            if let Some(e) = up_again_failed {
                s.push_str(&format!(
                    "\n    up again failed: {}\n    continued from the state after its first up",
                    place(e)
                ));
            }
            differences(&mut s, "after up again", after_up_again, verbose);
            s
        }
        Verdict::UpFailed { error } => {
            format!("up failed       {}\n    {}", c.label, place(error))
        }
    };
    if let Some(e) = &c.not_idempotent {
        out.push_str(&format!(
            "\nnot idempotent  {}\n    second up: {}",
            c.label,
            place(e)
        ));
    }
    out
}

/// Differences shown per migration without -v: a dropped table that the
/// down does not re-create is one line per column, index and constraint.
const SHOWN: usize = 20;

/// The per-object differences, one line each (the first [`SHOWN`] unless
/// `verbose`).
fn differences(out: &mut String, when: &str, changes: &[Difference], verbose: bool) {
    let shown = if verbose { changes.len() } else { SHOWN };
    for d in changes.iter().take(shown) {
        out.push_str(&format!("\n    {when}: {d}"));
    }
    if changes.len() > shown {
        out.push_str(&format!(
            "\n    {when}: {} more (-v or --format json lists them all)",
            changes.len() - shown
        ));
    }
}

/// Counts and timings, on stderr.
fn summary(r: &RoundTrip) -> String {
    let count = |f: &dyn Fn(&Checked) -> bool| r.migrations.iter().filter(|c| f(c)).count();
    let ok = count(&|c| matches!(c.result, Verdict::Ok));
    let irreversible = count(&|c| matches!(c.result, Verdict::Irreversible { .. }));
    let broken = count(&|c| matches!(c.result, Verdict::BrokenDown { .. }));
    let not_inverse = count(&|c| matches!(c.result, Verdict::NotInverse { .. }));
    let up_failed = count(&|c| matches!(c.result, Verdict::UpFailed { .. }));
    let not_idempotent = count(&|c| c.not_idempotent.is_some());
    let tested = r.migrations.len();
    let checks_ms: u64 = r.migrations.iter().map(|c| c.ms).sum();
    let mut parts = vec![format!("{ok} ok")];
    for (n, what) in [
        (irreversible, "irreversible"),
        (broken, "broken down"),
        (not_inverse, "not inverse"),
        (up_failed, "up failed"),
        (not_idempotent, "not idempotent"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let mut s = format!(
        "{tested} migration(s) tested on PostgreSQL {}: {}",
        r.server_major,
        parts.join(", ")
    );
    if r.repeatables > 0 {
        s.push_str(&format!(
            "; {} repeatable migration(s) not tested (no down)",
            r.repeatables
        ));
    }
    if r.untested > 0 {
        s.push_str(&format!(
            "; {} later migration(s) not tested (an up failed)",
            r.untested
        ));
    }
    s.push_str(&format!(
        "\n{:.1} s in all: {} ms per migration tested, {:.1} s replaying the {} migration(s) before the first",
        r.total_ms as f64 / 1000.0,
        checks_ms.checked_div(tested as u64).unwrap_or(0),
        r.replay_ms as f64 / 1000.0,
        r.replayed
    ));
    let p = &r.phases;
    s.push_str(&format!(
        " (checks: {:.1} s in the engine's up and down, {:.1} s reading catalogs, {:.1} s copying databases)",
        p.engine_ms as f64 / 1000.0,
        p.snapshot_ms as f64 / 1000.0,
        p.copy_ms as f64 / 1000.0
    ));
    s
}
