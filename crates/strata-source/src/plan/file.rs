//! The plan file's shape: what a reviewer reads, and what serde accepts.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`), so a typo such
//! as `defualt = "false"` is reported with its line instead of silently
//! producing a column without a default.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A checked plan file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// One line for `status` and the review spec.
    pub description: Option<String>,
    /// `independent = true` lets later migrations run while this plan waits
    /// at a gate. Off by default: a later migration usually assumes the
    /// plan's end state.
    pub independent: bool,
    /// The phases, in the order they run.
    pub phases: Vec<Phase>,
}

/// One phase: operations that run together, then a gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// The phase's name (`expand`, `migrate`, `contract`, …), unique in the plan.
    pub name: String,
    /// The 1-based line of the phase's `[[phase]]` table.
    pub line: usize,
    /// What the phase does, in order.
    pub operations: Vec<Operation>,
    /// What must happen before the next phase runs.
    pub gate: Gate,
}

/// What must happen between a phase and the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The next phase may run at once (`gate = "none"`).
    None,
    /// An application deploy must happen first; the text says which and why
    /// (`gate = { deploy = "app v1.1, which writes both columns" }`).
    Deploy(String),
    /// At least this much time must pass (`gate = { wait = "24h" }`), e.g. so
    /// that caches and replicas forget the old shape.
    Wait(#[serde(with = "humantime_serde_secs")] Duration),
}

impl Operation {
    /// The step this operation runs: the written one, the first step of a
    /// multi-step operation when omitted, `None` for a single-step one.
    pub fn step_name(&self) -> Option<&str> {
        match &self.step {
            Some(step) => Some(step),
            None => self.kind.steps().first().copied(),
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::None => f.write_str("none"),
            Gate::Deploy(what) => write!(f, "deploy: {what}"),
            Gate::Wait(d) => write!(f, "wait {}", humantime::format_duration(*d)),
        }
    }
}

/// Serialises a duration as whole seconds (the JSON form of a wait gate).
mod humantime_serde_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// One operation of a phase, with the line it is written on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// The 1-based line where the operation's table starts.
    pub line: usize,
    /// Which step of a multi-phase operation this is (`expand`,
    /// `contract`, …; see [`OperationKind::steps`]), as written; `None` for
    /// a single-step operation, or for the first step when the key is
    /// omitted (see [`Operation::step_name`]).
    pub step: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub kind: OperationKind,
}

/// The operations a plan can use. Each one compiles to per-phase SQL and has
/// a reverse; names follow the design documents' patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperationKind {
    /// A nullable (or constant-default) column: metadata only.
    AddColumn {
        /// The table, as SQL (`users`, `app."Users"`).
        table: String,
        /// The new column's name.
        column: String,
        /// Its type, as SQL.
        #[serde(rename = "type")]
        column_type: String,
        /// An optional default expression.
        default: Option<String>,
    },
    /// A NOT NULL column on a table with rows: nullable with default →
    /// backfill → CHECK NOT VALID → VALIDATE → SET NOT NULL → drop the check.
    AddRequiredColumn {
        /// The table, as SQL.
        table: String,
        /// The new column's name.
        column: String,
        /// Its type, as SQL.
        #[serde(rename = "type")]
        column_type: String,
        /// The default for new rows, and the value for existing rows unless
        /// `backfill` says otherwise.
        default: String,
        /// An expression for existing rows (may use other columns).
        backfill: Option<String>,
    },
    /// A rename the running app never notices: new column, sync triggers both
    /// ways, backfill, then the old column goes after the app stops using it.
    RenameColumn {
        /// The table, as SQL.
        table: String,
        /// The current name.
        from: String,
        /// The new name.
        to: String,
    },
    /// A type change through a shadow column, a sync trigger, a backfill, a
    /// validation that every row converts, and a short swap.
    ChangeColumnType {
        /// The table, as SQL.
        table: String,
        /// The column.
        column: String,
        /// The new type, as SQL.
        #[serde(rename = "type")]
        column_type: String,
        /// How an old value becomes a new one (an expression over the
        /// column); defaults to a cast.
        using: Option<String>,
    },
    /// New columns computed from one (full_name → first_name, last_name).
    SplitColumn {
        /// The table, as SQL.
        table: String,
        /// The column that is split.
        column: String,
        /// The new columns.
        into: Vec<NewColumn>,
    },
    /// An index built CONCURRENTLY, with invalid-index cleanup.
    AddIndex {
        /// The table, as SQL.
        table: String,
        /// The index name; generated like PostgreSQL's when omitted.
        name: Option<String>,
        /// Columns or expressions, as SQL.
        columns: Vec<String>,
        /// A unique index.
        #[serde(default)]
        unique: bool,
        /// The access method (`btree` by default).
        using: Option<String>,
        /// A partial index's predicate.
        #[serde(rename = "where")]
        predicate: Option<String>,
    },
    /// NOT NULL through a validated CHECK, so no long ACCESS EXCLUSIVE scan.
    SetNotNull {
        /// The table, as SQL.
        table: String,
        /// The column.
        column: String,
    },
    /// A `deleted_at` column, a partial index on active rows, and a view of them.
    SoftDelete {
        /// The table, as SQL.
        table: String,
        /// The timestamp column (`deleted_at` when omitted).
        column: Option<String>,
        /// The view of active rows (`active_<table>` when omitted).
        view: Option<String>,
    },
    /// A JSONB column with a `{}` default, an optional backfill, a GIN index
    /// and expression indexes on paths, all built CONCURRENTLY.
    AddJsonbColumn {
        /// The table, as SQL.
        table: String,
        /// The new column.
        column: String,
        /// The default (`'{}'::jsonb` when omitted).
        default: Option<String>,
        /// An expression for existing rows.
        backfill: Option<String>,
        /// Build a GIN index on the column (on by default).
        gin: Option<bool>,
        /// Expressions to index, e.g. `(prefs->>'theme')`.
        #[serde(default)]
        path_indexes: Vec<String>,
    },
    /// A foreign key on data that may hold orphans: find them, apply the
    /// policy, add NOT VALID, VALIDATE, and build a covering index.
    AddForeignKey {
        /// The referencing table, as SQL.
        table: String,
        /// The referencing columns.
        columns: Vec<String>,
        /// The referenced table, as SQL.
        references: String,
        /// The referenced columns (its primary key when omitted).
        #[serde(default)]
        references_columns: Vec<String>,
        /// The constraint name; PostgreSQL's default when omitted.
        name: Option<String>,
        /// What to do with rows whose key has no match.
        orphans: ForeignKeyOrphans,
        /// `ON DELETE` action, as SQL (`cascade`, `set null`, …).
        on_delete: Option<String>,
    },
    /// A range-partitioned copy of a table, filled in batches, kept in sync,
    /// validated, then swapped in by rename.
    PartitionTable {
        /// The table, as SQL.
        table: String,
        /// The partition key column.
        key: String,
        /// The partition width.
        interval: Interval,
        /// The first partition's lower bound (a date, `2024-01-01`).
        from: String,
        /// The upper bound of the last partition.
        to: String,
    },
    /// A JSON array column → a child table, one row per element.
    NormalizeJson {
        /// The table holding the JSON column, as SQL.
        table: String,
        /// The JSON array column.
        column: String,
        /// The new child table.
        into: String,
        /// The child table's columns, each from an expression over `elem`
        /// (the array element).
        columns: Vec<NewColumn>,
    },
    /// A batched, resumable data change (the engine's backfill).
    Backfill {
        /// The table, as SQL.
        table: String,
        /// The assignments, as SQL (`email_lower = lower(email)`).
        set: String,
        /// Which rows, as SQL.
        #[serde(rename = "where")]
        predicate: Option<String>,
    },
    /// Hand-written SQL, linted like any migration.
    Sql {
        /// What the phase runs.
        up: String,
        /// Its reverse; without one, the phase cannot be rolled back.
        down: Option<String>,
    },
    /// A check that must hold before the plan goes on: a query that returns
    /// `true`, or no rows. Failures show the first 20 rows.
    Validate {
        /// The query.
        sql: String,
        /// What a failure means, for the operator.
        message: Option<String>,
    },
    /// Drops a column; only after a deploy gate, with a backup first.
    DropColumn {
        /// The table, as SQL.
        table: String,
        /// The column.
        column: String,
    },
    /// Drops a table; only after a deploy gate, with a backup first.
    DropTable {
        /// The table, as SQL.
        table: String,
    },
}

impl OperationKind {
    /// The operation's name as written in the file (`add_column`).
    pub fn name(&self) -> &'static str {
        match self {
            OperationKind::AddColumn { .. } => "add_column",
            OperationKind::AddRequiredColumn { .. } => "add_required_column",
            OperationKind::RenameColumn { .. } => "rename_column",
            OperationKind::ChangeColumnType { .. } => "change_column_type",
            OperationKind::SplitColumn { .. } => "split_column",
            OperationKind::AddIndex { .. } => "add_index",
            OperationKind::SetNotNull { .. } => "set_not_null",
            OperationKind::SoftDelete { .. } => "soft_delete",
            OperationKind::AddJsonbColumn { .. } => "add_jsonb_column",
            OperationKind::AddForeignKey { .. } => "add_foreign_key",
            OperationKind::PartitionTable { .. } => "partition_table",
            OperationKind::NormalizeJson { .. } => "normalize_json",
            OperationKind::Backfill { .. } => "backfill",
            OperationKind::Sql { .. } => "sql",
            OperationKind::Validate { .. } => "validate",
            OperationKind::DropColumn { .. } => "drop_column",
            OperationKind::DropTable { .. } => "drop_table",
        }
    }

    /// The steps of an operation that spans phases, in order: it appears
    /// once per step, in later and later phases, with `step = "…"` (the
    /// first step may omit it). Empty for an operation written once.
    pub fn steps(&self) -> &'static [&'static str] {
        match self {
            OperationKind::RenameColumn { .. }
            | OperationKind::ChangeColumnType { .. }
            | OperationKind::SplitColumn { .. }
            | OperationKind::NormalizeJson { .. } => &["expand", "contract"],
            OperationKind::PartitionTable { .. } => &["expand", "swap", "contract"],
            _ => &[],
        }
    }

    /// The table the operation concerns (all but `sql` and `validate` have one).
    pub fn table(&self) -> Option<&str> {
        use OperationKind as K;
        match self {
            K::AddColumn { table, .. }
            | K::AddRequiredColumn { table, .. }
            | K::RenameColumn { table, .. }
            | K::ChangeColumnType { table, .. }
            | K::SplitColumn { table, .. }
            | K::AddIndex { table, .. }
            | K::SetNotNull { table, .. }
            | K::SoftDelete { table, .. }
            | K::AddJsonbColumn { table, .. }
            | K::AddForeignKey { table, .. }
            | K::PartitionTable { table, .. }
            | K::NormalizeJson { table, .. }
            | K::Backfill { table, .. }
            | K::DropColumn { table, .. }
            | K::DropTable { table } => Some(table),
            K::Sql { .. } | K::Validate { .. } => None,
        }
    }

    /// Whether the operation destroys data the app might still read, and so
    /// may only run after a deploy gate.
    pub fn drops_data(&self) -> bool {
        matches!(
            self,
            OperationKind::DropColumn { .. } | OperationKind::DropTable { .. }
        )
    }
}

/// A column computed from an expression (for `split_column` and
/// `normalize_json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewColumn {
    /// The column's name.
    pub column: String,
    /// Its type, as SQL.
    #[serde(rename = "type")]
    pub column_type: String,
    /// The expression that fills it, as SQL.
    pub expression: String,
}

/// What `add_foreign_key` does with orphans (rows whose key has no match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ForeignKeyOrphans {
    /// Stop the plan and list the first orphans.
    Fail,
    /// Delete them (after a backup).
    Delete,
    /// Set the referencing columns to NULL.
    SetNull,
    /// Move them to a side table (`{ move_to = "orphaned_orders" }`).
    MoveTo(String),
}

/// The width of each partition of `partition_table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// One partition per day.
    Day,
    /// One partition per month.
    Month,
    /// One partition per quarter.
    Quarter,
    /// One partition per year.
    Year,
}

/// A problem in a plan file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// The file as TOML gives it, with spans for line numbers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    description: Option<String>,
    #[serde(default)]
    independent: bool,
    #[serde(rename = "phase", default)]
    phases: Vec<Spanned<RawPhase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: String,
    #[serde(default)]
    operations: Vec<Spanned<toml::Value>>,
    gate: Option<Spanned<toml::Value>>,
}

/// The 1-based line of a byte offset.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses the TOML and the shapes of its values. Semantic checks are in
/// [`super::check`].
pub(super) fn from_toml(text: &str) -> Result<Plan, Vec<PlanProblem>> {
    let raw: RawPlan = toml::from_str(text).map_err(|e| {
        vec![PlanProblem {
            line: e.span().map(|s| line_at(text, s.start)),
            message: e.message().trim_end().to_owned(),
            help: Some(
                "see \"Plan files\" in the README for the keys each operation takes".to_owned(),
            ),
        }]
    })?;
    let mut problems = Vec::new();
    let mut phases = Vec::with_capacity(raw.phases.len());
    let count = raw.phases.len();
    for (i, phase) in raw.phases.into_iter().enumerate() {
        let line = line_at(text, phase.span().start);
        let phase = phase.into_inner();
        let gate = match phase.gate {
            None if i + 1 == count => Gate::None,
            None => {
                problems.push(PlanProblem {
                    line: Some(line),
                    message: format!("phase `{}` has no gate", phase.name),
                    help: Some(
                        "every phase but the last says what must happen before the next: \
                         gate = \"none\", gate = { deploy = \"…\" } or gate = { wait = \"24h\" }"
                            .to_owned(),
                    ),
                });
                Gate::None
            }
            Some(gate) => {
                let gate_line = line_at(text, gate.span().start);
                parse_gate(gate.get_ref()).unwrap_or_else(|message| {
                    problems.push(PlanProblem {
                        line: Some(gate_line),
                        message,
                        help: Some(
                            "write gate = \"none\", gate = { deploy = \"app v2, which …\" } or \
                             gate = { wait = \"24h\" }"
                                .to_owned(),
                        ),
                    });
                    Gate::None
                })
            }
        };
        // Each operation is read on its own, so that a problem is reported on
        // the operation's own line, and every bad operation is reported.
        let mut operations = Vec::with_capacity(phase.operations.len());
        for op in phase.operations {
            let line = line_at(text, op.span().start);
            let mut value = op.into_inner();
            // `step` is the operation's place in its multi-phase life, not
            // one of its keys: taken out before the keys are checked.
            let step = match value.as_table_mut().and_then(|t| t.remove("step")) {
                None => None,
                Some(toml::Value::String(s)) => Some(s),
                Some(_) => {
                    problems.push(PlanProblem {
                        line: Some(line),
                        message: "`step` takes a string".to_owned(),
                        help: Some("write step = \"contract\"".to_owned()),
                    });
                    continue;
                }
            };
            match value.try_into::<OperationKind>() {
                Ok(kind) => operations.push(Operation { line, step, kind }),
                Err(e) => problems.push(PlanProblem {
                    line: Some(line),
                    message: e.message().trim_end().to_owned(),
                    help: Some(
                        "see \"Plan files\" in the README for the keys each operation takes"
                            .to_owned(),
                    ),
                }),
            }
        }
        phases.push(Phase {
            name: phase.name,
            line,
            operations,
            gate,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plan {
        description: raw.description,
        independent: raw.independent,
        phases,
    })
}

fn parse_gate(value: &toml::Value) -> Result<Gate, String> {
    match value {
        toml::Value::String(s) if s == "none" => Ok(Gate::None),
        toml::Value::String(s) => Err(format!("unknown gate `{s}`")),
        toml::Value::Table(t) => {
            let mut keys = t.keys();
            let (Some(key), None) = (keys.next(), keys.next()) else {
                return Err("a gate table has exactly one key: `deploy` or `wait`".to_owned());
            };
            let Some(text) = t[key].as_str() else {
                return Err(format!("gate `{key}` takes a string"));
            };
            match key.as_str() {
                "deploy" if text.trim().is_empty() => {
                    Err("a deploy gate says which app deploy it waits for".to_owned())
                }
                "deploy" => Ok(Gate::Deploy(text.to_owned())),
                "wait" => humantime::parse_duration(text)
                    .map(Gate::Wait)
                    .map_err(|e| format!("gate wait `{text}`: {e}")),
                other => Err(format!("unknown gate `{other}`")),
            }
        }
        _ => Err("a gate is \"none\" or a table".to_owned()),
    }
}
