//! `ban-volatile-default`: ADD COLUMN with a default that forces a rewrite.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-volatile-default",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "ADD COLUMN with a volatile default rewrites the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD COLUMN ... DEFAULT <expr>` on an existing table when the default is volatile (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval(...)`, a function the migrations created without `IMMUTABLE` or `STABLE`, ...), or, before PostgreSQL 11, any default. Volatility comes from the migrations' own `CREATE FUNCTION` / `ALTER FUNCTION`, then from the connected server's catalogue when Strata is connected, then from PostgreSQL's built-in functions; a function none of them knows counts as volatile.

## Why is this bad?
From PostgreSQL 11 a constant or stable default is stored once in the catalogue and the ADD is instant. A volatile default must be computed per row, so PostgreSQL rewrites the whole table while holding an ACCESS EXCLUSIVE lock.

## Safe rewrite
Add the column without a default (instant), set the default for new rows, and backfill existing rows in batches; a NOT NULL column then gets its NOT NULL back through a validated CHECK (see `ban-set-not-null`). The statement's other actions stay with the ADD COLUMN.

## Example
```sql
-- before
ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- after
ALTER TABLE users ADD COLUMN token uuid;
ALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();
-- backfill in batches, e.g. 10,000 rows per transaction:
UPDATE users SET token = gen_random_uuid() WHERE id IN (SELECT id FROM users WHERE token IS NULL LIMIT 10000);
```",
};

/// See [`META`].
pub struct BanVolatileDefault;

impl Rule for BanVolatileDefault {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddColumn)) {
            let Some(col) = ast::column_def(cmd) else { continue };
            let default = col
                .raw_default
                .as_deref()
                .or_else(|| ast::column_constraints(col).find(|c| ast::constr_is(c, ConstrType::ConstrDefault)).and_then(|c| c.raw_expr.as_deref()));
            let Some(default) = default else { continue };
            // Unknown functions (an extension's, or one created outside the
            // migrations) count as volatile: PostgreSQL would rewrite.
            let volatile: Vec<String> = ast::called_functions(default).into_iter().filter(|f| ctx.volatility(f).unwrap_or('v') == 'v').collect();
            let old_server = ctx.pg_version() < 11;
            if volatile.is_empty() && !old_server {
                continue;
            }
            let why = if old_server {
                format!("before PostgreSQL 11 every ADD COLUMN ... DEFAULT rewrites the table (target is {})", ctx.pg_version())
            } else if ctx.schema.functions.contains_key(&volatile[0]) {
                format!("the default calls {}(), which the migrations create without IMMUTABLE or STABLE, so it is VOLATILE and every row gets its own value", volatile[0])
            } else if ctx.volatility(&volatile[0]).is_none() {
                format!("the default calls {}(), which neither the migrations nor the built-in catalogue declare IMMUTABLE or STABLE, so it counts as VOLATILE and every row gets its own value", volatile[0])
            } else {
                format!("the default calls volatile {}(), so every row gets its own value", volatile[0])
            };
            let t = table.clone();
            let c = ast::ident(&col.colname);
            let expr = ast::deparse_expr(default);
            // The column as written without its default and NOT NULL (they
            // come back below), in the statement with its other actions.
            let not_null = col.is_not_null || ast::column_constraints(col).any(|k| ast::constr_is(k, ConstrType::ConstrNotnull));
            let primary = ast::column_constraints(col).any(|k| ast::constr_is(k, ConstrType::ConstrPrimary));
            let mut plain = col.clone();
            plain.raw_default = None;
            plain.is_not_null = false;
            plain.constraints.retain(|k| !matches!(&k.node, Some(NodeEnum::Constraint(k)) if ast::constr_is(k, ConstrType::ConstrDefault) || ast::constr_is(k, ConstrType::ConstrNotnull)));
            let mut cmd_plain = (*cmd).clone();
            cmd_plain.def = Some(Box::new(pg_query::protobuf::Node { node: Some(NodeEnum::ColumnDef(Box::new(plain))) }));
            let add = crate::lint::rewrite::alter_replacing(ctx.node, cmd, vec![cmd_plain]).unwrap_or_default();
            let mut fix = format!(
                "{add};\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {expr};\n-- then backfill existing rows in batches (separate transactions):\nUPDATE {t} SET {c} = {expr} WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} IS NULL LIMIT 10000);"
            );
            if not_null {
                let set = crate::lint::rewrite::set_not_null(&t, &col.colname);
                fix.push_str(&format!("\n-- then NOT NULL, without a scan under the lock:\n{}", crate::lint::rewrite::not_null_steps(&t, &col.colname, &set)));
            }
            let finding = Finding::new(&META, format!("ADD COLUMN {} on {table} rewrites the whole table while blocking reads and writes: {why}", col.colname)).table(table.clone());
            // An inline PRIMARY KEY cannot be added to a column of NULLs:
            // the fix is then a starting point, not a drop-in rewrite.
            out.push(if primary { finding.fix(fix) } else { finding.rewrite(fix) });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    /// Issue 11, item 13: NOT NULL comes back, other actions stay.
    #[test]
    fn rewrite_restores_not_null_and_keeps_other_actions() {
        let f = check_fires("ban-volatile-default", "ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid(), ADD COLUMN note text;");
        assert!(f.rewrite);
        let fix = f.fix.unwrap();
        assert!(fix.starts_with("ALTER TABLE users ADD COLUMN token uuid, ADD COLUMN note text;\n"), "{fix}");
        assert!(fix.contains("ALTER TABLE users ALTER COLUMN token SET NOT NULL;"), "{fix}");
    }

    #[test]
    fn fires_on_volatile_defaults() {
        let f = check_fires("ban-volatile-default", "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();");
        assert!(f.fix.unwrap().starts_with("ALTER TABLE users ADD COLUMN token uuid;\nALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();"));
    }

    #[test]
    fn ok_on_constant_and_stable_defaults() {
        check_ok("ban-volatile-default", "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;");
        check_ok("ban-volatile-default", "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();");
        check_ok("ban-volatile-default", "CREATE TABLE t (id uuid DEFAULT gen_random_uuid());");
    }

    /// Issue 11 item 1: a function the history created without a volatility
    /// marker is VOLATILE, as in PostgreSQL; IMMUTABLE and STABLE ones (or
    /// made so by ALTER FUNCTION) are not; unknown functions count as
    /// volatile unless the server says otherwise; built-ins keep theirs.
    #[test]
    fn user_defined_functions_take_the_volatility_the_history_declares() {
        use crate::lint::test_utils::lint_after;
        use crate::lint::{LintOptions, ServerFacts};
        let earlier = [
            "CREATE TABLE t (id bigint PRIMARY KEY);",
            "CREATE FUNCTION mk() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nCREATE FUNCTION app.mk_i(x int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT x $$;\nCREATE OR REPLACE FUNCTION mk_s() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$;\nCREATE FUNCTION mk_later() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nALTER FUNCTION mk_later() IMMUTABLE;",
        ];
        let rule = |sql: &str, options: &LintOptions| lint_after(&earlier, sql, options).into_iter().filter(|f| f.rule == "ban-volatile-default").collect::<Vec<_>>();
        let d = LintOptions::default();
        let f = rule("ALTER TABLE t ADD COLUMN a int DEFAULT mk();", &d);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].risk, crate::lint::Risk::Medium);
        assert!(f[0].message.contains("mk()") && f[0].message.contains("VOLATILE"), "{}", f[0].message);
        assert!(f[0].fix.as_deref().unwrap().contains("SET DEFAULT mk()"), "{f:?}");
        for ok in ["ALTER TABLE t ADD COLUMN a int DEFAULT app.mk_i(2);", "ALTER TABLE t ADD COLUMN a int DEFAULT mk_s();", "ALTER TABLE t ADD COLUMN a int DEFAULT mk_later();", "ALTER TABLE t ADD COLUMN a text DEFAULT lower('X') || md5('y');", "ALTER TABLE t ADD COLUMN a timestamptz DEFAULT date_trunc('day', now());"] {
            assert!(rule(ok, &d).is_empty(), "{ok}");
        }
        // Unknown to the history and the built-in catalogue: volatile...
        assert_eq!(rule("ALTER TABLE t ADD COLUMN a int DEFAULT from_an_extension();", &d).len(), 1);
        // ...unless the connected server says otherwise.
        let mut facts = ServerFacts::default();
        facts.volatility.insert("from_an_extension".into(), 'i');
        let connected = LintOptions { facts: Some(facts), ..LintOptions::default() };
        assert!(rule("ALTER TABLE t ADD COLUMN a int DEFAULT from_an_extension();", &connected).is_empty());
        // A function dropped by the history is unknown again.
        let after_drop = lint_after(&[earlier[0], earlier[1], "DROP FUNCTION app.mk_i(int);"], "ALTER TABLE t ADD COLUMN a int DEFAULT app.mk_i(2);", &d);
        assert!(after_drop.iter().any(|f| f.rule == "ban-volatile-default"), "{after_drop:#?}");
    }
}
