//! The lock-queue watchdog.
//!
//! `lock_timeout` bounds how long *our* statement waits for a lock, but the
//! damage is done to the queries that queue *behind* it. A second
//! connection watches our backend while a statement runs: when our backend
//! waits for a lock and other sessions are blocked by it
//! (`pg_blocking_pids`) for longer than the budget, it cancels our statement
//! with `pg_cancel_backend`. The runner sees the cancellation (SQLSTATE
//! 57014), knows the watchdog caused it, and retries like after a lock
//! timeout.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Connection, Target};

/// A running watchdog. Dropping it stops the task.
pub struct Watchdog {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    armed: AtomicBool,
    fired: AtomicBool,
    blocked: AtomicU32,
}

impl Watchdog {
    /// Starts watching `pid` on its own connection. `budget` is how long
    /// other sessions may queue behind our waiting statement.
    pub async fn start(
        target: &Target,
        pid: i32,
        budget: Duration,
    ) -> Result<Watchdog, crate::db::DbError> {
        let conn = target
            .with_application_name("strata-watchdog")
            .connect()
            .await?;
        let shared = Arc::new(Shared {
            armed: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            blocked: AtomicU32::new(0),
        });
        let task = tokio::spawn(watch(conn, pid, budget, shared.clone()));
        Ok(Watchdog { shared, task })
    }

    /// Watch the statement that is about to run.
    pub fn arm(&self) {
        self.shared.fired.store(false, Ordering::SeqCst);
        self.shared.armed.store(true, Ordering::SeqCst);
    }

    /// Stop watching; returns whether the watchdog cancelled the statement,
    /// and how many sessions were queued behind it then.
    pub fn disarm(&self) -> Option<u32> {
        self.shared.armed.store(false, Ordering::SeqCst);
        if self.shared.fired.swap(false, Ordering::SeqCst) {
            Some(self.shared.blocked.load(Ordering::SeqCst))
        } else {
            None
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(conn: Connection, pid: i32, budget: Duration, shared: Arc<Shared>) {
    let mut blocking_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !shared.armed.load(Ordering::SeqCst) {
            blocking_since = None;
            continue;
        }
        // Our backend waits for a lock, and this many sessions wait for us.
        let row = conn
            .query(
                "SELECT coalesce((SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1), false),
                        (SELECT count(*)::int FROM pg_stat_activity a
                          WHERE a.pid <> $1 AND $1 = ANY(pg_blocking_pids(a.pid)))",
                &[&pid],
            )
            .await;
        let Ok(rows) = row else {
            if conn.is_closed() {
                return;
            }
            continue;
        };
        let (waiting, blocked): (bool, i32) = rows
            .first()
            .map(|r| (r.get(0), r.get(1)))
            .unwrap_or((false, 0));
        if !(waiting && blocked > 0) {
            blocking_since = None;
            continue;
        }
        let since = *blocking_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= budget && shared.armed.load(Ordering::SeqCst) {
            shared.blocked.store(blocked as u32, Ordering::SeqCst);
            shared.fired.store(true, Ordering::SeqCst);
            let _ = conn.query("SELECT pg_cancel_backend($1)", &[&pid]).await;
            blocking_since = None;
        }
    }
}
