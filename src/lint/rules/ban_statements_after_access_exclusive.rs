//! `ban-statements-after-access-exclusive`: more work after an ACCESS
//! EXCLUSIVE lock in the same transaction.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-statements-after-access-exclusive",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "statements after an ACCESS EXCLUSIVE lock keep the table blocked until the transaction ends",
    doc: "## What it does
Flags a statement that runs, in the same transaction, after a statement that took an ACCESS EXCLUSIVE lock on an existing table.

## Why is this bad?
Locks are held until the transaction ends. Whatever runs after the ALTER (an index build, a backfill, another table's change) extends the time during which nobody can read or write the locked table.

## Safe rewrite
Put the ACCESS EXCLUSIVE statement last in its transaction, or in a migration of its own; `-- strata:no-transaction` makes each statement commit on its own.

## Example
```sql
-- migration 1
ALTER TABLE users ADD COLUMN plan text;
-- migration 2
UPDATE accounts SET ...;
```",
};

/// See [`META`].
pub struct BanStatementsAfterAccessExclusive;

impl Rule for BanStatementsAfterAccessExclusive {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        if !ctx.in_transaction {
            return;
        }
        let Some((locked, line)) = &ctx.tx.access_exclusive else { return };
        if matches!(ctx.node, NodeEnum::TransactionStmt(_) | NodeEnum::VariableSetStmt(_)) {
            return;
        }
        out.push(
            Finding::new(&META, format!("{locked} stays locked against reads and writes (ACCESS EXCLUSIVE since line {line}) while this statement runs"))
                .table(locked.clone())
                .fix(format!("-- run this in a separate migration, or add -- strata:no-transaction so each statement commits on its own:\n{};", ctx.stmt.sql)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_after_an_access_exclusive_lock() {
        check_fires("ban-statements-after-access-exclusive", "ALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
    }

    #[test]
    fn ok_when_last_or_on_new_tables() {
        check_ok("ban-statements-after-access-exclusive", "UPDATE accounts SET active = true WHERE id = 1;\nALTER TABLE users ADD COLUMN plan text;");
        check_ok("ban-statements-after-access-exclusive", "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nCREATE INDEX ON t (b);");
        check_ok("ban-statements-after-access-exclusive", "-- strata:no-transaction\nALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
    }
}
