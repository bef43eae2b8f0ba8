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
        out.push(
            Finding::new(&META, format!("renaming schema {} to {} breaks every running query and search_path that names it", r.subname, r.newname))
                .fix(format!("CREATE SCHEMA {new};\n-- move tables one at a time, leaving a view behind:\n-- ALTER TABLE {old}.<t> SET SCHEMA {new}; CREATE VIEW {old}.<t> AS SELECT * FROM {new}.<t>;", new = ast::ident(&r.newname), old = ast::ident(&r.subname))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_schema_rename() {
        check_fires("ban-rename-schema", "ALTER SCHEMA legacy RENAME TO billing;");
    }

    #[test]
    fn ok_on_other_renames() {
        check_ok("ban-rename-schema", "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;");
    }
}
