//! Predicted against observed: the lint hook of `strata trace`.
//!
//! When a migration has a stored trace of its file as it is now, `lint`
//! shows the observed facts beside each finding of a traced statement
//! ("observed: ACCESS EXCLUSIVE on users, rewrite"), and every difference
//! between what the analysis predicted and what the server did becomes a
//! `prediction-mismatch` finding. It is a defect of the prediction, not of
//! the migration: it says which rule or lock table to fix, so it is LOW.
//!
//! The prediction of a statement is the lint analysis's own: the lock
//! `lint::context::table_lock` gives it and the locks and tables of the
//! findings at its line; a rewrite is predicted when a finding of a
//! rewriting rule ([`REWRITE_RULES`]) is at its line. Only what blocks
//! someone is compared: SHARE or stronger locks on tables and
//! materialized views that existed before the migration, and rewrites of
//! such tables (what the migration itself creates blocks nobody).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{mode_rank, stored, StatementTrace, Trace};
use crate::config::Config;
use crate::lint::{context::table_lock, Finding, LintReport, Risk, RuleMeta};

/// Rules whose findings say the statement rewrites its table.
pub const REWRITE_RULES: &[&str] = &[
    "ban-column-type-change",
    "ban-volatile-default",
    "ban-add-serial-or-identity-column",
    "ban-stored-generated-column",
    "ban-set-logged-unlogged",
    "ban-vacuum-full",
    "ban-cluster",
];

/// The finding kind of a difference between prediction and observation.
pub static PREDICTION_MISMATCH: RuleMeta = RuleMeta {
    id: "prediction-mismatch",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "The lock or rewrite lint predicted differs from what `strata trace` observed",
    doc: "## What it does\n\nCompares the lock and rewrite the analysis predicts for a statement with what `strata trace` observed on a copy of the schema.\n\n## Why is this bad?\n\nThe rules are wrong about this statement: fix the rule, not the migration.\n\n## Safe rewrite\n\nNone needed.\n\n## Example\n\n`ALTER TABLE users SET (fillfactor = 70)` takes SHARE UPDATE EXCLUSIVE, not ACCESS EXCLUSIVE.\n",
};

/// Adds observed facts and mismatches to `report`, from the stored traces
/// of the configured migrations; returns how many traces were used.
/// Nothing happens (and nothing is read) when no trace is stored.
pub fn annotate(config: &Config, report: &mut LintReport) -> usize {
    let dir = super::traces_dir(config);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let names: BTreeSet<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return 0;
    }
    let loaded = crate::engine::load_dirs(config);
    let mut traces: HashMap<PathBuf, (Trace, &crate::source::Migration)> = HashMap::new();
    for m in &loaded.migrations {
        let file = super::stored_path(config, m);
        let named = file
            .file_name()
            .is_some_and(|n| names.contains(&*n.to_string_lossy()));
        if !named {
            continue;
        }
        if let Some(t) = stored(config, m) {
            traces.insert(canonical(&m.up.path), (t, m));
        }
    }
    if traces.is_empty() {
        return 0;
    }
    // Findings by (file, line).
    let mut by_line: BTreeMap<(PathBuf, usize), Vec<usize>> = BTreeMap::new();
    for (i, f) in report.findings.iter().enumerate() {
        by_line
            .entry((canonical(&f.file), f.line))
            .or_default()
            .push(i);
    }
    let mut added = Vec::new();
    for (path, (trace, m)) in &traces {
        // Traced from this text moments ago; unreadable now, it adds nothing.
        let statements =
            m.up.load()
                .ok()
                .and_then(|sql| crate::sql::split(sql.text(), &m.up.blocks).ok())
                .unwrap_or_default();
        let observed: HashMap<usize, &StatementTrace> =
            trace.statements.iter().map(|s| (s.line, s)).collect();
        for s in &statements {
            let line = m.up.first_line + s.line - 1;
            let Some(obs) = observed.get(&line) else {
                continue;
            };
            if obs.error.is_some() {
                continue;
            }
            let here = by_line
                .get(&(path.clone(), line))
                .cloned()
                .unwrap_or_default();
            let facts = super::short_facts(obs);
            for &i in &here {
                report.findings[i].observed = Some(facts.clone());
            }
            let mut predicted: Vec<(String, String)> = s
                .nodes()
                .iter()
                .filter_map(|n| n.node.as_ref())
                .filter_map(table_lock)
                .map(|(lock, table)| (lock.name().to_owned(), table))
                .collect();
            let mut rewrite = false;
            for &i in &here {
                let f = &report.findings[i];
                rewrite |= REWRITE_RULES.contains(&f.rule);
                if let (Some(lock), Some(table)) = (&f.lock, &f.table) {
                    let mode = lock.split(':').next().unwrap_or("").trim().to_owned();
                    if mode_rank(&mode) > 0 {
                        predicted.push((mode, table.clone()));
                    }
                }
            }
            for message in differences(&predicted, rewrite, obs) {
                let mut f = Finding::new(&PREDICTION_MISMATCH, message);
                f.file = m.up.path.clone();
                f.line = line;
                f.column = 1;
                f.source_line = s.summary();
                f.observed = Some(facts.clone());
                added.push(f);
            }
        }
    }
    // Each mismatch goes after the findings of its line, files staying in
    // the order lint reported them (run order, not path order).
    if added.is_empty() {
        return traces.len();
    }
    let mut rank: HashMap<PathBuf, usize> = HashMap::new();
    for f in report.findings.iter().chain(&added) {
        let next = rank.len();
        rank.entry(f.file.clone()).or_insert(next);
    }
    report.findings.extend(added);
    report
        .findings
        .sort_by_cached_key(|f| (rank.get(&f.file).copied().unwrap_or(usize::MAX), f.line));
    traces.len()
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Names as lint writes them (`users`, `public.users`) and as the trace
/// does (`users`, `app.t`, `"Users"`) compared alike.
fn same_table(predicted: &str, observed: &str) -> bool {
    let norm = |s: &str| {
        crate::lint::schema::key(s)
            .replace('"', "")
            .to_ascii_lowercase()
    };
    norm(predicted) == norm(observed)
}

/// The differences, one message each.
pub fn differences(
    predicted: &[(String, String)],
    predicted_rewrite: bool,
    obs: &StatementTrace,
) -> Vec<String> {
    let mut out = Vec::new();
    let relevant = |kind: &str| matches!(kind, "table" | "partitioned table" | "materialized view");
    // Strongest predicted mode per table.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for (mode, table) in predicted {
        let e = want.entry(table.clone()).or_default();
        if mode_rank(mode) > mode_rank(e) {
            *e = mode.clone();
        }
    }
    for (table, mode) in &want {
        let taken = obs
            .locks
            .iter()
            .filter(|l| same_table(table, &l.relation))
            .max_by_key(|l| mode_rank(&l.mode));
        let held_same = obs
            .held
            .iter()
            .any(|l| same_table(table, &l.relation) && &l.mode == mode);
        let created_here = obs
            .held
            .iter()
            .chain(&obs.locks)
            .any(|l| same_table(table, &l.relation) && !l.existed);
        match taken {
            _ if created_here => {}
            Some(l) if &l.mode == mode => {}
            // Taken in the same mode by an earlier statement of the
            // transaction: this one's cannot be seen.
            _ if held_same => {}
            Some(l) => out.push(format!(
                "predicted {mode} on {table}; observed {} on {}",
                l.mode, l.relation
            )),
            None => out.push(format!(
                "predicted {mode} on {table}; observed no lock on it"
            )),
        }
    }
    let unpredicted: Vec<_> = obs
        .locks
        .iter()
        .filter(|l| {
            l.existed && relevant(&l.kind) && !want.keys().any(|t| same_table(t, &l.relation))
        })
        .cloned()
        .collect();
    for (relation, mode) in super::strongest_by_relation(&unpredicted) {
        if mode_rank(&mode) >= mode_rank("SHARE") {
            out.push(format!(
                "observed {mode} on {relation}, which the analysis does not predict"
            ));
        }
    }
    let existing: Vec<&str> = obs
        .locks
        .iter()
        .chain(&obs.held)
        .filter(|l| l.existed)
        .map(|l| l.relation.as_str())
        .collect();
    let rewritten: Vec<&str> = obs
        .rewritten_tables()
        .into_iter()
        .filter(|t| existing.contains(t))
        .collect();
    match (predicted_rewrite, rewritten.is_empty()) {
        (true, true) => {
            out.push("predicted a table rewrite; observed none (no relfilenode changed)".to_owned())
        }
        (false, false) => out.push(format!(
            "observed a rewrite of {} (relfilenode changed), which the analysis does not predict",
            rewritten.join(", ")
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ObservedLock;
    use super::*;

    fn obs(locks: &[(&str, &str)], rewrites: &[&str]) -> StatementTrace {
        let locks: Vec<ObservedLock> = locks
            .iter()
            .map(|(mode, rel)| ObservedLock {
                relation: rel.to_string(),
                kind: "table".into(),
                mode: mode.to_string(),
                existed: true,
            })
            .collect();
        StatementTrace {
            line: 1,
            summary: String::new(),
            held: locks.clone(),
            locks,
            observed_from: "own backend".into(),
            rewrites: rewrites.iter().map(|r| format!("table {r}")).collect(),
            ms: 1.0,
            changes: Vec::new(),
            note: None,
            error: None,
        }
    }

    #[test]
    fn agreement_is_silent() {
        let p = vec![("ACCESS EXCLUSIVE".to_owned(), "public.users".to_owned())];
        assert!(
            differences(&p, true, &obs(&[("ACCESS EXCLUSIVE", "users")], &["users"])).is_empty()
        );
    }

    #[test]
    fn a_different_mode_an_unpredicted_lock_and_a_missed_rewrite_are_reported() {
        let p = vec![("ACCESS EXCLUSIVE".to_owned(), "users".to_owned())];
        let d = differences(
            &p,
            false,
            &obs(
                &[
                    ("SHARE UPDATE EXCLUSIVE", "users"),
                    ("SHARE ROW EXCLUSIVE", "orgs"),
                ],
                &["users"],
            ),
        );
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("observed SHARE UPDATE EXCLUSIVE on users"));
        assert!(d[1].contains("SHARE ROW EXCLUSIVE on orgs"));
        assert!(d[2].contains("rewrite of users"));
    }

    #[test]
    fn a_lock_an_earlier_statement_holds_in_the_same_mode_is_no_mismatch() {
        let p = vec![("ACCESS EXCLUSIVE".to_owned(), "users".to_owned())];
        let mut o = obs(&[], &[]);
        o.held = obs(&[("ACCESS EXCLUSIVE", "users")], &[]).held;
        assert!(differences(&p, false, &o).is_empty());
    }
}
