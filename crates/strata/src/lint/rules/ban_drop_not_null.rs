//! `ban-drop-not-null`: ALTER COLUMN ... DROP NOT NULL.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-not-null",
    risk: Risk::Low,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP NOT NULL lets NULLs in; code reading the column may not expect them",
    doc: "## What it does
Flags `ALTER TABLE ... ALTER COLUMN c DROP NOT NULL` on an existing table.

## Why is this bad?
Once NULLs can be written, every reader of the column (reports, other services, the previous application version during a deploy) must handle them. The statement itself is instant but takes an ACCESS EXCLUSIVE lock.

## Safe rewrite
Make sure every reader handles NULL before dropping the constraint; keep it if only one code path needs NULLs.

## Example
```sql
-- after the readers handle NULL:
ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;
```",
};

/// See [`META`].
pub struct BanDropNotNull;

impl Rule for BanDropNotNull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: NULLs surprise the running code on a table of any size.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDropNotNull)) {
            out.push(
                Finding::new(&META, format!("{table}.{} will accept NULLs; readers of the column may not expect them", cmd.name))
                    .table(table.clone())
                    .fix(format!("-- once every reader handles NULL:\nALTER TABLE {} ALTER COLUMN {} DROP NOT NULL;", table.clone(), ast::ident(&cmd.name))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-drop-not-null", "ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;");
    }

    #[test]
    fn ok_on_set_not_null_or_new_tables() {
        check_ok("ban-drop-not-null", "CREATE TABLE t (a int NOT NULL);\nALTER TABLE t ALTER COLUMN a DROP NOT NULL;");
    }
}
