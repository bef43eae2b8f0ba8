//! `require-fk-covering-index`: a foreign key whose columns no index covers.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "require-fk-covering-index",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "a foreign key without an index on its columns makes deletes on the parent scan this table",
    doc: "## What it does
Flags a foreign key (in `CREATE TABLE` or `ALTER TABLE ... ADD`) whose referencing columns are not the leading columns of any index on the table, as far as the migrations show (indexes created later in the same migration count).

## Why is this bad?
Every DELETE or key UPDATE on the referenced table must find the referencing rows; without an index that is a full scan of this table per row, holding row locks, and a join on the key is slow too.

## Safe rewrite
Index the referencing columns (concurrently, if the table already has rows).

## Example
```sql
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders (id), ...);
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
```",
};

/// See [`META`].
pub struct RequireFkCoveringIndex;

impl Rule for RequireFkCoveringIndex {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let mut fks: Vec<(String, Vec<String>)> = Vec::new();
        match ctx.node {
            NodeEnum::CreateStmt(c) => {
                let Some(rv) = &c.relation else { return };
                let table = ast::relation(rv);
                for elt in &c.table_elts {
                    match &elt.node {
                        Some(NodeEnum::ColumnDef(col)) if ast::column_constraints(col).any(|k| ast::constr_is(k, ConstrType::ConstrForeign)) => {
                            fks.push((table.clone(), vec![col.colname.clone()]));
                        }
                        Some(NodeEnum::Constraint(k)) if ast::constr_is(k, ConstrType::ConstrForeign) => {
                            fks.push((table.clone(), ast::strings(&k.fk_attrs)));
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
                for cmd in cmds {
                    if let Some(k) = ast::constraint(cmd).filter(|k| ast::constr_is(k, ConstrType::ConstrForeign)) {
                        fks.push((table.clone(), ast::strings(&k.fk_attrs)));
                    }
                    if let Some(col) = ast::column_def(cmd) {
                        if ast::column_constraints(col).any(|k| ast::constr_is(k, ConstrType::ConstrForeign)) {
                            fks.push((table.clone(), vec![col.colname.clone()]));
                        }
                    }
                }
            }
        }
        for (table, cols) in fks.into_iter().filter(|(_, c)| !c.is_empty()) {
            let name = ast::ident(&names::object_name(&ast::base_name(&table), Some(&names::name_addition(&cols)), "idx"));
            let new_table = matches!(ctx.node, NodeEnum::CreateStmt(_)) || !ctx.is_existing(&table);
            let concurrently = if new_table { "" } else { "CONCURRENTLY " };
            let list = cols.iter().map(|c| ast::ident(c)).collect::<Vec<_>>().join(", ");
            let mut f = Finding::new(&META, format!("no index on {table} ({list}): deletes and key updates on the referenced table scan {table}"))
                .table(table.clone())
                .fix(format!("CREATE INDEX {concurrently}{name} ON {} ({list});", table.clone()));
            f.columns = cols;
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_without_an_index() {
        let f = check_fires("require-fk-covering-index", "CREATE TABLE items (order_id bigint REFERENCES orders (id));");
        assert_eq!(f.fix.as_deref(), Some("CREATE INDEX items_order_id_idx ON items (order_id);"));
    }

    #[test]
    fn ok_when_an_index_follows_or_the_pk_covers_it() {
        check_ok("require-fk-covering-index", "CREATE TABLE items (order_id bigint REFERENCES orders (id));\nCREATE INDEX ON items (order_id);");
        check_ok("require-fk-covering-index", "CREATE TABLE items (order_id bigint REFERENCES orders (id), n int, PRIMARY KEY (order_id, n));");
    }
}
