//! Backfills for people: progress lines, the dry-run plan, the summary and
//! the `status` section.

use std::time::Duration;

use crate::engine::backfill::{
    BackfillEvent, BackfillOutcome, BackfillPlan, BackfillProgress, KeyKind, ProgressRow,
};

use super::Style;

/// `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `1m 05s`, `850ms`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `batch 12: 48,000 / 1,000,000 rows (4.8 %), 30,000 rows changed, 95,000 rows/s, ETA 10.0s`.
pub fn progress_line(p: &BackfillProgress) -> String {
    let eta = p
        .eta
        .map(|e| format!(", ETA {}", duration(e)))
        .unwrap_or_default();
    format!(
        "batch {}: {} / ~{} rows ({:.1} %), {} changed, {} rows/s{eta}",
        count(p.batches as i64),
        count(p.rows_done),
        count(p.estimated_rows.max(p.rows_done)),
        p.fraction * 100.0,
        count(p.rows_changed),
        count(p.rows_per_sec.round() as i64),
    )
}

/// One line for an event (progress lines are the caller's to pace).
pub fn event(e: &BackfillEvent, style: &Style) -> Option<String> {
    if style.quiet {
        return None;
    }
    Some(match e {
        BackfillEvent::Started {
            table,
            key,
            reason,
            resumed,
            progress,
        } => {
            if *resumed {
                format!(
                    "resuming backfill of {table} by {key} after batch {} ({} rows done, {} changed)",
                    progress.batches,
                    count(progress.rows_done),
                    count(progress.rows_changed)
                )
            } else {
                format!("backfill of {table} by {key}: {reason}")
            }
        }
        BackfillEvent::Progress(p) => {
            format!("{} {}", style.paint("36", "progress:"), progress_line(p))
        }
        BackfillEvent::Paused { reason, pause } => {
            format!(
                "{} {reason} (pause {})",
                style.paint("33", "pause:"),
                duration(*pause)
            )
        }
        BackfillEvent::Vacuum { table } => format!("VACUUM (ANALYZE) {table}"),
    })
}

/// The summary of a finished backfill.
pub fn outcome(o: &BackfillOutcome, style: &Style) -> String {
    if o.already_done {
        return format!("backfill {} had already finished: nothing to do", o.id);
    }
    format!(
        "{} backfill of {} by {}: {} row(s) changed in {} batch(es), {}{}{}",
        style.paint("32", "ok"),
        o.table,
        o.key,
        count(o.progress.rows_changed),
        count(o.progress.batches as i64),
        duration(Duration::from_millis(o.elapsed_ms)),
        if o.resumed { " (resumed)" } else { "" },
        if o.vacuumed {
            ", then VACUUM (ANALYZE)"
        } else {
            ""
        },
    )
}

/// The dry run's plan.
pub fn plan(p: &BackfillPlan) -> String {
    let mut out = vec![
        format!("-- backfill: {}", p.statement),
        format!("-- key: {} ({})", key_name(p), p.key.reason),
    ];
    match &p.upper {
        None => out.push("-- the table is empty: nothing to do".to_owned()),
        Some(upper) => {
            out.push(format!("-- upper bound, fixed at start: {upper}"));
            if let Some(first) = &p.first_batch {
                out.push(format!("-- first batch: {first}"));
            }
            out.push(format!(
                "-- estimated: ~{} rows, ~{} batch(es), ~{} (at a nominal {} rows/s; batches adapt to batch_time)",
                count(p.estimated_rows.max(0)),
                count(p.estimated_batches as i64),
                duration(p.estimated_duration),
                count(crate::engine::backfill::NOMINAL_ROWS_PER_SEC as i64),
            ));
        }
    }
    out.push(format!("{};", p.batch_sql));
    out.join("\n")
}

fn key_name(p: &BackfillPlan) -> String {
    match p.key.kind {
        KeyKind::Ctid => "ctid page ranges".to_owned(),
        _ => p.key.describe(),
    }
}

/// The `status` section: one line per backfill that is running, was
/// interrupted or failed (finished ones are left out).
pub fn status(rows: &[ProgressRow], style: &Style) -> Option<String> {
    let open: Vec<&ProgressRow> = rows.iter().filter(|r| r.state != "done").collect();
    if open.is_empty() {
        return None;
    }
    let mut out = vec!["backfills:".to_owned()];
    for r in open {
        let c = &r.cursor;
        let state = match (r.state.as_str(), r.alive) {
            ("running", true) => style.paint("36", "running"),
            ("running", false) => style.paint("33", "interrupted"),
            (other, _) => style.paint("31", other),
        };
        let who = if r.version.starts_with("command:") {
            format!("strata backfill {}", c.table)
        } else {
            format!("migration {} step {}", r.version, r.step)
        };
        let mut line = format!(
            "  {state:<11} {who}: {} / ~{} rows ({:.1} %), {} changed, {} batch(es), last at {}",
            count(c.rows_done),
            count(c.estimated_rows.max(c.rows_done)),
            c.fraction() * 100.0,
            count(c.rows_changed),
            count(c.batches as i64),
            r.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        );
        if r.state == "running" && !r.alive {
            line.push_str("\n              the next run resumes after the last committed batch");
        }
        if let Some(e) = &r.error {
            line.push_str(&format!("\n              error: {e}"));
        }
        out.push(line);
    }
    Some(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(65)), "1m 05s");
    }
}
