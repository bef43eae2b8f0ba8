//! `ban-rename-column`: ALTER TABLE ... RENAME COLUMN.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-rename-column",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "renaming a column breaks the running application, which still uses the old name",
    doc: "## What it does
Flags `ALTER TABLE ... RENAME COLUMN` on an existing table.

## Why is this bad?
During a deploy the old application version keeps running, and every query it sends with the old column name fails from the moment the rename commits.

## Safe rewrite
Expand and contract: add the new column, keep both in sync (trigger), backfill, move the code to the new name, then drop the old column in a later migration.

## Example
```sql
ALTER TABLE users ADD COLUMN full_name text;
-- trigger keeps full_name = name; backfill in batches; deploy code using full_name; later:
ALTER TABLE users DROP COLUMN name;
```",
};

/// See [`META`].
pub struct BanRenameColumn;

impl Rule for BanRenameColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: a rename breaks the running code on a table of any size.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::RenameStmt(r) = ctx.node else { return };
        if r.rename_type != ObjectType::ObjectColumn as i32 {
            return;
        }
        let Some(rv) = &r.relation else { return };
        let table = ast::relation(rv);
        if !ctx.is_existing(&table) {
            return;
        }
        let t = table.clone();
        // The new column's type, from the history; a clear placeholder
        // when the history never shows the column.
        let ty = ctx
            .schema
            .table(&table)
            .and_then(|k| k.columns.get(&r.subname))
            .map(|c| c.type_sql.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("<type of {}: not in the history>", r.subname));
        out.push(
            Finding::new(&META, format!("renaming {table}.{} to {} breaks every running query that uses the old name", r.subname, r.newname))
                .table(table.clone())
                .fix(format!(
                    "ALTER TABLE {t} ADD COLUMN {new} {ty};\n-- keep {new} = {old} with a trigger, backfill in batches, deploy code that uses {new}; later:\nALTER TABLE {t} DROP COLUMN {old};",
                    new = ast::ident(&r.newname),
                    old = ast::ident(&r.subname)
                )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};

    /// Issue 11, item 13: the type comes from the history, not a
    /// placeholder; without the column in the history the placeholder says so.
    #[test]
    fn the_new_column_gets_the_type_from_the_history() {
        let f = lint_after(&["CREATE TABLE users (name varchar(200)[] NOT NULL);"], "ALTER TABLE users RENAME COLUMN name TO full_name;", &Default::default())
            .into_iter()
            .find(|f| f.rule == "ban-rename-column")
            .unwrap();
        assert!(f.fix.unwrap().starts_with("ALTER TABLE users ADD COLUMN full_name character varying(200)[];"));
        let f = check_fires("ban-rename-column", "ALTER TABLE users RENAME COLUMN name TO full_name;");
        assert!(f.fix.unwrap().contains("<type of name: not in the history>"));
    }

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-rename-column", "ALTER TABLE users RENAME COLUMN name TO full_name;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-rename-column", "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;");
    }
}
