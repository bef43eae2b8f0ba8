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
#[doc(hidden)]
pub mod parse_count;
mod wire;

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::ops::Range;

use prost::Message;

pub use classify::TransactionBehavior;
pub use lexical::{is_blank, line_col, skip_block_comment, skip_trivia, work, Positions};

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
    /// The parse trees of the statement (usually one; a goose
    /// `StatementBegin` block may hold several), kept encoded: decoded
    /// trees take ~30 times the text's size, which for a data file of
    /// 240,000 INSERTs is gigabytes. [`Statement::nodes`] decodes them.
    tree: Tree,
    /// Why the statement has no parse tree although it is valid SQL (it is
    /// nested too deeply for the tree to be handed over): it runs as
    /// written, but the analysis cannot look inside it.
    pub unparsed: Option<String>,
    /// Whether a `-- strata:backfill` directive stands above it: it runs
    /// as a batched, resumable backfill instead of as one statement (set
    /// by `source::mark_backfills`, which checks the directive's place).
    pub backfill: bool,
}

/// Parse trees, protobuf-encoded one after the other (length-delimited).
#[derive(Debug, Clone, Default)]
struct Tree(Vec<u8>);

impl Tree {
    fn push(&mut self, node: &pg_query::protobuf::Node) {
        // Encoding into a Vec cannot fail (it grows as needed).
        let _ = node.encode_length_delimited(&mut self.0);
    }

    /// Appends a tree already encoded (a `Node` message, as the parser's C
    /// library wrote it), without decoding it.
    fn push_encoded(&mut self, node: &[u8]) {
        let len = node.len() as u64;
        self.0
            .reserve_exact(prost::encoding::encoded_len_varint(len) + node.len());
        prost::encoding::encode_varint(len, &mut self.0);
        self.0.extend_from_slice(node);
    }

    fn of(nodes: &[pg_query::protobuf::Node]) -> Tree {
        let mut tree = Tree::default();
        nodes.iter().for_each(|n| tree.push(n));
        tree.0.shrink_to_fit();
        tree
    }
}

impl Statement {
    /// The statement's parse trees, decoded (usually one; a goose
    /// `StatementBegin` block may hold several; none when `unparsed`).
    /// Each call decodes again: keep the result while it is needed.
    pub fn nodes(&self) -> Vec<pg_query::protobuf::Node> {
        let mut buf = self.tree.0.as_slice();
        let mut nodes = Vec::new();
        while !buf.is_empty() {
            match pg_query::protobuf::Node::decode_length_delimited(&mut buf) {
                Ok(node) => nodes.push(node),
                // Encoded by `Tree::push` from a tree that decoded once.
                Err(_) => break,
            }
        }
        nodes
    }

    /// The number of parse trees, without decoding them.
    pub fn node_count(&self) -> usize {
        let mut buf = self.tree.0.as_slice();
        let mut count = 0;
        while let Ok(len) = prost::encoding::decode_varint(&mut buf) {
            let Some(rest) = usize::try_from(len).ok().and_then(|l| buf.get(l..)) else {
                break;
            };
            buf = rest;
            count += 1;
        }
        count
    }

    /// The bytes this statement takes: its own size and what it holds on
    /// the heap (text, encoded parse trees), for callers that hold
    /// statements within a memory budget.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Statement>()
            + self.sql.capacity()
            + self.tree.0.capacity()
            + self.unparsed.as_ref().map_or(0, String::capacity)
    }

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
///
/// Time and memory are linear in the text: a large script is parsed in
/// chunks of about [`CHUNK`] bytes (see [`parse_in_chunks`]), and each
/// statement keeps its tree encoded.
pub fn split(text: &str, blocks: &[Range<usize>]) -> Result<Vec<Statement>, SqlError> {
    parse_count::count();
    if text.len() <= CHUNK || !REMEMBER.with(Cell::get) {
        return split_with(text, blocks, CHUNK);
    }
    let key = {
        let mut h = std::hash::DefaultHasher::new();
        text.hash(&mut h);
        (h.finish(), text.len(), blocks.to_vec())
    };
    if let Some(hit) = MEMO.with(|m| {
        m.borrow()
            .as_ref()
            .filter(|(k, _)| *k == key)
            .map(|(_, stmts)| stmts.clone())
    }) {
        return Ok(hit);
    }
    let statements = split_with(text, blocks, CHUNK)?;
    MEMO.with(|m| *m.borrow_mut() = Some((key, statements.clone())));
    Ok(statements)
}

type MemoKey = (u64, usize, Vec<Range<usize>>);

thread_local! {
    static REMEMBER: Cell<bool> = const { Cell::new(false) };
    static MEMO: RefCell<Option<(MemoKey, Vec<Statement>)>> = const { RefCell::new(None) };
}

/// While on, the latest split of a large script (over [`CHUNK`]) on this
/// thread is kept, so the next split of the same text is a copy instead of
/// a parse: `up` splits a file to validate it, to analyse it and to run
/// it, which for a 50 MB data file is three parses of several seconds.
/// Off (the default) forgets it: the copy costs as much memory as the
/// statements, so `up` turns it off once it holds the statements it runs.
pub fn remember_splits(on: bool) {
    REMEMBER.with(|r| r.set(on));
    if !on {
        MEMO.with(|m| *m.borrow_mut() = None);
    }
}

fn split_with(
    text: &str,
    blocks: &[Range<usize>],
    chunk: usize,
) -> Result<Vec<Statement>, SqlError> {
    if let Some(pos) = text.find('\0') {
        return Err(SqlError::NulByte {
            line: line_col(text, pos).0,
        });
    }
    let mut chunked = Builder::new(text, blocks);
    if parse_in_chunks(text, chunk, &mut |raw| chunked.add(raw)).is_some() {
        return Ok(chunked.finish());
    }
    // Small, or a chunk failed (perhaps part way): the whole text at once.
    drop(chunked);
    let parsed = match wire::parse(text) {
        Ok(stmts) => Ok(encoded_raws(stmts, 0, text.len())),
        Err(_) => pg_query::parse(text, 0).map(|parsed| raws_of(parsed, 0, text.len())),
    };
    let raws = match parsed {
        Ok(raws) => raws,
        Err(err) => match split_deep(text) {
            Some(raws) => raws,
            None => return Err(locate_error(text, err)),
        },
    };
    let mut whole = Builder::new(text, blocks);
    raws.into_iter().for_each(|raw| whole.add(raw));
    Ok(whole.finish())
}

/// Turns parsed statements, in text order, into [`Statement`]s. Positions
/// and blocks are found by moving forward, never by searching from the
/// start, so the work is linear in the text.
struct Builder<'t> {
    text: &'t str,
    statements: Vec<Statement>,
    /// Where each statement ends; its text is cut once at the end, so a
    /// block of many statements is not copied again for each one.
    ends: Vec<usize>,
    positions: Positions<'t>,
    blocks: Vec<&'t Range<usize>>,
    next_block: usize,
}

impl<'t> Builder<'t> {
    fn new(text: &'t str, blocks: &'t [Range<usize>]) -> Builder<'t> {
        let mut sorted: Vec<&Range<usize>> = blocks.iter().collect();
        sorted.sort_by_key(|b| (b.start, b.end));
        Builder {
            text,
            statements: Vec::new(),
            ends: Vec::new(),
            positions: Positions::new(text),
            blocks: sorted,
            next_block: 0,
        }
    }

    fn add(&mut self, (start, end, node): Raw) {
        let text = self.text;
        let first = skip_trivia(text, start).min(end);
        let (node, unparsed) = match node {
            Ok(node) => (node, None),
            Err(why) => (Parsed::Node(None), Some(why)),
        };
        while self
            .blocks
            .get(self.next_block)
            .is_some_and(|b| b.end <= first)
        {
            self.next_block += 1;
        }
        let block = self.blocks[self.next_block..]
            .iter()
            .take_while(|b| b.start <= first)
            .find(|b| b.contains(&first));
        if let Some(block) = block {
            if let Some(last) = self
                .statements
                .last_mut()
                .filter(|s| block.contains(&s.offset))
            {
                // Another statement of the same block: extend the unit.
                if let Some(last_end) = self.ends.last_mut() {
                    *last_end = end;
                }
                if let Some(behavior) = node.behavior() {
                    last.transaction = last.transaction.combine(behavior);
                    node.push_to(&mut last.tree);
                } else if unparsed.is_some() {
                    last.transaction = last
                        .transaction
                        .combine(classify::behavior_of_tokens(&text[first..end]));
                    last.unparsed = last.unparsed.take().or(unparsed);
                }
                return;
            }
        }
        let (line, column) = self.positions.line_col(first);
        let transaction = match node.behavior() {
            Some(behavior) => behavior,
            None if unparsed.is_some() => classify::behavior_of_tokens(&text[first..end]),
            None => TransactionBehavior::Any,
        };
        let mut tree = Tree::default();
        node.push_to(&mut tree);
        tree.0.shrink_to_fit();
        self.ends.push(end);
        self.statements.push(Statement {
            sql: String::new(),
            offset: first,
            line,
            column,
            transaction,
            tree,
            unparsed,
            backfill: false,
        });
    }

    fn finish(mut self) -> Vec<Statement> {
        for (stmt, end) in self.statements.iter_mut().zip(&self.ends) {
            stmt.sql = self.text[stmt.offset..*end].to_owned();
        }
        // A run holds the statements of every pending migration until it
        // ends: no spare capacity (a one-statement file would otherwise
        // keep room for four).
        self.statements.shrink_to_fit();
        self.statements
    }
}

/// Scripts larger than this are parsed in chunks of about this size.
pub const CHUNK: usize = 256 * 1024;

/// Parses a large script chunk by chunk, handing each statement to `add`
/// in order, so that only one chunk's trees are decoded at a time (a whole
/// 50 MB script decoded at once takes gigabytes). Chunks are cut after a
/// `;`. A cut that is not between statements (inside a string, a quoted
/// name, a comment, a dollar-quoted body, a `BEGIN ATOMIC` body or a
/// rule's action list) leaves the chunk with something unclosed, so it
/// does not parse, and it is extended to the next cut. `None` (nothing handed over) for small scripts, and when a
/// chunk still fails after a few extensions: a syntax error or a statement
/// too deep to hand over, which the whole-text path reports or handles.
fn parse_in_chunks(text: &str, chunk: usize, add: &mut dyn FnMut(Raw)) -> Option<()> {
    const EXTENSIONS: usize = 4;
    if text.len() <= chunk {
        return None;
    }
    // The next cut: just past the first `;` at least `chunk` bytes on.
    let cut_after = |at: usize| {
        let from = (at + chunk).min(text.len());
        text.as_bytes()[from..]
            .iter()
            .position(|b| *b == b';')
            .map_or(text.len(), |i| from + i + 1)
    };
    let mut from = 0;
    while from < text.len() {
        let mut to = cut_after(from);
        let mut tries = 0;
        loop {
            let piece = &text[from..to];
            // The parser's encoded trees as they are; the decoding parse
            // only when one may be too deep to decode (it finds out).
            let parsed = match wire::parse(piece) {
                Ok(stmts) => Ok(encoded_raws(stmts, from, to)),
                Err(wire::WireError::Rejected) => Err(()),
                Err(wire::WireError::MaybeDeep) => pg_query::parse(piece, 0)
                    .map(|parsed| raws_of(parsed, from, to))
                    .map_err(|_| ()),
            };
            match parsed {
                Ok(raws) => raws.into_iter().for_each(&mut *add),
                // Valid, but a tree too deep to hand over: per statement.
                Err(_) if pg_query::split_with_parser(piece).is_ok() => split_deep(piece)?
                    .into_iter()
                    .for_each(|(s, e, n)| add((s + from, e + from, n))),
                Err(_) if tries < EXTENSIONS && to < text.len() => {
                    tries += 1;
                    to = cut_after(to);
                    continue;
                }
                Err(_) => return None,
            }
            from = to;
            break;
        }
    }
    Some(())
}

/// The statements of a parse of `text[from..to]`, positioned in `text`.
fn raws_of(parsed: pg_query::ParseResult, from: usize, to: usize) -> Vec<Raw> {
    #[cfg(test)]
    tests::count_decoded(parsed.protobuf.stmts.len());
    parsed
        .protobuf
        .stmts
        .into_iter()
        .map(|raw| {
            let start = (from + usize::try_from(raw.stmt_location).unwrap_or(0)).min(to);
            let end = match usize::try_from(raw.stmt_len) {
                Ok(0) | Err(_) => to,
                Ok(len) => (start + len).min(to),
            };
            (start, end, Ok(Parsed::Node(raw.stmt)))
        })
        .collect()
}

/// [`raws_of`] for a parse whose trees stay encoded ([`wire::parse`]).
fn encoded_raws(stmts: Vec<wire::WireStmt>, from: usize, to: usize) -> Vec<Raw> {
    stmts
        .into_iter()
        .map(|stmt| {
            let start = (from + stmt.location).min(to);
            let end = match stmt.len {
                0 => to,
                len => (start + len).min(to),
            };
            (start, end, Ok(Parsed::Encoded(stmt.node)))
        })
        .collect()
}

/// A parsed statement: (start, end, its tree or why there is none).
type Raw = (usize, usize, Result<Parsed, String>);

/// A statement's tree (none for an empty statement), decoded or as the
/// parser encoded it.
enum Parsed {
    Node(Option<Box<pg_query::protobuf::Node>>),
    Encoded(Option<Vec<u8>>),
}

impl Parsed {
    /// How the statement relates to transactions; `None` without a tree.
    /// An encoded tree is decoded only when its kind may matter.
    fn behavior(&self) -> Option<TransactionBehavior> {
        match self {
            Parsed::Node(node) => node.as_deref().map(classify::behavior),
            Parsed::Encoded(None) => None,
            Parsed::Encoded(Some(bytes)) if wire::is_plain_dml(bytes) => {
                Some(TransactionBehavior::Any)
            }
            Parsed::Encoded(Some(bytes)) => Some({
                #[cfg(test)]
                tests::count_decoded(1);
                pg_query::protobuf::Node::decode(bytes.as_slice())
                    .map(|node| classify::behavior(&node))
                    // `wire::parse` checked that it decodes.
                    .unwrap_or(TransactionBehavior::Any)
            }),
        }
    }

    fn push_to(self, tree: &mut Tree) {
        match self {
            Parsed::Node(Some(node)) => tree.push(&node),
            Parsed::Encoded(Some(bytes)) => tree.push_encoded(&bytes),
            Parsed::Node(None) | Parsed::Encoded(None) => {}
        }
    }
}

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
                        Parsed::Node(
                            parsed
                                .protobuf
                                .stmts
                                .into_iter()
                                .next()
                                .and_then(|raw| raw.stmt),
                        )
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
    // Cheap test first: this runs for every statement of a file.
    let starts_with_do =
        stmt.sql
            .get(..2)
            .is_some_and(|w| w.eq_ignore_ascii_case("do"))
            && !stmt.sql.as_bytes().get(2).is_some_and(|b| {
                b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$' || *b >= 0x80
            });
    if !starts_with_do && stmt.node_count() < 2 {
        return Vec::new();
    }
    let is_plpgsql_do = stmt.nodes().iter().any(|n| {
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
                tree: Tree::of(&nodes),
                unparsed: None,
                backfill: false,
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
            assert!(stmts[1].nodes().is_empty() && stmts[1].unparsed.is_some());
            assert_eq!(stmts[1].transaction, TransactionBehavior::Any);
            assert_eq!(
                stmts[2].transaction,
                TransactionBehavior::Never("CONCURRENTLY")
            );
            assert!(stmts[0].unparsed.is_none() && stmts[0].nodes().len() == 1);
            assert!(stmts[3].unparsed.is_none() && stmts[3].node_count() == 1);
        }
        // Inside a goose block, the block keeps the note.
        let chain = vec!["'x'"; 300].join(" || ");
        let text = format!("SELECT 1;\nSELECT {chain};\nSELECT 3;");
        let block = text.find("SELECT 1").unwrap()..text.len();
        let stmts = split(&text, std::slice::from_ref(&block)).unwrap();
        assert_eq!(stmts.len(), 1);
        assert_eq!(stmts[0].nodes().len(), 2);
        assert!(stmts[0].unparsed.is_some());
        // A real syntax error next to a deep statement is still one.
        let chain = vec!["'x'"; 300].join(" || ");
        let err = split(&format!("SELECT {chain};\nSELEC 2;"), &[]).unwrap_err();
        assert!(matches!(err, SqlError::Syntax { line: 2, .. }), "{err:?}");
    }

    /// Splitting costs work in proportion to the text: 4× the statements
    /// may cost at most ~5× the work (it was 16×: every statement's line was
    /// counted from the start of the file). Counted, not timed.
    #[test]
    fn splitting_work_grows_linearly() {
        let script = |n: usize| {
            (0..n)
                .map(|i| format!("INSERT INTO t (id, name) VALUES ({i}, 'name {i}');\n"))
                .collect::<String>()
        };
        let work_of = |text: &str| {
            let before = work();
            let stmts = split(text, &[]).unwrap();
            assert_eq!(stmts.last().map(|s| s.line), Some(text.lines().count()));
            work() - before
        };
        let (small, large) = (work_of(&script(2_000)), work_of(&script(8_000)));
        assert!(
            large <= small * 5,
            "4x the statements cost {}x the work ({small} -> {large})",
            large / small.max(1)
        );
        // Goose blocks of many statements are found without rescanning either.
        let text = script(8_000);
        let blocks: Vec<_> = (0..text.len()).step_by(1_000).map(|s| s..s + 500).collect();
        let before = work();
        split(&text, &blocks).unwrap();
        assert!(work() - before <= text.len() * 2);
    }

    /// Chunked parsing gives exactly what parsing the whole text gives,
    /// with cuts inside BEGIN ATOMIC bodies, rule actions, goose blocks,
    /// deep statements and dollar quotes; a syntax error is still found.
    #[test]
    fn chunks_give_the_same_statements_as_the_whole_text() {
        let chain = vec!["'x'"; 300].join(" || ");
        let mut text = String::from("-- head\n");
        for i in 0..60 {
            text.push_str(&format!(
                "INSERT INTO t VALUES ({i}, 'a;b');\n\
                 CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; SELECT 3; END;\n\
                 CREATE RULE r{i} AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);\n\
                 DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\n\
                 SELECT {chain};\n/* c; */ SELECT 'é{i}'\n;\n"
            ));
        }
        let block = text.find("INSERT INTO t VALUES (7,").unwrap()
            ..text.find("INSERT INTO t VALUES (9,").unwrap();
        let blocks = [block];
        for chunk in [1, 40, 200, 1_000] {
            let chunked = split_with(&text, &blocks, chunk).unwrap();
            let whole = split_with(&text, &blocks, usize::MAX).unwrap();
            // Node locations are relative to whatever was parsed (no
            // consumer reads them): left out of the comparison.
            let tree = |s: &Statement| {
                let debug = format!("{:?}", s.nodes());
                let mut out = String::new();
                for (i, part) in debug.split("location: ").enumerate() {
                    out.push_str(if i == 0 {
                        part
                    } else {
                        part.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
                    });
                }
                out
            };
            let view = |s: &Statement| {
                (
                    s.sql.clone(),
                    s.offset,
                    s.line,
                    s.column,
                    s.transaction.to_string(),
                    s.unparsed.clone(),
                    tree(s),
                )
            };
            assert_eq!(chunked.len(), whole.len(), "chunk {chunk}");
            for (a, b) in chunked.iter().zip(&whole) {
                assert_eq!(view(a), view(b), "chunk {chunk}");
            }
        }
        let inserts: String = (0..200)
            .map(|i| format!("INSERT INTO t VALUES ({i});\n"))
            .collect();
        let bad = format!("{inserts}\nSELEC 1;\n{inserts}");
        let err = split_with(&bad, &[], 100).unwrap_err();
        let line = inserts.lines().count() + 2;
        assert!(
            matches!(err, SqlError::Syntax { line: l, .. } if l == line),
            "{err:?}"
        );
    }

    /// Trees are kept encoded: a data file's statements take a small
    /// multiple of its text, not the ~30× of decoded trees.
    #[test]
    fn statements_stay_small() {
        let text: String = (0..5_000)
            .map(|i| format!("INSERT INTO t (id, name, amount) VALUES ({i}, 'name {i}', {i}.5);\n"))
            .collect();
        let stmts = split(&text, &[]).unwrap();
        let held: usize = stmts
            .iter()
            .map(|s| std::mem::size_of::<Statement>() + s.sql.capacity() + s.tree.0.capacity())
            .sum();
        assert!(
            held < text.len() * 6,
            "{held} bytes for {} bytes of text",
            text.len()
        );
        assert!(matches!(
            stmts[0].nodes()[0].node,
            Some(pg_query::NodeEnum::InsertStmt(_))
        ));
    }

    #[test]
    fn a_remembered_split_is_not_parsed_again() {
        let text: String = (0..(CHUNK / 20))
            .map(|i| format!("INSERT INTO t VALUES ({i});\n"))
            .collect();
        let work_of = |text: &str| {
            let before = work();
            let stmts = split(text, &[]).unwrap();
            (work() - before, stmts.len())
        };
        remember_splits(true);
        let (first, n) = work_of(&text);
        assert!(first > 0);
        assert_eq!(work_of(&text), (0, n));
        // Another text is parsed.
        assert!(work_of(&text[..text.len() - 1]).0 > 0);
        remember_splits(false);
        assert!(work_of(&text).0 > 0);
    }

    thread_local! {
        static DECODED: Cell<usize> = const { Cell::new(0) };
    }

    /// Counts trees decoded while splitting (tests only).
    pub(super) fn count_decoded(n: usize) {
        DECODED.with(|d| d.set(d.get() + n));
    }

    fn decoded_by(f: impl FnOnce()) -> usize {
        let before = DECODED.with(Cell::get);
        f();
        DECODED.with(Cell::get) - before
    }

    /// Splitting a data file decodes no tree (decoding and re-encoding
    /// every INSERT was a third of linting a 50 MB file); statements whose
    /// kind may need a transaction decision, and trees that may be too
    /// deep for the decoder, are still decoded, in small and chunked texts.
    #[test]
    fn data_statements_are_split_without_decoding_their_trees() {
        let data: String = (0..(CHUNK / 40))
            .map(|i| format!("INSERT INTO t (id, s) VALUES ({i}, 'a;b'); UPDATE t SET s = 'x' WHERE id = {i};\n"))
            .collect();
        for text in [
            &data[..],
            "INSERT INTO t VALUES (1); SELECT 1; DELETE FROM t;",
        ] {
            let mut stmts = Vec::new();
            assert_eq!(decoded_by(|| stmts = split(text, &[]).unwrap()), 0);
            assert!(stmts.iter().all(|s| s.node_count() == 1));
            assert!(matches!(
                stmts[0].nodes()[0].node,
                Some(pg_query::NodeEnum::InsertStmt(_))
            ));
        }
        let ddl = "CREATE INDEX CONCURRENTLY i ON t (a); INSERT INTO t VALUES (1); BEGIN;";
        let mut stmts = Vec::new();
        assert_eq!(decoded_by(|| stmts = split(ddl, &[]).unwrap()), 2);
        assert_eq!(
            stmts[0].transaction,
            TransactionBehavior::Never("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(stmts[2].transaction, TransactionBehavior::Begin);
        let chain = vec!["'x'"; 40].join(" || ");
        let deep = format!("SELECT 1; SELECT {chain};");
        assert_eq!(decoded_by(|| stmts = split(&deep, &[]).unwrap()), 2);
        assert!(stmts[1].unparsed.is_none() && stmts[1].node_count() == 1);
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
        assert_eq!(stmts[1].node_count(), 2);
    }
}
