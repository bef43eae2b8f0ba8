//! `ban-truncate-cascade`: TRUNCATE ... CASCADE.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-truncate-cascade",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "TRUNCATE CASCADE empties every table that references this one, too",
    doc: "## What it does
Flags `TRUNCATE ... CASCADE`.

## Why is this bad?
`CASCADE` also truncates every table with a foreign key to the named tables, and theirs in turn: the statement names one table and can empty a dozen, irreversibly, under ACCESS EXCLUSIVE locks on all of them.

## Safe rewrite
Truncate exactly the tables you mean, listed explicitly, without `CASCADE` (it then fails if another table references them, which is the point), after a backup.

## Example
```sql
TRUNCATE staging_events, staging_event_tags;
```",
};

/// See [`META`].
pub struct BanTruncateCascade;

impl Rule for BanTruncateCascade {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::TruncateStmt(t) = ctx.node else { return };
        if t.behavior != pg_query::protobuf::DropBehavior::DropCascade as i32 {
            return;
        }
        let tables: Vec<String> = t
            .relations
            .iter()
            .filter_map(|r| match &r.node {
                Some(NodeEnum::RangeVar(rv)) => Some(ast::relation(rv)),
                _ => None,
            })
            .collect();
        let mut f = Finding::new(&META, format!("TRUNCATE {} CASCADE also empties every table that references it, irreversibly", tables.join(", ")))
            .fix(format!("-- list every table to empty explicitly, without CASCADE, after a backup:\nTRUNCATE {};", tables.join(", ")));
        if let Some(first) = tables.first() {
            f = f.table(first.clone());
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_cascade() {
        check_fires("ban-truncate-cascade", "TRUNCATE users CASCADE;");
    }

    #[test]
    fn ok_without_cascade() {
        check_ok("ban-truncate-cascade", "TRUNCATE staging_events;");
    }
}
