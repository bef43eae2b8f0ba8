//! `ban-vacuum-full`: VACUUM FULL in a migration.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-vacuum-full",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `VACUUM FULL`.

## Why is this bad?
`VACUUM FULL` rewrites the whole table and its indexes while holding an ACCESS EXCLUSIVE lock: nothing can read or write the table until it finishes, and it needs disk space for a full second copy.

## Safe rewrite
Use plain `VACUUM` (no lock against reads or writes), or rebuild the table online with the `pg_repack` extension.

## Example
```sql
-- before
VACUUM FULL orders;
-- after
VACUUM (ANALYZE) orders;
```",
};

/// See [`META`].
pub struct BanVacuumFull;

impl Rule for BanVacuumFull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::VacuumStmt(v) = ctx.node else { return };
        if !v.is_vacuumcmd || !v.options.iter().any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "full")) {
            return;
        }
        let table = crate::lint::context::table_lock(ctx.node).map(|(_, t)| t);
        let target = table.clone().map(|t| format!(" {}", t.clone())).unwrap_or_default();
        let mut f = Finding::new(&META, "VACUUM FULL rewrites the table and blocks every read and write until it is done")
            .fix(format!("VACUUM (ANALYZE){target};  -- or rebuild online with pg_repack"));
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
    fn fires_on_vacuum_full() {
        check_fires("ban-vacuum-full", "VACUUM FULL orders;");
        check_fires("ban-vacuum-full", "VACUUM (FULL, ANALYZE) orders;");
    }

    #[test]
    fn ok_on_plain_vacuum() {
        check_ok("ban-vacuum-full", "VACUUM ANALYZE orders;");
    }
}
