//! What `strata adopt` did, for people (stderr) and machines (`--json`:
//! the `AdoptReport` fields as they are named).

use crate::engine::AdoptReport;

fn list(items: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// The summary of an adoption: what was recorded, and everything that
/// needs the user's attention.
pub fn summary(report: &AdoptReport, verbose: bool) -> String {
    let mut lines = Vec::new();
    if verbose {
        for label in &report.adopted {
            lines.push(format!("recorded {label} as applied"));
        }
    }
    lines.push(format!(
        "adopted {} migration(s) from {}'s history table {}{}",
        report.adopted.len(),
        report.tool,
        report.table,
        if report.already.is_empty() {
            String::new()
        } else {
            format!(" ({} already in Strata's history)", report.already.len())
        }
    ));
    if !report.without_file.is_empty() {
        lines.push(format!(
            "warning: {} version(s) recorded by {} have no file here and were not recorded: {}\n  help: restore those files (or point --dir at the right directory) and run `strata adopt` again",
            report.without_file.len(),
            report.tool,
            list(&report.without_file)
        ));
    }
    if !report.not_applied.is_empty() {
        lines.push(format!(
            "{} file(s) are not in {}'s history; `strata up` applies them: {}",
            report.not_applied.len(),
            report.tool,
            list(&report.not_applied)
        ));
    }
    if !report.older_than_adopted.is_empty() {
        lines.push(format!(
            "warning: {} of them are older than the newest adopted migration: {}\n  help: `strata up` refuses them unless --allow-out-of-order is given",
            report.older_than_adopted.len(),
            list(&report.older_than_adopted)
        ));
    }
    if report.repeatables > 0 {
        lines.push(format!(
            "{} repeatable migration(s) in {} are not adopted: `strata up` runs them again once (they are written to be re-run)",
            report.repeatables, report.table
        ));
    }
    lines.join("\n")
}

/// The JSON form.
pub fn json(report: &AdoptReport) -> String {
    serde_json::to_string_pretty(report).expect("invariant: reports serialise")
}
