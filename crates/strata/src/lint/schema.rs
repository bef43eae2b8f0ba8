//! A small model of the schema, replayed from the migrations' own
//! statements, so that rules know what earlier migrations did: which
//! columns exist and with which types, which validated CHECK constraints
//! prove a column has no NULLs, which indexes cover which columns.

use std::collections::HashMap;

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use super::ast;

/// A column as far as the migrations say.
#[derive(Debug, Clone, Default)]
pub struct Column {
    /// Internal type name (`int4`, `varchar`, ...).
    pub type_name: String,
    /// Type modifiers (`varchar(255)` → `[255]`).
    pub type_mods: Vec<i64>,
    /// NOT NULL.
    pub not_null: bool,
}

/// A table as far as the migrations say.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Columns by name.
    pub columns: HashMap<String, Column>,
    /// Columns proven NOT NULL by a *validated* `CHECK (col IS NOT NULL)`.
    pub checked_not_null: Vec<String>,
    /// Leading columns of each index (and PK/UNIQUE constraint).
    pub indexes: Vec<Vec<String>>,
    /// `CHECK (col IS NOT NULL) NOT VALID` constraints not yet validated:
    /// constraint name → column.
    pub unvalidated_not_null: HashMap<String, String>,
}

/// The replayed schema: tables by name (unqualified names are keyed as
/// written; `public.x` is stored as `x`).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Tables.
    pub tables: HashMap<String, Table>,
}

/// `public.t` and `t` are the same table for our purposes.
pub fn key(name: &str) -> String {
    name.strip_prefix("public.").unwrap_or(name).to_owned()
}

impl Schema {
    /// The table, if the migrations created it.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(&key(name))
    }

    /// Applies the schema effect of one statement.
    pub fn apply(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(rv) = &create.relation else { return };
                let mut table = Table::default();
                for elt in &create.table_elts {
                    match &elt.node {
                        Some(NodeEnum::ColumnDef(col)) => {
                            add_column(&mut table, col);
                        }
                        Some(NodeEnum::Constraint(c)) => add_constraint(&mut table, c),
                        _ => {}
                    }
                }
                self.tables.insert(key(&ast::relation(rv)), table);
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((name, cmds)) = ast::alter_table(node) else {
                    return;
                };
                let table = self.tables.entry(key(&name)).or_default();
                for cmd in cmds {
                    if ast::is(cmd, AlterTableType::AtAddColumn) {
                        if let Some(col) = ast::column_def(cmd) {
                            add_column(table, col);
                        }
                    } else if ast::is(cmd, AlterTableType::AtDropColumn) {
                        table.columns.remove(&cmd.name);
                    } else if ast::is(cmd, AlterTableType::AtSetNotNull) {
                        table.columns.entry(cmd.name.clone()).or_default().not_null = true;
                    } else if ast::is(cmd, AlterTableType::AtDropNotNull) {
                        table.columns.entry(cmd.name.clone()).or_default().not_null = false;
                    } else if ast::is(cmd, AlterTableType::AtAlterColumnType) {
                        if let Some(tn) = ast::column_def(cmd).and_then(|c| c.type_name.as_ref()) {
                            let (t, m) = ast::type_of(tn);
                            let col = table.columns.entry(cmd.name.clone()).or_default();
                            col.type_name = t;
                            col.type_mods = m;
                        }
                    } else if ast::is(cmd, AlterTableType::AtAddConstraint) {
                        if let Some(c) = ast::constraint(cmd) {
                            add_constraint(table, c);
                        }
                    } else if ast::is(cmd, AlterTableType::AtValidateConstraint) {
                        if let Some(col) = table.unvalidated_not_null.remove(&cmd.name) {
                            table.checked_not_null.push(col);
                        }
                    }
                }
            }
            NodeEnum::IndexStmt(index) => {
                let Some(rv) = &index.relation else { return };
                let cols = ast::index_columns(&index.index_params);
                self.tables
                    .entry(key(&ast::relation(rv)))
                    .or_default()
                    .indexes
                    .push(cols);
            }
            NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectTable as i32 => {
                for obj in &drop.objects {
                    if let Some(NodeEnum::List(list)) = &obj.node {
                        let name = ast::name(&list.items);
                        self.tables.remove(&key(&name));
                    }
                }
            }
            NodeEnum::RenameStmt(rename)
                if rename.rename_type == ObjectType::ObjectTable as i32 =>
            {
                if let Some(rv) = &rename.relation {
                    if let Some(t) = self.tables.remove(&key(&ast::relation(rv))) {
                        self.tables.insert(key(&ast::ident(&rename.newname)), t);
                    }
                }
            }
            _ => {}
        }
    }
}

fn add_column(table: &mut Table, col: &pg_query::protobuf::ColumnDef) {
    let (type_name, type_mods) = col.type_name.as_ref().map(ast::type_of).unwrap_or_default();
    let mut column = Column {
        type_name,
        type_mods,
        not_null: col.is_not_null,
    };
    for c in ast::column_constraints(col) {
        if ast::constr_is(c, ConstrType::ConstrNotnull)
            || ast::constr_is(c, ConstrType::ConstrPrimary)
        {
            column.not_null = true;
        }
        if ast::constr_is(c, ConstrType::ConstrPrimary)
            || ast::constr_is(c, ConstrType::ConstrUnique)
        {
            table.indexes.push(vec![col.colname.clone()]);
        }
    }
    table.columns.insert(col.colname.clone(), column);
}

fn add_constraint(table: &mut Table, c: &pg_query::protobuf::Constraint) {
    if ast::constr_is(c, ConstrType::ConstrPrimary) || ast::constr_is(c, ConstrType::ConstrUnique) {
        table.indexes.push(ast::strings(&c.keys));
    }
    if ast::constr_is(c, ConstrType::ConstrCheck) && !c.skip_validation {
        if let Some(col) = c.raw_expr.as_deref().and_then(is_not_null_test) {
            table.checked_not_null.push(col);
        }
    }
    if ast::constr_is(c, ConstrType::ConstrCheck) && c.skip_validation {
        if let Some(col) = c.raw_expr.as_deref().and_then(is_not_null_test) {
            table.unvalidated_not_null.insert(c.conname.clone(), col);
        }
    }
}

/// `col IS NOT NULL` → `col`.
pub fn is_not_null_test(expr: &pg_query::protobuf::Node) -> Option<String> {
    let Some(NodeEnum::NullTest(test)) = &expr.node else {
        return None;
    };
    if test.nulltesttype != pg_query::protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    match test.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::ColumnRef(c)) => ast::strings(&c.fields).last().cloned(),
        _ => None,
    }
}
