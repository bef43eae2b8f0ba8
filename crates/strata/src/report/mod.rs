//! Output for people and machines. The one place that knows about colours,
//! tables and JSON shapes; it contains no logic beyond formatting.
//!
//! **Architecture Invariant:** only this module and `src/main.rs` write to
//! stdout or stderr (`tracing` aside). Machine output (`--json`) goes to
//! stdout; progress for people goes to stderr so it never mixes with it.
//!
//! # `strata status --json`
//!
//! A JSON array, one object per migration, in run order:
//!
//! ```json
//! [{"version": "20240101120000", "name": "add_users", "kind": "versioned",
//!   "state": "applied", "applied_at": "2024-01-01T12:00:03Z",
//!   "duration_ms": 12, "applied_by": "app (deploy@ci-7)",
//!   "file": "migrations/20240101120000_add_users.up.sql", "detail": null}]
//! ```
//!
//! `state` is one of `applied`, `pending`, `modified`, `missing`, `failed`,
//! `reverting` (applied, and a `down` outside a transaction stopped part
//! way; `detail` says where, and `strata down` resumes it).
//! `applied_at`, `duration_ms`, `applied_by`, `file` and `detail` may be null.
//!
//! A plan (`"kind": "plan"`) that has started and is not applied yet is
//! `pending`, with `detail` its one-line state and a `plan` object (absent
//! on every other migration):
//!
//! ```json
//! "plan": {"state": "waiting", "phases_done": 1, "phases": 3,
//!          "gate": "deploy: app v2, which writes both columns",
//!          "phase": [2, "migrate"], "failed_action": null, "error": null,
//!          "summary": "phase 1 of 3 done; waiting for: deploy: app v2, which writes both columns"}
//! ```
//!
//! `state` is `running` (or interrupted), `waiting` (at the gate after
//! phase `phases_done`; `gate` says which) or `failed` (`phase`, the
//! 1-based `failed_action` and `error` say where and why).

pub mod adopt;
pub mod backfill;
pub mod changelog;
pub mod lint;
pub mod monitor;
pub mod verify;

use std::io::IsTerminal;

use crate::engine::{MigrationState, MigrationStatus, Progress, RunReport};
use crate::source::SourceProblem;

/// How to render.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
    /// Suppress progress.
    pub quiet: bool,
    /// `-v`: every finding in full, every server notice.
    pub verbose: bool,
}

impl Style {
    /// Colours only on a terminal and when `NO_COLOR` is not set.
    pub fn detect(quiet: bool, no_color_env: bool) -> Style {
        Style {
            color: !no_color_env && std::io::stdout().is_terminal(),
            quiet,
            verbose: false,
        }
    }

    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Set once a write to stdout failed: nobody reads any more.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// A stdout write error other than a closed pipe (a full disk), for `main`.
static STDOUT_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Writes to stdout; never panics (`println!` does when the reader is gone).
///
/// Rust ignores SIGPIPE, and Strata keeps it that way: with the default
/// action, a write to a unix socket whose server went away would kill
/// Strata silently in the middle of a migration instead of reporting the
/// error. So a closed stdout (`strata rules | head -1`) shows up here as
/// EPIPE and means "nobody reads any more": further output is dropped,
/// the command finishes what it does and exits with its own code (a lint
/// that finds a HIGH problem still exits 3), and loops that only print
/// (`monitor`) stop when [`stdout_closed`] says so. Any other write error
/// is kept for [`stdout_error`].
fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            if let Ok(mut slot) = STDOUT_ERROR.lock() {
                *slot = Some(e.to_string());
            }
        }
    }
}

/// True once stdout cannot be written any more (its reader left).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A failed write to stdout other than a closed pipe, e.g. a full disk.
pub fn stdout_error() -> Option<String> {
    STDOUT_ERROR.lock().ok().and_then(|slot| slot.clone())
}

/// Writes text to stdout as it is, without adding a line end: a dry run's
/// SQL arrives in pieces ([`Progress::DryRunSql`]) that already end in one.
pub fn out_raw(text: &str) {
    write_stdout(format_args!("{text}"));
}

/// Writes a line to stdout (results).
pub fn out(text: &str) {
    write_stdout(format_args!("{text}\n"));
}

/// Writes a line to stderr (progress, notices, errors). A closed stderr
/// (`strata up 2>&1 | head -1`) loses the line and nothing else.
pub fn err(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Prints source warnings (ignored files, pairing notes) to stderr, one
/// `warning:` line each.
pub fn warnings(warnings: &[SourceProblem]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// The status table.
pub fn status_table(statuses: &[MigrationStatus], style: &Style) -> String {
    if statuses.is_empty() {
        return "no migrations found".to_owned();
    }
    let rows: Vec<[String; 5]> = statuses
        .iter()
        .map(|s| {
            [
                s.version.clone(),
                s.name.clone(),
                s.state.as_str().to_owned(),
                s.applied_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "-".into()),
                s.duration_ms
                    .map(|d| format!("{d} ms"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let headers = ["VERSION", "NAME", "STATE", "APPLIED AT", "DURATION"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 5], state: Option<MigrationState>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let padded = format!("{cell:<w$}");
            let painted = match (i, state) {
                (2, Some(MigrationState::Applied)) => style.paint("32", &padded),
                (2, Some(MigrationState::Pending)) => style.paint("33", &padded),
                (2, Some(_)) => style.paint("31;1", &padded),
                _ => padded,
            };
            text.push_str(&painted);
            text.push_str("  ");
        }
        text.trim_end().to_owned()
    };
    out.push_str(&line(&headers.map(str::to_owned), None));
    for (row, s) in rows.iter().zip(statuses) {
        out.push('\n');
        out.push_str(&line(row, Some(s.state)));
        if let Some(detail) = &s.detail {
            out.push_str(&format!("\n    {detail}"));
        }
    }
    let count = |state| statuses.iter().filter(|s| s.state == state).count();
    out.push_str(&format!(
        "\n\n{} applied, {} pending, {} modified, {} missing, {} failed",
        count(MigrationState::Applied),
        count(MigrationState::Pending),
        count(MigrationState::Modified),
        count(MigrationState::Missing),
        count(MigrationState::Failed)
    ));
    let reverting = count(MigrationState::Reverting);
    if reverting > 0 {
        out.push_str(&format!(", {reverting} reverting"));
    }
    out
}

/// The documented JSON form of `status` (see the module docs).
pub fn status_json(statuses: &[MigrationStatus]) -> String {
    serde_json::to_string_pretty(statuses).expect("invariant: statuses serialise")
}

/// One progress line.
pub fn progress(p: &Progress, style: &Style) -> Option<String> {
    // Blocking findings are shown even with -q: they explain a refusal.
    if style.quiet && !matches!(p, Progress::Findings { .. }) {
        return None;
    }
    Some(match p {
        Progress::Findings { report, block_on } => {
            return findings(report, *block_on, "risk analysis", style)
        }
        Progress::Server {
            label,
            line,
            notice,
        } => {
            // The server's remarks about a statement ("... does not exist,
            // skipping") only with -v; what the SQL raised, and warnings, always.
            if !(notice.raised || notice.severity != "NOTICE" || style.verbose) {
                return None;
            }
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            let mut text = format!(
                "{label}{at}: {} {}",
                style.paint("35", &format!("{}:", notice.severity)),
                notice.message
            );
            for (what, extra) in [("DETAIL", &notice.detail), ("HINT", &notice.hint)] {
                if let Some(extra) = extra {
                    text.push_str(&format!("\n    {what}: {extra}"));
                }
            }
            text
        }
        Progress::Notice(text) => format!("{} {text}", style.paint("36", "note:")),
        Progress::Retry { message, .. } => format!("{} {message}", style.paint("33", "retry:")),
        // Shown by the status line on a terminal (see `Live`).
        Progress::Statement { .. } => return None,
        // Results, not progress: written to stdout as they come.
        Progress::DryRunSql(_) => return None,
        Progress::IndexBuild(b) => format!(
            "{} {}",
            style.paint("36", "progress:"),
            monitor::index_build(b)
        ),
        Progress::Started {
            label,
            direction,
            detail,
        } => {
            let verb = if *direction == "up" {
                "applying"
            } else {
                "reverting"
            };
            format!("{verb} {label} ({detail})")
        }
        Progress::Finished {
            label,
            direction,
            duration_ms,
        } => {
            let verb = if *direction == "up" {
                "applied"
            } else {
                "reverted"
            };
            format!(
                "{} {verb} {label} in {duration_ms} ms",
                style.paint("32", "ok")
            )
        }
    })
}

/// The risk analysis of the migrations `up` is about to run, or `status`
/// shows as pending: in full the findings that block and those at MEDIUM
/// or above on tables that exist (`engine::shown_in_full`), the rest as
/// one line per rule, so a 300-migration bootstrap stays readable. `-v`
/// shows every finding in full; `-q` only those that block.
///
/// `heading` starts the closing count line ("risk analysis", "pending
/// migrations").
pub fn findings(
    report: &crate::lint::LintReport,
    block_on: Option<crate::lint::Risk>,
    heading: &str,
    style: &Style,
) -> Option<String> {
    let blocks = |f: &crate::lint::Finding| block_on.is_some_and(|t| f.risk >= t);
    let mut text = String::new();
    let mut rest: Vec<&crate::lint::Finding> = Vec::new();
    for f in report.active() {
        let full = if style.quiet {
            blocks(f)
        } else {
            style.verbose || crate::engine::shown_in_full(f, block_on)
        };
        if full {
            text.push_str(&lint::human_finding(f, style));
            text.push('\n');
        } else {
            rest.push(f);
        }
    }
    if style.quiet {
        return (!text.is_empty()).then(|| text.trim_end().to_owned());
    }
    if report.findings.is_empty() {
        return None;
    }
    // One line per rule, in the order rules first appear.
    let mut rules: Vec<(&str, Vec<&crate::lint::Finding>)> = Vec::new();
    for f in rest {
        match rules.iter_mut().find(|(r, _)| *r == f.rule) {
            Some((_, list)) => list.push(f),
            None => rules.push((f.rule, vec![f])),
        }
    }
    let summarised: usize = rules.iter().map(|(_, l)| l.len()).sum();
    for (rule, list) in &rules {
        let risk = list
            .iter()
            .map(|f| f.risk)
            .max()
            .unwrap_or(crate::lint::Risk::Low);
        let mut files: Vec<&std::path::Path> = list.iter().map(|f| f.file.as_path()).collect();
        files.dedup();
        let first = list[0];
        text.push_str(&format!(
            "  {risk:<6} {rule}: {} finding(s) in {} file(s), first at {}:{}\n",
            list.len(),
            files.len(),
            lint::rel_path(&first.file),
            first.line
        ));
    }
    text.push_str(&format!("{heading}: {}", lint::summary(report)));
    if summarised > 0 {
        text.push_str(&format!(
            "\n  ({summarised} summarised by rule: `-v` or `strata lint` lists each)"
        ));
    }
    Some(text)
}

/// The summary after a run.
pub fn run_summary(report: &RunReport) -> String {
    let mut text = match (report.applied.len(), report.reverted.len()) {
        (0, 0) if !report.waiting.is_empty() => "nothing applied".to_owned(),
        (0, 0) => "nothing to do: the database is up to date".to_owned(),
        (a, 0) => format!("{a} migration(s) applied"),
        (0, r) => format!("{r} migration(s) reverted"),
        (a, r) => format!("{r} migration(s) reverted, {a} applied"),
    };
    // Plans waiting at a gate: what to do next.
    for line in &report.waiting {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The JSON form of a run.
pub fn run_json(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).expect("invariant: reports serialise")
}

/// Problems found by `validate`.
pub fn problems(problems: &[SourceProblem], style: &Style) -> String {
    problems
        .iter()
        .map(|p| format!("{} {p}", style.paint("31;1", "error:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error, with its chain.
pub fn error(message: &str, style: &Style) -> String {
    format!(
        "{} {}",
        style.paint("31;1", "error:"),
        crate::db::redact(message)
    )
}

/// The backups table (`strata backups`, and what `strata backup` wrote).
///
/// `--json` prints the same records as an array of objects with `file`,
/// `created_at`, `migration`, `tables`, `whole_database`, `bytes`,
/// `database` and `reason`.
pub fn backups(backups: &[crate::engine::Backup], style: &Style) -> String {
    if backups.is_empty() {
        return "no backups".to_owned();
    }
    let mut out = String::new();
    for b in backups {
        let what = if b.whole_database {
            "whole database".to_owned()
        } else if b.tables.is_empty() {
            "?".to_owned()
        } else {
            b.tables.join(", ")
        };
        out.push_str(&format!(
            "{}\n  {}  {}  {}  {}{}\n",
            style.paint("1", &b.file.display().to_string()),
            if b.created_at.is_empty() {
                "?"
            } else {
                &b.created_at
            },
            human_bytes(b.bytes),
            what,
            b.migration
                .as_ref()
                .map(|m| format!("before {m}, "))
                .unwrap_or_default(),
            b.reason
        ));
    }
    out.trim_end().to_owned()
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Asks a yes/no question on the terminal. `None` when standard input is
/// not a terminal, so nobody can answer.
pub fn confirm(question: &str) -> Option<bool> {
    use std::io::Write;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let _ = write!(std::io::stderr(), "{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    Some(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// True when stdout is a terminal (live screens redraw in place there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Shows a full screen on stdout: redrawn in place on a terminal, one
/// after the other (separated by a blank line) otherwise.
pub fn screen(text: &str, redraw: bool) {
    if redraw {
        write_stdout(format_args!("\x1b[H\x1b[2J{text}"));
    } else {
        write_stdout(format_args!("{text}\n"));
    }
}
