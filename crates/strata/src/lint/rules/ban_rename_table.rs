//! `ban-rename-table`: ALTER TABLE ... RENAME TO.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-rename-table",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "renaming a table breaks the running application, which still uses the old name",
    doc: "## What it does
Flags `ALTER TABLE ... RENAME TO` on an existing table.

## Why is this bad?
The running application version still queries the old name; every such query fails from the moment the rename commits.

## Safe rewrite
Rename, and leave an updatable view under the old name until no deployed code uses it (simple views are updatable). Drop the view in a later migration.

## Example
```sql
ALTER TABLE customers RENAME TO accounts;
CREATE VIEW customers AS SELECT * FROM accounts;
-- later, once no code uses customers:
DROP VIEW customers;
```",
};

/// See [`META`].
pub struct BanRenameTable;

impl Rule for BanRenameTable {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: a rename breaks the running code on a table of any size.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::RenameStmt(r) = ctx.node else { return };
        if r.rename_type != ObjectType::ObjectTable as i32 {
            return;
        }
        let Some(rv) = &r.relation else { return };
        let table = ast::relation(rv);
        if !ctx.is_existing(&table) {
            return;
        }
        let old = table.clone();
        let schema = if rv.schemaname.is_empty() { String::new() } else { format!("{}.", ast::ident(&rv.schemaname)) };
        let new = format!("{schema}{}", ast::ident(&r.newname));
        out.push(
            Finding::new(&META, format!("renaming {table} to {} breaks every running query that uses the old name", r.newname))
                .table(table.clone())
                .fix(format!("ALTER TABLE {old} RENAME TO {};\nCREATE VIEW {old} AS SELECT * FROM {new};\n-- later, once no deployed code uses {old}:\nDROP VIEW {old};", ast::ident(&r.newname))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        let f = check_fires("ban-rename-table", "ALTER TABLE customers RENAME TO accounts;");
        assert!(f.fix.unwrap().contains("CREATE VIEW customers AS SELECT * FROM accounts;"));
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-rename-table", "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;");
    }
}
