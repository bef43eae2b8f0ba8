//! Backups before steps that lose data: deciding, statement by statement,
//! which tables a migration can destroy rows of, dumping them with
//! `pg_dump -Fc` before the migration starts, checking the dump, listing
//! backups and restoring them.
//!
//! # When the decision is made, and why then
//!
//! What a statement destroys depends on the catalog when it runs, not on
//! the names written in it: `ALTER TABLE t RENAME TO t_old; DROP TABLE
//! t_old;` destroys `t`; a table created by an earlier migration of the same
//! run exists only once that migration committed; a partitioned table's
//! rows live in its partitions. So the decision is not taken when the run
//! is planned. Right before each migration starts (after the previous one
//! committed, after pre-flight), [`before_migration`] reads the catalog
//! ([`catalog::tables`]) and *replays* the migration's statements that are
//! still to run over it ([`Sim`]): CREATE adds a table that holds nothing
//! yet, RENAME and SET SCHEMA move a name, ATTACH/DETACH PARTITION change
//! the tree, DROP removes. Each data-losing statement (DROP TABLE/SCHEMA,
//! DROP COLUMN, a type change, TRUNCATE, DELETE or UPDATE without WHERE, and
//! a DELETE/UPDATE-to-a-constant with WHERE that the planner expects to hit
//! many rows) is resolved, at its own place in that replay, to the tables
//! that exist *now* under other names, with every partition and inheritance
//! child below them. Those are dumped before the migration's first
//! statement.
//!
//! Why not dump right before each statement instead: inside a transactional
//! migration pg_dump runs in another session, which cannot see our
//! uncommitted renames and would wait behind our own ACCESS EXCLUSIVE lock
//! forever. Resolving by replay before BEGIN gives the same answer without
//! either problem, and one backup per migration that is checked (below)
//! before anything runs. Files run outside a transaction are resolved the
//! same way (from the statement a resume starts at), which also keeps one
//! rule for every mode. `SET search_path` in the migration is followed.
//! What replay cannot see: dynamic SQL (`EXECUTE`) and function bodies.
//!
//! Names are the parsed identifiers (schema and name from the parse tree,
//! case and dots kept), matched exactly against the catalog, and handed to
//! pg_dump as fully quoted patterns, so `"Users"` is never `users` and
//! `"my.table"` is one name.
//!
//! # Every backup is checked
//!
//! After pg_dump, `pg_restore --list` must show a `TABLE DATA` entry for
//! every table meant to be in the dump (by oid); otherwise the dump is
//! removed and the migration does not start.
//!
//! A backup is `<backup_dir>/<UTC timestamp>_<version>.dump` (mode 0600,
//! in a 0700 directory) with a `.json` sidecar describing it, and an entry
//! in the event log. A failed backup stops the migration before it runs.
//! `--dry-run` runs the same replay ([`describe`]) over the whole run, so it
//! names the tables the real run will dump.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use pg_query::protobuf::{
    a_const, AlterTableType, DropBehavior, Node, ObjectType, RangeVar, VariableSetKind,
};
use pg_query::NodeEnum;

use super::history::{Event, History};
use super::EngineError;
use crate::config::{BackupPolicy, Config};
use crate::db::dependents::{self, FunctionDef, NotNullName};
use crate::db::{catalog, quote_ident, Connection, Target};
use crate::localpg::{Around, ClientTools, DumpScope};
use crate::source::{Migration, Script};
use crate::sql::Statement;

/// A table as PostgreSQL stores its name: schema and name exactly, with
/// case, dots and quotes kept (no SQL quoting).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// The schema.
    pub schema: String,
    /// The table.
    pub name: String,
}

impl TableName {
    fn new(schema: &str, name: &str) -> TableName {
        TableName {
            schema: schema.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `schema.name`, each part quoted where SQL needs it (`public."Users"`).
    pub fn display(&self) -> String {
        format!(
            "{}.{}",
            crate::lint::ast::ident(&self.schema),
            crate::lint::ast::ident(&self.name)
        )
    }

    /// The pg_dump `--table` pattern that matches exactly this table. Both
    /// parts are double-quoted: outside quotes pg_dump patterns fold case
    /// and treat `.` as the separator and `*`, `?` and regular-expression
    /// characters as wildcards; inside them every character is literal.
    pub fn dump_pattern(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// What to back up before a migration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Need {
    /// Tables to dump, partitions and inheritance children included.
    pub tables: BTreeSet<TableName>,
    /// The objects cannot be narrowed down: dump the whole database.
    pub whole_database: bool,
    /// Why: one entry per statement that loses data.
    pub reasons: Vec<String>,
    /// Dry runs only: statements on tables that do not exist yet, whose
    /// planner estimate can only be taken at run time.
    pub at_run_time: Vec<String>,
}

impl Need {
    fn is_empty(&self) -> bool {
        self.tables.is_empty() && !self.whole_database
    }

    /// The reasons as one line.
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }

    /// What is dumped, as messages say it.
    pub fn what(&self) -> String {
        if self.whole_database {
            "the whole database".to_owned()
        } else {
            self.tables
                .iter()
                .map(TableName::display)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A backup on disk, as described by its `.json` sidecar.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Backup {
    /// The dump file.
    pub file: PathBuf,
    /// When it was taken (UTC, RFC 3339).
    pub created_at: String,
    /// The migration it was taken before, if any (`version_name`).
    pub migration: Option<String>,
    /// Tables dumped (`schema.name`, quoted where SQL needs it); empty
    /// with `whole_database`.
    pub tables: Vec<String>,
    /// True when the whole database was dumped.
    pub whole_database: bool,
    /// Size of the dump in bytes.
    pub bytes: u64,
    /// The database, redacted.
    pub database: String,
    /// Why it was taken.
    pub reason: String,
    /// The functions the dumped tables' triggers call, which `pg_dump
    /// --table` leaves out: a restore recreates those that are gone by
    /// then (a plan's contract phase drops its sync triggers' functions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionDef>,
    /// The dumped tables' NOT NULL constraint names (PostgreSQL 18), which
    /// a restore gives back (see `db::dependents::NotNullName`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_null_names: Vec<NotNullName>,
}

/// One table in the replay.
#[derive(Debug, Clone)]
struct Entry {
    /// Its name at this point of the replay.
    name: TableName,
    /// Its name when the migration being resolved starts: what pg_dump,
    /// which runs before, must be given.
    start: TableName,
    /// In the catalog now (None: created by an earlier migration of a dry run).
    oid: Option<u32>,
    /// Created by the migration being resolved: holds nothing from before it.
    new: bool,
    /// Not dropped yet.
    live: bool,
    /// Partition or inheritance parents, as entry indexes.
    parents: Vec<usize>,
}

/// A data-losing statement, resolved.
#[derive(Debug, Clone, PartialEq)]
enum Loss {
    /// These tables' rows (the statement's table with what lies below it).
    Tables { entries: Vec<usize>, why: String },
    /// Cannot be narrowed down (DROP OWNED, DROP TYPE ... CASCADE).
    Whole(String),
    /// A DELETE/UPDATE with WHERE: backed up when the planner expects it
    /// to hit many rows.
    Estimate {
        /// The statement's table.
        entry: usize,
        /// It with what lies below it, at the statement.
        entries: Vec<usize>,
        /// The table has the name it had when the migration started, so the
        /// statement's text can be planned before the migration runs.
        plannable: bool,
        sql: String,
        why: String,
    },
}

/// The replayed catalog: the tables that exist, under the names they have
/// at the current point of a migration. See the module documentation.
#[derive(Debug, Clone, Default)]
struct Sim {
    entries: Vec<Entry>,
    search_path: Vec<String>,
    /// The session's search path, for `SET search_path TO DEFAULT`.
    initial_search_path: Vec<String>,
    /// Foreign keys: (referencing, referenced) entry indexes.
    references: Vec<(usize, usize)>,
    /// Rows of each catalog table with what lies below it.
    rows: HashMap<u32, i64>,
    /// Entry indexes by their current name (dead ones included; lookups
    /// skip them), so a lookup does not scan every table of a long run.
    by_name: HashMap<TableName, Vec<usize>>,
    /// Entry indexes by parent, for [`Sim::below`].
    children: HashMap<usize, Vec<usize>>,
    /// Entries created or renamed by the migration being replayed: the only
    /// ones [`Sim::next_migration`] has to settle.
    touched: Vec<usize>,
}

impl Sim {
    /// The catalog as it is now.
    fn from_catalog(tables: &catalog::Tables) -> Sim {
        let mut sim = Sim {
            search_path: tables.search_path.clone(),
            initial_search_path: tables.search_path.clone(),
            ..Sim::default()
        };
        let totals = tables.totals();
        let mut by_oid = HashMap::new();
        for t in tables.tables.iter().filter(|t| matches!(t.kind, 'r' | 'p')) {
            by_oid.insert(t.oid, sim.entries.len());
            let name = TableName::new(&t.schema, &t.name);
            sim.by_name
                .entry(name.clone())
                .or_default()
                .push(sim.entries.len());
            sim.entries.push(Entry {
                start: name.clone(),
                name,
                oid: Some(t.oid),
                new: false,
                live: true,
                parents: Vec::new(),
            });
            sim.rows
                .insert(t.oid, totals.get(&t.oid).map_or(0, |t| t.0));
        }
        for (child, parent) in &tables.inherits {
            if let (Some(&c), Some(&p)) = (by_oid.get(child), by_oid.get(parent)) {
                sim.attach(c, p);
            }
        }
        for (from, to) in &tables.references {
            if let (Some(&f), Some(&t)) = (by_oid.get(from), by_oid.get(to)) {
                sim.references.push((f, t));
            }
        }
        sim
    }

    /// Starts the next migration of a replayed run: what earlier ones
    /// created now exists, under the names they left.
    /// Only the entries the last migration created or renamed change, so a
    /// long run costs time in its own statements, not in tables times
    /// migrations.
    fn next_migration(&mut self) {
        self.search_path = self.initial_search_path.clone();
        for i in std::mem::take(&mut self.touched) {
            let e = &mut self.entries[i];
            e.new = false;
            e.start = e.name.clone();
        }
    }

    /// Renames entry `i` (RENAME TO, SET SCHEMA), keeping the name index.
    fn rename(&mut self, i: usize, to: TableName) {
        let old = std::mem::replace(&mut self.entries[i].name, to.clone());
        if let Some(list) = self.by_name.get_mut(&old) {
            list.retain(|&e| e != i);
        }
        self.by_name.entry(to).or_default().push(i);
        self.touched.push(i);
    }

    /// Makes `child` a partition or child of `parent`.
    fn attach(&mut self, child: usize, parent: usize) {
        self.entries[child].parents.push(parent);
        self.children.entry(parent).or_default().push(child);
    }

    fn detach(&mut self, child: usize, parent: usize) {
        self.entries[child].parents.retain(|&p| p != parent);
        if let Some(list) = self.children.get_mut(&parent) {
            list.retain(|&c| c != child);
        }
    }

    /// The live table a name written in SQL refers to: qualified names
    /// exactly, unqualified ones through the search path.
    fn lookup(&self, schema: &str, name: &str) -> Option<usize> {
        let find = |s: &str| {
            let key = TableName::new(s, name);
            let list = self.by_name.get(&key)?;
            list.iter().copied().filter(|&e| self.entries[e].live).min()
        };
        if schema.is_empty() {
            self.search_path.iter().find_map(|s| find(s))
        } else {
            find(schema)
        }
    }

    fn lookup_rv(&self, rv: &RangeVar) -> Option<usize> {
        self.lookup(&rv.schemaname, &rv.relname)
    }

    /// `i` and every live partition or child below it, recursively.
    fn below(&self, i: usize) -> Vec<usize> {
        let mut out = vec![i];
        let mut at = 0;
        while at < out.len() {
            let p = out[at];
            for &c in self.children.get(&p).map_or(&[][..], Vec::as_slice) {
                if self.entries[c].live && !out.contains(&c) {
                    out.push(c);
                }
            }
            at += 1;
        }
        out
    }

    fn create(&mut self, rv: &RangeVar, parents: Vec<usize>) {
        let schema = if !rv.schemaname.is_empty() {
            rv.schemaname.clone()
        } else if rv.relpersistence == "t" {
            "pg_temp".to_owned()
        } else {
            self.search_path
                .first()
                .cloned()
                .unwrap_or_else(|| "public".to_owned())
        };
        let name = TableName::new(&schema, &rv.relname);
        let i = self.entries.len();
        self.by_name.entry(name.clone()).or_default().push(i);
        self.entries.push(Entry {
            start: name.clone(),
            name,
            oid: None,
            new: true,
            live: true,
            parents: Vec::new(),
        });
        for p in parents {
            self.attach(i, p);
        }
        self.touched.push(i);
    }

    fn kill(&mut self, entries: &[usize]) {
        for &e in entries {
            self.entries[e].live = false;
        }
    }

    /// Replays `statements` (of a script whose first line is `first_line`)
    /// and returns what each data-losing one hits.
    fn replay(&mut self, statements: &[Statement], first_line: usize) -> Vec<Loss> {
        let mut out = Vec::new();
        for stmt in statements {
            let line = first_line + stmt.line.saturating_sub(1);
            for node in stmt.nodes().iter().filter_map(|n| n.node.as_ref()) {
                self.statement(node, &stmt.sql, line, &mut out);
            }
            for inner in crate::sql::do_block_statements(stmt) {
                for node in inner.nodes().iter().filter_map(|n| n.node.as_ref()) {
                    self.statement(node, &inner.sql, line, &mut out);
                }
            }
        }
        out
    }

    fn lose(&self, i: usize, why: String, out: &mut Vec<Loss>) {
        let entries: Vec<usize> = self
            .below(i)
            .into_iter()
            .filter(|&e| !self.entries[e].new)
            .collect();
        if !entries.is_empty() {
            out.push(Loss::Tables { entries, why });
        }
    }

    fn estimate(&self, i: usize, sql: &str, why: String) -> Loss {
        let e = &self.entries[i];
        Loss::Estimate {
            entry: i,
            entries: self
                .below(i)
                .into_iter()
                .filter(|&e| !self.entries[e].new)
                .collect(),
            plannable: e.oid.is_some() && e.name == e.start,
            sql: sql.to_owned(),
            why,
        }
    }

    fn statement(&mut self, node: &NodeEnum, sql: &str, line: usize, out: &mut Vec<Loss>) {
        let at = |what: String| format!("line {line}: {what}");
        match node {
            NodeEnum::CreateStmt(c) => {
                let Some(rv) = &c.relation else { return };
                if c.if_not_exists && self.lookup_rv(rv).is_some() {
                    return;
                }
                let parents = c
                    .inh_relations
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::RangeVar(p)) => self.lookup_rv(p),
                        _ => None,
                    })
                    .collect();
                self.create(rv, parents);
            }
            NodeEnum::CreateTableAsStmt(c) if c.objtype == ObjectType::ObjectTable as i32 => {
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.create(rv, Vec::new());
                }
            }
            NodeEnum::SelectStmt(s) => {
                if let Some(rv) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.create(rv, Vec::new());
                }
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTable as i32 => {
                if let Some(i) = r.relation.as_ref().and_then(|rv| self.lookup_rv(rv)) {
                    let to = TableName::new(&self.entries[i].name.schema, &r.newname);
                    self.rename(i, to);
                }
            }
            NodeEnum::AlterObjectSchemaStmt(a)
                if a.object_type == ObjectType::ObjectTable as i32 =>
            {
                if let Some(i) = a.relation.as_ref().and_then(|rv| self.lookup_rv(rv)) {
                    let to = TableName::new(&a.newschema, &self.entries[i].name.name);
                    self.rename(i, to);
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
                for obj in &d.objects {
                    let Some(NodeEnum::List(l)) = &obj.node else {
                        continue;
                    };
                    let parts = strings(&l.items);
                    let (schema, name) = match parts.as_slice() {
                        [name] => ("", name.as_str()),
                        [.., schema, name] => (schema.as_str(), name.as_str()),
                        [] => continue,
                    };
                    let Some(i) = self.lookup(schema, name) else {
                        continue;
                    };
                    let shown = self.entries[i].name.display();
                    self.lose(i, at(format!("DROP TABLE {shown}")), out);
                    let gone = self.below(i);
                    self.kill(&gone);
                }
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectSchema as i32 => {
                for obj in &d.objects {
                    let Some(NodeEnum::String(s)) = &obj.node else {
                        continue;
                    };
                    let inside: Vec<usize> = (0..self.entries.len())
                        .filter(|&e| self.entries[e].live && self.entries[e].name.schema == s.sval)
                        .collect();
                    for &e in &inside {
                        let shown = self.entries[e].name.display();
                        self.lose(
                            e,
                            at(format!(
                                "DROP SCHEMA {} drops {shown}",
                                crate::lint::ast::ident(&s.sval)
                            )),
                            out,
                        );
                    }
                    self.kill(&inside);
                }
            }
            NodeEnum::DropStmt(d)
                if d.behavior == DropBehavior::DropCascade as i32
                    && [
                        ObjectType::ObjectType,
                        ObjectType::ObjectDomain,
                        ObjectType::ObjectExtension,
                    ]
                    .iter()
                    .any(|t| d.remove_type == *t as i32) =>
            {
                out.push(Loss::Whole(at(
                    "DROP ... CASCADE of a type, domain or extension drops the columns and tables that use it".into(),
                )));
            }
            NodeEnum::DropOwnedStmt(_) => {
                out.push(Loss::Whole(at(
                    "DROP OWNED drops every table the role owns".into(),
                )));
            }
            NodeEnum::TruncateStmt(t) => {
                let cascade = t.behavior == DropBehavior::DropCascade as i32;
                let mut hit: Vec<usize> = t
                    .relations
                    .iter()
                    .filter_map(|n| match &n.node {
                        Some(NodeEnum::RangeVar(rv)) => self.lookup_rv(rv),
                        _ => None,
                    })
                    .collect();
                if cascade {
                    // CASCADE empties every table that references them, recursively.
                    let mut at_ = 0;
                    while at_ < hit.len() {
                        let to = hit[at_];
                        for &(from, target) in &self.references {
                            if target == to && self.entries[from].live && !hit.contains(&from) {
                                hit.push(from);
                            }
                        }
                        at_ += 1;
                    }
                }
                for i in hit {
                    let shown = self.entries[i].name.display();
                    self.lose(i, at(format!("TRUNCATE {shown}")), out);
                }
            }
            NodeEnum::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
                let Some(i) = a.relation.as_ref().and_then(|rv| self.lookup_rv(rv)) else {
                    return;
                };
                for cmd in &a.cmds {
                    let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node else {
                        continue;
                    };
                    let shown = self.entries[i].name.display();
                    let col = crate::lint::ast::ident(&c.name);
                    if c.subtype == AlterTableType::AtDropColumn as i32 {
                        self.lose(i, at(format!("ALTER TABLE {shown} DROP COLUMN {col}")), out);
                    } else if c.subtype == AlterTableType::AtAlterColumnType as i32 {
                        if !lossless_type_change(c.def.as_deref()) {
                            self.lose(
                                i,
                                at(format!("ALTER TABLE {shown} ALTER COLUMN {col} TYPE")),
                                out,
                            );
                        }
                    } else if c.subtype == AlterTableType::AtAttachPartition as i32 {
                        if let Some(child) =
                            partition_cmd(c.def.as_deref()).and_then(|rv| self.lookup_rv(rv))
                        {
                            self.attach(child, i);
                        }
                    } else if c.subtype == AlterTableType::AtDetachPartition as i32 {
                        if let Some(child) =
                            partition_cmd(c.def.as_deref()).and_then(|rv| self.lookup_rv(rv))
                        {
                            self.detach(child, i);
                        }
                    }
                }
            }
            NodeEnum::VariableSetStmt(v) if v.name == "search_path" => {
                if v.kind == VariableSetKind::VarSetValue as i32 {
                    // "$user" is left out: which role runs is not known here.
                    self.search_path = v
                        .args
                        .iter()
                        .filter_map(|a| match &a.node {
                            Some(NodeEnum::AConst(c)) => match &c.val {
                                Some(a_const::Val::Sval(s)) => Some(s.sval.clone()),
                                _ => None,
                            },
                            _ => None,
                        })
                        .filter(|s| s != "$user")
                        .collect();
                } else if v.kind == VariableSetKind::VarSetDefault as i32
                    || v.kind == VariableSetKind::VarReset as i32
                {
                    self.search_path = self.initial_search_path.clone();
                }
            }
            NodeEnum::DeleteStmt(d) => {
                let Some(i) = d.relation.as_ref().and_then(|rv| self.lookup_rv(rv)) else {
                    return;
                };
                let shown = self.entries[i].name.display();
                if d.where_clause.is_none() {
                    self.lose(i, at(format!("DELETE FROM {shown} without WHERE")), out);
                } else if !self.entries[i].new {
                    out.push(self.estimate(i, sql, at(format!("DELETE FROM {shown} WHERE ..."))));
                }
            }
            NodeEnum::UpdateStmt(u) => {
                let Some(i) = u.relation.as_ref().and_then(|rv| self.lookup_rv(rv)) else {
                    return;
                };
                let shown = self.entries[i].name.display();
                if u.where_clause.is_none() {
                    self.lose(i, at(format!("UPDATE {shown} without WHERE")), out);
                } else if !self.entries[i].new && overwrites_with_constant(&u.target_list) {
                    out.push(self.estimate(
                        i,
                        sql,
                        at(format!("UPDATE {shown} SET ... = constant WHERE ...")),
                    ));
                }
            }
            _ => {}
        }
    }
}

fn strings(items: &[Node]) -> Vec<String> {
    items
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn partition_cmd(def: Option<&Node>) -> Option<&RangeVar> {
    match def?.node.as_ref()? {
        NodeEnum::PartitionCmd(p) => p.name.as_ref(),
        _ => None,
    }
}

/// A type change that cannot alter any value: to `text`, or to `varchar`
/// or `numeric` without a limit, with no USING expression. Anything else
/// may round, truncate or convert values (`numeric(10,2)`, `timestamp(0)`,
/// a USING clause), so it is backed up.
fn lossless_type_change(def: Option<&Node>) -> bool {
    let Some(NodeEnum::ColumnDef(c)) = def.and_then(|d| d.node.as_ref()) else {
        return false;
    };
    let Some(t) = &c.type_name else { return false };
    let names = strings(&t.names);
    c.raw_default.is_none()
        && t.array_bounds.is_empty()
        && match names.last().map(String::as_str) {
            Some("text") => true,
            Some("varchar") | Some("numeric") => t.typmods.is_empty(),
            _ => false,
        }
}

/// True when an UPDATE sets some column to a constant, NULL or DEFAULT:
/// the old values of that column are gone.
fn overwrites_with_constant(targets: &[Node]) -> bool {
    fn constant(node: Option<&Node>) -> bool {
        match node.and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::AConst(_)) | Some(NodeEnum::SetToDefault(_)) => true,
            Some(NodeEnum::TypeCast(t)) => constant(t.arg.as_deref()),
            _ => false,
        }
    }
    targets.iter().any(|t| match &t.node {
        Some(NodeEnum::ResTarget(r)) => constant(r.val.as_deref()),
        _ => false,
    })
}

/// Resolves the losses of one migration into a [`Need`]: planner estimates
/// where asked (`explain`), names as they are when the migration starts.
async fn decide(
    config: &Config,
    conn: &Connection,
    sim: &Sim,
    losses: Vec<Loss>,
    dry_run: bool,
) -> Need {
    let mut need = Need::default();
    let add = |need: &mut Need, entries: &[usize]| {
        for &e in entries {
            need.tables.insert(sim.entries[e].start.clone());
        }
    };
    for loss in losses {
        match loss {
            Loss::Whole(why) => {
                need.whole_database = true;
                need.reasons.push(why);
            }
            Loss::Tables { entries, why } => {
                add(&mut need, &entries);
                need.reasons.push(why);
            }
            Loss::Estimate {
                entry,
                entries,
                plannable,
                sql,
                why,
            } => {
                let e = &sim.entries[entry];
                let Some(oid) = e.oid else {
                    if dry_run {
                        need.at_run_time.push(format!(
                            "{why}: backed up if the planner then expects more than {} rows or 10 % of {}",
                            config.backup_min_rows,
                            e.start.display()
                        ));
                    }
                    continue;
                };
                // Planning the text now would plan another table (or none)
                // if an earlier statement renamed this one: then it is
                // backed up without an estimate.
                let estimate = if plannable {
                    catalog::estimated_rows(conn, &sql).await
                } else {
                    None
                };
                let rows = sim.rows.get(&oid).copied().unwrap_or(0);
                match estimate {
                    Some(est) => {
                        if est > config.backup_min_rows as f64 || est * 10.0 > rows as f64 {
                            add(&mut need, &entries);
                            need.reasons.push(format!(
                                "{why} (planner: ~{est:.0} of ~{rows} rows; backup_min_rows = {})",
                                config.backup_min_rows
                            ));
                        }
                    }
                    None => {
                        add(&mut need, &entries);
                        need.reasons
                            .push(format!("{why} (no planner estimate before it runs)"));
                    }
                }
            }
        }
    }
    need
}

/// What to back up before `statements` (the ones still to run, of
/// `script`) run, decided from the catalog now. `None` when nothing.
pub(super) async fn before_migration(
    config: &Config,
    conn: &Connection,
    script: &Script,
    statements: &[Statement],
) -> Result<Option<Need>, EngineError> {
    match config.backup {
        BackupPolicy::Never => Ok(None),
        BackupPolicy::Always => Ok(Some(always())),
        BackupPolicy::Auto => {
            // Most migrations lose nothing: spare them the catalog read.
            if !statements.iter().any(might_lose) {
                return Ok(None);
            }
            let tables = catalog::tables(conn, catalog::Sizes::None).await?;
            let mut sim = Sim::from_catalog(&tables);
            let losses = sim.replay(statements, script.first_line);
            let need = decide(config, conn, &sim, losses, false).await;
            Ok((!need.is_empty()).then_some(need))
        }
    }
}

/// What `up` would back up before `m` if it ran now (`strata spec`): the
/// same decision [`before_migration`] makes right before the step.
pub async fn decision(
    config: &Config,
    conn: &Connection,
    m: &Migration,
) -> Result<Option<Need>, EngineError> {
    let statements = super::apply::parse(&m.up)?;
    before_migration(config, conn, &m.up, &statements).await
}

/// Cheap pre-check: could this statement (or a statement of its DO block)
/// lose data at all, whatever the catalog says?
fn might_lose(stmt: &Statement) -> bool {
    let lossy = |node: &NodeEnum| match node {
        NodeEnum::DropStmt(_)
        | NodeEnum::DropOwnedStmt(_)
        | NodeEnum::TruncateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::UpdateStmt(_) => true,
        NodeEnum::AlterTableStmt(a) => a.cmds.iter().any(|c| {
            matches!(&c.node, Some(NodeEnum::AlterTableCmd(c))
                if c.subtype == AlterTableType::AtDropColumn as i32
                    || c.subtype == AlterTableType::AtAlterColumnType as i32)
        }),
        _ => false,
    };
    let any = |s: &Statement| s.nodes().iter().filter_map(|n| n.node.as_ref()).any(lossy);
    any(stmt)
        || (stmt
            .nodes()
            .iter()
            .any(|n| matches!(n.node, Some(NodeEnum::DoStmt(_))))
            && crate::sql::do_block_statements(stmt).iter().any(any))
}

fn always() -> Need {
    Need {
        whole_database: true,
        reasons: vec!["backup = \"always\"".into()],
        ..Need::default()
    }
}

/// For `--dry-run`: replays the planned steps in order over the catalog
/// as it is now, exactly as [`before_migration`] will before each of them,
/// and says for each what will be backed up, as dry-run text. Steps are
/// described one at a time, as the dry run prints them, so their
/// statements need not all be held at once (`engine::statements`).
pub(super) struct Describer<'c> {
    config: &'c Config,
    /// The replay, from the catalog read at the first step.
    sim: Option<Sim>,
}

impl<'c> Describer<'c> {
    pub fn new(config: &'c Config) -> Describer<'c> {
        Describer { config, sim: None }
    }

    /// What will be backed up before the next step: `pending` are its
    /// statements still to run, of a script starting at `first_line`
    /// (`None`: a step without a script, which only counts as a step).
    pub async fn next(
        &mut self,
        conn: &Connection,
        first_line: Option<usize>,
        pending: &[Statement],
    ) -> Result<Option<String>, EngineError> {
        let config = self.config;
        if config.backup == BackupPolicy::Never {
            return Ok(None);
        }
        let sim = match &mut self.sim {
            Some(sim) => sim,
            None => {
                let tables = catalog::tables(conn, catalog::Sizes::None).await?;
                self.sim.insert(Sim::from_catalog(&tables))
            }
        };
        sim.next_migration();
        let Some(first_line) = first_line else {
            return Ok(None);
        };
        let losses = sim.replay(pending, first_line);
        let need = if config.backup == BackupPolicy::Always {
            always()
        } else {
            decide(config, conn, sim, losses, true).await
        };
        let mut text = String::new();
        if !need.is_empty() {
            text.push_str(&format!(
                "-- backup first: {}\n--   pg_dump --format=custom unless those tables hold no rows by then, checked with pg_restore --list; because {}\n",
                need.what(),
                need.reason()
            ));
        }
        for note in &need.at_run_time {
            text.push_str(&format!("-- backup decided at run time: {note}\n"));
        }
        Ok((!text.is_empty()).then_some(text))
    }
}

/// Parses a table name as SQL would (`users`, `"Users"`, `app."my.table"`):
/// (schema or empty, name).
fn parse_name(text: &str) -> Option<(String, String)> {
    let tree = pg_query::parse(&format!("TABLE {text}"), 0).ok()?;
    let stmt = tree.protobuf.stmts.first()?.stmt.as_ref()?.node.as_ref()?;
    let NodeEnum::SelectStmt(s) = stmt else {
        return None;
    };
    if tree.protobuf.stmts.len() != 1 || s.from_clause.len() != 1 {
        return None;
    }
    match s.from_clause[0].node.as_ref()? {
        NodeEnum::RangeVar(rv) if rv.catalogname.is_empty() => {
            Some((rv.schemaname.clone(), rv.relname.clone()))
        }
        _ => None,
    }
}

/// `strata backup`: dumps `names` (SQL names: `users`, `"Users"`,
/// `app.orders`; every table when empty) with their partitions and
/// children, now.
pub(super) async fn manual(
    config: &Config,
    target: &Target,
    names: &[String],
    history: &History,
    actor: &str,
) -> Result<Option<Backup>, EngineError> {
    let conn = target.connect().await?;
    let mut need = Need {
        whole_database: names.is_empty(),
        reasons: vec!["manual backup".into()],
        ..Need::default()
    };
    if !names.is_empty() {
        let sim = Sim::from_catalog(&catalog::tables(&conn, catalog::Sizes::None).await?);
        let mut missing = Vec::new();
        for n in names {
            match parse_name(n).and_then(|(s, t)| sim.lookup(&s, &t)) {
                Some(i) => {
                    for e in sim.below(i) {
                        need.tables.insert(sim.entries[e].start.clone());
                    }
                }
                None => missing.push(n.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(EngineError::Backup {
                migration: None,
                what: names.join(", "),
                message: format!("no such table: {}", missing.join(", ")),
                help: "check the names, written as in SQL (schema.table; \"Mixed Case\" in double quotes); `strata backup` with no --table dumps the whole database".into(),
            });
        }
    }
    take(config, target, &conn, Some((history, actor)), &need, None).await
}

/// Removes partial dumps left by a backup whose Strata was killed (their
/// pg_dump died with it); returns a notice when there were any.
pub(super) fn sweep(config: &Config) -> Option<String> {
    let removed = crate::localpg::remove_stale_partials(&config.backup_dir);
    (!removed.is_empty()).then(|| {
        format!(
            "removed {} partial backup file(s) left by an interrupted backup: {}",
            removed.len(),
            removed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Takes a backup of `need` before `migration` (or a manual one), checks
/// it, and records it in the event log when `history` is given. Tables
/// that no longer exist are skipped; `Ok(None)` when nothing is left.
pub async fn take(
    config: &Config,
    target: &Target,
    conn: &Connection,
    history: Option<(&History, &str)>,
    need: &Need,
    migration: Option<&Migration>,
) -> Result<Option<Backup>, EngineError> {
    let label = migration.map(Migration::label);
    let what = need.what();
    let fail = |message: String, help: &str| EngineError::Backup {
        migration: label.clone(),
        what: what.clone(),
        message,
        help: help.to_owned(),
    };
    let catalog_now = catalog::tables(conn, catalog::Sizes::None).await?;
    // The tables whose rows must be in the dump, by oid.
    let (names, expected, chosen_oids): (Vec<TableName>, Vec<(u32, TableName)>, Vec<u32>) = {
        let chosen: Vec<&catalog::Relation> = if need.whole_database {
            catalog_now
                .tables
                .iter()
                .filter(|t| t.persistence != 't' && !t.extension_member)
                .collect()
        } else {
            catalog_now
                .tables
                .iter()
                .filter(|t| need.tables.contains(&TableName::new(&t.schema, &t.name)))
                .collect()
        };
        (
            chosen
                .iter()
                .map(|t| TableName::new(&t.schema, &t.name))
                .collect(),
            chosen
                .iter()
                .filter(|t| t.kind == 'r')
                .map(|t| (t.oid, TableName::new(&t.schema, &t.name)))
                .collect(),
            chosen.iter().map(|t| t.oid).collect(),
        )
    };
    let mut names = names;
    names.sort();
    if !need.whole_database && names.is_empty() {
        return Ok(None);
    }
    // Before a migration, tables without a single row (a fresh database
    // being bootstrapped, a table created moments ago) have nothing to
    // lose: a dump would hold no data and cost a pg_dump per migration.
    // File sizes, not statistics, decide; when they cannot be read, dump.
    if migration.is_some() && !need.whole_database {
        let oids: Vec<u32> = expected.iter().map(|(oid, _)| *oid).collect();
        if catalog::heap_bytes(conn, &oids).await == Some(0) {
            return Ok(None);
        }
    }
    let tools = ClientTools::find(config.pg_bindir.as_deref()).map_err(|e| {
        fail(
            e.to_string(),
            "install the PostgreSQL client tools, set pg_bindir, or set backup = \"never\"",
        )
    })?;
    let server = catalog::server_version_num(conn).await? / 10_000;
    let dump_major = tools
        .pg_dump_major()
        .map_err(|e| fail(e.to_string(), "check pg_bindir"))?;
    if (dump_major as i32) < server {
        return Err(fail(
            format!("pg_dump {dump_major} is older than the server ({server}), and pg_dump cannot dump a newer server"),
            &format!("install the client tools of PostgreSQL {server} or newer (e.g. `apt-get install postgresql-client-{server}`) and point pg_bindir at them, or set backup = \"never\""),
        ));
    }
    let dir = &config.backup_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            fail(
                format!("cannot create {}: {e}", dir.display()),
                "check the directory's permissions, or set backup_dir",
            )
        })?;
    crate::localpg::remove_stale_partials(dir);
    let now = chrono::Utc::now();
    let stem = format!(
        "{}_{}",
        now.format("%Y%m%d%H%M%S"),
        migration
            .map(|m| m.version.canonical())
            .unwrap_or_else(|| "manual".into())
    );
    let mut file = dir.join(format!("{stem}.dump"));
    let mut n = 2;
    while file.exists() || file.with_extension("dump.partial").exists() {
        file = dir.join(format!("{stem}_{n}.dump"));
        n += 1;
    }
    // Every table is named: pg_dump --table of a partitioned or
    // inheritance parent dumps the parent alone (before pg_dump 16's
    // --table-and-children, and that flag would not let us check the result).
    let scope = DumpScope {
        tables: if need.whole_database {
            Vec::new()
        } else {
            names.iter().map(TableName::dump_pattern).collect()
        },
        schemas: Vec::new(),
    };
    let env = target.libpq_env();
    let path = file.clone();
    let check_tools = tools.clone();
    let bytes = tokio::task::spawn_blocking(move || tools.dump(&env, &scope, &path))
        .await
        .map_err(|e| fail(e.to_string(), "run it again"))?
        .map_err(|e| {
            fail(
                e.to_string(),
                "fix the cause above, or set backup = \"never\" to run without a backup",
            )
        })?;
    let path = file.clone();
    let listed = tokio::task::spawn_blocking(move || check_tools.data_oids(&path))
        .await
        .map_err(|e| fail(e.to_string(), "run it again"));
    // A table another session dropped meanwhile is not missing from the dump.
    let still: HashSet<u32> = catalog::tables(conn, catalog::Sizes::None)
        .await?
        .tables
        .iter()
        .map(|t| t.oid)
        .collect();
    let missing: Vec<String> = match &listed {
        Ok(Ok(oids)) => expected
            .iter()
            .filter(|(oid, _)| !oids.contains(oid) && still.contains(oid))
            .map(|(_, n)| n.display())
            .collect(),
        _ => Vec::new(),
    };
    let problem = match listed {
        Err(e) => Some(e.to_string()),
        Ok(Err(e)) => Some(format!("cannot read it back: {e}")),
        Ok(Ok(_)) if !missing.is_empty() => Some(format!(
            "the dump {} holds no rows of {} (pg_restore --list shows no TABLE DATA entry for it), so it could not restore them",
            file.display(),
            missing.join(", ")
        )),
        Ok(Ok(_)) => None,
    };
    if let Some(message) = problem {
        let _ = std::fs::remove_file(&file);
        return Err(fail(
            message,
            "check pg_bindir (a pg_dump wrapper or an old pg_dump can leave data out) and the pg_dump options; nothing was changed",
        ));
    }
    let backup = Backup {
        file: file.clone(),
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        migration: label.clone(),
        tables: if need.whole_database {
            Vec::new()
        } else {
            names.iter().map(TableName::display).collect()
        },
        whole_database: need.whole_database,
        bytes,
        database: target.to_string(),
        reason: need.reason(),
        // A whole-database dump holds every function itself.
        functions: if need.whole_database {
            Vec::new()
        } else {
            dependents::trigger_functions(conn, &chosen_oids).await?
        },
        not_null_names: dependents::not_null_names(conn, &chosen_oids).await?,
    };
    write_sidecar(&backup).map_err(|e| fail(e, "check the directory's permissions"))?;
    if let Some((history, actor)) = history {
        history.ensure(conn).await?;
        history
            .event(
                conn,
                actor,
                &Event {
                    action: "backup",
                    migration,
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({
                        "file": backup.file.display().to_string(),
                        "tables": backup.tables,
                        "whole_database": backup.whole_database,
                        "bytes": backup.bytes,
                        "reason": backup.reason,
                    }),
                },
            )
            .await?;
    }
    Ok(Some(backup))
}

fn sidecar(file: &Path) -> PathBuf {
    file.with_extension("json")
}

fn write_sidecar(backup: &Backup) -> Result<(), String> {
    use std::io::Write;
    let path = sidecar(&backup.file);
    let text = serde_json::to_string_pretty(backup).map_err(|e| e.to_string())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Every backup in the configured directory, oldest first. A dump without
/// a readable sidecar is listed with what its file tells.
pub fn list(config: &Config) -> Vec<Backup> {
    let mut out: Vec<Backup> = std::fs::read_dir(&config.backup_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .map(|file| {
            std::fs::read_to_string(sidecar(&file))
                .ok()
                .and_then(|t| serde_json::from_str::<Backup>(&t).ok())
                .map(|b| Backup {
                    file: file.clone(),
                    ..b
                })
                .unwrap_or_else(|| Backup {
                    bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
                    file: file.clone(),
                    created_at: String::new(),
                    migration: None,
                    tables: Vec::new(),
                    whole_database: false,
                    database: String::new(),
                    reason: "no description (.json) next to the dump".into(),
                    functions: Vec::new(),
                    not_null_names: Vec::new(),
                })
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Restores `file` (only `tables`, when given) into the target database in
/// one transaction; records the restore in the event log.
pub async fn restore(
    config: &Config,
    target: &Target,
    history: &History,
    file: &Path,
    tables: &[String],
) -> Result<(), EngineError> {
    let bad = |message: String| EngineError::BadBackup {
        path: file.to_path_buf(),
        message,
    };
    if !file.is_file() {
        return Err(bad("no such file".into()));
    }
    let tools = ClientTools::find(config.pg_bindir.as_deref())?;
    let contents = {
        let (tools, file) = (tools.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || tools.tables_in(&file))
            .await
            .map_err(|e| bad(e.to_string()))?
            .map_err(|e| bad(format!("not a pg_dump custom-format file ({e})")))?
    };
    for t in tables {
        let bare = t.rsplit('.').next().unwrap_or(t);
        if !contents
            .iter()
            .any(|c| c == t || c.rsplit('.').next() == Some(bare))
        {
            return Err(bad(format!(
                "it holds no table {t} (it holds: {})",
                if contents.is_empty() {
                    "no tables".to_owned()
                } else {
                    contents.join(", ")
                }
            )));
        }
    }
    // pg_restore --table of a partitioned or inheritance parent restores
    // the parent alone, and --clean first drops it with every partition in
    // the database: name its partitions and children too.
    let names = if tables.is_empty() {
        Vec::new()
    } else {
        let script = {
            let (tools, file) = (tools.clone(), file.to_path_buf());
            tokio::task::spawn_blocking(move || tools.schema_script(&file))
                .await
                .map_err(|e| bad(e.to_string()))?
                .map_err(|e| bad(e.to_string()))?
        };
        with_children(tables, &script)
    };
    let conn = target.connect().await?;
    let server_major = crate::db::catalog::server_version_num(&conn).await? as u32 / 10000;
    let around = around_restore(&conn, file, &contents, &names).await?;
    let env = target.libpq_env();
    let path = file.to_path_buf();
    let lifted_keys = !around.after.is_empty();
    tokio::task::spawn_blocking(move || tools.restore(&env, &path, &names, server_major, &around))
        .await
        .map_err(|e| bad(e.to_string()))?
        .map_err(|e| match e.to_string() {
            // A foreign key put back after the restore found rows written
            // since the backup that reference rows it does not hold.
            text if lifted_keys && text.contains("violates foreign key constraint") => {
                EngineError::RestoreConflict {
                    path: file.to_path_buf(),
                    detail: text
                        .lines()
                        .filter(|l| l.starts_with("ERROR:") || l.starts_with("DETAIL:"))
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                }
            }
            _ => EngineError::from(e),
        })?;
    history.ensure(&conn).await?;
    history
        .event(
            &conn,
            &super::os_actor(),
            &Event {
                action: "restore",
                migration: None,
                success: true,
                duration_ms: None,
                details: serde_json::json!({ "file": file.display().to_string(), "tables": tables }),
            },
        )
        .await?;
    Ok(())
}

/// What the restore runs before and after the dump's own script, in its
/// transaction, because a table-level dump does not hold it: the trigger
/// functions recorded with the backup that are gone now (created first),
/// and other tables' foreign keys into the restored tables (lifted first,
/// so that `--clean` can drop the primary keys they depend on, and put
/// back last, checked against the restored rows).
async fn around_restore(
    conn: &Connection,
    file: &Path,
    contents: &[String],
    chosen: &[String],
) -> Result<Around, EngineError> {
    let (recorded, not_null): (Vec<FunctionDef>, Vec<NotNullName>) =
        std::fs::read_to_string(sidecar(file))
            .ok()
            .and_then(|t| serde_json::from_str::<Backup>(&t).ok())
            .map(|b| (b.functions, b.not_null_names))
            .unwrap_or_default();
    let mut before: String = dependents::missing_functions(conn, &recorded)
        .await?
        .iter()
        .map(|f| format!("{};\n", f.definition.trim_end().trim_end_matches(';')))
        .collect();
    // `contents` reads "schema.name" (pg_restore --list); `chosen` holds
    // the bare names picked by --table, empty for the whole dump.
    let restored: Vec<(String, String)> = contents
        .iter()
        .filter_map(|c| c.split_once('.'))
        .filter(|(_, name)| chosen.is_empty() || chosen.iter().any(|c| c == name))
        .map(|(s, n)| (s.to_owned(), n.to_owned()))
        .collect();
    let keys = dependents::foreign_keys_into(conn, &restored).await?;
    let mut after = String::new();
    for k in &keys {
        before.push_str(&k.drop_sql());
        before.push('\n');
        after.push_str(&k.add_sql());
        after.push('\n');
    }
    // Only the restored tables' names are given back.
    let restored_names: Vec<NotNullName> = not_null
        .into_iter()
        .filter(|n| {
            restored
                .iter()
                .any(|(s, t)| *s == n.schema && *t == n.table)
        })
        .collect();
    if let Some(sql) = dependents::rename_not_null_sql(&restored_names) {
        after.push_str(&sql);
        after.push('\n');
    }
    Ok(Around { before, after })
}

/// `tables` (as given to `restore --table`: `name` or `schema.name`) as
/// bare names for pg_restore, with every partition and inheritance child
/// the dump's DDL (`script`) attaches below them, recursively.
fn with_children(tables: &[String], script: &str) -> Vec<String> {
    // psql meta-commands (`\restrict` in recent pg_restore output) are not SQL.
    let sql: String = script
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut edges: Vec<(String, String)> = Vec::new();
    if let Ok(tree) = pg_query::parse(&sql, 0) {
        for raw in &tree.protobuf.stmts {
            match raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
                Some(NodeEnum::AlterTableStmt(a)) => {
                    let Some(parent) = &a.relation else { continue };
                    for cmd in &a.cmds {
                        let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node else {
                            continue;
                        };
                        if c.subtype == AlterTableType::AtAttachPartition as i32 {
                            if let Some(child) = partition_cmd(c.def.as_deref()) {
                                edges.push((parent.relname.clone(), child.relname.clone()));
                            }
                        }
                    }
                }
                Some(NodeEnum::CreateStmt(c)) => {
                    let Some(child) = &c.relation else { continue };
                    for p in &c.inh_relations {
                        if let Some(NodeEnum::RangeVar(parent)) = &p.node {
                            edges.push((parent.relname.clone(), child.relname.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out: Vec<String> = tables
        .iter()
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
        .collect();
    let mut at = 0;
    while at < out.len() {
        let parent = out[at].clone();
        for (p, c) in &edges {
            if *p == parent && !out.contains(c) {
                out.push(c.clone());
            }
        }
        at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{Relation, Tables};

    fn table(oid: u32, schema: &str, name: &str, kind: char) -> Relation {
        Relation {
            oid,
            schema: schema.into(),
            name: name.into(),
            kind,
            persistence: 'p',
            rows: if kind == 'p' { 0 } else { 1000 },
            bytes: 8192,
            extension_member: false,
        }
    }

    /// users, "Users" (mixed case), "my.table", "Sch".t, app.t, a table
    /// partitioned in two, and orders referenced by items.
    fn catalog() -> Tables {
        Tables {
            tables: vec![
                table(1, "public", "users", 'r'),
                table(2, "public", "Users", 'r'),
                table(3, "public", "my.table", 'r'),
                table(4, "Sch", "t", 'r'),
                table(5, "app", "t", 'r'),
                table(10, "public", "events", 'p'),
                table(11, "public", "events_1", 'r'),
                table(12, "public", "events_2", 'p'),
                table(13, "public", "events_2a", 'r'),
                table(20, "public", "orders", 'r'),
                table(21, "public", "items", 'r'),
                table(30, "public", "v", 'm'),
            ],
            inherits: vec![(11, 10), (12, 10), (13, 12)],
            references: vec![(21, 20)],
            search_path: vec!["public".into()],
        }
    }

    /// The tables each data-losing statement of `sql` hits (by name at the
    /// start of the migration), whole-database markers as "*", and
    /// estimate candidates as "~name".
    fn hits(sql: &str) -> Vec<String> {
        let tables = catalog();
        let mut sim = Sim::from_catalog(&tables);
        let statements = crate::sql::split(sql, &[]).unwrap();
        let losses = sim.replay(&statements, 1);
        let mut out = Vec::new();
        for l in losses {
            match l {
                Loss::Tables { entries, .. } => {
                    out.extend(entries.iter().map(|&e| sim.entries[e].start.display()))
                }
                Loss::Whole(_) => out.push("*".into()),
                Loss::Estimate { entry, .. } => {
                    out.push(format!("~{}", sim.entries[entry].start.display()))
                }
            }
        }
        out
    }

    #[test]
    fn names_are_matched_as_postgresql_sees_them() {
        assert_eq!(hits("DROP TABLE \"Users\";"), ["public.\"Users\""]);
        assert_eq!(hits("DROP TABLE Users;"), ["public.users"]);
        assert_eq!(hits("DROP TABLE \"my.table\";"), ["public.\"my.table\""]);
        assert_eq!(hits("DROP TABLE \"Sch\".t;"), ["\"Sch\".t"]);
        assert_eq!(hits("DROP TABLE app.t;"), ["app.t"]);
        assert!(hits("DROP TABLE IF EXISTS nope; DROP TABLE sch.t;").is_empty());
        assert!(
            hits("DROP MATERIALIZED VIEW v;").is_empty(),
            "a materialized view can be refreshed"
        );
    }

    #[test]
    fn renames_earlier_in_the_migration_are_followed() {
        assert_eq!(
            hits("SET search_path = app, public;\nDROP TABLE t;\nSET search_path TO DEFAULT;\nDROP TABLE users;"),
            ["app.t", "public.users"]
        );
        assert_eq!(
            hits("ALTER TABLE users RENAME TO users_old;\nDROP TABLE users_old;"),
            ["public.users"]
        );
        // A swap: the new table takes the old name, the old one is dropped.
        assert_eq!(
            hits("CREATE TABLE users_new (id int);\nALTER TABLE users RENAME TO users_old;\nALTER TABLE users_new RENAME TO users;\nDROP TABLE users_old;\nTRUNCATE users;"),
            ["public.users"],
            "the new table holds nothing from before the migration"
        );
        assert_eq!(
            hits("ALTER TABLE \"Users\" SET SCHEMA app;\nALTER TABLE app.\"Users\" DROP COLUMN email;"),
            ["public.\"Users\""]
        );
        assert!(
            hits("CREATE TABLE x (a int);\nALTER TABLE x RENAME TO y;\nDROP TABLE y;").is_empty()
        );
    }

    #[test]
    fn partitions_and_children_come_with_their_parent() {
        assert_eq!(
            hits("ALTER TABLE events DROP COLUMN payload;"),
            [
                "public.events",
                "public.events_1",
                "public.events_2",
                "public.events_2a"
            ]
        );
        // Detached first: dropping the parent no longer loses events_1.
        assert_eq!(
            hits("ALTER TABLE events DETACH PARTITION events_1;\nDROP TABLE events;"),
            ["public.events", "public.events_2", "public.events_2a"]
        );
        // A partition swap's rollback: detach, rename, drop.
        assert_eq!(
            hits("ALTER TABLE events DETACH PARTITION events_1;\nALTER TABLE events_1 RENAME TO events_1_old;\nDROP TABLE events_1_old;"),
            ["public.events_1"]
        );
        // Attached in the migration: lost with the parent.
        assert_eq!(
            hits(
                "ALTER TABLE events ATTACH PARTITION users FOR VALUES IN (3);\nDROP TABLE events;"
            )
            .len(),
            5
        );
    }

    #[test]
    fn truncate_cascade_follows_foreign_keys() {
        assert_eq!(hits("TRUNCATE orders;"), ["public.orders"]);
        assert_eq!(
            hits("TRUNCATE orders CASCADE;"),
            ["public.orders", "public.items"]
        );
    }

    #[test]
    fn which_statements_lose_data() {
        assert_eq!(hits("DELETE FROM users;"), ["public.users"]);
        assert_eq!(hits("UPDATE users SET a = 1;"), ["public.users"]);
        assert_eq!(hits("DELETE FROM users WHERE id > 5;"), ["~public.users"]);
        assert_eq!(
            hits("UPDATE users SET email = NULL WHERE id > 5;"),
            ["~public.users"]
        );
        assert_eq!(
            hits("UPDATE users SET plan = 'free'::text WHERE id > 5;"),
            ["~public.users"]
        );
        assert!(hits("UPDATE users SET n = n + 1 WHERE id > 5;").is_empty());
        assert_eq!(
            hits("ALTER TABLE users ALTER COLUMN a TYPE numeric(10,2);"),
            ["public.users"]
        );
        assert!(hits("ALTER TABLE users ALTER COLUMN a TYPE text;").is_empty());
        assert!(hits("ALTER TABLE users ADD COLUMN a int;").is_empty());
        assert_eq!(hits("DROP SCHEMA app CASCADE;"), ["app.t"]);
        assert_eq!(hits("DROP OWNED BY someone;"), ["*"]);
        assert_eq!(hits("DROP TYPE mood CASCADE;"), ["*"]);
        assert_eq!(
            hits("DO $$ BEGIN ALTER TABLE users DROP COLUMN legacy; END $$;"),
            ["public.users"]
        );
    }

    #[test]
    fn a_long_dry_run_replays_in_linear_time() {
        // 20,000 migrations of one CREATE TABLE each, then one that renames
        // and drops the first: settling every table at each migration (or
        // looking names up by scanning) made this minutes of CPU.
        let n = 20_000;
        let mut sim = Sim::from_catalog(&catalog());
        let creates: String = (0..n)
            .map(|i| format!("CREATE TABLE t{i} (a int);\n"))
            .collect();
        for stmt in crate::sql::split(&creates, &[]).unwrap() {
            sim.next_migration();
            assert!(sim.replay(std::slice::from_ref(&stmt), 1).is_empty());
        }
        sim.next_migration();
        let last =
            crate::sql::split("ALTER TABLE t0 RENAME TO gone;\nDROP TABLE gone;", &[]).unwrap();
        let losses = sim.replay(&last, 1);
        let Loss::Tables { entries, .. } = &losses[0] else {
            panic!("{losses:?}")
        };
        assert_eq!(sim.entries[entries[0]].start.display(), "public.t0");
        assert_eq!(
            sim.touched.len(),
            1,
            "only the renamed table is settled next"
        );
    }

    #[test]
    fn a_dry_run_carries_the_replay_from_one_migration_to_the_next() {
        let mut sim = Sim::from_catalog(&catalog());
        let first = crate::sql::split("CREATE TABLE archive (a int);", &[]).unwrap();
        assert!(sim.replay(&first, 1).is_empty());
        sim.next_migration();
        let second = crate::sql::split("DROP TABLE archive;", &[]).unwrap();
        let losses = sim.replay(&second, 1);
        let Loss::Tables { entries, .. } = &losses[0] else {
            panic!("{losses:?}")
        };
        assert_eq!(sim.entries[entries[0]].start.display(), "public.archive");
    }

    #[test]
    fn a_delete_after_a_rename_is_not_planned_under_the_new_name() {
        let mut sim = Sim::from_catalog(&catalog());
        let sql = "DELETE FROM events WHERE id > 1;\nALTER TABLE users RENAME TO u2;\nDELETE FROM u2 WHERE id > 1;";
        let losses = sim.replay(&crate::sql::split(sql, &[]).unwrap(), 1);
        let plans: Vec<(bool, usize)> = losses
            .iter()
            .map(|l| match l {
                Loss::Estimate {
                    plannable, entries, ..
                } => (*plannable, entries.len()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(plans, [(true, 4), (false, 1)]);
    }

    #[test]
    fn only_statements_that_may_lose_data_read_the_catalog() {
        let may = |sql: &str| crate::sql::split(sql, &[]).unwrap().iter().any(might_lose);
        for sql in [
            "DROP TABLE t;",
            "TRUNCATE t;",
            "DELETE FROM t WHERE a = 1;",
            "UPDATE t SET a = 1 WHERE b;",
            "ALTER TABLE t DROP COLUMN a;",
            "ALTER TABLE t ALTER COLUMN a TYPE int;",
            "DROP OWNED BY r;",
            "DO $$ BEGIN DROP TABLE t; END $$;",
        ] {
            assert!(may(sql), "{sql}");
        }
        for sql in [
            "CREATE TABLE t (a int);",
            "ALTER TABLE t ADD COLUMN b int;",
            "CREATE INDEX ON t (a);",
            "INSERT INTO t VALUES (1);",
            "DO $$ BEGIN INSERT INTO t VALUES (1); END $$;",
        ] {
            assert!(!may(sql), "{sql}");
        }
    }

    #[test]
    fn dump_patterns_quote_everything() {
        assert_eq!(
            TableName::new("Sch", "my.table*").dump_pattern(),
            "\"Sch\".\"my.table*\""
        );
        assert_eq!(
            TableName::new("public", "a\"b").dump_pattern(),
            "\"public\".\"a\"\"b\""
        );
        assert_eq!(
            TableName::new("public", "Users").display(),
            "public.\"Users\""
        );
    }

    #[test]
    fn a_restored_parent_brings_its_partitions() {
        let script = "\\restrict abc\nCREATE TABLE public.orders (id bigint) PARTITION BY HASH (id);\n\
            CREATE TABLE public.orders_0 (id bigint);\nCREATE TABLE public.orders_1 (id bigint) PARTITION BY RANGE (id);\n\
            CREATE TABLE public.orders_1a (id bigint);\nCREATE TABLE public.kid () INHERITS (public.orders_0);\n\
            ALTER TABLE ONLY public.orders ATTACH PARTITION public.orders_0 FOR VALUES WITH (modulus 2, remainder 0);\n\
            ALTER TABLE ONLY public.orders ATTACH PARTITION public.orders_1 FOR VALUES WITH (modulus 2, remainder 1);\n\
            ALTER TABLE ONLY public.orders_1 ATTACH PARTITION public.orders_1a FOR VALUES FROM (0) TO (10);\n\
            \\unrestrict abc\n";
        assert_eq!(
            with_children(&["public.orders".into()], script),
            ["orders", "orders_0", "orders_1", "kid", "orders_1a"]
        );
        assert_eq!(with_children(&["users".into()], script), ["users"]);
    }

    #[test]
    fn manual_names_parse_as_sql() {
        assert_eq!(parse_name("Users"), Some(("".into(), "users".into())));
        assert_eq!(parse_name("\"Users\""), Some(("".into(), "Users".into())));
        assert_eq!(
            parse_name("\"Sch\".\"my.table\""),
            Some(("Sch".into(), "my.table".into()))
        );
        assert_eq!(parse_name("a; DROP TABLE b"), None);
        assert_eq!(parse_name("a, b"), None);
    }
}
