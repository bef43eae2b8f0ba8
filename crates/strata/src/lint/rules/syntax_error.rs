//! `syntax-error`: the PostgreSQL parser rejects the file.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "syntax-error",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "the PostgreSQL parser rejects the statement; the migration cannot run",
    doc: "## What it does
Reports a file that the PostgreSQL parser (the server's own grammar, through pg_query) rejects, with the line and column where parsing stopped. psql meta-commands (`\\i`, `\\set`) are reported the same way: they are psql features, not SQL.

## Why is this bad?
The migration fails with certainty when it runs.

## Safe rewrite
Fix the SQL at the reported position.

## Example
```sql
-- before
CREAT TABLE users (id bigint);
-- after
CREATE TABLE users (id bigint);
```",
};

/// See [`META`]. The driver reports it when a file does not parse; as a
/// per-statement rule it has nothing to check.
pub struct SyntaxError;

impl Rule for SyntaxError {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_with_a_position() {
        let f = check_fires("syntax-error", "SELECT 1;\nCREAT TABLE t (a int);");
        assert_eq!((f.line, f.column), (2, 1));
    }

    #[test]
    fn ok_on_valid_sql() {
        check_ok("syntax-error", "CREATE TABLE t (a int);");
    }
}
