//! `require-unique-index-for-constraint`: ADD PRIMARY KEY / UNIQUE without
//! USING INDEX.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-unique-index-for-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "ADD PRIMARY KEY / UNIQUE builds its index under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD PRIMARY KEY (...)` and `ADD UNIQUE (...)` on an existing table without `USING INDEX`, and `ADD COLUMN ... UNIQUE` / `ADD COLUMN ... PRIMARY KEY`.

## Why is this bad?
The constraint builds its unique index while holding an ACCESS EXCLUSIVE lock: nothing reads or writes the table for the whole build.

## Safe rewrite
Add the column without the key (if it is new), build the unique index `CONCURRENTLY`, then attach it with `ADD CONSTRAINT ... USING INDEX`, which is instant and renames the index to the constraint's name (so a primary key swapped in place is built under a fresh name first). The statement's other actions stay with the `ADD CONSTRAINT`. (For a primary key, the columns must also be NOT NULL; see `ban-set-not-null` for the safe way.)

## Example
```sql
-- before
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
-- after
CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
```",
};

/// See [`META`].
pub struct RequireUniqueIndexForConstraint;

impl Rule for RequireUniqueIndexForConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        check_added_columns(ctx, &table, &cmds, out);
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddConstraint)) {
            let Some(c) = ast::constraint(cmd) else { continue };
            let primary = ast::constr_is(c, ConstrType::ConstrPrimary);
            if !(primary || ast::constr_is(c, ConstrType::ConstrUnique)) || !c.indexname.is_empty() {
                continue;
            }
            let cols = ast::strings(&c.keys);
            let base = ast::base_name(&table);
            let name = if !c.conname.is_empty() {
                c.conname.clone()
            } else if primary {
                names::object_name(&base, None, "pkey")
            } else {
                names::object_name(&base, Some(&names::name_addition(&cols)), "key")
            };
            let t = table.clone();
            let col_list = cols.iter().map(|c| ast::ident(c)).collect::<Vec<_>>().join(", ");
            let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
            let finding = Finding::new(&META, format!("ADD {kind} on existing table {table} builds a unique index while blocking reads and writes")).table(table.clone());
            // The index is built under the constraint's name, unless that
            // name is taken while it builds: by a constraint this statement
            // drops (a primary key swapped in place), or by a key or index
            // the history knows on the table (an old primary key that a
            // `DROP COLUMN` of this statement removes implicitly). Then
            // under a fresh one, which `USING INDEX` renames to the
            // constraint's name.
            let dropped: Vec<&str> = cmds.iter().filter(|c| ast::is(c, AlterTableType::AtDropConstraint)).map(|c| c.name.as_str()).collect();
            let known = |n: &str| {
                ctx.schema.table(&table).is_some_and(|t| t.unique_keys.contains_key(n))
                    || ctx.schema.index_table(&crate::lint::schema::sibling(&table, n)).is_some()
            };
            let index = crate::lint::rewrite::fresh_name(&name, |n| dropped.contains(&n) || known(n));
            let include = if c.including.is_empty() {
                String::new()
            } else {
                format!(" INCLUDE ({})", ast::strings(&c.including).iter().map(|c| ast::ident(c)).collect::<Vec<_>>().join(", "))
            };
            let nulls = if c.nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" };
            let build = format!("CREATE UNIQUE INDEX CONCURRENTLY {} ON {t} ({col_list}){include}{nulls}", ast::ident(&index));
            let mut attach = c.clone();
            attach.conname = name.clone();
            attach.indexname = index.clone();
            attach.keys.clear();
            attach.including.clear();
            attach.nulls_not_distinct = false;
            let mut cmd_attach = (*cmd).clone();
            cmd_attach.def = Some(Box::new(pg_query::protobuf::Node { node: Some(NodeEnum::Constraint(Box::new(attach))) }));
            let alter = crate::lint::rewrite::alter_replacing(ctx.node, cmd, vec![cmd_attach]).unwrap_or_default();
            let fix = format!("{build};\n{alter};");
            // Storage options and tablespaces are not carried over: advice.
            out.push(if c.options.is_empty() && c.indexspace.is_empty() { finding.rewrite(fix) } else { finding.fix(fix) });
        }
    }
}

/// `ADD COLUMN c text UNIQUE` (or `PRIMARY KEY`): the ADD builds the
/// index while it holds ACCESS EXCLUSIVE on the table.
fn check_added_columns(ctx: &StmtCtx<'_>, table: &str, cmds: &[&pg_query::protobuf::AlterTableCmd], out: &mut Vec<Finding>) {
    for col in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddColumn)).filter_map(|c| ast::column_def(c)) {
        for key in ast::column_constraints(col) {
            let primary = ast::constr_is(key, ConstrType::ConstrPrimary);
            if !(primary || ast::constr_is(key, ConstrType::ConstrUnique)) || !key.indexname.is_empty() {
                continue;
            }
            let base = ast::base_name(table);
            let name = if !key.conname.is_empty() {
                key.conname.clone()
            } else if primary {
                names::object_name(&base, None, "pkey")
            } else {
                names::object_name(&base, Some(&col.colname), "key")
            };
            // The column without its key; a primary key's column must be
            // NOT NULL before USING INDEX attaches it.
            let mut plain = col.clone();
            plain.constraints.retain(|c| !matches!(&c.node, Some(NodeEnum::Constraint(k)) if k.as_ref() == key));
            let not_null = plain.is_not_null || ast::column_constraints(&plain).any(|c| ast::constr_is(c, ConstrType::ConstrNotnull));
            if primary && !not_null {
                plain.constraints.push(pg_query::protobuf::Node {
                    node: Some(NodeEnum::Constraint(Box::new(pg_query::protobuf::Constraint { contype: ConstrType::ConstrNotnull as i32, location: -1, ..Default::default() }))),
                });
            }
            let add = super::require_not_valid_constraint::alter_adding(ctx.node, NodeEnum::ColumnDef(Box::new(plain)));
            let n = ast::ident(&name);
            let c = ast::ident(&col.colname);
            let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
            out.push(
                Finding::new(&META, format!("ADD COLUMN {} {kind} on existing table {table} builds a unique index while blocking reads and writes", col.colname))
                    .table(table.to_owned())
                    .fix(format!("{add};\nCREATE UNIQUE INDEX CONCURRENTLY {n} ON {table} ({c});\nALTER TABLE {table} ADD CONSTRAINT {n} {kind} USING INDEX {n};")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    /// Issue 11, item 13: a primary key swapped in place is built under a
    /// fresh name (the old one still exists), and the DROP stays with the
    /// ADD; `USING INDEX` renames the index to the constraint's name.
    #[test]
    fn pk_swap_builds_under_a_fresh_name_and_keeps_the_drop() {
        let f = check_fires("require-unique-index-for-constraint", "ALTER TABLE accounts DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (code) INCLUDE (region);");
        assert!(f.rewrite);
        assert_eq!(
            f.fix.as_deref(),
            Some("CREATE UNIQUE INDEX CONCURRENTLY accounts_pkey_new ON accounts (code) INCLUDE (region);\nALTER TABLE accounts DROP CONSTRAINT accounts_pkey, ADD CONSTRAINT accounts_pkey PRIMARY KEY USING INDEX accounts_pkey_new;")
        );
    }

    /// lemmy 2023-10-24: `DROP COLUMN id` removes the old primary key
    /// only when the ALTER runs, so the new key's index cannot be built
    /// under `t_pkey` beforehand.
    #[test]
    fn a_primary_key_the_history_knows_is_not_reused_as_the_index_name() {
        let history = "CREATE TABLE cl (id serial PRIMARY KEY, a int NOT NULL, b int NOT NULL);";
        let f = lint_after(&[history], "ALTER TABLE cl DROP COLUMN id, ADD PRIMARY KEY (a, b);", &LintOptions::default())
            .into_iter()
            .find(|f| f.rule == "require-unique-index-for-constraint")
            .expect("fires");
        let fix = f.fix.unwrap_or_default();
        assert!(fix.starts_with("CREATE UNIQUE INDEX CONCURRENTLY cl_pkey_new ON cl (a, b);"), "{fix}");
        assert!(fix.contains("ADD CONSTRAINT cl_pkey PRIMARY KEY USING INDEX cl_pkey_new"), "{fix}");
    }

    #[test]
    fn fires_without_using_index() {
        let f = check_fires("require-unique-index-for-constraint", "ALTER TABLE users ADD UNIQUE (email);");
        assert_eq!(
            f.fix.as_deref(),
            Some("CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;")
        );
        check_fires("require-unique-index-for-constraint", "ALTER TABLE users ADD PRIMARY KEY (id);");
    }

    #[test]
    fn ok_with_using_index_or_new_table() {
        check_ok("require-unique-index-for-constraint", "ALTER TABLE users ADD CONSTRAINT k UNIQUE USING INDEX k;");
        check_ok("require-unique-index-for-constraint", "CREATE TABLE t (a int);\nALTER TABLE t ADD PRIMARY KEY (a);");
    }

    /// Issue 11 item 3: UNIQUE or PRIMARY KEY declared with ADD COLUMN builds
    /// the index under the ADD's ACCESS EXCLUSIVE lock.
    #[test]
    fn fires_on_unique_and_primary_key_columns_added_to_existing_tables() {
        let f = check_fires("require-unique-index-for-constraint", "ALTER TABLE users ADD COLUMN handle text UNIQUE;");
        assert!(f.lock.as_deref().unwrap().starts_with("ACCESS EXCLUSIVE"), "{f:?}");
        assert_eq!(
            f.fix.as_deref(),
            Some("ALTER TABLE users ADD COLUMN handle text;\nCREATE UNIQUE INDEX CONCURRENTLY users_handle_key ON users (handle);\nALTER TABLE users ADD CONSTRAINT users_handle_key UNIQUE USING INDEX users_handle_key;")
        );
        let f = check_fires("require-unique-index-for-constraint", "ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;");
        assert_eq!(
            f.fix.as_deref(),
            Some("ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY NOT NULL;\nCREATE UNIQUE INDEX CONCURRENTLY events_pkey ON events (id);\nALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;")
        );
        check_ok("require-unique-index-for-constraint", "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b text UNIQUE;");
        check_ok("require-unique-index-for-constraint", "ALTER TABLE users ADD COLUMN note text;");
    }
}
