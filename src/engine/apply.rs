//! Running one migration: in a transaction, outside one with per-statement
//! progress, or "as written" when the file has its own BEGIN/COMMIT.

use std::time::{Duration, Instant};

use pg_query::NodeEnum;

use super::error::EngineError;
use super::history::{Event, History};
use super::Progress;
use crate::db::{quote_ident, Connection, DbError, Prepared};
use crate::source::{Migration, Script};
use crate::sql::{self, Statement, TransactionBehavior};

pub use crate::sql::RunMode as Mode;

/// Parses a script, turning parser positions into file positions.
pub fn parse(script: &Script) -> Result<Vec<Statement>, EngineError> {
    sql::split(&script.text, &script.blocks).map_err(|error| {
        let (line, column) = match &error {
            sql::SqlError::Syntax { line, column, .. } => (*line, *column),
            other => (other.line(), 1),
        };
        EngineError::Sql {
            path: script.path.clone(),
            line: script.first_line + line - 1,
            column,
            error,
        }
    })
}

/// Decides how a script runs.
pub fn mode(script: &Script, statements: &[Statement]) -> Mode {
    let directive = script.no_transaction.as_ref().map(|nt| match nt.line {
        Some(line) => format!("{} at line {line}", nt.source),
        None => nt.source.clone(),
    });
    Mode::of(directive, script.first_line, statements)
}

/// Checksum of the first `done` statements, to check that a resume runs
/// the same file it stopped in.
pub fn done_checksum(statements: &[Statement], done: usize) -> String {
    let joined: Vec<&str> = statements[..done.min(statements.len())]
        .iter()
        .map(|s| s.sql.as_str())
        .collect();
    crate::source::checksum(&joined.join("\n;\n"))
}

/// Runs migrations on one connection.
pub struct Runner<'a> {
    pub(super) conn: &'a Connection,
    pub(super) history: &'a History,
    pub(super) actor: &'a str,
    pub(super) record: Prepared,
    pub(super) progress: Prepared,
    pub(super) wait: Duration,
}

impl Runner<'_> {
    /// Applies `m` from statement `resume` on. Returns the duration in ms.
    pub async fn up(
        &self,
        m: &Migration,
        statements: &[Statement],
        resume: usize,
        resumed_pid: Option<i32>,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<i64, EngineError> {
        let mode = mode(&m.up, statements);
        if let Mode::NoTransaction(why) = &mode {
            if m.up.no_transaction.is_none() {
                observer(Progress::Notice(format!(
                    "{}: runs outside a transaction: {why}",
                    m.label()
                )));
            }
        }
        observer(Progress::Started {
            label: m.label(),
            direction: "up",
            detail: if resume > 0 {
                format!(
                    "resuming at statement {} of {}, {}",
                    resume + 1,
                    statements.len(),
                    mode.describe()
                )
            } else {
                mode.describe()
            },
        });
        let started = Instant::now();
        let action = if resume > 0 { "resume" } else { "up" };
        let details = serde_json::json!({ "mode": mode.describe(), "resumed_at": resume });
        match mode {
            Mode::Transaction => {
                self.conn.batch("BEGIN").await?;
                for (i, stmt) in statements.iter().enumerate().skip(resume) {
                    if let Err(error) = self.conn.batch(&stmt.sql).await {
                        let _ = self.conn.batch("ROLLBACK").await;
                        let note = if resume > 0 {
                            format!("; statements {resume} and before stay applied, the rest was rolled back")
                        } else {
                            "; the transaction was rolled back, nothing was applied".to_owned()
                        };
                        return Err(self
                            .failed(m, &m.up, statements, i, error, note, "up")
                            .await);
                    }
                }
                let ms = started.elapsed().as_millis() as i64;
                self.history
                    .record(
                        self.conn,
                        &self.record,
                        m,
                        statements.len() as i32,
                        self.actor,
                        ms,
                        action,
                        &details,
                    )
                    .await?;
                self.conn.batch("COMMIT").await?;
                Ok(ms)
            }
            Mode::NoTransaction(_) | Mode::AsWritten => {
                let as_written = mode == Mode::AsWritten;
                self.wait_for_previous_runner(m, resumed_pid).await?;
                let total = statements.len() as i32;
                let pid = Some(self.conn.pid());
                self.history
                    .set_progress(
                        self.conn,
                        m,
                        "running",
                        resume as i32,
                        total,
                        &done_checksum(statements, resume),
                        self.actor,
                        None,
                        pid,
                    )
                    .await?;
                let kind = m.kind.as_str();
                let version = m.version.canonical();
                let mut in_user_tx = false;
                let mut last_safe = resume;
                for (i, stmt) in statements.iter().enumerate().skip(resume) {
                    if i == resume && resume > 0 && self.index_already_built(stmt, observer).await?
                    {
                        let sum = done_checksum(statements, i + 1);
                        self.conn
                            .execute_prepared(
                                &self.progress,
                                &[&((i + 1) as i32), &sum, &kind, &version],
                            )
                            .await?;
                        last_safe = i + 1;
                        continue;
                    }
                    let wrap = !as_written && stmt.transaction == TransactionBehavior::Any;
                    let result = async {
                        if wrap {
                            self.conn.batch("BEGIN").await?;
                        }
                        self.conn.batch(&stmt.sql).await?;
                        match stmt.transaction {
                            TransactionBehavior::Begin => in_user_tx = true,
                            TransactionBehavior::Commit | TransactionBehavior::Rollback => {
                                in_user_tx = false
                            }
                            _ => {}
                        }
                        if !in_user_tx {
                            let sum = done_checksum(statements, i + 1);
                            self.conn
                                .execute_prepared(
                                    &self.progress,
                                    &[&((i + 1) as i32), &sum, &kind, &version],
                                )
                                .await?;
                        }
                        if wrap {
                            self.conn.batch("COMMIT").await?;
                        }
                        Ok::<(), DbError>(())
                    }
                    .await;
                    match result {
                        Ok(()) if !in_user_tx => last_safe = i + 1,
                        Ok(()) => {}
                        Err(error) => {
                            if wrap || in_user_tx {
                                let _ = self.conn.batch("ROLLBACK").await;
                            }
                            let note = format!(
                                "; statements 1 to {last_safe} are applied and recorded; fix the cause and run `strata up` to resume at statement {}",
                                last_safe + 1
                            );
                            let message = error.to_string();
                            let _ = self
                                .history
                                .set_progress(
                                    self.conn,
                                    m,
                                    "failed",
                                    last_safe as i32,
                                    total,
                                    &done_checksum(statements, last_safe),
                                    self.actor,
                                    Some(&message),
                                    None,
                                )
                                .await;
                            return Err(self
                                .failed(m, &m.up, statements, i, error, note, "up")
                                .await);
                        }
                    }
                }
                if in_user_tx {
                    let _ = self.conn.batch("ROLLBACK").await;
                    return Err(EngineError::Sql {
                        path: m.up.path.clone(),
                        line: m.up.first_line,
                        column: 1,
                        error: sql::SqlError::Syntax {
                            message: "BEGIN without a matching COMMIT".into(),
                            line: 1,
                            column: 1,
                        },
                    });
                }
                let ms = started.elapsed().as_millis() as i64;
                self.conn.batch("BEGIN").await?;
                self.history
                    .record(
                        self.conn,
                        &self.record,
                        m,
                        total,
                        self.actor,
                        ms,
                        action,
                        &details,
                    )
                    .await?;
                self.conn.batch("COMMIT").await?;
                Ok(ms)
            }
        }
    }

    /// Reverts `m`. Returns the duration in ms.
    pub async fn down(
        &self,
        m: &Migration,
        statements: &[Statement],
        observer: &mut dyn FnMut(Progress),
    ) -> Result<i64, EngineError> {
        let script = m
            .down
            .as_ref()
            .expect("invariant: plan_down checked the down script");
        let mode = mode(script, statements);
        observer(Progress::Started {
            label: m.label(),
            direction: "down",
            detail: mode.describe(),
        });
        let started = Instant::now();
        let transactional = mode == Mode::Transaction;
        if transactional {
            self.conn.batch("BEGIN").await?;
        }
        for (i, stmt) in statements.iter().enumerate() {
            if let Err(error) = self.conn.batch(&stmt.sql).await {
                let _ = self.conn.batch("ROLLBACK").await;
                let note = if transactional {
                    "; the transaction was rolled back, the migration stays applied".to_owned()
                } else {
                    format!("; statements 1 to {i} of the down script ran outside a transaction, and the migration is still recorded as applied")
                };
                return Err(self
                    .failed(m, script, statements, i, error, note, "down")
                    .await);
            }
        }
        let ms = started.elapsed().as_millis() as i64;
        if !transactional {
            self.conn.batch("BEGIN").await?;
        }
        self.history
            .delete(self.conn, m.kind.as_str(), &m.version.canonical())
            .await?;
        self.history
            .event(
                self.conn,
                self.actor,
                &Event {
                    action: "down",
                    migration: Some(m),
                    success: true,
                    duration_ms: Some(ms),
                    details: serde_json::json!({ "mode": mode.describe() }),
                },
            )
            .await?;
        self.conn.batch("COMMIT").await?;
        Ok(ms)
    }

    /// Records a failed attempt in the event log and builds the error.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        m: &Migration,
        script: &Script,
        statements: &[Statement],
        index: usize,
        error: DbError,
        state_note: String,
        direction: &str,
    ) -> EngineError {
        let stmt = &statements[index];
        let mut line = script.first_line + stmt.line - 1;
        if let DbError::Server {
            position: Some(pos),
            ..
        } = &error
        {
            let upto: String = stmt
                .sql
                .chars()
                .take((*pos as usize).saturating_sub(1))
                .collect();
            line += upto.matches('\n').count();
        }
        let _ = self
            .history
            .event(
                self.conn,
                self.actor,
                &Event {
                    action: direction,
                    migration: Some(m),
                    success: false,
                    duration_ms: None,
                    details: serde_json::json!({
                        "statement": index + 1,
                        "line": line,
                        "file": script.path.display().to_string(),
                        "error": error.to_string(),
                    }),
                },
            )
            .await;
        EngineError::MigrationFailed {
            label: m.label(),
            path: script.path.clone(),
            line,
            statement: index + 1,
            total: statements.len(),
            error,
            state_note,
        }
    }

    /// A crashed runner's statement may still run on the server (the server
    /// notices a dead client only when it next talks to it). Wait for it,
    /// boundedly, before resuming.
    async fn wait_for_previous_runner(
        &self,
        m: &Migration,
        pid: Option<i32>,
    ) -> Result<(), EngineError> {
        let Some(pid) = pid.filter(|p| *p != self.conn.pid()) else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            let alive = !self
                .conn
                .query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
                .await?
                .is_empty();
            if !alive {
                return Ok(());
            }
            if started.elapsed() >= self.wait {
                return Err(EngineError::StillRunning {
                    label: m.label(),
                    pid,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// On resume, a `CREATE INDEX CONCURRENTLY` that was interrupted either
    /// finished (the index is valid: skip it) or left an invalid index
    /// behind (drop it so the statement can run again).
    async fn index_already_built(
        &self,
        stmt: &Statement,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<bool, EngineError> {
        let Some(NodeEnum::IndexStmt(index)) = stmt.nodes.first().and_then(|n| n.node.as_ref())
        else {
            return Ok(false);
        };
        if !index.concurrent || index.idxname.is_empty() {
            return Ok(false);
        }
        let schema = index
            .relation
            .as_ref()
            .map(|r| r.schemaname.clone())
            .unwrap_or_default();
        let qualified = if schema.is_empty() {
            quote_ident(&index.idxname)
        } else {
            format!("{}.{}", quote_ident(&schema), quote_ident(&index.idxname))
        };
        let valid: Option<bool> = self
            .conn
            .query_opt(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                &[&qualified],
            )
            .await?
            .map(|r| r.get(0));
        match valid {
            Some(true) => {
                observer(Progress::Notice(format!(
                    "index {qualified} was already built by the interrupted run; skipping"
                )));
                Ok(true)
            }
            Some(false) => {
                observer(Progress::Notice(format!(
                    "dropping invalid index {qualified} left by the interrupted run"
                )));
                self.conn
                    .batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
                    .await?;
                Ok(false)
            }
            None => Ok(false),
        }
    }
}
