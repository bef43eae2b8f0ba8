//! `ban-drop-constraint`: ALTER TABLE ... DROP CONSTRAINT on an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP CONSTRAINT removes a guarantee the application may rely on, under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... DROP CONSTRAINT` on an existing table, except a UNIQUE or PRIMARY KEY constraint that the same transaction replaces with one on the same columns (`DROP CONSTRAINT t_x_key, ADD PRIMARY KEY (x)`): the guarantee stays (the index build that replacement does is `require-unique-index-for-constraint`'s).

## Why is this bad?
Code that relies on the constraint (upserts on a unique key, joins that assume a foreign key) silently changes behaviour, and bad data can enter immediately. The drop also takes an ACCESS EXCLUSIVE lock, so it queues behind running queries and blocks everything behind it.

## Safe rewrite
Ship the application change that stops relying on the constraint first, then drop it with a short `lock_timeout` (Strata sets one). Dropping a foreign key also locks the referenced table.

## Example
```sql
SET lock_timeout = '2s';
ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;
```",
};

/// See [`META`].
pub struct BanDropConstraint;

impl Rule for BanDropConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// Not weighed by table size: the guarantee is gone on a table of any size.
    fn sized(&self) -> bool {
        false
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDropConstraint)) {
            let mut f = Finding::new(&META, format!("dropping constraint {} on {table} removes a guarantee that running code may rely on", cmd.name))
                .table(table.clone())
                .fix(format!("-- deploy code that no longer relies on it first, then:\nALTER TABLE {} DROP CONSTRAINT {};", table.clone(), ast::ident(&cmd.name)));
            // A unique key's columns: the driver drops the finding when the
            // same transaction puts a key on the same columns back.
            if let Some((cols, _)) = ctx.schema.unique_key(&table, &cmd.name) {
                f.columns = cols.clone();
            }
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-drop-constraint", "ALTER TABLE orders DROP CONSTRAINT orders_user_id_fkey;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-drop-constraint", "CREATE TABLE t (a int CONSTRAINT c CHECK (a > 0));\nALTER TABLE t DROP CONSTRAINT c;");
    }

    /// Issue 11 item 7: a UNIQUE constraint replaced by a primary key on the
    /// same columns, in one statement or later in the same transaction,
    /// keeps the guarantee; the index build it still does is reported by
    /// `require-unique-index-for-constraint`.
    #[test]
    fn ok_when_a_unique_constraint_is_replaced_by_a_primary_key() {
        use crate::lint::test_utils::lint_after;
        use crate::lint::LintOptions;
        // Constraint names as the history leaves them, renames included.
        let earlier = [
            "CREATE TABLE old (id bigint, x int NOT NULL UNIQUE, y int, z int, CONSTRAINT y_uniq UNIQUE (y), UNIQUE (z));",
            "ALTER TABLE old RENAME TO t;\nALTER TABLE t RENAME CONSTRAINT old_x_key TO t_x_key;\nALTER INDEX y_uniq RENAME TO t_y_uniq;\nALTER TABLE t RENAME COLUMN z TO w;\nALTER INDEX old_z_key RENAME TO t_w_key;",
        ];
        let rules = |sql: &str| lint_after(&earlier, sql, &LintOptions::default()).into_iter().map(|f| (f.rule, f.lock)).collect::<Vec<_>>();
        for sql in [
            "ALTER TABLE t DROP CONSTRAINT t_x_key, ADD PRIMARY KEY (x);",
            "ALTER TABLE t DROP CONSTRAINT t_x_key;\nALTER TABLE t ADD PRIMARY KEY (x);",
            "BEGIN;\nALTER TABLE t DROP CONSTRAINT t_y_uniq;\nALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY (y);\nCOMMIT;",
            "ALTER TABLE t ADD PRIMARY KEY (w), DROP CONSTRAINT t_w_key;",
        ] {
            let found = rules(sql);
            assert!(!found.iter().any(|(r, _)| *r == "ban-drop-constraint" || *r == "ban-unique-on-existing-data"), "{sql}: {found:#?}");
            let (_, lock) = found.iter().find(|(r, _)| *r == "require-unique-index-for-constraint").unwrap_or_else(|| panic!("{sql}: {found:#?}"));
            assert!(lock.as_deref().unwrap().starts_with("ACCESS EXCLUSIVE"), "{lock:?}");
        }
        // Another key's columns, or a key added in another transaction:
        // the guarantee is gone (for a moment, or for good).
        for sql in [
            "ALTER TABLE t DROP CONSTRAINT t_x_key, ADD PRIMARY KEY (y);",
            "ALTER TABLE t DROP CONSTRAINT t_x_key, ADD PRIMARY KEY (x, y);",
            "ALTER TABLE t ADD PRIMARY KEY (x);\nALTER TABLE t DROP CONSTRAINT t_pkey, ADD UNIQUE (x);",
            "-- strata:no-transaction\nALTER TABLE t DROP CONSTRAINT t_x_key;\nALTER TABLE t ADD PRIMARY KEY (x);",
        ] {
            assert!(rules(sql).iter().any(|(r, _)| *r == "ban-drop-constraint"), "{sql}");
        }
    }
}
