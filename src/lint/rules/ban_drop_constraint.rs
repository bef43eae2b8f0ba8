//! `ban-drop-constraint`: ALTER TABLE ... DROP CONSTRAINT on an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP CONSTRAINT removes a guarantee the application may rely on, under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... DROP CONSTRAINT` on an existing table.

## Why is this bad?
Code that relies on the constraint (upserts on a unique key, joins that assume a foreign key) silently changes behaviour, and bad data can enter immediately. The drop also takes an ACCESS EXCLUSIVE lock, so it queues behind running queries and blocks everything behind it.

## Safe rewrite
Ship the application change that stops relying on the constraint first, then drop it with a short `lock_timeout` (Strata sets one). Dropping a foreign key also locks the referenced table.

## Example
```sql
SET lock_timeout = '2s';
ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
```",
};

/// See [`META`].
pub struct BanDropConstraint;

impl Rule for BanDropConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: the guarantee is gone on a table of any size.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDropConstraint)) {
            out.push(
                Finding::new(&META, format!("dropping constraint {} on {table} removes a guarantee that running code may rely on", cmd.name))
                    .table(table.clone())
                    .fix(format!("-- deploy code that no longer relies on it first, then:\nALTER TABLE {} DROP CONSTRAINT {};", table.clone(), ast::ident(&cmd.name))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-drop-constraint", "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-drop-constraint", "CREATE TABLE t (a int CONSTRAINT c CHECK (a > 0));\nALTER TABLE t DROP CONSTRAINT c;");
    }
}
