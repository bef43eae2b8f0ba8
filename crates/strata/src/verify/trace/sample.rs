//! `--sample-rows N`: fills the tables a migration touches with generated
//! rows, so that a scan or rewrite takes measurable time on the copy.
//!
//! One `INSERT … SELECT … FROM generate_series(1, N)` per table, with a
//! value per column chosen from its type. Tables the filled ones reference
//! by foreign key are filled first (and filled too), and a single-column
//! foreign key takes its values from the referenced column's rows.
//! Integer, text and uuid values are distinct per row, so primary keys and
//! unique constraints on one such column hold.
//!
//! Not supported (the table is left empty, or the column NULL, and the
//! trace says so): CHECK constraints the values do not meet, multi-column
//! foreign keys (NULL when the columns allow it), unique constraints on a
//! boolean or enum column, composite, range, geometric and other types
//! without a value rule (NULL when nullable), partitioned tables whose
//! partitions do not cover the generated values.

use std::collections::{BTreeSet, HashMap};

use super::super::VerifyError;
use crate::db::{quote_ident, Connection};
use crate::sql::Statement;

/// A table of the copy.
#[derive(Debug, Clone)]
struct Table {
    oid: i64,
    name: String,
}

/// Fills the tables the statements name (and those they reference) with
/// `rows` rows each; returns one note per table: filled, or why not.
pub async fn fill(
    conn: &Connection,
    statements: &[Statement],
    rows: u64,
) -> Result<Vec<String>, VerifyError> {
    let mut wanted: Vec<Table> = Vec::new();
    let mut seen = BTreeSet::new();
    for s in statements {
        for name in super::statement_tables(s) {
            if let Some(t) = resolve(conn, &name).await? {
                if seen.insert(t.oid) {
                    wanted.push(t);
                }
            }
        }
    }
    // Referenced tables first, depth first: a parent is filled before its
    // children. `seen` is shared, so each table is visited once.
    let mut order: Vec<Table> = Vec::new();
    let mut visited = BTreeSet::new();
    for t in wanted {
        visit(conn, t, &mut visited, &mut order).await?;
    }
    let mut notes = Vec::new();
    for t in &order {
        notes.push(fill_one(conn, t, rows).await);
    }
    Ok(notes)
}

async fn resolve(conn: &Connection, name: &str) -> Result<Option<Table>, VerifyError> {
    let row = conn
        .query_opt(
            "SELECT c.oid::int8, c.oid::regclass::text FROM pg_class c
             WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
               AND NOT c.relispartition",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| Table {
        oid: r.get(0),
        name: r.get(1),
    }))
}

async fn visit(
    conn: &Connection,
    table: Table,
    visited: &mut BTreeSet<i64>,
    order: &mut Vec<Table>,
) -> Result<(), VerifyError> {
    // Iterative depth-first post-order, so a long chain of references does
    // not recurse.
    let mut stack: Vec<(Table, bool)> = vec![(table, false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.oid) {
            continue;
        }
        let parents = conn
            .query(
                "SELECT DISTINCT c.confrelid::int8, c.confrelid::regclass::text FROM pg_constraint c
                 WHERE c.contype = 'f' AND c.conrelid::int8 = $1 AND c.confrelid <> c.conrelid",
                &[&t.oid],
            )
            .await?;
        stack.push((t, true));
        for p in parents {
            let oid: i64 = p.get(0);
            if !visited.contains(&oid) {
                stack.push((
                    Table {
                        oid,
                        name: p.get(1),
                    },
                    false,
                ));
            }
        }
    }
    Ok(())
}

/// A column and how to fill it.
struct Column {
    name: String,
    /// `format_type` of the column.
    type_sql: String,
    /// The base type's name (a domain's base type), `typtype`, category.
    base: String,
    typtype: String,
    category: String,
    not_null: bool,
    has_default: bool,
    generated: bool,
}

async fn fill_one(conn: &Connection, t: &Table, rows: u64) -> String {
    // Triggers on a table filled earlier may have filled this one (an
    // aggregates row per post): then it has its rows already.
    let present: i64 = match conn
        .query_opt(&format!("SELECT count(*) FROM {}", t.name), &[])
        .await
    {
        Ok(Some(r)) => r.get(0),
        _ => 0,
    };
    if present > 0 {
        let _ = conn.batch(&format!("ANALYZE {}", t.name)).await;
        return format!(
            "{}: {present} rows already (inserted by the migrations or by triggers while other tables were filled); left as it is",
            t.name
        );
    }
    match try_fill(conn, t, rows).await {
        Ok((n, skipped)) if skipped.is_empty() => format!("{}: {n} rows", t.name),
        Ok((n, skipped)) => format!(
            "{}: {n} rows (NULL or default in {}: no value rule)",
            t.name,
            skipped.join(", ")
        ),
        Err(e) => format!(
            "{}: not filled: {}",
            t.name,
            crate::db::redact(&e.to_string())
        ),
    }
}

async fn try_fill(
    conn: &Connection,
    t: &Table,
    rows: u64,
) -> Result<(i64, Vec<String>), VerifyError> {
    let columns: Vec<Column> = conn
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                    COALESCE(b.typname, t.typname)::text, COALESCE(b.typtype, t.typtype)::text,
                    COALESCE(b.typcategory, t.typcategory)::text,
                    a.attnotnull, a.atthasdef, a.attidentity <> '' OR a.attgenerated <> ''
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
             WHERE a.attrelid::int8 = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&t.oid],
        )
        .await?
        .iter()
        .map(|r| Column {
            name: r.get(0),
            type_sql: r.get(1),
            base: r.get(2),
            typtype: r.get(3),
            category: r.get(4),
            not_null: r.get(5),
            has_default: r.get(6),
            generated: r.get(7),
        })
        .collect();
    // Single-column foreign keys: column → (referenced table, column).
    let fks: HashMap<String, (String, String)> = conn
        .query(
            "SELECT a.attname::text, c.confrelid::regclass::text, f.attname::text
             FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1]
             WHERE c.contype = 'f' AND c.conrelid::int8 = $1 AND cardinality(c.conkey) = 1",
            &[&t.oid],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut ctes = Vec::new();
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut skipped = Vec::new();
    for c in &columns {
        if c.generated {
            continue;
        }
        let value = if let Some((parent, col)) = fks.get(&c.name) {
            let alias = format!("p{}", ctes.len());
            ctes.push(format!(
                "{alias} AS (SELECT array_agg({}) AS a FROM {parent})",
                quote_ident(col)
            ));
            Some(format!("{alias}.a[1 + (g % cardinality({alias}.a))]"))
        } else if c.has_default {
            continue;
        } else {
            value_for(c)
        };
        match value {
            Some(v) => {
                names.push(quote_ident(&c.name));
                values.push(format!("({v})::{}", c.type_sql));
            }
            None if c.not_null => skipped.push(c.name.clone()),
            None => {}
        }
    }
    let from = std::iter::once(format!("generate_series(1, {rows}) g"))
        .chain((0..ctes.len()).map(|i| format!("p{i}")))
        .collect::<Vec<_>>()
        .join(", ");
    let with = if ctes.is_empty() {
        String::new()
    } else {
        format!("WITH {} ", ctes.join(", "))
    };
    let sql = if names.is_empty() {
        format!("{with}INSERT INTO {} SELECT FROM {from}", t.name)
    } else {
        format!(
            "{with}INSERT INTO {} ({}) SELECT {} FROM {from}",
            t.name,
            names.join(", "),
            values.join(", ")
        )
    };
    let n = conn.execute(&sql, &[]).await?;
    conn.batch(&format!("ANALYZE {}", t.name)).await?;
    Ok((n as i64, skipped))
}

/// An expression of `g` (the row number) of the column's type, distinct
/// per row where the type allows; `None` when there is no rule for it.
fn value_for(c: &Column) -> Option<String> {
    if c.category == "A" {
        return Some("'{}'".to_owned());
    }
    if c.typtype == "e" {
        let range = format!("enum_range(NULL::{})", c.type_sql);
        return Some(format!("({range})[1 + (g % cardinality({range}))]"));
    }
    let v = match c.base.as_str() {
        "int2" => "g % 32767",
        "int4" | "int8" | "numeric" | "oid" => "g",
        "float4" | "float8" => "g / 3.0",
        "money" => "g",
        "text" | "varchar" | "bpchar" | "name" | "citext" => "'v' || g",
        "bool" => "g % 2 = 0",
        "timestamp" | "timestamptz" => "now() - g * interval '1 second'",
        "date" => "current_date - (g % 3650)::int",
        "time" | "timetz" => "time '00:00' + (g % 86400) * interval '1 second'",
        "interval" => "g * interval '1 second'",
        "uuid" => "md5(g::text)::uuid",
        "json" | "jsonb" => "json_build_object('n', g)",
        "bytea" => "convert_to(g::text, 'UTF8')",
        "inet" | "cidr" => "'10.0.0.0'::inet + g",
        "macaddr" => "'08:00:2b:00:00:00'::macaddr",
        "bit" | "varbit" => "B'1'",
        "tsvector" => "to_tsvector('simple', 'v' || g)",
        "xml" => "xmlparse(content '<v/>')",
        _ => return None,
    };
    Some(v.to_owned())
}
