//! `ban-create-trigger-on-existing-table`: CREATE TRIGGER on a table in use.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-create-trigger-on-existing-table",
    risk: Risk::Low,
    lock: Some(Lock::ShareRowExclusive),
    scans: false,
    summary: "CREATE TRIGGER takes a lock that blocks writes, and queues behind running queries",
    doc: "## What it does
Flags `CREATE TRIGGER` on a table that existed before this migration.

## Why is this bad?
`CREATE TRIGGER` takes a SHARE ROW EXCLUSIVE lock, which conflicts with every write. The statement itself is quick (no scan), but it must wait for running transactions on a busy table, and all writes queue behind it while it waits. The trigger also adds work to every future write. LOW: the lock is held for an instant, and a short `lock_timeout` (which Strata's runner sets, with retries) bounds the wait in the queue.

## Safe rewrite
Run it with a short `lock_timeout` and retries (Strata's engine does both), at a quiet time, and keep the trigger function cheap.

## Example
```sql
SET lock_timeout = '100ms';
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
```",
};

/// See [`META`].
pub struct BanCreateTriggerOnExistingTable;

impl Rule for BanCreateTriggerOnExistingTable {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: the lock is brief on a table of any size, and lock_timeout bounds the queue.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::CreateTrigStmt(t) = ctx.node else { return };
        let Some(rv) = &t.relation else { return };
        let table = ast::relation(rv);
        if !ctx.is_existing(&table) {
            return;
        }
        out.push(
            Finding::new(&META, format!("CREATE TRIGGER {} waits for every running transaction on {table} and blocks its writes meanwhile", t.trigname))
                .table(table)
                .fix(format!("SET lock_timeout = '100ms';  -- Strata sets this and retries on its own\n{};", ctx.stmt.sql)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        let f = check_fires("ban-create-trigger-on-existing-table", "CREATE TRIGGER t BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION f();");
        // Brief lock, and lock_timeout covers the queue: hygiene, not an outage.
        assert_eq!(f.risk, crate::lint::Risk::Low);
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-create-trigger-on-existing-table", "CREATE TABLE w (a int);\nCREATE TRIGGER t BEFORE UPDATE ON w FOR EACH ROW EXECUTE FUNCTION f();");
    }
}
