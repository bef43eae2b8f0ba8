//! `ban-truncate`: TRUNCATE of an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-truncate",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "TRUNCATE deletes every row of an existing table",
    doc: "## What it does
Flags `TRUNCATE` of a table that existed before this migration (`TRUNCATE ... CASCADE` is flagged by `ban-truncate-cascade`).

## Why is this bad?
Every row is gone, irreversibly, and in every environment the migration runs in, including production. It also takes an ACCESS EXCLUSIVE lock.

## Safe rewrite
Delete what you mean with a `WHERE` clause, in batches, after a backup; Strata backs up before destructive migrations when `backup` is enabled.

## Example
```sql
DELETE FROM sessions WHERE expires_at < now() - interval '30 days';
```",
};

/// See [`META`].
pub struct BanTruncate;

impl Rule for BanTruncate {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::TruncateStmt(t) = ctx.node else { return };
        if t.behavior == pg_query::protobuf::DropBehavior::DropCascade as i32 {
            return;
        }
        for r in &t.relations {
            let Some(NodeEnum::RangeVar(rv)) = &r.node else { continue };
            let table = ast::relation(rv);
            if !ctx.is_existing(&table) {
                continue;
            }
            let q = table.clone();
            out.push(
                Finding::new(&META, format!("TRUNCATE deletes every row of {table}, irreversibly"))
                    .table(table.clone())
                    .fix(format!("-- back up first (pg_dump -Fc -t {q}); delete only what you mean, in batches:\nDELETE FROM {q} WHERE ctid IN (SELECT ctid FROM {q} WHERE <condition> LIMIT 5000);")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-truncate", "TRUNCATE TABLE sessions;");
    }

    #[test]
    fn ok_on_new_tables_and_cascade() {
        check_ok("ban-truncate", "CREATE TABLE staging (a int);\nTRUNCATE staging;");
        check_ok("ban-truncate", "TRUNCATE sessions CASCADE;");
    }
}
