//! What the server is doing right now: connections, long queries, blocked
//! queries and their blockers, locks on user tables, index build and vacuum
//! progress, and replication lag. One [`Snapshot`] feeds `strata monitor`
//! and the status line of `strata up`.

use super::{Connection, DbError};

/// One look at the server.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Snapshot {
    /// When it was taken (server clock, RFC 3339).
    pub at: String,
    /// Client connections to this database by state (`active`, `idle`,
    /// `idle in transaction`, ...).
    pub connections: Vec<StateCount>,
    /// The longest-running active queries and open transactions, longest first.
    pub long_queries: Vec<Session>,
    /// Sessions waiting for a lock, with the pids that block them.
    pub blocked: Vec<Blocked>,
    /// Locks on user tables, grouped.
    pub locks: Vec<TableLock>,
    /// CREATE INDEX / REINDEX in progress.
    pub index_builds: Vec<IndexBuild>,
    /// VACUUM in progress.
    pub vacuums: Vec<Vacuum>,
    /// Streaming replicas and their lag.
    pub replicas: Vec<Replica>,
}

/// Connections in one state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StateCount {
    /// The state; `unknown` when the server does not say.
    pub state: String,
    /// How many.
    pub count: i64,
}

/// One session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    /// Backend pid.
    pub pid: i32,
    /// `application_name`.
    pub application: String,
    /// `state`.
    pub state: String,
    /// Seconds since the current query (or, when idle in transaction, the
    /// transaction) started.
    pub seconds: f64,
    /// The query, shortened.
    pub query: String,
}

/// A session waiting for a lock.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Blocked {
    /// The waiting session.
    pub session: Session,
    /// The sessions it waits for.
    pub blocked_by: Vec<i32>,
}

/// Locks of one mode on one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableLock {
    /// `schema.table`.
    pub table: String,
    /// The lock mode (`AccessExclusiveLock`, ...).
    pub mode: String,
    /// Granted locks.
    pub granted: i64,
    /// Waiting requests.
    pub waiting: i64,
}

/// A CREATE INDEX or REINDEX in progress (`pg_stat_progress_create_index`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexBuild {
    /// Backend pid.
    pub pid: i32,
    /// The table.
    pub table: String,
    /// The index, when known yet.
    pub index: String,
    /// `CREATE INDEX CONCURRENTLY`, ...
    pub command: String,
    /// The current phase.
    pub phase: String,
    /// Blocks done and total in this phase.
    pub blocks_done: i64,
    /// See `blocks_done`.
    pub blocks_total: i64,
    /// Tuples done and total in this phase.
    pub tuples_done: i64,
    /// See `tuples_done`.
    pub tuples_total: i64,
}

impl IndexBuild {
    /// Percent done in the current phase, when the phase has a size.
    pub fn percent(&self) -> Option<f64> {
        if self.blocks_total > 0 {
            Some(100.0 * self.blocks_done as f64 / self.blocks_total as f64)
        } else if self.tuples_total > 0 {
            Some(100.0 * self.tuples_done as f64 / self.tuples_total as f64)
        } else {
            None
        }
    }
}

/// A VACUUM in progress (`pg_stat_progress_vacuum`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Vacuum {
    /// Backend pid.
    pub pid: i32,
    /// The table.
    pub table: String,
    /// The current phase.
    pub phase: String,
    /// Heap blocks scanned and total.
    pub scanned: i64,
    /// See `scanned`.
    pub total: i64,
}

/// A streaming replica (`pg_stat_replication`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replica {
    /// `application_name` of the WAL receiver.
    pub name: String,
    /// Its address, or `local`.
    pub client: String,
    /// `streaming`, `catchup`, ...
    pub state: String,
    /// Replay lag in seconds, when known.
    pub replay_lag_secs: Option<f64>,
    /// Bytes of WAL not yet replayed.
    pub lag_bytes: Option<i64>,
}

const SESSION_COLUMNS: &str = "a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
    coalesce(extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.xact_start END), 0)::float8,
    coalesce(left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120), '')";

fn session(r: &super::Row) -> Session {
    Session {
        pid: r.get(0),
        application: r.get(1),
        state: r.get(2),
        seconds: r.get(3),
        query: r.get(4),
    }
}

/// Takes a snapshot; `ignore_pid` (the caller's own backend) is left out.
pub async fn snapshot(conn: &Connection, limit: i64) -> Result<Snapshot, DbError> {
    let me = conn.pid();
    let at: String = conn
        .query(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or_default();
    let connections = conn
        .query(
            "SELECT coalesce(state, 'unknown'), count(*)::bigint FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> $1
             GROUP BY 1 ORDER BY 2 DESC, 1",
            &[&me],
        )
        .await?
        .iter()
        .map(|r| StateCount {
            state: r.get(0),
            count: r.get(1),
        })
        .collect();
    let long_queries = conn
        .query(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM pg_stat_activity a
                 WHERE a.datname = current_database() AND a.backend_type = 'client backend' AND a.pid <> $1
                   AND (a.state = 'active' OR a.state LIKE 'idle in transaction%')
                 ORDER BY 4 DESC LIMIT $2"
            ),
            &[&me, &limit],
        )
        .await?
        .iter()
        .map(session)
        .collect();
    let blocked = conn
        .query(
            &format!(
                "SELECT {SESSION_COLUMNS}, pg_blocking_pids(a.pid) FROM pg_stat_activity a
                 WHERE a.datname = current_database() AND a.pid <> $1
                   AND cardinality(pg_blocking_pids(a.pid)) > 0
                 ORDER BY 4 DESC LIMIT $2"
            ),
            &[&me, &limit],
        )
        .await?
        .iter()
        .map(|r| Blocked {
            session: session(r),
            blocked_by: r.get(5),
        })
        .collect();
    let locks = conn
        .query(
            "SELECT n.nspname || '.' || c.relname, l.mode,
                    count(*) FILTER (WHERE l.granted)::bigint, count(*) FILTER (WHERE NOT l.granted)::bigint
             FROM pg_locks l
             JOIN pg_class c ON c.oid = l.relation
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'p')
               AND l.pid <> $1
             GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2 LIMIT $2",
            &[&me, &limit],
        )
        .await?
        .iter()
        .map(|r| TableLock {
            table: r.get(0),
            mode: r.get(1),
            granted: r.get(2),
            waiting: r.get(3),
        })
        .collect();
    let index_builds = index_builds(conn, None).await?;
    let vacuums = conn
        .query(
            "SELECT p.pid, coalesce(p.relid::regclass::text, ''), p.phase, p.heap_blks_scanned, p.heap_blks_total
             FROM pg_stat_progress_vacuum p WHERE p.datname = current_database()",
            &[],
        )
        .await?
        .iter()
        .map(|r| Vacuum {
            pid: r.get(0),
            table: r.get(1),
            phase: r.get(2),
            scanned: r.get(3),
            total: r.get(4),
        })
        .collect();
    let replicas = replicas(conn).await?;
    Ok(Snapshot {
        at,
        connections,
        long_queries,
        blocked,
        locks,
        index_builds,
        vacuums,
        replicas,
    })
}

/// Index builds in progress in this database; only `pid`'s with `Some`.
pub async fn index_builds(conn: &Connection, pid: Option<i32>) -> Result<Vec<IndexBuild>, DbError> {
    Ok(conn
        .query(
            "SELECT p.pid, coalesce(p.relid::regclass::text, ''),
                    coalesce(nullif(p.index_relid, 0)::regclass::text, ''),
                    p.command, p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total
             FROM pg_stat_progress_create_index p
             WHERE p.datname = current_database() AND ($1::int IS NULL OR p.pid = $1)",
            &[&pid],
        )
        .await?
        .iter()
        .map(|r| IndexBuild {
            pid: r.get(0),
            table: r.get(1),
            index: r.get(2),
            command: r.get(3),
            phase: r.get(4),
            blocks_done: r.get(5),
            blocks_total: r.get(6),
            tuples_done: r.get(7),
            tuples_total: r.get(8),
        })
        .collect())
}

/// Streaming replicas with their lag. Empty on a server without replicas
/// (or when the user may not see `pg_stat_replication`).
pub async fn replicas(conn: &Connection) -> Result<Vec<Replica>, DbError> {
    Ok(conn
        .query(
            "SELECT coalesce(application_name, ''), coalesce(client_addr::text, 'local'), coalesce(state, ''),
                    extract(epoch FROM replay_lag)::float8,
                    CASE WHEN pg_is_in_recovery() THEN NULL
                         ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint END
             FROM pg_stat_replication ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| Replica {
            name: r.get(0),
            client: r.get(1),
            state: r.get(2),
            replay_lag_secs: r.get(3),
            lag_bytes: r.get(4),
        })
        .collect())
}

/// The largest replay lag of any replica, in seconds (`None` without replicas).
pub async fn max_replication_lag(conn: &Connection) -> Result<Option<f64>, DbError> {
    Ok(replicas(conn)
        .await?
        .iter()
        .filter_map(|r| r.replay_lag_secs)
        .fold(None, |acc: Option<f64>, lag| {
            Some(acc.map_or(lag, |a| a.max(lag)))
        }))
}
