//! `ban-concurrently-in-transaction`: a CONCURRENTLY statement inside the
//! file's own BEGIN ... COMMIT.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-concurrently-in-transaction",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "CONCURRENTLY cannot run inside a transaction block; the migration fails",
    doc: "## What it does
Flags `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY` and `DETACH PARTITION ... CONCURRENTLY` inside a transaction that the file opens itself with `BEGIN`.

## Why is this bad?
PostgreSQL refuses these statements inside a transaction block (`cannot run inside a transaction block`), so the migration certainly fails. Strata runs files containing them outside a transaction on its own; only an explicit `BEGIN` in the file, or another tool that wraps each file in a transaction, puts them inside one.

## Safe rewrite
Move the statement out of the `BEGIN ... COMMIT` block, or into a migration of its own.

## Example
```sql
-- before
BEGIN;
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);
COMMIT;
-- after
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);
```",
};

/// See [`META`].
pub struct BanConcurrentlyInTransaction;

impl Rule for BanConcurrentlyInTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        if !ctx.explicit_transaction {
            return;
        }
        if let crate::sql::TransactionBehavior::Never(what) = ctx.stmt.transaction {
            out.push(
                Finding::new(&META, format!("{what} inside the file's own BEGIN ... COMMIT fails with \"cannot run inside a transaction block\""))
                    .fix(format!("-- move it after the COMMIT:\n{};", ctx.stmt.sql)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_inside_an_explicit_transaction() {
        check_fires("ban-concurrently-in-transaction", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;");
    }

    #[test]
    fn ok_outside_one() {
        // Strata runs this file outside a transaction.
        check_ok("ban-concurrently-in-transaction", "CREATE INDEX CONCURRENTLY i ON t (a);");
        check_ok("ban-concurrently-in-transaction", "BEGIN;\nSELECT 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);");
    }
}
