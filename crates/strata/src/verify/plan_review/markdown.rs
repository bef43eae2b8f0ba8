//! The plan review as GitHub-flavoured markdown: headings, tables and a
//! task list, so it can be pasted into a pull request as it is.

use super::{human_bytes, human_ms, PlanReview};

/// Escapes text for a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn ms_or_dash(ms: Option<i64>) -> String {
    ms.map_or("–".to_owned(), human_ms)
}

/// The review as markdown; `rel` shows paths relative to where the user is.
pub fn markdown(r: &PlanReview, rel: &dyn Fn(&std::path::Path) -> String) -> String {
    let mut out = format!("# Plan: {}\n\n", r.label);
    if let Some(d) = &r.description {
        out.push_str(&format!("{d}\n\n"));
    }
    out.push_str(&format!(
        "`{}`, {} phase(s){}.",
        rel(&r.file),
        r.phases.len(),
        if r.independent {
            "; independent: later migrations do not wait for it"
        } else {
            "; later migrations wait until it is done"
        }
    ));
    match (&r.progress, r.connected) {
        (Some(p), _) => out.push_str(&format!(" On the connected database: {p}.")),
        (None, false) => out.push_str(
            " Not connected: no sizes, so no row counts or duration estimates, and operations that carry a table's catalog over are described, not compiled (configure a database or pass `--database-url`).",
        ),
        (None, true) => {}
    }

    out.push_str(&format!("\n\n## Risk Level: {}\n\n", r.risk.class));
    out.push_str(&format!(
        "Lint, as `strata up` judges the plan: {}.\n",
        if r.risk.findings.is_empty() {
            "no finding".to_owned()
        } else {
            r.risk.lint_class.clone()
        }
    ));
    for f in &r.risk.findings {
        out.push_str(&format!("- {f}\n"));
    }
    if !r.risk.operations.is_empty() {
        out.push_str("\nWhat the operations do:\n\n");
        for o in &r.risk.operations {
            out.push_str(&format!("- {o}\n"));
        }
    }

    out.push_str("\n## Phases\n\n| # | phase | operations | estimate | then (gate) | rollback |\n|---:|---|---|---:|---|---|\n");
    for p in &r.phases {
        let ops = p
            .operations
            .iter()
            .map(|o| {
                format!(
                    "`{}`{} (line {})",
                    o.op,
                    o.step
                        .as_deref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default(),
                    o.line
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| {} | {}{} | {} | {} | {} | {} |\n",
            p.number,
            cell(&p.name),
            p.state
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            cell(&ops),
            ms_or_dash(p.estimate_ms),
            cell(&p.gate.text),
            if p.rollback.reversible {
                "reversible"
            } else {
                "**irreversible** (backup)"
            }
        ));
    }

    out.push_str("\n## Schema Changes\n");
    for p in &r.phases {
        out.push_str(&format!("\n### Phase {}: {}\n\n", p.number, p.name));
        for o in p.operations.iter().filter(|o| !o.compiled) {
            if let Some(note) = &o.note {
                out.push_str(&format!("`{}` (line {}): {note}.\n\n", o.op, o.line));
            }
        }
        if p.schema_changes.is_empty() {
            out.push_str("- no schema change (data and checks only)\n");
        }
        for c in &p.schema_changes {
            out.push_str(&format!("- {c}\n"));
        }
        let actions: Vec<_> = p.operations.iter().flat_map(|o| &o.actions).collect();
        if !actions.is_empty() {
            out.push_str("\n| action | what | lock | rows | estimate |\n|---|---|---|---:|---:|\n");
            for a in actions {
                out.push_str(&format!(
                    "| {} | `{}` | {} | {} | {} |\n",
                    a.kind,
                    cell(&a.summary).replace('`', "'"),
                    a.lock.as_deref().map_or("–".to_owned(), cell),
                    a.rows.map_or("–".to_owned(), |n| n.to_string()),
                    ms_or_dash(a.estimate_ms)
                ));
            }
        }
        if !p.findings.is_empty() {
            out.push_str("\nFindings:\n\n");
            for f in &p.findings {
                out.push_str(&format!("- {f}\n"));
            }
        }
        out.push_str(&format!("\nThen: {}.\n", gate_words(&p.gate)));
    }

    out.push_str("\n## Data Impact\n\n");
    if r.data_impact.is_empty() {
        out.push_str("No table named by an operation.\n");
    } else {
        out.push_str(
            "| table | rows | size | rows touched | what happens |\n|---|---:|---:|---:|---|\n",
        );
        for t in &r.data_impact {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&t.table),
                t.rows.map_or("–".to_owned(), |n| n.to_string()),
                t.bytes.map_or("–".to_owned(), |b| human_bytes(b as f64)),
                t.rows_touched.map_or("–".to_owned(), |n| n.to_string()),
                cell(&t.effects.join("; "))
            ));
        }
    }
    if !r.connected {
        out.push_str("\nNot connected: no sizes.\n");
    }

    out.push_str("\n## Estimated Duration\n\n");
    for p in &r.phases {
        out.push_str(&format!(
            "- Phase {} `{}`: {}\n",
            p.number,
            p.name,
            p.estimate_ms
                .map_or("unknown".to_owned(), |ms| format!("about {}", human_ms(ms)))
        ));
        for a in p.operations.iter().flat_map(|o| &o.actions) {
            if let (Some(ms), Some(how)) = (a.estimate_ms, &a.how) {
                if ms > 0 || a.kind == "backfill" {
                    out.push_str(&format!("  - {} {}: {}\n", a.kind, human_ms(ms), how));
                }
            }
        }
    }
    match (r.total_estimate_ms, r.total_estimate_complete) {
        (Some(ms), true) => out.push_str(&format!(
            "\nTotal: about {} of work, plus the time the gates take.\n",
            human_ms(ms)
        )),
        (Some(ms), false) => out.push_str(&format!(
            "\nTotal: at least {} of work (phases with an operation compiled only when it runs are not counted), plus the time the gates take.\n",
            human_ms(ms)
        )),
        (None, _) => out.push_str("\nTotal: unknown (not connected).\n"),
    }
    out.push_str("\nHow:\n\n");
    for h in &r.estimates.how {
        out.push_str(&format!("- {h}\n"));
    }

    out.push_str("\n## Longest Lock\n\n");
    match &r.longest_lock {
        Some(l) => out.push_str(&format!(
            "{} on {} in phase {}, {}: {}. Held {}. Bound: {}.\n",
            l.lock, l.table, l.phase, l.operation, l.blocks, l.hold, l.bound
        )),
        None if r.connected => out.push_str("No table lock taken on an existing table.\n"),
        None => out
            .push_str("Unknown from the files alone for the operations compiled when they run.\n"),
    }
    let blocking: Vec<_> = r.locks.iter().filter(|l| l.blocks_app).collect();
    if blocking.len() > 1 {
        out.push_str("\nEvery lock that blocks the application:\n\n");
        for l in blocking {
            out.push_str(&format!(
                "- phase {}, {}: {} on {}, held {}\n",
                l.phase, l.operation, l.lock, l.table, l.hold
            ));
        }
    }

    out.push_str("\n## Rollback Procedure\n\n");
    for p in r.phases.iter().rev() {
        out.push_str(&format!(
            "- Phase {} `{}`: {}\n",
            p.number, p.name, p.rollback.command
        ));
        for why in &p.rollback.irreversible {
            out.push_str(&format!("  - {why}\n"));
        }
        if !p.rollback.reverse_changes.is_empty() {
            out.push_str(&format!(
                "  - reverses: {}\n",
                p.rollback.reverse_changes.join("; ")
            ));
        }
    }
    out.push_str("\nA plan that stopped part way or failed: `strata abort ");
    out.push_str(&r.version);
    out.push_str("` undoes every started operation.\n");

    out.push_str("\n## Deploy Steps\n\n");
    for s in &r.deploy_steps {
        out.push_str(&format!("- [ ] {s}\n"));
    }

    out.push_str("\n## Testing Plan\n\n");
    for (i, s) in r.testing.steps.iter().enumerate() {
        out.push_str(&format!("{}. {s}\n", i + 1));
    }
    out.push_str("\nValidations the plan runs (each stops the plan and shows the first 20 rows on failure):\n\n");
    if r.testing.validations.is_empty() {
        out.push_str("- none compiled yet\n");
    }
    for v in &r.testing.validations {
        out.push_str(&format!("- {v}\n"));
    }
    out.push_str("\nWhat to watch:\n\n");
    for w in &r.testing.watch {
        out.push_str(&format!("- {w}\n"));
    }
    out
}

fn gate_words(g: &super::GateReview) -> String {
    match (g.kind.as_str(), &g.deploy, g.wait_secs) {
        ("deploy", Some(text), _) => format!("gate: deploy **{text}**"),
        ("wait", _, Some(_)) => format!("gate: {}", g.text),
        _ => "no gate: the next phase (if any) runs at once".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_keep_pipes_and_newlines_out_of_the_layout() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
        assert_eq!(ms_or_dash(None), "–");
        assert_eq!(ms_or_dash(Some(1500)), "1.5 s");
    }
}
