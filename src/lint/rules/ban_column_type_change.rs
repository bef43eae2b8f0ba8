//! `ban-column-type-change`: ALTER COLUMN ... TYPE that rewrites the table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-column-type-change",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "changing a column type rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ALTER COLUMN c TYPE t` on an existing table unless the change is binary-coercible, which PostgreSQL does without a rewrite: `varchar(n)` → `text`, `varchar(n)` → `varchar(m)` with m ≥ n or no limit, `char(n)` → `text`/`varchar`, `numeric(p,s)` → `numeric(q,s)` with q ≥ p or `numeric`, `varbit(n)` → wider, `cidr` → `inet`, `xml` → `text`, `timestamp` → `timestamptz` when the session time zone is UTC (PostgreSQL 12+). The old type comes from the replayed migrations; if it is unknown, the change is flagged.

## Why is this bad?
A rewrite copies every row and rebuilds every index on the table while holding an ACCESS EXCLUSIVE lock: no reads, no writes, for as long as the copy takes. Running code may also break on the new type.

## Safe rewrite
Expand and contract: add a new column of the new type, write both from the application (or a trigger), backfill in batches, switch reads, then drop the old column.

## Example
```sql
ALTER TABLE orders ADD COLUMN total_new numeric(12,2);
-- trigger keeps total_new = total::numeric(12,2); backfill in batches; switch reads; then
ALTER TABLE orders DROP COLUMN total;
ALTER TABLE orders RENAME COLUMN total_new TO total;
```",
};

/// See [`META`].
pub struct BanColumnTypeChange;

fn coercible(old: Option<(&str, &[i64])>, new: (&str, &[i64])) -> bool {
    let Some((from, from_mods)) = old else { return false };
    let widening = |a: &[i64], b: &[i64]| b.is_empty() || (!a.is_empty() && b[0] >= a[0] && b.get(1) == a.get(1));
    match (from, new.0) {
        ("varchar", "text") | ("bpchar", "text") | ("xml", "text") | ("cidr", "inet") | ("text", "text") => true,
        ("varchar", "varchar") | ("varbit", "varbit") => widening(from_mods, new.1),
        ("numeric", "numeric") => new.1.is_empty() || (from_mods.len() == 2 && new.1.len() == 2 && new.1[0] >= from_mods[0] && new.1[1] == from_mods[1]),
        ("bpchar", "varchar") => new.1.is_empty() || (!from_mods.is_empty() && new.1[0] >= from_mods[0]),
        ("text", "varchar") => new.1.is_empty(),
        _ => false,
    }
}

impl Rule for BanColumnTypeChange {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAlterColumnType)) {
            let Some(tn) = ast::column_def(cmd).and_then(|c| c.type_name.as_ref()) else { continue };
            let (new, new_mods) = ast::type_of(tn);
            let old = ctx.schema.table(&table).and_then(|t| t.columns.get(&cmd.name)).filter(|c| !c.type_name.is_empty());
            let has_using = ast::column_def(cmd).is_some_and(|c| c.raw_default.is_some());
            if !has_using && coercible(old.map(|c| (c.type_name.as_str(), c.type_mods.as_slice())), (&new, &new_mods)) {
                continue;
            }
            let t = table.clone();
            let c = ast::ident(&cmd.name);
            let tmp = ast::ident(&format!("{}_new", cmd.name));
            let shown = ast::type_display(tn);
            let from = old.map(|o| format!(" from {}", o.type_name)).unwrap_or_default();
            out.push(
                Finding::new(&META, format!("changing {table}.{}{from} to {shown} rewrites the table and its indexes while blocking reads and writes", cmd.name))
                    .table(table.clone())
                    .rewrite(format!(
                        "ALTER TABLE {t} ADD COLUMN {tmp} {shown};\n-- keep {tmp} in sync with a trigger, backfill in batches:\nUPDATE {t} SET {tmp} = {c}::{shown} WHERE ctid IN (SELECT ctid FROM {t} WHERE {tmp} IS NULL AND {c} IS NOT NULL LIMIT 10000);\n-- switch reads to {tmp}, then in a later migration:\nALTER TABLE {t} DROP COLUMN {c};\nALTER TABLE {t} RENAME COLUMN {tmp} TO {c};"
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    #[test]
    fn fires_on_rewrites() {
        check_fires("ban-column-type-change", "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);");
        let after = lint_after(&["CREATE TABLE t (a int);"], "ALTER TABLE t ALTER COLUMN a TYPE bigint;", &LintOptions::default());
        assert!(after.iter().any(|f| f.rule == "ban-column-type-change"));
    }

    #[test]
    fn ok_on_binary_coercible_changes() {
        for sql in ["ALTER TABLE t ALTER COLUMN a TYPE text;", "ALTER TABLE t ALTER COLUMN a TYPE varchar(200);", "ALTER TABLE t ALTER COLUMN a TYPE varchar;"] {
            let after = lint_after(&["CREATE TABLE t (a varchar(100));"], sql, &LintOptions::default());
            assert!(!after.iter().any(|f| f.rule == "ban-column-type-change"), "{sql}");
        }
        check_ok("ban-column-type-change", "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;");
    }
}
