//! `require-default-for-not-null-column`: ADD COLUMN ... NOT NULL without a
//! default on an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-default-for-not-null-column",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "ADD COLUMN NOT NULL without a default fails on any table that has rows",
    doc: "## What it does
Flags `ALTER TABLE ... ADD COLUMN c ... NOT NULL` without a `DEFAULT` on an existing table.

## Why is this bad?
Existing rows would get NULL in a NOT NULL column, so the statement fails (`column contains null values`) as soon as the table has a row: certain failure in production, even if it passed on an empty development database. The running application also does not write the new column, so its inserts would fail.

## Safe rewrite
Add the column with a constant default (instant since PostgreSQL 11), or add it nullable, backfill, and then set NOT NULL safely (see `ban-set-not-null`).

## Example
```sql
ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';
```",
};

/// See [`META`].
pub struct RequireDefaultForNotNullColumn;

impl Rule for RequireDefaultForNotNullColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddColumn)) {
            let Some(col) = ast::column_def(cmd) else { continue };
            let constraints: Vec<_> = ast::column_constraints(col).collect();
            let not_null = col.is_not_null || constraints.iter().any(|c| ast::constr_is(c, ConstrType::ConstrNotnull) || ast::constr_is(c, ConstrType::ConstrPrimary));
            let has_value = col.raw_default.is_some()
                || constraints.iter().any(|c| {
                    ast::constr_is(c, ConstrType::ConstrDefault) || ast::constr_is(c, ConstrType::ConstrIdentity) || ast::constr_is(c, ConstrType::ConstrGenerated)
                });
            let ty = col.type_name.as_ref().map(|t| ast::type_of(t).0).unwrap_or_default();
            let serial = ty.contains("serial");
            if !not_null || has_value || serial {
                continue;
            }
            let t = table.clone();
            let c = ast::ident(&col.colname);
            let shown = col.type_name.as_ref().map(ast::type_display).unwrap_or_default();
            out.push(
                Finding::new(&META, format!("ADD COLUMN {} NOT NULL without a default fails on {table} as soon as it has a row, and breaks inserts of the running application", col.colname))
                    .table(table.clone())
                    .fix(format!("ALTER TABLE {t} ADD COLUMN {c} {shown} NOT NULL DEFAULT <constant>;\n-- or: add it nullable, backfill in batches, then SET NOT NULL via a validated CHECK")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_without_a_default() {
        check_fires("require-default-for-not-null-column", "ALTER TABLE users ADD COLUMN plan text NOT NULL;");
    }

    #[test]
    fn ok_with_a_default_or_nullable() {
        check_ok("require-default-for-not-null-column", "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';");
        check_ok("require-default-for-not-null-column", "ALTER TABLE users ADD COLUMN plan text;");
        check_ok("require-default-for-not-null-column", "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int NOT NULL;");
    }
}
