//! `strata spec VERSION`: the design documents' migration spec, filled in
//! from what Strata already knows about a migration.
//!
//! Every section comes from an existing source, nothing is guessed anew:
//! the risk class and its reasons are the lint findings (with the
//! connected server's table sizes and measured rewrite rate, the same
//! estimates `up` judges by); schema changes are the stored trace's
//! catalog differences when the file has been traced, otherwise the
//! statements themselves; data impact is the live statistics of the
//! tables it names; downtime is each blocking lock (predicted, or observed
//! by the trace) with its estimated duration; the rollback is the down
//! script, or the backup `up` would take (the engine's own decision); the
//! deploy order follows from what the statements add and remove; the
//! testing plan lists the trace's observations and what to run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

use super::trace::{self, Trace};
use super::VerifyError;
use crate::config::BackupPolicy;
use crate::db::Target;
use crate::engine::{self, Project};
use crate::lint::{context::table_lock, Risk};
use crate::sql::{self, RunMode};

/// A migration spec.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Spec {
    /// The version, as the layout writes it.
    pub version: String,
    /// `version_name`.
    pub label: String,
    /// The up script.
    pub file: PathBuf,
    /// The up script's header comment.
    pub description: Option<String>,
    /// How `up` runs it.
    pub mode: String,
    /// True when a database was connected (sizes, estimates, backup).
    pub connected: bool,
    /// Risk class and why.
    pub risk: RiskSection,
    /// What changes in the schema.
    pub schema_changes: SchemaChanges,
    /// Tables the migration touches, with their size.
    pub data_impact: Vec<TableImpact>,
    /// Per statement: lock and estimated duration.
    pub statements: Vec<StatementPlan>,
    /// Sum of the statements' estimates, in milliseconds (connected only).
    pub total_estimate_ms: Option<i64>,
    /// Locks that block the application, and for how long.
    pub downtime: Downtime,
    /// How to undo it.
    pub rollback: Rollback,
    /// When to run it relative to the application deploy.
    pub deploy_order: DeployOrder,
    /// What has been tested and what to run.
    pub testing: Testing,
}

/// The risk class.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RiskSection {
    /// `HIGH`, `MEDIUM`, `LOW` or `NONE`.
    pub class: String,
    /// One line per unacknowledged finding: `HIGH ban-drop-column (line 3): …`.
    pub reasons: Vec<String>,
}

/// The schema changes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaChanges {
    /// `trace` (observed catalog differences) or `statements`.
    pub source: String,
    /// One line per change.
    pub changes: Vec<String>,
    /// The up script's statements, as the template shows them.
    pub sql: String,
}

/// One table the migration touches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableImpact {
    /// The table as the statements name it.
    pub table: String,
    /// Estimated live rows (connected, and the table exists).
    pub rows: Option<i64>,
    /// Total bytes, indexes and TOAST included.
    pub bytes: Option<i64>,
    /// What happens to it: `created`, `rewritten`, `locked`, `written`, ...
    pub effect: String,
}

/// One statement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatementPlan {
    /// 1-based line in the file.
    pub line: usize,
    /// The statement's first line.
    pub summary: String,
    /// The lock it takes on an existing table, as predicted (`SHARE on users`).
    pub lock: Option<String>,
    /// The estimated duration on the live table (connected only).
    pub estimate_ms: Option<i64>,
    /// What the trace observed, if the file was traced.
    pub observed: Option<String>,
}

/// The downtime section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Downtime {
    /// False when no statement blocks reads or writes of an existing table.
    pub needed: bool,
    /// One line per blocking lock.
    pub locks: Vec<String>,
}

/// The rollback section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollback {
    /// The down script's file, if there is one.
    pub down_file: Option<PathBuf>,
    /// Its text.
    pub down_sql: Option<String>,
    /// The backup `up` takes first, or when it is decided.
    pub backup: String,
    /// What to do, in words.
    pub procedure: String,
}

/// The deploy order section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployOrder {
    /// `before the application deploy`, `after the application deploy`,
    /// `in two steps`, or `independent of the application deploy`.
    pub order: String,
    /// Why, one line per statement that decides it.
    pub why: Vec<String>,
}

/// The testing plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Testing {
    /// The stored trace's observations, one line per statement.
    pub trace: Vec<String>,
    /// When the trace was taken on a sample, its size.
    pub trace_sample_rows: Option<u64>,
    /// Commands to run, with why.
    pub steps: Vec<String>,
}

/// Builds the spec of the migration `which` (a version or its up file).
/// `target`: the database to read sizes and decide backups from, if any.
pub async fn spec(
    project: &Project,
    which: &str,
    target: Option<&Target>,
) -> Result<Spec, VerifyError> {
    let (index, m) = trace::find(project, which)?;
    let config = &project.config;
    let conn = match target {
        Some(t) => Some(t.connect().await?),
        None => None,
    };
    let report = engine::lint_paths(std::slice::from_ref(&m.up.path), config, target).await?;
    let up = m.up.load().map_err(engine::EngineError::Reread)?;
    let statements = sql::split(up.text(), &m.up.blocks).map_err(|e| VerifyError::Usage {
        message: format!(
            "{}:{}: {e}",
            m.up.path.display(),
            m.up.first_line + e.line() - 1
        ),
        help: e.help().to_owned(),
    })?;
    let stored = trace::stored(config, m);
    let line_of = |s: &sql::Statement| m.up.first_line + s.line - 1;

    // Risk.
    let active: Vec<_> = report.active().collect();
    let class = active
        .iter()
        .map(|f| f.risk)
        .max()
        .map_or("NONE".to_owned(), |r| r.to_string());
    let reasons = active
        .iter()
        .map(|f| format!("{} {} (line {}): {}", f.risk, f.rule, f.line, f.message))
        .collect();

    // Statements, predicted locks, estimates, observations.
    let created = created_tables(&statements);
    let observed: BTreeMap<usize, &trace::StatementTrace> = stored
        .iter()
        .flat_map(|t| t.statements.iter().map(|s| (s.line, s)))
        .collect();
    let mut plans = Vec::new();
    for s in &statements {
        let line = line_of(s);
        let here: Vec<_> = active.iter().filter(|f| f.line == line).collect();
        let predicted = s
            .nodes()
            .iter()
            .filter_map(|n| n.node.as_ref())
            .filter_map(table_lock)
            .filter(|(_, table)| !created.contains(&crate::lint::schema::key(table)))
            .max_by_key(|(lock, _)| *lock)
            .map(|(lock, table)| format!("{lock} on {table}"));
        plans.push(StatementPlan {
            line,
            summary: s.summary(),
            lock: predicted,
            // A lock span's finding carries the sum of the statements
            // inside the span: each of those has its own.
            estimate_ms: here
                .iter()
                .filter(|f| f.span.is_empty())
                .filter_map(|f| f.estimate_ms)
                .max(),
            observed: observed.get(&line).map(|o| trace::statement_line(o)),
        });
    }
    let total_estimate_ms = conn
        .is_some()
        .then(|| plans.iter().filter_map(|p| p.estimate_ms).sum());

    // Schema changes.
    let schema_changes = match &stored {
        Some(t) => SchemaChanges {
            sql: up_sql(&statements),
            source: "trace".to_owned(),
            changes: t
                .statements
                .iter()
                .flat_map(|s| {
                    s.changes
                        .iter()
                        .map(move |c| format!("{c} (line {})", s.line))
                })
                .collect(),
        },
        None => SchemaChanges {
            sql: up_sql(&statements),
            source: "statements".to_owned(),
            changes: plans
                .iter()
                .map(|p| format!("line {}: {}", p.line, p.summary))
                .collect(),
        },
    };

    // Data impact.
    let sizes: BTreeMap<String, (i64, i64)> = match &conn {
        Some(c) => crate::db::catalog::table_sizes(c)
            .await?
            .into_iter()
            .flat_map(|(schema, name, rows, bytes)| {
                let qualified = format!("{schema}.{name}");
                let mut keys = vec![(qualified, (rows, bytes))];
                if schema == "public" {
                    keys.push((name, (rows, bytes)));
                }
                keys
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let mut impact: BTreeMap<String, TableImpact> = BTreeMap::new();
    for (s, plan) in statements.iter().zip(&plans) {
        let effect = effect_of(s, plan, observed.get(&plan.line).copied());
        for table in trace::statement_tables(s) {
            let key = crate::lint::schema::key(&table);
            let size = sizes.get(&table).or_else(|| sizes.get(&key));
            let entry = impact.entry(key.clone()).or_insert_with(|| TableImpact {
                table: key.clone(),
                rows: size.map(|s| s.0),
                bytes: size.map(|s| s.1),
                effect: String::new(),
            });
            let effect = if created.contains(&key) {
                "created by this migration"
            } else {
                effect
            };
            if !entry.effect.split(", ").any(|e| e == effect) {
                if !entry.effect.is_empty() {
                    entry.effect.push_str(", ");
                }
                entry.effect.push_str(effect);
            }
        }
    }

    // Downtime.
    let mut locks = Vec::new();
    for (plan, s) in plans.iter().zip(&statements) {
        // What the trace saw, when the file was traced; else the prediction.
        let blocking: Option<(String, String, &'static str)> = match observed.get(&plan.line) {
            Some(o) => o
                .shown_locks()
                .into_iter()
                .find(|l| trace::mode_rank(&l.mode) >= trace::mode_rank("SHARE"))
                .map(|l| (l.mode.clone(), l.relation.clone(), blocks_of(&l.mode))),
            None => s
                .nodes()
                .iter()
                .filter_map(|n| n.node.as_ref())
                .filter_map(table_lock)
                .filter(|(lock, table)| {
                    *lock >= crate::lint::Lock::Share
                        && !created.contains(&crate::lint::schema::key(table))
                })
                .max_by_key(|(lock, _)| *lock)
                .map(|(lock, table)| (lock.name().to_owned(), table, lock.blocks())),
        };
        if let Some((lock, table, blocks)) = blocking {
            let how_long = match (plan.estimate_ms, observed.get(&plan.line)) {
                (Some(ms), _) => format!("about {}", human_ms(ms as f64)),
                (None, Some(o)) if conn.is_some() => {
                    format!(
                        "{} on the traced copy; brief on the live table (no scan predicted)",
                        human_ms(o.ms)
                    )
                }
                (None, Some(o)) => format!("{} on the traced copy", human_ms(o.ms)),
                (None, None) if conn.is_some() => "brief (catalog change only)".to_owned(),
                (None, None) => "unknown offline (connect for an estimate)".to_owned(),
            };
            locks.push(format!(
                "line {}: {lock} on {table} for {how_long}: {blocks}",
                plan.line
            ));
        }
    }
    let mode = RunMode::of(
        m.up.no_transaction.as_ref().map(|n| n.source.clone()),
        m.up.first_line,
        &statements,
    );
    if mode == RunMode::Transaction && locks.len() > 1 {
        locks.push(format!(
            "in one transaction: every lock above is held until the COMMIT{}",
            total_estimate_ms
                .filter(|ms| *ms > 0)
                .map(|ms| format!(", about {} in all", human_ms(ms as f64)))
                .unwrap_or_default()
        ));
    }

    // Rollback.
    let backup = match (&conn, config.backup) {
        (_, BackupPolicy::Never) => "none (backup = \"never\")".to_owned(),
        (Some(c), _) => match engine::backup::decision(config, c, m).await? {
            Some(need) => format!(
                "`up` dumps {} first, because {}",
                need.what(),
                need.reason()
            ),
            None => "none needed: no statement loses data".to_owned(),
        },
        (None, BackupPolicy::Always) => {
            "`up` dumps the whole database first (backup = \"always\")".to_owned()
        }
        (None, BackupPolicy::Auto) => {
            "decided by `up` right before it runs, from the catalog (connect to see it here)"
                .to_owned()
        }
    };
    let down = match m.down.as_deref() {
        Some(d) => Some(d.load().map_err(engine::EngineError::Reread)?),
        None => None,
    };
    let down = down.filter(|d| !d.is_blank());
    let procedure = match down {
        Some(_) => match index.checked_sub(1).map(|i| &project.migrations[i]) {
            Some(previous) => format!(
                "`strata down --to {}` runs the down script below (after the down scripts of any later migration)",
                previous.version.as_str()
            ),
            None => "`strata down --all` runs the down script below (after those of every later migration)".to_owned(),
        },
        None if backup.starts_with("`up` dumps") => {
            "no down script: restore the backup `up` takes (`strata backups` lists it, `strata restore FILE --table …`)".to_owned()
        }
        None if rollback_backup_undecided(&backup) => {
            "no down script: restore the backup if `up` takes one (it decides right before it runs), otherwise it cannot be undone".to_owned()
        }
        None => "no down script and no backup: irreversible; write a down script or take a backup (`strata backup`) before running it".to_owned(),
    };
    let rollback = Rollback {
        down_file: down.as_ref().map(|d| d.path.clone()),
        down_sql: down.as_ref().map(|d| d.text().trim().to_owned()),
        backup,
        procedure,
    };

    let deploy_order = deploy_order(&statements, &line_of);
    let testing = testing(m, stored.as_ref());
    Ok(Spec {
        version: m.version.as_str().to_owned(),
        label: m.label(),
        file: m.up.path.clone(),
        description: engine::changelog::description(m),
        mode: mode.describe(),
        connected: conn.is_some(),
        risk: RiskSection { class, reasons },
        schema_changes,
        data_impact: impact.into_values().collect(),
        statements: plans,
        total_estimate_ms,
        downtime: Downtime {
            needed: !locks.is_empty(),
            locks,
        },
        rollback,
        deploy_order,
        testing,
    })
}

fn rollback_backup_undecided(backup: &str) -> bool {
    backup.starts_with("decided")
}

fn up_sql(statements: &[sql::Statement]) -> String {
    statements
        .iter()
        .map(|s| format!("{};", s.sql.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tables the statements create (as lint keys), whose locks block nobody.
fn created_tables(statements: &[sql::Statement]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in statements {
        for node in s.nodes() {
            let name = match node.node.as_ref() {
                Some(NodeEnum::CreateStmt(c)) => c.relation.as_ref(),
                Some(NodeEnum::CreateTableAsStmt(c)) => {
                    c.into.as_ref().and_then(|i| i.rel.as_ref())
                }
                _ => None,
            };
            if let Some(rv) = name {
                out.insert(crate::lint::schema::key(&crate::lint::ast::relation(rv)));
            }
        }
    }
    out
}

fn effect_of(
    s: &sql::Statement,
    plan: &StatementPlan,
    observed: Option<&trace::StatementTrace>,
) -> &'static str {
    if observed.is_some_and(|o| !o.rewritten_tables().is_empty()) {
        return "rewritten";
    }
    let nodes = s.nodes();
    let kinds: Vec<&NodeEnum> = nodes.iter().filter_map(|n| n.node.as_ref()).collect();
    if kinds.iter().any(|n| {
        matches!(
            n,
            NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_) | NodeEnum::InsertStmt(_)
        )
    }) {
        return "rows written";
    }
    if kinds.iter().any(|n| matches!(n, NodeEnum::TruncateStmt(_))) {
        return "emptied";
    }
    if kinds.iter().any(
        |n| matches!(n, NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32),
    ) {
        return "dropped";
    }
    if kinds.iter().any(|n| matches!(n, NodeEnum::IndexStmt(_))) {
        return "scanned (index build)";
    }
    if plan.lock.is_some() {
        return "locked";
    }
    "read"
}

/// Additive statements go before the code that uses them; removals after
/// the code that stops using them.
fn deploy_order(
    statements: &[sql::Statement],
    line_of: &dyn Fn(&sql::Statement) -> usize,
) -> DeployOrder {
    let mut additive = Vec::new();
    let mut removals = Vec::new();
    let mut breaking = Vec::new();
    for s in statements {
        let line = line_of(s);
        for node in s.nodes() {
            let Some(node) = node.node.as_ref() else {
                continue;
            };
            match node {
                NodeEnum::CreateStmt(_)
                | NodeEnum::IndexStmt(_)
                | NodeEnum::ViewStmt(_)
                | NodeEnum::CreateFunctionStmt(_)
                | NodeEnum::CreateTrigStmt(_)
                | NodeEnum::CreateSeqStmt(_)
                | NodeEnum::CreateEnumStmt(_)
                | NodeEnum::CreateTableAsStmt(_) => additive.push(format!("line {line}: {} adds", s.summary())),
                NodeEnum::DropStmt(d) if d.remove_type != ObjectType::ObjectIndex as i32 => {
                    removals.push(format!("line {line}: {} removes what running code may still use", s.summary()))
                }
                NodeEnum::RenameStmt(_) => breaking.push(format!(
                    "line {line}: {} renames: the running code uses the old name, the new code the new one",
                    s.summary()
                )),
                NodeEnum::AlterTableStmt(a) => {
                    for cmd in &a.cmds {
                        let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else { continue };
                        let t = c.subtype;
                        if t == AlterTableType::AtDropColumn as i32 {
                            removals.push(format!("line {line}: {} drops a column the running code may still read or write", s.summary()));
                        } else if t == AlterTableType::AtAlterColumnType as i32 {
                            breaking.push(format!("line {line}: {} changes a type the running code reads and writes", s.summary()));
                        } else if t == AlterTableType::AtSetNotNull as i32 {
                            removals.push(format!("line {line}: {} requires every writer to set the column: deploy code that does first", s.summary()));
                        } else if t == AlterTableType::AtAddColumn as i32
                            || t == AlterTableType::AtAddConstraint as i32
                            || t == AlterTableType::AtAddIndex as i32
                        {
                            additive.push(format!("line {line}: {} adds", s.summary()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let order = match (
        additive.is_empty(),
        removals.is_empty() && breaking.is_empty(),
    ) {
        (_, false) if !breaking.is_empty() => "in two steps (expand, then contract)",
        (false, false) => "in two steps (expand, then contract)",
        (true, false) => "after the application deploy",
        (false, true) => "before the application deploy",
        (true, true) => "independent of the application deploy",
    };
    let mut why = additive;
    why.extend(removals);
    why.extend(breaking);
    if order.starts_with("in two steps") {
        why.push("split it: the additive part in a migration run before the new code is deployed, the removals and changes in one run after the old code is gone".to_owned());
    }
    DeployOrder {
        order: order.to_owned(),
        why,
    }
}

fn testing(m: &crate::source::Migration, stored: Option<&Trace>) -> Testing {
    let v = m.version.as_str();
    let mut steps = Vec::new();
    if stored.is_none() {
        steps.push(format!(
            "`strata trace {v} --sample-rows 10000`: observe the locks, rewrites and time of each statement on a throwaway copy (not traced yet)"
        ));
    }
    steps.push(format!(
        "`strata test --from {v} --to {v}`: up, down and up again on a throwaway copy, compared object by object (its results are not stored; run it)"
    ));
    steps.push("`strata lint`: the findings, and with a trace, where the prediction differs from what was observed".to_owned());
    steps.push(format!(
        "`strata up --to {v} --dry-run` against production: the exact SQL, timeouts and backup"
    ));
    Testing {
        trace: stored
            .map(|t| {
                t.statements
                    .iter()
                    .map(|s| format!("line {}: {}", s.line, trace::statement_line(s)))
                    .collect()
            })
            .unwrap_or_default(),
        trace_sample_rows: stored.and_then(|t| t.sample_rows),
        steps,
    }
}

/// What a lock mode blocks, in words (lint's wording).
fn blocks_of(mode: &str) -> &'static str {
    use crate::lint::Lock;
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
    .into_iter()
    .find(|l| l.name() == mode)
    .map_or("", Lock::blocks)
}

fn human_ms(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

fn human_rows(rows: Option<i64>, bytes: Option<i64>) -> (String, String) {
    let r = rows.map_or("–".to_owned(), |r| r.to_string());
    let b = bytes.map_or("–".to_owned(), |b| {
        let b = b as f64;
        if b >= 1e9 {
            format!("{:.1} GB", b / 1e9)
        } else if b >= 1e6 {
            format!("{:.1} MB", b / 1e6)
        } else {
            format!("{:.0} kB", b / 1e3)
        }
    });
    (r, b)
}

/// Escapes text for a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The spec as GitHub-flavoured markdown, with the design documents'
/// template's sections in its order.
pub fn markdown(spec: &Spec, rel: &dyn Fn(&std::path::Path) -> String) -> String {
    let file = rel(&spec.file);
    let mut out = format!("# Migration: {}\n\n", spec.label);
    out.push_str(&format!("`{file}`, runs {}.", spec.mode));
    if !spec.connected {
        out.push_str(" Not connected to a database: row counts, duration estimates and the backup decision need one (`--database-url`).");
    }
    out.push_str(&format!("\n\n## Risk Level: {}\n\n", spec.risk.class));
    if spec.risk.reasons.is_empty() {
        out.push_str("No lint finding.\n");
    }
    for r in &spec.risk.reasons {
        out.push_str(&format!("- {r}\n"));
    }
    out.push_str("\n## Description\n\n");
    out.push_str(
        spec.description
            .as_deref()
            .unwrap_or("(no header comment in the up script)"),
    );
    out.push_str("\n\n## Schema Changes\n\n");
    out.push_str(&format!("```sql\n{}\n```\n", spec.schema_changes.sql));
    if spec.schema_changes.source == "trace" {
        out.push_str("\nObserved by `strata trace`, object by object:\n\n");
        for c in &spec.schema_changes.changes {
            out.push_str(&format!("- {c}\n"));
        }
    }
    out.push_str("\n## Data Impact\n\n| table | rows | size | effect |\n|---|---:|---:|---|\n");
    for t in &spec.data_impact {
        let (rows, bytes) = human_rows(t.rows, t.bytes);
        out.push_str(&format!(
            "| {} | {rows} | {bytes} | {} |\n",
            cell(&t.table),
            cell(&t.effect)
        ));
    }
    out.push_str("\n## Estimated Duration\n\n| line | statement | lock | estimate | observed by `strata trace` |\n|---:|---|---|---:|---|\n");
    for p in &spec.statements {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            p.line,
            cell(&p.summary),
            p.lock.as_deref().map_or("–".to_owned(), cell),
            p.estimate_ms
                .map_or("–".to_owned(), |ms| human_ms(ms as f64)),
            p.observed.as_deref().map_or("–".to_owned(), cell),
        ));
    }
    match spec.total_estimate_ms {
        Some(ms) => out.push_str(&format!(
            "\nTotal: about {} (rates measured on this server).\n",
            human_ms(ms as f64)
        )),
        None => out.push_str(
            "\nTotal: unknown offline (connect for estimates from this server's measured rates).\n",
        ),
    }
    out.push_str("\n## Downtime Required\n\n");
    if spec.downtime.needed {
        out.push_str("YES - these locks block the application while they are held:\n\n");
        for l in &spec.downtime.locks {
            out.push_str(&format!("- {l}\n"));
        }
    } else {
        out.push_str("NO - no statement blocks reads or writes of an existing table.\n");
    }
    out.push_str(&format!(
        "\n## Rollback Procedure\n\n{}.\n\n- Backup: {}\n",
        spec.rollback.procedure, spec.rollback.backup
    ));
    if let (Some(f), Some(sql)) = (&spec.rollback.down_file, &spec.rollback.down_sql) {
        out.push_str(&format!(
            "- Down script: `{}`\n\n```sql\n{sql}\n```\n",
            rel(f)
        ));
    }
    out.push_str("\n## Testing Plan\n\n");
    if spec.testing.trace.is_empty() {
        out.push_str("Not traced yet.\n\n");
    } else {
        out.push_str(&format!(
            "Traced by `strata trace` ({}):\n\n",
            spec.testing
                .trace_sample_rows
                .map_or("empty tables".to_owned(), |n| format!(
                    "sample of {n} rows per table"
                ))
        ));
        for t in &spec.testing.trace {
            out.push_str(&format!("- {t}\n"));
        }
        out.push('\n');
    }
    for (i, s) in spec.testing.steps.iter().enumerate() {
        out.push_str(&format!("{}. {s}\n", i + 1));
    }
    out.push_str(&format!(
        "\n## Application Changes Required\n\nDeploy order: run it {}.\n\n",
        spec.deploy_order.order
    ));
    for w in &spec.deploy_order.why {
        out.push_str(&format!("- {w}\n"));
    }
    out
}

/// Risk, for callers that want the class as a value.
pub fn risk_class(spec: &Spec) -> Option<Risk> {
    Risk::parse(&spec.risk.class)
}
