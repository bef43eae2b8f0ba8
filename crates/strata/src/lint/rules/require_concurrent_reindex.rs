//! `require-concurrent-reindex`: REINDEX without CONCURRENTLY.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-concurrent-reindex",
    risk: Risk::Medium,
    lock: Some(Lock::Share),
    scans: true,
    summary: "REINDEX without CONCURRENTLY blocks writes, and locks the index against reads",
    doc: "## What it does
Flags `REINDEX` without `CONCURRENTLY`.

## Why is this bad?
A plain `REINDEX` locks the table against writes (SHARE) and takes an ACCESS EXCLUSIVE lock on each index it rebuilds, so queries that would use the index wait too, for as long as the rebuild takes.

## Safe rewrite
`REINDEX ... CONCURRENTLY` (PostgreSQL 12 and later) builds a new index beside the old one and swaps them, with only brief locks. It cannot run in a transaction block; Strata runs such files outside one.

## Example
```sql
-- before
REINDEX INDEX orders_user_id_idx;
-- after
REINDEX INDEX CONCURRENTLY orders_user_id_idx;
```",
};

/// See [`META`].
pub struct RequireConcurrentReindex;

impl Rule for RequireConcurrentReindex {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::ReindexStmt(r) = ctx.node else { return };
        let concurrent = r.params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
        if concurrent {
            return;
        }
        let mut finding = Finding::new(&META, "REINDEX blocks writes to the table and reads through the index while it rebuilds");
        if ctx.pg_version() >= 12 {
            let mut safe = r.clone();
            safe.params.push(pg_query::protobuf::Node {
                node: Some(NodeEnum::DefElem(Box::new(pg_query::protobuf::DefElem {
                    defname: "concurrently".into(),
                    defaction: pg_query::protobuf::DefElemAction::DefelemUnspec as i32,
                    ..Default::default()
                }))),
            });
            finding = finding.rewrite(format!("{};", ast::deparse(&NodeEnum::ReindexStmt(safe))));
        }
        if let Some(rv) = &r.relation {
            finding = finding.table(ast::relation(rv));
        }
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_without_concurrently() {
        let f = check_fires("require-concurrent-reindex", "REINDEX TABLE orders;");
        assert!(f.fix.unwrap().contains("CONCURRENTLY"));
    }

    #[test]
    fn ok_with_concurrently() {
        check_ok("require-concurrent-reindex", "REINDEX TABLE CONCURRENTLY orders;");
    }
}
