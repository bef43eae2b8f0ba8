//! `strata verify`, `strata baseline --verify` and `strata dump`'s
//! messages: per-object differences, one line each.

use crate::verify::catalog::Difference;
use crate::verify::check::{BaselineCheck, VerifyReport};

/// The differences, one indented line each (`  index users_email_idx: added`).
pub fn differences(list: &[Difference]) -> String {
    list.iter().map(|d| format!("  {d}\n")).collect::<String>()
}

/// The `strata verify` report: checksums, drift, schema file, and a last
/// line with the number of problems.
pub fn verify_text(r: &VerifyReport) -> String {
    let mut out = String::new();
    if r.files.is_empty() {
        out.push_str(&format!(
            "checksums: {} applied migration(s) match their files\n",
            r.checked
        ));
    } else {
        out.push_str(&format!(
            "checksums: {} of {} applied migration(s) do not match their files:\n",
            r.files.len(),
            r.checked
        ));
        for f in &r.files {
            let detail = f
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            out.push_str(&format!("  {}: {}{detail}\n", f.migration, f.state));
        }
    }
    let on = format!(
        "{} applied migration(s) replayed on a throwaway PostgreSQL {}",
        r.replayed, r.replay_major
    );
    if r.drift.is_empty() {
        out.push_str(&format!("drift: none ({on})\n"));
    } else {
        out.push_str(&format!(
            "drift: {} object(s) differ from the migrations ({on}; added/removed: by hand in the database):\n",
            r.drift.len()
        ));
        out.push_str(&differences(&r.drift));
    }
    if r.live_major != r.replay_major {
        out.push_str(&format!(
            "note: the database runs PostgreSQL {} and the replay {}: definitions the server prints (views, defaults) may differ only in form\n",
            r.live_major, r.replay_major
        ));
    }
    if let Some(s) = &r.schema_file {
        let path = s.path.display();
        match (&s.load_error, s.differences.is_empty()) {
            (Some(e), _) => out.push_str(&format!(
                "schema file {path}: {}\n",
                e.replace('\n', "\n  ")
            )),
            (None, true) => out.push_str(&format!("schema file {path}: matches the migrations\n")),
            (None, false) => {
                out.push_str(&format!(
                    "schema file {path}: {} object(s) differ from the migrations (added/removed: in the file only/missing from it):\n",
                    s.differences.len()
                ));
                out.push_str(&differences(&s.differences));
            }
        }
    }
    match r.problems() {
        0 => out.push_str("verify: ok\n"),
        n => out.push_str(&format!("verify: {n} problem(s)\n")),
    }
    out
}

/// `strata baseline V --verify` when the schema does not match: nothing
/// was marked.
pub fn baseline_mismatch(check: &BaselineCheck, version: &str) -> String {
    format!(
        "baseline {version}: the database does not match the {} migration(s) up to {version} (added/removed: in the database only/missing from it):\n{}nothing was marked as applied\n",
        check.replayed,
        differences(&check.differences)
    )
}
