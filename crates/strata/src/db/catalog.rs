//! Catalog queries: table sizes, function volatility, server version, and
//! the rewrite-rate measurement behind duration estimates.

use std::collections::HashMap;
use std::time::Instant;

use super::{Connection, DbError};

/// A table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// `pg_class.oid`: identifies the table whatever it is called later.
    pub oid: u32,
    /// Schema, exactly as stored (no quoting, case preserved).
    pub schema: String,
    /// Name, exactly as stored.
    pub name: String,
    /// `relkind`: `r` (table), `p` (partitioned table) or `m` (materialized view).
    pub kind: char,
    /// `relpersistence`: `p` permanent, `u` unlogged, `t` temporary.
    pub persistence: char,
    /// Estimated rows of this relation alone (0 for a partitioned parent,
    /// which stores nothing itself).
    pub rows: i64,
    /// Bytes of this relation alone, indexes and TOAST included. 0 when
    /// the table was dropped while the catalog was read.
    pub bytes: i64,
    /// Part of an extension: pg_dump dumps its definition with the
    /// extension and its data only if the extension registered it.
    pub extension_member: bool,
}

/// The user tables of the database with how they relate: the facts behind
/// sizes (a parent's size is the sum of its partitions or children) and
/// backups (which tables a statement really touches).
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Every user table, partitioned parents and materialized views included.
    pub tables: Vec<Relation>,
    /// `pg_inherits` between tables: (child oid, parent oid), for
    /// partitions and for inheritance children alike.
    pub inherits: Vec<(u32, u32)>,
    /// Foreign keys between tables: (referencing oid, referenced oid).
    pub references: Vec<(u32, u32)>,
    /// `current_schemas(false)`: where unqualified names are looked up,
    /// in order; the first one is where unqualified CREATEs go.
    pub search_path: Vec<String>,
}

impl Tables {
    /// The table with this oid.
    pub fn get(&self, oid: u32) -> Option<&Relation> {
        self.tables.iter().find(|t| t.oid == oid)
    }

    /// `oid` and every partition or inheritance child below it,
    /// recursively, each once, `oid` first.
    pub fn with_descendants(&self, oid: u32) -> Vec<u32> {
        let mut out = vec![oid];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            for &(child, p) in &self.inherits {
                if p == parent && !out.contains(&child) {
                    out.push(child);
                }
            }
            i += 1;
        }
        out
    }

    /// (rows, bytes) of a table with all its partitions or children: what
    /// a statement on the parent reads, rewrites or destroys.
    pub fn total(&self, oid: u32) -> (i64, i64) {
        self.with_descendants(oid)
            .into_iter()
            .filter_map(|o| self.get(o))
            .fold((0, 0), |(r, b), t| {
                (r.saturating_add(t.rows), b.saturating_add(t.bytes))
            })
    }

    /// [`Tables::total`] of every table at once, in time linear in the
    /// size of each partition tree rather than in the whole catalog.
    pub fn totals(&self) -> HashMap<u32, (i64, i64)> {
        let own: HashMap<u32, (i64, i64)> = self
            .tables
            .iter()
            .map(|t| (t.oid, (t.rows, t.bytes)))
            .collect();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(child, parent) in &self.inherits {
            children.entry(parent).or_default().push(child);
        }
        self.tables
            .iter()
            .map(|t| {
                let mut seen = vec![t.oid];
                let mut at = 0;
                while at < seen.len() {
                    for &c in children.get(&seen[at]).map(Vec::as_slice).unwrap_or(&[]) {
                        if !seen.contains(&c) {
                            seen.push(c);
                        }
                    }
                    at += 1;
                }
                let sum = seen
                    .iter()
                    .filter_map(|o| own.get(o))
                    .fold((0i64, 0i64), |(r, b), (tr, tb)| {
                        (r.saturating_add(*tr), b.saturating_add(*tb))
                    });
                (t.oid, sum)
            })
            .collect()
    }
}

/// Which tables [`tables`] measures the size of.
#[derive(Debug, Clone, Copy)]
pub enum Sizes<'a> {
    /// None: bytes are 0, and no table is opened.
    None,
    /// Every table.
    All,
    /// Tables with one of these names (in any schema), tables of indexes
    /// with one of these names, and their partitions and inheritance
    /// children (a parent's total is its own plus theirs). The risk
    /// analysis passes the names its migrations mention, so a database of
    /// thousands of tables is not measured whole for one migration.
    Named(&'a [String]),
}

/// Reads [`Tables`]. Every value that can be NULL is read as an Option:
/// a table dropped by another session while this runs has a `pg_class`
/// row in our snapshot but no size any more (`pg_total_relation_size`
/// returns NULL), and that must not stop anything.
///
/// Without sizes ([`Sizes::None`]), bytes are 0 and nothing is locked: the
/// size functions open each table (ACCESS SHARE), which waits behind a
/// session holding an ACCESS EXCLUSIVE lock, and a backup must not wait
/// for that before its pg_dump even starts.
pub async fn tables(conn: &Connection, sizes: Sizes<'_>) -> Result<Tables, DbError> {
    // Which relations get `pg_total_relation_size` (it stats every file
    // of the table, its indexes and TOAST: 2.4 s for 20,000 tables).
    let (sized, names): (&str, Vec<String>) = match sizes {
        Sizes::None => ("false", Vec::new()),
        Sizes::All => ("true", Vec::new()),
        Sizes::Named(names) => ("c.oid IN (SELECT oid FROM sized)", names.to_vec()),
    };
    let rows = conn
        .query(
            &format!("WITH RECURSIVE named AS (
                    SELECT oid FROM pg_class WHERE relname = ANY($1::text[])
                    UNION
                    SELECT x.indrelid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                     WHERE i.relname = ANY($1::text[])
                ), sized AS (
                    SELECT oid FROM named
                    UNION
                    SELECT i.inhrelid FROM pg_inherits i JOIN sized s ON i.inhparent = s.oid
                )
             SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,
                    CASE WHEN c.relkind = 'p' THEN 0
                         ELSE greatest(coalesce(s.n_live_tup, 0), c.reltuples::bigint, 0) END::bigint,
                    CASE WHEN {sized} THEN pg_total_relation_size(c.oid) END::bigint,
                    EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.relkind IN ('r', 'p', 'm')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"),
            &[&names],
        )
        .await?;
    let text = |r: &tokio_postgres::Row, i: usize| -> String {
        r.try_get::<_, Option<String>>(i)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    let int = |r: &tokio_postgres::Row, i: usize| -> i64 {
        r.try_get::<_, Option<i64>>(i).ok().flatten().unwrap_or(0)
    };
    let first = |s: String, default: char| s.chars().next().unwrap_or(default);
    let tables = rows
        .iter()
        .filter_map(|r| {
            Some(Relation {
                oid: r.try_get::<_, Option<u32>>(0).ok().flatten()?,
                schema: text(r, 1),
                name: text(r, 2),
                kind: first(text(r, 3), 'r'),
                persistence: first(text(r, 4), 'p'),
                rows: int(r, 5),
                bytes: int(r, 6),
                extension_member: r
                    .try_get::<_, Option<bool>>(7)
                    .ok()
                    .flatten()
                    .unwrap_or(false),
            })
        })
        .collect();
    let pairs = |rows: Vec<tokio_postgres::Row>| -> Vec<(u32, u32)> {
        rows.iter()
            .filter_map(|r| {
                Some((
                    r.try_get::<_, Option<u32>>(0).ok().flatten()?,
                    r.try_get::<_, Option<u32>>(1).ok().flatten()?,
                ))
            })
            .collect()
    };
    let inherits = pairs(
        conn.query(
            "SELECT i.inhrelid, i.inhparent FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind IN ('r', 'p', 'f')",
            &[],
        )
        .await?,
    );
    let references = pairs(
        conn.query(
            "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f'",
            &[],
        )
        .await?,
    );
    let search_path = conn
        .query("SELECT current_schemas(false)::text[]", &[])
        .await?
        .first()
        .and_then(|r| r.try_get::<_, Option<Vec<String>>>(0).ok().flatten())
        .unwrap_or_default();
    Ok(Tables {
        tables,
        inherits,
        references,
        search_path,
    })
}

/// (schema, table, estimated rows, total bytes) for every user table. A
/// partitioned or inheritance parent counts all its partitions or
/// children, recursively: a statement on the parent touches them all.
pub async fn table_sizes(conn: &Connection) -> Result<Vec<(String, String, i64, i64)>, DbError> {
    let all = tables(conn, Sizes::All).await?;
    let totals = all.totals();
    Ok(all
        .tables
        .iter()
        .map(|t| {
            let (rows, bytes) = totals.get(&t.oid).copied().unwrap_or((0, 0));
            (t.schema.clone(), t.name.clone(), rows, bytes)
        })
        .collect())
}

/// The planner's estimate of the rows a DELETE or UPDATE touches
/// (`EXPLAIN (FORMAT JSON)`; nothing is executed). Runs in its own
/// transaction, rolled back, under a short lock_timeout so that planning
/// (which takes the statement's table locks) never queues behind a
/// long-held lock. `None` when the statement cannot be planned now (its
/// table or columns do not exist yet, a lock was not granted, ...).
pub async fn estimated_rows(conn: &Connection, sql: &str) -> Option<f64> {
    let begun = conn
        .batch("BEGIN; SET LOCAL lock_timeout = '2s'; SET LOCAL statement_timeout = '10s'")
        .await;
    let plan = match begun {
        Ok(()) => {
            conn.query(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
                .await
        }
        Err(e) => Err(e),
    };
    // Always: a failed BEGIN batch may still have opened the transaction.
    let _ = conn.batch("ROLLBACK").await;
    let rows = plan.ok()?;
    let json: serde_json::Value = rows.first()?.try_get(0).ok()?;
    let top = json.get(0)?.get("Plan")?;
    // A DELETE or UPDATE plans as ModifyTable (rows 0) over the scan that
    // finds the rows to change.
    let node = if top.get("Node Type").and_then(|v| v.as_str()) == Some("ModifyTable") {
        top.get("Plans")?.as_array()?.iter().find(|p| {
            p.get("Parent Relationship").and_then(|v| v.as_str()) != Some("InitPlan")
                && p.get("Parent Relationship").and_then(|v| v.as_str()) != Some("SubPlan")
        })?
    } else {
        top
    };
    node.get("Plan Rows")?.as_f64()
}

/// True when `name` (as SQL writes it: `t`, `app.t`, `"T"`; the
/// search_path applies) names a table, index, sequence or view that exists.
/// A name that is not valid SQL is an error from the server.
pub async fn relation_exists(conn: &Connection, name: &str) -> Result<bool, DbError> {
    Ok(conn
        .query_opt("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await?
        .and_then(|r| r.try_get::<_, bool>(0).ok())
        .unwrap_or(false))
}

/// The bytes of the main forks of `oids` together, exact (file sizes, not
/// statistics, which lag behind fresh inserts). 0 means the tables hold no
/// row at all: not even an uncommitted or deleted one, which would occupy
/// a page. `None` when it cannot be told now: `pg_relation_size` takes an
/// ACCESS SHARE lock, so it runs under a short lock_timeout and never
/// queues behind a long-held lock.
pub async fn heap_bytes(conn: &Connection, oids: &[u32]) -> Option<i64> {
    let begun = conn
        .batch("BEGIN; SET LOCAL lock_timeout = '1s'; SET LOCAL statement_timeout = '10s'")
        .await;
    let size = match begun {
        Ok(()) => {
            conn.query(
                "SELECT coalesce(sum(pg_relation_size(o)), 0)::bigint FROM unnest($1::oid[]) AS o",
                &[&oids],
            )
            .await
        }
        Err(e) => Err(e),
    };
    // Always: a failed BEGIN batch may still have opened the transaction.
    let _ = conn.batch("ROLLBACK").await;
    size.ok()?
        .first()?
        .try_get::<_, Option<i64>>(0)
        .ok()
        .flatten()
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
            let v: String = r.try_get::<_, Option<String>>(1).ok().flatten()?;
            Some((r.try_get::<_, String>(0).ok()?, v.chars().next()?))
        })
        .collect())
}

/// (index schema, index name, table name) of every index on a user table
/// or materialized view: `DROP INDEX` names only the index but locks its
/// table, and the analysis must know which. An index lives in its table's
/// schema. Values that can be NULL are skipped, never an error.
pub async fn index_tables(conn: &Connection) -> Result<Vec<(String, String, String)>, DbError> {
    let rows = conn
        .query(
            "SELECT n.nspname::text, i.relname::text, t.relname::text
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = i.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.try_get::<_, Option<String>>(0).ok().flatten()?,
                r.try_get::<_, Option<String>>(1).ok().flatten()?,
                r.try_get::<_, Option<String>>(2).ok().flatten()?,
            ))
        })
        .collect())
}

/// `server_version_num` (e.g. 150018).
pub async fn server_version_num(conn: &Connection) -> Result<i32, DbError> {
    let rows = conn
        .query("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<_, Option<i32>>(0).ok().flatten())
        .unwrap_or(0))
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
        .and_then(|r| r.try_get::<_, Option<i64>>(0).ok().flatten())
        .unwrap_or(0);
    conn.batch("DROP TABLE pg_temp.strata_calibration").await?;
    Ok(bytes as f64 / seconds)
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
    // Read NULL-tolerant: the backend or the table may be gone by the
    // time the row is built.
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(LockHolder {
                pid: r.try_get::<_, Option<i32>>(0).ok().flatten()?,
                application: r
                    .try_get::<_, Option<String>>(1)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                state: r
                    .try_get::<_, Option<String>>(2)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                xact_secs: r.try_get::<_, Option<i64>>(3).ok().flatten().unwrap_or(0),
                tables: r
                    .try_get::<_, Option<Vec<String>>>(4)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                query: r
                    .try_get::<_, Option<String>>(5)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                xact_start: r.try_get::<_, Option<f64>>(6).ok().flatten().unwrap_or(0.0),
            })
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
        .filter_map(|r| {
            Some((
                r.try_get::<_, Option<i32>>(0).ok().flatten()?,
                r.try_get::<_, Option<String>>(1)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                r.try_get::<_, Option<String>>(2)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                r.try_get::<_, Option<i64>>(3).ok().flatten().unwrap_or(0),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(oid: u32, kind: char, rows: i64, bytes: i64) -> Relation {
        Relation {
            oid,
            schema: "public".into(),
            name: format!("t{oid}"),
            kind,
            persistence: 'p',
            rows,
            bytes,
            extension_member: false,
        }
    }

    #[test]
    fn a_parent_counts_its_partitions_and_children_recursively_once() {
        // 1 partitioned: 2 (leaf), 3 (partitioned: 4 leaf); 5 an
        // inheritance parent with rows of its own and child 6; 4 also
        // inherits from 5 (a diamond must not count twice).
        let t = Tables {
            tables: vec![
                rel(1, 'p', 0, 0),
                rel(2, 'r', 100, 1000),
                rel(3, 'p', 0, 0),
                rel(4, 'r', 10, 100),
                rel(5, 'r', 1, 10),
                rel(6, 'r', 2, 20),
            ],
            inherits: vec![(2, 1), (3, 1), (4, 3), (6, 5), (4, 5), (4, 1)],
            ..Tables::default()
        };
        assert_eq!(t.total(1), (110, 1100));
        assert_eq!(t.total(3), (10, 100));
        assert_eq!(t.total(5), (13, 130));
        assert_eq!(t.total(2), (100, 1000));
        assert_eq!(t.total(99), (0, 0), "a table that vanished has no size");
        let all = t.totals();
        for r in &t.tables {
            assert_eq!(all[&r.oid], t.total(r.oid), "{}", r.oid);
        }
    }
}
