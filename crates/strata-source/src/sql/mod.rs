//! SQL: splitting scripts into statements and classifying them, with the real
//! PostgreSQL parser (`pg_query`).
//!
//! The split is done by the server's own grammar, so `$$` bodies, quoted
//! strings, comments and `BEGIN ATOMIC` bodies are never cut in the wrong
//! place. Each [`Statement`] knows its position (for `file:line` messages),
//! whether it may run inside a transaction block, and keeps its parse tree
//! for the lint rules.
//!
//! **Architecture Invariant:** this module takes text in and returns data. It
//! knows nothing of files, history or connections; positions are relative to
//! the text it was given.

pub mod balance;
mod classify;
mod lexical;
pub mod names;

use std::ops::Range;

pub use classify::TransactionBehavior;
pub use lexical::{is_blank, line_col, skip_block_comment, skip_trivia};

/// One statement of a script.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The statement text, from its first token up to (excluding) the `;`.
    pub sql: String,
    /// Byte offset of the first token in the script text.
    pub offset: usize,
    /// 1-based line of the first token in the script text.
    pub line: usize,
    /// 1-based column (in characters) of the first token.
    pub column: usize,
    /// Whether it may run in a transaction block, or controls one.
    pub transaction: TransactionBehavior,
    /// The parse trees of the statement. Usually one; a goose
    /// `StatementBegin` block may hold several.
    pub nodes: Vec<pg_query::protobuf::Node>,
    /// Why the statement has no parse tree although it is valid SQL (it is
    /// nested too deeply for the tree to be handed over): it runs as
    /// written, but the analysis cannot look inside it.
    pub unparsed: Option<String>,
}

impl Statement {
    /// The first line of the statement, shortened, for progress messages.
    pub fn summary(&self) -> String {
        let first = self.sql.lines().next().unwrap_or("").trim();
        if first.chars().count() > 72 {
            let cut: String = first.chars().take(69).collect();
            format!("{cut}...")
        } else {
            first.to_owned()
        }
    }
}

/// How a script runs, decided from its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
    /// All statements (and the history row) in one transaction.
    Transaction,
    /// Each statement on its own; the text says why.
    NoTransaction(String),
    /// The script manages its own transactions (BEGIN/COMMIT); run as written.
    AsWritten,
}

impl RunMode {
    /// Decides the mode. `directive` is a "no transaction" directive found in
    /// the file (with its description); `first_line` maps statement lines to
    /// file lines for the message.
    pub fn of(directive: Option<String>, first_line: usize, statements: &[Statement]) -> RunMode {
        if statements.iter().any(|s| s.transaction.is_control()) {
            return RunMode::AsWritten;
        }
        if let Some(why) = directive {
            return RunMode::NoTransaction(why);
        }
        for s in statements {
            if let TransactionBehavior::Never(why) = s.transaction {
                return RunMode::NoTransaction(format!(
                    "{why} at line {} cannot run inside a transaction block",
                    first_line + s.line - 1
                ));
            }
        }
        RunMode::Transaction
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            RunMode::Transaction => "in a transaction".to_owned(),
            RunMode::NoTransaction(why) => format!("outside a transaction ({why})"),
            RunMode::AsWritten => "as written (the file has its own BEGIN/COMMIT)".to_owned(),
        }
    }
}

/// Why a script could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The server's parser rejected the text.
    #[error("syntax error: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
        /// 1-based line in the script text.
        line: usize,
        /// 1-based column in the script text.
        column: usize,
    },
    /// A psql meta-command such as `\i` or `\set`, which only psql understands.
    #[error("psql meta-command `{command}` cannot be run by strata")]
    MetaCommand {
        /// The command as written (`\set`).
        command: String,
        /// 1-based line in the script text.
        line: usize,
    },
    /// The text contains a NUL byte, which PostgreSQL never accepts.
    #[error("the script contains a NUL byte")]
    NulByte {
        /// 1-based line in the script text.
        line: usize,
    },
}

impl SqlError {
    /// The 1-based line of the problem in the script text.
    pub fn line(&self) -> usize {
        match self {
            SqlError::Syntax { line, .. }
            | SqlError::MetaCommand { line, .. }
            | SqlError::NulByte { line } => *line,
        }
    }

    /// How to fix the problem.
    pub fn help(&self) -> &'static str {
        match self {
            SqlError::Syntax { .. } => "fix the SQL; the position is where the PostgreSQL parser stopped",
            SqlError::MetaCommand { .. } => {
                "meta-commands are psql features, not SQL; inline the included file or the variable's value"
            }
            SqlError::NulByte { .. } => "remove the NUL byte; the file may have been saved in UTF-16",
        }
    }
}

/// Splits a script into statements with the PostgreSQL parser.
///
/// `blocks` are byte ranges of `text` that are kept together as one
/// statement (goose's `StatementBegin`/`StatementEnd`).
pub fn split(text: &str, blocks: &[Range<usize>]) -> Result<Vec<Statement>, SqlError> {
    if let Some(pos) = text.find('\0') {
        return Err(SqlError::NulByte {
            line: line_col(text, pos).0,
        });
    }
    let raws = match pg_query::parse(text, 0) {
        Ok(parsed) => parsed
            .protobuf
            .stmts
            .into_iter()
            .map(|raw| {
                let start = usize::try_from(raw.stmt_location)
                    .unwrap_or(0)
                    .min(text.len());
                let end = match usize::try_from(raw.stmt_len) {
                    Ok(0) | Err(_) => text.len(),
                    Ok(len) => (start + len).min(text.len()),
                };
                (start, end, Ok(raw.stmt.map(|b| *b)))
            })
            .collect(),
        Err(err) => match split_deep(text) {
            Some(raws) => raws,
            None => return Err(locate_error(text, err)),
        },
    };
    let mut statements: Vec<Statement> = Vec::new();
    for (start, end, node) in raws {
        let first = skip_trivia(text, start).min(end);
        let (node, unparsed) = match node {
            Ok(node) => (node, None),
            Err(why) => (None, Some(why)),
        };
        if let Some(block) = blocks.iter().find(|b| b.contains(&first)) {
            if let Some(last) = statements.last_mut().filter(|s| block.contains(&s.offset)) {
                // Another statement of the same block: extend the unit.
                last.sql = text[last.offset..end].to_owned();
                if let Some(node) = node {
                    last.transaction = last.transaction.combine(classify::behavior(&node));
                    last.nodes.push(node);
                } else if unparsed.is_some() {
                    last.transaction = last
                        .transaction
                        .combine(classify::behavior_of_tokens(&text[first..end]));
                    last.unparsed = last.unparsed.take().or(unparsed);
                }
                continue;
            }
        }
        let (line, column) = line_col(text, first);
        let transaction = match &node {
            Some(node) => classify::behavior(node),
            None if unparsed.is_some() => classify::behavior_of_tokens(&text[first..end]),
            None => TransactionBehavior::Any,
        };
        statements.push(Statement {
            sql: text[first..end].to_owned(),
            offset: first,
            line,
            column,
            transaction,
            nodes: node.into_iter().collect(),
            unparsed,
        });
    }
    Ok(statements)
}

/// A parsed statement: (start, end, its tree or why there is none).
type Raw = (
    usize,
    usize,
    Result<Option<pg_query::protobuf::Node>, String>,
);

/// The split of a valid script whose parse tree cannot be handed over whole:
/// pg_query passes trees as protobuf, and both the C encoder (PostgreSQL's
/// stack depth check) and the Rust decoder (prost's recursion limit of 100)
/// refuse deep trees, so 48 chained `||` are enough to fail. The server's
/// own grammar still splits the script (`split_with_parser` runs the
/// parser without building the protobuf, in linear time); each statement is
/// then parsed alone, so only the deep ones lose their tree. `None` when
/// the text really is invalid, which the caller reports as a syntax error.
fn split_deep(text: &str) -> Option<Vec<Raw>> {
    let pieces = pg_query::split_with_parser(text).ok()?;
    let base = text.as_ptr() as usize;
    Some(
        pieces
            .into_iter()
            .map(|piece| {
                let start = (piece.as_ptr() as usize - base).min(text.len());
                let end = (start + piece.len()).min(text.len());
                let tree = pg_query::parse(piece, 0)
                    .map(|parsed| {
                        parsed
                            .protobuf
                            .stmts
                            .into_iter()
                            .next()
                            .and_then(|raw| raw.stmt.map(|b| *b))
                    })
                    .map_err(|_| {
                        "its parse tree is nested too deeply for the analysis (more than \
                         about 45 levels, e.g. a long chain of || or AND)"
                            .to_owned()
                    });
                (start, end, tree)
            })
            .collect(),
    )
}

/// The SQL statements a `DO` block runs (its PL/pgSQL body parsed by
/// PostgreSQL's own PL/pgSQL parser), as statements of the script: `line` is
/// where each stands in the script, `offset` and `column` those of the `DO`.
/// Transaction control inside the block (`COMMIT`, `ROLLBACK`) comes out as
/// such statements. Dynamic SQL (`EXECUTE '...'`) cannot be known before it
/// runs and is left out, as is a body that does not parse (the server
/// reports that when it runs). Empty for anything but a PL/pgSQL `DO`.
pub fn do_block_statements(stmt: &Statement) -> Vec<Statement> {
    let is_plpgsql_do = stmt.nodes.iter().any(|n| {
        matches!(&n.node, Some(pg_query::NodeEnum::DoStmt(d)) if d.args.iter().all(|a| {
            !matches!(&a.node, Some(pg_query::NodeEnum::DefElem(e)) if e.defname == "language"
                && !matches!(&e.arg.as_deref().and_then(|v| v.node.as_ref()), Some(pg_query::NodeEnum::String(s)) if s.sval.eq_ignore_ascii_case("plpgsql")))
        }))
    });
    if !is_plpgsql_do {
        return Vec::new();
    }
    let Ok(tree) = pg_query::parse_plpgsql(&stmt.sql) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    collect_plpgsql(&tree, &mut found);
    // JSON objects come back with their keys sorted (`else_body` before
    // `then_body`): put the statements back in source order.
    found.sort_by_key(|(lineno, _)| *lineno);
    found
        .into_iter()
        .filter_map(|(lineno, inner)| {
            let (sql, transaction, nodes) = match inner {
                Inner::Sql(sql) => {
                    let parsed = pg_query::parse(&sql, 0).ok()?;
                    let nodes: Vec<_> = parsed
                        .protobuf
                        .stmts
                        .into_iter()
                        .filter_map(|r| r.stmt.map(|b| *b))
                        .collect();
                    let transaction = nodes
                        .iter()
                        .map(classify::behavior)
                        .fold(TransactionBehavior::Any, TransactionBehavior::combine);
                    (sql, transaction, nodes)
                }
                Inner::Commit => ("COMMIT".to_owned(), TransactionBehavior::Commit, Vec::new()),
                Inner::Rollback => (
                    "ROLLBACK".to_owned(),
                    TransactionBehavior::Rollback,
                    Vec::new(),
                ),
            };
            Some(Statement {
                sql,
                offset: stmt.offset,
                line: stmt.line + lineno.max(1) - 1,
                column: stmt.column,
                transaction,
                nodes,
                unparsed: None,
            })
        })
        .collect()
}

enum Inner {
    Sql(String),
    Commit,
    Rollback,
}

/// Walks the JSON of `pg_query::parse_plpgsql`, collecting embedded SQL
/// (`PLpgSQL_stmt_execsql`) and transaction control, in source order.
fn collect_plpgsql(value: &serde_json::Value, out: &mut Vec<(usize, Inner)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let lineno = v.get("lineno").and_then(|l| l.as_u64()).unwrap_or(0) as usize;
                match key.as_str() {
                    "PLpgSQL_stmt_execsql" => {
                        if let Some(q) = v
                            .pointer("/sqlstmt/PLpgSQL_expr/query")
                            .and_then(|q| q.as_str())
                        {
                            out.push((lineno, Inner::Sql(q.to_owned())));
                        }
                    }
                    "PLpgSQL_stmt_commit" => out.push((lineno, Inner::Commit)),
                    "PLpgSQL_stmt_rollback" => out.push((lineno, Inner::Rollback)),
                    _ => collect_plpgsql(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_plpgsql(v, out)),
        _ => {}
    }
}

/// Turns a whole-script parse error into one with a position. The parser's
/// message carries no position, so the statements are re-parsed one by one
/// (split by the scanner) to find the first one that fails.
fn locate_error(text: &str, err: pg_query::Error) -> SqlError {
    let message = match err {
        pg_query::Error::Parse(m) | pg_query::Error::Split(m) => m,
        other => other.to_string(),
    };
    if let Some(meta) = lexical::find_meta_command(text) {
        return meta;
    }
    // The scanner split drops text it cannot classify (a statement starting
    // with a misspelt keyword), so the gaps between its pieces are checked
    // as well as the pieces themselves.
    let pieces = pg_query::split_with_scanner(text).unwrap_or_default();
    let base = text.as_ptr() as usize;
    let near = message
        .split("at or near \"")
        .nth(1)
        .and_then(|t| t.strip_suffix('"'))
        .map(str::to_owned);
    let locate = |from: usize, to: usize| -> usize {
        let mut pos = skip_trivia(text, from).min(to);
        if let Some(token) = &near {
            if let Some(found) = text[from..to].find(token.as_str()) {
                pos = from + found;
            }
        } else if message.contains("at end of input") {
            pos = from + text[from..to].trim_end().len();
        }
        pos
    };
    let mut prev_end = 0;
    let spans = pieces
        .iter()
        .map(|p| {
            let start = p.as_ptr() as usize - base;
            (start, start + p.len())
        })
        .chain(std::iter::once((text.len(), text.len())));
    for (start, end) in spans {
        let gap = skip_statement_separators(text, prev_end);
        if gap < start {
            let (line, column) = line_col(text, locate(gap, start));
            return SqlError::Syntax {
                message,
                line,
                column,
            };
        }
        // A piece the parser accepts but whose tree is too deep to hand
        // over (see `split_deep`) is not the error.
        if start < end
            && pg_query::parse(&text[start..end], 0).is_err()
            && pg_query::split_with_parser(&text[start..end]).is_err()
        {
            let (line, column) = line_col(text, locate(start, end));
            return SqlError::Syntax {
                message,
                line,
                column,
            };
        }
        prev_end = end;
    }
    let (line, column) = line_col(text, skip_trivia(text, 0));
    SqlError::Syntax {
        message,
        line,
        column,
    }
}

/// Skips whitespace, comments and `;`.
fn skip_statement_separators(text: &str, mut from: usize) -> usize {
    loop {
        from = skip_trivia(text, from);
        if text[from..].starts_with(';') {
            from += 1;
        } else {
            return from;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn do_blocks_yield_the_statements_they_run() {
        let text = "SELECT 1;\nDO $$\nBEGIN\n  ALTER TABLE a ADD COLUMN b int;\n  COMMIT;\n  EXECUTE 'DROP TABLE z';\n  IF false THEN\n    DELETE FROM a;\n  ELSE\n    TRUNCATE a;\n  END IF;\nEND $$;\n";
        let stmts = split(text, &[]).unwrap();
        let inner = do_block_statements(&stmts[1]);
        let shown: Vec<(usize, &str)> = inner.iter().map(|s| (s.line, s.sql.as_str())).collect();
        assert_eq!(
            shown,
            [
                (4, "ALTER TABLE a ADD COLUMN b int"),
                (5, "COMMIT"),
                (8, "DELETE FROM a"),
                (10, "TRUNCATE a")
            ]
        );
        assert_eq!(inner[1].transaction, TransactionBehavior::Commit);
        assert!(do_block_statements(&stmts[0]).is_empty());
        let other = split("DO LANGUAGE plperl $$ 1; $$;", &[]).unwrap();
        assert!(do_block_statements(&other[0]).is_empty());
    }

    use super::*;

    fn split_sql(text: &str) -> Vec<String> {
        split(text, &[])
            .unwrap()
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    #[test]
    fn splits_dollar_quotes_strings_comments_and_begin_atomic() {
        let text = "-- leading; comment\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
            INSERT INTO t VALUES ('a;b'); /* c; */ SELECT 2;\n\
            CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n";
        let stmts = split_sql(text);
        assert_eq!(stmts.len(), 4, "{stmts:?}");
        assert!(stmts[0].starts_with("CREATE FUNCTION f()") && stmts[0].ends_with("LANGUAGE sql"));
        assert_eq!(stmts[1], "INSERT INTO t VALUES ('a;b')");
        assert_eq!(stmts[2], "SELECT 2");
        assert!(stmts[3].contains("BEGIN ATOMIC SELECT 1; SELECT 2; END"));
    }

    #[test]
    fn reports_positions() {
        let stmts = split("\n\n  SELECT 1;\n/* x */ SELECT 2", &[]).unwrap();
        assert_eq!((stmts[0].line, stmts[0].column), (3, 3));
        assert_eq!((stmts[1].line, stmts[1].column), (4, 9));
    }

    #[test]
    fn syntax_errors_point_at_the_failing_statement() {
        let err = split(
            "SELECT 1;\nCREATE TABLE t (id int);\nCREAT TABLE u ();\n",
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SqlError::Syntax {
                    line: 3,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = split("SELECT 1;\nSELEC 2;\n", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                SqlError::Syntax {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = split("SELECT 1;\nSELECT * FROM t WHERE;\n", &[]).unwrap_err();
        assert!(matches!(err, SqlError::Syntax { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn meta_commands_are_named() {
        let err = split("SELECT 1;\n\\set ON_ERROR_STOP on\nSELECT 2;\n", &[]).unwrap_err();
        assert_eq!(
            err,
            SqlError::MetaCommand {
                command: "\\set".into(),
                line: 2
            }
        );
        // A backslash at the start of a line inside a string is not one.
        assert_eq!(split_sql("SELECT '\n\\set';").len(), 1);
    }

    #[test]
    fn classifies_transaction_behaviour() {
        let stmts = split(
            "CREATE INDEX CONCURRENTLY i ON t (a); CREATE INDEX j ON t (a); VACUUM t; BEGIN; COMMIT;\
             DROP INDEX CONCURRENTLY i; REINDEX TABLE CONCURRENTLY t; ALTER SYSTEM SET work_mem = '1MB';\
             ALTER TABLE p DETACH PARTITION c CONCURRENTLY; CREATE DATABASE d; ANALYZE t;",
            &[],
        )
        .unwrap();
        let kinds: Vec<String> = stmts.iter().map(|s| s.transaction.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "never: CREATE INDEX CONCURRENTLY",
                "any",
                "never: VACUUM",
                "begin",
                "commit",
                "never: DROP INDEX CONCURRENTLY",
                "never: REINDEX CONCURRENTLY",
                "never: ALTER SYSTEM",
                "never: DETACH PARTITION CONCURRENTLY",
                "never: CREATE DATABASE",
                "any",
            ]
        );
        let stmts = split(
            "DO $$ BEGIN LOOP EXIT; COMMIT; END LOOP; END $$; DO $$ BEGIN PERFORM 1; END $$;",
            &[],
        )
        .unwrap();
        assert_eq!(
            stmts
                .iter()
                .map(|s| s.transaction.to_string())
                .collect::<Vec<_>>(),
            ["never: DO block with COMMIT or ROLLBACK", "any"]
        );
    }

    #[test]
    fn deep_statements_are_split_and_kept_without_a_tree() {
        for n in [48, 300, 10_000] {
            let chain = vec!["'x'"; n].join(" || ");
            let text = format!("SELECT 1;\nSELECT {chain};\nCREATE INDEX CONCURRENTLY i ON t (a) WHERE b = {chain};\nSELECT 2");
            let started = std::time::Instant::now();
            let stmts = split(&text, &[]).unwrap_or_else(|e| panic!("{n}: {e}"));
            // Linear: 10,000 operators take milliseconds, not seconds.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{n}: {:?}",
                started.elapsed()
            );
            assert_eq!(stmts.len(), 4, "{n}");
            assert_eq!(stmts[1].sql, format!("SELECT {chain}"));
            assert_eq!((stmts[1].line, stmts[3].line), (2, 4));
            assert!(stmts[1].nodes.is_empty() && stmts[1].unparsed.is_some());
            assert_eq!(stmts[1].transaction, TransactionBehavior::Any);
            assert_eq!(
                stmts[2].transaction,
                TransactionBehavior::Never("CONCURRENTLY")
            );
            assert!(stmts[0].unparsed.is_none() && stmts[0].nodes.len() == 1);
            assert!(stmts[3].unparsed.is_none() && stmts[3].nodes.len() == 1);
        }
        // Inside a goose block, the block keeps the note.
        let chain = vec!["'x'"; 300].join(" || ");
        let text = format!("SELECT 1;\nSELECT {chain};\nSELECT 3;");
        let block = text.find("SELECT 1").unwrap()..text.len();
        let stmts = split(&text, std::slice::from_ref(&block)).unwrap();
        assert_eq!(stmts.len(), 1);
        assert_eq!(stmts[0].nodes.len(), 2);
        assert!(stmts[0].unparsed.is_some());
        // A real syntax error next to a deep statement is still one.
        let chain = vec!["'x'"; 300].join(" || ");
        let err = split(&format!("SELECT {chain};\nSELEC 2;"), &[]).unwrap_err();
        assert!(matches!(err, SqlError::Syntax { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn blocks_stay_together() {
        let text = "SELECT 1;\nSELECT 2; SELECT 3;\nSELECT 4;";
        let start = text.find("SELECT 2").unwrap();
        let end = text.find("\nSELECT 4").unwrap();
        let block = start..end;
        let stmts = split(text, std::slice::from_ref(&block)).unwrap();
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[1].sql, "SELECT 2; SELECT 3");
        assert_eq!(stmts[1].nodes.len(), 2);
    }
}
