//! `ban-drop-table`: DROP TABLE of an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-table",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP TABLE destroys data and breaks running code that still uses the table",
    doc: "## What it does
Flags `DROP TABLE` of a table that existed before this migration.

## Why is this bad?
The data is gone, and the running application version fails on its next query to the table. `CASCADE` silently drops dependent views and foreign keys too.

## Safe rewrite
Deploy code that no longer uses the table, back it up, then drop it in a later migration. Renaming it first (`ALTER TABLE t RENAME TO t_deprecated`) turns a forgotten reader into a loud error you can still undo.

## Example
```sql
-- after the application stopped using it, and a backup (pg_dump -t old_sessions):
DROP TABLE old_sessions;
```",
};

/// See [`META`].
pub struct BanDropTable;

impl Rule for BanDropTable {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::DropStmt(d) = ctx.node else { return };
        if d.remove_type != ObjectType::ObjectTable as i32 {
            return;
        }
        for obj in &d.objects {
            let Some(NodeEnum::List(l)) = &obj.node else { continue };
            let table = ast::name(&l.items);
            if !ctx.is_existing(&table) {
                continue;
            }
            let t = table.clone();
            out.push(
                Finding::new(&META, format!("dropping {table} destroys its data and breaks code that still uses it"))
                    .table(table.clone())
                    .fix(format!("-- 1. deploy code that no longer uses {t}; 2. back it up (pg_dump -Fc -t {t});\n-- 3. optionally rename first so a forgotten reader fails loudly but reversibly:\nALTER TABLE {t} RENAME TO {};\n-- 4. drop it in a later migration", ast::ident(&format!("{}_deprecated", ast::base_name(&table))))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-drop-table", "DROP TABLE old_sessions;");
    }

    #[test]
    fn ok_on_tables_created_in_the_same_migration() {
        check_ok("ban-drop-table", "CREATE TABLE tmp (a int);\nDROP TABLE tmp;");
    }
}
