//! `ban-validate-in-same-transaction`: NOT VALID and VALIDATE in one
//! transaction.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-validate-in-same-transaction",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "VALIDATE in the same transaction as the NOT VALID add keeps the blocking lock through the scan",
    doc: "## What it does
Flags `ALTER TABLE ... VALIDATE CONSTRAINT c` in the same transaction that added `c` with `NOT VALID`.

## Why is this bad?
The point of `NOT VALID` is to take the ADD's strong lock only briefly and validate later under a weak lock. In one transaction, the strong lock from the ADD is held until commit, so the validating scan runs under it: the same outage as adding the constraint without `NOT VALID`.

## Safe rewrite
Validate in a separate transaction: a later migration, or mark the file `-- strata:no-transaction` so each statement commits on its own.

## Example
```sql
-- migration 1
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
-- migration 2
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;
```",
};

/// See [`META`].
pub struct BanValidateInSameTransaction;

impl Rule for BanValidateInSameTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        if !ctx.in_transaction {
            return;
        }
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        let key = crate::lint::schema::key(&table);
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtValidateConstraint)) {
            if ctx.tx.not_valid.iter().any(|(t, n)| *t == key && *n == cmd.name) {
                out.push(
                    Finding::new(&META, format!("constraint {} was added NOT VALID in this same transaction, so validation runs under the ADD's blocking lock", cmd.name))
                        .table(table.clone())
                        .fix(format!("-- move to a later migration (or add -- strata:no-transaction to this file):\nALTER TABLE {} VALIDATE CONSTRAINT {};", table.clone(), ast::ident(&cmd.name))),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    const BOTH: &str = "ALTER TABLE orders ADD CONSTRAINT c CHECK (total >= 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT c;";

    #[test]
    fn fires_in_one_transaction() {
        check_fires("ban-validate-in-same-transaction", BOTH);
    }

    #[test]
    fn ok_alone_or_outside_a_transaction() {
        check_ok("ban-validate-in-same-transaction", "ALTER TABLE orders VALIDATE CONSTRAINT c;");
        check_ok("ban-validate-in-same-transaction", &format!("-- strata:no-transaction\n{BOTH}"));
    }
}
