//! `ban-unbalanced-transaction`: BEGIN without COMMIT, and nested BEGIN.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-unbalanced-transaction",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "BEGIN without COMMIT, or BEGIN inside a transaction, does not do what the file says",
    doc: "## What it does
Flags a `BEGIN` inside a transaction the file already opened (PostgreSQL has no nested transactions: the inner BEGIN is ignored with a warning, and the first COMMIT commits everything), and a `BEGIN` that is never committed (everything after it is rolled back when the session ends).

## Why is this bad?
Either the migration's effects vanish, or statements meant to be atomic are not: the file does not do what it says.

## Safe rewrite
Balance every `BEGIN` with a `COMMIT`; use `SAVEPOINT` for nested scopes. With Strata you rarely need explicit transactions: a file runs in one transaction unless it must not.

## Example
```sql
BEGIN;
ALTER TABLE users ADD COLUMN plan text;
COMMIT;
```",
};

/// See [`META`].
pub struct BanUnbalancedTransaction;

impl Rule for BanUnbalancedTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        // A BEGIN without COMMIT is reported by the driver at the end of the file.
        if ctx.stmt.transaction == crate::sql::TransactionBehavior::Begin && ctx.explicit_transaction {
            out.push(
                Finding::new(&META, "BEGIN inside a transaction that is already open: PostgreSQL ignores it, and the first COMMIT commits everything")
                    .fix("SAVEPOINT inner;  -- ... ROLLBACK TO SAVEPOINT inner / RELEASE SAVEPOINT inner"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_nested_and_unclosed() {
        check_fires("ban-unbalanced-transaction", "BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;");
        check_fires("ban-unbalanced-transaction", "BEGIN;\nCREATE TABLE t (a int);");
    }

    #[test]
    fn ok_when_balanced() {
        check_ok("ban-unbalanced-transaction", "BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;");
    }
}
