//! `prefer-single-alter`: several ALTER TABLE statements on one table that
//! could be one.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-single-alter",
    risk: Risk::Low,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "several ALTER TABLEs on one table take the lock (and may rewrite) several times",
    doc: "## What it does
Flags a second `ALTER TABLE` on the same existing table in the same transaction.

## Why is this bad?
Each statement queues for the lock separately and, if it rewrites, copies the table again. One `ALTER TABLE` with several comma-separated actions takes the lock once and rewrites at most once.

## Safe rewrite
Combine the actions into one statement.

## Example
```sql
ALTER TABLE users ADD COLUMN plan text, ADD COLUMN trial_ends_at timestamptz;
```",
};

/// See [`META`].
pub struct PreferSingleAlter;

impl Rule for PreferSingleAlter {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        if !ctx.in_transaction {
            return;
        }
        let Some((table, _)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        if let Some((_, line)) = ctx.tx.altered.iter().find(|(t, _)| crate::lint::schema::key(t) == crate::lint::schema::key(&table)) {
            out.push(
                Finding::new(&META, format!("{table} was already altered at line {line} in this transaction; one ALTER TABLE with both actions locks it once"))
                    .table(table.clone())
                    .fix(format!("ALTER TABLE {} <action from line {line}>, <this action>;", table.clone())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_a_second_alter() {
        check_fires("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;");
    }

    #[test]
    fn ok_when_combined_or_different_tables() {
        check_ok("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text;");
        check_ok("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE orders ADD COLUMN b text;");
    }
}
