//! `ban-drop-column`: ALTER TABLE ... DROP COLUMN.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-column",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP COLUMN destroys data and breaks running code that still reads the column",
    doc: "## What it does
Flags `ALTER TABLE ... DROP COLUMN` on an existing table.

## Why is this bad?
The data is gone for good, and the running application version (and any `SELECT *` with positional reads, ORMs with cached column lists) fails the moment the column disappears.

## Safe rewrite
Expand and contract: first deploy code that no longer reads or writes the column, take a backup of it, and drop it in a later migration. Strata backs up before destructive migrations when `backup` is enabled.

## Example
```sql
-- after the application stopped using it, and a backup:
ALTER TABLE users DROP COLUMN legacy_flags;
```",
};

/// See [`META`].
pub struct BanDropColumn;

impl Rule for BanDropColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDropColumn)) {
            let t = table.clone();
            // The backup sits beside the table, keyed by its primary key
            // when the history declares one (else the placeholder says what
            // to put there).
            let mut parts = names::parts(&table);
            parts.pop();
            parts.push(names::object_name(&ast::base_name(&table), Some(&cmd.name), "backup"));
            let backup = names::qualified(&parts);
            let key = ctx
                .schema
                .table(&table)
                .map(|k| k.primary_key.iter().filter(|c| **c != cmd.name).map(|c| ast::ident(c)).collect::<Vec<_>>().join(", "))
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "<primary key: not declared in the history>".to_owned());
            out.push(
                Finding::new(&META, format!("dropping {table}.{} destroys its data and breaks code that still uses it", cmd.name))
                    .table(table.clone())
                    .fix(format!("-- 1. deploy code that no longer uses {c}\n-- 2. back it up: CREATE TABLE {backup} AS SELECT {key}, {c} FROM {t};\n-- 3. then, in a later migration:\nALTER TABLE {t} DROP COLUMN {c};", c = ast::ident(&cmd.name))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};

    /// Issue 11, item 13: the backup is keyed by the primary key the
    /// history declares, and named validly for quoted, qualified tables.
    #[test]
    fn backup_uses_the_primary_key_from_the_history() {
        let f = lint_after(&["CREATE TABLE \"Sch\".t (a int, b int, \"E-mail\" text, PRIMARY KEY (a, b));"], "ALTER TABLE \"Sch\".t DROP COLUMN \"E-mail\";", &Default::default())
            .into_iter()
            .find(|f| f.rule == "ban-drop-column")
            .unwrap();
        assert!(f.fix.unwrap().contains("CREATE TABLE \"Sch\".\"t_E-mail_backup\" AS SELECT a, b, \"E-mail\" FROM \"Sch\".t;"));
        let f = check_fires("ban-drop-column", "ALTER TABLE users DROP COLUMN legacy;");
        assert!(f.fix.unwrap().contains("<primary key: not declared in the history>"));
    }

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-drop-column", "ALTER TABLE users DROP COLUMN legacy;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-drop-column", "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;");
    }
}
