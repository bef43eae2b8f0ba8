//! `ban-exclusion-constraint`: ADD EXCLUDE on an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-exclusion-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "ADD EXCLUDE builds its index under an ACCESS EXCLUSIVE lock, with no online alternative",
    doc: "## What it does
Flags `ALTER TABLE ... ADD CONSTRAINT ... EXCLUDE (...)` on an existing table.

## Why is this bad?
An exclusion constraint builds its index while holding an ACCESS EXCLUSIVE lock, and unlike UNIQUE it cannot be attached `USING INDEX`, so there is no concurrent path: the table is blocked for the whole build.

## Safe rewrite
Create the constraint on a new table and move the data over in batches (then swap the tables), or add it in a maintenance window when the table is small enough. Check the table size first.

## Example
```sql
-- instead of ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);
CREATE TABLE bookings_new (LIKE bookings INCLUDING ALL, EXCLUDE USING gist (room WITH =, during WITH &&));
-- copy in batches, then swap names in one short transaction
```",
};

/// See [`META`].
pub struct BanExclusionConstraint;

impl Rule for BanExclusionConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddConstraint)) {
            if ast::constraint(cmd).is_some_and(|c| ast::constr_is(c, ConstrType::ConstrExclusion)) {
                let t = table.clone();
                out.push(
                    Finding::new(&META, format!("ADD EXCLUDE on existing table {table} builds its index while blocking reads and writes, and has no concurrent form"))
                        .table(table.clone())
                        .fix(format!("-- build the constraint on a copy and swap:\nCREATE TABLE {t}_new (LIKE {t} INCLUDING ALL);\n-- add the EXCLUDE constraint to {t}_new, copy rows in batches, then rename both tables in one short transaction")),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-exclusion-constraint", "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-exclusion-constraint", "CREATE TABLE b (room int, during tstzrange, EXCLUDE USING gist (room WITH =, during WITH &&));");
    }
}
