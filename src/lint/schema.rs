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
    /// The table of each index the migrations created (index key → table
    /// key; an index lives in its table's schema): `DROP INDEX` names only
    /// the index, yet locks its table ACCESS EXCLUSIVE.
    pub indexes: HashMap<String, String>,
    /// The reverse: index keys by table key, so a rename or drop of a
    /// table moves only its own entries.
    pub table_indexes: HashMap<String, Vec<String>>,
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

    /// The table an index is on (as its key), when the migrations created it.
    pub fn index_table(&self, index: &str) -> Option<&str> {
        self.indexes.get(&key(index)).map(String::as_str)
    }

    /// Applies the schema effect of one statement.
    pub fn apply(&mut self, node: &NodeEnum) {
        self.track_indexes(node);
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

    /// Keeps [`Schema::indexes`] in step with `node` (called before the
    /// table map changes, so a dropped or renamed table is still there).
    fn track_indexes(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(rv) = &create.relation else { return };
                for elt in &create.table_elts {
                    match &elt.node {
                        Some(NodeEnum::ColumnDef(col)) => {
                            for c in ast::column_constraints(col) {
                                let cols = std::slice::from_ref(&col.colname);
                                if let Some(name) = constraint_index_name(rv, c, cols) {
                                    self.add_index(rv, &name);
                                }
                            }
                        }
                        Some(NodeEnum::Constraint(c)) => {
                            if let Some(name) = constraint_index_name(rv, c, &ast::strings(&c.keys))
                            {
                                self.add_index(rv, &name);
                            }
                        }
                        _ => {}
                    }
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let Some(rv) = &a.relation else { return };
                for cmd in ast::alter_table(node).map(|(_, c)| c).unwrap_or_default() {
                    if let Some(c) = ast::constraint(cmd) {
                        if let Some(name) = constraint_index_name(rv, c, &ast::strings(&c.keys)) {
                            self.add_index(rv, &name);
                        }
                    } else if let Some(col) =
                        ast::column_def(cmd).filter(|_| ast::is(cmd, AlterTableType::AtAddColumn))
                    {
                        for c in ast::column_constraints(col) {
                            let cols = std::slice::from_ref(&col.colname);
                            if let Some(name) = constraint_index_name(rv, c, cols) {
                                self.add_index(rv, &name);
                            }
                        }
                    } else if ast::is(cmd, AlterTableType::AtDropConstraint) {
                        self.drop_index(&key(&sibling(rv, &cmd.name)));
                    }
                }
            }
            NodeEnum::IndexStmt(index) => {
                let Some(rv) = &index.relation else { return };
                let name = if index.idxname.is_empty() {
                    // PostgreSQL's default: table_col1_col2_idx (`_key` if unique).
                    let cols = ast::index_columns(&index.index_params);
                    let addition = crate::sql::names::name_addition(&cols);
                    crate::sql::names::object_name(
                        &rv.relname,
                        (!cols.is_empty()).then_some(addition.as_str()),
                        "idx",
                    )
                } else {
                    index.idxname.clone()
                };
                self.add_index(rv, &name);
            }
            NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectIndex as i32 => {
                for obj in &drop.objects {
                    if let Some(NodeEnum::List(list)) = &obj.node {
                        self.drop_index(&key(&ast::name(&list.items)));
                    }
                }
            }
            NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectTable as i32 => {
                for obj in &drop.objects {
                    if let Some(NodeEnum::List(list)) = &obj.node {
                        let gone = self.table_indexes.remove(&key(&ast::name(&list.items)));
                        for index in gone.unwrap_or_default() {
                            self.indexes.remove(&index);
                        }
                    }
                }
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectIndex as i32 => {
                let Some(rv) = &r.relation else { return };
                if let Some(table) = self.indexes.remove(&key(&ast::relation(rv))) {
                    let renamed = key(&sibling(rv, &r.newname));
                    self.table_indexes
                        .entry(table.clone())
                        .or_default()
                        .push(renamed.clone());
                    self.indexes.insert(renamed, table);
                }
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTable as i32 => {
                let Some(rv) = &r.relation else { return };
                let new_table = key(&ast::ident(&r.newname));
                if let Some(list) = self.table_indexes.remove(&key(&ast::relation(rv))) {
                    for index in &list {
                        if let Some(table) = self.indexes.get_mut(index) {
                            *table = new_table.clone();
                        }
                    }
                    self.table_indexes.insert(new_table, list);
                }
            }
            _ => {}
        }
    }

    fn drop_index(&mut self, index: &str) {
        if let Some(table) = self.indexes.remove(index) {
            if let Some(list) = self.table_indexes.get_mut(&table) {
                list.retain(|i| i != index);
            }
        }
    }

    fn add_index(&mut self, table: &pg_query::protobuf::RangeVar, name: &str) {
        let table_key = key(&ast::relation(table));
        let index_key = key(&sibling(table, name));
        self.table_indexes
            .entry(table_key.clone())
            .or_default()
            .push(index_key.clone());
        self.indexes.insert(index_key, table_key);
    }
}

/// `name` in `table`'s schema, as SQL.
fn sibling(table: &pg_query::protobuf::RangeVar, name: &str) -> String {
    ast::relation(&pg_query::protobuf::RangeVar {
        relname: name.to_owned(),
        ..table.clone()
    })
}

/// The name of the index a PRIMARY KEY, UNIQUE or EXCLUDE constraint
/// builds, as PostgreSQL names it (`t_pkey`, `t_a_b_key`, `t_a_excl`);
/// `columns` are the constraint's own, or the column it is written on.
fn constraint_index_name(
    table: &pg_query::protobuf::RangeVar,
    c: &pg_query::protobuf::Constraint,
    columns: &[String],
) -> Option<String> {
    let label = if ast::constr_is(c, ConstrType::ConstrPrimary) {
        "pkey"
    } else if ast::constr_is(c, ConstrType::ConstrUnique) {
        "key"
    } else if ast::constr_is(c, ConstrType::ConstrExclusion) {
        "excl"
    } else {
        return None;
    };
    if !c.indexname.is_empty() {
        // USING INDEX: the index is renamed to the constraint's name.
        return Some(if c.conname.is_empty() {
            c.indexname.clone()
        } else {
            c.conname.clone()
        });
    }
    if !c.conname.is_empty() {
        return Some(c.conname.clone());
    }
    let addition = crate::sql::names::name_addition(columns);
    Some(crate::sql::names::object_name(
        &table.relname,
        (label != "pkey" && !columns.is_empty()).then_some(addition.as_str()),
        label,
    ))
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
