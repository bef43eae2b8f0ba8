//! Progress of a running `strata up`/`down`: lines on stderr for what
//! happened, and on a terminal a status line below them for what is
//! happening now (migration, statement, elapsed time, lock retries, and an
//! index build's progress bar with ETA).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use strata::engine::Progress;
use strata::report::Style;

/// How often index-build progress is printed as a line when stderr is not
/// a terminal (CI logs).
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Renders [`Progress`] events.
pub struct Live {
    style: Style,
    bar: Option<ProgressBar>,
    current: String,
    retries: u32,
    last_plain: Option<Instant>,
}

impl Live {
    /// A status line on stderr when it is a terminal and not `-q`; plain
    /// lines only otherwise.
    pub fn new(style: &Style) -> Live {
        let bar = (!style.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(spinner());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Live {
            style: *style,
            bar,
            current: String::new(),
            retries: 0,
            last_plain: None,
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, p: &Progress) {
        match p {
            Progress::DryRunSql(sql) => {
                // The run's result, on stdout even with -q: printed as it
                // comes, so a dry run of thousands of migrations never
                // holds all its text.
                match &self.bar {
                    Some(bar) => bar.suspend(|| strata::report::out_raw(sql)),
                    None => strata::report::out_raw(sql),
                }
                return;
            }
            Progress::Started { label, .. } => {
                self.current = label.clone();
                self.retries = 0;
                self.set_spinner();
            }
            Progress::Statement {
                label,
                index,
                total,
                summary,
            } => {
                self.current = format!("{label}: statement {index}/{total}: {summary}");
                self.set_spinner();
            }
            Progress::Retry { attempt, .. } => {
                self.retries = *attempt;
                self.set_spinner();
            }
            Progress::IndexBuild(b) => {
                if let Some(bar) = &self.bar {
                    let (done, total) = if b.blocks_total > 0 {
                        (b.blocks_done, b.blocks_total)
                    } else {
                        (b.tuples_done, b.tuples_total)
                    };
                    if total > 0 {
                        bar.set_style(progress_bar());
                        bar.set_length(total as u64);
                        bar.set_position(done.max(0) as u64);
                    } else {
                        bar.set_style(spinner());
                    }
                    bar.set_message(format!("{}  [{}]", self.current, b.phase));
                    return;
                }
                if self
                    .last_plain
                    .is_some_and(|t| t.elapsed() < PLAIN_PROGRESS_EVERY)
                {
                    return;
                }
                self.last_plain = Some(Instant::now());
            }
            _ => {}
        }
        if let Some(line) = strata::report::progress(p, &self.style) {
            match &self.bar {
                Some(bar) => bar.suspend(|| strata::report::err(&line)),
                None => strata::report::err(&line),
            }
        }
    }

    fn set_spinner(&self) {
        if let Some(bar) = &self.bar {
            bar.set_style(spinner());
            let retries = match self.retries {
                0 => String::new(),
                n => format!("  [{n} lock retr{}]", if n == 1 { "y" } else { "ies" }),
            };
            bar.set_message(format!("{}{retries}", self.current));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
        .expect("invariant: the template is valid")
}

fn progress_bar() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {elapsed:>4} {wide_msg}\n       [{bar:40}] {percent:>3}%  ETA {eta}",
    )
    .expect("invariant: the template is valid")
    .progress_chars("=> ")
}

/// Renders a backfill's events: on a terminal a bar with rows done, rows/s
/// and ETA; in logs a progress line every 5 s. Pauses and the start are
/// always lines.
pub struct BackfillLive {
    style: Style,
    bar: Option<ProgressBar>,
    last_plain: Option<Instant>,
}

impl BackfillLive {
    /// A bar on stderr when it is a terminal and not `-q`.
    pub fn new(style: &Style) -> BackfillLive {
        let bar = (!style.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed:>4} [{bar:30}] {percent:>3}% {wide_msg}",
                )
                .expect("invariant: the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        BackfillLive {
            style: *style,
            bar,
            last_plain: None,
        }
    }

    /// Handles one event.
    pub fn handle(&mut self, e: &strata::engine::backfill::BackfillEvent) {
        use strata::engine::backfill::BackfillEvent;
        if let BackfillEvent::Progress(p) = e {
            if let Some(bar) = &self.bar {
                bar.set_length(1000);
                bar.set_position((p.fraction * 1000.0).round() as u64);
                bar.set_message(strata::report::backfill::progress_line(p));
                return;
            }
            if self
                .last_plain
                .is_some_and(|t| t.elapsed() < PLAIN_PROGRESS_EVERY)
            {
                return;
            }
            self.last_plain = Some(Instant::now());
        }
        if let Some(line) = strata::report::backfill::event(e, &self.style) {
            match &self.bar {
                Some(bar) => bar.suspend(|| strata::report::err(&line)),
                None => strata::report::err(&line),
            }
        }
    }
}

impl Drop for BackfillLive {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
