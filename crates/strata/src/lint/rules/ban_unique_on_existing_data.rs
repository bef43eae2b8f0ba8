//! `ban-unique-on-existing-data`: a unique index or constraint on a table
//! that already has rows.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-unique-on-existing-data",
    risk: Risk::Low,
    lock: None,
    scans: true,
    summary: "a unique index on existing data fails if there are duplicates; check first",
    doc: "## What it does
Flags `CREATE UNIQUE INDEX` and `ADD UNIQUE` / `ADD PRIMARY KEY` on an existing table, unless a UNIQUE or PRIMARY KEY constraint on some of the same columns already rules out duplicates (or was dropped earlier in the same transaction, as when a primary key replaces it).

## Why is this bad?
If existing rows already hold duplicates, the build fails after doing all the work, and a failed `CREATE UNIQUE INDEX CONCURRENTLY` leaves an INVALID index behind that slows every write until it is dropped.

## Safe rewrite
Look for duplicates before the migration, and fix them first.

## Example
```sql
SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1 LIMIT 20;
CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
```",
};

/// See [`META`].
pub struct BanUniqueOnExistingData;

impl Rule for BanUniqueOnExistingData {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let (table, cols, nulls_not_distinct) = match ctx.node {
            NodeEnum::IndexStmt(i) if i.unique => match &i.relation {
                Some(rv) => (ast::relation(rv), ast::index_columns(&i.index_params), i.nulls_not_distinct),
                None => return,
            },
            _ => {
                let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
                let Some(c) = cmds
                    .iter()
                    .filter(|c| ast::is(c, AlterTableType::AtAddConstraint))
                    .filter_map(|c| ast::constraint(c))
                    .find(|c| (ast::constr_is(c, ConstrType::ConstrUnique) || ast::constr_is(c, ConstrType::ConstrPrimary)) && c.indexname.is_empty())
                else {
                    return;
                };
                (table, ast::strings(&c.keys), c.nulls_not_distinct)
            }
        };
        if !ctx.is_existing(&table) || cols.is_empty() {
            return;
        }
        // A unique key on some of these columns (still there, or dropped
        // earlier in this transaction, so nobody wrote since) already
        // rules out duplicates (NULLS NOT DISTINCT aside: NULLs the old
        // key let repeat count as duplicates there).
        let key = crate::lint::schema::key(&table);
        let covered = |key_cols: &Vec<String>| !nulls_not_distinct && !key_cols.is_empty() && key_cols.iter().all(|c| cols.contains(c));
        if ctx.schema.table(&table).is_some_and(|t| t.unique_keys.values().any(covered))
            || ctx.tx.dropped_unique_keys.get(&key).is_some_and(|keys| keys.iter().any(|k| covered(&k.columns)))
        {
            return;
        }
        let list = cols.iter().map(|c| ast::ident(c)).collect::<Vec<_>>().join(", ");
        out.push(
            Finding::new(&META, format!("unique index on existing rows of {table}: it fails if ({list}) already has duplicates"))
                .table(table.clone())
                .fix(format!("SELECT {list}, count(*) FROM {} GROUP BY {list} HAVING count(*) > 1 LIMIT 20;", table.clone())),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        let f = check_fires("ban-unique-on-existing-data", "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);");
        assert_eq!(f.fix.as_deref(), Some("SELECT email, count(*) FROM users GROUP BY email HAVING count(*) > 1 LIMIT 20;"));
    }

    #[test]
    fn ok_on_new_tables_and_plain_indexes() {
        check_ok("ban-unique-on-existing-data", "CREATE TABLE t (a int);\nCREATE UNIQUE INDEX t_a ON t (a);");
        check_ok("ban-unique-on-existing-data", "CREATE INDEX CONCURRENTLY i ON users (email);");
    }

    /// Issue 11 item 7: columns a UNIQUE constraint already keeps unique
    /// (even one dropped earlier in the same transaction) hold no duplicates.
    #[test]
    fn ok_when_a_unique_constraint_already_covers_the_columns() {
        use crate::lint::test_utils::lint_after;
        use crate::lint::LintOptions;
        let earlier = ["CREATE TABLE t (id bigint, x int NOT NULL, y int);\nALTER TABLE t ADD UNIQUE (x);"];
        let fires = |sql: &str| lint_after(&earlier, sql, &LintOptions::default()).iter().any(|f| f.rule == "ban-unique-on-existing-data");
        assert!(!fires("ALTER TABLE t DROP CONSTRAINT t_x_key, ADD PRIMARY KEY (x);"));
        assert!(!fires("ALTER TABLE t DROP CONSTRAINT t_x_key;\nALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY (x);"));
        assert!(!fires("ALTER TABLE t ADD CONSTRAINT t_x_y_key UNIQUE (x, y);"));
        assert!(fires("ALTER TABLE t ADD PRIMARY KEY (y);"));
        assert!(fires("ALTER TABLE t ADD CONSTRAINT t_x_y_key UNIQUE NULLS NOT DISTINCT (x, y);"));
        assert!(fires("-- strata:no-transaction\nALTER TABLE t DROP CONSTRAINT t_x_key;\nALTER TABLE t ADD PRIMARY KEY (x);"));
        // Dropped in an earlier migration: duplicates may have come in since.
        let later = lint_after(&[earlier[0], "ALTER TABLE t DROP CONSTRAINT t_x_key;"], "ALTER TABLE t ADD PRIMARY KEY (x);", &LintOptions::default());
        assert!(later.iter().any(|f| f.rule == "ban-unique-on-existing-data"), "{later:#?}");
    }
}
