//! Runs multi-phase plans (`<version>_<name>.plan.toml`): each phase's
//! operations compiled (`crate::plan::ops::compile`) into actions, run in
//! order, with progress recorded after each action, then the gate.
//!
//! State lives in one `strata_progress` row per plan (kind `plan`, the
//! plan's version, step `plan`): `state` is `running`, `waiting` (at the
//! gate after phase `done`), `failed` or `done`; `done` counts finished
//! phases; the cursor holds the phase and action to run next, when the
//! last phase finished (for `wait` gates), the table facts read when each
//! operation started (so a resumed phase compiles to the same SQL), and
//! the backups taken before phases that drop data. A `Transaction` action
//! commits with its progress update; any other action is recorded right
//! after it, so a `kill -9` re-runs at most that one action, and every
//! action is safe to run again (DDL with `IF [NOT] EXISTS`, a backfill
//! resumes its own cursor, a validation is a query).
//!
//! When the last phase is done the plan's row is written to the history
//! table like any migration's, so `status` shows it applied. The progress
//! row stays (state `done`) with its facts and backups, for `rollback`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::apply::{backoff, concurrent_index_name, Timeouts};
use super::backfill::{self, BackfillId, BackfillSpec};
use super::history::Event;
use super::watchdog::Watchdog;
use super::{backup, EngineError, History, Progress, Project};
use crate::db::{Connection, DbError, Target};
use crate::plan::file::{Gate, OperationKind, Plan};
use crate::plan::{ops, Action, Compiled, Context, TableFacts};
use crate::source::{plans::plan_of, Migration};

/// The `kind` and `step` of a plan's row in `strata_progress`.
pub const KIND: &str = "plan";
const STEP: &str = "plan";

/// How many rows of a failed validation are shown.
const SHOWN_ROWS: usize = 20;

/// Where a plan is, as kept in its `strata_progress` row.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The phase to run next (0-based), or the one running.
    pub phase: usize,
    /// Actions of that phase already done.
    pub action: usize,
    /// When the last finished phase finished (unix seconds), for `wait`.
    pub phase_done_at: Option<i64>,
    /// Table facts, read when an operation's phase started, by
    /// `"<phase>:<operation>"`; `None` when its table did not exist then
    /// (kept too, so that a resumed phase compiles the same way even after
    /// an earlier operation created the table).
    #[serde(default)]
    pub facts: BTreeMap<String, Option<TableFacts>>,
    /// Backups taken before a phase that drops data: (phase, file).
    #[serde(default)]
    pub backups: Vec<(usize, String)>,
    /// The failed action, 1-based, when the plan failed.
    #[serde(default)]
    pub failed_action: Option<usize>,
    /// The plan file's checksum when its first phase started: the phases
    /// that ran are those of that text.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// A plan's progress row.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanState {
    /// `running`, `waiting`, `failed` or `done`.
    pub state: String,
    /// Finished phases.
    pub done: usize,
    /// Phases in the plan.
    pub total: usize,
    /// Where it is.
    pub cursor: Cursor,
    /// Why it failed.
    pub error: Option<String>,
    /// The backend that ran it.
    pub backend_pid: Option<i32>,
}

/// Reads the progress row of the plan with `version`, if any.
pub async fn read_state(
    conn: &Connection,
    history: &History,
    version: &str,
) -> Result<Option<PlanState>, DbError> {
    let exists = crate::db::catalog::relation_exists(conn, history.progress_table()).await?;
    if !exists {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!(
                "SELECT state, done, total, cursor::text, error, backend_pid FROM {}
                 WHERE history_table = $1 AND kind = '{KIND}' AND version = $2 AND step = '{STEP}'",
                history.progress_table()
            ),
            &[&history.name(), &version],
        )
        .await?;
    Ok(row.map(|r| PlanState {
        state: r.get(0),
        done: r.get::<_, i32>(1).max(0) as usize,
        total: r.get::<_, i32>(2).max(0) as usize,
        cursor: serde_json::from_str(&r.get::<_, String>(3)).unwrap_or_default(),
        error: r.get(4),
        backend_pid: r.get(5),
    }))
}

/// The statement that writes a plan's progress row (parameters: history
/// table, version, state, done, total, cursor, backend pid, error).
fn save_sql(history: &History) -> String {
    format!(
        "INSERT INTO {} AS p (history_table, kind, version, step, state, done, total, cursor, backend_pid, error, updated_at)
         VALUES ($1, '{KIND}', $2, '{STEP}', $3, $4, $5, $6::text::jsonb, $7, $8, clock_timestamp())
         ON CONFLICT (history_table, kind, version, step) DO UPDATE SET
            state = EXCLUDED.state, done = EXCLUDED.done, total = EXCLUDED.total, cursor = EXCLUDED.cursor,
            backend_pid = EXCLUDED.backend_pid, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
        history.progress_table()
    )
}

pub(super) async fn save(
    conn: &Connection,
    history: &History,
    version: &str,
    st: &PlanState,
) -> Result<(), DbError> {
    let cursor = serde_json::to_string(&st.cursor).unwrap_or_else(|_| "{}".into());
    let (done, total) = (st.done as i32, st.total as i32);
    conn.execute(
        &save_sql(history),
        &[
            &history.name(),
            &version,
            &st.state,
            &done,
            &total,
            &cursor,
            &st.backend_pid,
            &st.error,
        ],
    )
    .await
    .map(|_| ())
}

/// Deletes a plan's progress row and its backfill cursors.
pub(super) async fn forget(
    conn: &Connection,
    history: &History,
    version: &str,
) -> Result<(), DbError> {
    conn.execute(
        &format!(
            "DELETE FROM {} WHERE history_table = $1 AND ((kind = '{KIND}' AND version = $2)
                OR (kind = '{}' AND version = $3))",
            history.progress_table(),
            backfill::cursor::KIND
        ),
        &[&history.name(), &version, &backfill_version(version)],
    )
    .await
    .map(|_| ())
}

/// The version under which a plan's backfills keep their cursors.
fn backfill_version(version: &str) -> String {
    format!("plan:{version}")
}

/// Which gates a run may pass.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// Pass every gate (`--through-gates`).
    pub through: bool,
    /// Pass the current gate of these plans (`--continue V`), canonical versions.
    pub pass: Vec<String>,
}

/// How a plan run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every phase is done; the plan is recorded applied.
    Finished,
    /// Stopped at a gate: "V: phase k of n done; waiting for: …".
    Waiting(String),
}

/// Reads an operation's table facts (`engine::table_facts`). A table that
/// does not exist gives none: operations that only add to it (or create
/// it) need none, and those that carry its columns over refuse to compile
/// with the reason.
async fn facts_for(
    conn: &Connection,
    op: &OperationKind,
) -> Result<Option<TableFacts>, EngineError> {
    let Some(table) = op.table() else {
        return Ok(None);
    };
    let exists = crate::db::catalog::relation_exists(conn, table).await?;
    if !exists {
        return Ok(None);
    }
    super::table_facts(conn, table).await.map(Some)
}

/// The cursor key of operation `op` of phase `phase`.
fn facts_key(phase: usize, op: usize) -> String {
    format!("{phase}:{op}")
}

/// Makes sure operation `j` of phase `phase` has its facts in the cursor:
/// the stored ones when it already started (a resumed operation compiles
/// to the same SQL although its first actions changed the table), else
/// read now with `read`. Facts are read right before an operation's first
/// action, so an operation sees what the earlier operations of its phase
/// created (a column, a table). Returns true when it read them: the caller
/// saves the cursor before the operation's first action runs.
async fn op_facts<'p, F, Fut>(
    plan: &'p Plan,
    phase: usize,
    j: usize,
    cursor: &mut Cursor,
    read: F,
) -> Result<bool, EngineError>
where
    F: FnOnce(&'p OperationKind) -> Fut,
    Fut: std::future::Future<Output = Result<Option<TableFacts>, EngineError>>,
{
    let op = &plan.phases[phase].operations[j];
    let key = facts_key(phase, j);
    if cursor.facts.contains_key(&key) || op.kind.table().is_none() {
        return Ok(false);
    }
    let facts = read(&op.kind).await?;
    cursor.facts.insert(key, facts);
    Ok(true)
}

/// Compiles operation `j` of phase `phase` with `facts`.
fn compile_op(
    m: &Migration,
    plan: &Plan,
    phase: usize,
    j: usize,
    facts: Option<&TableFacts>,
) -> Result<Compiled, EngineError> {
    let version = m.version.canonical();
    let op = &plan.phases[phase].operations[j];
    let ctx = Context {
        version: &version,
        step: op.step_name(),
        table: facts,
    };
    ops::compile(&op.kind, &ctx).map_err(|e| EngineError::Usage {
        message: format!(
            "{}:{}: `{}`: {}",
            m.up.path.display(),
            op.line,
            op.kind.name(),
            e.message
        ),
        help: e
            .help
            .unwrap_or_else(|| "fix the operation in the plan file".to_owned()),
    })
}

/// Whether operation `j` of phase `phase` can be compiled from the cursor
/// alone: it has no table, or its facts are stored.
fn has_facts(plan: &Plan, phase: usize, j: usize, cursor: &Cursor) -> bool {
    plan.phases[phase].operations[j].kind.table().is_none()
        || cursor.facts.contains_key(&facts_key(phase, j))
}

/// Compiles operation `j` of phase `phase` with its stored facts (none when
/// it has no table or none were stored).
fn compile_stored(
    m: &Migration,
    plan: &Plan,
    phase: usize,
    j: usize,
    cursor: &Cursor,
) -> Result<Compiled, EngineError> {
    let facts = cursor
        .facts
        .get(&facts_key(phase, j))
        .and_then(Option::as_ref);
    compile_op(m, plan, phase, j, facts)
}

/// The operations of phase `phase` that started, compiled with their
/// stored facts, by operation index, for reversing them. `stopped` is the
/// (phase, action) where a plan stopped part way: in that phase only the
/// operations whose first action is at or before that action started (an
/// operation that needs facts and has none stored never started either,
/// since facts are stored before an operation's first action). Other
/// phases ran whole.
pub fn compile_started(
    m: &Migration,
    plan: &Plan,
    phase: usize,
    cursor: &Cursor,
    stopped: Option<(usize, usize)>,
) -> Result<Vec<(usize, Compiled)>, EngineError> {
    let limit = stopped.filter(|(k, _)| *k == phase).map(|(_, a)| a);
    let mut out = Vec::new();
    let mut offset = 0;
    for j in 0..plan.phases[phase].operations.len() {
        if let Some(limit) = limit {
            if offset > limit || !has_facts(plan, phase, j, cursor) {
                break;
            }
        }
        let c = compile_stored(m, plan, phase, j, cursor)?;
        offset += c.up.len();
        out.push((j, c));
    }
    Ok(out)
}

/// The plan of a plan migration, or a usage error.
pub fn load_plan(m: &Migration) -> Result<Plan, EngineError> {
    plan_of(m).map_err(|problems| {
        EngineError::Source(
            problems
                .into_iter()
                .map(|p| crate::source::SourceProblem {
                    path: m.up.path.clone(),
                    line: p.line,
                    message: p.message,
                    help: p.help,
                })
                .collect(),
        )
    })
}

/// What a plan runner needs.
pub(super) struct PlanRunner<'a> {
    pub project: &'a Project,
    pub target: &'a Target,
    pub conn: &'a Connection,
    pub history: &'a History,
    pub actor: &'a str,
    /// Watches `conn` while a `Transaction` or `Alone` action runs, as it
    /// watches a SQL migration's statements (`engine::watchdog`): a DDL
    /// that queues app queries behind it, or holds them too long, is
    /// cancelled, and retried within the budget when retrying may help.
    /// Backfills have their own.
    pub watchdog: Option<Watchdog>,
}

/// The line `up` and `status` show for a plan waiting at a gate.
pub fn waiting_line(m: &Migration, done: usize, total: usize, gate: &Gate) -> String {
    format!(
        "{}: phase {done} of {total} done; waiting for: {gate}",
        m.label()
    )
}

impl<'a> PlanRunner<'a> {
    /// A runner on `conn`, with its watchdog started.
    pub async fn start(
        project: &'a Project,
        target: &'a Target,
        conn: &'a Connection,
        history: &'a History,
        actor: &'a str,
    ) -> Result<PlanRunner<'a>, EngineError> {
        let limits = super::run::watchdog_limits(project);
        Ok(PlanRunner {
            project,
            target,
            conn,
            history,
            actor,
            watchdog: Some(Watchdog::start(target, conn.pid(), limits).await?),
        })
    }

    /// Runs `sql` (a batch) under the watchdog. A cancellation by the
    /// watchdog comes back as lock_not_available (55P03) when running it
    /// again may succeed, so [`Self::retry`] retries it like a lock
    /// timeout, else as query_canceled (57014) with the reason.
    async fn watched(&self, sql: &str, index_build: bool) -> Result<(), DbError> {
        let Some(watchdog) = &self.watchdog else {
            return self.conn.batch(sql).await;
        };
        watchdog.arm(index_build);
        let result = self.conn.batch(sql).await;
        let cancel = watchdog.disarm();
        match (result, cancel) {
            (Err(e), Some(cancel)) if e.code() == Some("57014") => Err(cancel.as_error(None)),
            (result, _) => result,
        }
    }

    /// Waits (up to `preflight_wait`) for transactions that hold locks on
    /// the tables `statements` lock, before the action takes its first
    /// lock, like a SQL migration's pre-flight (`engine::preflight`), and
    /// says what it saw.
    async fn preflight(&self, m: &Migration, sql: &str, observer: &mut dyn FnMut(Progress)) {
        let Ok(statements) = crate::sql::split(sql, &[]) else {
            return;
        };
        if let Ok(checked) = super::preflight::check(
            self.conn,
            &statements,
            self.project.config.preflight_wait,
            false,
        )
        .await
        {
            if let Some(line) = super::preflight::describe(&checked) {
                observer(Progress::Notice(format!("{}: {line}", m.label())));
            }
        }
    }

    fn timeouts(&self) -> Timeouts {
        super::timeouts(self.project)
    }

    async fn event(&self, m: &Migration, action: &str, success: bool, details: serde_json::Value) {
        let _ = self
            .history
            .event(
                self.conn,
                self.actor,
                &Event {
                    action,
                    migration: Some(m),
                    success,
                    duration_ms: None,
                    details,
                },
            )
            .await;
    }

    /// Runs plan `m` from where it is: phases until a gate that `gates`
    /// does not pass, or to the end.
    pub async fn run(
        &self,
        m: &Migration,
        gates: &Gates,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, EngineError> {
        let plan = load_plan(m)?;
        let version = m.version.canonical();
        let total = plan.phases.len();
        let mut st = match read_state(self.conn, self.history, &version).await? {
            Some(st) => st,
            None => PlanState {
                state: "running".into(),
                done: 0,
                total,
                cursor: Cursor::default(),
                error: None,
                backend_pid: None,
            },
        };
        if st.state == "done" {
            // Rolled forward again after a rollback kept nothing: start over.
            st = PlanState {
                state: "running".into(),
                done: 0,
                total,
                cursor: Cursor::default(),
                error: None,
                backend_pid: None,
            };
        }
        match &st.cursor.checksum {
            Some(sum) if *sum != m.checksum && st.state != "done" => {
                return Err(EngineError::Usage {
                    message: format!(
                        "plan {} changed since its first phase ran ({} of {total} phases done)",
                        m.label(),
                        st.done
                    ),
                    help: format!(
                        "restore the file as it was (the phases that ran are its), or undo the plan with `strata abort {}` and run the new one",
                        m.version
                    ),
                })
            }
            Some(_) => {}
            None => st.cursor.checksum = Some(m.checksum.clone()),
        }
        let resuming = st.state == "running" || st.state == "failed";
        if let Some(pid) = st.backend_pid.filter(|_| st.state == "running") {
            self.wait_for_backend(m, pid).await?;
        }
        let mut first = true;
        // `--continue V` passes one gate: the one V waits at (or, when it
        // is part way through a phase, the next it reaches), not the gates
        // after it, which wait for their own deploys.
        let mut continued = false;
        loop {
            if st.state == "waiting" && st.done > 0 && st.done < total {
                let gate = &plan.phases[st.done - 1].gate;
                let elapsed = st
                    .cursor
                    .phase_done_at
                    .map(|t| chrono::Utc::now().timestamp().saturating_sub(t).max(0) as u64)
                    .unwrap_or(0);
                let (pass, how) = match gate {
                    Gate::None => (true, "none"),
                    _ if gates.through => (true, "--through-gates"),
                    _ if !continued && gates.pass.contains(&version) => (true, "--continue"),
                    Gate::Wait(d) if Duration::from_secs(elapsed) >= *d => (true, "time elapsed"),
                    _ => (false, ""),
                };
                if !pass {
                    return Ok(Outcome::Waiting(waiting_line(m, st.done, total, gate)));
                }
                continued |= how == "--continue";
                if !matches!(gate, Gate::None) {
                    self.event(
                        m,
                        "plan-gate-passed",
                        true,
                        serde_json::json!({ "phase": st.done, "gate": gate.to_string(), "how": how }),
                    )
                    .await;
                    observer(Progress::Notice(format!(
                        "{}: gate after phase {} passed ({gate}; {how})",
                        m.label(),
                        st.done
                    )));
                }
                st.state = "running".into();
            }
            if st.done >= total {
                self.finish(m, &mut st).await?;
                return Ok(Outcome::Finished);
            }
            let resume_at = if first && resuming {
                Some(st.cursor.action)
            } else {
                None
            };
            first = false;
            self.run_phase(m, &plan, &mut st, resume_at, observer)
                .await?;
        }
    }

    /// A killed run's statement may still run on the server until it
    /// notices the client has gone (`client_connection_check_interval`):
    /// wait a little for its backend to end before running anything.
    async fn wait_for_backend(&self, m: &Migration, pid: i32) -> Result<(), EngineError> {
        let started = Instant::now();
        loop {
            let alive = self
                .conn
                .query_opt(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND pid <> pg_backend_pid()",
                    &[&pid],
                )
                .await?
                .is_some();
            if !alive {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(EngineError::StillRunning {
                    label: m.label(),
                    pid,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records the plan applied: its history row and event, and its
    /// progress row `done`, in one transaction.
    async fn finish(&self, m: &Migration, st: &mut PlanState) -> Result<(), EngineError> {
        let version = m.version.canonical();
        st.state = "done".into();
        st.error = None;
        st.backend_pid = None;
        let record = self.history.prepare_record(self.conn).await?;
        self.conn.batch("BEGIN").await?;
        let result = async {
            save(self.conn, self.history, &version, st).await?;
            self.history
                .record(
                    self.conn,
                    &record,
                    m,
                    st.total as i32,
                    self.actor,
                    0,
                    "up",
                    &serde_json::json!({ "plan": true, "phases": st.total }),
                )
                .await
        }
        .await;
        match result {
            Ok(()) => self.conn.batch("COMMIT").await?,
            Err(e) => {
                let _ = self.conn.batch("ROLLBACK").await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Runs phase `st.done` from action `resume_at` (or from the start).
    ///
    /// Each operation is compiled right before its first action, with its
    /// table's facts as they are then (stored in the cursor, and the cursor
    /// saved, before that action runs): so an operation sees what the
    /// earlier operations of its phase did. The action index is global to
    /// the phase; on resume, the operations before the resume point
    /// compile from their stored facts to the same actions, which places
    /// the resume point.
    async fn run_phase(
        &self,
        m: &Migration,
        plan: &Plan,
        st: &mut PlanState,
        resume_at: Option<usize>,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), EngineError> {
        let version = m.version.canonical();
        let k = st.done;
        let phase = &plan.phases[k];
        let total = plan.phases.len();
        if resume_at.is_none() {
            st.cursor.phase = k;
            st.cursor.action = 0;
            st.cursor.failed_action = None;
        }
        let from = resume_at.unwrap_or(0);
        st.state = "running".into();
        st.error = None;
        st.backend_pid = Some(self.conn.pid());
        save(self.conn, self.history, &version, st).await?;
        // For progress only: exact for operations compiled from stored
        // facts, estimated from the catalog as it is now for the others.
        let mut counts = self.estimate_counts(m, plan, k, &st.cursor).await;
        let started = Instant::now();
        if from == 0 {
            self.event(
                m,
                "plan-phase-started",
                true,
                serde_json::json!({ "phase": k + 1, "name": phase.name }),
            )
            .await;
        }
        observer(Progress::Notice(format!(
            "{}: phase {} of {total} `{}`{}",
            m.label(),
            k + 1,
            phase.name,
            if from > 0 {
                format!(
                    " resumes at action {} of {}",
                    from + 1,
                    counts.iter().sum::<usize>()
                )
            } else {
                format!(": {} action(s)", counts.iter().sum::<usize>())
            }
        )));
        let mut offset = 0;
        for j in 0..phase.operations.len() {
            let read = op_facts(plan, k, j, &mut st.cursor, |op| facts_for(self.conn, op)).await?;
            if read {
                save(self.conn, self.history, &version, st).await?;
            }
            let compiled = match compile_stored(m, plan, k, j, &st.cursor) {
                Ok(c) => c,
                Err(e) => {
                    if read {
                        // It never started: read its facts again next time
                        // (the fix may be in the database).
                        st.cursor.facts.remove(&facts_key(k, j));
                    }
                    let (at, of) = (offset.max(from), counts.iter().sum());
                    return Err(self.fail(m, plan, st, (j, at, of), e.to_string()).await);
                }
            };
            counts[j] = compiled.up.len();
            let known: usize = counts.iter().sum();
            for (a, action) in compiled.up.iter().enumerate() {
                let i = offset + a;
                if i < from {
                    continue;
                }
                // A backup before the first action of an operation that drops data.
                if a == 0 && compiled.drops_data {
                    self.backup_before(m, k, &compiled, st, observer).await?;
                }
                observer(Progress::Statement {
                    label: m.label(),
                    index: i + 1,
                    total: known,
                    summary: summary(action),
                });
                let resumed_here = resume_at == Some(i);
                let ran = self
                    .run_action(m, k, i, action, resumed_here, st, observer)
                    .await;
                if let Err(error) = ran {
                    return Err(self.fail(m, plan, st, (j, i, known), error).await);
                }
            }
            offset += compiled.up.len();
        }
        st.done = k + 1;
        st.cursor.phase = k + 1;
        st.cursor.action = 0;
        st.cursor.phase_done_at = Some(chrono::Utc::now().timestamp());
        st.state = "waiting".into();
        st.backend_pid = None;
        save(self.conn, self.history, &version, st).await?;
        self.event(
            m,
            "plan-phase-done",
            true,
            serde_json::json!({
                "phase": k + 1, "name": phase.name, "ms": started.elapsed().as_millis() as u64,
                "gate": phase.gate.to_string(),
            }),
        )
        .await;
        observer(Progress::Notice(format!(
            "{}: phase {} of {total} `{}` done",
            m.label(),
            k + 1,
            phase.name
        )));
        Ok(())
    }

    /// Records phase `st.done` failed at action `i` (0-based, global to the
    /// phase, of about `of`) of operation `j`, so the next `up` runs that
    /// action again, and gives the error to return.
    async fn fail(
        &self,
        m: &Migration,
        plan: &Plan,
        st: &mut PlanState,
        (j, i, of): (usize, usize, usize),
        error: String,
    ) -> EngineError {
        let k = st.done;
        let phase = &plan.phases[k];
        let total = plan.phases.len();
        st.state = "failed".into();
        st.error = Some(error.clone());
        st.cursor.action = i;
        st.cursor.failed_action = Some(i + 1);
        st.backend_pid = None;
        let _ = save(self.conn, self.history, &m.version.canonical(), st).await;
        let op = &phase.operations[j];
        self.event(
            m,
            "plan-failed",
            false,
            serde_json::json!({
                "phase": k + 1, "action": i + 1, "line": op.line, "error": error,
            }),
        )
        .await;
        EngineError::Failed {
            label: m.label(),
            detail: format!(
                "phase {} of {total} `{}`, action {} of {of} (`{}` at {}:{}): {error}; actions 1 to {i} of the phase are done, and the next `strata up` resumes at action {}, or `strata abort {}` undoes the plan",
                k + 1,
                phase.name,
                i + 1,
                op.kind.name(),
                m.up.path.display(),
                op.line,
                i + 1,
                m.version
            ),
        }
    }

    /// How many actions each operation of phase `phase` has: exact from
    /// the stored facts, else compiled with its table as it is now (not
    /// stored: it is read again right before the operation runs), else 1.
    async fn estimate_counts(
        &self,
        m: &Migration,
        plan: &Plan,
        phase: usize,
        cursor: &Cursor,
    ) -> Vec<usize> {
        let mut counts = Vec::new();
        for (j, op) in plan.phases[phase].operations.iter().enumerate() {
            let compiled = if has_facts(plan, phase, j, cursor) {
                compile_stored(m, plan, phase, j, cursor).ok()
            } else {
                match facts_for(self.conn, &op.kind).await {
                    Ok(facts) => compile_op(m, plan, phase, j, facts.as_ref()).ok(),
                    Err(_) => None,
                }
            };
            counts.push(compiled.map_or(1, |c| c.up.len()));
        }
        counts
    }

    /// Takes a backup of what `compiled` drops, before its first action.
    async fn backup_before(
        &self,
        m: &Migration,
        phase: usize,
        compiled: &Compiled,
        st: &mut PlanState,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), EngineError> {
        let text: String = compiled
            .up
            .iter()
            .flat_map(|a| match a {
                Action::Transaction(s) => s.clone(),
                Action::Alone(s) | Action::Backfill(s) => vec![s.clone()],
                Action::Validate { .. } => Vec::new(),
            })
            .map(|s| s + ";\n")
            .collect();
        let script = crate::source::Script {
            path: m.up.path.clone(),
            text: text.clone().into(),
            first_line: 1,
            blocks: Vec::new(),
            no_transaction: None,
            directives: Vec::new(),
        };
        let statements = crate::sql::split(&text, &[]).map_err(|e| EngineError::Usage {
            message: format!("{}: compiled SQL does not parse: {e}", m.label()),
            help: "report this as a bug".into(),
        })?;
        let Some(need) =
            backup::before_migration(&self.project.config, self.conn, &script, &statements).await?
        else {
            return Ok(());
        };
        if let Some(b) = backup::take(
            &self.project.config,
            self.target,
            self.conn,
            Some((self.history, self.actor)),
            &need,
            Some(m),
        )
        .await?
        {
            observer(Progress::Notice(format!(
                "{}: backed up {} to {} before phase {} ({} bytes)",
                m.label(),
                if b.whole_database {
                    "the whole database".to_owned()
                } else {
                    b.tables.join(", ")
                },
                b.file.display(),
                phase + 1,
                b.bytes
            )));
            st.cursor
                .backups
                .push((phase, b.file.display().to_string()));
            save(self.conn, self.history, &m.version.canonical(), st).await?;
        }
        Ok(())
    }

    /// Runs one action and records it done. Returns the error as text.
    #[allow(clippy::too_many_arguments)]
    async fn run_action(
        &self,
        m: &Migration,
        phase: usize,
        index: usize,
        action: &Action,
        resumed_here: bool,
        st: &mut PlanState,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), String> {
        let version = m.version.canonical();
        st.cursor.action = index + 1;
        match action {
            Action::Transaction(statements) => {
                self.transaction(m, statements, Some((&version, st)), observer)
                    .await
            }
            Action::Alone(sql) => {
                self.alone(m, sql, observer).await?;
                save(self.conn, self.history, &version, st)
                    .await
                    .map_err(|e| e.to_string())
            }
            Action::Backfill(sql) => {
                let spec = BackfillSpec::from_sql(sql).map_err(|e| e.to_string())?;
                let id = BackfillId::new(
                    self.history.clone(),
                    backfill_version(&version),
                    (phase + 1) * 100_000 + index,
                );
                if !resumed_here {
                    backfill::cursor::delete(self.conn, &id)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let label = m.label();
                let mut on_event = |e: backfill::BackfillEvent| {
                    if let backfill::BackfillEvent::Started {
                        table,
                        resumed,
                        progress,
                        ..
                    } = e
                    {
                        observer(Progress::Notice(format!(
                            "{label}: backfill of {table} {}, about {} rows",
                            if resumed { "resumes" } else { "starts" },
                            progress.estimated_rows
                        )));
                    }
                };
                backfill::run(
                    self.target,
                    self.conn,
                    &id,
                    &spec,
                    &self.project.config.backfill,
                    &mut on_event,
                )
                .await
                .map_err(|e| e.to_string())?;
                save(self.conn, self.history, &version, st)
                    .await
                    .map_err(|e| e.to_string())
            }
            Action::Validate { sql, message } => {
                validate(self.conn, sql, message).await?;
                save(self.conn, self.history, &version, st)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// One short transaction under lock_timeout, with the plan's progress
    /// row when given, retried as a whole on lock timeouts within the
    /// budget.
    async fn transaction(
        &self,
        m: &Migration,
        statements: &[String],
        progress: Option<(&str, &PlanState)>,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), String> {
        let timeouts = self.timeouts();
        let started = Instant::now();
        let mut attempt = 0;
        let body = format!(
            "BEGIN; {};\n{};",
            timeouts.local_settings(),
            statements.join(";\n")
        );
        self.preflight(m, &statements.join(";\n"), observer).await;
        loop {
            let ran = async {
                self.watched(&body, false).await?;
                if let Some((version, st)) = progress {
                    save(self.conn, self.history, version, st).await?;
                }
                self.conn.batch("COMMIT").await
            }
            .await;
            match ran {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let _ = self.conn.batch("ROLLBACK").await;
                    if !self.retry(m, &e, started, &mut attempt, observer).await {
                        return Err(e.to_string());
                    }
                }
            }
        }
    }

    /// One statement outside a transaction under the session timeouts; an
    /// invalid index left by a failed CONCURRENTLY build is dropped first.
    async fn alone(
        &self,
        m: &Migration,
        sql: &str,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), String> {
        let statements = crate::sql::split(sql, &[]).map_err(|e| e.to_string())?;
        let Some(stmt) = statements.first() else {
            return Ok(());
        };
        let timeouts = self.timeouts();
        let started = Instant::now();
        let mut attempt = 0;
        self.preflight(m, sql, observer).await;
        loop {
            if let Some(name) = concurrent_index_name(stmt) {
                self.drop_invalid(&name, observer).await;
            }
            let ran = async {
                self.conn.batch(&timeouts.session_settings(stmt)).await?;
                let ran = self
                    .watched(sql, concurrent_index_name(stmt).is_some())
                    .await;
                let _ = self
                    .conn
                    .batch("RESET lock_timeout; RESET statement_timeout")
                    .await;
                ran
            }
            .await;
            match ran {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if !self.retry(m, &e, started, &mut attempt, observer).await {
                        if let Some(name) = concurrent_index_name(stmt) {
                            self.drop_invalid(&name, observer).await;
                        }
                        return Err(e.to_string());
                    }
                }
            }
        }
    }

    /// After an error: whether to retry (lock timeouts, deadlocks and
    /// serialization failures within the retry budget), after a pause.
    async fn retry(
        &self,
        m: &Migration,
        error: &DbError,
        started: Instant,
        attempt: &mut u32,
        observer: &mut dyn FnMut(Progress),
    ) -> bool {
        let budget = self.timeouts().budget;
        if !matches!(error.code(), Some("55P03" | "40P01" | "40001")) || started.elapsed() >= budget
        {
            return false;
        }
        *attempt += 1;
        let pause = backoff(*attempt).min(budget.saturating_sub(started.elapsed()));
        observer(Progress::Retry {
            attempt: *attempt,
            message: format!(
                "{}: {error}; retry {} in {} ms",
                m.label(),
                attempt,
                pause.as_millis()
            ),
        });
        tokio::time::sleep(pause).await;
        true
    }

    async fn drop_invalid(&self, name: &str, observer: &mut dyn FnMut(Progress)) {
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
        if invalid
            && self
                .conn
                .batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                .await
                .is_ok()
        {
            observer(Progress::Notice(format!(
                "dropped the invalid index {name} left by a failed build"
            )));
        }
    }
}

/// A validation passes when its query returns no rows, or one row of one
/// `true` column. On failure, the message and the first rows as JSON.
async fn validate(conn: &Connection, sql: &str, message: &str) -> Result<(), String> {
    let rows = conn
        .query(
            &format!(
                "SELECT row_to_json(v)::text FROM ({sql}) v LIMIT {}",
                SHOWN_ROWS + 1
            ),
            &[],
        )
        .await
        .map_err(|e| format!("validation query failed: {e}"))?;
    let rows: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let single_true = rows.len() == 1
        && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&rows[0])
            .is_ok_and(|o| o.len() == 1 && o.values().all(|v| v == &serde_json::Value::Bool(true)));
    if rows.is_empty() || single_true {
        return Ok(());
    }
    let more = if rows.len() > SHOWN_ROWS {
        " (first 20 shown)"
    } else {
        ""
    };
    Err(format!(
        "validation failed: {message}; the query returned{more}:\n    {}",
        rows.iter()
            .take(SHOWN_ROWS)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ")
    ))
}

/// The first line of an action, for progress.
fn summary(action: &Action) -> String {
    let text = match action {
        Action::Transaction(s) => s.join("; "),
        Action::Alone(s) => s.clone(),
        Action::Backfill(s) => format!("backfill: {s}"),
        Action::Validate { message, .. } => format!("validate: {message}"),
    };
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

/// One operation of a plan compiled for a reader (the dry run, `strata
/// plan`), without running anything.
#[derive(Debug, Clone)]
pub enum Preview {
    /// Its actions, from its stored facts (it started) or its table as the
    /// catalog has it now.
    Compiled(Compiled),
    /// It cannot compile yet and will when it runs, from its table's
    /// catalog then (the table is made by an earlier operation, or no
    /// database is connected): why it cannot now.
    WhenItRuns(String),
    /// It started, yet does not compile from its stored facts.
    Broken(String),
}

/// Every operation of every phase of plan `m`, by phase then operation,
/// compiled as the dry run compiles it: an operation that started from
/// its stored facts; one that did not, from its table as the catalog has it
/// now when `conn` is given (a plan's run reads them again right before the
/// operation, after the earlier operations changed the table).
pub async fn preview(
    m: &Migration,
    plan: &Plan,
    st: Option<&PlanState>,
    conn: Option<&Connection>,
) -> Vec<Vec<Preview>> {
    let cursor = st.map(|s| s.cursor.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (k, phase) in plan.phases.iter().enumerate() {
        let mut ops = Vec::new();
        for (j, op) in phase.operations.iter().enumerate() {
            let stored = has_facts(plan, k, j, &cursor);
            let compiled = if stored {
                compile_stored(m, plan, k, j, &cursor)
            } else {
                let facts = match conn {
                    Some(conn) => facts_for(conn, &op.kind).await.ok().flatten(),
                    None => None,
                };
                compile_op(m, plan, k, j, facts.as_ref())
            };
            ops.push(match compiled {
                Ok(c) => Preview::Compiled(c),
                Err(e) if !stored => Preview::WhenItRuns(e.to_string()),
                Err(e) => Preview::Broken(e.to_string()),
            });
        }
        out.push(ops);
    }
    out
}

/// The dry run of a plan from where it is: each remaining phase's SQL and
/// gate (see [`preview`]); an operation that cannot compile yet (its table
/// is made by an earlier operation) is shown as compiled when it runs.
pub async fn describe(
    m: &Migration,
    st: Option<&PlanState>,
    conn: Option<&Connection>,
) -> Result<String, EngineError> {
    let plan = load_plan(m)?;
    let total = plan.phases.len();
    let from = st.map(|s| s.done).unwrap_or(0);
    let previews = preview(m, &plan, st, conn).await;
    let mut out = format!("-- plan {} ({} phases)\n", m.label(), total);
    if let Some(d) = &plan.description {
        out.push_str(&format!("-- {d}\n"));
    }
    for (k, ops) in previews.iter().enumerate().skip(from) {
        let phase = &plan.phases[k];
        out.push_str(&format!(
            "\n-- phase {} of {total}: {}\n",
            k + 1,
            phase.name
        ));
        for (op, compiled) in phase.operations.iter().zip(ops) {
            match compiled {
                Preview::Compiled(c) => {
                    out.push_str(&format!(
                        "-- {} (line {}){}\n",
                        op.kind.name(),
                        op.line,
                        if c.drops_data {
                            "; a backup is taken first"
                        } else {
                            ""
                        }
                    ));
                    for a in &c.up {
                        out.push_str(&format!("{a}\n"));
                    }
                }
                Preview::WhenItRuns(e) => out.push_str(&format!(
                    "-- {} (line {}): compiled when it runs, from its table's catalog then (now: {e})\n",
                    op.kind.name(),
                    op.line
                )),
                Preview::Broken(e) => out.push_str(&format!("-- cannot compile: {e}\n")),
            }
        }
        out.push_str(&format!("-- gate: {}\n", phase.gate));
    }
    Ok(out)
}

/// Reverses phases of an applied or in-progress plan, newest first, down
/// to phase `to` (1-based; all by default); see [`super::rollback`].
pub(super) struct Reverse<'a> {
    pub runner: PlanRunner<'a>,
}

impl Reverse<'_> {
    /// Runs the down actions of phases `phases` (0-based, newest first),
    /// each operation's down in reverse operation order; `stopped` is where
    /// a plan stopped part way (see [`compile_started`]). Returns the
    /// operations whose data cannot come back (no reverse), skipped.
    pub async fn run_downs(
        &self,
        m: &Migration,
        plan: &Plan,
        cursor: &Cursor,
        phases: &[usize],
        stopped: Option<(usize, usize)>,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<Vec<String>, EngineError> {
        let r = &self.runner;
        let mut skipped = Vec::new();
        for &k in phases {
            let compiled = compile_started(m, plan, k, cursor, stopped)?;
            observer(Progress::Notice(format!(
                "{}: reversing phase {} `{}`",
                m.label(),
                k + 1,
                plan.phases[k].name
            )));
            for (j, c) in compiled.iter().rev() {
                let j = *j;
                let actions = match &c.down {
                    Ok(a) => a,
                    Err(why) => {
                        skipped.push(format!(
                            "phase {} `{}` (line {}): {why}",
                            k + 1,
                            plan.phases[k].operations[j].kind.name(),
                            plan.phases[k].operations[j].line
                        ));
                        continue;
                    }
                };
                for a in actions {
                    let result = match a {
                        Action::Transaction(s) => r.transaction(m, s, None, observer).await,
                        Action::Alone(s) | Action::Backfill(s) => r.alone(m, s, observer).await,
                        Action::Validate { sql, message } => validate(r.conn, sql, message).await,
                    };
                    if let Err(error) = result {
                        return Err(EngineError::Failed {
                            label: m.label(),
                            detail: format!(
                                "reversing phase {} `{}`, `{}` (line {}): {error}",
                                k + 1,
                                plan.phases[k].name,
                                plan.phases[k].operations[j].kind.name(),
                                plan.phases[k].operations[j].line
                            ),
                        });
                    }
                }
            }
        }
        Ok(skipped)
    }
}

/// Reasons the downs of `phases` cannot run (data dropped), by phase.
pub fn irreversible(
    m: &Migration,
    plan: &Plan,
    cursor: &Cursor,
    phases: &[usize],
) -> Result<Vec<(usize, String)>, EngineError> {
    let mut out = Vec::new();
    for &k in phases {
        for (j, c) in compile_started(m, plan, k, cursor, None)? {
            let op = &plan.phases[k].operations[j];
            if let Err(why) = c.down {
                out.push((k, format!("{}:{}: {why}", m.up.path.display(), op.line)));
            }
        }
    }
    Ok(out)
}

/// What `validate` reports for a plan beyond the loader's checks: every
/// operation the compiler refuses, at its line.
pub fn compile_problems(m: &Migration) -> Vec<crate::source::SourceProblem> {
    let Ok(plan) = plan_of(m) else {
        return Vec::new();
    };
    let version = m.version.canonical();
    let mut out = Vec::new();
    for phase in &plan.phases {
        for op in &phase.operations {
            let ctx = Context {
                version: &version,
                step: op.step_name(),
                table: None,
            };
            if let Err(e) = ops::compile(&op.kind, &ctx) {
                out.push(crate::source::SourceProblem {
                    path: m.up.path.clone(),
                    line: Some(op.line),
                    message: format!("`{}`: {}", op.kind.name(), e.message),
                    help: e.help,
                });
            }
        }
    }
    out
}

/// A plan's progress as `status` shows it (and `status --json` as the
/// `plan` object of the migration).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlanProgress {
    /// `running`, `waiting` or `failed`.
    pub state: String,
    /// Finished phases.
    pub phases_done: usize,
    /// Phases in the plan.
    pub phases: usize,
    /// The gate it waits at (`deploy: …`, `wait 1h`), when waiting.
    pub gate: Option<String>,
    /// The phase that failed or runs (1-based), with its name.
    pub phase: Option<(usize, String)>,
    /// The failed action (1-based), when failed.
    pub failed_action: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
    /// One line: "phase 1 of 3 done; waiting for: deploy: …".
    pub summary: String,
}

/// The progress of plan `m`, when it has started and is not applied.
pub async fn progress(
    conn: &Connection,
    history: &History,
    m: &Migration,
) -> Result<Option<PlanProgress>, EngineError> {
    let Ok(plan) = plan_of(m) else {
        return Ok(None);
    };
    let Some(st) = read_state(conn, history, &m.version.canonical()).await? else {
        return Ok(None);
    };
    let total = plan.phases.len();
    let current = st.cursor.phase.min(total.saturating_sub(1));
    let name = plan
        .phases
        .get(current)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let (gate, summary) = match st.state.as_str() {
        "waiting" if st.done > 0 && st.done < total => {
            let gate = &plan.phases[st.done - 1].gate;
            (
                Some(gate.to_string()),
                format!("phase {} of {total} done; waiting for: {gate}", st.done),
            )
        }
        "failed" => (
            None,
            format!(
                "failed in phase {} of {total} `{name}` at action {}: {}",
                current + 1,
                st.cursor.failed_action.unwrap_or(st.cursor.action + 1),
                st.error.clone().unwrap_or_default()
            ),
        ),
        "done" => return Ok(None),
        _ => (
            None,
            format!(
                "phase {} of {total} `{name}` stopped or running at action {}",
                current + 1,
                st.cursor.action + 1
            ),
        ),
    };
    Ok(Some(PlanProgress {
        state: st.state.clone(),
        phases_done: st.done,
        phases: total,
        gate,
        phase: Some((current + 1, name)),
        failed_action: st.cursor.failed_action,
        error: st.error.clone(),
        summary,
    }))
}

/// Marks acknowledged the findings on the operations of plans in
/// `migrations` that drop data on purpose (`drop_column`, `drop_table`, a
/// contract step): the plan reader lets them run only after a `deploy`
/// gate and the engine backs up their data first, which is the safe path
/// those findings ask for; `up`'s `block_on` then judges the rest of a
/// plan's statements like a SQL migration's.
pub fn acknowledge_planned_drops(migrations: &[Migration], report: &mut crate::lint::LintReport) {
    let mut lines: Vec<(std::path::PathBuf, usize)> = Vec::new();
    for m in migrations {
        let Ok(plan) = plan_of(m) else {
            continue;
        };
        let version = m.version.canonical();
        for op in plan.phases.iter().flat_map(|p| &p.operations) {
            let ctx = Context {
                version: &version,
                step: op.step_name(),
                table: None,
            };
            if ops::compile(&op.kind, &ctx).is_ok_and(|c| c.drops_data) {
                lines.push((m.up.path.clone(), op.line));
            }
        }
    }
    for f in &mut report.findings {
        if lines
            .iter()
            .any(|(path, line)| *path == f.file && *line == f.line)
        {
            f.allowed = true;
        }
    }
}

/// The statements plan `m` compiles to, for lint: every phase's actions
/// (a short transaction between `BEGIN` and `COMMIT`, a statement alone, a
/// backfill marked as batched; validations are queries and left out), each
/// placed at its operation's line in the plan file. Operations that do not
/// compile without catalog facts give nothing (`validate` reports them).
pub fn lint_statements(m: &Migration) -> Vec<crate::sql::Statement> {
    let Ok(plan) = plan_of(m) else {
        return Vec::new();
    };
    let version = m.version.canonical();
    // Dropping a helper object the plan made (its temporary check, named
    // `strata_<version>_…`) takes away no guarantee the app relies on.
    let own_helper = format!("DROP CONSTRAINT IF EXISTS strata_{version}_");
    let mut deployed = false;
    let mut out = Vec::new();
    for phase in &plan.phases {
        for op in &phase.operations {
            // A drop after a deploy gate, with a backup first, is what the
            // drop rules ask for: the plan file is that safe rewrite.
            let sanctioned_drop =
                deployed && (op.kind.drops_data() || op.step_name() == Some("contract"));
            if sanctioned_drop {
                continue;
            }
            let ctx = Context {
                version: &version,
                step: op.step_name(),
                table: None,
            };
            let Ok(compiled) = ops::compile(&op.kind, &ctx) else {
                continue;
            };
            let mut push = |sql: &str, backfill: bool| {
                if sql.contains(&own_helper) {
                    return;
                }
                if let Ok(statements) = crate::sql::split(sql, &[]) {
                    out.extend(statements.into_iter().map(|mut s| {
                        s.line = op.line;
                        s.column = 1;
                        s.backfill = backfill;
                        s
                    }));
                }
            };
            for action in &compiled.up {
                match action {
                    Action::Transaction(statements) => {
                        push("BEGIN", false);
                        for s in statements {
                            push(s, false);
                        }
                        push("COMMIT", false);
                    }
                    Action::Alone(s) => push(s, false),
                    Action::Backfill(s) => push(s, true),
                    Action::Validate { .. } => {}
                }
            }
        }
        deployed |= matches!(phase.gate, crate::plan::file::Gate::Deploy(_));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "a", type = "int" },
  { op = "validate", sql = "SELECT true" },
  { op = "backfill", table = "orders", set = "a = 1" },
]
"#;

    #[tokio::test]
    async fn facts_are_read_once_per_operation_and_reused_on_resume() {
        let plan = crate::plan::file::parse(PLAN).expect("valid plan");
        let reads = std::cell::RefCell::new(Vec::new());
        let read = |op: &OperationKind| {
            let table = op.table().unwrap_or_default().to_owned();
            reads.borrow_mut().push(table.clone());
            async move {
                Ok(Some(TableFacts {
                    name: table,
                    ..TableFacts::default()
                }))
            }
        };
        let mut cursor = Cursor::default();
        // One operation at a time, right before it runs.
        assert!(op_facts(&plan, 0, 0, &mut cursor, read)
            .await
            .expect("read"));
        assert_eq!(*reads.borrow(), ["users"]);
        // Operations without a table (validate) get none.
        assert!(!op_facts(&plan, 0, 1, &mut cursor, read)
            .await
            .expect("read"));
        assert!(op_facts(&plan, 0, 2, &mut cursor, read)
            .await
            .expect("read"));
        assert_eq!(*reads.borrow(), ["users", "orders"]);
        assert_eq!(cursor.facts.keys().collect::<Vec<_>>(), ["0:0", "0:2"]);
        // Saved with the progress row and read back by a resumed run: the
        // stored facts are used, nothing is read again.
        let stored: Cursor =
            serde_json::from_str(&serde_json::to_string(&cursor).expect("json")).expect("json");
        let mut resumed = stored.clone();
        for j in 0..3 {
            assert!(!op_facts(&plan, 0, j, &mut resumed, read)
                .await
                .expect("read"));
        }
        assert_eq!(reads.borrow().len(), 2);
        assert_eq!(resumed, stored);
    }

    #[test]
    fn a_stopped_phase_reverses_only_the_operations_that_started() {
        let plan = crate::plan::file::parse(PLAN).expect("valid plan");
        let m = migration();
        let mut cursor = Cursor::default();
        cursor.facts.insert("0:0".into(), None);
        // Stopped at action 2 (the validation): the backfill never started
        // and has no facts.
        let started = compile_started(&m, &plan, 0, &cursor, Some((0, 1))).expect("compiles");
        assert_eq!(started.iter().map(|(j, _)| *j).collect::<Vec<_>>(), [0, 1]);
        // Stopped at action 1: only the add_column started.
        let started = compile_started(&m, &plan, 0, &cursor, Some((0, 0))).expect("compiles");
        assert_eq!(started.iter().map(|(j, _)| *j).collect::<Vec<_>>(), [0]);
        // A phase that ran whole: every operation.
        let all = compile_started(&m, &plan, 0, &cursor, None).expect("compiles");
        assert_eq!(all.len(), 3);
    }

    fn migration() -> Migration {
        Migration {
            version: crate::source::Version::integer("7").expect("version"),
            kind: crate::source::MigrationKind::Plan,
            name: "p".into(),
            up: crate::source::Script {
                path: "7_p.plan.toml".into(),
                text: PLAN.into(),
                first_line: 1,
                blocks: Vec::new(),
                no_transaction: None,
                directives: Vec::new(),
            },
            down: None,
            checksum: String::new(),
        }
    }

    #[tokio::test]
    async fn a_phase_compiles_each_operation_with_its_stored_facts() {
        let plan = crate::plan::file::parse(PLAN).expect("valid plan");
        let m = migration();
        let compiled = compile_started(&m, &plan, 0, &Cursor::default(), None).expect("compiles");
        assert_eq!(compiled.len(), 3);
        let text = describe(&m, None, None).await.expect("describes");
        assert!(text.contains("-- phase 1 of 1: expand"), "{text}");
        assert!(
            text.contains("ALTER TABLE users ADD COLUMN IF NOT EXISTS a int;"),
            "{text}"
        );
        assert!(
            text.contains("-- strata:backfill\nUPDATE orders SET a = 1;"),
            "{text}"
        );
        assert!(text.contains("-- gate: none"), "{text}");
        // Lint sees the statements at their operations' lines.
        let lines: Vec<(usize, String)> = lint_statements(&m)
            .into_iter()
            .map(|s| (s.line, s.sql))
            .collect();
        assert_eq!(
            lines,
            [
                (5, "BEGIN".to_owned()),
                (
                    5,
                    "ALTER TABLE users ADD COLUMN IF NOT EXISTS a int".to_owned()
                ),
                (5, "COMMIT".to_owned()),
                (7, "UPDATE orders SET a = 1".to_owned()),
            ]
        );
    }

    #[test]
    fn lint_leaves_out_gated_drops_and_the_plans_own_helper_checks() {
        let text = r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_required_column", table = "users", column = "v", type = "boolean", default = "false" },
]
gate = { deploy = "app v2" }

[[phase]]
name = "contract"
operations = [
  { op = "drop_column", table = "users", column = "legacy" },
]
"#;
        let m = Migration {
            version: crate::source::Version::integer("7").expect("version"),
            kind: crate::source::MigrationKind::Plan,
            name: "p".into(),
            up: crate::source::Script {
                path: "7_p.plan.toml".into(),
                text: text.into(),
                first_line: 1,
                blocks: Vec::new(),
                no_transaction: None,
                directives: Vec::new(),
            },
            down: None,
            checksum: String::new(),
        };
        let sql: Vec<String> = lint_statements(&m).into_iter().map(|s| s.sql).collect();
        assert!(sql.iter().any(|s| s.contains("ADD COLUMN")), "{sql:?}");
        assert!(
            !sql.iter().any(|s| s.contains("DROP CONSTRAINT")),
            "{sql:?}"
        );
        assert!(!sql.iter().any(|s| s.contains("DROP COLUMN")), "{sql:?}");
    }
}
