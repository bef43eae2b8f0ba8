//! `require-concurrent-detach-partition`: DETACH PARTITION without
//! CONCURRENTLY.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-concurrent-detach-partition",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DETACH PARTITION without CONCURRENTLY locks the whole partitioned table",
    doc: "## What it does
Flags `ALTER TABLE ... DETACH PARTITION` without `CONCURRENTLY` on an existing table.

## Why is this bad?
A plain detach takes an ACCESS EXCLUSIVE lock on the parent table: every query on any partition waits, and queues behind the detach while it waits for running queries.

## Safe rewrite
`DETACH PARTITION ... CONCURRENTLY` (PostgreSQL 14 and later) takes only SHARE UPDATE EXCLUSIVE on the parent. It cannot run in a transaction block; Strata runs such files outside one.

## Example
```sql
-- before
ALTER TABLE measurements DETACH PARTITION measurements_2023;
-- after
ALTER TABLE measurements DETACH PARTITION measurements_2023 CONCURRENTLY;
```",
};

/// See [`META`].
pub struct RequireConcurrentDetachPartition;

impl Rule for RequireConcurrentDetachPartition {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDetachPartition)) {
            let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_deref().and_then(|d| d.node.as_ref()) else { continue };
            if p.concurrent {
                continue;
            }
            let part = p.name.as_ref().map(ast::relation).unwrap_or_default();
            let mut finding = Finding::new(&META, format!("DETACH PARTITION {part} locks all of {table} against reads and writes")).table(table.clone());
            if ctx.pg_version() >= 14 {
                // DETACH ... CONCURRENTLY leaves a CHECK copying the partition
                // bound on the detached table, which the plain DETACH does
                // not: drop it for the same end state. PostgreSQL names it
                // after the key column when there is one (`ChooseConstraintName`).
                let detach = format!("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY;", table.clone(), part.clone());
                let part_base = ast::base_name(&part);
                match ctx.schema.table(&table).map(|t| t.partition_key.as_slice()) {
                    Some([column]) => {
                        let check = ast::ident(&names::object_name(&part_base, Some(column), "check"));
                        finding = finding.rewrite(format!("{detach}\n-- it adds a CHECK with the partition bound to {part}; drop it unless you re-attach:\nALTER TABLE {part} DROP CONSTRAINT {check};"));
                    }
                    Some(key) if key.len() > 1 => {
                        let check = ast::ident(&names::object_name(&part_base, None, "check"));
                        finding = finding.rewrite(format!("{detach}\n-- it adds a CHECK with the partition bound to {part}; drop it unless you re-attach:\nALTER TABLE {part} DROP CONSTRAINT {check};"));
                    }
                    _ => {
                        finding = finding.fix(format!("{detach}\n-- it adds a CHECK with the partition bound to {part} (named <partition>_<key column>_check); drop it unless you re-attach"));
                    }
                }
            }
            out.push(finding);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    #[test]
    fn fires_without_concurrently() {
        let f = check_fires("require-concurrent-detach-partition", "ALTER TABLE events DETACH PARTITION events_2023;");
        let fix = f.fix.unwrap();
        assert!(fix.starts_with("ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\n"), "{fix}");
        // Without the history the CHECK's name is unknown: advice only.
        assert!(!f.rewrite);
    }

    /// CONCURRENTLY leaves a CHECK on the partition that the plain form
    /// does not; the rewrite drops it under the name PostgreSQL gives it.
    #[test]
    fn rewrite_drops_the_check_concurrently_leaves() {
        let history = ["CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);\nCREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');"];
        let f = lint_after(&history, "ALTER TABLE events DETACH PARTITION events_2023;", &LintOptions::default()).into_iter().find(|f| f.rule == "require-concurrent-detach-partition").unwrap();
        assert!(f.rewrite);
        assert!(f.fix.unwrap().ends_with("ALTER TABLE events_2023 DROP CONSTRAINT events_2023_at_check;"));
    }

    #[test]
    fn ok_with_concurrently() {
        check_ok("require-concurrent-detach-partition", "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;");
    }
}
