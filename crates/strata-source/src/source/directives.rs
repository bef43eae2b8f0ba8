//! Strata's own comment directives (`-- strata:…`).
//!
//! Directives are written as line comments so that every other tool, and the
//! server itself, ignores them. An unknown `strata:` directive is an error, so
//! that a typo such as `-- strata:no-transacton` never silently runs a file in
//! the wrong mode.

use super::{SourceProblem, Sql};
use crate::sql::{Statement, TransactionBehavior};

/// A recognised `-- strata:` directive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Directive {
    /// `-- strata:no-transaction`: run the file outside a transaction.
    NoTransaction,
    /// `-- strata:allow RULE[, RULE] reason: …`: acknowledge lint findings.
    Allow {
        /// The acknowledged rule ids.
        rules: Vec<String>,
        /// Why the finding is acceptable here.
        reason: String,
    },
    /// `-- strata:placeholders`: replace `${name}` in this file with the
    /// configured values (see [`super::placeholders`]). Opt-in per file, so
    /// that `${…}` in a file written for another tool never changes meaning.
    Placeholders,
    /// `-- strata:backfill`: run the next statement (an UPDATE, a
    /// DELETE … WHERE, or an INSERT INTO … SELECT … FROM) as a batched,
    /// throttled, resumable backfill (see [`mark_backfills`]).
    Backfill,
}

/// The backfill directive as written.
pub(crate) const BACKFILL: &str = "-- strata:backfill";

/// Parses one line. Returns `None` when the line is not a strata directive,
/// `Some(Err(message))` when it is one but malformed or unknown.
pub fn parse_strata_directive(line: &str) -> Option<Result<Directive, String>> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    let body = rest.strip_prefix("strata:")?;
    let (name, args) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim()),
        None => (body.trim(), ""),
    };
    Some(match name {
        "no-transaction" if args.is_empty() => Ok(Directive::NoTransaction),
        "no-transaction" => Err(format!(
            "`strata:no-transaction` takes no arguments, found `{args}`"
        )),
        "allow" => parse_allow(args),
        // The up/down markers are read by the layout loaders, which split
        // the file there; a marker with words after it is a typo.
        "up" | "down" if args.is_empty() => return None,
        "up" | "down" => Err(format!(
            "`strata:{name}` takes no arguments, found `{args}`"
        )),
        "backfill" if args.is_empty() => Ok(Directive::Backfill),
        "backfill" => Err(format!(
            "`strata:backfill` takes no arguments, found `{args}` (batch settings go in [backfill] of strata.toml)"
        )),
        "placeholders" if args.is_empty() => Ok(Directive::Placeholders),
        "placeholders" => Err(format!(
            "`strata:placeholders` takes no arguments, found `{args}` (values go in [placeholders] of strata.toml)"
        )),
        other => Err(format!(
            "unknown directive `strata:{other}` (known: strata:no-transaction, strata:allow, strata:backfill, strata:placeholders, strata:up, strata:down)"
        )),
    })
}

fn parse_allow(args: &str) -> Result<Directive, String> {
    let (rules, reason) = match args.find("reason:") {
        Some(i) => (&args[..i], args[i + "reason:".len()..].trim()),
        None => (args, ""),
    };
    let rules: Vec<String> = rules
        .split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if rules.is_empty() {
        return Err("`strata:allow` needs at least one rule id".to_owned());
    }
    if reason.is_empty() {
        return Err(format!(
            "`strata:allow {}` needs a reason: write `reason: <why this is safe>`",
            rules.join(", ")
        ));
    }
    Ok(Directive::Allow {
        rules,
        reason: reason.to_owned(),
    })
}

/// What a backfill directive may stand above, for messages.
const BACKFILL_TARGETS: &str = "an UPDATE, a DELETE … WHERE, or an INSERT INTO … SELECT … FROM";

/// Attaches each `-- strata:backfill` of `script` to the statement right
/// below it (`Statement::backfill`), and returns a problem, at the
/// directive's line, for each one that has no such statement: at the end
/// of the script, inside a statement, above a statement of another kind,
/// or inside the script's own `BEGIN` … `COMMIT` (a backfill commits each
/// batch). Checked wherever statements are split (the runner, `validate`,
/// lint) so a misplaced directive stops `up` before anything runs.
///
/// Only the statement's shape is checked here; the backfill engine checks
/// the rest of what it supports when it turns the statement into batches.
/// Linear in the script: one pass over its lines and its statements.
pub fn mark_backfills(script: &Sql<'_>, statements: &mut [Statement]) -> Vec<SourceProblem> {
    let mut problems = Vec::new();
    let lines: Vec<usize> = script
        .directives
        .iter()
        .filter(|(_, d)| *d == Directive::Backfill)
        .map(|(line, _)| *line)
        .collect();
    if lines.is_empty() {
        return problems;
    }
    // Byte offset of the start of each line of the text.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(script.text().match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // Whether each statement runs inside a block the script opened itself.
    let mut open = false;
    let inside: Vec<bool> = statements
        .iter()
        .map(|s| match s.transaction {
            TransactionBehavior::Begin => std::mem::replace(&mut open, true),
            TransactionBehavior::Commit | TransactionBehavior::Rollback => {
                std::mem::replace(&mut open, false)
            }
            _ => open,
        })
        .collect();
    let problem = |line: usize, message: String, help: &str| {
        SourceProblem::new(&script.path, Some(line), message).help(help.to_owned())
    };
    let move_it = "put `-- strata:backfill` on the line right above the UPDATE, DELETE or INSERT … SELECT it batches, or remove it";
    for line in lines {
        let rel = line + 1 - script.first_line; // 1-based line of the text
        let at = starts.get(rel - 1).copied().unwrap_or(script.text().len());
        let next = statements.partition_point(|s| s.offset < at);
        if let Some(prev) = next.checked_sub(1).map(|k| &statements[k]) {
            if prev.offset + prev.sql.len() > at {
                problems.push(problem(
                    line,
                    format!(
                        "`-- strata:backfill` inside the statement that starts at line {}; it must stand above a statement",
                        script.first_line + prev.line - 1
                    ),
                    move_it,
                ));
                continue;
            }
        }
        let Some(stmt) = statements.get(next) else {
            problems.push(problem(
                line,
                format!("`-- strata:backfill` with no statement below it; it applies to the next statement, which must be {BACKFILL_TARGETS}"),
                move_it,
            ));
            continue;
        };
        let stmt_line = script.first_line + stmt.line - 1;
        let shape = backfill_shape(stmt);
        if let Err(what) = shape {
            problems.push(problem(
                line,
                format!("`-- strata:backfill` applies to the next statement, which must be {BACKFILL_TARGETS}; the statement at line {stmt_line} is {what}"),
                move_it,
            ));
            continue;
        }
        if inside[next] {
            problems.push(problem(
                line,
                format!("`-- strata:backfill` above a statement (line {stmt_line}) inside the file's own BEGIN … COMMIT; a backfill commits each batch on its own"),
                "move the backfill after the COMMIT (or remove the file's BEGIN/COMMIT)",
            ));
            continue;
        }
        if stmt.backfill {
            problems.push(problem(
                line,
                format!("a second `-- strata:backfill` for the statement at line {stmt_line}"),
                "keep one `-- strata:backfill` above the statement",
            ));
            continue;
        }
        statements[next].backfill = true;
    }
    problems
}

/// `Ok` when `stmt` has the shape of a backfill; otherwise what it is.
fn backfill_shape(stmt: &Statement) -> Result<(), String> {
    use pg_query::NodeEnum;
    let nodes = stmt.nodes();
    if stmt.unparsed.is_some() {
        return Err("too deeply nested to analyse".to_owned());
    }
    if nodes.len() != 1 {
        return Err(format!("a block of {} statements", nodes.len()));
    }
    match nodes[0].node.as_ref() {
        Some(NodeEnum::UpdateStmt(_)) => Ok(()),
        Some(NodeEnum::DeleteStmt(d)) if d.where_clause.is_some() => Ok(()),
        Some(NodeEnum::DeleteStmt(_)) => Err(
            "a DELETE without WHERE (to delete every row in batches, write `WHERE true`)"
                .to_owned(),
        ),
        Some(NodeEnum::InsertStmt(i)) => match i.select_stmt.as_ref().and_then(|s| s.node.as_ref())
        {
            Some(NodeEnum::SelectStmt(s)) if !s.from_clause.is_empty() => Ok(()),
            Some(NodeEnum::SelectStmt(s)) if !s.values_lists.is_empty() => {
                Err("an INSERT … VALUES (nothing to batch)".to_owned())
            }
            _ => Err("an INSERT without SELECT … FROM a table (nothing to batch)".to_owned()),
        },
        _ => Err(statement_kind(&stmt.sql)),
    }
}

/// The leading keywords of a statement (`CREATE INDEX`, `SELECT`).
fn statement_kind(sql: &str) -> String {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    let take = match words.first().map(String::as_str) {
        Some("CREATE" | "ALTER" | "DROP") => match words.get(1).map(String::as_str) {
            Some("UNIQUE" | "OR" | "TEMP" | "TEMPORARY" | "UNLOGGED") => 3,
            _ => 2,
        },
        _ => 1,
    };
    let kind = words
        .iter()
        .take(take)
        .map(|w| w.trim_end_matches(';'))
        .collect::<Vec<_>>()
        .join(" ");
    format!("{kind} (a statement of another kind)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_directives() {
        assert_eq!(
            parse_strata_directive("-- strata:no-transaction"),
            Some(Ok(Directive::NoTransaction))
        );
        assert_eq!(
            parse_strata_directive("--strata:allow a-rule, b-rule reason: table is empty"),
            Some(Ok(Directive::Allow {
                rules: vec!["a-rule".into(), "b-rule".into()],
                reason: "table is empty".into()
            }))
        );
        assert_eq!(
            parse_strata_directive("-- strata:placeholders"),
            Some(Ok(Directive::Placeholders))
        );
        assert_eq!(parse_strata_directive("-- just a comment"), None);
        assert_eq!(parse_strata_directive("SELECT 1"), None);
    }

    #[test]
    fn rejects_unknown_and_malformed_directives() {
        assert!(matches!(
            parse_strata_directive("-- strata:no-transacton"),
            Some(Err(m)) if m.contains("unknown directive")
        ));
        assert!(matches!(
            parse_strata_directive("-- strata:allow some-rule"),
            Some(Err(m)) if m.contains("needs a reason")
        ));
    }

    /// Loads `text` as a script starting at line `first` of `f.sql` and
    /// attaches its backfill directives.
    fn marked(
        text: &str,
        first: usize,
    ) -> (crate::source::Script, Vec<Statement>, Vec<SourceProblem>) {
        let mut problems = Vec::new();
        let script = crate::source::formats::script(
            std::path::Path::new("f.sql"),
            text.to_owned(),
            first,
            Vec::new(),
            None,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let sql = script.load().unwrap();
        let mut statements = crate::sql::split(sql.text(), &script.blocks).unwrap();
        let problems = mark_backfills(&sql, &mut statements);
        (script, statements, problems)
    }

    #[test]
    fn a_backfill_applies_to_the_next_statement_and_takes_the_file_out_of_its_transaction() {
        let text = "ALTER TABLE users ADD COLUMN e text;\n-- strata:backfill\n-- fill it\nUPDATE users SET e = lower(email)\n  WHERE e IS NULL;\nCREATE INDEX i ON users (e);\n";
        let (script, statements, problems) = marked(text, 1);
        assert!(problems.is_empty(), "{problems:?}");
        let flags: Vec<bool> = statements.iter().map(|s| s.backfill).collect();
        assert_eq!(flags, [false, true, false]);
        let nt = script.no_transaction.unwrap();
        assert_eq!(
            (nt.line, nt.source.as_str()),
            (Some(2), "-- strata:backfill")
        );
        assert!(nt.is_strata_directive());
        for ok in [
            "-- strata:backfill\nDELETE FROM t WHERE created < now() - interval '1 year';",
            "-- strata:backfill\nINSERT INTO items (order_id, sku) SELECT id, doc->>'sku' FROM orders;",
            "-- strata:backfill\nUPDATE t SET a = 1;",
        ] {
            let (_, statements, problems) = marked(ok, 1);
            assert!(problems.is_empty() && statements[0].backfill, "{ok}: {problems:?}");
        }
    }

    #[test]
    fn a_misplaced_backfill_is_a_problem_at_its_line() {
        // (text, first line of the script, line of the problem, words of its message)
        let cases = [
            (
                "-- strata:backfill\nCREATE INDEX i ON t (a);",
                1,
                1,
                "the statement at line 2 is CREATE INDEX",
            ),
            (
                "UPDATE t SET a = 1 WHERE a IS NULL;\n-- strata:backfill\n",
                5,
                6,
                "no statement below it",
            ),
            (
                "UPDATE t\n-- strata:backfill\nSET a = 1;",
                1,
                2,
                "inside the statement that starts at line 1",
            ),
            (
                "-- strata:backfill\nDELETE FROM t;",
                1,
                1,
                "DELETE without WHERE",
            ),
            (
                "-- strata:backfill\nINSERT INTO t VALUES (1);",
                1,
                1,
                "INSERT … VALUES",
            ),
            (
                "BEGIN;\n-- strata:backfill\nUPDATE t SET a = 1;\nCOMMIT;",
                1,
                2,
                "inside the file's own BEGIN",
            ),
            (
                "-- strata:backfill\n-- strata:backfill\nUPDATE t SET a = 1;",
                1,
                2,
                "a second",
            ),
            ("-- strata:backfill\nSELECT 1;", 1, 1, "is SELECT"),
        ];
        for (text, first, line, words) in cases {
            let (_, _, problems) = marked(text, first);
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert_eq!(problems[0].line, Some(line), "{text}");
            assert!(
                problems[0].message.contains(words),
                "{text}: {}",
                problems[0].message
            );
            assert!(problems[0].help.is_some());
        }
        assert!(matches!(
            parse_strata_directive("-- strata:backfill batch=10"),
            Some(Err(m)) if m.contains("takes no arguments")
        ));
    }
}
