//! The markdown of `strata changelog` (see `engine::changelog`).
//!
//! Nothing here depends on the time of rendering, and the order is the
//! migrations' own, so the same history renders byte for byte the same.

use crate::engine::changelog::{Applied, Changelog, Entry};

/// Renders the changelog as markdown.
pub fn markdown(log: &Changelog) -> String {
    let mut out = String::from("# Migrations\n\n");
    out.push_str(
        "<!-- Written by `strata changelog`. Edit the header comments of the migrations, not this file. -->\n\n",
    );
    out.push_str(&format!(
        "{} migration(s) in `{}` ({} layout). ",
        log.entries.len(),
        log.dir,
        log.format
    ));
    match &log.database {
        Some(db) => out.push_str(&format!("Applied state from database {db}.\n")),
        None => out.push_str("From the files only (no database): applied state not shown.\n"),
    }
    for e in &log.entries {
        out.push('\n');
        entry(&mut out, e);
    }
    out
}

fn entry(out: &mut String, e: &Entry) {
    match &e.version {
        Some(v) => out.push_str(&format!("## {v} {}\n\n", e.name)),
        None => out.push_str(&format!("## {} (repeatable)\n\n", e.name)),
    }
    if let Some(d) = &e.description {
        out.push_str(d);
        out.push_str("\n\n");
    }
    if let Some(applied) = &e.applied {
        out.push_str(&format!("- Applied: {}\n", state(applied)));
    }
    match e.has_down {
        Some(true) => out.push_str("- Down: yes\n"),
        Some(false) => out.push_str("- Down: no (irreversible)\n"),
        None => out.push_str("- Down: unknown (the file is missing)\n"),
    }
    match &e.risk {
        Some((risk, rules)) => {
            let rules: Vec<String> = rules.iter().map(|r| format!("`{r}`")).collect();
            out.push_str(&format!("- Risk: {risk} ({})\n", rules.join(", ")));
        }
        None if e.has_down.is_none() => out.push_str("- Risk: unknown (the file is missing)\n"),
        None => out.push_str("- Risk: none\n"),
    }
}

fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn state(applied: &Applied) -> String {
    match applied {
        Applied::Yes {
            at,
            by,
            how,
            changed,
            missing,
        } => {
            let verb = match how.as_str() {
                "baseline" => "baselined (marked as applied without running) ",
                "adopt" => "adopted from another tool's history ",
                _ => "",
            };
            let mut text = format!("{verb}{} by `{by}`", when(at));
            if *changed {
                text.push_str("; the file changed since");
            }
            if *missing {
                text.push_str("; the file is missing");
            }
            text
        }
        Applied::No { reverted: None } => "no".to_owned(),
        Applied::No {
            reverted: Some((at, by)),
        } => format!("no (reverted {} by `{by}`)", when(at)),
        Applied::Partial { at, by, detail } => {
            format!("partly ({detail}; started {} by `{by}`)", when(at))
        }
    }
}
