//! `ban-set-not-null`: SET NOT NULL on an existing column without a
//! validated CHECK proving it.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-set-not-null",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ALTER COLUMN c SET NOT NULL` on an existing table, unless an earlier migration added and validated `CHECK (c IS NOT NULL)`.

## Why is this bad?
`SET NOT NULL` checks every row while holding an ACCESS EXCLUSIVE lock: no reads, no writes, for a full scan.

## Safe rewrite
From PostgreSQL 12, `SET NOT NULL` skips the scan when a validated `CHECK (c IS NOT NULL)` exists. So: add the check `NOT VALID`, validate it in a separate transaction (weak lock), then `SET NOT NULL` (instant), then drop the check.

## Example
```sql
-- before
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
-- after
ALTER TABLE users ADD CONSTRAINT users_email_not_null_check CHECK (email IS NOT NULL) NOT VALID;
-- separate transaction:
ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null_check;
-- separate transaction:
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_email_not_null_check;
```",
};

/// See [`META`].
pub struct BanSetNotNull;

impl Rule for BanSetNotNull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        let unproven = |cmd: &&&pg_query::protobuf::AlterTableCmd| {
            let proven = ctx.schema.table(&table).is_some_and(|t| t.checked_not_null.contains(&cmd.name));
            !(proven && ctx.pg_version() >= 12)
        };
        // One rewrite for every column the statement sets NOT NULL without
        // proof, so pasting it leaves no scan behind.
        let columns: Vec<&str> = cmds.iter().filter(|c| ast::is(c, AlterTableType::AtSetNotNull)).filter(unproven).map(|c| c.name.as_str()).collect();
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtSetNotNull)).filter(unproven) {
            let t = table.clone();
            let col = ast::ident(&cmd.name);
            let check = ast::ident(&crate::lint::rewrite::not_null_check_name(&table, &cmd.name));
            let fix = if ctx.pg_version() >= 12 {
                // The statement itself stays, so its other actions do too.
                crate::lint::rewrite::not_null_steps_for(&t, &columns, &ctx.stmt.sql)
            } else {
                format!("-- before PostgreSQL 12 there is no scan-free SET NOT NULL; keep the validated CHECK instead:\nALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;\nALTER TABLE {t} VALIDATE CONSTRAINT {check};")
            };
            let f = Finding::new(&META, format!("SET NOT NULL on {table}.{} scans every row while blocking reads and writes", cmd.name)).table(table.clone());
            // Before 12 the fix keeps a CHECK instead of NOT NULL: advice,
            // not a rewrite with the same end state.
            out.push(if ctx.pg_version() >= 12 { f.rewrite(fix) } else { f.fix(fix) });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    /// Issue 11, item 13: one rewrite covers every column the statement
    /// sets NOT NULL, keeping the statement (and its other actions).
    #[test]
    fn one_rewrite_for_all_columns_of_the_statement() {
        let f = check_fires("ban-set-not-null", "ALTER TABLE users ALTER COLUMN name SET NOT NULL, ALTER COLUMN phone SET NOT NULL, ADD COLUMN x int;");
        assert!(f.rewrite);
        let fix = f.fix.unwrap();
        for part in [
            "ADD CONSTRAINT users_name_not_null_check CHECK (name IS NOT NULL) NOT VALID;",
            "ADD CONSTRAINT users_phone_not_null_check CHECK (phone IS NOT NULL) NOT VALID;",
            "\nALTER TABLE users ALTER COLUMN name SET NOT NULL, ALTER COLUMN phone SET NOT NULL, ADD COLUMN x int;\n",
            "DROP CONSTRAINT users_phone_not_null_check;",
        ] {
            assert!(fix.contains(part), "{part}\n{fix}");
        }
    }

    #[test]
    fn fires_on_existing_columns() {
        let f = check_fires("ban-set-not-null", "ALTER TABLE users ALTER COLUMN email SET NOT NULL;");
        assert!(f.fix.unwrap().contains("CHECK (email IS NOT NULL) NOT VALID"));
    }

    #[test]
    fn ok_after_a_validated_check_in_an_earlier_migration() {
        let earlier = ["ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;", "ALTER TABLE users VALIDATE CONSTRAINT users_email_nn;"];
        let findings = lint_after(&earlier, "ALTER TABLE users ALTER COLUMN email SET NOT NULL;", &LintOptions::default());
        assert!(!findings.iter().any(|f| f.rule == "ban-set-not-null"), "{findings:?}");
        check_ok("ban-set-not-null", "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;");
    }
}
