//! `strata monitor`: repeated snapshots of server activity on one
//! connection of its own (`application_name = strata-monitor`).

use super::EngineError;
use crate::db::activity::{self, Snapshot};
use crate::db::{Connection, Target};

/// How many rows each list of a snapshot holds at most.
const ROWS: i64 = 10;

/// A monitoring session.
pub struct Monitor {
    conn: Connection,
}

impl Monitor {
    /// Connects.
    pub async fn connect(target: &Target) -> Result<Monitor, EngineError> {
        let conn = target
            .with_application_name("strata-monitor")
            .connect()
            .await?;
        Ok(Monitor { conn })
    }

    /// One snapshot; the monitor's own connection is left out of it.
    pub async fn snapshot(&self) -> Result<Snapshot, EngineError> {
        Ok(activity::snapshot(&self.conn, ROWS).await?)
    }
}
