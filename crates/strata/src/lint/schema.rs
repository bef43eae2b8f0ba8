//! A small model of the schema, replayed from the migrations' own
//! statements, so that rules know what earlier migrations did: which
//! columns exist and with which types, which validated CHECK constraints
//! prove a column has no NULLs, which indexes cover which columns.

use std::collections::HashMap;

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use super::ast;
use super::name_map::NameMap;
use crate::sql::names;

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
    /// replace the column put it back; deparsed only then). Boxed: a
    /// `Node` is several hundred bytes inline, and a replayed history of
    /// thousands of tables keeps every column.
    pub default: Option<Box<pg_query::protobuf::Node>>,
}

/// A table as far as the migrations say.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Columns by name.
    pub columns: NameMap<Column>,
    /// Columns proven NOT NULL by a *validated* `CHECK (col IS NOT NULL)`.
    pub checked_not_null: Vec<String>,
    /// Leading columns of each index (and PK/UNIQUE constraint).
    pub indexes: Vec<Vec<String>>,
    /// `CHECK (col IS NOT NULL) NOT VALID` constraints not yet validated:
    /// constraint name → column.
    pub unvalidated_not_null: NameMap<String>,
    /// UNIQUE and PRIMARY KEY constraints: name (PostgreSQL's default name
    /// when the migration gave none) → columns. Lets a later DROP
    /// CONSTRAINT say what guarantee it removes.
    pub unique_keys: NameMap<Vec<String>>,
    /// The name of the PRIMARY KEY constraint among `unique_keys`.
    pub primary_key_name: Option<String>,
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

impl Table {
    fn shrink_to_fit(&mut self) {
        self.columns.shrink_to_fit();
        self.checked_not_null.shrink_to_fit();
        self.indexes.shrink_to_fit();
        for cols in &mut self.indexes {
            cols.shrink_to_fit();
        }
        self.unvalidated_not_null.shrink_to_fit();
        self.unique_keys.shrink_to_fit();
        self.index_defs.shrink_to_fit();
        self.primary_key.shrink_to_fit();
        self.partition_key.shrink_to_fit();
        self.constrained.shrink_to_fit();
    }
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
    /// Tables. Boxed: the map keeps room for more entries than it holds,
    /// and a replayed history of thousands of tables would pay a whole
    /// `Table` for each spare slot.
    pub tables: HashMap<String, Box<Table>>,
    /// Volatility ('i', 's', 'v') of the functions the migrations created,
    /// by lower-case unqualified name (as `ast::called_functions` names
    /// calls); without a marker PostgreSQL makes a function VOLATILE. The
    /// newest declaration of a name wins.
    pub functions: HashMap<String, char>,
    /// The table (key) of each index that backs a UNIQUE / PRIMARY KEY
    /// constraint, by the index's key: `ALTER INDEX … RENAME` renames the
    /// constraint too.
    pub unique_key_tables: HashMap<String, String>,
    /// The table of each index the migrations created (index key → table
    /// key; an index lives in its table's schema): `DROP INDEX` names only
    /// the index, yet locks its table ACCESS EXCLUSIVE.
    pub indexes: HashMap<String, String>,
    /// The reverse: index keys by table key, so a rename or drop of a
    /// table moves only its own entries.
    pub table_indexes: HashMap<String, Vec<String>>,
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
        self.tables.get(&key(name)).map(|t| &**t)
    }

    /// The table an index is on (as its key), when the migrations created it.
    pub fn index_table(&self, index: &str) -> Option<&str> {
        self.indexes.get(&key(index)).map(String::as_str)
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
                        self.drop_index(&key(&sibling_of(rv, &cmd.name)));
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
                    let renamed = key(&sibling_of(rv, &r.newname));
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
        let index_key = key(&sibling_of(table, name));
        self.table_indexes
            .entry(table_key.clone())
            .or_default()
            .push(index_key.clone());
        self.indexes.insert(index_key, table_key);
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
                self.tables.insert(key(&ast::relation(rv)), Box::new(table));
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
                        let default = cmd.def.clone();
                        table.columns.entry_or_default(&cmd.name).default = default;
                    } else if ast::is(cmd, AlterTableType::AtSetNotNull) {
                        table.columns.entry_or_default(&cmd.name).not_null = true;
                    } else if ast::is(cmd, AlterTableType::AtDropNotNull) {
                        table.columns.entry_or_default(&cmd.name).not_null = false;
                    } else if ast::is(cmd, AlterTableType::AtAlterColumnType) {
                        if let Some(tn) = ast::column_def(cmd).and_then(|c| c.type_name.as_ref()) {
                            let (t, m) = ast::type_of(tn);
                            let col = table.columns.entry_or_default(&cmd.name);
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
                        if let Some(table) = self.tables.remove(&key(&name)) {
                            self.forget_names(&name, &table);
                        }
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
        self.apply_more(node);
        self.shrink(node);
    }

    /// Gives back the spare room of the table a statement created or
    /// changed: a replayed history keeps every table it leaves, and a
    /// vector's first push reserves room for four.
    fn shrink(&mut self, node: &NodeEnum) {
        let name = match node {
            NodeEnum::CreateStmt(c) => c.relation.as_ref().map(ast::relation),
            NodeEnum::IndexStmt(i) => i.relation.as_ref().map(ast::relation),
            NodeEnum::AlterTableStmt(_) => ast::alter_table(node).map(|(name, _)| name),
            _ => None,
        };
        let Some(table_key) = name.map(|n| key(&n)) else {
            return;
        };
        if let Some(t) = self.tables.get_mut(&table_key) {
            t.shrink_to_fit();
        }
        if let Some(list) = self.table_indexes.get_mut(&table_key) {
            list.shrink_to_fit();
        }
    }

    /// The schema effects kept beside the tables' columns and indexes:
    /// functions' volatility, renamed columns, named unique keys.
    fn apply_more(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateFunctionStmt(f) => {
                if let Some(name) = function_name(&f.funcname) {
                    let v = volatility_option(&f.options).unwrap_or('v');
                    self.functions.insert(name, v);
                }
            }
            NodeEnum::AlterFunctionStmt(f) => {
                let name = f.func.as_ref().and_then(|o| function_name(&o.objname));
                if let (Some(name), Some(v)) = (name, volatility_option(&f.actions)) {
                    self.functions.insert(name, v);
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectFunction as i32 => {
                for obj in &d.objects {
                    if let Some(NodeEnum::ObjectWithArgs(o)) = &obj.node {
                        if let Some(name) = function_name(&o.objname) {
                            self.functions.remove(&name);
                        }
                    }
                }
            }
            NodeEnum::RenameStmt(r)
                if r.rename_type == ObjectType::ObjectColumn as i32
                    && r.relation_type == ObjectType::ObjectTable as i32 =>
            {
                let Some(rv) = &r.relation else { return };
                if let Some(table) = self.tables.get_mut(&key(&ast::relation(rv))) {
                    rename_column(table, &r.subname, &r.newname);
                }
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTabconstraint as i32 => {
                let Some(rv) = &r.relation else { return };
                self.rename_unique_key(&ast::relation(rv), &r.subname, &r.newname);
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectIndex as i32 => {
                let Some(rv) = &r.relation else { return };
                let Some(table) = self
                    .unique_key_tables
                    .get(&key(&ast::relation(rv)))
                    .cloned()
                else {
                    return;
                };
                self.rename_unique_key(&table, &rv.relname, &r.newname);
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTable as i32 => {
                // The table moved to its new name (above); so do its keys.
                let Some(rv) = &r.relation else { return };
                let renamed = ast::relation(&pg_query::protobuf::RangeVar {
                    relname: r.newname.clone(),
                    ..rv.clone()
                });
                self.register_unique_keys(&renamed);
            }
            NodeEnum::CreateStmt(create) => {
                let Some(rv) = &create.relation else { return };
                let Some(table) = self.tables.get_mut(&key(&ast::relation(rv))) else {
                    return;
                };
                for elt in &create.table_elts {
                    match &elt.node {
                        Some(NodeEnum::ColumnDef(col)) => {
                            add_column_keys(table, &rv.relname, col);
                        }
                        Some(NodeEnum::Constraint(c)) => add_unique_key(table, &rv.relname, c),
                        _ => {}
                    }
                }
                self.register_unique_keys(&ast::relation(rv));
            }
            NodeEnum::AlterTableStmt(_) => {
                let Some((name, cmds)) = ast::alter_table(node) else {
                    return;
                };
                let base = ast::base_name(&name);
                let Some(table) = self.tables.get_mut(&key(&name)) else {
                    return;
                };
                let mut added = false;
                let before: Vec<String> = table.unique_keys.keys().cloned().collect();
                for cmd in cmds {
                    if ast::is(cmd, AlterTableType::AtAddColumn) {
                        if let Some(col) = ast::column_def(cmd) {
                            add_column_keys(table, &base, col);
                            added = true;
                        }
                    } else if ast::is(cmd, AlterTableType::AtAddConstraint) {
                        if let Some(c) = ast::constraint(cmd) {
                            add_unique_key(table, &base, c);
                            added = true;
                        }
                    } else if ast::is(cmd, AlterTableType::AtDropConstraint) {
                        table.unique_keys.remove(&cmd.name);
                    } else if ast::is(cmd, AlterTableType::AtDropColumn) {
                        // PostgreSQL drops the keys that use the column.
                        table
                            .unique_keys
                            .retain(|_, cols| !cols.contains(&cmd.name));
                    }
                    if table
                        .primary_key_name
                        .as_ref()
                        .is_some_and(|pk| !table.unique_keys.contains_key(pk))
                    {
                        table.primary_key_name = None;
                    }
                }
                let gone: Vec<&String> = before
                    .iter()
                    .filter(|k| !table.unique_keys.contains_key(k))
                    .collect();
                if !gone.is_empty() {
                    self.forget_unique_keys(&name, &gone);
                }
                if added {
                    self.register_unique_keys(&name);
                }
            }
            _ => {}
        }
    }

    /// Forgets the names that point at a dropped table (`table`, named
    /// as SQL): the indexes backing its unique keys and its named indexes.
    /// The replayed schema then holds what exists, not the history: a
    /// history that creates and drops many tables costs no more than the
    /// tables left.
    fn forget_names(&mut self, name: &str, table: &Table) {
        let table_key = key(name);
        let keys: Vec<&String> = table.unique_keys.keys().collect();
        self.forget_unique_keys(name, &keys);
        let parts = names::parts(name);
        let schema = match parts.as_slice() {
            [schema, _] => schema.as_str(),
            _ => "",
        };
        for def in table.index_defs.iter().filter(|d| !d.name.is_empty()) {
            let index = index_key(schema, &def.name);
            if self.index_tables.get(&index) == Some(&table_key) {
                self.index_tables.remove(&index);
            }
        }
    }

    /// Forgets the indexes of unique keys of `table` (named as SQL) that
    /// were dropped, unless they now back another table's key.
    fn forget_unique_keys(&mut self, table: &str, names: &[&String]) {
        let table_key = key(table);
        for name in names {
            let index = sibling(table, name);
            if self.unique_key_tables.get(&index) == Some(&table_key) {
                self.unique_key_tables.remove(&index);
            }
        }
    }

    /// Records the table of each index backing a unique key of `table`
    /// (named as SQL). Costs the table's keys, not the history.
    fn register_unique_keys(&mut self, table: &str) {
        let table_key = key(table);
        let Some(t) = self.tables.get(&table_key) else {
            return;
        };
        for name in t.unique_keys.keys() {
            self.unique_key_tables
                .insert(sibling(table, name), table_key.clone());
        }
    }

    /// `RENAME CONSTRAINT` (or the rename of its index) of a unique key.
    fn rename_unique_key(&mut self, table: &str, old: &str, new: &str) {
        let Some(t) = self.tables.get_mut(&key(table)) else {
            return;
        };
        let Some(cols) = t.unique_keys.remove(old) else {
            return;
        };
        t.unique_keys.insert(new.to_owned(), cols);
        if t.primary_key_name.as_deref() == Some(old) {
            t.primary_key_name = Some(new.to_owned());
        }
        self.unique_key_tables.remove(&sibling(table, old));
        self.unique_key_tables
            .insert(sibling(table, new), key(table));
    }

    /// The columns of a unique key (UNIQUE or PRIMARY KEY constraint) of
    /// the table, and whether it is the primary key.
    pub fn unique_key(&self, table: &str, name: &str) -> Option<(&Vec<String>, bool)> {
        let t = self.table(table)?;
        let cols = t.unique_keys.get(name)?;
        Some((cols, t.primary_key_name.as_deref() == Some(name)))
    }
}

/// The key of an object named `name` in `table`'s schema (an index).
pub fn sibling(table: &str, name: &str) -> String {
    let mut parts = names::parts(table);
    parts.pop();
    parts.push(name.to_owned());
    key(&names::qualified(&parts))
}

/// The lower-case unqualified name of a function, as calls are looked up.
fn function_name(names: &[pg_query::protobuf::Node]) -> Option<String> {
    ast::strings(names).last().map(|n| n.to_ascii_lowercase())
}

/// `IMMUTABLE` / `STABLE` / `VOLATILE` among a function's options.
fn volatility_option(options: &[pg_query::protobuf::Node]) -> Option<char> {
    options.iter().rev().find_map(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) if d.defname == "volatility" => {
            match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::String(s)) => match s.sval.as_str() {
                    "immutable" => Some('i'),
                    "stable" => Some('s'),
                    "volatile" => Some('v'),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    })
}

/// Moves a column, with its type and everything known about it, to its
/// new name.
fn rename_column(table: &mut Table, old: &str, new: &str) {
    if let Some(col) = table.columns.remove(old) {
        table.columns.insert(new.to_owned(), col);
    }
    let rename = |c: &mut String| {
        if c == old {
            *c = new.to_owned();
        }
    };
    table.checked_not_null.iter_mut().for_each(rename);
    table.unvalidated_not_null.values_mut().for_each(rename);
    for cols in table
        .indexes
        .iter_mut()
        .chain(table.unique_keys.values_mut())
    {
        cols.iter_mut().for_each(rename);
    }
}

/// The unique keys a column's own UNIQUE / PRIMARY KEY declare, named as
/// PostgreSQL names them (`t_col_key`, `t_pkey`).
fn add_column_keys(table: &mut Table, base: &str, col: &pg_query::protobuf::ColumnDef) {
    for c in ast::column_constraints(col) {
        let primary = ast::constr_is(c, ConstrType::ConstrPrimary);
        if !primary && !ast::constr_is(c, ConstrType::ConstrUnique) {
            continue;
        }
        let name = if !c.conname.is_empty() {
            c.conname.clone()
        } else if primary {
            names::object_name(base, None, "pkey")
        } else {
            names::object_name(base, Some(&col.colname), "key")
        };
        if primary {
            table.primary_key_name = Some(name.clone());
        }
        table.unique_keys.insert(name, vec![col.colname.clone()]);
    }
}

/// A table-level UNIQUE / PRIMARY KEY with its columns (not `USING INDEX`,
/// whose columns are the index's).
fn add_unique_key(table: &mut Table, base: &str, c: &pg_query::protobuf::Constraint) {
    let primary = ast::constr_is(c, ConstrType::ConstrPrimary);
    let keys = ast::strings(&c.keys);
    if !primary && !ast::constr_is(c, ConstrType::ConstrUnique) || keys.is_empty() {
        return;
    }
    let name = if !c.conname.is_empty() {
        c.conname.clone()
    } else if primary {
        names::object_name(base, None, "pkey")
    } else {
        names::object_name(base, Some(&names::name_addition(&keys)), "key")
    };
    if primary {
        table.primary_key_name = Some(name.clone());
    }
    table.unique_keys.insert(name, keys);
}

/// `name` in `table`'s schema, as SQL.
fn sibling_of(table: &pg_query::protobuf::RangeVar, name: &str) -> String {
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
    let default = col
        .raw_default
        .as_deref()
        .or_else(|| {
            ast::column_constraints(col)
                .find(|c| ast::constr_is(c, ConstrType::ConstrDefault))
                .and_then(|c| c.raw_expr.as_deref())
        })
        .cloned()
        .map(Box::new);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `sql` statement by statement, as lint does.
    fn replay(schema: &mut Schema, sql: &str) {
        for s in crate::sql::split(sql, &[]).expect("valid SQL") {
            for n in s.nodes().iter().filter_map(|n| n.node.as_ref()) {
                schema.apply(n);
            }
        }
    }

    /// Every name the schema holds, table or index.
    fn names(schema: &Schema) -> usize {
        schema.tables.len()
            + schema.unique_key_tables.len()
            + schema.indexes.len()
            + schema.table_indexes.len()
            + schema.index_tables.len()
    }

    #[test]
    fn a_dropped_table_leaves_nothing_behind() {
        let mut schema = Schema::default();
        replay(
            &mut schema,
            "CREATE TABLE keep (id bigint PRIMARY KEY);
             CREATE INDEX keep_id ON keep (id);",
        );
        let kept = names(&schema);
        // A long history of tables created and dropped again: the replayed
        // schema holds what exists, not the history.
        for i in 0..50 {
            replay(
                &mut schema,
                &format!(
                    "CREATE TABLE s{i} (id bigint PRIMARY KEY, email text UNIQUE);
                     CREATE INDEX s{i}_email ON s{i} (email);
                     ALTER TABLE s{i} ADD CONSTRAINT s{i}_both UNIQUE (id, email);
                     DROP TABLE s{i};
                     CREATE TABLE other.t{i} (id bigint PRIMARY KEY);
                     CREATE INDEX t{i}_id ON other.t{i} (id);
                     DROP TABLE other.t{i};"
                ),
            );
        }
        assert_eq!(names(&schema), kept, "{schema:#?}");
        assert!(schema.table("keep").is_some());
        assert_eq!(schema.index_table("keep_pkey"), Some("keep"));
        assert_eq!(
            schema
                .unique_key_tables
                .get("keep_pkey")
                .map(String::as_str),
            Some("keep")
        );
    }

    #[test]
    fn a_dropped_unique_key_is_forgotten() {
        let mut schema = Schema::default();
        replay(
            &mut schema,
            "CREATE TABLE t (id bigint PRIMARY KEY, email text);
             ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);
             ALTER TABLE t DROP CONSTRAINT t_email_key;",
        );
        assert!(!schema.unique_key_tables.contains_key("t_email_key"));
        assert!(schema.unique_key_tables.contains_key("t_pkey"));
    }
}
