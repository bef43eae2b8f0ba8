//! `require-enum-value-position`: ALTER TYPE ... ADD VALUE without BEFORE or
//! AFTER.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-enum-value-position",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "ADD VALUE without BEFORE/AFTER puts the value last, which changes sort order",
    doc: "## What it does
Flags `ALTER TYPE ... ADD VALUE` without `BEFORE` or `AFTER`.

## Why is this bad?
Enum values sort in declaration order, not alphabetically. A new value appended at the end sorts after all others, so `ORDER BY status` and comparisons such as `status < 'shipped'` change meaning. Also, before PostgreSQL 12 `ADD VALUE` cannot run in a transaction, and from 12 the new value cannot be used in the same transaction that adds it.

## Safe rewrite
Say where the value goes; use `IF NOT EXISTS` to make the migration re-runnable.

## Example
```sql
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';
```",
};

/// See [`META`].
pub struct RequireEnumValuePosition;

impl Rule for RequireEnumValuePosition {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::AlterEnumStmt(e) = ctx.node else { return };
        if !e.old_val.is_empty() || !e.new_val_neighbor.is_empty() {
            return;
        }
        let ty = ast::name(&e.type_name);
        out.push(
            Finding::new(&META, format!("'{}' is added at the end of {ty}, so it sorts after every other value", e.new_val))
                .fix(format!("ALTER TYPE {} ADD VALUE IF NOT EXISTS '{}' AFTER '<existing value>';", ty.clone(), e.new_val.replace('\'', "''"))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_without_a_position() {
        check_fires("require-enum-value-position", "ALTER TYPE order_status ADD VALUE 'refunded';");
    }

    #[test]
    fn ok_with_a_position() {
        check_ok("require-enum-value-position", "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';");
    }
}
