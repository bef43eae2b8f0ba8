//! Catalog queries: table sizes, function volatility, server version, and
//! the rewrite-rate measurement behind duration estimates.

use std::collections::HashMap;
use std::time::Instant;

use super::{Connection, DbError};

/// (schema.table, estimated rows, total bytes) for every user table.
pub async fn table_sizes(conn: &Connection) -> Result<Vec<(String, String, i64, i64)>, DbError> {
    let rows = conn
        .query(
            "SELECT n.nspname::text, c.relname::text,
                    greatest(coalesce(s.n_live_tup, 0), c.reltuples::bigint, 0)::bigint,
                    pg_total_relation_size(c.oid)::bigint
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.relkind IN ('r', 'p', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Volatility ('i', 's', 'v') of the named functions; for overloaded
/// names, the most volatile overload.
pub async fn volatility(
    conn: &Connection,
    names: &[String],
) -> Result<HashMap<String, char>, DbError> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = conn
        .query(
            "SELECT proname::text, max(provolatile::text) FROM pg_proc WHERE proname = ANY($1) GROUP BY proname",
            &[&names],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let v: String = r.get(1);
            Some((r.get::<_, String>(0), v.chars().next()?))
        })
        .collect())
}

/// `server_version_num` (e.g. 150018).
pub async fn server_version_num(conn: &Connection) -> Result<i32, DbError> {
    let rows = conn
        .query("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Measures how fast this server rewrites a table, in bytes per second:
/// it rewrites a temporary table of 200,000 rows (~15 MB) with a type
/// change and times it. Temporary tables skip WAL, so real rewrites of
/// logged tables are somewhat slower; the estimate is a lower bound.
pub async fn measure_rewrite_rate(conn: &Connection) -> Result<f64, DbError> {
    conn.batch(
        "DROP TABLE IF EXISTS pg_temp.strata_calibration;
         CREATE TEMP TABLE strata_calibration AS
             SELECT g AS id, md5(g::text) AS payload, now() AS at FROM generate_series(1, 200000) g;",
    )
    .await?;
    let started = Instant::now();
    conn.batch("ALTER TABLE pg_temp.strata_calibration ALTER COLUMN id TYPE bigint")
        .await?;
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let bytes: i64 = conn
        .query(
            "SELECT pg_total_relation_size('pg_temp.strata_calibration')",
            &[],
        )
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    conn.batch("DROP TABLE pg_temp.strata_calibration").await?;
    Ok(bytes as f64 / seconds)
}

/// (schema, table) of each of `names` (as written in SQL, resolved with the
/// connection's search_path) that exists; missing ones are left out.
pub async fn qualified_tables(
    conn: &Connection,
    names: &[String],
) -> Result<Vec<(String, String)>, DbError> {
    let rows = conn
        .query(
            "SELECT DISTINCT n.nspname::text, c.relname::text
             FROM unnest($1::text[]) AS name
             JOIN pg_class c ON c.oid = to_regclass(name)
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'm')
             ORDER BY 1, 2",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Another session that holds a lock on one of the tables a migration
/// needs, inside a transaction that has been open for a while or sits idle.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    /// Backend pid.
    pub pid: i32,
    /// `application_name`, or empty.
    pub application: String,
    /// `state` from pg_stat_activity (`active`, `idle in transaction`, ...).
    pub state: String,
    /// Seconds since its transaction began.
    pub xact_secs: i64,
    /// When its transaction began (epoch seconds): with `pid`, identifies
    /// the transaction.
    pub xact_start: f64,
    /// The tables it holds locks on, of those asked about.
    pub tables: Vec<String>,
    /// Its current or last query, shortened.
    pub query: String,
}

/// Sessions holding locks on any of `tables` whose transaction is idle or
/// older than `min_age_ms`. The names are SQL (`"Sch".t`, `"Users"`) and
/// resolve as the migration's statements resolve them (`to_regclass`, with
/// the session's search_path), so `users` never matches `archive.users`
/// or `"Users"`. The tables come back as the server prints them.
pub async fn lock_holders(
    conn: &Connection,
    tables: &[String],
    min_age_ms: i64,
) -> Result<Vec<LockHolder>, DbError> {
    let rows = conn
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
                    coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0),
                    array_agg(DISTINCT c.oid::regclass::text ORDER BY c.oid::regclass::text),
                    coalesce(left(regexp_replace(a.query, '\\s+', ' ', 'g'), 100), ''),
                    extract(epoch FROM a.xact_start)::float8
             FROM pg_locks l
             JOIN pg_stat_activity a ON a.pid = l.pid
             JOIN pg_class c ON c.oid = l.relation
             WHERE l.granted AND l.locktype = 'relation' AND a.pid <> pg_backend_pid()
               AND a.datname = current_database() AND a.xact_start IS NOT NULL
               AND c.oid IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)
               AND (a.state LIKE 'idle in transaction%'
                    OR a.xact_start < now() - make_interval(secs => $2::bigint / 1000.0))
             GROUP BY a.pid, a.application_name, a.state, a.xact_start, a.query
             ORDER BY a.xact_start",
            &[&tables, &min_age_ms],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LockHolder {
            pid: r.get(0),
            application: r.get(1),
            state: r.get(2),
            xact_secs: r.get(3),
            tables: r.get(4),
            query: r.get(5),
            xact_start: r.get(6),
        })
        .collect())
}

/// Transactions in this database open for longer than `min_secs` (they
/// hold back old snapshots, which CONCURRENTLY builds wait for): (pid,
/// application_name, state, seconds).
pub async fn long_transactions(
    conn: &Connection,
    min_secs: i64,
) -> Result<Vec<(i32, String, String, i64)>, DbError> {
    let rows = conn
        .query(
            "SELECT pid, coalesce(application_name, ''), coalesce(state, ''),
                    extract(epoch FROM now() - xact_start)::bigint
             FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND xact_start < now() - make_interval(secs => $1::bigint)
               AND backend_type = 'client backend'
             ORDER BY xact_start",
            &[&min_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}
