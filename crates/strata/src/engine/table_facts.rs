//! Reads a table's catalog facts for the plan operations that must carry a
//! column's properties over (a renamed column keeps its type, NOT NULL,
//! default, indexes and constraints; a partitioned copy keeps them all).
//!
//! One query builds the whole [`TableFacts`] as JSON on the server, so the
//! facts are one consistent snapshot and one round trip, whatever the size
//! of the table's catalog.

use crate::db::Connection;
use crate::plan::TableFacts;

use super::error::EngineError;

/// The facts of `table_sql` (a table name as SQL: `users`, `app."Users"`),
/// resolved with the connection's `search_path` like any statement.
///
/// A name that resolves to nothing is a usage error (exit 2): plans name
/// their tables, and a typo must stop the plan before anything runs.
pub async fn table_facts(conn: &Connection, table_sql: &str) -> Result<TableFacts, EngineError> {
    let row = conn
        .query_opt(FACTS_QUERY, &[&table_sql])
        .await?
        .and_then(|row| row.try_get::<_, Option<String>>(0).ok().flatten());
    let Some(json) = row else {
        return Err(EngineError::Usage {
            message: format!("table {table_sql} does not exist"),
            help: "check the table name in the plan (schema-qualify it when it is not on the \
                   search_path), or create the table in an earlier migration"
                .to_owned(),
        });
    };
    serde_json::from_str(&json).map_err(|e| EngineError::Usage {
        message: format!("could not read the catalog of {table_sql}: {e}"),
        help: "this is a bug in strata; please report it with the server version".to_owned(),
    })
}

/// `$1` is the table as SQL. `to_regclass` resolves it without failing
/// (NULL when there is no such relation), so a missing table is one clear
/// error instead of a server error about a cast.
const FACTS_QUERY: &str = r#"
WITH t AS (
    SELECT c.oid, c.reltuples
    FROM pg_class c
    WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
),
cols AS (
    SELECT a.attnum, a.attname::text AS name
    FROM pg_attribute a JOIN t ON a.attrelid = t.oid
    WHERE a.attnum > 0 AND NOT a.attisdropped
)
SELECT jsonb_build_object(
    'name', (SELECT t.oid::regclass::text FROM t),
    'columns', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'name', a.attname::text,
                   'type_sql', format_type(a.atttypid, a.atttypmod),
                   'not_null', a.attnotnull,
                   'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                   'identity', nullif(a.attidentity::text, ''),
                   'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END)
               ORDER BY a.attnum)
        FROM pg_attribute a JOIN t ON a.attrelid = t.oid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
    'primary_key', coalesce((
        SELECT jsonb_agg(cols.name ORDER BY k.ord)
        FROM pg_constraint co JOIN t ON co.conrelid = t.oid
        CROSS JOIN LATERAL unnest(co.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN cols ON cols.attnum = k.attnum
        WHERE co.contype = 'p'), '[]'::jsonb),
    'indexes', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'name', ic.relname::text,
                   'definition', pg_get_indexdef(i.indexrelid),
                   'columns', coalesce((
                       SELECT jsonb_agg(cols.name ORDER BY cols.attnum)
                       FROM cols
                       WHERE cols.attnum = ANY (i.indkey::int2[])
                          OR EXISTS (SELECT 1 FROM pg_depend dep
                                     WHERE dep.classid = 'pg_class'::regclass
                                       AND dep.objid = i.indexrelid
                                       AND dep.refobjid = i.indrelid
                                       AND dep.refobjsubid = cols.attnum)), '[]'::jsonb),
                   'constraint', (SELECT co.conname::text FROM pg_constraint co
                                  WHERE co.conindid = i.indexrelid AND co.conrelid = i.indrelid
                                    AND co.contype IN ('p', 'u', 'x')))
               ORDER BY ic.relname)
        FROM pg_index i JOIN t ON i.indrelid = t.oid
        JOIN pg_class ic ON ic.oid = i.indexrelid), '[]'::jsonb),
    'constraints', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'name', co.conname::text,
                   'on_table', co.conrelid::regclass::text,
                   'kind', co.contype::text,
                   'definition', pg_get_constraintdef(co.oid),
                   'columns', coalesce((
                       SELECT jsonb_agg(cols.name ORDER BY cols.attnum)
                       FROM cols
                       WHERE (co.conrelid = (SELECT oid FROM t) AND cols.attnum = ANY (co.conkey))
                          OR (co.confrelid = (SELECT oid FROM t) AND cols.attnum = ANY (co.confkey))),
                       '[]'::jsonb),
                   'validated', co.convalidated)
               ORDER BY co.conrelid::regclass::text, co.conname)
        FROM pg_constraint co, t
        WHERE co.conrelid = t.oid OR (co.contype = 'f' AND co.confrelid = t.oid AND co.conrelid <> t.oid)),
        '[]'::jsonb),
    'triggers', coalesce((
        SELECT jsonb_agg(tg.tgname::text ORDER BY tg.tgname)
        FROM pg_trigger tg JOIN t ON tg.tgrelid = t.oid
        WHERE NOT tg.tgisinternal AND tg.tgname NOT LIKE 'strata\_%'), '[]'::jsonb),
    'dependent_views', coalesce((
        SELECT jsonb_agg(DISTINCT v.oid::regclass::text)
        FROM pg_depend dep
        JOIN pg_rewrite r ON r.oid = dep.objid AND dep.classid = 'pg_rewrite'::regclass
        JOIN pg_class v ON v.oid = r.ev_class
        JOIN t ON dep.refobjid = t.oid
        WHERE dep.refclassid = 'pg_class'::regclass AND v.oid <> t.oid), '[]'::jsonb),
    'estimated_rows', (SELECT greatest(t.reltuples, 0)::bigint FROM t)
)::text
FROM t
"#;
