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

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

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
