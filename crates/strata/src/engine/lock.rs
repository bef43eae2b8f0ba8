//! The migration lock: a session advisory lock on a dedicated connection,
//! keyed by the history table, so that at most one runner changes a
//! database's migrations at a time. It is released when the process dies,
//! because the server ends the session.

use std::time::{Duration, Instant};

use super::error::EngineError;
use crate::db::{Connection, Target};

/// A held lock. Dropping it closes the connection, which releases it.
pub struct MigrationLock {
    conn: Connection,
    key: i64,
}

impl MigrationLock {
    /// Waits at most `wait` for the lock, polling with growing pauses. On
    /// timeout the error names the holder: pid, application_name, query.
    pub async fn acquire(
        target: &Target,
        key: i64,
        wait: Duration,
    ) -> Result<MigrationLock, EngineError> {
        let conn = target
            .with_application_name("strata-lock")
            .connect()
            .await?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let got: bool = conn
                .query("SELECT pg_try_advisory_lock($1)", &[&key])
                .await?
                .first()
                .map(|r| r.get(0))
                .unwrap_or(false);
            if got {
                return Ok(MigrationLock { conn, key });
            }
            let elapsed = started.elapsed();
            if elapsed >= wait {
                return Err(EngineError::LockTimeout {
                    waited_secs: elapsed.as_secs(),
                    holder: holder(&conn, key).await,
                });
            }
            tokio::time::sleep(pause.min(wait - elapsed)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Releases the lock explicitly.
    pub async fn release(self) -> Result<(), EngineError> {
        self.conn
            .query("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await?;
        Ok(())
    }
}

/// Describes the session holding the lock, for the timeout message.
async fn holder(conn: &Connection, key: i64) -> String {
    let (hi, lo) = (
        ((key as u64) >> 32) as i64,
        ((key as u64) & 0xffff_ffff) as i64,
    );
    let row = conn
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), coalesce(left(a.query, 200), '')
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = $1 AND l.objid::bigint = $2
               AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             LIMIT 1",
            &[&hi, &lo],
        )
        .await;
    match row {
        Ok(Some(r)) => format!(
            "pid {} (application_name '{}', {}), last query: {}",
            r.get::<_, i32>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, String>(3)
        ),
        Ok(None) => "the holder has just released it".to_owned(),
        Err(e) => format!("the holder could not be identified: {e}"),
    }
}
