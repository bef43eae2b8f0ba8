//! `ban-cluster`: CLUSTER in a migration.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-cluster",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `CLUSTER`.

## Why is this bad?
`CLUSTER` rewrites the whole table in index order while holding an ACCESS EXCLUSIVE lock: the table is unreadable and unwritable for the whole rewrite.

## Safe rewrite
Reorder the table online with `pg_repack --order-by`, or leave physical order alone.

## Example
```sql
-- before
CLUSTER orders USING orders_created_at_idx;
-- after (outside the migration)
-- pg_repack --table=orders --order-by=created_at
```",
};

/// See [`META`].
pub struct BanCluster;

impl Rule for BanCluster {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::ClusterStmt(c) = ctx.node else { return };
        let mut f = Finding::new(&META, "CLUSTER rewrites the table and blocks every read and write until it is done");
        // The table and the index's columns come from the statement and the
        // history; what they do not say stays a placeholder.
        let table = c.relation.as_ref().map(ast::relation);
        let columns = table
            .as_ref()
            .and_then(|t| ctx.schema.table(t))
            .and_then(|k| k.index_defs.iter().find(|d| !c.indexname.is_empty() && d.name == c.indexname))
            .map(|d| d.columns.join(","));
        f = f.fix(format!(
            "-- reorder online instead: pg_repack --table={} --order-by={}",
            table.clone().unwrap_or_else(|| "<table>".to_owned()),
            columns.unwrap_or_else(|| format!("<columns of {}>", if c.indexname.is_empty() { "its clustered index" } else { &c.indexname }))
        ));
        if let Some(t) = table {
            f = f.table(t);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_cluster() {
        check_fires("ban-cluster", "CLUSTER orders USING orders_pkey;");
    }

    #[test]
    fn ok_otherwise() {
        check_ok("ban-cluster", "ANALYZE orders;");
    }
}
