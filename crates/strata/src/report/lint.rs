//! Lint output in five formats.
//!
//! # `--format json`
//!
//! ```json
//! {"version": 1,
//!  "findings": [{"file": "migrations/2_x.up.sql", "line": 3, "column": 1,
//!                "rule": "ban-drop-column", "risk": "HIGH",
//!                "lock": "ACCESS EXCLUSIVE: blocks everything, ...",
//!                "message": "...", "fix": "...", "acknowledged": false,
//!                "table": "users", "table_rows": 2000000, "table_bytes": 190000000,
//!                "estimate_ms": 12000}],
//!  "summary": {"files": 2, "statements": 14, "findings": 3,
//!              "high": 1, "medium": 1, "low": 1, "acknowledged": 0}}
//! ```
//!
//! `lock`, `fix`, `table`, `table_rows`, `table_bytes` and `estimate_ms`
//! may be absent or null. `table` is the table's name as SQL, quoted where
//! PostgreSQL needs it (`users`, `"Users"`, `"Sch".t`), so it is never
//! ambiguous. Acknowledged findings (`-- strata:allow`) are
//! included with `"acknowledged": true`. `observed` (null unless the file
//! has a stored `strata trace`) is what the trace saw the statement do:
//! `"ACCESS EXCLUSIVE on users, rewrite, 12 ms"`.
//!
//! `github` prints workflow commands (`::error`, `::warning`, `::notice`),
//! `sarif` prints SARIF 2.1.0 with every rule in `tool.driver.rules`, and
//! `gitlab` prints GitLab Code Quality JSON.

use std::path::Path;

use crate::lint::{rules::RULES, Finding, LintReport, Risk};

use super::Style;

/// Output format of `strata lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Human,
    /// The documented JSON object.
    Json,
    /// GitHub Actions workflow commands.
    Github,
    /// SARIF 2.1.0.
    Sarif,
    /// GitLab Code Quality.
    Gitlab,
}

/// A path relative to the working directory, as findings show it.
pub fn rel_path(path: &Path) -> String {
    rel(path)
}

fn rel(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    cwd.as_deref()
        .and_then(|c| path.strip_prefix(c).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Renders a report.
pub fn render(
    report: &LintReport,
    format: Format,
    style: &Style,
    show_acknowledged: bool,
) -> String {
    match format {
        Format::Human => human(report, style, show_acknowledged),
        Format::Json => json(report),
        Format::Github => github(report),
        Format::Sarif => sarif(report),
        Format::Gitlab => gitlab(report),
    }
}

fn paint_risk(risk: Risk, style: &Style) -> String {
    let text = format!("{risk:<6}");
    match risk {
        Risk::High => style.paint("31;1", &text),
        Risk::Medium => style.paint("33;1", &text),
        Risk::Low => style.paint("36", &text),
    }
}

fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// One finding for people: the source line with a caret, then lock, why,
/// size and fix.
pub fn human_finding(f: &Finding, style: &Style) -> String {
    let mut out = format!(
        "{} {}  {}:{}:{}\n",
        paint_risk(f.risk, style),
        style.paint("1", f.rule),
        rel(&f.file),
        f.line,
        f.column
    );
    let gutter = f.line.to_string().len();
    let pad = " ".repeat(gutter);
    out.push_str(&format!(
        " {pad} |\n {} | {}\n {pad} | {}{}\n",
        f.line,
        f.source_line,
        " ".repeat(f.column.saturating_sub(1)),
        style.paint("31", "^")
    ));
    out.push_str(&format!(" {pad} = why: {}\n", f.message));
    if let Some(lock) = &f.lock {
        out.push_str(&format!(" {pad} = lock: {lock}\n"));
    }
    if let (Some(table), Some(rows)) = (&f.table, f.table_rows) {
        let est = f
            .estimate_ms
            .map(|ms| format!(", about {:.1} s of lock or rewrite", ms as f64 / 1000.0))
            .unwrap_or_default();
        out.push_str(&format!(
            " {pad} = table: {table}: {rows} rows, {}{est}\n",
            human_size(f.table_bytes.unwrap_or(0))
        ));
    }
    if let Some(observed) = &f.observed {
        out.push_str(&format!(" {pad} = observed: {observed}\n"));
    }
    if let Some(fix) = &f.fix {
        out.push_str(&format!(" {pad} = safe rewrite:\n"));
        for line in fix.lines() {
            out.push_str(&format!(" {pad}     {}\n", style.paint("32", line)));
        }
    }
    out
}

/// The one-line summary.
pub fn summary(report: &LintReport) -> String {
    let count = |r| report.active().filter(|f| f.risk == r).count();
    let acknowledged = report.findings.iter().filter(|f| f.allowed).count();
    format!(
        "{} finding(s): {} HIGH, {} MEDIUM, {} LOW in {} file(s), {} statement(s){}",
        report.active().count(),
        count(Risk::High),
        count(Risk::Medium),
        count(Risk::Low),
        report.files,
        report.statements,
        if acknowledged > 0 {
            format!("; {acknowledged} acknowledged by strata:allow")
        } else {
            String::new()
        }
    )
}

fn human(report: &LintReport, style: &Style, show_acknowledged: bool) -> String {
    let mut out = String::new();
    for f in report
        .findings
        .iter()
        .filter(|f| show_acknowledged || !f.allowed)
    {
        out.push_str(&human_finding(f, style));
        out.push('\n');
    }
    out.push_str(&summary(report));
    out
}

fn json(report: &LintReport) -> String {
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "file": rel(&f.file), "line": f.line, "column": f.column, "rule": f.rule, "risk": f.risk,
                "lock": f.lock, "message": f.message, "fix": f.fix, "acknowledged": f.allowed,
                "table": f.table, "table_rows": f.table_rows, "table_bytes": f.table_bytes, "estimate_ms": f.estimate_ms,
                "observed": f.observed,
            })
        })
        .collect();
    let count = |r| report.active().filter(|f| f.risk == r).count();
    serde_json::to_string_pretty(&serde_json::json!({
        "version": 1,
        "findings": findings,
        "summary": {
            "files": report.files, "statements": report.statements, "findings": report.active().count(),
            "high": count(Risk::High), "medium": count(Risk::Medium), "low": count(Risk::Low),
            "acknowledged": report.findings.iter().filter(|f| f.allowed).count(),
        }
    }))
    .expect("invariant: JSON values serialise")
}

fn escape_github(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn github(report: &LintReport) -> String {
    report
        .active()
        .map(|f| {
            let level = match f.risk {
                Risk::High => "error",
                Risk::Medium => "warning",
                Risk::Low => "notice",
            };
            let mut body = f.message.clone();
            if let Some(fix) = &f.fix {
                body.push_str("\nSafe rewrite:\n");
                body.push_str(fix);
            }
            format!(
                "::{level} file={},line={},col={},title={} ({})::{}",
                escape_github(&rel(&f.file)).replace(',', "%2C"),
                f.line,
                f.column,
                f.rule,
                f.risk,
                escape_github(&body)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sarif_level(risk: Risk) -> &'static str {
    match risk {
        Risk::High => "error",
        Risk::Medium => "warning",
        Risk::Low => "note",
    }
}

fn sarif(report: &LintReport) -> String {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            let m = r.meta();
            serde_json::json!({
                "id": m.id,
                "name": m.id,
                "shortDescription": {"text": m.summary},
                "fullDescription": {"text": m.summary},
                "help": {"text": m.doc, "markdown": m.doc},
                "defaultConfiguration": {"level": sarif_level(m.risk)},
                "properties": {"risk": m.risk, "lock": m.lock.map(|l| l.name())},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut result = serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.meta().id == f.rule),
                "level": sarif_level(f.risk),
                "message": {"text": match &f.fix { Some(fix) => format!("{}\nSafe rewrite:\n{fix}", f.message), None => f.message.clone() }},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": rel(&f.file)},
                    "region": {"startLine": f.line, "startColumn": f.column}
                }}],
                "properties": {"risk": f.risk, "lock": f.lock, "table": f.table, "tableRows": f.table_rows, "estimateMs": f.estimate_ms},
            });
            if f.allowed {
                result["suppressions"] = serde_json::json!([{"kind": "inSource", "justification": "strata:allow"}]);
            }
            result
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "strata",
                "version": crate::TOOL_VERSION,
                "informationUri": "https://example.invalid/strata",
                "rules": rules,
            }},
            "results": results,
        }]
    }))
    .expect("invariant: JSON values serialise")
}

fn gitlab(report: &LintReport) -> String {
    let issues: Vec<serde_json::Value> = report
        .active()
        .map(|f| {
            let severity = match f.risk {
                Risk::High => "critical",
                Risk::Medium => "major",
                Risk::Low => "minor",
            };
            let fingerprint = crate::source::checksum(&format!(
                "{}|{}|{}|{}",
                f.rule,
                rel(&f.file),
                f.source_line,
                f.message
            ));
            serde_json::json!({
                "type": "issue",
                "check_name": f.rule,
                "description": format!("{}: {}", f.rule, f.message),
                "content": {"body": f.fix.clone().unwrap_or_default()},
                "categories": ["Bug Risk"],
                "severity": severity,
                "fingerprint": fingerprint,
                "location": {"path": rel(&f.file), "lines": {"begin": f.line}},
            })
        })
        .collect();
    serde_json::to_string_pretty(&issues).expect("invariant: JSON values serialise")
}

/// `strata rules`: one line per rule.
pub fn rules_table() -> String {
    RULES
        .iter()
        .map(|r| {
            let m = r.meta();
            format!("{:<40} {:<6} {}", m.id, m.risk, m.summary)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
