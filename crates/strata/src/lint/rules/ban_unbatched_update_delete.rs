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
Put `-- strata:backfill` on the line above the statement: Strata's runner then runs it as a batched backfill (keyset batches of about 50 ms, each committed with its cursor, throttled, resumed where it stopped after a crash), in every layout; the file runs outside a transaction. A statement that already has the directive is not flagged. With `--external` (another tool runs the file and reads the directive as a comment), batch it by hand: a few thousand rows per transaction, repeated until it changes nothing.

## Example
```sql
-- strata:backfill
UPDATE users SET plan = 'free';
```",
};

/// See [`META`].
pub struct BanUnbatchedUpdateDelete;

impl Rule for BanUnbatchedUpdateDelete {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        // Strata's runner batches a statement under `-- strata:backfill`;
        // another tool reads the directive as a comment.
        if ctx.stmt.backfill && !ctx.options.external_runner {
            return;
        }
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
        let external = ctx.options.external_runner;
        let finding = if delete {
            let fix = if external {
                format!("-- if you really mean every row, back up first and delete in batches:\nDELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} LIMIT 5000);")
            } else {
                format!("-- if you really mean every row, back up first; Strata deletes in batches:\n{}", backfill_fix(&format!("DELETE FROM {t} WHERE true")))
            };
            Finding::new(&META, format!("DELETE without WHERE removes every row of {table} in one transaction"))
                .risk(Risk::High)
                .fix(fix)
        } else {
            let fix = if external {
                let set = ctx.stmt.sql.to_ascii_lowercase().find(" set ").map(|i| ctx.stmt.sql[i + 5..].trim().to_owned()).unwrap_or_else(|| "...".into());
                format!("-- batch it; repeat until 0 rows are updated:\nUPDATE {t} SET {set} WHERE ctid IN (SELECT ctid FROM {t} WHERE {} LIMIT 5000);", not_yet_updated(ctx).unwrap_or_else(|| "<not yet updated: say how to tell>".to_owned()))
            } else {
                backfill_fix(&ctx.stmt.sql)
            };
            Finding::new(&META, format!("UPDATE without WHERE rewrites every row of {table} in one transaction, locking them all until it commits"))
                .fix(fix)
        };
        out.push(finding.table(table));
    }
}

/// The safe rewrite for Strata's runner: the same statement under
/// `-- strata:backfill`, which runs it in short batches, each committed
/// with its cursor, resumable after a crash. A comment, so it is valid in
/// every layout (goose, golang-migrate, Flyway, diesel, …).
pub fn backfill_fix(sql: &str) -> String {
    format!(
        "-- run it as a batched, resumable backfill (the file then runs outside a transaction):\n-- strata:backfill\n{};",
        sql.trim().trim_end_matches(';')
    )
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
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    /// Issue 11, item 13: a constant SET says which rows are left (for a
    /// file another tool runs, which cannot read the directive).
    #[test]
    fn batches_know_which_rows_are_left() {
        let external = LintOptions { external_runner: true, ..LintOptions::default() };
        let fires = |sql: &str| {
            lint_after(&[], sql, &external).into_iter().find(|f| f.rule == "ban-unbatched-update-delete").unwrap()
        };
        let f = fires("UPDATE users SET plan = 'free', score = 0;");
        assert!(f.fix.unwrap().contains("WHERE plan IS DISTINCT FROM 'free' OR score IS DISTINCT FROM 0 LIMIT 5000"));
        let f = fires("UPDATE users SET score = score + 1;");
        assert!(f.fix.unwrap().contains("<not yet updated: say how to tell>"));
        // The directive means nothing to that tool: still flagged.
        fires("-- strata:backfill\nUPDATE users SET score = score + 1;");
    }
    use crate::lint::Risk;

    #[test]
    fn fires_on_whole_table_dml() {
        assert_eq!(check_fires("ban-unbatched-update-delete", "UPDATE users SET plan = 'free';").risk, Risk::Medium);
        assert_eq!(check_fires("ban-unbatched-update-delete", "DELETE FROM users;").risk, Risk::High);
    }

    /// Issue 8: the safe rewrite is the same statement under
    /// `-- strata:backfill`, and the rewritten file is clean.
    #[test]
    fn the_rewrite_is_the_backfill_directive() {
        let f = check_fires("ban-unbatched-update-delete", "UPDATE users\n  SET plan = 'free', score = score + 1;");
        let fix = f.fix.unwrap();
        assert!(fix.ends_with("-- strata:backfill\nUPDATE users\n  SET plan = 'free', score = score + 1;"), "{fix}");
        check_ok("ban-unbatched-update-delete", &fix);
        let f = check_fires("ban-unbatched-update-delete", "DELETE FROM users;");
        let fix = f.fix.unwrap();
        assert!(fix.contains("-- strata:backfill\nDELETE FROM users WHERE true;"), "{fix}");
        check_ok("ban-unbatched-update-delete", &fix);
        // Already a backfill: not flagged, and the allow-less file is clean.
        check_ok("ban-unbatched-update-delete", "-- strata:backfill\nUPDATE users SET plan = 'free';");
        // Only the statement below the directive is a backfill.
        check_fires("ban-unbatched-update-delete", "-- strata:backfill\nUPDATE users SET plan = 'free';\nUPDATE users SET score = 0;");
    }

    #[test]
    fn ok_with_where_or_new_table() {
        check_ok("ban-unbatched-update-delete", "UPDATE users SET plan = 'free' WHERE id < 1000;");
        check_ok("ban-unbatched-update-delete", "CREATE TABLE t (a int);\nUPDATE t SET a = 1;");
    }
}
