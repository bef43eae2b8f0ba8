//! `ban-concurrently-in-transaction`: a CONCURRENTLY statement inside the
//! file's own BEGIN ... COMMIT.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-concurrently-in-transaction",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "CONCURRENTLY cannot run inside a transaction block; the migration fails",
    doc: "## What it does
Flags `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY` and `DETACH PARTITION ... CONCURRENTLY` inside a transaction that the file opens itself with `BEGIN`, and, with `strata lint --external` (another tool runs the files), in a migration that tool wraps in a transaction: diesel, goose, sqlx and dbmate do unless the layout's own directive says otherwise (diesel: `run_in_transaction = false` in metadata.toml; a `-- strata:no-transaction` comment means nothing to them).

## Why is this bad?
PostgreSQL refuses these statements inside a transaction block (`cannot run inside a transaction block`), so the migration certainly fails. Strata runs files containing them outside a transaction on its own; only an explicit `BEGIN` in the file, or another tool that wraps each file in a transaction, puts them inside one.

## Safe rewrite
Move the statement out of the `BEGIN ... COMMIT` block, or into a migration of its own; for another tool, mark the migration with that tool's own no-transaction setting.

## Example
```sql
-- before
BEGIN;
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);
COMMIT;
-- after
CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);
```",
};

/// See [`META`].
pub struct BanConcurrentlyInTransaction;

impl Rule for BanConcurrentlyInTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        // Strata's runner takes such a file out of its transaction; only the
        // file's own BEGIN, or another tool's transaction (`--external`,
        // see `context::run_mode`), leaves the statement inside one.
        if !ctx.in_transaction {
            return;
        }
        let crate::sql::TransactionBehavior::Never(what) = ctx.stmt.transaction else { return };
        let finding = match ctx.options.layout.filter(|_| !ctx.explicit_transaction) {
            Some(layout) => Finding::new(&META, format!("{layout} runs this migration in a transaction, where {what} fails with \"cannot run inside a transaction block\" (a `-- strata:` directive is a comment to {layout})"))
                .fix(format!("-- {}, so {layout} runs it outside a transaction:\n{};", layout.no_transaction_how(), ctx.stmt.sql)),
            None => Finding::new(&META, format!("{what} inside the file's own BEGIN ... COMMIT fails with \"cannot run inside a transaction block\""))
                .fix(format!("-- move it after the COMMIT:\n{};", ctx.stmt.sql)),
        };
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_inside_an_explicit_transaction() {
        check_fires("ban-concurrently-in-transaction", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;");
    }

    fn diesel(text: &str, metadata: Option<&str>, external: bool) -> Vec<crate::lint::Finding> {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("2024-01-01-000000_idx");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("up.sql"), text).unwrap();
        std::fs::write(m.join("down.sql"), "SELECT 1;\n").unwrap();
        if let Some(meta) = metadata {
            std::fs::write(m.join("metadata.toml"), meta).unwrap();
        }
        let loaded = crate::source::load(dir.path(), Some(crate::source::Format::Diesel));
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let options = crate::lint::LintOptions {
            external_runner: external,
            layout: Some(loaded.format),
            ..Default::default()
        };
        crate::lint::lint_migrations(&loaded.migrations, &[0].into(), &options).unwrap().findings
    }

    #[test]
    fn fires_when_diesel_wraps_the_migration_in_a_transaction() {
        let sql = "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n";
        let found = diesel(sql, None, true);
        let f = found
            .iter()
            .find(|f| f.rule == "ban-concurrently-in-transaction")
            .unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!(f.risk, crate::lint::Risk::High);
        assert_eq!(f.line, 2);
        assert!(f.message.contains("diesel runs this migration in a transaction"), "{}", f.message);
        assert!(f.fix.as_deref().unwrap_or("").contains("run_in_transaction = false"), "{f:?}");
        // A strata directive is a comment to diesel.
        let found = diesel(&format!("-- strata:no-transaction\n{sql}"), None, true);
        assert!(found.iter().any(|f| f.rule == "ban-concurrently-in-transaction"), "{found:#?}");
    }

    #[test]
    fn ok_for_diesel_with_its_metadata_or_for_strata_runner() {
        let sql = "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n";
        for (metadata, external) in [(Some("run_in_transaction = false\n"), true), (None, false)] {
            let found = diesel(sql, metadata, external);
            assert!(!found.iter().any(|f| f.rule == "ban-concurrently-in-transaction"), "{metadata:?} {external}: {found:#?}");
        }
    }

    #[test]
    fn ok_outside_one() {
        // Strata runs this file outside a transaction.
        check_ok("ban-concurrently-in-transaction", "CREATE INDEX CONCURRENTLY i ON t (a);");
        check_ok("ban-concurrently-in-transaction", "BEGIN;\nSELECT 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);");
    }
}
