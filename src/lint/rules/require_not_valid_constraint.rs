//! `require-not-valid-constraint`: ADD CHECK or FOREIGN KEY on an existing
//! table without NOT VALID.

use super::prelude::*;
use pg_query::protobuf::{AlterTableStmt, Node};

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-not-valid-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "ADD CHECK / FOREIGN KEY without NOT VALID scans the whole table while holding a blocking lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD CONSTRAINT ... CHECK (...)` and `... FOREIGN KEY ...` on an existing table without `NOT VALID`.

## Why is this bad?
Adding the constraint checks every existing row while holding the lock the ADD takes: ACCESS EXCLUSIVE for a CHECK (no reads, no writes), SHARE ROW EXCLUSIVE on both tables for a foreign key (no writes). On a large table that is minutes of blocked traffic.

## Safe rewrite
Add the constraint `NOT VALID` (only new rows are checked; the lock is brief), commit, then `VALIDATE CONSTRAINT` in a separate transaction: validation takes only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on.

## Example
```sql
-- before
ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
-- after
ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
-- in a separate migration (or transaction):
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;
```",
};

/// See [`META`].
pub struct RequireNotValidConstraint;

impl Rule for RequireNotValidConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddConstraint)) {
            let Some(c) = ast::constraint(cmd) else { continue };
            let foreign = ast::constr_is(c, ConstrType::ConstrForeign);
            if !(foreign || ast::constr_is(c, ConstrType::ConstrCheck)) || c.skip_validation {
                continue;
            }
            let name = if c.conname.is_empty() { default_name(&table, c) } else { c.conname.clone() };
            let mut safe = c.clone();
            safe.conname = name.clone();
            safe.skip_validation = true;
            safe.initially_valid = false;
            // The statement as written, with this constraint NOT VALID: its
            // other actions stay in it.
            let mut cmd_safe = (*cmd).clone();
            cmd_safe.def = Some(Box::new(Node { node: Some(NodeEnum::Constraint(Box::new(safe))) }));
            let add = crate::lint::rewrite::alter_replacing(ctx.node, cmd, vec![cmd_safe]).unwrap_or_default();
            let (kind, lock) = if foreign { ("FOREIGN KEY", Lock::ShareRowExclusive) } else { ("CHECK", Lock::AccessExclusive) };
            out.push(
                Finding::new(&META, format!("ADD {kind} on existing table {table} checks every row while holding a {lock} lock"))
                    .lock(lock)
                    .table(table.clone())
                    .rewrite(format!(
                        "{add};\n-- then, in a separate transaction (a later migration):\nALTER TABLE {} VALIDATE CONSTRAINT {};",
                        table.clone(),
                        ast::ident(&name)
                    )),
            );
        }
    }
}

/// PostgreSQL's default constraint name: `table_col_fkey` / `table_check`.
pub fn default_name(table: &str, c: &pg_query::protobuf::Constraint) -> String {
    let base = ast::base_name(table);
    if ast::constr_is(c, ConstrType::ConstrForeign) {
        names::object_name(&base, Some(&names::name_addition(&ast::strings(&c.fk_attrs))), "fkey")
    } else {
        names::object_name(&base, None, "check")
    }
}

/// `ALTER TABLE <table> ADD <constraint>` deparsed.
pub fn alter_with(original: &NodeEnum, _table: &str, constraint: NodeEnum) -> String {
    let NodeEnum::AlterTableStmt(stmt) = original else { return String::new() };
    let cmd = pg_query::protobuf::AlterTableCmd {
        subtype: AlterTableType::AtAddConstraint as i32,
        def: Some(Box::new(Node { node: Some(constraint) })),
        behavior: pg_query::protobuf::DropBehavior::DropRestrict as i32,
        ..Default::default()
    };
    let single = AlterTableStmt {
        relation: stmt.relation.clone(),
        cmds: vec![Node { node: Some(NodeEnum::AlterTableCmd(Box::new(cmd))) }],
        objtype: stmt.objtype,
        missing_ok: stmt.missing_ok,
    };
    ast::deparse(&NodeEnum::AlterTableStmt(single))
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    /// Issue 11, item 13: the statement's other actions stay with the
    /// NOT VALID constraint.
    #[test]
    fn rewrite_keeps_other_actions() {
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE orders ADD COLUMN buyer_id bigint, ADD FOREIGN KEY (buyer_id) REFERENCES users (id);");
        assert!(f.fix.unwrap().starts_with("ALTER TABLE orders ADD COLUMN buyer_id bigint, ADD CONSTRAINT orders_buyer_id_fkey FOREIGN KEY (buyer_id) REFERENCES users (id) NOT VALID;"));
    }

    #[test]
    fn fires_on_validating_adds() {
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);");
        let fix = f.fix.unwrap();
        assert!(fix.contains("ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID"), "{fix}");
        assert!(fix.contains("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;"), "{fix}");
        assert!(f.lock.unwrap().starts_with("SHARE ROW EXCLUSIVE"));
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0);");
        assert!(f.fix.unwrap().contains("CHECK (total > 0) NOT VALID"));
    }

    #[test]
    fn ok_with_not_valid_or_on_new_tables() {
        check_ok("require-not-valid-constraint", "ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0) NOT VALID;");
        check_ok("require-not-valid-constraint", "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);");
        check_ok("require-not-valid-constraint", "CREATE TABLE items (order_id bigint REFERENCES orders (id));");
    }
}
