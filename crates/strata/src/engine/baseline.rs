//! `strata baseline`, and the locked opening it shares with `repair`.

use super::history::Event;
use super::lock::MigrationLock;
use super::{open, os_actor, EngineError, History, MigrationState, MigrationStatus, Project};
use crate::db::{Connection, Target};
use crate::source;

/// Opens `target` for a command that changes only the history (`baseline`,
/// `repair`): the history table (created if missing), the migration lock
/// (the caller releases it), and every migration's status read under it.
pub(super) async fn open_locked(
    project: &Project,
    target: &Target,
) -> Result<(History, Connection, MigrationLock, Vec<MigrationStatus>), EngineError> {
    let history = project.history();
    let conn = open(target).await?;
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    history.ensure(&conn).await?;
    let statuses = project.statuses(&history.read(&conn).await?);
    Ok((history, conn, lock, statuses))
}

/// Marks every migration up to `version` as applied without running it.
pub async fn baseline(
    project: &Project,
    target: &Target,
    version: &str,
) -> Result<Vec<String>, EngineError> {
    let v = project.parse_version(version)?;
    if !project.migrations.iter().any(|m| m.version == v) {
        return Err(EngineError::UnknownVersion(version.to_owned()));
    }
    let (history, conn, lock, statuses) = open_locked(project, target).await?;
    let actor = os_actor();
    let mut marked = Vec::new();
    conn.batch("BEGIN").await?;
    for s in statuses
        .iter()
        .filter(|s| s.state == MigrationState::Pending)
    {
        let Some(i) = s.index else { continue };
        let m = &project.migrations[i];
        if m.kind == source::MigrationKind::Repeatable || m.version > v {
            continue;
        }
        history.insert_baseline(&conn, m, &actor).await?;
        history
            .event(
                &conn,
                &actor,
                &Event {
                    action: "baseline",
                    migration: Some(m),
                    success: true,
                    duration_ms: None,
                    details: serde_json::json!({ "baseline": version }),
                },
            )
            .await?;
        marked.push(m.label());
    }
    conn.batch("COMMIT").await?;
    lock.release().await?;
    Ok(marked)
}
