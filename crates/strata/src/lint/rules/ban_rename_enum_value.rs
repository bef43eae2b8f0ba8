//! `ban-rename-enum-value`: ALTER TYPE ... RENAME VALUE.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-rename-enum-value",
    risk: Risk::Medium,
    lock: None,
    scans: false,
    summary: "renaming an enum value breaks running code that reads or writes the old value",
    doc: "## What it does
Flags `ALTER TYPE ... RENAME VALUE`.

## Why is this bad?
The running application still writes the old label (which now fails with `invalid input value for enum`) and compares against it when reading (which silently stops matching).

## Safe rewrite
Add the new value, move the code to write it, update existing rows in batches, and stop using the old value. Enum values cannot be dropped; if you need that, use a lookup table instead of an enum.

## Example
```sql
ALTER TYPE order_status ADD VALUE 'dispatched' AFTER 'paid';
-- deploy code writing 'dispatched', then in batches:
UPDATE orders SET status = 'dispatched' WHERE status = 'shipped';
```",
};

/// See [`META`].
pub struct BanRenameEnumValue;

impl Rule for BanRenameEnumValue {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::AlterEnumStmt(e) = ctx.node else { return };
        if e.old_val.is_empty() {
            return;
        }
        let ty = ast::name(&e.type_name);
        out.push(
            Finding::new(&META, format!("renaming {ty} value '{}' to '{}' breaks running code that writes or compares the old value", e.old_val, e.new_val))
                .fix(format!(
                    "ALTER TYPE {} ADD VALUE IF NOT EXISTS '{}' AFTER '{}';\n-- deploy code that writes '{}', then update rows in batches from '{}'",
                    ty.clone(),
                    e.new_val.replace('\'', "''"),
                    e.old_val.replace('\'', "''"),
                    e.new_val,
                    e.old_val
                )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_rename_value() {
        check_fires("ban-rename-enum-value", "ALTER TYPE order_status RENAME VALUE 'shipped' TO 'dispatched';");
    }

    #[test]
    fn ok_on_add_value() {
        check_ok("ban-rename-enum-value", "ALTER TYPE order_status ADD VALUE 'dispatched' AFTER 'paid';");
    }
}
