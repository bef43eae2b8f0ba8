//! `require-concurrent-index-creation`: CREATE INDEX without CONCURRENTLY on
//! an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-concurrent-index-creation",
    risk: Risk::Medium,
    lock: Some(Lock::Share),
    scans: true,
    summary: "CREATE INDEX without CONCURRENTLY blocks writes to an existing table for the whole build",
    doc: "## What it does
Flags `CREATE INDEX` (and `CREATE UNIQUE INDEX`) without `CONCURRENTLY` on a table that existed before this migration.

## Why is this bad?
A plain index build takes a SHARE lock on the table for the whole build: reads go on, but every INSERT, UPDATE and DELETE waits until the index is built, which on a large table is minutes.

## Safe rewrite
Build it with `CONCURRENTLY`. It takes a SHARE UPDATE EXCLUSIVE lock, which lets writes go on. It cannot run inside a transaction block; Strata sees that and runs the file outside a transaction. If the build fails it leaves an INVALID index behind, which must be dropped before retrying.

## Example
```sql
-- before
CREATE INDEX orders_created_at_idx ON orders (created_at);
-- after
CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);
```",
};

/// See [`META`].
pub struct RequireConcurrentIndexCreation;

impl Rule for RequireConcurrentIndexCreation {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::IndexStmt(index) = ctx.node else { return };
        let Some(rv) = &index.relation else { return };
        let table = ast::relation(rv);
        if index.concurrent || !ctx.is_existing(&table) {
            return;
        }
        let mut safe = index.clone();
        safe.concurrent = true;
        out.push(
            Finding::new(&META, format!("CREATE INDEX on existing table {table} blocks all writes to it until the index is built"))
                .rewrite(format!("{};", ast::deparse(&NodeEnum::IndexStmt(safe))))
                .table(table),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        let f = check_fires("require-concurrent-index-creation", "CREATE INDEX orders_user_idx ON orders (user_id);");
        assert_eq!(f.fix.as_deref(), Some("CREATE INDEX CONCURRENTLY orders_user_idx ON orders USING btree (user_id);"));
        assert!(f.lock.unwrap().starts_with("SHARE: blocks writes"));
    }

    #[test]
    fn ok_when_concurrent_or_on_a_new_table() {
        check_ok("require-concurrent-index-creation", "CREATE INDEX CONCURRENTLY i ON orders (user_id);");
        check_ok("require-concurrent-index-creation", "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);");
    }

    /// Issue 11 item 6: CREATE TABLE AS, SELECT INTO and CREATE
    /// MATERIALIZED VIEW create new relations; in a later file the usual
    /// rules apply again.
    #[test]
    fn relations_created_by_a_query_earlier_in_the_file_are_new() {
        use crate::lint::test_utils::{lint, lint_after};
        use crate::lint::LintOptions;
        let creates = [
            ("CREATE TABLE c AS SELECT * FROM users;", "c"),
            ("SELECT * INTO c FROM users;", "c"),
            ("CREATE MATERIALIZED VIEW c AS SELECT id, email FROM users;", "c"),
            ("CREATE TABLE IF NOT EXISTS app.c AS SELECT * FROM users WITH NO DATA;", "app.c"),
        ];
        for (create, name) in creates {
            let later = format!("CREATE INDEX c_email ON {name} (email);\nCREATE UNIQUE INDEX c_id ON {name} (id);\n");
            let sql = format!("{create}\n{later}ALTER TABLE {name} ADD CONSTRAINT c_email_check CHECK (email <> '');\n");
            let found = lint(&sql);
            for rule in ["require-concurrent-index-creation", "ban-unique-on-existing-data", "require-not-valid-constraint", "ban-statements-after-access-exclusive"] {
                assert!(!found.iter().any(|f| f.rule == rule), "{rule} on {sql}: {found:#?}");
            }
            let found = lint_after(&[create], &later, &LintOptions::default());
            assert!(found.iter().any(|f| f.rule == "require-concurrent-index-creation"), "{create}: {found:#?}");
        }
    }
}
