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
Flags `ALTER TABLE ... ADD COLUMN ... DEFAULT <expr>` on an existing table when the default is volatile (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval(...)`, ...), or, before PostgreSQL 11, any default. Volatility comes from the connected server's catalogue when Strata is connected, else from a list of well-known functions.

## Why is this bad?
From PostgreSQL 11 a constant or stable default is stored once in the catalogue and the ADD is instant. A volatile default must be computed per row, so PostgreSQL rewrites the whole table while holding an ACCESS EXCLUSIVE lock.

## Safe rewrite
Add the column without a default (instant), set the default for new rows, and backfill existing rows in batches.

## Example
```sql
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
            let volatile: Vec<String> = ast::called_functions(default).into_iter().filter(|f| ctx.volatility(f) == Some('v')).collect();
            let old_server = ctx.pg_version() < 11;
            if volatile.is_empty() && !old_server {
                continue;
            }
            let why = if old_server {
                format!("before PostgreSQL 11 every ADD COLUMN ... DEFAULT rewrites the table (target is {})", ctx.pg_version())
            } else {
                format!("the default calls volatile {}(), so every row gets its own value", volatile[0])
            };
            let t = table.clone();
            let c = ast::ident(&col.colname);
            let ty = col.type_name.as_ref().map(ast::type_display).unwrap_or_default();
            let expr = ast::deparse_expr(default);
            out.push(
                Finding::new(&META, format!("ADD COLUMN {} on {table} rewrites the whole table while blocking reads and writes: {why}", col.colname))
                    .table(table.clone())
                    .rewrite(format!(
                        "ALTER TABLE {t} ADD COLUMN {c} {ty};\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {expr};\n-- then backfill existing rows in batches (separate transactions):\nUPDATE {t} SET {c} = {expr} WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} IS NULL LIMIT 10000);"
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

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
}
