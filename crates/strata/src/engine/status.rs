//! `strata status`: every migration's state and the analysis of the pending ones.

use super::{analyze, EngineError, MigrationState, MigrationStatus, Project};
use crate::db::Target;

/// The result of `status`: every migration's state, and the risk analysis
/// of the pending ones.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// Every migration, in run order.
    pub migrations: Vec<MigrationStatus>,
    /// Findings in pending migrations.
    pub findings: crate::lint::LintReport,
    /// Backfills recorded in `strata_progress` (running, interrupted,
    /// failed or done).
    pub backfills: Vec<super::backfill::ProgressRow>,
}

/// Reads every migration's state and analyses the pending ones.
pub async fn status(project: &Project, target: &Target) -> Result<StatusReport, EngineError> {
    let conn = target.connect().await?;
    let history = project.history();
    let rows = history.read(&conn).await?;
    let backfills = super::backfill::progress_rows(&conn, &history).await?;
    let mut migrations = project.statuses(&rows);
    for s in migrations.iter_mut() {
        if s.state == MigrationState::Pending {
            if let Some(m) = s.index.and_then(|i| project.migrations.get(i)) {
                if m.kind == crate::source::MigrationKind::Plan {
                    s.plan = super::phases::progress(&conn, &history, m)
                        .await?
                        .map(Box::new);
                    if let Some(p) = &s.plan {
                        s.detail = Some(p.summary.clone());
                    }
                }
            }
        }
    }
    let pending: Vec<usize> = migrations
        .iter()
        .filter(|s| s.state == MigrationState::Pending)
        .filter_map(|s| s.index)
        .collect();
    // Files that do not parse are reported by `up` and `validate`; status
    // still shows the states.
    let findings = analyze(project, Some(&conn), &pending)
        .await
        .unwrap_or_default();
    Ok(StatusReport {
        migrations,
        findings,
        backfills,
    })
}
