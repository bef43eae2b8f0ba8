//! `prefer-single-alter`: several ALTER TABLE statements on one table that
//! could be one.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-single-alter",
    risk: Risk::Low,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "several ALTER TABLEs on one table rewrite or scan it several times, or queue for its lock several times",
    doc: "## What it does
Flags an `ALTER TABLE` on an existing table that was already altered in the same migration, when combining them saves real work: inside a transaction, when both rewrite or scan the table (a type change, SET NOT NULL, a validated constraint, a volatile default: what the scan and rewrite rules flag); outside a transaction, for any two ALTERs taking the ACCESS EXCLUSIVE lock, since each queues for it on its own. Metadata-only ALTERs in one transaction are not flagged: the lock is taken once and held, and they take microseconds.

## Why is this bad?
Each rewrite copies the table again and each scan reads it again, all under the lock; outside a transaction, each statement waits again in the lock queue, with every query on the table queued behind it.

## Safe rewrite
Combine the actions into one statement.

## Example
```sql
ALTER TABLE users ALTER COLUMN a TYPE bigint, ALTER COLUMN b TYPE bigint;
```",
};

/// See [`META`]. Checked by the driver through [`Alters`], which knows
/// whether a statement rewrites or scans (from the other rules' findings).
pub struct PreferSingleAlter;

impl Rule for PreferSingleAlter {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

/// The ALTER TABLEs of one script so far, by table key.
#[derive(Debug, Default)]
pub struct Alters {
    /// In the current transaction: the first ALTER that rewrites or scans.
    heavy: std::collections::HashMap<String, usize>,
    /// Outside a transaction: the first ALTER taking ACCESS EXCLUSIVE.
    alone: std::collections::HashMap<String, usize>,
}

impl Alters {
    /// Checks an ALTER TABLE (`heavy`: it rewrites or scans the table) at
    /// file line `line`, and remembers it.
    pub fn check(&mut self, ctx: &StmtCtx<'_>, heavy: bool, line: usize, out: &mut Vec<Finding>) {
        let Some((table, _)) = ast::alter_table(ctx.node) else { return };
        let exclusive = crate::lint::context::table_lock(ctx.node).is_some_and(|(l, _)| l == Lock::AccessExclusive);
        if !exclusive || !ctx.is_existing(&table) {
            return;
        }
        let key = crate::lint::schema::key(&table);
        let earlier = if ctx.in_transaction {
            if !heavy {
                return;
            }
            self.heavy.get(&key).copied().map(|l| (l, "rewrites or scans it too; one ALTER TABLE with both actions does the work in one pass"))
        } else {
            self.alone.get(&key).copied().map(|l| (l, "outside a transaction; each ALTER TABLE queues for the ACCESS EXCLUSIVE lock again, with every query on the table behind it"))
        };
        match earlier {
            Some((first, why)) => out.push(
                Finding::new(&META, format!("{table} was already altered at line {first}, which {why}"))
                    .table(table.clone())
                    .fix(format!("ALTER TABLE {table} <action from line {first}>, <this action>;")),
            ),
            None => {
                let map = if ctx.in_transaction { &mut self.heavy } else { &mut self.alone };
                map.insert(key, line);
            }
        }
    }

    /// A transaction ended.
    pub fn end_transaction(&mut self) {
        self.heavy.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_a_second_rewrite_or_outside_a_transaction() {
        check_fires("prefer-single-alter", "ALTER TABLE users ALTER COLUMN a TYPE bigint;\nALTER TABLE users ALTER COLUMN b SET NOT NULL;");
        check_fires("prefer-single-alter", "-- strata:no-transaction\nALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;");
    }

    #[test]
    fn ok_when_combined_or_different_tables() {
        check_ok("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text;");
        check_ok("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE orders ADD COLUMN b text;");
    }

    #[test]
    fn ok_when_at_most_one_rewrites_in_a_transaction() {
        // The lock is taken once; the metadata-only one takes microseconds.
        check_ok("prefer-single-alter", "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;");
        check_ok("prefer-single-alter", "ALTER TABLE users ALTER COLUMN a TYPE bigint;\nALTER TABLE users DROP CONSTRAINT users_b_check;\nALTER TABLE users RENAME COLUMN c TO d;");
        // The safe NOT VALID + VALIDATE pair is two statements on purpose.
        check_ok("prefer-single-alter", "-- strata:no-transaction\nALTER TABLE users ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT c;");
    }
}
