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
Flags `ALTER TABLE ... ADD CONSTRAINT ... CHECK (...)` and `... FOREIGN KEY ...` on an existing table without `NOT VALID`, and `ADD COLUMN ... REFERENCES ...` when the statement gives an added column a default (without one every new value is NULL and PostgreSQL skips the check).

## Why is this bad?
Adding the constraint checks every existing row while holding the lock the ADD takes: ACCESS EXCLUSIVE for a CHECK (no reads, no writes), SHARE ROW EXCLUSIVE on both tables for a foreign key (no writes), ACCESS EXCLUSIVE for a foreign key declared with ADD COLUMN. On a large table that is minutes of blocked traffic.

## Safe rewrite
Add the constraint `NOT VALID` (only new rows are checked; the lock is brief; for a new column: add the column first, then the key), commit, then `VALIDATE CONSTRAINT` in a separate transaction: validation takes only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on.

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
        check_added_columns(ctx, &table, &cmds, out);
        // Every validating FOREIGN KEY / CHECK of the statement, made NOT
        // VALID under its final name; the rewrite covers them all (and keeps
        // the statement's other actions), so each finding offers the same SQL.
        let mut safe: Vec<(*const pg_query::protobuf::AlterTableCmd, pg_query::protobuf::AlterTableCmd, String, bool)> = Vec::new();
        let mut used: Vec<String> = cmds.iter().filter_map(|c| ast::constraint(c)).map(|c| c.conname.clone()).filter(|n| !n.is_empty()).collect();
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddConstraint)) {
            let Some(c) = ast::constraint(cmd) else { continue };
            let foreign = ast::constr_is(c, ConstrType::ConstrForeign);
            if !(foreign || ast::constr_is(c, ConstrType::ConstrCheck)) || c.skip_validation {
                continue;
            }
            let name = if c.conname.is_empty() {
                // PostgreSQL numbers a default name taken in the statement.
                let mut name = default_name(&table, c);
                let mut n = 0;
                while used.contains(&name) {
                    n += 1;
                    name = numbered_default_name(&table, c, n);
                }
                used.push(name.clone());
                name
            } else {
                c.conname.clone()
            };
            let mut not_valid = c.clone();
            not_valid.conname = name.clone();
            not_valid.skip_validation = true;
            not_valid.initially_valid = false;
            let mut cmd_safe = (*cmd).clone();
            cmd_safe.def = Some(Box::new(Node { node: Some(NodeEnum::Constraint(Box::new(not_valid))) }));
            safe.push((*cmd as *const _, cmd_safe, name, foreign));
        }
        if safe.is_empty() {
            return;
        }
        let add = crate::lint::rewrite::alter_mapping(ctx.node, |cmd| {
            safe.iter().find(|(p, ..)| std::ptr::eq(*p, cmd)).map(|(_, s, ..)| vec![s.clone()])
        })
        .unwrap_or_default();
        let validate: Vec<String> = safe.iter().map(|(_, _, name, _)| format!("ALTER TABLE {table} VALIDATE CONSTRAINT {};", ast::ident(name))).collect();
        let fix = format!("{add};\n-- then, in a separate transaction (a later migration):\n{}", validate.join("\n"));
        for (_, _, _, foreign) in &safe {
            let (kind, lock) = if *foreign { ("FOREIGN KEY", Lock::ShareRowExclusive) } else { ("CHECK", Lock::AccessExclusive) };
            out.push(
                Finding::new(&META, format!("ADD {kind} on existing table {table} checks every row while holding a {lock} lock"))
                    .lock(lock)
                    .table(table.clone())
                    .rewrite(fix.clone()),
            );
        }
    }
}

/// `ADD COLUMN c int DEFAULT 0 REFERENCES other (id)`: PostgreSQL skips
/// checking a new column's foreign key when the column has no default
/// (every value is then NULL); with one, even `DEFAULT NULL`, it checks
/// every row while the ADD holds ACCESS EXCLUSIVE on the table (measured on
/// PostgreSQL 15, 2M rows: 6 ms without a default, 0.8 s with `DEFAULT 0`,
/// 1.5 s with `DEFAULT NULL`).
fn check_added_columns(ctx: &StmtCtx<'_>, table: &str, cmds: &[&pg_query::protobuf::AlterTableCmd], out: &mut Vec<Finding>) {
    let with_default = |col: &pg_query::protobuf::ColumnDef| col.raw_default.is_some() || ast::column_constraints(col).any(|c| ast::constr_is(c, ConstrType::ConstrDefault) || ast::constr_is(c, ConstrType::ConstrGenerated));
    for col in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddColumn)).filter_map(|c| ast::column_def(c)).filter(|c| with_default(c)) {
        for fk in ast::column_constraints(col).filter(|c| ast::constr_is(c, ConstrType::ConstrForeign) && !c.skip_validation) {
            let mut safe = fk.clone();
            safe.fk_attrs = vec![Node { node: Some(NodeEnum::String(pg_query::protobuf::String { sval: col.colname.clone() })) }];
            let name = if fk.conname.is_empty() { default_name(table, &safe) } else { fk.conname.clone() };
            safe.conname = name.clone();
            safe.skip_validation = true;
            safe.initially_valid = false;
            let mut plain = col.clone();
            plain.constraints.retain(|c| !matches!(&c.node, Some(NodeEnum::Constraint(k)) if k.as_ref() == fk));
            let add_column = alter_adding(ctx.node, NodeEnum::ColumnDef(Box::new(plain)));
            let add = alter_with(ctx.node, table, NodeEnum::Constraint(Box::new(safe)));
            let why = format!("its default gives every existing row a value to check against {}", fk.pktable.as_ref().map(ast::relation).unwrap_or_default());
            out.push(
                Finding::new(&META, format!("ADD COLUMN {} with REFERENCES on existing table {table} checks every row while holding ACCESS EXCLUSIVE (no reads, no writes): {why}", col.colname))
                    .lock(Lock::AccessExclusive)
                    .table(table.to_owned())
                    .fix(format!(
                        "{add_column};\n{add};\n-- then, in a separate transaction (a later migration):\nALTER TABLE {table} VALIDATE CONSTRAINT {};",
                        ast::ident(&name)
                    )),
            );
        }
    }
}

/// `ALTER TABLE <table> ADD COLUMN <column>` deparsed.
pub fn alter_adding(original: &NodeEnum, column: NodeEnum) -> String {
    let NodeEnum::AlterTableStmt(stmt) = original else { return String::new() };
    let cmd = pg_query::protobuf::AlterTableCmd {
        subtype: AlterTableType::AtAddColumn as i32,
        def: Some(Box::new(Node { node: Some(column) })),
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

/// PostgreSQL's default constraint name: `table_col_fkey`, and for a CHECK
/// `table_col_check` when its expression names exactly one column, else
/// `table_check` (`AddRelationNewConstraints`).
pub fn default_name(table: &str, c: &pg_query::protobuf::Constraint) -> String {
    numbered(table, c, "")
}

/// The columns a CHECK expression names, without duplicates.
fn check_columns(c: &pg_query::protobuf::Constraint) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(expr) = c.raw_expr.as_deref().and_then(|e| e.node.as_ref()) else { return out };
    let mut add = |fields: &[Node]| {
        if let Some(name) = ast::strings(fields).last() {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    };
    if let NodeEnum::ColumnRef(r) = expr {
        add(&r.fields);
    }
    for (n, _, _, _) in expr.nodes() {
        if let pg_query::NodeRef::ColumnRef(r) = n {
            add(&r.fields);
        }
    }
    out
}

fn numbered(table: &str, c: &pg_query::protobuf::Constraint, pass: &str) -> String {
    let base = ast::base_name(table);
    if ast::constr_is(c, ConstrType::ConstrForeign) {
        names::object_name(&base, Some(&names::name_addition(&ast::strings(&c.fk_attrs))), &format!("fkey{pass}"))
    } else {
        match check_columns(c).as_slice() {
            [one] => names::object_name(&base, Some(one), &format!("check{pass}")),
            _ => names::object_name(&base, None, &format!("check{pass}")),
        }
    }
}

/// The default name with PostgreSQL's pass number in the label
/// (`ChooseConstraintName`: `t_a_check1`, `t_a_fkey2`), cut to 63 bytes
/// the same way.
fn numbered_default_name(table: &str, c: &pg_query::protobuf::Constraint, n: usize) -> String {
    numbered(table, c, &n.to_string())
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
        // Several at once: all NOT VALID, each validated, default names
        // numbered as PostgreSQL numbers them.
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE t ADD CHECK (a > 0), ADD CHECK (a < 9), ADD CHECK (a < b), ADD CONSTRAINT t_c_fkey FOREIGN KEY (c) REFERENCES u;");
        assert_eq!(
            f.fix.as_deref(),
            Some("ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID, ADD CONSTRAINT t_a_check1 CHECK (a < 9) NOT VALID, ADD CONSTRAINT t_check CHECK (a < b) NOT VALID, ADD CONSTRAINT t_c_fkey FOREIGN KEY (c) REFERENCES u NOT VALID;\n-- then, in a separate transaction (a later migration):\nALTER TABLE t VALIDATE CONSTRAINT t_a_check;\nALTER TABLE t VALIDATE CONSTRAINT t_a_check1;\nALTER TABLE t VALIDATE CONSTRAINT t_check;\nALTER TABLE t VALIDATE CONSTRAINT t_c_fkey;")
        );
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

    /// Issue 11 item 2: a foreign key declared with ADD COLUMN is
    /// validated under the ADD's ACCESS EXCLUSIVE lock when the column has a
    /// default; without one PostgreSQL skips the FK check (all NULL).
    #[test]
    fn fires_on_inline_keys_of_an_added_column_with_a_default() {
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE orders ADD COLUMN shop_id int NOT NULL DEFAULT 0 REFERENCES shops (id);");
        assert!(f.lock.as_deref().unwrap().starts_with("ACCESS EXCLUSIVE"), "{f:?}");
        assert_eq!(f.table.as_deref(), Some("orders"));
        assert_eq!(
            f.fix.as_deref(),
            Some("ALTER TABLE orders ADD COLUMN shop_id int NOT NULL DEFAULT 0;\nALTER TABLE orders ADD CONSTRAINT orders_shop_id_fkey FOREIGN KEY (shop_id) REFERENCES shops (id) NOT VALID;\n-- then, in a separate transaction (a later migration):\nALTER TABLE orders VALIDATE CONSTRAINT orders_shop_id_fkey;")
        );
        let f = check_fires("require-not-valid-constraint", "ALTER TABLE orders ADD COLUMN shop_id int DEFAULT NULL CONSTRAINT orders_shop REFERENCES shops ON DELETE CASCADE;");
        assert!(f.fix.as_deref().unwrap().contains("ADD CONSTRAINT orders_shop FOREIGN KEY (shop_id) REFERENCES shops ON DELETE CASCADE NOT VALID;"), "{f:?}");
        check_ok("require-not-valid-constraint", "ALTER TABLE orders ADD COLUMN shop_id int REFERENCES shops (id);");
        check_ok("require-not-valid-constraint", "ALTER TABLE orders ADD COLUMN kind text NOT NULL DEFAULT 'x', ADD COLUMN shop_id int REFERENCES shops (id);");
        check_ok("require-not-valid-constraint", "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN shop_id int NOT NULL DEFAULT 0 REFERENCES shops (id);");
    }
}
