//! `ban-stored-generated-column`: ADD COLUMN ... GENERATED ALWAYS AS (...)
//! STORED on an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-stored-generated-column",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "adding a stored generated column rewrites the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (...) STORED` on an existing table.

## Why is this bad?
The value is computed and stored for every existing row: a full table rewrite while holding an ACCESS EXCLUSIVE lock.

## Safe rewrite
Add a plain nullable column, fill it for new rows with a trigger, backfill old rows in batches. Or compute the value at read time (a view, or an expression index if you only search by it).

## Example
```sql
ALTER TABLE users ADD COLUMN email_lower text;
-- trigger: NEW.email_lower := lower(NEW.email);
-- backfill in batches:
UPDATE users SET email_lower = lower(email) WHERE id IN (SELECT id FROM users WHERE email_lower IS NULL LIMIT 10000);
```",
};

/// See [`META`].
pub struct BanStoredGeneratedColumn;

impl Rule for BanStoredGeneratedColumn {
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
            let Some(generated) = ast::column_constraints(col).find(|c| ast::constr_is(c, ConstrType::ConstrGenerated)) else { continue };
            // PostgreSQL 18 also has VIRTUAL generated columns, which are free.
            if generated.generated_kind == "v" {
                continue;
            }
            let t = table.clone();
            let c = ast::ident(&col.colname);
            let ty = col.type_name.as_ref().map(ast::type_display).unwrap_or_default();
            let expr = generated.raw_expr.as_deref().map(ast::deparse_expr).unwrap_or_default();
            out.push(
                Finding::new(&META, format!("stored generated column {} is computed for every existing row of {table}: a full rewrite blocking reads and writes", col.colname))
                    .table(table.clone())
                    .fix(format!(
                        "ALTER TABLE {t} ADD COLUMN {c} {ty};\n-- keep it current for new rows with a BEFORE INSERT OR UPDATE trigger setting NEW.{c} := {expr};\n-- then backfill in batches:\nUPDATE {t} SET {c} = {expr} WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} IS NULL LIMIT 10000);"
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_existing_tables() {
        check_fires("ban-stored-generated-column", "ALTER TABLE users ADD COLUMN email_lower text GENERATED ALWAYS AS (lower(email)) STORED;");
    }

    #[test]
    fn ok_on_new_tables() {
        check_ok("ban-stored-generated-column", "CREATE TABLE u (email text, l text GENERATED ALWAYS AS (lower(email)) STORED);");
    }
}
