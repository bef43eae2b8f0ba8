//! `ban-add-serial-or-identity-column`: adding a serial or identity column to
//! an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-add-serial-or-identity-column",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "adding a serial or identity column rewrites the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD COLUMN` of type `serial`/`bigserial`/`smallserial`, or with `GENERATED ... AS IDENTITY`, on an existing table.

## Why is this bad?
Each existing row needs its own sequence value, so the column default is volatile and PostgreSQL rewrites the table while holding an ACCESS EXCLUSIVE lock.

## Safe rewrite
Add a nullable `bigint` column, create a sequence and set it as the default for new rows, backfill old rows in batches, then add the NOT NULL safely (see `ban-set-not-null`).

## Example
```sql
CREATE SEQUENCE events_seq_seq;
ALTER TABLE events ADD COLUMN seq bigint;
ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq_seq');
-- backfill in batches:
UPDATE events SET seq = nextval('events_seq_seq') WHERE ctid IN (SELECT ctid FROM events WHERE seq IS NULL LIMIT 10000);
```",
};

/// See [`META`].
pub struct BanAddSerialOrIdentityColumn;

impl Rule for BanAddSerialOrIdentityColumn {
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
            let ty = col.type_name.as_ref().map(|t| ast::type_of(t).0).unwrap_or_default();
            let serial = matches!(ty.as_str(), "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2");
            let identity = ast::column_constraints(col).any(|c| ast::constr_is(c, ConstrType::ConstrIdentity));
            if !serial && !identity {
                continue;
            }
            let t = table.clone();
            let c = ast::ident(&col.colname);
            let seq = ast::ident(&names::object_name(&ast::base_name(&table), Some(&col.colname), "seq"));
            out.push(
                Finding::new(&META, format!("{} column {} needs a value for every existing row of {table}: a full rewrite blocking reads and writes", if serial { "serial" } else { "identity" }, col.colname))
                    .table(table.clone())
                    .rewrite(format!(
                        "CREATE SEQUENCE {seq};\nALTER TABLE {t} ADD COLUMN {c} bigint;\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT nextval('{seq}');\n-- then backfill in batches:\nUPDATE {t} SET {c} = nextval('{seq}') WHERE ctid IN (SELECT ctid FROM {t} WHERE {c} IS NULL LIMIT 10000);"
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_serial_and_identity() {
        check_fires("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN seq bigserial;");
        check_fires("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;");
    }

    #[test]
    fn ok_on_new_tables_and_plain_columns() {
        check_ok("ban-add-serial-or-identity-column", "CREATE TABLE e (id bigint GENERATED ALWAYS AS IDENTITY);");
        check_ok("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN n bigint;");
    }
}
