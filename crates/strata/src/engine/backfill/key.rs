//! Which key the batches walk, and why.
//!
//! Keyset batches need a total order that every row has and that the
//! backfill does not change: the primary key, else a unique index over NOT
//! NULL columns (no expression, no predicate, valid). A table with neither
//! is walked by physical position (ctid page ranges), which PostgreSQL 14
//! and later scan directly (TID range scans).

use crate::db::{Connection, DbError};
use crate::sql::names::quote_ident;

use super::BackfillError;

/// How batches are delimited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// The primary key.
    PrimaryKey,
    /// A unique index over NOT NULL columns.
    Unique,
    /// Page ranges of the heap (`ctid`).
    Ctid,
}

/// One column of a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyColumn {
    /// The column name, unquoted.
    pub name: String,
    /// Its type as SQL (`format_type`), for casting bound values.
    pub type_sql: String,
}

/// The key chosen for a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Key {
    /// Primary key, unique index or ctid.
    pub kind: KeyKind,
    /// The columns, in index order (empty for ctid).
    pub columns: Vec<KeyColumn>,
    /// The index that backs it (empty for ctid).
    pub index: String,
    /// Why this key, for the plan and the log.
    pub reason: String,
}

impl Key {
    /// `id`, `(a, b)` or `ctid page ranges`.
    pub fn describe(&self) -> String {
        match self.kind {
            KeyKind::Ctid => "ctid page ranges".to_owned(),
            _ => {
                let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                if names.len() == 1 {
                    names[0].to_owned()
                } else {
                    format!("({})", names.join(", "))
                }
            }
        }
    }

    /// The key columns, qualified with `q`, as a row: `(q.a, q.b)`.
    pub fn row(&self, q: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{q}.{}", quote_ident(&c.name)))
            .collect();
        format!("({})", cols.join(", "))
    }

    /// The key columns of `table` as text output columns `k0, k1, …`, for
    /// reading a key back. They are not named like the key columns: an
    /// output column of that name would make `ORDER BY` sort the text.
    pub fn text_outputs(&self, table: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{table}.{}::text AS k{i}", quote_ident(&c.name)))
            .collect();
        cols.join(", ")
    }

    /// `ORDER BY` items over the key columns of `table`, in the key's own
    /// order (not its text's), each followed by `direction` (`""` or `" DESC"`).
    pub fn order_by(&self, table: &str, direction: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{table}.{}{direction}", quote_ident(&c.name)))
            .collect();
        cols.join(", ")
    }

    /// Bound values as a row of parameters `$from..`, each read from text
    /// and cast to its column's type: `($1::text::bigint, $2::text::uuid)`.
    pub fn params(&self, from: usize) -> String {
        let ps: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::text::{}", from + i, c.type_sql))
            .collect();
        format!("({})", ps.join(", "))
    }
}

/// What the catalog says about the table a backfill walks.
#[derive(Debug, Clone)]
pub struct TableFacts {
    /// The table's oid (a resume must find the same table).
    pub oid: u32,
    /// `r` (table) or `p` (partitioned).
    pub relkind: String,
    /// `pg_class.reltuples` summed over partitions and children (-1 when never analysed).
    pub reltuples: f64,
    /// Heap pages now (`pg_relation_size / block_size`), the ctid walk's bound.
    pub pages: i64,
    /// `server_version_num`.
    pub server_version: i32,
}

/// Looks the table up (`to_regclass`, so `"Sch".t` and the search path work
/// as in SQL) and reads what the plan needs.
pub async fn table_facts(conn: &Connection, table: &str) -> Result<TableFacts, BackfillError> {
    let row = conn
        .query_opt(
            "SELECT c.oid::oid, c.relkind::text,
                    (SELECT coalesce(sum(greatest(d.reltuples, 0)), 0)::float8
                       FROM pg_class d
                      WHERE d.oid = c.oid OR d.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = c.oid)),
                    (SELECT bool_or(d.reltuples >= 0) FROM pg_class d WHERE d.oid = c.oid),
                    (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint,
                    current_setting('server_version_num')::int
             FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(|e| match e.code() {
            // `to_regclass('a.b.c.d')`: an improper name.
            Some(code) if code.starts_with("42") => BackfillError::Table {
                table: table.to_owned(),
                message: e.to_string(),
                help: "name an existing table, schema-qualified if it is not on the search path".into(),
            },
            _ => BackfillError::Db(e),
        })?;
    let Some(row) = row else {
        return Err(BackfillError::Table {
            table: table.to_owned(),
            message: "no such table".into(),
            help: "name an existing table, schema-qualified if it is not on the search path".into(),
        });
    };
    let relkind: String = row.get(1);
    if !matches!(relkind.as_str(), "r" | "p") {
        return Err(BackfillError::Table {
            table: table.to_owned(),
            message: format!("it is not a table (relkind {relkind})"),
            help: "a backfill changes the rows of a table; name the table itself".into(),
        });
    }
    let analysed: Option<bool> = row.get(3);
    Ok(TableFacts {
        oid: row.get(0),
        relkind,
        reltuples: if analysed == Some(true) || row.get::<_, f64>(2) > 0.0 {
            row.get(2)
        } else {
            -1.0
        },
        pages: row.get(4),
        server_version: row.get(5),
    })
}

/// Chooses the key of table `oid`: the primary key, else the narrowest
/// unique index over NOT NULL columns, else ctid page ranges.
pub async fn choose(
    conn: &Connection,
    table: &str,
    facts: &TableFacts,
) -> Result<Key, BackfillError> {
    let rows = conn
        .query(
            "SELECT i.indisprimary, ic.relname::text,
                    array_agg(a.attname::text ORDER BY k.ord),
                    array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord),
                    bool_and(a.attnotnull)
             FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
               AND i.indexprs IS NULL AND i.indnkeyatts = i.indnatts
             GROUP BY i.indexrelid, i.indisprimary, ic.relname
             ORDER BY i.indisprimary DESC, count(*), ic.relname",
            &[&facts.oid],
        )
        .await?;
    let mut best = None;
    for r in &rows {
        let primary: bool = r.get(0);
        let not_null: Option<bool> = r.get(4);
        if !primary && not_null != Some(true) {
            continue;
        }
        let names: Vec<Option<String>> = r.get(2);
        let types: Vec<Option<String>> = r.get(3);
        let columns: Option<Vec<KeyColumn>> = names
            .into_iter()
            .zip(types)
            .map(|(n, t)| {
                Some(KeyColumn {
                    name: n?,
                    type_sql: t?,
                })
            })
            .collect();
        let Some(columns) = columns else { continue };
        let index: String = r.get(1);
        let reason = if primary {
            format!("the primary key ({index})")
        } else {
            format!("no primary key; unique index {index} over NOT NULL column(s)")
        };
        best = Some(Key {
            kind: if primary {
                KeyKind::PrimaryKey
            } else {
                KeyKind::Unique
            },
            columns,
            index,
            reason,
        });
        break;
    }
    if let Some(key) = best {
        return Ok(key);
    }
    if facts.relkind == "p" {
        return Err(BackfillError::Table {
            table: table.to_owned(),
            message: "a partitioned table without a primary key or unique NOT NULL key cannot be walked by page ranges (each partition has its own)".into(),
            help: "backfill each partition on its own, or add a primary key".into(),
        });
    }
    let mut reason =
        "no primary key and no unique index over NOT NULL columns: batches walk page ranges (ctid)"
            .to_owned();
    if facts.server_version < 140000 {
        reason.push_str(
            "; this server (before PostgreSQL 14) has no TID range scans, so every batch reads the whole table",
        );
    }
    Ok(Key {
        kind: KeyKind::Ctid,
        columns: Vec::new(),
        index: String::new(),
        reason,
    })
}

/// A server error about the statement itself (syntax, unknown column or
/// function, type mismatch): bad input, not a failure of the run.
pub fn is_statement_error(e: &DbError) -> bool {
    e.code()
        .is_some_and(|c| c.starts_with("42") || c.starts_with("22") || c == "0A000")
}
