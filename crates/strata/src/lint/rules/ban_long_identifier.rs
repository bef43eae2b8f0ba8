//! `ban-long-identifier`: identifiers longer than 63 bytes.

use super::prelude::*;
use pg_query::protobuf::Token;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-long-identifier",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "identifiers over 63 bytes are silently truncated",
    doc: "## What it does
Flags table, column, index and constraint names longer than 63 bytes (PostgreSQL's `NAMEDATALEN - 1`).

## Why is this bad?
PostgreSQL truncates longer names with only a NOTICE. Two long names that share their first 63 bytes collide, and a later migration or the application that uses the full name fails to find the object.

## Safe rewrite
Use a name of at most 63 bytes (mind multi-byte characters).

## Example
```sql
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at);
```",
};

/// See [`META`].
pub struct BanLongIdentifier;

impl Rule for BanLongIdentifier {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        // The parser truncates long names before we see the tree, so look
        // at the scanner's identifier tokens in the original text.
        if !may_have_long_identifier(&ctx.stmt.sql) {
            return;
        }
        let Ok(scan) = pg_query::scan(&ctx.stmt.sql) else { return };
        let mut seen = Vec::new();
        for token in scan.tokens.iter().filter(|t| t.token == Token::Ident as i32) {
            let (start, end) = (token.start as usize, token.end as usize);
            let Some(raw) = ctx.stmt.sql.get(start..end) else { continue };
            let name = raw.trim_matches('"').replace("\"\"", "\"");
            if name.len() <= 63 || seen.contains(&name) {
                continue;
            }
            let mut cut = 63;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(
                Finding::new(&META, format!("identifier is {} bytes; PostgreSQL silently truncates it to 63: \"{}\"", name.len(), &name[..cut]))
                    .fix(format!("-- use a name of at most 63 bytes instead of {name}")),
            );
            seen.push(name);
        }
    }
}

/// False only when no identifier token of `sql` can be over 63 bytes, found
/// without running the scanner (which took a tenth of linting a data file
/// of INSERTs): no quoted identifier (no `"`), and no run of 64 bytes that
/// may form a name outside `'…'` strings. Whatever could make the string
/// tracking wrong (comments, dollar quotes, backslash escapes) means "maybe".
fn may_have_long_identifier(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    if bytes.iter().any(|b| matches!(b, b'"' | b'$' | b'\\'))
        || sql.contains("--")
        || sql.contains("/*")
    {
        return true;
    }
    let mut in_string = false;
    let mut run = 0usize;
    for &b in bytes {
        if b == b'\'' {
            // A doubled quote inside a string closes and reopens it.
            in_string = !in_string;
            run = 0;
        } else if !in_string && (b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80) {
            run += 1;
            if run > 63 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::may_have_long_identifier;
    use crate::lint::test_utils::{check_fires, check_ok};

    /// The pre-check says "maybe" for every statement whose scan finds an
    /// identifier over 63 bytes (and "no" for a data file's INSERTs, long
    /// strings included).
    #[test]
    fn pre_check_never_hides_a_long_identifier() {
        let long = "a".repeat(64);
        let ok = "b".repeat(63);
        let x = "x".repeat(90);
        for sql in [
            format!("CREATE TABLE {long} (id int)"),
            format!("CREATE TABLE t ({long} int)"),
            format!("CREATE TABLE \"{}\" (id int)", "é".repeat(32)),
            format!("CREATE TABLE \"a\" ({}é int)", "c".repeat(62)),
            format!("INSERT INTO t ({long}) VALUES ('{x}')"),
            format!("INSERT INTO t VALUES ('it''s') RETURNING {long}"),
            format!("INSERT INTO t VALUES (E'\\'', 1) RETURNING {long}"),
            format!("SELECT $$'$$ AS {long}"),
            format!("SELECT 1 -- '\n AS {long}"),
            format!("SELECT 1 /* ' */ AS {long}"),
        ] {
            assert!(may_have_long_identifier(&sql), "{sql}");
            check_fires("ban-long-identifier", &format!("{sql};"));
        }
        for sql in [
            format!("INSERT INTO items (id, name) VALUES (1, '{x}')"),
            format!("INSERT INTO {ok} ({ok}) VALUES ('it''s {x}', 'a;b')"),
            "INSERT INTO t VALUES (1, 'x')".to_owned(),
        ] {
            assert!(!may_have_long_identifier(&sql), "{sql}");
            check_ok("ban-long-identifier", &format!("{sql};"));
        }
    }

    #[test]
    fn fires_over_63_bytes() {
        let long = "a".repeat(64);
        check_fires("ban-long-identifier", &format!("CREATE TABLE {long} (id int);"));
        check_fires("ban-long-identifier", &format!("CREATE INDEX {long} ON t (a);"));
    }

    #[test]
    fn ok_at_63_bytes() {
        let ok = "a".repeat(63);
        check_ok("ban-long-identifier", &format!("CREATE TABLE {ok} ({ok} int);"));
    }
}
