//! The watchdog: a second connection that watches our backend while a
//! statement runs.
//!
//! `lock_timeout` bounds how long *our* statement waits for a lock, but the
//! damage is done to the queries that queue *behind* it. The watchdog
//! cancels our statement (`pg_cancel_backend`) when:
//! - our backend waits for a lock and other sessions are blocked by it
//!   (`pg_blocking_pids`) for longer than the budget (the lock-queue rule);
//! - more application queries than `max_blocked_queries` are blocked behind
//!   our backend, waiting or not (a long rewrite holding its lock);
//! - a replica lags more than `max_replication_lag`;
//! - application queries have been blocked behind our backend for longer
//!   than `max_lock_hold` (the no-stall backstop, on by default).
//!
//! The runner sees the cancellation (SQLSTATE 57014) and asks the watchdog
//! why. After the first three it retries like after a lock timeout, within
//! the retry budget: the obstacle is outside the statement and may go away.
//! A statement stopped by `max_lock_hold` is not retried: it stalls the
//! application by itself and would stall it again.
//!
//! While armed for an index build, it also samples
//! `pg_stat_progress_create_index` for our backend, which the runner turns
//! into progress for the user.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_query::NodeEnum;

use crate::db::activity::{self, IndexBuild};
use crate::db::{Connection, DbError, Target};

/// What the watchdog enforces.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// How long other sessions may queue behind our *waiting* statement.
    pub lock_queue: Option<Duration>,
    /// How many sessions may be blocked behind our backend at once.
    pub max_blocked: Option<u32>,
    /// How far replicas may lag, in seconds.
    pub max_replication_lag: Option<Duration>,
    /// How long application queries may stay blocked behind our backend.
    pub max_lock_hold: Option<Duration>,
}

/// Why the watchdog cancelled a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancel {
    /// What it saw, for the user.
    pub reason: String,
    /// Whether running the statement again may succeed (false for a
    /// statement that blocked the application by itself for too long).
    pub retry: bool,
}

impl Cancel {
    /// The error the runner reports for the cancelled statement in place
    /// of the server's query_canceled: lock_not_available (55P03) when
    /// running it again may succeed, so that it is retried like a lock
    /// timeout, else query_canceled (57014) with the reason and `hint`.
    pub fn as_error(&self, hint: Option<String>) -> DbError {
        DbError::Server {
            severity: "ERROR".into(),
            code: if self.retry { "55P03" } else { "57014" }.into(),
            message: format!(
                "cancelled by the watchdog: {}{}",
                self.reason,
                if self.retry {
                    ""
                } else {
                    "; not retried, it would stall the application again"
                }
            ),
            detail: None,
            hint: if self.retry { None } else { hint },
            position: None,
        }
    }
}

/// A running watchdog. Dropping it stops the task.
pub struct Watchdog {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    armed: AtomicBool,
    sample_progress: AtomicBool,
    fired: Mutex<Option<Cancel>>,
    progress: Mutex<Option<IndexBuild>>,
}

/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(20);
/// How often it samples index-build progress and replication lag.
const SLOW_TICK: Duration = Duration::from_millis(500);

impl Watchdog {
    /// Starts watching `pid` on its own connection.
    pub async fn start(
        target: &Target,
        pid: i32,
        limits: Limits,
    ) -> Result<Watchdog, crate::db::DbError> {
        let conn = target
            .with_application_name("strata-watchdog")
            .connect()
            .await?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(watch(conn, pid, limits, shared.clone()));
        Ok(Watchdog { shared, task })
    }

    /// Watch the statement that is about to run; `index_build` turns on
    /// progress sampling.
    pub fn arm(&self, index_build: bool) {
        *lock(&self.shared.fired) = None;
        *lock(&self.shared.progress) = None;
        self.shared
            .sample_progress
            .store(index_build, Ordering::SeqCst);
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// Stop watching; returns why the watchdog cancelled the statement, if
    /// it did.
    pub fn disarm(&self) -> Option<Cancel> {
        self.shared.armed.store(false, Ordering::SeqCst);
        lock(&self.shared.fired).take()
    }

    /// The latest progress sample of the running index build.
    pub fn progress(&self) -> Option<IndexBuild> {
        lock(&self.shared.progress).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The watched backend: does it wait for a lock, how many sessions wait for
/// it, and which statement it runs.
const LOOK: &str = "SELECT coalesce(a.wait_event_type = 'Lock', false),
        (SELECT count(*)::int FROM pg_stat_activity b
          WHERE b.pid <> $1 AND $1 = ANY(pg_blocking_pids(b.pid))),
        a.query_start::text
 FROM pg_stat_activity a WHERE a.pid = $1";

async fn watch(conn: Connection, pid: i32, limits: Limits, shared: Arc<Shared>) {
    let mut blocking_since: Option<Instant> = None;
    // Since when sessions have been blocked behind the armed statement, as
    // seen from here; `pg_locks.waitstart` (PostgreSQL 14+) is preferred,
    // since it also counts waits that began before the statement did.
    let mut holding_since: Option<Instant> = None;
    let mut last_slow = Instant::now();
    // Prepared once: the look every 20 ms is then one round trip and no
    // parsing or planning on the server, which shares the CPU with the
    // migration it watches.
    let Ok(look) = conn.prepare(LOOK).await else {
        return;
    };
    loop {
        tokio::time::sleep(TICK).await;
        if !shared.armed.load(Ordering::SeqCst) {
            blocking_since = None;
            holding_since = None;
            continue;
        }
        if conn.is_closed() {
            return;
        }
        let mut reason = None;
        let enforcing = limits.lock_queue.is_some()
            || limits.max_blocked.is_some()
            || limits.max_replication_lag.is_some()
            || limits.max_lock_hold.is_some();
        if !enforcing {
            if last_slow.elapsed() >= SLOW_TICK {
                last_slow = Instant::now();
                sample_progress(&conn, pid, &shared).await;
            }
            continue;
        }
        // Our backend: does it wait for a lock, how many sessions wait for
        // it, and which statement it runs (its start identifies it, so a
        // cancel can never hit the statement after the one judged).
        let row = conn.query_prepared(&look, &[&pid]).await;
        let (waiting, blocked, statement): (bool, i32, Option<String>) =
            match row.ok().as_ref().and_then(|r| r.first()) {
                Some(r) => (r.get(0), r.get(1), r.get(2)),
                None => continue,
            };
        if blocked > 0 {
            holding_since.get_or_insert_with(Instant::now);
        } else {
            holding_since = None;
        }
        if let (Some(max), Some(since)) = (limits.max_lock_hold, holding_since) {
            if let Some(stall) = stall(&conn, pid, since, max).await {
                reason = Some(stall);
            }
        }
        if let (Some(max), None) = (limits.max_blocked, &reason) {
            if blocked > max as i32 {
                reason = Some(Cancel {
                    reason: format!(
                        "{blocked} application queries were blocked behind this statement (max_blocked_queries = {max})"
                    ),
                    retry: true,
                });
            }
        }
        match limits.lock_queue {
            Some(budget) if waiting && blocked > 0 => {
                let since = *blocking_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= budget && reason.is_none() {
                    reason = Some(Cancel {
                        reason: format!(
                            "{blocked} session(s) were queued behind this statement for longer than {} ms",
                            budget.as_millis()
                        ),
                        retry: true,
                    });
                }
            }
            _ => blocking_since = None,
        }
        if last_slow.elapsed() >= SLOW_TICK {
            last_slow = Instant::now();
            sample_progress(&conn, pid, &shared).await;
            if let (Some(max), None) = (limits.max_replication_lag, &reason) {
                if let Ok(Some(lag)) = activity::max_replication_lag(&conn).await {
                    if lag > max.as_secs_f64() {
                        reason = Some(Cancel {
                            reason: format!(
                                "a replica lags {lag:.1} s behind (max_replication_lag = {} s)",
                                max.as_secs_f64()
                            ),
                            retry: true,
                        });
                    }
                }
            }
        }
        if let Some(reason) = reason {
            if shared.armed.load(Ordering::SeqCst) {
                // Set before the cancel: the runner may see the cancelled
                // statement fail before this task runs again.
                *lock(&shared.fired) = Some(reason);
                let cancelled = conn
                    .query(
                        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                         WHERE pid = $1 AND query_start::text = $2",
                        &[&pid, &statement],
                    )
                    .await
                    .ok()
                    .and_then(|rows| rows.first().map(|r| r.get::<_, bool>(0)))
                    .unwrap_or(false);
                if !cancelled {
                    // The statement judged has finished; leave the next alone.
                    *lock(&shared.fired) = None;
                }
                blocking_since = None;
                holding_since = None;
            }
        }
    }
}

/// The no-stall backstop: when application queries have been blocked
/// behind `pid` for longer than `max`, says for how long and which ones.
/// The wait is the longest `pg_locks.waitstart` among the blocked sessions
/// (or, on servers without that column, how long this task has seen
/// sessions blocked behind the statement).
async fn stall(conn: &Connection, pid: i32, seen_since: Instant, max: Duration) -> Option<Cancel> {
    let blocked = conn
        .query(
            "SELECT b.pid, coalesce(b.application_name, ''),
                    coalesce(left(regexp_replace(b.query, '\\s+', ' ', 'g'), 80), ''),
                    (SELECT extract(epoch FROM now() - min(l.waitstart))::float8
                       FROM pg_locks l WHERE l.pid = b.pid AND NOT l.granted)
             FROM pg_stat_activity b
             WHERE b.pid <> $1 AND $1 = ANY(pg_blocking_pids(b.pid))
             ORDER BY 4 DESC NULLS LAST",
            &[&pid],
        )
        .await;
    let seen = seen_since.elapsed().as_secs_f64();
    let rows: Vec<(i32, String, String, Option<f64>)> = match blocked {
        Ok(rows) => rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect(),
        // No `waitstart` before PostgreSQL 14: judge by what was seen.
        Err(_) if seen >= max.as_secs_f64() => Vec::new(),
        Err(_) => return None,
    };
    let longest = rows.iter().filter_map(|r| r.3).fold(seen, f64::max);
    if longest < max.as_secs_f64() {
        return None;
    }
    let examples: Vec<String> = rows
        .iter()
        .take(3)
        .map(|(pid, app, query, waited)| {
            format!(
                "pid {pid} ({}{}): {query}",
                if app.is_empty() {
                    "no application_name"
                } else {
                    app
                },
                waited
                    .map(|w| format!(", waiting {w:.2} s"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let count = rows.len();
    Some(Cancel {
        reason: format!(
            "application queries were blocked behind this statement for {longest:.2} s (max_lock_hold = {})",
            describe(max)
        ) + &if examples.is_empty() {
            String::new()
        } else {
            format!(
                "; {count} blocked, e.g. {}",
                examples.join("; ")
            )
        },
        retry: false,
    })
}

/// `1 s`, `250 ms`.
pub(super) fn describe(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// What to do instead of a statement the watchdog stopped for holding its
/// lock too long, by the kind of statement.
pub fn safe_alternative(stmt: &crate::sql::Statement) -> String {
    use pg_query::protobuf::{AlterTableType, ConstrType};
    let batched = "run it as a backfill in short batches, each committed on its own: put `-- strata:backfill` on the line above it; keep ALTER TABLE in a migration of its own, so no ACCESS EXCLUSIVE lock is held while rows are written (expand/contract)";
    let generic = "split the change so that no statement holds a lock on a busy table for long: batches committed one by one, CONCURRENTLY forms, NOT VALID then VALIDATE, or an expand/contract plan (new column or table, batched backfill, switch the application, drop the old one)";
    let nodes = stmt.nodes();
    let Some(node) = nodes.first().and_then(|n| n.node.as_ref()) else {
        return generic.to_owned();
    };
    match node {
        NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) | NodeEnum::InsertStmt(_) => {
            batched.to_owned()
        }
        NodeEnum::IndexStmt(i) if !i.concurrent => {
            "CREATE INDEX CONCURRENTLY in a `-- strata:no-transaction` migration (`safe_rewrites = true` does this)".to_owned()
        }
        NodeEnum::AlterTableStmt(_) => {
            let Some((_, cmds)) = crate::lint::ast::alter_table(node) else {
                return generic.to_owned();
            };
            let has = |f: &dyn Fn(&pg_query::protobuf::AlterTableCmd) -> bool| cmds.iter().any(|c| f(c));
            let constraint = |kinds: &[ConstrType]| {
                has(&|c| {
                    crate::lint::ast::constraint(c).is_some_and(|k| {
                        !k.skip_validation && kinds.iter().any(|t| crate::lint::ast::constr_is(k, *t))
                    })
                })
            };
            if constraint(&[ConstrType::ConstrForeign, ConstrType::ConstrCheck]) {
                "add the constraint NOT VALID (a brief lock), commit, then `ALTER TABLE ... VALIDATE CONSTRAINT ...` in a separate migration: validation lets reads and writes go on (`safe_rewrites = true` does this)".to_owned()
            } else if constraint(&[ConstrType::ConstrUnique, ConstrType::ConstrPrimary]) {
                "build a unique index with CREATE INDEX CONCURRENTLY, then `ADD CONSTRAINT ... USING INDEX` (`safe_rewrites = true` does this)".to_owned()
            } else if has(&|c| crate::lint::ast::is(c, AlterTableType::AtSetNotNull)) {
                "add `CHECK (col IS NOT NULL) NOT VALID`, VALIDATE it, then SET NOT NULL and drop the check (`safe_rewrites = true` does this)".to_owned()
            } else {
                "an expand/contract plan: add a new column (or table), backfill it in batches committed one by one, switch the application to it, then drop the old one".to_owned()
            }
        }
        _ => generic.to_owned(),
    }
}

/// Samples the index build of `pid`, when the armed statement is one.
async fn sample_progress(conn: &Connection, pid: i32, shared: &Shared) {
    if shared.sample_progress.load(Ordering::SeqCst) {
        if let Ok(builds) = activity::index_builds(conn, Some(pid)).await {
            *lock(&shared.progress) = builds.into_iter().next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alternative(sql: &str) -> String {
        let stmts = crate::sql::split(sql, &[]).unwrap();
        safe_alternative(&stmts[0])
    }

    #[test]
    fn the_safe_alternative_fits_the_statement() {
        assert!(alternative("UPDATE users SET plan = 'free' WHERE id > 0").contains("batches"));
        assert!(alternative("DELETE FROM events WHERE at < now()").contains("batches"));
        assert!(
            alternative("ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id)")
                .contains("NOT VALID")
        );
        assert!(alternative("CREATE INDEX i ON users (email)").contains("CONCURRENTLY"));
        assert!(
            alternative("ALTER TABLE users ALTER COLUMN email SET NOT NULL")
                .contains("CHECK (col IS NOT NULL) NOT VALID")
        );
        assert!(alternative("ALTER TABLE users ADD PRIMARY KEY (id)").contains("USING INDEX"));
        assert!(alternative("ALTER TABLE users ALTER COLUMN id TYPE bigint")
            .contains("expand/contract"));
        assert!(alternative("LOCK TABLE users").contains("expand/contract"));
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(describe(Duration::from_secs(1)), "1 s");
        assert_eq!(describe(Duration::from_millis(250)), "250 ms");
    }
}
