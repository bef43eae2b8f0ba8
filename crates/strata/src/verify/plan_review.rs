//! `strata plan V`: the review spec of a multi-phase plan, the plan-file
//! counterpart of `strata spec` (see [`super::spec`]).
//!
//! Nothing is guessed anew; every section comes from what runs:
//! - the phases, their operations and gates are the plan file's, and the
//!   schema changes and actions are what each operation compiles to
//!   (`engine::phases::preview`, the dry run's own compilation, from the
//!   catalog as it is now when connected);
//! - the risk is the plan's lint findings as `up` judges them (the drops a
//!   plan makes after a deploy gate, backup first, acknowledged), plus what
//!   the operations themselves do: brief ACCESS EXCLUSIVE transactions under
//!   `lock_timeout`, and drops of data;
//! - rows and sizes are the live statistics (`pg_class.reltuples`, total
//!   relation size); durations are those sizes at this server's rewrite
//!   rate, the one lint's estimates use (cached in `rates.json`, or measured
//!   now), and say so;
//! - lock bounds come from the configuration (`lock_timeout`,
//!   `lock_retry_budget`, `max_lock_hold`);
//! - rollback is each operation's compiled reverse, or why there is none.
//!
//! It lives in `verify`, not in `plan`: `plan` compiles without a database,
//! and the review reads the live catalog.

mod markdown;
mod sql_summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use markdown::markdown;

use super::VerifyError;
use crate::config::BackupPolicy;
use crate::db::{Connection, Target};
use crate::engine::backfill::{BackfillSpec, SpecKind, NOMINAL_ROWS_PER_SEC};
use crate::engine::phases::{self, PlanState, Preview};
use crate::engine::{self, Project, RateSource};
use crate::lint::{Lock, Risk};
use crate::plan::file::{Gate, Operation, OperationKind, Plan};
use crate::plan::{Action, Compiled};
use crate::source::{Migration, MigrationKind};

/// The rate scans and index builds are assumed to run at when the server's
/// rate cannot be measured (a read-only replica): a cautious figure for
/// ordinary disks, stated as a default in the output.
pub const DEFAULT_REWRITE_BYTES_PER_SEC: f64 = 50e6;

/// The review spec of a plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanReview {
    /// The version, as the layout writes it.
    pub version: String,
    /// `version_name`.
    pub label: String,
    /// The plan file.
    pub file: PathBuf,
    /// The plan's `description`.
    pub description: Option<String>,
    /// `independent = true`: later migrations do not wait for it.
    pub independent: bool,
    /// True when a database was connected (sizes, estimates, the catalog
    /// the operations compile from).
    pub connected: bool,
    /// Where the plan is on the connected database (`not started`,
    /// `phase 1 of 2 done; waiting for: …`, `applied`).
    pub progress: Option<String>,
    /// Risk class and why.
    pub risk: RiskSection,
    /// The phases, in order.
    pub phases: Vec<PhaseReview>,
    /// Tables the plan touches, with their size and what happens to them.
    pub data_impact: Vec<TableImpact>,
    /// How durations were estimated.
    pub estimates: EstimateBasis,
    /// Sum of the phases' estimates, gates not counted (connected only);
    /// of the phases that have one when `total_estimate_complete` is false.
    pub total_estimate_ms: Option<i64>,
    /// False when a phase has no estimate (an operation compiles only when
    /// it runs): the total is then a lower bound.
    pub total_estimate_complete: bool,
    /// The longest expected lock that blocks the application, or when none
    /// does, the longest lock.
    pub longest_lock: Option<LockReview>,
    /// Every table lock the plan takes, in order.
    pub locks: Vec<LockReview>,
    /// The deploy checklist: `strata up` runs interleaved with the gates.
    pub deploy_steps: Vec<String>,
    /// How to test it before production.
    pub testing: Testing,
}

/// The risk class.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RiskSection {
    /// `HIGH`, `MEDIUM`, `LOW` or `NONE`: the higher of the lint class and
    /// the operations' own risk.
    pub class: String,
    /// The class of the plan's unacknowledged lint findings, as `up`
    /// judges them (what `block_on` compares).
    pub lint_class: String,
    /// One line per unacknowledged finding, with its phase.
    pub findings: Vec<String>,
    /// One line per operation-level risk (locks, drops of data).
    pub operations: Vec<String>,
}

/// One phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseReview {
    /// 1-based.
    pub number: usize,
    /// Its name.
    pub name: String,
    /// The line of its `[[phase]]`.
    pub line: usize,
    /// `done` or `pending` on the connected database.
    pub state: Option<String>,
    /// Its operations, with what they compile to.
    pub operations: Vec<OperationReview>,
    /// The schema changes its actions make, one line each.
    pub schema_changes: Vec<String>,
    /// Lint findings at its operations' lines.
    pub findings: Vec<String>,
    /// Its estimated duration (connected, and every action estimated).
    pub estimate_ms: Option<i64>,
    /// A backup of the tables it drops data from is taken first.
    pub backup_first: bool,
    /// What must happen before the next phase.
    pub gate: GateReview,
    /// How to undo it.
    pub rollback: PhaseRollback,
}

/// One operation of a phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperationReview {
    /// Its line in the plan file.
    pub line: usize,
    /// `change_column_type`.
    pub op: String,
    /// Its step, for operations that span phases.
    pub step: Option<String>,
    /// Its table.
    pub table: Option<String>,
    /// False when it compiles only when it runs (its table is made by an
    /// earlier operation, or no database is connected).
    pub compiled: bool,
    /// Why it is not compiled yet.
    pub note: Option<String>,
    /// Its actions, in order.
    pub actions: Vec<ActionReview>,
}

/// One compiled action.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionReview {
    /// `transaction`, `alone`, `backfill` or `validate`.
    pub kind: String,
    /// Its first statement (or the validation's message).
    pub summary: String,
    /// The strongest table lock it takes (`ACCESS EXCLUSIVE on users`).
    pub lock: Option<String>,
    /// Rows it changes (a backfill: the rows of the table it walks).
    pub rows: Option<i64>,
    /// Its estimated duration.
    pub estimate_ms: Option<i64>,
    /// How the estimate was made.
    pub how: Option<String>,
}

/// A gate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GateReview {
    /// `none`, `deploy` or `wait`.
    pub kind: String,
    /// As `status` shows it (`deploy: app v2, …`, `wait 1day`).
    pub text: String,
    /// The deploy's text.
    pub deploy: Option<String>,
    /// The wait, in seconds.
    pub wait_secs: Option<u64>,
}

/// How to undo one phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseRollback {
    /// False when an operation's data cannot come back but from a backup.
    pub reversible: bool,
    /// What to run.
    pub command: String,
    /// What the reverse changes, in order (newest operation first).
    pub reverse_changes: Vec<String>,
    /// Why operations cannot be reversed.
    pub irreversible: Vec<String>,
    /// The backup taken before the phase, when it ran and took one.
    pub backup: Option<String>,
}

/// One table the plan touches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableImpact {
    /// The table as the plan names it.
    pub table: String,
    /// Estimated live rows (`pg_class.reltuples`; connected, and the table
    /// exists).
    pub rows: Option<i64>,
    /// Total bytes, indexes and TOAST included.
    pub bytes: Option<i64>,
    /// Rows the plan's backfills write or copy (at most the table's rows;
    /// a `backfill` operation's WHERE counted by the planner's estimate).
    pub rows_touched: Option<i64>,
    /// What happens to it, per phase.
    pub effects: Vec<String>,
}

/// How the estimates were made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EstimateBasis {
    /// `cached` (measured on this server before), `measured` (now),
    /// `default` (could not be measured) or `none` (not connected).
    pub rate_source: String,
    /// The rewrite rate used, bytes per second.
    pub rewrite_bytes_per_sec: Option<f64>,
    /// Rows per second of the batched backfills that finished on this
    /// database, when there were any (backfills are estimated with it).
    pub backfill_rows_per_sec: Option<f64>,
    /// The configured batch time and sleep of backfills, in milliseconds.
    pub batch_time_ms: u64,
    /// Pause between batches.
    pub sleep_ms: u64,
    /// One sentence per kind of action: how its duration is estimated.
    pub how: Vec<String>,
}

/// A table lock the plan takes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LockReview {
    /// 1-based phase.
    pub phase: usize,
    /// The operation and its line.
    pub operation: String,
    /// `ACCESS EXCLUSIVE`.
    pub lock: String,
    /// The table.
    pub table: String,
    /// True when it blocks the application's reads or writes.
    pub blocks_app: bool,
    /// What it blocks, in words.
    pub blocks: String,
    /// How long it is held.
    pub hold: String,
    /// The same, in milliseconds, when estimated.
    pub hold_ms: Option<i64>,
    /// What bounds how long the application can wait on it.
    pub bound: String,
    /// The same, in milliseconds, when bounded.
    pub bound_ms: Option<i64>,
}

/// The testing plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Testing {
    /// Commands to run, in order.
    pub steps: Vec<String>,
    /// The validations the plan runs, with their phase.
    pub validations: Vec<String>,
    /// What to watch while it runs.
    pub watch: Vec<String>,
}

/// Sizes by table, keyed by the names a plan may use (`users`,
/// `public.users`).
type Sizes = BTreeMap<String, (i64, i64)>;

/// Whether `which` names a plan (for `strata spec` to hand over).
pub fn is_plan(project: &Project, which: &str) -> bool {
    super::trace::find(project, which).is_ok_and(|(_, m)| m.kind == MigrationKind::Plan)
}

/// Builds the review of plan `which` (a version, a label, or the plan
/// file's path). `target`: the database to read sizes and the catalog
/// from, if any; nothing is written there (the rewrite rate may be
/// measured on a temporary table, and is cached as lint caches it).
pub async fn review(
    project: &Project,
    which: &str,
    target: Option<&Target>,
) -> Result<PlanReview, VerifyError> {
    let (_, m) = super::trace::find(project, which)?;
    if m.kind != MigrationKind::Plan {
        return Err(VerifyError::Usage {
            message: format!(
                "{} is not a plan: it is the SQL migration {}",
                which,
                m.up.path.display()
            ),
            help: format!(
                "`strata spec {}` writes the spec of a SQL migration; `strata plan` reviews `<version>_<name>.plan.toml` files",
                m.version.as_str()
            ),
        });
    }
    let plan = phases::load_plan(m)?;
    let config = &project.config;
    let conn = match target {
        Some(t) => Some(t.connect().await?),
        None => None,
    };
    let state = match &conn {
        Some(c) => phases::read_state(c, &project.history(), &m.version.canonical()).await?,
        None => None,
    };
    let previews = phases::preview(m, &plan, state.as_ref(), conn.as_ref()).await;

    // Lint, as `up` judges the plan.
    let mut report = engine::lint_paths(std::slice::from_ref(&m.up.path), config, target).await?;
    phases::acknowledge_planned_drops(std::slice::from_ref(m), &mut report);

    let sizes = match &conn {
        Some(c) => sizes(c).await?,
        None => Sizes::new(),
    };
    let rate = match &conn {
        Some(c) => Some(engine::rewrite_rate(config, c).await),
        None => None,
    };
    let backfill_rate = match &conn {
        Some(c) => measured_backfill_rate(c, &project.history()).await?,
        None => None,
    };
    let est = Estimator {
        sizes: &sizes,
        connected: conn.is_some(),
        rate: rate.flatten().map(|(r, _)| r),
        backfill_rate,
        batch: config.backfill.batch_time,
        sleep: config.backfill.sleep,
    };
    let estimates = estimate_basis(&est, rate);

    let op_phase: BTreeMap<usize, usize> = plan
        .phases
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.operations.iter().map(move |o| (o.line, k)))
        .collect();
    let finding_line = |f: &crate::lint::Finding| {
        let phase = op_phase
            .get(&f.line)
            .map(|k| format!("phase {} `{}`, ", k + 1, plan.phases[*k].name))
            .unwrap_or_default();
        format!(
            "{} {} ({phase}line {}): {}",
            f.risk, f.rule, f.line, f.message
        )
    };
    let active: Vec<_> = report.active().collect();
    let lint_class = active.iter().map(|f| f.risk).max();

    let mut phase_reviews = Vec::new();
    let mut locks = Vec::new();
    let mut op_risks: Vec<(Risk, String)> = Vec::new();
    let mut impact: BTreeMap<String, TableImpact> = BTreeMap::new();
    let mut validations = Vec::new();
    let done = conn.is_some().then(|| state.as_ref().map_or(0, |s| s.done));
    for (k, (phase, ops)) in plan.phases.iter().zip(&previews).enumerate() {
        let mut operations = Vec::new();
        let mut changes = Vec::new();
        let mut estimate = Some(0i64);
        let mut backup_first = false;
        for (op, preview) in phase.operations.iter().zip(ops) {
            let line_findings: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.line == op.line)
                .collect();
            let review = match preview {
                Preview::Compiled(c) => {
                    backup_first |= c.drops_data;
                    if c.drops_data {
                        op_risks.push((
                            Risk::Medium,
                            format!(
                                "phase {} `{}`: `{}` (line {}) drops data: it runs only after a deploy gate, after a backup{}; only that backup brings the data back",
                                k + 1,
                                phase.name,
                                op.kind.name(),
                                op.line,
                                if config.backup == BackupPolicy::Never {
                                    " (but `backup = \"never\"`: none is taken)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                    let mut actions = Vec::new();
                    for a in &c.up {
                        let r = est.action(a, op, &line_findings);
                        estimate = match (estimate, r.estimate_ms) {
                            (Some(t), Some(ms)) => Some(t + ms),
                            _ => None,
                        };
                        if let Action::Validate { message, .. } = a {
                            validations.push(format!(
                                "phase {} `{}`, `{}` (line {}): {message}",
                                k + 1,
                                phase.name,
                                op.kind.name(),
                                op.line
                            ));
                        }
                        if let Some(lock) = lock_of(a, k, op, &r, config) {
                            if lock.blocks_app && lock.lock == Lock::AccessExclusive.name() {
                                op_risks.push((
                                    Risk::Low,
                                    format!(
                                        "phase {} `{}`: `{}` (line {}) takes ACCESS EXCLUSIVE on {} in a short transaction: {}",
                                        k + 1,
                                        phase.name,
                                        op.kind.name(),
                                        op.line,
                                        lock.table,
                                        lock.bound
                                    ),
                                ));
                            }
                            locks.push(lock);
                        }
                        if let Action::Backfill(sql) = a {
                            // A `backfill` operation's WHERE is the user's
                            // filter: the planner says how many rows it
                            // selects. The other operations' backfills walk
                            // the whole table.
                            let planned = match (&conn, &op.kind) {
                                (Some(c), OperationKind::Backfill { .. }) => {
                                    crate::db::catalog::estimated_rows(c, sql).await
                                }
                                _ => None,
                            };
                            note_backfill(&mut impact, &sizes, sql, planned, k, &phase.name);
                        }
                        for change in action_changes(a) {
                            if !changes.contains(&change) {
                                changes.push(change);
                            }
                        }
                        actions.push(r);
                    }
                    OperationReview {
                        line: op.line,
                        op: op.kind.name().to_owned(),
                        step: op.step_name().map(str::to_owned),
                        table: op.kind.table().map(str::to_owned),
                        compiled: true,
                        note: None,
                        actions,
                    }
                }
                Preview::WhenItRuns(why) | Preview::Broken(why) => {
                    let broken = matches!(preview, Preview::Broken(_));
                    estimate = None;
                    let drops = drops_data_by_definition(op);
                    backup_first |= drops;
                    if drops {
                        op_risks.push((
                            Risk::Medium,
                            format!(
                                "phase {} `{}`: `{}` (line {}) drops data (by its definition; it compiles when it runs): only after a deploy gate, after a backup; only that backup brings the data back",
                                k + 1,
                                phase.name,
                                op.kind.name(),
                                op.line
                            ),
                        ));
                    }
                    changes.push(format!(
                        "`{}` (line {}): {}",
                        op.kind.name(),
                        op.line,
                        what_it_does(op)
                    ));
                    OperationReview {
                        line: op.line,
                        op: op.kind.name().to_owned(),
                        step: op.step_name().map(str::to_owned),
                        table: op.kind.table().map(str::to_owned),
                        compiled: false,
                        note: Some(if broken {
                            format!(
                                "started, but does not compile from the facts stored when it started: {}",
                                why.lines().next().unwrap_or_default()
                            )
                        } else if conn.is_some() {
                            format!(
                                "compiled when it runs, from its table's catalog then (now: {})",
                                why.lines().next().unwrap_or_default()
                            )
                        } else {
                            "not connected: compiled when it runs, from its table's catalog then"
                                .to_owned()
                        }),
                        actions: Vec::new(),
                    }
                }
            };
            if let Some(table) = op.kind.table() {
                let entry = table_entry(&mut impact, &sizes, table);
                let effect = format!("phase {} `{}`: {}", k + 1, phase.name, what_it_does(op));
                if !entry.effects.contains(&effect) {
                    entry.effects.push(effect);
                }
            }
            operations.push(review);
        }
        let findings = report
            .findings
            .iter()
            .filter(|f| !f.allowed && phase.operations.iter().any(|o| o.line == f.line))
            .map(&finding_line)
            .collect();
        let rollback = phase_rollback(m, &plan, k, ops, state.as_ref(), config.backup);
        phase_reviews.push(PhaseReview {
            number: k + 1,
            name: phase.name.clone(),
            line: phase.line,
            state: done.map(|d| if k < d { "done" } else { "pending" }.to_owned()),
            operations,
            schema_changes: changes,
            findings,
            estimate_ms: estimate.filter(|_| conn.is_some()),
            backup_first,
            gate: gate_review(&phase.gate),
            rollback,
        });
    }

    // One line per operation and kind of risk, however many of its
    // transactions take the lock.
    let mut seen = std::collections::BTreeSet::new();
    op_risks.retain(|(_, text)| seen.insert(text.clone()));
    let ops_class = op_risks.iter().map(|(r, _)| *r).max();
    let class = lint_class.max(ops_class);
    let total_estimate_ms = conn
        .is_some()
        .then(|| phase_reviews.iter().filter_map(|p| p.estimate_ms).sum());
    let total_estimate_complete =
        conn.is_some() && phase_reviews.iter().all(|p| p.estimate_ms.is_some());
    let longest_lock = longest(&locks);
    let progress = match (&conn, &state) {
        (None, _) => None,
        (Some(_), None) => Some("not started".to_owned()),
        (Some(_), Some(st)) if st.state == "done" => Some("applied".to_owned()),
        (Some(c), Some(_)) => Some(
            phases::progress(c, &project.history(), m)
                .await?
                .map_or_else(|| "in progress".to_owned(), |p| p.summary),
        ),
    };
    let version = m.version.as_str().to_owned();
    Ok(PlanReview {
        deploy_steps: deploy_steps(&version, &plan, &phase_reviews),
        testing: testing(&version, &plan, validations),
        version,
        label: m.label(),
        file: m.up.path.clone(),
        description: plan.description.clone(),
        independent: plan.independent,
        connected: conn.is_some(),
        progress,
        risk: RiskSection {
            class: class.map_or("NONE".to_owned(), |r| r.to_string()),
            lint_class: lint_class.map_or("NONE".to_owned(), |r| r.to_string()),
            findings: active.iter().map(|f| finding_line(f)).collect(),
            operations: op_risks.into_iter().map(|(_, t)| t).collect(),
        },
        phases: phase_reviews,
        data_impact: impact.into_values().collect(),
        estimates,
        total_estimate_ms,
        total_estimate_complete,
        longest_lock,
        locks,
    })
}

/// Live sizes of every user table.
async fn sizes(conn: &Connection) -> Result<Sizes, VerifyError> {
    Ok(crate::db::catalog::table_sizes(conn)
        .await?
        .into_iter()
        .flat_map(|(schema, name, rows, bytes)| {
            let mut keys = vec![(format!("{schema}.{name}"), (rows, bytes))];
            if schema == "public" {
                keys.push((name, (rows, bytes)));
            }
            keys
        })
        .collect())
}

/// The size of `table` (as SQL: `users`, `public.users`, `"Users"`).
fn size_of(sizes: &Sizes, table: &str) -> Option<(i64, i64)> {
    let unquoted = table.replace('"', "");
    sizes
        .get(table)
        .or_else(|| sizes.get(&crate::lint::schema::key(table)))
        .or_else(|| sizes.get(&unquoted))
        .or_else(|| sizes.get(&crate::lint::schema::key(&unquoted)))
        .copied()
}

fn table_entry<'a>(
    impact: &'a mut BTreeMap<String, TableImpact>,
    sizes: &Sizes,
    table: &str,
) -> &'a mut TableImpact {
    let key = crate::lint::schema::key(table);
    impact.entry(key.clone()).or_insert_with(|| {
        let size = size_of(sizes, table);
        TableImpact {
            table: key,
            rows: size.map(|s| s.0),
            bytes: size.map(|s| s.1),
            rows_touched: None,
            effects: Vec::new(),
        }
    })
}

/// Records the rows a backfill writes or copies.
fn note_backfill(
    impact: &mut BTreeMap<String, TableImpact>,
    sizes: &Sizes,
    sql: &str,
    planned: Option<f64>,
    phase: usize,
    name: &str,
) {
    let Ok(spec) = BackfillSpec::from_sql(sql) else {
        return;
    };
    let keyed = spec.keyed_table().to_owned();
    let entry = table_entry(impact, sizes, &keyed);
    if let Some(rows) = entry.rows {
        let touched = match planned {
            Some(p) => (p.round() as i64).clamp(0, rows.max(0)),
            None => rows.max(0),
        };
        entry.rows_touched = Some(entry.rows_touched.unwrap_or(0).max(touched));
    }
    let effect = match spec.kind() {
        SpecKind::Update => format!("phase {} `{name}`: rows updated in batches", phase + 1),
        SpecKind::Delete => format!("phase {} `{name}`: rows deleted in batches", phase + 1),
        SpecKind::InsertSelect => format!(
            "phase {} `{name}`: rows copied into {} in batches",
            phase + 1,
            spec.written_table()
        ),
    };
    if !entry.effects.contains(&effect) {
        entry.effects.push(effect);
    }
}

/// Estimates actions from live sizes and the server's rate.
struct Estimator<'a> {
    sizes: &'a Sizes,
    connected: bool,
    /// The measured (or cached) rate; `None` connected means the default.
    rate: Option<f64>,
    /// Rows per second of the backfills that finished on this database,
    /// and how many there were.
    backfill_rate: Option<(f64, i64)>,
    batch: Duration,
    sleep: Duration,
}

impl Estimator<'_> {
    fn rate(&self) -> f64 {
        self.rate.unwrap_or(DEFAULT_REWRITE_BYTES_PER_SEC)
    }

    fn rate_words(&self) -> String {
        match self.rate {
            Some(r) => format!("{}/s measured on this server", human_bytes(r)),
            None => format!(
                "the default {}/s (this server's rate could not be measured)",
                human_bytes(DEFAULT_REWRITE_BYTES_PER_SEC)
            ),
        }
    }

    /// The review of one action of `op`.
    fn action(
        &self,
        a: &Action,
        op: &Operation,
        findings: &[&crate::lint::Finding],
    ) -> ActionReview {
        let lock = match a {
            Action::Transaction(s) => sql_summary::strongest_lock(&s.join(";\n"), op.kind.table()),
            Action::Alone(s) => sql_summary::strongest_lock(s, op.kind.table()),
            Action::Backfill(_) | Action::Validate { .. } => None,
        };
        let (kind, summary) = match a {
            Action::Transaction(s) => (
                "transaction",
                s.first()
                    .map(|s| sql_summary::first_line(s))
                    .unwrap_or_default()
                    + &if s.len() > 1 {
                        format!(" (+{} more)", s.len() - 1)
                    } else {
                        String::new()
                    },
            ),
            Action::Alone(s) => ("alone", sql_summary::first_line(s)),
            Action::Backfill(s) => ("backfill", sql_summary::first_line(s)),
            Action::Validate { message, .. } => ("validate", message.clone()),
        };
        let mut review = ActionReview {
            kind: kind.to_owned(),
            summary,
            lock: lock.as_ref().map(|(l, t)| format!("{} on {t}", l.name())),
            rows: None,
            estimate_ms: None,
            how: None,
        };
        if !self.connected {
            return review;
        }
        match a {
            Action::Transaction(_) => {
                // Catalog changes only, unless lint estimated a scan or
                // rewrite for this operation's statements.
                let lint_ms = findings
                    .iter()
                    .filter(|f| f.span.is_empty())
                    .filter_map(|f| f.estimate_ms)
                    .max();
                review.estimate_ms = Some(lint_ms.unwrap_or(0));
                review.how = Some(match lint_ms {
                    Some(_) => "lint's estimate of the scan or rewrite a statement does".to_owned(),
                    None => "catalog changes only: milliseconds".to_owned(),
                });
            }
            Action::Alone(sql) => {
                let scan = scans(sql);
                let table = lock.as_ref().map(|(_, t)| t.clone());
                match (
                    scan,
                    table.and_then(|t| size_of(self.sizes, &t).map(|s| (t, s))),
                ) {
                    (Some(what), Some((t, (_, bytes)))) => {
                        review.estimate_ms = Some(self.bytes_ms(bytes));
                        review.how = Some(format!(
                            "{what}: {t}, {} at {} (a lower bound: it may wait for older transactions)",
                            human_bytes(bytes as f64),
                            self.rate_words()
                        ));
                    }
                    (Some(what), None) => {
                        review.how = Some(format!("{what} of a table that does not exist yet"));
                        review.estimate_ms = Some(0);
                    }
                    (None, _) => {
                        review.estimate_ms = Some(0);
                        review.how = Some("no scan: milliseconds".to_owned());
                    }
                }
            }
            Action::Backfill(sql) => {
                let spec = BackfillSpec::from_sql(sql).ok();
                let table = spec
                    .as_ref()
                    .map(|s| s.keyed_table().to_owned())
                    .or_else(|| op.kind.table().map(str::to_owned));
                match table.as_deref().and_then(|t| size_of(self.sizes, t)) {
                    Some((rows, _)) => {
                        let rows = rows.max(0);
                        review.rows = Some(rows);
                        let (ms, rate) = match self.backfill_rate {
                            Some((per_sec, runs)) => (
                                rows as f64 / per_sec * 1000.0,
                                format!(
                                    "{per_sec:.0} rows/s (measured by the {runs} backfill(s) that finished on this database)"
                                ),
                            ),
                            _ => (
                                rows as f64 / NOMINAL_ROWS_PER_SEC * 1000.0,
                                format!(
                                    "the default {NOMINAL_ROWS_PER_SEC:.0} rows/s (no batched backfill has finished on this database to measure by)"
                                ),
                            ),
                        };
                        let batch_ms = self.batch.as_millis().max(1) as f64;
                        let batches = (ms / batch_ms).ceil().max(if rows > 0 { 1.0 } else { 0.0 });
                        let sleeps = self.sleep.as_millis() as f64 * (batches - 1.0).max(0.0);
                        review.estimate_ms = Some((ms + sleeps).ceil() as i64);
                        review.how = Some(format!(
                            "{rows} rows of {} ÷ {rate}, in about {batches:.0} batch(es) of {} ms{}",
                            table.unwrap_or_default(),
                            self.batch.as_millis(),
                            if self.sleep.is_zero() {
                                String::new()
                            } else {
                                format!(" with {} ms between them", self.sleep.as_millis())
                            }
                        ));
                    }
                    None => {
                        review.estimate_ms = Some(0);
                        review.how =
                            Some("its table does not exist yet: nothing to backfill".to_owned());
                    }
                }
            }
            Action::Validate { .. } => {
                match op
                    .kind
                    .table()
                    .and_then(|t| size_of(self.sizes, t).map(|s| (t, s)))
                {
                    Some((t, (_, bytes))) => {
                        review.estimate_ms = Some(self.bytes_ms(bytes));
                        review.how = Some(format!(
                            "a scan of {t}: {} at {} (longer when it calls a function per row)",
                            human_bytes(bytes as f64),
                            self.rate_words()
                        ));
                    }
                    None => {
                        review.estimate_ms = Some(0);
                        review.how = Some("a query; no table size to scale by".to_owned());
                    }
                }
            }
        }
        review
    }

    fn bytes_ms(&self, bytes: i64) -> i64 {
        (bytes.max(0) as f64 / self.rate() * 1000.0).ceil() as i64
    }
}

/// The rate of the batched backfills that finished on this database:
/// rows changed over time spent, from the `finish` events of backfills
/// that changed 1,000 rows or more (`strata_events`), i.e. what this
/// server really did with batches, throttling included. `None` without
/// such a run. The time is the event's `elapsed_ms` (every run of a
/// resumed backfill), or its `duration_ms` for events written before.
async fn measured_backfill_rate(
    conn: &Connection,
    history: &engine::History,
) -> Result<Option<(f64, i64)>, VerifyError> {
    let exists = crate::db::catalog::relation_exists(conn, history.events_table()).await?;
    if !exists {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!(
                "SELECT coalesce(sum((details->>'rows_changed')::bigint), 0)::float8,
                        coalesce(sum(greatest(duration_ms, (details->>'elapsed_ms')::bigint)), 0)::float8,
                        count(*)
                 FROM {} WHERE action = 'backfill' AND success AND details->>'phase' = 'finish'
                   AND duration_ms > 0 AND (details->>'rows_changed')::bigint >= 1000",
                history.events_table()
            ),
            &[],
        )
        .await?;
    Ok(row.and_then(|r| {
        let (rows, ms, runs): (f64, f64, i64) = (r.get(0), r.get(1), r.get(2));
        (runs > 0 && ms > 0.0).then(|| (rows / (ms / 1000.0), runs))
    }))
}

/// What a statement run alone scans, when it scans a table.
fn scans(sql: &str) -> Option<&'static str> {
    let upper = sql.to_ascii_uppercase();
    if upper.contains("CREATE") && upper.contains("INDEX") {
        Some("an index build scans and sorts the table")
    } else if upper.contains("VALIDATE CONSTRAINT") {
        Some("a validation scans the table")
    } else if upper.starts_with("INSERT")
        || upper.starts_with("UPDATE")
        || upper.starts_with("DELETE")
        || upper.starts_with("WITH")
    {
        Some("a data change reads the table")
    } else {
        None
    }
}

fn estimate_basis(est: &Estimator<'_>, rate: Option<Option<(f64, RateSource)>>) -> EstimateBasis {
    let rate_source = match rate {
        None => "none",
        Some(None) => "default",
        Some(Some((_, RateSource::Cached))) => "cached",
        Some(Some((_, RateSource::Measured))) => "measured",
    };
    let how = if !est.connected {
        vec!["not connected: no sizes, so no estimates (configure a database or pass `--database-url`)".to_owned()]
    } else {
        let source = match rate_source {
            "cached" => format!(
                "this server's rewrite rate, {}/s, measured by an earlier run and cached in rates.json",
                human_bytes(est.rate())
            ),
            "measured" => format!(
                "this server's rewrite rate, {}/s, measured now on a 200,000-row temporary table (and cached)",
                human_bytes(est.rate())
            ),
            _ => format!(
                "no rewrite rate could be measured on this server: the default {}/s for scans and index builds",
                human_bytes(DEFAULT_REWRITE_BYTES_PER_SEC)
            ),
        };
        vec![
            format!("rate: {source}; sizes from the live statistics (pg_class.reltuples, total relation size): run ANALYZE first on tables that changed a lot"),
            match est.backfill_rate {
                Some((per_sec, runs)) => format!(
                    "backfills: the table's rows ÷ {per_sec:.0} rows/s, the rate of the {runs} batched backfill(s) that finished on this database (rows changed over time spent, from their `finish` events), in batches of {} ms",
                    est.batch.as_millis()
                ),
                None => format!(
                    "backfills: the table's rows ÷ the default {NOMINAL_ROWS_PER_SEC:.0} rows/s (the backfill engine's nominal rate, as `up --dry-run` uses; no batched backfill has finished on this database to measure by), in batches of {} ms{}",
                    est.batch.as_millis(),
                    if est.sleep.is_zero() { String::new() } else { format!(" plus {} ms between batches", est.sleep.as_millis()) }
                ),
            },
            "concurrent index builds and VALIDATE CONSTRAINT: the table's total size at the rewrite rate (a build may also wait for older transactions)".to_owned(),
            "validations: a scan of the operation's table at the same rate (a lower bound: a check that calls a function per row, such as a conversion check, takes longer)".to_owned(),
            "short transactions: catalog changes, milliseconds; gates (deploys, waits) are not counted".to_owned(),
        ]
    };
    EstimateBasis {
        rate_source: rate_source.to_owned(),
        rewrite_bytes_per_sec: est.rate.or(if est.connected {
            Some(DEFAULT_REWRITE_BYTES_PER_SEC)
        } else {
            None
        }),
        backfill_rows_per_sec: est.backfill_rate.map(|(r, _)| r),
        batch_time_ms: est.batch.as_millis() as u64,
        sleep_ms: est.sleep.as_millis() as u64,
        how,
    }
}

/// The lock an action takes and its bound.
fn lock_of(
    a: &Action,
    phase: usize,
    op: &Operation,
    r: &ActionReview,
    config: &crate::config::Config,
) -> Option<LockReview> {
    let (lock, table) = match a {
        Action::Transaction(s) => sql_summary::strongest_lock(&s.join(";\n"), op.kind.table())?,
        Action::Alone(s) => sql_summary::strongest_lock(s, op.kind.table())?,
        Action::Backfill(sql) => (
            Lock::RowExclusive,
            BackfillSpec::from_sql(sql)
                .map(|s| s.written_table().to_owned())
                .ok()
                .or_else(|| op.kind.table().map(str::to_owned))?,
        ),
        Action::Validate { .. } => return None,
    };
    let blocks_app = lock >= Lock::Share;
    let lock_timeout = config.lock_timeout;
    let budget = config.lock_retry_budget;
    let max_hold = config.max_lock_hold;
    let (hold, hold_ms) = match (a, r.estimate_ms) {
        (Action::Backfill(_), _) => (
            format!(
                "row locks of one batch at a time, about {} ms each",
                config.backfill.batch_time.as_millis()
            ),
            Some(config.backfill.batch_time.as_millis() as i64),
        ),
        (_, Some(ms)) if ms > 0 => (format!("about {}", human_ms(ms)), Some(ms)),
        (Action::Transaction(_), _) => ("milliseconds (catalog changes only)".to_owned(), Some(0)),
        (_, Some(_)) => ("milliseconds".to_owned(), Some(0)),
        (_, None) => ("unknown offline".to_owned(), None),
    };
    let (bound, bound_ms) = if blocks_app {
        let wait = lock_timeout.as_millis() as i64;
        let hold_cap = max_hold.map(|d| d.as_millis() as i64);
        let bound_ms = match (hold_ms, hold_cap) {
            (Some(h), Some(cap)) => Some(wait + h.min(cap)),
            (Some(h), None) => Some(wait + h),
            (None, cap) => cap.map(|c| wait + c),
        };
        (
            format!(
                "each attempt queues for the lock at most lock_timeout ({}) and, once granted, holds it {}{}; a timed-out attempt lets the app through and is retried with backoff within lock_retry_budget ({})",
                human_ms(wait),
                hold,
                max_hold.map_or(String::new(), |d| format!(
                    ", cancelled by the watchdog past max_lock_hold ({})",
                    human_ms(d.as_millis() as i64)
                )),
                humantime::format_duration(budget)
            ),
            bound_ms,
        )
    } else {
        (
            format!("does not block the application's reads or writes; held {hold}"),
            None,
        )
    };
    Some(LockReview {
        phase: phase + 1,
        operation: format!("{} (line {})", op.kind.name(), op.line),
        lock: lock.name().to_owned(),
        table,
        blocks_app,
        blocks: lock.blocks().to_owned(),
        hold,
        hold_ms,
        bound,
        bound_ms,
    })
}

/// The blocking lock with the longest bound, else the longest lock.
fn longest(locks: &[LockReview]) -> Option<LockReview> {
    let rank = |l: &LockReview| {
        (
            l.blocks_app,
            l.bound_ms.unwrap_or(0).max(l.hold_ms.unwrap_or(0)),
            lock_rank(&l.lock),
        )
    };
    locks.iter().max_by_key(|l| rank(l)).cloned()
}

fn lock_rank(name: &str) -> usize {
    [
        Lock::AccessShare,
        Lock::RowShare,
        Lock::RowExclusive,
        Lock::ShareUpdateExclusive,
        Lock::Share,
        Lock::ShareRowExclusive,
        Lock::Exclusive,
        Lock::AccessExclusive,
    ]
    .iter()
    .position(|l| l.name() == name)
    .unwrap_or(0)
}

/// The schema changes of an action.
/// A `DROP … IF EXISTS` before the `CREATE` or `ADD` of the same object
/// in one action (how a re-runnable action installs a trigger or a check)
/// is not a change of its own.
fn action_changes(a: &Action) -> Vec<String> {
    let all: Vec<String> = match a {
        Action::Transaction(s) => s.iter().flat_map(|s| sql_summary::changes(s)).collect(),
        Action::Alone(s) => sql_summary::changes(s),
        Action::Backfill(_) | Action::Validate { .. } => Vec::new(),
    };
    all.iter()
        .enumerate()
        .filter(|(i, c)| {
            let Some(object) = c.strip_suffix(" dropped") else {
                return true;
            };
            // `trigger t on users created`, `constraint c on users added …`.
            let again = format!("{object} ");
            !all[i + 1..]
                .iter()
                .any(|later| later.starts_with(&again) && !later.ends_with(" dropped"))
        })
        .map(|(_, c)| c.clone())
        .collect()
}

fn gate_review(gate: &Gate) -> GateReview {
    let (kind, deploy, wait_secs) = match gate {
        Gate::None => ("none", None, None),
        Gate::Deploy(text) => ("deploy", Some(text.clone()), None),
        Gate::Wait(d) => ("wait", None, Some(d.as_secs())),
    };
    GateReview {
        kind: kind.to_owned(),
        text: gate.to_string(),
        deploy,
        wait_secs,
    }
}

/// Whether an operation that cannot be compiled yet drops data, from its
/// definition (the compiled form says so exactly).
fn drops_data_by_definition(op: &Operation) -> bool {
    op.kind.drops_data()
        || (op.step_name() == Some("contract")
            && matches!(
                op.kind,
                OperationKind::ChangeColumnType { .. }
                    | OperationKind::NormalizeJson { .. }
                    | OperationKind::PartitionTable { .. }
                    | OperationKind::RenameColumn { .. }
            ))
}

/// One line on what an operation does, from the plan file alone.
fn what_it_does(op: &Operation) -> String {
    use OperationKind as K;
    let step = op.step_name().unwrap_or_default();
    match &op.kind {
        K::AddColumn { table, column, column_type, .. } => {
            format!("column {table}.{column} {column_type} added")
        }
        K::AddRequiredColumn { table, column, column_type, .. } => format!(
            "required column {table}.{column} {column_type}: added with its default, backfilled, NOT NULL through a validated check"
        ),
        K::RenameColumn { table, from, to } if step == "contract" => format!(
            "{table}.{from} and its sync trigger dropped; {to} takes its place (as RENAME COLUMN)"
        ),
        K::RenameColumn { table, from, to } => format!(
            "{table}.{to} added as a copy of {from}, kept equal by a trigger both ways, backfilled, validated"
        ),
        K::ChangeColumnType { table, column, column_type, .. } if step == "contract" => format!(
            "{table}.{column} swapped for its {column_type} shadow in one short transaction; the old values are dropped"
        ),
        K::ChangeColumnType { table, column, column_type, .. } => format!(
            "{column_type} shadow of {table}.{column} with a sync trigger, conversion validated, backfilled"
        ),
        K::SplitColumn { table, column, .. } if step == "contract" => {
            format!("the sync trigger from {table}.{column} dropped")
        }
        K::SplitColumn { table, column, into } => format!(
            "{} added on {table} from {column}, with a sync trigger, backfilled, validated",
            into.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ")
        ),
        K::AddIndex { table, columns, unique, .. } => format!(
            "{}index on {table} ({}) built concurrently",
            if *unique { "unique " } else { "" },
            columns.join(", ")
        ),
        K::SetNotNull { table, column } => {
            format!("{table}.{column} set NOT NULL through a validated check")
        }
        K::SoftDelete { table, .. } => {
            format!("soft delete on {table}: column, partial index, active-rows view")
        }
        K::AddJsonbColumn { table, column, .. } => {
            format!("jsonb column {table}.{column} added, backfilled, indexed concurrently")
        }
        K::AddForeignKey { table, columns, references, .. } => format!(
            "foreign key {table} ({}) → {references}: orphans handled, NOT VALID then validated",
            columns.join(", ")
        ),
        K::PartitionTable { table, .. } if step == "swap" => {
            format!("{table} swapped with its partitioned copy by rename")
        }
        K::PartitionTable { table, .. } if step == "contract" => {
            format!("{table}_old dropped")
        }
        K::PartitionTable { table, key, .. } => format!(
            "partitioned copy of {table} by {key}, kept in sync by a trigger, copied in batches, validated"
        ),
        K::NormalizeJson { table, column, into, .. } if step == "contract" => {
            format!("{table}.{column} dropped (now in {into})")
        }
        K::NormalizeJson { table, column, into, .. } => format!(
            "{table}.{column} copied into the child table {into}, kept in sync by a trigger, validated"
        ),
        K::Backfill { table, .. } => format!("rows of {table} updated in batches"),
        K::Sql { .. } => "SQL as written".to_owned(),
        K::Validate { message, .. } => format!(
            "validation{}",
            message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        K::DropColumn { table, column } => format!("{table}.{column} dropped (backup first)"),
        K::DropTable { table } => format!("{table} dropped (backup first)"),
    }
}

/// How to undo phase `k`.
fn phase_rollback(
    m: &Migration,
    plan: &Plan,
    k: usize,
    ops: &[Preview],
    state: Option<&PlanState>,
    policy: BackupPolicy,
) -> PhaseRollback {
    let version = m.version.as_str();
    let phase = &plan.phases[k];
    let mut reverse_changes = Vec::new();
    let mut irreversible = Vec::new();
    let mut drops = false;
    for (op, preview) in phase.operations.iter().zip(ops).rev() {
        match preview {
            Preview::Compiled(Compiled {
                down, drops_data, ..
            }) => {
                drops |= *drops_data;
                match down {
                    Ok(actions) => {
                        for a in actions {
                            reverse_changes.extend(action_changes(a));
                        }
                    }
                    Err(why) => {
                        irreversible.push(format!("`{}` (line {}): {why}", op.kind.name(), op.line))
                    }
                }
            }
            _ => {
                if drops_data_by_definition(op) {
                    drops = true;
                    irreversible.push(format!(
                        "`{}` (line {}): drops data (compiled when it runs)",
                        op.kind.name(),
                        op.line
                    ));
                } else {
                    reverse_changes.push(format!(
                        "`{}` (line {}): its reverse, compiled when it runs",
                        op.kind.name(),
                        op.line
                    ));
                }
            }
        }
    }
    let backup = state.and_then(|s| {
        s.cursor
            .backups
            .iter()
            .find(|(p, _)| *p == k)
            .map(|(_, f)| f.clone())
    });
    let n = k + 1;
    let reversible = irreversible.is_empty() && !drops;
    let command = if reversible {
        if n == plan.phases.len() {
            format!("`strata rollback {version} --phase {n}`")
        } else {
            format!("`strata rollback {version} --phase {n}` (reverses the later phases first, newest first)")
        }
    } else {
        let named = backup
            .clone()
            .unwrap_or_else(|| format!("<the backup taken before phase {n}>"));
        let how = match policy {
            BackupPolicy::Never => format!(
                " (`backup = \"never\"`: none is taken; take one with `strata backup` before phase {n} runs)"
            ),
            _ => " (`strata backups` lists it)".to_owned(),
        };
        format!(
            "irreversible: drops data; rollback needs `strata rollback {version} --phase {n} --from-backup {named}`{how}"
        )
    };
    PhaseRollback {
        reversible,
        command,
        reverse_changes,
        irreversible,
        backup,
    }
}

/// The ordered deploy checklist.
fn deploy_steps(version: &str, plan: &Plan, phases: &[PhaseReview]) -> Vec<String> {
    let mut out = Vec::new();
    let total = phases.len();
    let mut command = "`strata up`".to_owned();
    let mut run: Vec<String> = Vec::new();
    for (k, p) in phases.iter().enumerate() {
        run.push(format!(
            "phase {} `{}`{}{}",
            k + 1,
            p.name,
            if p.backup_first {
                " (a backup of the tables it drops data from first)"
            } else {
                ""
            },
            p.estimate_ms
                .map(|ms| format!(", about {}", human_ms(ms)))
                .unwrap_or_default()
        ));
        let last = k + 1 == total;
        let gate = &plan.phases[k].gate;
        if last || !matches!(gate, Gate::None) {
            out.push(format!("{command}: runs {}", run.join(", then ")));
            run.clear();
        }
        if last {
            break;
        }
        match gate {
            Gate::None => {}
            Gate::Deploy(text) => {
                out.push(format!(
                    "`strata up` stops: \"phase {} of {total} done; waiting for: deploy: {text}\"",
                    k + 1
                ));
                out.push(format!("Deploy: {text}"));
                command = format!("`strata up --continue {version}` (once the deploy is done)");
            }
            Gate::Wait(d) => {
                out.push(format!(
                    "Wait at least {} after phase {} (the gate passes by itself)",
                    humantime::format_duration(*d),
                    k + 1
                ));
                command = "`strata up` (after the wait)".to_owned();
            }
        }
    }
    out.push(format!(
        "`strata status`: {version} is `applied`{}",
        if plan.independent {
            ""
        } else {
            "; later migrations ran only after it"
        }
    ));
    out
}

fn testing(version: &str, plan: &Plan, validations: Vec<String>) -> Testing {
    let steps = vec![
        format!("On a throwaway database (a copy of production's schema with realistic rows, or `strata local start` and its `strata local url`): `strata --database-url URL up --through-gates`, every phase of {version} in one go"),
        format!("There, `strata rollback {version}` and check the schema is back (`strata verify`); the phases that drop data need `--from-backup` with the backup `up` took"),
        format!("`strata up --dry-run` against production: the exact SQL of each remaining phase, compiled from the live catalog"),
        "`strata lint`: the plan's findings (the same as in the risk section)".to_owned(),
        format!("`strata test --from {version} --to {version}`: on a throwaway cluster, {version} through every gate, rolled back phase by phase, the catalog compared with before, and up again (a plan whose phases drop data is reported irreversible, with the phase)"),
    ];
    let mut watch = vec![
        "`strata status`: the plan's phase and the gate it waits at".to_owned(),
        "`strata monitor`: blocked queries, locks on the plan's tables, index build progress, replication lag".to_owned(),
        "the application's error rate and latency after each deploy the gates name".to_owned(),
    ];
    if plan
        .phases
        .iter()
        .flat_map(|p| &p.operations)
        .any(|o| o.kind.steps().len() > 1)
    {
        watch.push("sync triggers run on every write while the plan is between its steps: the writes' latency".to_owned());
    }
    Testing {
        steps,
        validations,
        watch,
    }
}

/// Milliseconds in words.
pub fn human_ms(ms: i64) -> String {
    let ms = ms as f64;
    if ms < 1.0 {
        "< 1 ms".to_owned()
    } else if ms >= 3_600_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else if ms >= 60_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// Bytes in words.
pub fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
[[phase]]
name = "expand"
operations = [{ op = "add_column", table = "users", column = "a", type = "int" }]
gate = "none"

[[phase]]
name = "migrate"
operations = [{ op = "backfill", table = "users", set = "a = 1" }]
gate = { wait = "1h" }

[[phase]]
name = "switch"
operations = [{ op = "validate", sql = "SELECT true" }]
gate = { deploy = "app v2, which reads a" }

[[phase]]
name = "contract"
operations = [{ op = "drop_column", table = "users", column = "b" }]
"#;

    fn migration() -> Migration {
        Migration {
            version: crate::source::Version::integer("7").expect("version"),
            kind: MigrationKind::Plan,
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

    fn phase(plan: &Plan, k: usize, backup_first: bool) -> PhaseReview {
        PhaseReview {
            number: k + 1,
            name: plan.phases[k].name.clone(),
            line: plan.phases[k].line,
            state: None,
            operations: Vec::new(),
            schema_changes: Vec::new(),
            findings: Vec::new(),
            estimate_ms: None,
            backup_first,
            gate: gate_review(&plan.phases[k].gate),
            rollback: PhaseRollback {
                reversible: true,
                command: String::new(),
                reverse_changes: Vec::new(),
                irreversible: Vec::new(),
                backup: None,
            },
        }
    }

    #[test]
    fn deploy_steps_interleave_up_with_waits_and_deploys() {
        let plan = crate::plan::file::parse(PLAN).expect("valid plan");
        let phases: Vec<_> = (0..4).map(|k| phase(&plan, k, k == 3)).collect();
        assert_eq!(
            deploy_steps("7", &plan, &phases),
            [
                "`strata up`: runs phase 1 `expand`, then phase 2 `migrate`",
                "Wait at least 1h after phase 2 (the gate passes by itself)",
                "`strata up` (after the wait): runs phase 3 `switch`",
                "`strata up` stops: \"phase 3 of 4 done; waiting for: deploy: app v2, which reads a\"",
                "Deploy: app v2, which reads a",
                "`strata up --continue 7` (once the deploy is done): runs phase 4 `contract` (a backup of the tables it drops data from first)",
                "`strata status`: 7 is `applied`; later migrations ran only after it",
            ]
        );
    }

    #[test]
    fn a_phase_that_drops_data_rolls_back_only_from_its_backup() {
        let m = migration();
        let plan = crate::plan::file::parse(PLAN).expect("valid plan");
        let previews: Vec<Vec<Preview>> = plan
            .phases
            .iter()
            .map(|p| {
                p.operations
                    .iter()
                    .map(|op| {
                        let ctx = crate::plan::Context {
                            version: "7",
                            step: op.step_name(),
                            table: None,
                        };
                        Preview::Compiled(
                            crate::plan::ops::compile(&op.kind, &ctx).expect("compiles"),
                        )
                    })
                    .collect()
            })
            .collect();
        let first = phase_rollback(&m, &plan, 0, &previews[0], None, BackupPolicy::Auto);
        assert!(first.reversible);
        assert_eq!(
            first.command,
            "`strata rollback 7 --phase 1` (reverses the later phases first, newest first)"
        );
        assert_eq!(
            first.reverse_changes,
            ["column users.a dropped (its data with it)"]
        );

        let last = phase_rollback(&m, &plan, 3, &previews[3], None, BackupPolicy::Auto);
        assert!(!last.reversible);
        assert_eq!(
            last.command,
            "irreversible: drops data; rollback needs `strata rollback 7 --phase 4 --from-backup <the backup taken before phase 4>` (`strata backups` lists it)"
        );
        // Once the phase ran, the backup `up` took is named.
        let mut state = PlanState {
            state: "done".into(),
            done: 4,
            total: 4,
            cursor: phases::Cursor::default(),
            error: None,
            backend_pid: None,
        };
        state
            .cursor
            .backups
            .push((3, "/b/7_before_phase_4.dump".into()));
        let ran = phase_rollback(&m, &plan, 3, &previews[3], Some(&state), BackupPolicy::Auto);
        assert!(
            ran.command
                .contains("--from-backup /b/7_before_phase_4.dump`"),
            "{}",
            ran.command
        );
        // With backups switched off, it says none is taken.
        let never = phase_rollback(&m, &plan, 3, &previews[3], None, BackupPolicy::Never);
        assert!(never.command.contains("none is taken"), "{}", never.command);
    }
}
