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
Flags a statement that runs, in the same transaction, after a statement that took an ACCESS EXCLUSIVE lock on an existing table, when it is slow (DML, DO blocks, index builds, maintenance, ALTERs that scan or rewrite) or locks another existing table (it then waits in that table's lock queue while the first table stays blocked). Quick follow-ups on the same table are not flagged.

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
        let key = crate::lint::schema::key(locked);
        // What extends the outage: slow work, or waiting for another table's
        // lock (in that table's queue) while holding this one.
        let other_table = crate::lint::context::table_lock(ctx.node)
            .is_some_and(|(_, t)| crate::lint::schema::key(&t) != key && ctx.is_existing(&t));
        if !(is_slow(ctx) || other_table) {
            return;
        }
        out.push(
            Finding::new(&META, format!("{locked} stays locked against reads and writes (ACCESS EXCLUSIVE since line {line}) while this statement runs"))
                .table(locked.clone())
                .fix(format!("-- run this in a separate migration, or add -- strata:no-transaction so each statement commits on its own:\n{};", ctx.stmt.sql)),
        );
    }
}

/// Statements whose duration grows with data: DML, DO blocks, index builds,
/// maintenance, and ALTERs that scan or rewrite.
fn is_slow(ctx: &StmtCtx<'_>) -> bool {
    match ctx.node {
        NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) | NodeEnum::InsertStmt(_) | NodeEnum::DoStmt(_) => true,
        NodeEnum::IndexStmt(_) | NodeEnum::VacuumStmt(_) | NodeEnum::ClusterStmt(_) | NodeEnum::ReindexStmt(_) => true,
        NodeEnum::RefreshMatViewStmt(_) | NodeEnum::CreateTableAsStmt(_) => true,
        NodeEnum::AlterTableStmt(_) => {
            let Some((_, cmds)) = ast::alter_table(ctx.node) else { return false };
            cmds.iter().any(|cmd| {
                ast::is(cmd, AlterTableType::AtAlterColumnType)
                    || ast::is(cmd, AlterTableType::AtSetNotNull)
                    || ast::is(cmd, AlterTableType::AtValidateConstraint)
                    || ast::constraint(cmd).is_some_and(|c| !c.skip_validation && !ast::constr_is(c, ConstrType::ConstrNotnull))
                    || ast::column_def(cmd).is_some_and(|col| {
                        ast::column_constraints(col).any(|c| ast::constr_is(c, ConstrType::ConstrGenerated) || ast::constr_is(c, ConstrType::ConstrIdentity))
                    })
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_after_an_access_exclusive_lock() {
        check_fires("ban-statements-after-access-exclusive", "ALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
        // Waiting for another table's lock while holding this one.
        check_fires("ban-statements-after-access-exclusive", "ALTER TABLE users ADD COLUMN plan text;\nALTER TABLE orders ADD COLUMN note text;");
    }

    #[test]
    fn ok_when_last_or_on_new_tables() {
        check_ok("ban-statements-after-access-exclusive", "UPDATE accounts SET active = true WHERE id = 1;\nALTER TABLE users ADD COLUMN plan text;");
        check_ok("ban-statements-after-access-exclusive", "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nCREATE INDEX ON t (b);");
        check_ok("ban-statements-after-access-exclusive", "-- strata:no-transaction\nALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
        // Fast follow-ups on the same table hold the lock for microseconds.
        check_ok("ban-statements-after-access-exclusive", "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;\nCOMMENT ON COLUMN users.a IS 'x';");
    }
}
