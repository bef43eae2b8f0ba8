//! Catalog snapshots: every user object of a database, read from
//! `pg_catalog`, and the per-object differences between two of them.
//!
//! A snapshot is what `strata verify` compares (the live database against
//! the migrations replayed on a throwaway cluster, a schema file loaded
//! into one), what `strata test` compares before and after a down, and what
//! `strata dump`'s test checks a loaded dump against. It records what the
//! schema *is*, not who owns it or what it holds: no owners, no grants, no
//! rows, no sequence positions, no OIDs, no statistics.
//!
//! Every object is a [`Object`]: a kind, a schema-qualified name and a map
//! of attributes rendered as text by the server itself (`format_type`,
//! `pg_get_expr`, `pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_viewdef`, `pg_get_triggerdef`, …), so two databases that were
//! built by the same statements on the same major version compare equal
//! whatever their OIDs, and a difference is named by attribute ("column
//! users.email: type character varying(100) → text") instead of as a text
//! diff. Objects are keyed by identity in a `BTreeMap`: the order, the
//! serialized form and the list of differences are deterministic.
//!
//! Left out: the system schemas (`pg_catalog`, `information_schema`,
//! `pg_toast`, temporary schemas), objects that belong to an extension
//! (`pg_depend` deptype `e`: the extension itself is the object), and
//! Strata's own tables (the history table and `strata_events`,
//! `strata_schema`, `strata_progress`) with their indexes, constraints,
//! triggers and sequences. Not read yet: collations, operators, casts, text
//! search configurations, foreign servers, publications, event triggers,
//! grants.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::VerifyError;
use crate::db::{Connection, Row};

/// The names of Strata's own tables, left out of every snapshot.
pub const OWN_TABLES: [&str; 4] = [
    "strata_migrations",
    "strata_events",
    "strata_schema",
    "strata_progress",
];

/// One object of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// `table`, `column`, `index`, `constraint`, `view`, `materialized
    /// view`, `sequence`, `function`, `procedure`, `aggregate`, `trigger`,
    /// `rule`, `policy`, `enum`, `domain`, `range`, `type`, `extension`,
    /// `schema`, `foreign table`.
    pub kind: String,
    /// The schema, for objects that live in one.
    pub schema: Option<String>,
    /// The name inside the schema; a table's part is prefixed with its
    /// table (`users.email`), a function's name carries its argument types
    /// (`f(integer)`). As stored: unquoted, case preserved.
    pub name: String,
    /// The key of the object this one is part of (a column's table), so
    /// that a removed table is reported once, not once per column.
    pub parent: Option<String>,
    /// What the object is, as the server renders it.
    pub attributes: BTreeMap<String, String>,
    /// A column's place among its table's live columns (1-based). Not an
    /// attribute: dropping one column moves every later one, which is
    /// not a change of theirs; [`Snapshot::diff`] compares the order of
    /// the columns both sides have instead, on the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

impl Object {
    /// The identity: `column public.users.email`, `extension citext`.
    pub fn key(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} {}.{}", self.kind, s, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The identity as messages show it: objects in `public` without
    /// their schema (`column users.email`).
    pub fn label(&self) -> String {
        match self.schema.as_deref() {
            Some("public") | None => format!("{} {}", self.kind, self.name),
            Some(s) => format!("{} {}.{}", self.kind, s, self.name),
        }
    }
}

/// Every user object of one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// By [`Object::key`].
    pub objects: BTreeMap<String, Object>,
}

/// Which tables are Strata's own, beyond the default names.
#[derive(Debug, Clone, Default)]
pub struct OwnTables {
    /// Schema-qualified (schema, table) pairs to leave out, e.g. the
    /// configured history table and its companions in its schema.
    pub tables: Vec<(String, String)>,
}

impl OwnTables {
    /// The configured history table and the companion tables in its schema.
    pub fn new(history_schema: &str, history_table: &str) -> OwnTables {
        let mut tables = vec![(history_schema.to_owned(), history_table.to_owned())];
        tables.extend(
            OWN_TABLES
                .iter()
                .map(|t| (history_schema.to_owned(), (*t).to_owned())),
        );
        OwnTables { tables }
    }
}

/// How one object differs between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The object's identity ([`Object::key`]): `column public.users.email`.
    pub object: String,
    /// The identity as messages show it ([`Object::label`]).
    pub label: String,
    /// What differs (serialized flat: `"change": "added"`, or
    /// `"change": "changed", "attributes": [...]`).
    #[serde(flatten)]
    pub change: Change,
}

/// What differs about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// Only in the second snapshot.
    Added,
    /// Only in the first snapshot.
    Removed,
    /// In both, with these attributes different (in attribute order).
    Changed {
        /// The attributes that differ.
        attributes: Vec<AttributeChange>,
    },
}

/// One attribute that differs; `None` is "not set" (no default, no comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// `type`, `default`, `definition`, …
    pub name: String,
    /// In the first snapshot.
    pub before: Option<String>,
    /// In the second snapshot.
    pub after: Option<String>,
}

impl fmt::Display for Difference {
    /// `column users.email: type character varying(100) → text`,
    /// `index users_email_idx: added`, `table audit: removed`. Several
    /// changed attributes are joined with `; `. Multi-line values (bodies,
    /// view definitions) show their first differing line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.label)?;
        match &self.change {
            Change::Added => f.write_str("added"),
            Change::Removed => f.write_str("removed"),
            Change::Changed { attributes } => {
                for (i, a) in attributes.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{a}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for AttributeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let multiline = |v: &Option<String>| v.as_deref().is_some_and(|v| v.contains('\n'));
        if multiline(&self.before) || multiline(&self.after) {
            let before = self.before.as_deref().unwrap_or("");
            let after = self.after.as_deref().unwrap_or("");
            let (line, b, a) = first_difference(before, after);
            return write!(
                f,
                "{} differs at line {line}: {} → {}",
                self.name,
                shown(b),
                shown(a)
            );
        }
        write!(
            f,
            "{} {} → {}",
            self.name,
            self.before.as_deref().unwrap_or("none"),
            self.after.as_deref().unwrap_or("none")
        )
    }
}

/// The first line (1-based) where two texts differ, with both versions of
/// it (`None` past the end of a text).
fn first_difference<'a>(a: &'a str, b: &'a str) -> (usize, Option<&'a str>, Option<&'a str>) {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return (n, None, None),
            (x, y) => return (n, x, y),
        }
    }
}

fn shown(line: Option<&str>) -> String {
    match line {
        Some(l) => format!("`{}`", l.trim()),
        None => "(end)".to_owned(),
    }
}

impl Snapshot {
    /// Reads every user object of the connected database, leaving out
    /// Strata's own tables under their default names in any schema.
    pub async fn take(conn: &Connection) -> Result<Snapshot, VerifyError> {
        Snapshot::take_with(conn, &OwnTables::default()).await
    }

    /// [`Snapshot::take`], also leaving out the tables `own` names (the
    /// configured history table).
    pub async fn take_with(conn: &Connection, own: &OwnTables) -> Result<Snapshot, VerifyError> {
        let schemas: Vec<&str> = own.tables.iter().map(|(s, _)| s.as_str()).collect();
        let names: Vec<&str> = own.tables.iter().map(|(_, t)| t.as_str()).collect();
        let default_names: Vec<&str> = OWN_TABLES.to_vec();
        let rows = conn
            .query(
                "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p')
                   AND (c.relname = ANY($1)
                        OR (n.nspname::text, c.relname::text) IN (SELECT * FROM unnest($2::text[], $3::text[])))",
                &[&default_names, &schemas, &names],
            )
            .await?;
        let excluded: Vec<u32> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
        // The server qualifies names in the definitions it prints by the
        // session's search_path, which a database or role setting may
        // change: with an empty one every name is qualified, the same way
        // on every server. The caller's setting is put back afterwards.
        let saved = conn
            .query_opt(
                "SELECT current_setting('search_path'), set_config('search_path', '', false)",
                &[],
            )
            .await?
            .and_then(|r| r.try_get::<_, String>(0).ok());
        let result = read_objects(conn, &excluded).await;
        if let Some(path) = saved {
            conn.execute("SELECT set_config('search_path', $1, false)", &[&path])
                .await?;
        }
        result
    }

    /// The objects added, removed or changed from `self` to `after`, one
    /// [`Difference`] per object, in key order. An object whose parent was
    /// added or removed with it is not listed (a dropped table is one
    /// difference, not one per column).
    pub fn diff(&self, after: &Snapshot) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut gone = std::collections::BTreeSet::new();
        let mut new = std::collections::BTreeSet::new();
        for key in self.objects.keys() {
            if !after.objects.contains_key(key) {
                gone.insert(key.as_str());
            }
        }
        for key in after.objects.keys() {
            if !self.objects.contains_key(key) {
                new.insert(key.as_str());
            }
        }
        let mut reordered = column_order_changes(self, after);
        let mut keys: Vec<&String> = self.objects.keys().chain(after.objects.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            match (self.objects.get(key), after.objects.get(key)) {
                (Some(b), None) => {
                    if !b.parent.as_deref().is_some_and(|p| gone.contains(p)) {
                        out.push(Difference {
                            object: key.clone(),
                            label: b.label(),
                            change: Change::Removed,
                        });
                    }
                }
                (None, Some(a)) => {
                    if !a.parent.as_deref().is_some_and(|p| new.contains(p)) {
                        out.push(Difference {
                            object: key.clone(),
                            label: a.label(),
                            change: Change::Added,
                        });
                    }
                }
                (Some(b), Some(a)) => {
                    let mut names: Vec<&String> =
                        b.attributes.keys().chain(a.attributes.keys()).collect();
                    names.sort();
                    names.dedup();
                    let mut attributes: Vec<AttributeChange> = names
                        .into_iter()
                        .filter(|n| b.attributes.get(*n) != a.attributes.get(*n))
                        .map(|n| AttributeChange {
                            name: n.clone(),
                            before: b.attributes.get(n).cloned(),
                            after: a.attributes.get(n).cloned(),
                        })
                        .collect();
                    if let Some(order) = reordered.remove(key.as_str()) {
                        attributes.push(order);
                    }
                    if !attributes.is_empty() {
                        out.push(Difference {
                            object: key.clone(),
                            label: a.label(),
                            change: Change::Changed { attributes },
                        });
                    }
                }
                (None, None) => {}
            }
        }
        out
    }
}

/// Every object, one query per family (see [`queries`]).
async fn read_objects(conn: &Connection, excluded: &[u32]) -> Result<Snapshot, VerifyError> {
    let mut snapshot = Snapshot::default();
    for query in queries() {
        let rows = if query.contains("$1") {
            conn.query(&query, &[&excluded]).await?
        } else {
            conn.query(&query, &[]).await?
        };
        for row in &rows {
            if let Some(object) = object_of(row) {
                snapshot.objects.insert(object.key(), object);
            }
        }
    }
    Ok(snapshot)
}

/// For each table in both snapshots whose common columns are not in the
/// same order: the `column order` change (the common columns, in each
/// side's order). One pass over the columns of each side.
fn column_order_changes<'a>(
    before: &'a Snapshot,
    after: &'a Snapshot,
) -> BTreeMap<&'a str, AttributeChange> {
    fn columns(s: &Snapshot) -> BTreeMap<&str, Vec<(i64, &str)>> {
        let mut out: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for o in s.objects.values() {
            if let (Some(parent), Some(pos)) = (o.parent.as_deref(), o.position) {
                let name = o.name.rsplit_once('.').map_or(o.name.as_str(), |(_, c)| c);
                out.entry(parent).or_default().push((pos, name));
            }
        }
        for cols in out.values_mut() {
            cols.sort();
        }
        out
    }
    let (b, a) = (columns(before), columns(after));
    let mut out = BTreeMap::new();
    for (table, bcols) in &b {
        let Some(acols) = a.get(table) else { continue };
        let bset: std::collections::HashSet<&str> = bcols.iter().map(|c| c.1).collect();
        let aset: std::collections::HashSet<&str> = acols.iter().map(|c| c.1).collect();
        let border: Vec<&str> = bcols
            .iter()
            .map(|c| c.1)
            .filter(|c| aset.contains(c))
            .collect();
        let aorder: Vec<&str> = acols
            .iter()
            .map(|c| c.1)
            .filter(|c| bset.contains(c))
            .collect();
        if border != aorder {
            out.insert(
                *table,
                AttributeChange {
                    name: "column order".to_owned(),
                    before: Some(border.join(", ")),
                    after: Some(aorder.join(", ")),
                },
            );
        }
    }
    out
}

/// An object from a row `(kind, schema, name, parent, attributes jsonb)`.
fn object_of(row: &Row) -> Option<Object> {
    let kind: String = row.try_get(0).ok()?;
    let schema: Option<String> = row.try_get(1).ok()?;
    let name: String = row.try_get(2).ok()?;
    let parent: Option<String> = row.try_get(3).ok()?;
    let attrs: serde_json::Value = row.try_get(4).ok()?;
    let mut attributes = BTreeMap::new();
    let mut position = None;
    if let serde_json::Value::Object(map) = attrs {
        for (k, v) in map {
            if k == "position" {
                position = v.as_str().and_then(|p| p.parse().ok());
                continue;
            }
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            let text = if k == "body" || k == "definition" {
                normalise(&text)
            } else {
                text
            };
            attributes.insert(k, text);
        }
    }
    Some(Object {
        kind,
        schema,
        name,
        parent,
        attributes,
        position,
    })
}

/// A body or definition without what does not change its meaning: line
/// endings, trailing spaces, blank lines at either end.
fn normalise(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let start = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |i| i + 1);
    lines[start..end.max(start)].join("\n")
}

/// The schemas whose objects count (`n` is `pg_namespace`): not the
/// system's, not temporary ones.
const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// A condition: the object (`oid` in `catalog`) is not part of an extension.
fn not_extension(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = '{catalog}'::regclass
                     AND dx.objid = {oid} AND dx.deptype = 'e')"
    )
}

/// The kind of relation `c` as a key's first word.
const REL_KIND: &str = "(CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
    WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'table' END)";

/// One query per family of objects; each returns
/// `(kind, schema, name, parent, attributes jsonb)`. `$1` is the oids of
/// Strata's own tables (`oid[]`), in the queries that use it.
fn queries() -> Vec<String> {
    let rel_ok = format!(
        "{USER_SCHEMA} AND c.oid <> ALL($1) AND {}",
        not_extension("pg_class", "c.oid")
    );
    vec![
        // Schemas.
        format!(
            "SELECT 'schema', NULL::text, n.nspname::text, NULL::text,
                jsonb_build_object('comment', obj_description(n.oid, 'pg_namespace'))
             FROM pg_namespace n WHERE {USER_SCHEMA} AND {}",
            not_extension("pg_namespace", "n.oid")
        ),
        // Extensions (plpgsql is in every database).
        "SELECT 'extension', NULL::text, e.extname::text, NULL::text,
            jsonb_build_object('version', e.extversion, 'schema', n.nspname::text,
                               'comment', obj_description(e.oid, 'pg_extension'))
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname <> 'plpgsql'"
            .to_owned(),
        // Tables, views, materialized views, foreign tables, sequences
        // (not those of identity columns: the column says it; a `serial`
        // column's sequence is part of its table).
        format!(
            "SELECT {REL_KIND}, n.nspname::text, c.relname::text,
                CASE WHEN c.relkind = 'S' THEN
                    (SELECT 'table ' || pn.nspname || '.' || pc.relname FROM pg_depend d
                     JOIN pg_class pc ON pc.oid = d.refobjid
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' LIMIT 1) END,
            jsonb_build_object(
                'partitioned by', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                'partition of', CASE WHEN c.relispartition THEN
                    (SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i
                     JOIN pg_class pc ON pc.oid = i.inhparent
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END,
                'partition bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                'inherits', CASE WHEN NOT c.relispartition THEN
                    (SELECT string_agg(pn.nspname || '.' || pc.relname, ', ' ORDER BY i.inhseqno)
                     FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END,
                'unlogged', CASE WHEN c.relpersistence = 'u' THEN 'yes' END,
                'row level security', CASE WHEN c.relrowsecurity THEN
                    CASE WHEN c.relforcerowsecurity THEN 'forced' ELSE 'enabled' END END,
                'replica identity', CASE WHEN c.relkind IN ('r', 'p') AND c.relreplident <> 'd' THEN
                    CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' ELSE 'index' END END,
                'options', array_to_string(c.reloptions, ', '),
                'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                'type', CASE WHEN c.relkind = 'S' THEN format_type(s.seqtypid, NULL) END,
                'start', s.seqstart::text,
                'increment', s.seqincrement::text,
                'minimum', s.seqmin::text,
                'maximum', s.seqmax::text,
                'cache', s.seqcache::text,
                'cycle', CASE WHEN s.seqcycle THEN 'yes' END,
                'owned by', CASE WHEN c.relkind = 'S' THEN
                    (SELECT pn.nspname || '.' || pc.relname || '.' || a.attname FROM pg_depend d
                     JOIN pg_class pc ON pc.oid = d.refobjid
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' LIMIT 1) END,
                'comment', obj_description(c.oid, 'pg_class'))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_sequence s ON s.seqrelid = c.oid
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {rel_ok}
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                  AND (d.deptype = 'i' OR d.refobjid = ANY($1)))"
        ),
        // Columns of tables and foreign tables. `position` counts live
        // columns only, so a dropped column leaves no hole.
        format!(
            "SELECT 'column', n.nspname::text, c.relname || '.' || a.attname,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object(
                'type', format_type(a.atttypid, a.atttypmod),
                'not null', CASE WHEN a.attnotnull THEN 'yes' ELSE 'no' END,
                'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
                'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid)
                    || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE ' virtual' END END,
                'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                'collation', CASE WHEN a.attcollation <> t.typcollation THEN
                    (SELECT cn.nspname || '.' || co.collname FROM pg_collation co
                     JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE co.oid = a.attcollation) END,
                'position', (row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum))::text,
                'comment', col_description(c.oid, a.attnum))
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f') AND {rel_ok}"
        ),
        // Constraints of tables (not-null ones are the column's `not null`).
        format!(
            "SELECT 'constraint', n.nspname::text, c.relname || '.' || con.conname,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object('definition', pg_get_constraintdef(con.oid),
                               'comment', obj_description(con.oid, 'pg_constraint'))
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE con.contype <> 'n' AND {rel_ok}"
        ),
        // Constraints of domains.
        format!(
            "SELECT 'constraint', n.nspname::text, t.typname || '.' || con.conname,
                'domain ' || n.nspname || '.' || t.typname,
            jsonb_build_object('definition', pg_get_constraintdef(con.oid),
                               'comment', obj_description(con.oid, 'pg_constraint'))
            FROM pg_constraint con JOIN pg_type t ON t.oid = con.contypid
            JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE con.contype <> 'n' AND {USER_SCHEMA} AND {}",
            not_extension("pg_type", "t.oid")
        ),
        // Indexes, but those of primary key, unique and exclusion
        // constraints (the constraint is the object).
        format!(
            "SELECT 'index', n.nspname::text, ic.relname::text,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object('definition', pg_get_indexdef(i.indexrelid),
                               'valid', CASE WHEN i.indisvalid THEN 'yes' ELSE 'no' END,
                               'comment', obj_description(ic.oid, 'pg_class'))
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {rel_ok} AND {}
              AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))",
            not_extension("pg_class", "ic.oid")
        ),
        // Triggers (not the internal ones of foreign keys).
        format!(
            "SELECT 'trigger', n.nspname::text, c.relname || '.' || tg.tgname,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object('definition', pg_get_triggerdef(tg.oid),
                               'enabled', CASE tg.tgenabled WHEN 'O' THEN 'yes' WHEN 'D' THEN 'no'
                                   WHEN 'R' THEN 'replica' ELSE 'always' END,
                               'comment', obj_description(tg.oid, 'pg_trigger'))
            FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT tg.tgisinternal AND {rel_ok}"
        ),
        // Rules (not a view's own `_RETURN`).
        format!(
            "SELECT 'rule', n.nspname::text, c.relname || '.' || r.rulename,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object('definition', pg_get_ruledef(r.oid),
                               'comment', obj_description(r.oid, 'pg_rewrite'))
            FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE r.rulename <> '_RETURN' AND {rel_ok}"
        ),
        // Row-level security policies.
        format!(
            "SELECT 'policy', n.nspname::text, c.relname || '.' || p.polname,
                {REL_KIND} || ' ' || n.nspname || '.' || c.relname,
            jsonb_build_object(
                'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                    WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                'permissive', CASE WHEN p.polpermissive THEN 'yes' ELSE 'no' END,
                'roles', (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END,
                    ', ' ORDER BY 1) FROM unnest(p.polroles) AS r),
                'using', pg_get_expr(p.polqual, p.polrelid),
                'with check', pg_get_expr(p.polwithcheck, p.polrelid),
                'comment', obj_description(p.oid, 'pg_policy'))
            FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {rel_ok}"
        ),
        // Functions, procedures and aggregates, named with their argument
        // types (overloads are different objects). A body in SQL-standard
        // form has no source text: its definition is the body.
        format!(
            "SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                    WHEN 'w' THEN 'window function' ELSE 'function' END,
                n.nspname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                NULL::text,
            jsonb_build_object(
                'arguments', pg_get_function_arguments(p.oid),
                'returns', CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
                'language', l.lanname::text,
                'volatility', CASE WHEN p.prokind = 'p' THEN NULL WHEN p.provolatile = 'i' THEN 'immutable'
                    WHEN p.provolatile = 's' THEN 'stable' ELSE 'volatile' END,
                'strict', CASE WHEN p.proisstrict THEN 'yes' END,
                'security', CASE WHEN p.prosecdef THEN 'definer' END,
                'leakproof', CASE WHEN p.proleakproof THEN 'yes' END,
                'parallel', CASE WHEN p.prokind = 'p' THEN NULL WHEN p.proparallel = 's' THEN 'safe'
                    WHEN p.proparallel = 'r' THEN 'restricted' END,
                'settings', array_to_string(p.proconfig, ', '),
                'body', CASE WHEN p.prokind = 'a' THEN NULL
                    WHEN p.prosqlbody IS NOT NULL THEN pg_get_functiondef(p.oid) ELSE p.prosrc END,
                'transition', ag.aggtransfn::text,
                'state type', CASE WHEN ag.aggtranstype IS NOT NULL THEN format_type(ag.aggtranstype, NULL) END,
                'final', CASE WHEN ag.aggfinalfn <> 0 THEN ag.aggfinalfn::regproc::text END,
                'initial', ag.agginitval,
                'comment', obj_description(p.oid, 'pg_proc'))
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            JOIN pg_language l ON l.oid = p.prolang
            LEFT JOIN pg_aggregate ag ON ag.aggfnoid = p.oid
            WHERE {USER_SCHEMA} AND {}",
            not_extension("pg_proc", "p.oid")
        ),
        // Enums, domains, ranges and composite types (not a table's row
        // type, not arrays, not multiranges: they come with their type).
        format!(
            "SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                    WHEN 'r' THEN 'range' ELSE 'type' END,
                n.nspname::text, t.typname::text, NULL::text,
            jsonb_build_object(
                'labels', (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                    FROM pg_enum e WHERE e.enumtypid = t.oid),
                'base type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                'not null', CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'yes' END,
                'default', CASE WHEN t.typdefaultbin IS NOT NULL THEN pg_get_expr(t.typdefaultbin, 0)
                    ELSE t.typdefault END,
                'subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid),
                'attributes', CASE WHEN t.typtype = 'c' THEN
                    (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                        ', ' ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
                'comment', obj_description(t.oid, 'pg_type'))
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('e', 'd', 'r', 'c') AND {USER_SCHEMA} AND {}
              AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')",
            not_extension("pg_type", "t.oid")
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, parent: Option<&str>, attrs: &[(&str, &str)]) -> Object {
        Object {
            kind: kind.to_owned(),
            schema: Some("public".to_owned()),
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            position: None,
        }
    }

    fn snapshot(objects: Vec<Object>) -> Snapshot {
        Snapshot {
            objects: objects.into_iter().map(|o| (o.key(), o)).collect(),
        }
    }

    #[test]
    fn a_removed_table_is_one_difference_not_one_per_column() {
        let before = snapshot(vec![
            object("table", "audit", None, &[]),
            object(
                "column",
                "audit.id",
                Some("table public.audit"),
                &[("type", "integer")],
            ),
        ]);
        let got: Vec<String> = before
            .diff(&Snapshot::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["table audit: removed"]);
        let got: Vec<String> = Snapshot::default()
            .diff(&before)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["table audit: added"]);
    }

    #[test]
    fn changed_attributes_are_named_and_long_texts_show_their_first_differing_line() {
        let before = snapshot(vec![object(
            "view",
            "v",
            None,
            &[("definition", " SELECT a\n   FROM t;"), ("comment", "old")],
        )]);
        let after = snapshot(vec![object(
            "view",
            "v",
            None,
            &[("definition", " SELECT a\n   FROM u;")],
        )]);
        let diff = before.diff(&after);
        assert_eq!(
            diff[0].to_string(),
            "view v: comment old → none; definition differs at line 2: `FROM t;` → `FROM u;`"
        );
        // Serialized flat, and read back the same.
        let json = serde_json::to_value(&diff[0]).unwrap();
        assert_eq!(json["change"], "changed");
        assert_eq!(json["attributes"][0]["name"], "comment");
        let back: Difference = serde_json::from_value(json).unwrap();
        assert_eq!(back, diff[0]);
    }

    #[test]
    fn column_order_is_compared_on_the_table_over_the_common_columns() {
        let col = |name: &str, pos: i64| Object {
            position: Some(pos),
            ..object("column", &format!("t.{name}"), Some("table public.t"), &[])
        };
        let before = snapshot(vec![
            object("table", "t", None, &[]),
            col("a", 1),
            col("b", 2),
            col("c", 3),
        ]);
        // b dropped: c moves up, which is not a change of c's.
        let dropped = snapshot(vec![
            object("table", "t", None, &[]),
            col("a", 1),
            col("c", 2),
        ]);
        let got: Vec<String> = before
            .diff(&dropped)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["column t.b: removed"]);
        // a re-added at the end: the order changed.
        let moved = snapshot(vec![
            object("table", "t", None, &[]),
            col("b", 1),
            col("c", 2),
            col("a", 3),
        ]);
        let got: Vec<String> = before
            .diff(&moved)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["table t: column order a, b, c → b, c, a"]);
    }

    #[test]
    fn bodies_are_compared_without_trailing_spaces_and_blank_edges() {
        assert_eq!(
            normalise("\r\n\nBEGIN  \r\n  x;\t\nEND\n\n"),
            "BEGIN\n  x;\nEND"
        );
        assert_eq!(normalise(""), "");
    }
}
