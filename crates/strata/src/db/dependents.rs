//! What a table-level dump leaves out but restoring it needs.
//!
//! `pg_dump --table` writes a table with its indexes, constraints and
//! triggers, but not the functions its triggers call, nor the foreign keys
//! of *other* tables that reference it. Both matter when the dump is
//! restored into a database that moved on since:
//! - a plan's contract phase drops a sync trigger's function, so the
//!   restored trigger would call a function that no longer exists;
//! - `pg_restore --clean` drops the table's primary key first, which fails
//!   while another table's foreign key depends on it.
//!
//! So the backup records the trigger functions' definitions when it is
//! taken ([`trigger_functions`]), and the restore recreates the missing
//! ones ([`missing_functions`]) and lifts the referencing foreign keys
//! around the restore ([`foreign_keys_into`]), all in the restore's one
//! transaction.
//!
//! Every definition is read with `search_path = pg_catalog`, so that every
//! name in it is schema-qualified: the restore script empties the
//! search_path before anything of ours runs after it.

use super::{Connection, DbError};

/// A function a dumped table's trigger calls, as it was when dumped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionDef {
    /// Its identity (`public.f(integer)`), what `to_regprocedure` reads.
    pub signature: String,
    /// `CREATE OR REPLACE FUNCTION …` (no trailing semicolon).
    pub definition: String,
}

/// A foreign key of another table that references a restored table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyDef {
    /// The referencing table, schema-qualified and quoted.
    pub table: String,
    /// The constraint's name, quoted.
    pub name: String,
    /// `FOREIGN KEY (…) REFERENCES …` as `pg_get_constraintdef` writes it.
    pub definition: String,
}

impl ForeignKeyDef {
    /// The statement that lifts it before the restore.
    pub fn drop_sql(&self) -> String {
        format!("ALTER TABLE {} DROP CONSTRAINT {};", self.table, self.name)
    }

    /// The statement that puts it back after the restore (checked against
    /// the restored rows, unless it was NOT VALID).
    pub fn add_sql(&self) -> String {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {};",
            self.table, self.name, self.definition
        )
    }
}

/// The functions the user triggers of `tables` (oids) call.
pub async fn trigger_functions(
    conn: &Connection,
    tables: &[u32],
) -> Result<Vec<FunctionDef>, DbError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let rows = qualified(
        conn,
        "SELECT DISTINCT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgrelid = ANY($1::oid[]) AND NOT t.tgisinternal
          ORDER BY 1",
        &[&tables],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(FunctionDef {
                signature: r.try_get(0).ok()?,
                definition: r.try_get(1).ok()?,
            })
        })
        .collect())
}

/// Those of `functions` that do not exist now.
pub async fn missing_functions<'a>(
    conn: &Connection,
    functions: &'a [FunctionDef],
) -> Result<Vec<&'a FunctionDef>, DbError> {
    let mut missing = Vec::new();
    for f in functions {
        let rows = qualified(conn, "SELECT to_regprocedure($1) IS NULL", &[&f.signature]).await?;
        if rows
            .first()
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .unwrap_or(false)
        {
            missing.push(f);
        }
    }
    Ok(missing)
}

/// The foreign keys that reference one of `tables` ((schema, name) as
/// PostgreSQL stores them, unquoted) from a table outside them. Tables
/// that do not exist are skipped. Constraints a partitioned table cloned onto its partitions
/// are left out: lifting the parent's lifts them.
pub async fn foreign_keys_into(
    conn: &Connection,
    tables: &[(String, String)],
) -> Result<Vec<ForeignKeyDef>, DbError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let (schemas, names): (Vec<&str>, Vec<&str>) =
        tables.iter().map(|(s, n)| (s.as_str(), n.as_str())).unzip();
    let rows = qualified(
        conn,
        "WITH restored AS (
             SELECT r.oid FROM unnest($1::text[], $2::text[]) AS t(s, n)
               JOIN pg_namespace n ON n.nspname = t.s
               JOIN pg_class r ON r.relnamespace = n.oid AND r.relname = t.n)
         SELECT format('%I.%I', n.nspname, r.relname), quote_ident(c.conname),
                pg_get_constraintdef(c.oid)
           FROM pg_constraint c
           JOIN pg_class r ON r.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = r.relnamespace
          WHERE c.contype = 'f' AND c.conparentid = 0
            AND c.confrelid IN (SELECT oid FROM restored)
            AND c.conrelid NOT IN (SELECT oid FROM restored)
          ORDER BY 1, 2",
        &[&schemas, &names],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(ForeignKeyDef {
                table: r.try_get(0).ok()?,
                name: r.try_get(1).ok()?,
                definition: r.try_get(2).ok()?,
            })
        })
        .collect())
}

/// Runs `sql` in a read-only transaction whose search_path is only
/// `pg_catalog`, so that the server qualifies every name it prints.
async fn qualified(
    conn: &Connection,
    sql: &str,
    params: &[&(dyn super::ToSql + Sync)],
) -> Result<Vec<super::Row>, DbError> {
    conn.batch("BEGIN READ ONLY; SET LOCAL search_path = pg_catalog")
        .await?;
    let rows = conn.query(sql, params).await;
    // Always: a failed query leaves the transaction open.
    let ended = conn.batch("ROLLBACK").await;
    let rows = rows?;
    ended?;
    Ok(rows)
}

/// The name of a NOT NULL constraint when the backup was taken.
///
/// PostgreSQL 18 names NOT NULL constraints, and `pg_dump` writes a name
/// only when it is not the default `<table>_<column>_not_null`. Restored,
/// such a column gets a name chosen anew, unique in the schema: another
/// table holding the same name (`CREATE TABLE … (LIKE t)` copies them)
/// makes it `…_not_null1`. The restore renames it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotNullName {
    /// The table's schema (unquoted).
    pub schema: String,
    /// The table (unquoted).
    pub table: String,
    /// The column (unquoted).
    pub column: String,
    /// The constraint's name (unquoted).
    pub name: String,
}

/// The NOT NULL constraint names of `tables` (oids); none before
/// PostgreSQL 18, whose NOT NULL constraints have no names.
pub async fn not_null_names(
    conn: &Connection,
    tables: &[u32],
) -> Result<Vec<NotNullName>, DbError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let rows = qualified(
        conn,
        "SELECT n.nspname::text, r.relname::text, a.attname::text, c.conname::text
           FROM pg_constraint c
           JOIN pg_class r ON r.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = r.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          WHERE c.contype::text = 'n' AND c.conrelid = ANY($1::oid[])
          ORDER BY 1, 2",
        &[&tables],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(NotNullName {
                schema: r.try_get(0).ok()?,
                table: r.try_get(1).ok()?,
                column: r.try_get(2).ok()?,
                name: r.try_get(3).ok()?,
            })
        })
        .collect())
}

/// One statement that gives the restored NOT NULL constraints the names
/// they had (see [`NotNullName`]); it runs after the dump's script, whose
/// search_path is empty, so every name in it is qualified.
pub fn rename_not_null_sql(names: &[NotNullName]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let values = names
        .iter()
        .map(|n| {
            format!(
                "({}, {}, {}, {})",
                super::quote_literal(&n.schema),
                super::quote_literal(&n.table),
                super::quote_literal(&n.column),
                super::quote_literal(&n.name)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "DO $strata$DECLARE r record; BEGIN
FOR r IN SELECT c.conrelid::pg_catalog.regclass::text AS tbl, c.conname::text AS cur, v.want
  FROM (VALUES {values}) AS v(sch, tbl, col, want)
  JOIN pg_catalog.pg_attribute a
    ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', v.sch, v.tbl)) AND a.attname = v.col
  JOIN pg_catalog.pg_constraint c ON c.conrelid = a.attrelid AND c.contype::text = 'n' AND c.conkey = ARRAY[a.attnum]
  WHERE c.conname <> v.want
LOOP
  EXECUTE pg_catalog.format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', r.tbl, r.cur, r.want);
END LOOP;
END$strata$;"
    ))
}
