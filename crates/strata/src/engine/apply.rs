//! Running one migration: in a transaction, outside one with per-statement
//! progress, or "as written" when the file has its own BEGIN/COMMIT.

use std::time::{Duration, Instant};

use pg_query::NodeEnum;

use super::error::EngineError;
use super::history::{Event, History, RecordParams};
use super::Progress;
use crate::db::{quote_ident, Connection, DbError, Prepared, Request};
use crate::source::{Migration, Script};
use crate::sql::{self, Statement, TransactionBehavior};

pub use crate::sql::RunMode as Mode;

/// Parses a script, turning parser positions into file positions.
///
/// A script whose own transactions do not balance (`sql::balance`) is
/// refused here, before anything runs: run as written, the statements
/// before the bad `BEGIN` would commit and only then would the problem show.
pub fn parse(script: &Script) -> Result<Vec<Statement>, EngineError> {
    let sql = load(script)?;
    let mut statements = split(&sql)?;
    // A misplaced `-- strata:backfill` is refused here too, before anything runs.
    let mut problems = crate::source::mark_backfills(&sql, &mut statements);
    problems.extend(super::backfill_step::spec_problems(script, &statements));
    problems.extend(transaction_problems(script, &statements));
    if !problems.is_empty() {
        return Err(EngineError::Source(problems));
    }
    Ok(statements)
}

/// The problems of a script's own transactions, at their lines (the one
/// check, [`sql::balance::imbalances`], shared with `validate` and lint).
pub fn transaction_problems(
    script: &Script,
    statements: &[Statement],
) -> Vec<crate::source::SourceProblem> {
    sql::balance::imbalances(statements)
        .into_iter()
        .map(|(i, imbalance)| crate::source::SourceProblem {
            path: script.path.clone(),
            line: Some(script.first_line + statements[i].line - 1),
            message: imbalance.message(),
            help: Some(imbalance.help().to_owned()),
        })
        .collect()
}

/// The script with its text (read again from its file when loading
/// released it past the memory budget; see `source::Text`).
pub fn load(script: &Script) -> Result<crate::source::Sql<'_>, EngineError> {
    script.load().map_err(EngineError::Reread)
}

fn split(script: &crate::source::Sql<'_>) -> Result<Vec<Statement>, EngineError> {
    sql::split(script.text(), &script.blocks).map_err(|error| {
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
    pub(super) timeouts: Timeouts,
    pub(super) watchdog: Option<super::watchdog::Watchdog>,
    /// Extra attempts for a CONCURRENTLY build that failed transiently.
    pub(super) index_build_attempts: u32,
    /// Where the backfill engine opens its watchdog's connection.
    pub(super) target: &'a crate::db::Target,
    /// How `-- strata:backfill` statements pace themselves (`[backfill]`).
    pub(super) backfill: crate::config::BackfillSettings,
}

/// Where a migration starts: statement `at` (0-based), after an earlier
/// attempt whose backend was `pid`; `interrupted` when an earlier attempt
/// of this migration failed or was killed (its row is not `applied`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume {
    /// The first statement to run.
    pub at: usize,
    /// The backend of the interrupted attempt, to wait for.
    pub pid: Option<i32>,
    /// An earlier attempt did not finish.
    pub interrupted: bool,
    /// The earlier attempt was killed (its row still says `running`), so
    /// the statement at `at` may have run without being recorded.
    pub killed: bool,
}

/// What one send of a migration's statement(s) came to (see
/// [`Runner::send`]).
struct Sent {
    /// The statements' result (or the transaction opening's, which fails
    /// them too).
    ran: Result<(), DbError>,
    /// With a closing sent: once the statements ran, the history row's and
    /// the COMMIT's result. `None` when there was no closing or the
    /// statements failed (then the COMMIT rolled back).
    closed: Option<Result<(), DbError>>,
}

/// Retry state of one migration: when it started and how many lock
/// timeouts it has retried.
struct Retries {
    started: Instant,
    attempt: u32,
}

/// Which command a run serves, for what `up` and `down` do differently in
/// the loops they share: above all where a run outside a transaction keeps
/// its progress, `Up` in the migration's history row (`running`, `failed`,
/// statements done), `Down` in `down-progress` events, as the row must stay
/// `applied` until the down completes (see `history` for why); then what
/// their messages say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ledger {
    Up,
    Down,
}

impl Ledger {
    /// The command, for errors and events.
    fn direction(self) -> &'static str {
        match self {
            Ledger::Up => "up",
            Ledger::Down => "down",
        }
    }

    /// Extra attempts for a CONCURRENTLY build that failed transiently:
    /// the configured ones going up; none going down.
    fn index_build_attempts(self, configured: u32) -> u32 {
        match self {
            Ledger::Up => configured,
            Ledger::Down => 0,
        }
    }

    /// What the progress line of a run from statement `resume` of `total`
    /// says as it starts.
    fn started_detail(self, resume: usize, total: usize, mode: &Mode) -> String {
        if resume > 0 && resume >= total {
            match self {
                Ledger::Up => format!(
                    "all {total} statements ran before the interruption; recording it as applied"
                ),
                Ledger::Down => format!(
                    "all {total} statements of the down script ran before the interruption; recording it as reverted"
                ),
            }
        } else if resume > 0 {
            format!(
                "resuming at statement {} of {total}, {}",
                resume + 1,
                mode.describe()
            )
        } else {
            mode.describe()
        }
    }

    /// What the failure message says is applied after the transaction of a
    /// run that started at statement `resume` was rolled back.
    fn rollback_note(self, resume: usize) -> String {
        match self {
            Ledger::Up if resume > 0 => {
                format!("; statements {resume} and before stay applied, the rest was rolled back")
            }
            Ledger::Up => "; the transaction was rolled back, nothing was applied".to_owned(),
            Ledger::Down if resume > 0 => format!(
                "; the transaction was rolled back; statements 1 to {resume} of the down script ran before and stay recorded, and `strata down` resumes at statement {}",
                resume + 1
            ),
            Ledger::Down => {
                "; the transaction was rolled back, the migration stays applied".to_owned()
            }
        }
    }

    /// What the failure message says is applied, after `last_safe`
    /// statements were done and recorded.
    fn failure_note(self, last_safe: usize) -> String {
        match self {
            Ledger::Up => format!(
                "; statements 1 to {last_safe} are applied and recorded; fix the cause and run `strata up` to resume at statement {}",
                last_safe + 1
            ),
            Ledger::Down if last_safe == 0 => {
                "; no statement of the down script had run, the migration stays applied"
                    .to_owned()
            }
            Ledger::Down => format!(
                "; statements 1 to {last_safe} of the down script ran outside a transaction and are recorded, the migration is partly reverted; fix the cause and run `strata down` to resume at statement {}",
                last_safe + 1
            ),
        }
    }
}

/// The `down-progress` event of a down script run outside a transaction.
pub(super) fn down_progress(
    statements: &[Statement],
    state: &str,
    done: usize,
    backend_pid: Option<i32>,
    error: Option<String>,
) -> super::history::DownProgress {
    super::history::DownProgress {
        state: state.to_owned(),
        done: done as i32,
        total: statements.len() as i32,
        done_checksum: done_checksum(statements, done),
        backend_pid,
        error,
    }
}

/// Lock and statement timeouts, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `lock_timeout` for statements that take locks.
    pub lock: Duration,
    /// Total retry time after lock timeouts.
    pub budget: Duration,
    /// `statement_timeout` for DDL.
    pub statement: Option<Duration>,
}

impl Timeouts {
    /// `SET LOCAL` statements for a transaction: the short lock_timeout, and
    /// the DDL statement_timeout when configured.
    pub fn local_settings(&self) -> String {
        let mut sql = format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.lock.as_millis().max(1)
        );
        if let Some(st) = self.statement {
            sql.push_str(&format!(
                "; SET LOCAL statement_timeout = '{}ms'",
                st.as_millis().max(1)
            ));
        }
        sql
    }

    /// Session settings for a statement that runs outside a transaction.
    /// CONCURRENTLY statements wait for old snapshots, which blocks nobody,
    /// so they get the whole retry budget as lock_timeout and no
    /// statement_timeout.
    pub fn session_settings(&self, stmt: &Statement) -> String {
        if matches!(stmt.transaction, TransactionBehavior::Never(why) if why.contains("CONCURRENTLY"))
        {
            return format!(
                "SET lock_timeout = '{}ms'; SET statement_timeout = 0",
                self.budget.as_millis().max(1)
            );
        }
        let statement = self.statement.map(|d| d.as_millis().max(1)).unwrap_or(0);
        format!(
            "SET lock_timeout = '{}ms'; SET statement_timeout = '{statement}ms'",
            self.lock.as_millis().max(1)
        )
    }
}

/// Exponential backoff with jitter: 100 ms doubling to at most 5 s, each
/// pause scaled by a random factor in [0.5, 1.5) so that several runners do
/// not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(5_000);
    // A real RNG: the sub-second clock reading used before is constant on
    // clocks with microsecond resolution, so runners retried in lockstep.
    let jitter: f64 = rand::random_range(0.5..1.5);
    Duration::from_millis((base as f64 * jitter) as u64)
}

impl Runner<'_> {
    /// `SET LOCAL` statements for a transaction: the short lock_timeout, and
    /// the DDL statement_timeout when configured.
    fn local_settings(&self) -> String {
        self.timeouts.local_settings()
    }

    /// Session settings for a statement that runs on its own (outside a
    /// transaction). CONCURRENTLY statements wait for old snapshots, which
    /// blocks nobody, so they get the whole retry budget as lock_timeout and
    /// no statement_timeout.
    fn session_settings(&self, stmt: &Statement) -> String {
        self.timeouts.session_settings(stmt)
    }

    /// After a lock timeout: whether to retry, and after telling the user
    /// who held the lock, how long to wait first.
    async fn retry_after_lock_timeout(
        &self,
        m: &Migration,
        stmt: &Statement,
        index: usize,
        error: &DbError,
        retries: &mut Retries,
        observer: &mut dyn FnMut(Progress),
    ) -> bool {
        if error.code() != Some("55P03") || retries.started.elapsed() >= self.timeouts.budget {
            // Not ours to retry.
            return false;
        }
        retries.attempt += 1;
        let attempt = retries.attempt;
        let pause = backoff(attempt).min(
            self.timeouts
                .budget
                .saturating_sub(retries.started.elapsed()),
        );
        let watchdog_reason = match error {
            DbError::Server { message, .. } if message.starts_with("cancelled by the watchdog") => {
                Some(message.clone())
            }
            _ => None,
        };
        // Who holds the lock matters when the statement waited for one; a
        // lagging replica or our own blocking of the app has no holder.
        let waited_for_lock = match watchdog_reason.as_deref() {
            None => true,
            Some(reason) => reason.contains("queued behind this statement"),
        };
        let holders = if waited_for_lock {
            format!("; {}", self.lock_holders(stmt).await)
        } else {
            String::new()
        };
        observer(Progress::Retry {
            attempt,
            message: format!(
                "{}: statement {} {}{holders}; retry {} in {} ms",
                m.label(),
                index + 1,
                watchdog_reason.unwrap_or_else(|| format!(
                    "could not get its lock within lock_timeout ({} ms)",
                    self.timeouts.lock.as_millis()
                )),
                attempt,
                pause.as_millis()
            ),
        });
        tokio::time::sleep(pause).await;
        true
    }

    /// Runs one statement of a migration under the watchdog, reporting
    /// which statement runs and, for index builds, how far it got. A
    /// watchdog cancellation comes back as lock_not_available (55P03), so
    /// the caller retries it exactly like a lock timeout. `opening` (a
    /// transaction's `BEGIN; SET LOCAL ...`) and `closing` (its history row
    /// and COMMIT) go in the same round trip (see [`Runner::send`]).
    #[allow(clippy::too_many_arguments)]
    async fn execute_statement(
        &self,
        m: &Migration,
        index: usize,
        total: usize,
        stmt: &Statement,
        opening: Option<&str>,
        closing: Option<&RecordParams>,
        observer: &mut dyn FnMut(Progress),
    ) -> Sent {
        observer(Progress::Statement {
            label: m.label(),
            index: index + 1,
            total,
            summary: stmt
                .sql
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("--"))
                .unwrap_or("")
                .chars()
                .take(100)
                .collect(),
        });
        self.run_watched(&stmt.sql, stmt, opening, closing, observer)
            .await
    }

    /// Runs `sql` (one statement, `stmt`, or a batch of statements that
    /// `stmt` starts) under the watchdog, if any.
    async fn run_watched(
        &self,
        sql: &str,
        stmt: &Statement,
        opening: Option<&str>,
        closing: Option<&RecordParams>,
        observer: &mut dyn FnMut(Progress),
    ) -> Sent {
        let Some(watchdog) = &self.watchdog else {
            return self.send(opening, Some(sql), closing).await;
        };
        let index_build = stmt
            .nodes()
            .first()
            .and_then(|n| n.node.as_ref())
            .is_some_and(|n| matches!(n, NodeEnum::IndexStmt(_) | NodeEnum::ReindexStmt(_)));
        watchdog.arm(index_build);
        let run = self.send(opening, Some(sql), closing);
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last: Option<crate::db::activity::IndexBuild> = None;
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = tick.tick(), if index_build => {
                    if let Some(sample) = watchdog.progress().filter(|s| last.as_ref() != Some(s)) {
                        last = Some(sample.clone());
                        observer(Progress::IndexBuild(sample));
                    }
                }
            }
        };
        let Some(cancel) = watchdog.disarm() else {
            return result;
        };
        let cancelled = cancel.as_error(Some(super::watchdog::safe_alternative(stmt)));
        match result {
            Sent {
                ran: Err(e),
                closed,
            } if e.code() == Some("57014") => Sent {
                ran: Err(cancelled),
                closed,
            },
            // The cancel reached the history row sent behind the statement:
            // nothing committed, so it counts as the statement's, retried.
            Sent {
                ran: Ok(()),
                closed: Some(Err(e)),
            } if e.code() == Some("57014") => Sent {
                ran: Err(cancelled),
                closed: None,
            },
            result => result,
        }
    }

    /// Sends `opening` (a transaction's `BEGIN; SET LOCAL ...`), `sql` and
    /// `closing` (the history row, then COMMIT) pipelined: all before any
    /// answer is read, so a one-statement migration costs one round trip.
    /// The server runs them in order and each keeps its own result, so a
    /// failing statement's error position is its own. Should `opening`
    /// fail, `sql` fails with it (it only ever fails as a whole: it is
    /// generated, not the user's, text). Should `sql` fail, the history row
    /// fails too and the COMMIT rolls back: nothing is recorded without the
    /// statements it belongs to, and the transaction is over.
    async fn send(
        &self,
        opening: Option<&str>,
        sql: Option<&str>,
        closing: Option<&RecordParams>,
    ) -> Sent {
        let params = closing.map(RecordParams::as_params);
        let mut requests = Vec::with_capacity(4);
        requests.extend(opening.map(Request::Simple));
        requests.extend(sql.map(Request::Simple));
        if let Some(params) = &params {
            requests.push(Request::Prepared(&self.record, params));
            requests.push(Request::Simple("COMMIT"));
        }
        let mut results = self.conn.pipeline(&requests).await.into_iter();
        let mut next = || {
            results
                .next()
                .unwrap_or_else(|| Err(DbError::Io("a pipelined request got no answer".into())))
        };
        let opened = opening.map(|_| next());
        let ran = sql.map(|_| next()).unwrap_or(Ok(()));
        let ran = match opened {
            Some(Err(e)) => Err(e),
            _ => ran,
        };
        let closed = match (&ran, closing) {
            (Ok(()), Some(_)) => {
                let recorded = next();
                let committed = next();
                Some(recorded.and(committed))
            }
            _ => None,
        };
        Sent { ran, closed }
    }

    /// Sends `batch` (statements `first`.. of a transactional migration)
    /// in one round trip. On failure, the statement the server's error
    /// position falls in, with the position made relative to it; or
    /// `usize::MAX` when the error has no position. `closing` as in
    /// [`Runner::execute_statement`].
    #[allow(clippy::too_many_arguments)]
    async fn execute_batch(
        &self,
        m: &Migration,
        first: usize,
        batch: &[Statement],
        total: usize,
        opening: Option<&str>,
        closing: Option<&RecordParams>,
        observer: &mut dyn FnMut(Progress),
    ) -> (Result<(), (usize, DbError)>, Option<Result<(), DbError>>) {
        let mut sql = String::with_capacity(batch.iter().map(|s| s.sql.len() + 2).sum());
        // The character position where each statement starts, 1-based.
        let mut starts = Vec::with_capacity(batch.len());
        let mut chars = 1u32;
        for s in batch {
            starts.push(chars);
            sql.push_str(&s.sql);
            sql.push_str(";\n");
            chars = chars.saturating_add(s.sql.chars().count() as u32 + 2);
        }
        observer(Progress::Statement {
            label: m.label(),
            index: first + 1,
            total,
            summary: format!(
                "statements {} to {} ({} data statements sent together)",
                first + 1,
                first + batch.len(),
                batch.len()
            ),
        });
        let sent = self
            .run_watched(&sql, &batch[0], opening, closing, observer)
            .await;
        let ran = sent.ran.map_err(|error| match error {
            DbError::Server {
                position: Some(pos),
                severity,
                code,
                message,
                detail,
                hint,
            } => {
                let k = starts.partition_point(|s| *s <= pos).saturating_sub(1);
                let error = DbError::Server {
                    position: Some(pos - starts[k] + 1),
                    severity,
                    code,
                    message,
                    detail,
                    hint,
                };
                (first + k, error)
            }
            other => (usize::MAX, other),
        });
        (ran, sent.closed)
    }

    /// Who holds locks on the tables a statement needs.
    async fn lock_holders(&self, stmt: &Statement) -> String {
        let tables: Vec<String> = stmt
            .nodes()
            .iter()
            .filter_map(|n| n.node.as_ref())
            .filter_map(crate::lint::context::table_lock)
            .map(|(_, t)| t)
            .collect();
        let rows = self
            .conn
            .query(
                "SELECT l.pid, coalesce(a.application_name, ''), l.mode, coalesce(c.oid::regclass::text, ''),
                        coalesce(left(regexp_replace(a.query, '\\s+', ' ', 'g'), 100), ''),
                        coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0)
                 FROM pg_locks l
                 JOIN pg_stat_activity a ON a.pid = l.pid
                 LEFT JOIN pg_class c ON c.oid = l.relation
                 WHERE l.granted AND l.pid <> pg_backend_pid() AND l.locktype = 'relation'
                   AND (c.oid IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)
                        OR cardinality($1::text[]) = 0)
                   AND a.datname = current_database()
                 ORDER BY a.xact_start NULLS LAST
                 LIMIT 3",
                &[&tables],
            )
            .await;
        match rows {
            Ok(rows) if !rows.is_empty() => rows
                .iter()
                .map(|r| {
                    format!(
                        "{} held by pid {} ({}, in transaction for {} s): {}",
                        r.get::<_, String>(3),
                        r.get::<_, i32>(0),
                        if r.get::<_, String>(1).is_empty() {
                            "no application_name".to_owned()
                        } else {
                            r.get::<_, String>(1)
                        },
                        r.get::<_, i64>(5),
                        r.get::<_, String>(4)
                    ) + &format!(" [{}]", r.get::<_, String>(2))
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => "the holder has already released it".to_owned(),
        }
    }

    /// Applies `m` from statement `from.at` on. Returns the duration in ms.
    pub async fn up(
        &self,
        m: &Migration,
        statements: &[Statement],
        from: Resume,
        rewrites: &[String],
        observer: &mut dyn FnMut(Progress),
    ) -> Result<i64, EngineError> {
        let (resume, resumed_pid) = (from.at, from.pid);
        let mode = mode(&m.up, statements);
        for note in rewrites {
            observer(Progress::Notice(format!(
                "{}: safe rewrite, {note}",
                m.label()
            )));
        }
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
            detail: Ledger::Up.started_detail(resume, statements.len(), &mode),
        });
        let started = Instant::now();
        let action = if resume > 0 { "resume" } else { "up" };
        let mut retries = Retries {
            started,
            attempt: 0,
        };
        if mode == Mode::Transaction {
            // The history row goes with the last statement (one round trip
            // for a one-statement migration); the server adds the time the
            // transaction took to `before_ms`, the time of earlier attempts.
            let record = |before_ms: i64, lock_retries: u32| {
                let details = serde_json::json!({ "mode": mode.describe(), "resumed_at": resume, "lock_retries": lock_retries, "rewrites": rewrites });
                self.history.record_params(
                    m,
                    statements.len() as i32,
                    self.actor,
                    before_ms,
                    action,
                    &details,
                )
            };
            self.run_in_transaction(
                Ledger::Up,
                m,
                &m.up,
                statements,
                resume,
                Some(&record),
                &mut retries,
                observer,
            )
            .await?;
            return Ok(started.elapsed().as_millis() as i64);
        }
        self.wait_for_previous_runner(m, resumed_pid).await?;
        self.run_outside_transaction(
            Ledger::Up,
            m,
            &m.up,
            statements,
            from,
            resume,
            &mut retries,
            observer,
        )
        .await?;
        let total = statements.len() as i32;
        let ms = started.elapsed().as_millis() as i64;
        let details = serde_json::json!({ "mode": mode.describe(), "resumed_at": resume, "lock_retries": retries.attempt, "rewrites": rewrites });
        let record = self
            .history
            .record_params(m, total, self.actor, ms, action, &details);
        let sent = self.send(Some("BEGIN"), None, Some(&record)).await;
        sent.ran?;
        sent.closed.unwrap_or(Ok(()))?;
        Ok(ms)
    }

    /// Reverts `m`, from statement `from.at` of its down script on (a
    /// `down` outside a transaction that stopped part way resumes there).
    /// Returns the duration in ms.
    pub async fn down(
        &self,
        m: &Migration,
        statements: &[Statement],
        from: Resume,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<i64, EngineError> {
        let script = m
            .down
            .as_ref()
            .expect("invariant: plan_down checked the down script");
        let mode = mode(script, statements);
        let resume = from.at.min(statements.len());
        observer(Progress::Started {
            label: m.label(),
            direction: "down",
            detail: Ledger::Down.started_detail(resume, statements.len(), &mode),
        });
        let started = Instant::now();
        let transactional = mode == Mode::Transaction;
        let mut retries = Retries {
            started,
            attempt: 0,
        };
        // A killed run's last statement may still run on the server.
        self.wait_for_previous_runner(m, from.pid).await?;
        if transactional {
            self.run_in_transaction(
                Ledger::Down,
                m,
                script,
                statements,
                resume,
                None,
                &mut retries,
                observer,
            )
            .await?;
        } else {
            self.run_outside_transaction(
                Ledger::Down,
                m,
                script,
                statements,
                from,
                resume,
                &mut retries,
                observer,
            )
            .await?;
            self.conn.batch("BEGIN").await?;
        }
        let ms = started.elapsed().as_millis() as i64;
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
                    details: serde_json::json!({ "mode": mode.describe(), "resumed_at": resume, "lock_retries": retries.attempt }),
                },
            )
            .await?;
        self.conn.batch("COMMIT").await?;
        Ok(ms)
    }

    /// Runs `statements` of `script` from `resume` on in one transaction.
    /// With `record` (which builds the history row from the time spent
    /// before the attempt and the lock retries so far), the row and COMMIT
    /// go with the last statement and the transaction is committed on
    /// success; without, it is left open for the caller to record the
    /// outcome in and commit. After a lock timeout the whole transaction is
    /// rolled back and tried again (see `retry_after_lock_timeout`); any
    /// other error rolls it back and is returned.
    #[allow(clippy::too_many_arguments)]
    async fn run_in_transaction(
        &self,
        ledger: Ledger,
        m: &Migration,
        script: &Script,
        statements: &[Statement],
        resume: usize,
        record: Option<&dyn Fn(i64, u32) -> RecordParams>,
        retries: &mut Retries,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), EngineError> {
        // Runs of plain data statements go to the server together (see
        // `batches`); after a failure that cannot be pinned on one of them,
        // the attempt is repeated one statement at a time to find it.
        let mut batching = true;
        let begin = format!("BEGIN; {}", self.local_settings());
        'attempt: loop {
            let before_ms = retries.started.elapsed().as_millis() as i64;
            let closing_of = |retries: &Retries| record.map(|r| r(before_ms, retries.attempt));
            if resume >= statements.len() {
                // Nothing to run: the outcome is still recorded in a transaction.
                let closing = closing_of(retries);
                let sent = self.send(Some(&begin), None, closing.as_ref()).await;
                sent.ran?;
                return Ok(sent.closed.unwrap_or(Ok(()))?);
            }
            // Sent with the first statement (or batch): one round trip less.
            let mut opening = Some(begin.as_str());
            let mut i = resume;
            while i < statements.len() {
                let n = if batching {
                    batch_len(&statements[i..])
                } else {
                    1
                };
                let stmt = &statements[i];
                // The history row and COMMIT go with the last statement.
                let closing = if i + n == statements.len() {
                    closing_of(retries)
                } else {
                    None
                };
                let (ran, closed) = if n == 1 {
                    let sent = self
                        .execute_statement(
                            m,
                            i,
                            statements.len(),
                            stmt,
                            opening.take(),
                            closing.as_ref(),
                            observer,
                        )
                        .await;
                    (sent.ran.map_err(|e| (i, e)), sent.closed)
                } else {
                    self.execute_batch(
                        m,
                        i,
                        &statements[i..i + n],
                        statements.len(),
                        opening.take(),
                        closing.as_ref(),
                        observer,
                    )
                    .await
                };
                match ran {
                    Ok(()) => {
                        if let Some(closed) = closed {
                            // Committed with its history row, or (if the
                            // row or COMMIT failed) rolled back.
                            return Ok(closed?);
                        }
                        i += n;
                    }
                    Err((at, error)) => {
                        if closing.is_none() {
                            // With a closing sent, its COMMIT rolled back.
                            let _ = self.conn.batch("ROLLBACK").await;
                        }
                        if self
                            .retry_after_lock_timeout(m, stmt, i, &error, retries, observer)
                            .await
                        {
                            continue 'attempt;
                        }
                        let pinned = at != usize::MAX;
                        let watchdog = matches!(&error, DbError::Server { message, .. } if message.starts_with("cancelled by the watchdog"));
                        if n > 1 && !pinned && error.code() != Some("55P03") && !watchdog {
                            batching = false;
                            continue 'attempt;
                        }
                        let at = if pinned { at } else { i };
                        let note = ledger.rollback_note(resume);
                        return Err(self
                            .failed(m, script, statements, at, error, note, ledger.direction())
                            .await);
                    }
                }
            }
            return Ok(());
        }
    }

    /// Runs `statements` of `script` outside a transaction, statement by
    /// statement, from `resume` on, with the exactly-once rules `up` and
    /// `down` share: each statement that may run in a transaction commits
    /// together with its progress write, a file's own block records its
    /// progress just before its `COMMIT`, and a statement that commits on
    /// its own records it right after. A resume (after the caller waited
    /// for the interrupted run's backend) refuses to guess at an
    /// unverifiable statement, and checks CONCURRENTLY statements in the
    /// catalog (see `resume`). Only where progress is kept differs, so it
    /// is `ledger`'s (see `Ledger`): one loop, so a fix lands in both.
    #[allow(clippy::too_many_arguments)]
    async fn run_outside_transaction(
        &self,
        ledger: Ledger,
        m: &Migration,
        script: &Script,
        statements: &[Statement],
        from: Resume,
        resume: usize,
        retries: &mut Retries,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), EngineError> {
        super::resume::refuse_undecided(m, statements, from, ledger.direction())?;
        let total = statements.len();
        let pid = Some(self.conn.pid());
        self.progress_state(ledger, m, statements, "running", resume, pid, None)
            .await?;
        let build_attempts = ledger.index_build_attempts(self.index_build_attempts);
        let mut in_user_tx = false;
        // The statement after the last committed one: where a retry restarts.
        let mut last_safe = resume;
        let mut i = resume;
        // Before each CONCURRENTLY build, an INVALID index of the same name
        // (left by a failed, cancelled or killed build) is dropped; a VALID
        // one is skipped only where an interrupted attempt may have built it.
        // Only the statement an interrupted attempt stopped at may be
        // skipped as already done.
        let mut may_skip_built = from.interrupted;
        // Extra attempts used on CONCURRENTLY builds that failed transiently.
        let mut builds = 0u32;
        while i < total {
            let may_skip = std::mem::replace(&mut may_skip_built, false);
            // A CONCURRENTLY statement the interrupted run may have done is
            // checked in the catalog first (see `resume`).
            let instead;
            let stmt = match self
                .on_resume(m, i, &statements[i], may_skip, observer)
                .await?
            {
                super::resume::OnResume::Skip => {
                    self.progress_done(ledger, m, statements, i + 1, pid)
                        .await?;
                    last_safe = i + 1;
                    i += 1;
                    continue;
                }
                super::resume::OnResume::Run => &statements[i],
                super::resume::OnResume::Instead(s) => {
                    instead = s;
                    &instead
                }
            };
            if stmt.backfill && !in_user_tx {
                // Batched by the backfill engine, each batch committed with
                // its cursor; the statement is recorded once it finished.
                let done = async {
                    self.run_backfill(ledger.direction(), m, script, statements, i, from, observer)
                        .await?;
                    self.progress_done(ledger, m, statements, i + 1, pid)
                        .await?;
                    Ok::<(), EngineError>(())
                }
                .await;
                if let Err(error) = done {
                    let message = Some(error.to_string());
                    let _ = self
                        .progress_state(ledger, m, statements, "failed", i, None, message)
                        .await;
                    return Err(error);
                }
                last_safe = i + 1;
                i += 1;
                continue;
            }
            // Outside the file's own transactions, a statement that may run
            // in a transaction is wrapped with its progress write, so both
            // commit together (as-written files too).
            let wrap = !in_user_tx && stmt.transaction == TransactionBehavior::Any;
            // Set once a statement that commits on its own has run: if its
            // progress write then fails, the statement still counts as done.
            let mut committed_alone = false;
            let result = async {
                if wrap {
                    self.conn
                        .batch(&format!("BEGIN; {}", self.local_settings()))
                        .await?;
                } else if !in_user_tx {
                    self.conn.batch(&self.session_settings(stmt)).await?;
                }
                // The file's own COMMIT: the progress of the block goes in
                // the block's transaction, so a crash cannot separate them.
                let commits_block = in_user_tx && stmt.transaction == TransactionBehavior::Commit;
                if commits_block {
                    self.progress_done(ledger, m, statements, i + 1, pid)
                        .await?;
                }
                self.execute_statement(m, i, total, stmt, None, None, observer)
                    .await
                    .ran?;
                match stmt.transaction {
                    TransactionBehavior::Begin => {
                        in_user_tx = true;
                        self.conn.batch(&self.local_settings()).await?;
                    }
                    TransactionBehavior::Commit | TransactionBehavior::Rollback => {
                        in_user_tx = false
                    }
                    _ => {}
                }
                committed_alone = !wrap && !in_user_tx;
                if !in_user_tx && !commits_block {
                    self.progress_done(ledger, m, statements, i + 1, pid)
                        .await?;
                }
                if wrap {
                    self.conn.batch("COMMIT").await?;
                }
                Ok::<(), DbError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    if !in_user_tx {
                        last_safe = i + 1;
                    }
                    i += 1;
                }
                Err(error) => {
                    if committed_alone {
                        // It ran and committed; only its progress write
                        // failed. Never run it again.
                        last_safe = i + 1;
                    }
                    if wrap || in_user_tx {
                        let _ = self.conn.batch("ROLLBACK").await;
                        in_user_tx = false;
                    }
                    if self
                        .retry_after_lock_timeout(m, stmt, i, &error, retries, observer)
                        .await
                    {
                        // Restart at the first statement that did not commit; a
                        // cancelled CREATE INDEX CONCURRENTLY may have left an
                        // invalid index to clean up first.
                        i = last_safe;
                        may_skip_built = true;
                        continue;
                    }
                    // Never leave an INVALID index behind: it slows every write.
                    self.drop_invalid_index(stmt, observer).await;
                    if concurrent_index_name(stmt).is_some()
                        && is_transient(&error)
                        && builds < build_attempts
                        && i == last_safe
                    {
                        builds += 1;
                        observer(Progress::Notice(format!(
                            "{}: statement {} failed ({error}); building the index again (attempt {} of {})",
                            m.label(),
                            i + 1,
                            u64::from(builds) + 1,
                            u64::from(build_attempts) + 1
                        )));
                        continue;
                    }
                    let note = ledger.failure_note(last_safe);
                    // Best effort: the statement's own error is the one to report.
                    let message = Some(error.to_string());
                    let _ = self
                        .progress_state(ledger, m, statements, "failed", last_safe, None, message)
                        .await;
                    return Err(self
                        .failed(m, script, statements, i, error, note, ledger.direction())
                        .await);
                }
            }
        }
        if in_user_tx {
            // Not reached: `parse` refuses a script with an unclosed BEGIN
            // before anything runs. Should it happen, the statements before
            // the BEGIN ran and are recorded: exit 1, never "nothing ran".
            let _ = self.conn.batch("ROLLBACK").await;
            return Err(EngineError::Failed {
                label: m.label(),
                detail: format!(
                    "{}: BEGIN without a matching COMMIT; the block was rolled back",
                    script.path.display()
                ),
            });
        }
        Ok(())
    }

    /// Records the state of a run of `m`: `running` on backend `pid` before
    /// its first statement, or `failed` (with `error`), with the first
    /// `done` statements done.
    #[allow(clippy::too_many_arguments)]
    async fn progress_state(
        &self,
        ledger: Ledger,
        m: &Migration,
        statements: &[Statement],
        state: &str,
        done: usize,
        pid: Option<i32>,
        error: Option<String>,
    ) -> Result<(), DbError> {
        match ledger {
            Ledger::Up => {
                self.history
                    .set_progress(
                        self.conn,
                        m,
                        state,
                        done as i32,
                        statements.len() as i32,
                        &done_checksum(statements, done),
                        self.actor,
                        error.as_deref(),
                        pid,
                    )
                    .await
            }
            Ledger::Down => {
                self.history
                    .down_progress(
                        self.conn,
                        self.actor,
                        m,
                        &down_progress(statements, state, done, pid, error),
                    )
                    .await
            }
        }
    }

    /// Records that the first `done` statements of `m` are done; called
    /// inside the statement's own transaction wherever it has one.
    async fn progress_done(
        &self,
        ledger: Ledger,
        m: &Migration,
        statements: &[Statement],
        done: usize,
        pid: Option<i32>,
    ) -> Result<(), DbError> {
        match ledger {
            Ledger::Up => {
                let sum = done_checksum(statements, done);
                let kind = m.kind.as_str();
                let version = m.version.canonical();
                self.conn
                    .execute_prepared(&self.progress, &[&(done as i32), &sum, &kind, &version])
                    .await?;
                Ok(())
            }
            Ledger::Down => {
                self.history
                    .down_progress(
                        self.conn,
                        self.actor,
                        m,
                        &down_progress(statements, "running", done, pid, None),
                    )
                    .await
            }
        }
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

    /// After a failed `CREATE INDEX CONCURRENTLY`, drops the INVALID index
    /// it left behind (concurrently) and says so.
    async fn drop_invalid_index(&self, stmt: &Statement, observer: &mut dyn FnMut(Progress)) {
        let Some(name) = concurrent_index_name(stmt) else {
            return;
        };
        let invalid = self
            .conn
            .query_opt(
                "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                &[&name],
            )
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.get::<_, bool>(0));
        if invalid {
            match self.conn.batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")).await {
                Ok(()) => observer(Progress::Notice(format!("dropped the invalid index {name} left by the failed build"))),
                Err(e) => observer(Progress::Notice(format!("could not drop the invalid index {name}: {e}; the next `strata up` drops it before rebuilding"))),
            }
        }
    }
}

/// Errors after which the same statement may well succeed: deadlocks and
/// serialization failures (a CONCURRENTLY build can deadlock with another
/// session's lock upgrade). A unique violation or a cancellation by a
/// person is not one of them.
fn is_transient(error: &DbError) -> bool {
    matches!(error.code(), Some("40P01" | "40001"))
}

/// How many statements from the first of `rest` go to the server in one
/// round trip: a run of plain data statements (INSERT, UPDATE, DELETE,
/// MERGE, SELECT), at most 1,000 of them or about 1 MB, so a data file of
/// 240,000 INSERTs does not wait for 240,000 round trips. Only in a
/// transactional migration, where the statements commit together anyway,
/// so progress and exactly-once are unchanged. 1 for anything else (DDL
/// runs alone, with its own progress line and lock diagnosis).
fn batch_len(rest: &[Statement]) -> usize {
    const MAX_STATEMENTS: usize = 1_000;
    const MAX_BYTES: usize = 1 << 20;
    let data = |s: &Statement| {
        s.unparsed.is_none()
            && s.transaction == TransactionBehavior::Any
            && matches!(
                s.nodes().as_slice(),
                [pg_query::protobuf::Node {
                    node: Some(
                        NodeEnum::InsertStmt(_)
                            | NodeEnum::UpdateStmt(_)
                            | NodeEnum::DeleteStmt(_)
                            | NodeEnum::MergeStmt(_)
                            | NodeEnum::SelectStmt(_)
                    )
                }]
            )
    };
    let mut bytes = 0;
    let n = rest
        .iter()
        .take(MAX_STATEMENTS)
        .take_while(|s| {
            bytes += s.sql.len();
            bytes <= MAX_BYTES && data(s)
        })
        .count();
    n.max(1)
}

/// The quoted, schema-qualified name of the index a `CREATE INDEX
/// CONCURRENTLY` statement builds, when it names one.
pub(super) fn concurrent_index_name(stmt: &Statement) -> Option<String> {
    let nodes = stmt.nodes();
    let Some(NodeEnum::IndexStmt(index)) = nodes.first().and_then(|n| n.node.as_ref()) else {
        return None;
    };
    if !index.concurrent || index.idxname.is_empty() {
        return None;
    }
    let schema = index
        .relation
        .as_ref()
        .map(|r| r.schemaname.clone())
        .unwrap_or_default();
    Some(if schema.is_empty() {
        quote_ident(&index.idxname)
    } else {
        format!("{}.{}", quote_ident(&schema), quote_ident(&index.idxname))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: &str) -> DbError {
        DbError::Server {
            severity: "ERROR".into(),
            code: code.into(),
            message: String::new(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    #[test]
    fn only_deadlocks_and_serialization_failures_rebuild_an_index() {
        assert!(is_transient(&server_error("40P01")));
        assert!(is_transient(&server_error("40001")));
        assert!(
            !is_transient(&server_error("23505")),
            "duplicates need fixing first"
        );
        assert!(
            !is_transient(&server_error("57014")),
            "a person cancelled it"
        );
    }

    #[test]
    fn backoff_jitter_varies_within_half_to_one_and_a_half_times_the_base() {
        let pauses: Vec<u128> = (0..200).map(|_| backoff(1).as_millis()).collect();
        assert!(pauses.iter().all(|p| (50..150).contains(p)), "{pauses:?}");
        let distinct: std::collections::BTreeSet<_> = pauses.iter().collect();
        assert!(distinct.len() > 50, "jitter barely varies: {distinct:?}");
        // Both halves of the range occur: runners spread out, not only
        // shift together.
        assert!(pauses.iter().any(|p| *p < 90) && pauses.iter().any(|p| *p >= 110));
        assert!((2_500..7_500).contains(&backoff(30).as_millis()));
    }

    #[test]
    fn names_the_index_a_concurrent_build_creates() {
        let stmts = sql::split(
            "CREATE INDEX CONCURRENTLY i ON app.t (a);\nCREATE INDEX j ON t (a);\nCREATE INDEX CONCURRENTLY \"Odd\" ON t (a);",
            &[],
        )
        .unwrap();
        let names: Vec<Option<String>> = stmts.iter().map(concurrent_index_name).collect();
        assert_eq!(
            names,
            [Some("\"app\".\"i\"".into()), None, Some("\"Odd\"".into())]
        );
    }
}
