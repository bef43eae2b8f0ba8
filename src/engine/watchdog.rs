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
//! - a replica lags more than `max_replication_lag`.
//!
//! The runner sees the cancellation (SQLSTATE 57014), asks the watchdog
//! why, and retries like after a lock timeout, within the retry budget.
//!
//! While armed for an index build, it also samples
//! `pg_stat_progress_create_index` for our backend, which the runner turns
//! into progress for the user.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::activity::{self, IndexBuild};
use crate::db::{Connection, Target};

/// What the watchdog enforces.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// How long other sessions may queue behind our *waiting* statement.
    pub lock_queue: Option<Duration>,
    /// How many sessions may be blocked behind our backend at once.
    pub max_blocked: Option<u32>,
    /// How far replicas may lag, in seconds.
    pub max_replication_lag: Option<Duration>,
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
    fired: Mutex<Option<String>>,
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
    pub fn disarm(&self) -> Option<String> {
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

async fn watch(conn: Connection, pid: i32, limits: Limits, shared: Arc<Shared>) {
    let mut blocking_since: Option<Instant> = None;
    let mut last_slow = Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        if !shared.armed.load(Ordering::SeqCst) {
            blocking_since = None;
            continue;
        }
        if conn.is_closed() {
            return;
        }
        let mut reason = None;
        let enforcing = limits.lock_queue.is_some()
            || limits.max_blocked.is_some()
            || limits.max_replication_lag.is_some();
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
        let row = conn
            .query(
                "SELECT coalesce(a.wait_event_type = 'Lock', false),
                        (SELECT count(*)::int FROM pg_stat_activity b
                          WHERE b.pid <> $1 AND $1 = ANY(pg_blocking_pids(b.pid))),
                        a.query_start::text
                 FROM pg_stat_activity a WHERE a.pid = $1",
                &[&pid],
            )
            .await;
        let (waiting, blocked, statement): (bool, i32, Option<String>) =
            match row.ok().as_ref().and_then(|r| r.first()) {
                Some(r) => (r.get(0), r.get(1), r.get(2)),
                None => continue,
            };
        if let Some(max) = limits.max_blocked {
            if blocked > max as i32 {
                reason = Some(format!(
                    "{blocked} application queries were blocked behind this statement (max_blocked_queries = {max})"
                ));
            }
        }
        match limits.lock_queue {
            Some(budget) if waiting && blocked > 0 => {
                let since = *blocking_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= budget && reason.is_none() {
                    reason = Some(format!(
                        "{blocked} session(s) were queued behind this statement for longer than {} ms",
                        budget.as_millis()
                    ));
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
                        reason = Some(format!(
                            "a replica lags {lag:.1} s behind (max_replication_lag = {} s)",
                            max.as_secs_f64()
                        ));
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
            }
        }
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
