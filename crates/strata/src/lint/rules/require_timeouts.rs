//! `require-timeouts`: lock-taking DDL without lock_timeout and
//! statement_timeout, for SQL run by other tools.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-timeouts",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "DDL without lock_timeout can queue in front of all traffic; only for SQL run outside Strata",
    doc: "## What it does
Flags the first statement that takes a lock on an existing table when the file has not set `lock_timeout` and `statement_timeout` before it. It only applies to SQL run by another tool (`strata lint --external`, or `external_runner = true` in `[lint]`): Strata's own engine sets both around every migration, so the rule stays silent for migrations that `strata up` applies.

## Why is this bad?
A DDL statement that waits for a lock sits in the lock queue, and every later query on the table waits behind it, even plain SELECTs: one slow transaction plus one ALTER is an outage. `lock_timeout` makes the ALTER give up instead; `statement_timeout` bounds the whole statement.

## Safe rewrite
Set both at the top of the file, and retry on a lock timeout.

## Example
```sql
SET lock_timeout = '2s';
SET statement_timeout = '5min';
ALTER TABLE users ADD COLUMN plan text;
```",
};

/// See [`META`].
pub struct RequireTimeouts;

impl Rule for RequireTimeouts {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        if !ctx.options.external_runner || (ctx.tx.lock_timeout_set && ctx.tx.statement_timeout_set) {
            return;
        }
        // DROP INDEX included: it locks the index's table (see `locked_table`).
        let Some((_, table)) = crate::lint::context::locked_table(ctx.node, ctx.schema, ctx.options.facts.as_ref()) else { return };
        if !ctx.is_existing(&table) || ctx.tx.access_exclusive.is_some() {
            return;
        }
        let mut missing = Vec::new();
        if !ctx.tx.lock_timeout_set {
            missing.push("SET lock_timeout = '2s';");
        }
        if !ctx.tx.statement_timeout_set {
            missing.push("SET statement_timeout = '5min';");
        }
        out.push(
            Finding::new(&META, format!("this statement locks {table} with no {} set: it can wait in the lock queue while all traffic on the table waits behind it", if ctx.tx.lock_timeout_set { "statement_timeout" } else { "lock_timeout" }))
                .table(table)
                .fix(format!("{}\n{};", missing.join("\n"), ctx.stmt.sql)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_ok, lint_after};
    use crate::lint::LintOptions;

    fn external(sql: &str) -> Vec<&'static str> {
        let options = LintOptions { external_runner: true, ..LintOptions::default() };
        lint_after(&[], sql, &options).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn fires_for_external_runners_without_timeouts() {
        assert!(external("ALTER TABLE users ADD COLUMN plan text;").contains(&"require-timeouts"));
    }

    #[test]
    fn ok_with_timeouts_or_under_strata() {
        assert!(!external("SET lock_timeout = '2s';\nSET statement_timeout = '1min';\nALTER TABLE users ADD COLUMN plan text;").contains(&"require-timeouts"));
        check_ok("require-timeouts", "ALTER TABLE users ADD COLUMN plan text;");
    }

    #[test]
    fn fires_on_a_drop_index_whose_table_the_history_knows() {
        let options = LintOptions { external_runner: true, ..LintOptions::default() };
        let found = lint_after(&["CREATE TABLE users (id bigint, email text);\nCREATE INDEX users_email_idx ON users (email);\n"], "DROP INDEX users_email_idx;\nCREATE INDEX users_email_lower ON users (lower(email));\n", &options);
        let f = found.iter().find(|f| f.rule == "require-timeouts").unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!((f.line, f.table.as_deref()), (1, Some("users")));
    }
}
