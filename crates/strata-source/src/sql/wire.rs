//! The parser's output as the C library encodes it, cut into statements
//! without decoding.
//!
//! `pg_query::parse` decodes the whole protobuf parse result into Rust
//! trees, and the split then encoded each statement's tree again to keep it
//! small ([`super::Tree`]): for a 50 MB data file, decoding and re-encoding
//! took about a third of `strata lint`. Here the bytes the C library wrote
//! are kept as they are, cut at statement boundaries by reading the
//! protobuf wire format (two message types, three fields), and a tree is
//! decoded only when a consumer asks for it.
//!
//! The C functions are the ones `pg_query::parse` itself calls; the crate
//! keeps its bindings private, so they are declared here from
//! `pg_query.h` (pg_query 18). `tests::agrees_with_pg_query_parse` checks
//! the result against `pg_query::parse`, so a change of layout in a new
//! version fails a test rather than a user's run.

use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

use prost::encoding::decode_varint;
use prost::Message;

use pg_query::protobuf::Node;
use pg_query::NodeEnum;

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut std::ffi::c_void,
}

extern "C" {
    fn pg_query_parse_protobuf_opts(
        input: *const c_char,
        parser_options: c_int,
    ) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
}

/// One statement of a parse: where it stands in the parsed text and its
/// tree as an encoded `Node` message (`None`: an empty statement).
#[derive(Debug)]
pub(super) struct WireStmt {
    pub location: usize,
    /// 0: up to the end of the parsed text.
    pub len: usize,
    pub node: Option<Vec<u8>>,
}

/// Why [`parse`] gave nothing.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WireError {
    /// The parser rejected the text (or the C encoder refused a tree).
    Rejected,
    /// A tree may be nested too deeply for the Rust decoder: the caller
    /// takes the decoding path, which finds out and handles it.
    MaybeDeep,
}

/// Parses `text` with PostgreSQL's parser (default options), keeping each
/// statement's tree encoded.
pub(super) fn parse(text: &str) -> Result<Vec<WireStmt>, WireError> {
    let input = CString::new(text).map_err(|_| WireError::Rejected)?;
    // SAFETY: `input` is a NUL-terminated string that outlives the call; the
    // result is read only before it is freed, once, by the library's own
    // function; `data` points to `len` bytes when `error` is null.
    let result = unsafe { pg_query_parse_protobuf_opts(input.as_ptr(), 0) };
    let statements = if result.error.is_null() {
        let data = if result.parse_tree.len == 0 || result.parse_tree.data.is_null() {
            &[][..]
        } else {
            unsafe {
                std::slice::from_raw_parts(
                    result.parse_tree.data as *const u8,
                    result.parse_tree.len,
                )
            }
        };
        statements_of(data)
    } else {
        Err(WireError::Rejected)
    };
    unsafe { pg_query_free_protobuf_parse_result(result) };
    statements
}

/// Nesting (of anything that reads as a message) above which a tree is
/// handed to the decoding path. prost refuses more than 100 levels below
/// the parse result (which holds the statement, which holds the `Node`).
const MAX_NESTING: usize = 64;

/// Cuts an encoded `ParseResult` (`version` = 1, repeated `RawStmt stmts`
/// = 2; `RawStmt`: `Node stmt` = 1, `int32 stmt_location` = 2,
/// `int32 stmt_len` = 3) into its statements.
fn statements_of(mut buf: &[u8]) -> Result<Vec<WireStmt>, WireError> {
    let bad = |_| WireError::MaybeDeep;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (field, value) = next_field(&mut buf).map_err(bad)?;
        let Value::Bytes(mut raw) = value else {
            continue;
        };
        if field != 2 {
            continue;
        }
        let mut stmt = WireStmt {
            location: 0,
            len: 0,
            node: None,
        };
        while !raw.is_empty() {
            match next_field(&mut raw).map_err(bad)? {
                (1, Value::Bytes(node)) => {
                    if nesting(node, MAX_NESTING) > MAX_NESTING {
                        return Err(WireError::MaybeDeep);
                    }
                    stmt.node = Some(node.to_vec());
                }
                // int32 as varint: negative values are sign-extended.
                (2, Value::Varint(v)) => stmt.location = usize::try_from(v as i32).unwrap_or(0),
                (3, Value::Varint(v)) => stmt.len = usize::try_from(v as i32).unwrap_or(0),
                _ => {}
            }
        }
        out.push(stmt);
    }
    Ok(out)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Reads one field (key and value) off the front of `buf`.
fn next_field<'a>(buf: &mut &'a [u8]) -> Result<(u64, Value<'a>), ()> {
    let key = decode_varint(buf).map_err(|_| ())?;
    let field = key >> 3;
    if field == 0 {
        return Err(());
    }
    let value = match key & 7 {
        0 => Value::Varint(decode_varint(buf).map_err(|_| ())?),
        1 | 5 => {
            let n = if key & 7 == 1 { 8 } else { 4 };
            *buf = buf.get(n..).ok_or(())?;
            Value::Fixed
        }
        2 => {
            let len = usize::try_from(decode_varint(buf).map_err(|_| ())?).map_err(|_| ())?;
            let bytes = buf.get(..len).ok_or(())?;
            *buf = &buf[len..];
            Value::Bytes(bytes)
        }
        _ => return Err(()),
    };
    Ok((field, value))
}

/// An upper bound of the message nesting of `buf` read as a message (1 for
/// a message without sub-messages, 0 when it does not read as one), or
/// `limit + 1` as soon as it exceeds `limit`. Without the schema, every
/// length-delimited field that reads as a message counts as one, so
/// strings can only make the bound larger than the truth.
fn nesting(buf: &[u8], limit: usize) -> usize {
    if limit == 0 {
        return 1;
    }
    let mut rest = buf;
    let mut deepest = 0;
    while !rest.is_empty() {
        match next_field(&mut rest) {
            Ok((_, Value::Bytes(inner))) if !inner.is_empty() => {
                deepest = deepest.max(nesting(inner, limit - 1));
                if deepest >= limit {
                    return limit + 1;
                }
            }
            Ok(_) => {}
            Err(()) => return 0,
        }
    }
    deepest + 1
}

/// The statement kind of an encoded `Node` (its oneof field number).
fn kind(node: &[u8]) -> Option<u64> {
    let mut buf = node;
    decode_varint(&mut buf).ok().map(|key| key >> 3)
}

/// True when the encoded `Node` is of a kind that is always allowed in a
/// transaction block and controls none (`INSERT`, `SELECT`, `UPDATE`,
/// `DELETE`), so that classifying it needs no decoding: the bulk of a
/// data file.
pub(super) fn is_plain_dml(node: &[u8]) -> bool {
    static KINDS: OnceLock<[Option<u64>; 4]> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        let tag = |n: NodeEnum| kind(&Node { node: Some(n) }.encode_to_vec());
        [
            tag(NodeEnum::InsertStmt(Box::default())),
            tag(NodeEnum::SelectStmt(Box::default())),
            tag(NodeEnum::UpdateStmt(Box::default())),
            tag(NodeEnum::DeleteStmt(Box::default())),
        ]
    });
    let k = kind(node);
    k.is_some() && kinds.contains(&k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(stmts: &[WireStmt]) -> Vec<(usize, usize, Option<Node>)> {
        stmts
            .iter()
            .map(|s| {
                let node = s.node.as_ref().map(|b| Node::decode(b.as_slice()).unwrap());
                (s.location, s.len, node)
            })
            .collect()
    }

    /// The declared C layout and the wire reading give exactly what
    /// `pg_query::parse` gives.
    #[test]
    fn agrees_with_pg_query_parse() {
        let text = "-- c\nINSERT INTO t (a, b) VALUES (1, 'x;y'), (-2, E'\\n') ON CONFLICT (a) DO NOTHING RETURNING a;\n\
            CREATE INDEX CONCURRENTLY i ON t (a);;\nSELECT 1 /* end */; ALTER TABLE t ADD COLUMN c int DEFAULT 0;\n\
            CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT";
        let expected: Vec<_> = pg_query::parse(text, 0)
            .unwrap()
            .protobuf
            .stmts
            .into_iter()
            .map(|r| {
                (
                    r.stmt_location as usize,
                    r.stmt_len as usize,
                    r.stmt.map(|b| *b),
                )
            })
            .collect();
        let got = decoded(&parse(text).unwrap());
        assert_eq!(got.len(), 6);
        assert_eq!(got, expected);
        assert!(matches!(parse("SELEC 1"), Err(WireError::Rejected)));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn deep_trees_take_the_decoding_path() {
        let chain = vec!["'x'"; 40].join(" || ");
        assert!(matches!(
            parse(&format!("SELECT 1; SELECT {chain};")),
            Err(WireError::MaybeDeep)
        ));
        assert_eq!(parse("SELECT 'a' || 'b' || 'c'").unwrap().len(), 1);
    }

    #[test]
    fn plain_dml_is_told_from_the_first_key() {
        let kinds: Vec<bool> = parse("INSERT INTO t VALUES (1); SELECT 1; UPDATE t SET a = 1; DELETE FROM t; BEGIN; CREATE INDEX CONCURRENTLY i ON t (a); VACUUM t")
            .unwrap()
            .iter()
            .map(|s| is_plain_dml(s.node.as_deref().unwrap()))
            .collect();
        assert_eq!(kinds, [true, true, true, true, false, false, false]);
    }
}
