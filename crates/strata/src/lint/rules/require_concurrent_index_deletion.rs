//! `require-concurrent-index-deletion`: DROP INDEX without CONCURRENTLY.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-concurrent-index-deletion",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table",
    doc: "## What it does
Flags `DROP INDEX` without `CONCURRENTLY`.

## Why is this bad?
A plain `DROP INDEX` takes an ACCESS EXCLUSIVE lock on the index's table. The drop itself is quick, but it waits behind any running query on the table, and every query that arrives meanwhile queues behind it: a long report query turns the drop into an outage.

## Safe rewrite
`DROP INDEX CONCURRENTLY` waits for conflicting transactions without blocking new ones. It cannot run in a transaction block; Strata runs such files outside one.

## Example
```sql
-- before
DROP INDEX orders_user_id_idx;
-- after
DROP INDEX CONCURRENTLY orders_user_id_idx;
```",
};

/// See [`META`].
pub struct RequireConcurrentIndexDeletion;

impl Rule for RequireConcurrentIndexDeletion {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::DropStmt(drop) = ctx.node else { return };
        if drop.remove_type != ObjectType::ObjectIndex as i32 || drop.concurrent {
            return;
        }
        // CONCURRENTLY drops one index per statement, and cannot CASCADE.
        let one_each: Vec<String> = drop
            .objects
            .iter()
            .map(|o| {
                let mut one = drop.clone();
                one.objects = vec![o.clone()];
                one.concurrent = true;
                format!("{};", ast::deparse(&NodeEnum::DropStmt(one)))
            })
            .collect();
        // The table, when the history or the server knows it: its size then
        // weighs the finding, and the message names what is blocked.
        let table = drop.objects.iter().find_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => ctx.index_table(&ast::name(&l.items)),
            _ => None,
        });
        let finding = match &table {
            Some(t) => Finding::new(&META, format!("DROP INDEX locks {t} against reads and writes until the transaction ends, and queues every query behind it while it waits")).table(t.clone()),
            None => Finding::new(&META, "DROP INDEX locks the index's table against reads and writes, and queues every query behind it while it waits"),
        };
        let cascade = drop.behavior == pg_query::protobuf::DropBehavior::DropCascade as i32;
        out.push(if cascade {
            finding.fix(format!("-- CONCURRENTLY cannot CASCADE: drop what depends on the index first, then\n{}", one_each.join("\n").replace(" CASCADE", "")))
        } else {
            finding.rewrite(one_each.join("\n"))
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    /// Issue 11, item 13: CONCURRENTLY drops one index per statement.
    #[test]
    fn one_statement_per_index() {
        let f = check_fires("require-concurrent-index-deletion", "DROP INDEX a_idx, \"Sch\".b_idx;");
        assert_eq!(f.fix.as_deref(), Some("DROP INDEX CONCURRENTLY a_idx;\nDROP INDEX CONCURRENTLY \"Sch\".b_idx;"));
    }

    #[test]
    fn fires_without_concurrently() {
        let f = check_fires("require-concurrent-index-deletion", "DROP INDEX IF EXISTS orders_user_idx;");
        assert_eq!(f.fix.as_deref(), Some("DROP INDEX CONCURRENTLY IF EXISTS orders_user_idx;"));
    }

    #[test]
    fn names_the_table_from_the_history() {
        let f = check_fires("require-concurrent-index-deletion", "CREATE TABLE orders (id bigint, user_id bigint);\nCREATE INDEX orders_user_idx ON orders (user_id);\nDROP INDEX orders_user_idx;");
        assert_eq!(f.table.as_deref(), Some("orders"));
    }

    #[test]
    fn ok_with_concurrently() {
        check_ok("require-concurrent-index-deletion", "DROP INDEX CONCURRENTLY orders_user_idx;");
        check_ok("require-concurrent-index-deletion", "DROP TABLE t;");
    }
}
