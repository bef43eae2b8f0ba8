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
    /// The type as SQL, deparsed as written (`varchar(255)`, `text[]`,
    /// `"Sch".mood`), for rewrites that add a column like it.
    pub type_sql: String,
    /// The default expression, when the history sets one (rewrites that
    /// replace the column put it back; deparsed only then).
    pub default: Option<pg_query::protobuf::Node>,
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
    /// Indexes made by `CREATE INDEX`, to re-create after a column is
    /// replaced (expand/contract type change).
    pub index_defs: Vec<IndexDef>,
    /// The primary key's columns, when the history declares one.
    pub primary_key: Vec<String>,
    /// The partition key's columns, for a partitioned table (expressions
    /// are left out).
    pub partition_key: Vec<String>,
    /// Columns named by a table constraint (PRIMARY KEY, UNIQUE, FOREIGN
    /// KEY, CHECK, EXCLUDE), which dropping the column would drop.
    pub constrained: Vec<String>,
}

/// One `CREATE INDEX` as the history wrote it.
#[derive(Debug, Clone, Default)]
pub struct IndexDef {
    /// Its name as written (empty: PostgreSQL chose it).
    pub name: String,
    /// Every column it names, in keys, expressions and WHERE.
    pub columns: Vec<String>,
    /// The statement as parsed (deparsed only when a rewrite needs it).
    pub stmt: Box<pg_query::protobuf::IndexStmt>,
}

impl IndexDef {
    /// The statement with CONCURRENTLY (and without IF NOT EXISTS).
    pub fn concurrent_sql(&self) -> String {
        let mut concurrent = self.stmt.clone();
        concurrent.concurrent = true;
        concurrent.if_not_exists = false;
        ast::deparse(&NodeEnum::IndexStmt(concurrent))
    }
}

/// The replayed schema: tables by name (unqualified names are keyed as
/// written; `public.x` is stored as `x`).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Tables.
    pub tables: HashMap<String, Table>,
    /// Table of each named index in `Table::index_defs`, so `DROP INDEX`
    /// finds it without looking at every table.
    pub index_tables: HashMap<String, String>,
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
                if let Some(spec) = &create.partspec {
                    table.partition_key = spec
                        .part_params
                        .iter()
                        .filter_map(|p| match &p.node {
                            Some(NodeEnum::PartitionElem(e)) if !e.name.is_empty() => {
                                Some(e.name.clone())
                            }
                            _ => None,
                        })
                        .collect();
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
                    } else if ast::is(cmd, AlterTableType::AtColumnDefault) {
                        let default = cmd.def.as_deref().cloned();
                        table.columns.entry(cmd.name.clone()).or_default().default = default;
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
                            col.type_sql = super::rewrite::type_sql(tn);
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
                let table_key = key(&ast::relation(rv));
                let table = self.tables.entry(table_key.clone()).or_default();
                table.indexes.push(cols);
                table.index_defs.push(IndexDef {
                    name: index.idxname.clone(),
                    columns: column_refs(node),
                    stmt: index.clone(),
                });
                if !index.idxname.is_empty() {
                    let schema = rv.schemaname.clone();
                    self.index_tables
                        .insert(index_key(&schema, &index.idxname), table_key);
                }
            }
            NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectIndex as i32 => {
                for obj in &drop.objects {
                    if let Some(NodeEnum::List(list)) = &obj.node {
                        let parts = ast::strings(&list.items);
                        let (schema, name) = match parts.as_slice() {
                            [s, n] => (s.clone(), n.clone()),
                            [n] => (String::new(), n.clone()),
                            _ => continue,
                        };
                        if let Some(t) = self.index_tables.remove(&index_key(&schema, &name)) {
                            if let Some(table) = self.tables.get_mut(&t) {
                                table.index_defs.retain(|d| d.name != name);
                            }
                        }
                    }
                }
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
    let default = col
        .raw_default
        .as_deref()
        .or_else(|| {
            ast::column_constraints(col)
                .find(|c| ast::constr_is(c, ConstrType::ConstrDefault))
                .and_then(|c| c.raw_expr.as_deref())
        })
        .cloned();
    let mut column = Column {
        type_sql: col
            .type_name
            .as_ref()
            .map(super::rewrite::type_sql)
            .unwrap_or_default(),
        type_name,
        type_mods,
        not_null: col.is_not_null,
        default,
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
        if ast::constr_is(c, ConstrType::ConstrPrimary) {
            table.primary_key = vec![col.colname.clone()];
        }
        if [
            ConstrType::ConstrPrimary,
            ConstrType::ConstrUnique,
            ConstrType::ConstrForeign,
            ConstrType::ConstrCheck,
        ]
        .iter()
        .any(|t| ast::constr_is(c, *t))
        {
            table.constrained.push(col.colname.clone());
        }
    }
    table.columns.insert(col.colname.clone(), column);
}

fn add_constraint(table: &mut Table, c: &pg_query::protobuf::Constraint) {
    if ast::constr_is(c, ConstrType::ConstrPrimary) {
        table.primary_key = ast::strings(&c.keys);
    }
    if !ast::constr_is(c, ConstrType::ConstrNotnull)
        && !ast::constr_is(c, ConstrType::ConstrDefault)
    {
        table.constrained.extend(ast::strings(&c.keys));
        table.constrained.extend(ast::strings(&c.fk_attrs));
        table.constrained.extend(ast::strings(&c.including));
        if let Some(expr) = &c.raw_expr {
            if let Some(inner) = &expr.node {
                table.constrained.extend(column_refs(inner));
            }
        }
        for e in &c.exclusions {
            if let Some(inner) = &e.node {
                table.constrained.extend(column_refs(inner));
            }
        }
    }
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

/// Every column named anywhere below `node` (last part of each ColumnRef,
/// and index keys by name).
fn column_refs(node: &NodeEnum) -> Vec<String> {
    let mut out = Vec::new();
    if let NodeEnum::ColumnRef(c) = node {
        out.extend(ast::strings(&c.fields).last().cloned());
    }
    for (n, _, _, _) in node.nodes() {
        match n {
            pg_query::NodeRef::ColumnRef(c) => out.extend(ast::strings(&c.fields).last().cloned()),
            pg_query::NodeRef::IndexElem(e) if !e.name.is_empty() => out.push(e.name.clone()),
            _ => {}
        }
    }
    out
}

/// `schema.index` (or `index`) as a map key.
fn index_key(schema: &str, name: &str) -> String {
    if schema.is_empty() || schema == "public" {
        name.to_owned()
    } else {
        format!("{schema}.{name}")
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
