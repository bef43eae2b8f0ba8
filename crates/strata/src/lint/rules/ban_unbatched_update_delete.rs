//! `ban-unbatched-update-delete`: UPDATE or DELETE of a whole existing table
//! in one statement.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-unbatched-update-delete",
    risk: Risk::Medium,
    lock: Some(Lock::RowExclusive),
    scans: true,
    summary: "a whole-table UPDATE or DELETE locks every row in one long transaction",
    doc: "## What it does
Flags `UPDATE` and `DELETE` without a `WHERE` clause on an existing table. A `DELETE` of every row is data loss and is HIGH; an `UPDATE` is MEDIUM.

## Why is this bad?
One statement locks every row it touches until the transaction commits: application writes to those rows wait, replicas lag behind a single huge transaction, and the table bloats with a dead copy of every row.

## Safe rewrite
Backfill in batches of a few thousand rows, each in its own transaction, with a pause between batches.

## Example
```sql
-- repeat until it updates 0 rows:
UPDATE users SET plan = 'free' WHERE id IN (SELECT id FROM users WHERE plan IS NULL LIMIT 5000);
```",
};

/// See [`META`].
pub struct BanUnbatchedUpdateDelete;

impl Rule for BanUnbatchedUpdateDelete {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let (rv, delete) = match ctx.node {
            NodeEnum::UpdateStmt(u) if u.where_clause.is_none() => (u.relation.as_ref(), false),
            NodeEnum::DeleteStmt(d) if d.where_clause.is_none() => (d.relation.as_ref(), true),
            _ => return,
        };
        let Some(rv) = rv else { return };
        let table = ast::relation(rv);
        if !ctx.is_existing(&table) {
            return;
        }
        let t = table.clone();
        let finding = if delete {
            Finding::new(&META, format!("DELETE without WHERE removes every row of {table} in one transaction"))
                .risk(Risk::High)
                .fix(format!("-- if you really mean every row, back up first and delete in batches:\nDELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} LIMIT 5000);"))
        } else {
            let set = ctx.stmt.sql.to_ascii_lowercase().find(" set ").map(|i| ctx.stmt.sql[i + 5..].trim().to_owned()).unwrap_or_else(|| "...".into());
            Finding::new(&META, format!("UPDATE without WHERE rewrites every row of {table} in one transaction, locking them all until it commits"))
                .fix(format!("-- batch it; repeat until 0 rows are updated:\nUPDATE {t} SET {set} WHERE ctid IN (SELECT ctid FROM {t} WHERE {} LIMIT 5000);", not_yet_updated(ctx).unwrap_or_else(|| "<not yet updated: say how to tell>".to_owned())))
        };
        out.push(finding.table(table));
    }
}

/// `a IS DISTINCT FROM v OR …` for an UPDATE that sets every column to a
/// value that does not depend on the row (no column references, no
/// volatile calls, no subqueries): the rows a batch still has to change, so
/// repeating the batch ends. `None` when a value depends on the row.
fn not_yet_updated(ctx: &StmtCtx<'_>) -> Option<String> {
    let NodeEnum::UpdateStmt(u) = ctx.node else { return None };
    if !u.from_clause.is_empty() {
        return None;
    }
    let mut tests = Vec::new();
    for target in &u.target_list {
        let Some(NodeEnum::ResTarget(r)) = &target.node else { return None };
        let value = r.val.as_deref()?;
        let inner = value.node.as_ref()?;
        let row_dependent = matches!(inner, NodeEnum::ColumnRef(_) | NodeEnum::SubLink(_) | NodeEnum::SetToDefault(_))
            || inner.nodes().iter().any(|(n, _, _, _)| matches!(n, pg_query::NodeRef::ColumnRef(_) | pg_query::NodeRef::SubLink(_)));
        let volatile = ast::called_functions(value).iter().any(|f| ctx.volatility(f) != Some('i') && ctx.volatility(f) != Some('s'));
        if r.name.is_empty() || !r.indirection.is_empty() || row_dependent || volatile {
            return None;
        }
        tests.push(format!("{} IS DISTINCT FROM {}", ast::ident(&r.name), ast::deparse_expr(value)));
    }
    (!tests.is_empty()).then(|| tests.join(" OR "))
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    /// Issue 11, item 13: a constant SET says which rows are left.
    #[test]
    fn batches_know_which_rows_are_left() {
        let f = check_fires("ban-unbatched-update-delete", "UPDATE users SET plan = 'free', score = 0;");
        assert!(f.fix.unwrap().contains("WHERE plan IS DISTINCT FROM 'free' OR score IS DISTINCT FROM 0 LIMIT 5000"));
        let f = check_fires("ban-unbatched-update-delete", "UPDATE users SET score = score + 1;");
        assert!(f.fix.unwrap().contains("<not yet updated: say how to tell>"));
    }
    use crate::lint::Risk;

    #[test]
    fn fires_on_whole_table_dml() {
        assert_eq!(check_fires("ban-unbatched-update-delete", "UPDATE users SET plan = 'free';").risk, Risk::Medium);
        assert_eq!(check_fires("ban-unbatched-update-delete", "DELETE FROM users;").risk, Risk::High);
    }

    #[test]
    fn ok_with_where_or_new_table() {
        check_ok("ban-unbatched-update-delete", "UPDATE users SET plan = 'free' WHERE id < 1000;");
        check_ok("ban-unbatched-update-delete", "CREATE TABLE t (a int);\nUPDATE t SET a = 1;");
    }
}
