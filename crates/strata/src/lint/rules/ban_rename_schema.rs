//! `ban-rename-schema`: ALTER SCHEMA ... RENAME TO.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-rename-schema",
    risk: Risk::Medium,
    lock: None,
    scans: false,
    summary: "renaming a schema breaks every running query that names it",
    doc: "## What it does
Flags `ALTER SCHEMA ... RENAME TO`.

## Why is this bad?
Every qualified name in running code, views' dependents in other tools, `search_path` settings of roles and connection strings still use the old schema name, and fail at once.

## Safe rewrite
Create the new schema and move objects one by one behind compatibility views, or keep the old name.

## Example
```sql
CREATE SCHEMA billing;
ALTER TABLE legacy.invoices SET SCHEMA billing;
CREATE VIEW legacy.invoices AS SELECT * FROM billing.invoices;
```",
};

/// See [`META`].
pub struct BanRenameSchema;

impl Rule for BanRenameSchema {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::RenameStmt(r) = ctx.node else { return };
        if r.rename_type != ObjectType::ObjectSchema as i32 {
            return;
        }
        let (new, old) = (ast::ident(&r.newname), ast::ident(&r.subname));
        // The tables the history put in the schema (looked at only for
        // this rare statement); a placeholder when it names none.
        let prefix = format!("{old}.");
        let mut tables: Vec<&str> = ctx.schema.tables.keys().filter_map(|k| k.strip_prefix(&prefix)).collect();
        tables.sort_unstable();
        if tables.is_empty() {
            tables.push("<each table: none in the history>");
        }
        let moves: Vec<String> = tables.iter().map(|t| format!("-- ALTER TABLE {old}.{t} SET SCHEMA {new}; CREATE VIEW {old}.{t} AS SELECT * FROM {new}.{t};")).collect();
        out.push(
            Finding::new(&META, format!("renaming schema {} to {} breaks every running query and search_path that names it", r.subname, r.newname))
                .fix(format!("CREATE SCHEMA {new};\n-- move tables one at a time, leaving a view behind:\n{}", moves.join("\n"))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};

    /// Issue 11, item 13: the tables come from the history.
    #[test]
    fn names_the_tables_the_history_put_there() {
        let f = lint_after(&["CREATE SCHEMA legacy; CREATE TABLE legacy.invoices (id int); CREATE TABLE legacy.\"Lines\" (id int); CREATE TABLE other (id int);"], "ALTER SCHEMA legacy RENAME TO billing;", &Default::default())
            .into_iter()
            .find(|f| f.rule == "ban-rename-schema")
            .unwrap();
        let fix = f.fix.unwrap();
        assert!(fix.contains("-- ALTER TABLE legacy.\"Lines\" SET SCHEMA billing; CREATE VIEW legacy.\"Lines\" AS SELECT * FROM billing.\"Lines\";"), "{fix}");
        assert!(fix.contains("legacy.invoices SET SCHEMA billing") && !fix.contains("other"), "{fix}");
    }

    #[test]
    fn fires_on_schema_rename() {
        check_fires("ban-rename-schema", "ALTER SCHEMA legacy RENAME TO billing;");
    }

    #[test]
    fn ok_on_other_renames() {
        check_ok("ban-rename-schema", "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;");
    }
}
