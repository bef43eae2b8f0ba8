//! `ban-set-logged-unlogged`: ALTER TABLE ... SET LOGGED / SET UNLOGGED.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-set-logged-unlogged",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "SET LOGGED / SET UNLOGGED rewrites the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... SET LOGGED` and `SET UNLOGGED` on an existing table.

## Why is this bad?
Both rewrite the whole table (SET LOGGED also writes all of it to the WAL) while holding an ACCESS EXCLUSIVE lock. An unlogged table is also emptied after a crash and is not replicated.

## Safe rewrite
Create a new table with the persistence you want, copy rows in batches, and swap the names in one short transaction.

## Example
```sql
CREATE UNLOGGED TABLE events_new (LIKE events INCLUDING ALL);
-- copy in batches, then: ALTER TABLE events RENAME TO events_old; ALTER TABLE events_new RENAME TO events;
```",
};

/// See [`META`].
pub struct BanSetLoggedUnlogged;

impl Rule for BanSetLoggedUnlogged {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds {
            let which = if ast::is(cmd, AlterTableType::AtSetLogged) {
                "LOGGED"
            } else if ast::is(cmd, AlterTableType::AtSetUnLogged) {
                "UNLOGGED"
            } else {
                continue;
            };
            let q = table.clone();
            let unlogged = if which == "UNLOGGED" { "UNLOGGED " } else { "" };
            out.push(
                Finding::new(&META, format!("SET {which} rewrites all of {table} while blocking reads and writes"))
                    .table(table.clone())
                    .fix(format!("CREATE {unlogged}TABLE {q}_new (LIKE {q} INCLUDING ALL);\n-- copy rows in batches, then swap names in one short transaction")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-set-logged-unlogged", "ALTER TABLE events SET UNLOGGED;");
        check_fires("ban-set-logged-unlogged", "ALTER TABLE events SET LOGGED;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-set-logged-unlogged", "CREATE TABLE e (a int);\nALTER TABLE e SET UNLOGGED;");
    }
}
