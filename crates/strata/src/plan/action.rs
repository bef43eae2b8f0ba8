//! What a compiled operation is made of.

use std::fmt;

/// One thing a phase does. The engine runs a phase's actions in order and
/// records each one done, so a crash resumes at the first unfinished one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Statements run together in one short transaction, under the
    /// configured `lock_timeout` and retried as a whole when it expires:
    /// catalog changes (add a column, install a trigger, swap two columns).
    /// Each statement is one SQL statement, without a trailing `;`.
    Transaction(Vec<String>),
    /// One statement run on its own, outside a transaction block:
    /// `CREATE INDEX CONCURRENTLY` (an invalid index left by a failed build
    /// is dropped before a retry) or a long `VALIDATE CONSTRAINT`, whose
    /// lock should not be held together with anything else.
    Alone(String),
    /// A batched, resumable data change through the backfill engine: one
    /// `UPDATE … SET … [WHERE …]`, `DELETE … WHERE …` or
    /// `INSERT INTO … SELECT … FROM …` statement, exactly as a migration
    /// marked `-- strata:backfill` would hold it.
    Backfill(String),
    /// A check that must hold before the plan goes on: `sql` returns a
    /// single `true`, or no rows. On failure the engine shows the first 20
    /// rows it returned, and `message`.
    Validate {
        /// The query.
        sql: String,
        /// What a failure means, for the operator.
        message: String,
    },
}

impl fmt::Display for Action {
    /// The action as SQL a reviewer can read (the dry run, `strata plan`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Transaction(statements) => {
                f.write_str("BEGIN;\n")?;
                for s in statements {
                    writeln!(f, "{s};")?;
                }
                f.write_str("COMMIT;")
            }
            Action::Alone(sql) => write!(f, "{sql};"),
            Action::Backfill(sql) => write!(f, "-- strata:backfill\n{sql};"),
            Action::Validate { sql, message } => {
                write!(f, "-- strata:validate ({message})\n{sql};")
            }
        }
    }
}

/// One operation (one step of it, for operations that span phases),
/// compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// What the phase runs for this operation, in order.
    pub up: Vec<Action>,
    /// What undoes `up`, in order (already newest first), or why nothing can:
    /// e.g. a dropped column's data is gone, so only a backup brings it back.
    pub down: Result<Vec<Action>, String>,
    /// True when `up` destroys data the app may still read (a dropped column
    /// or table): the engine takes a backup first, and the step may only run
    /// after a `deploy` gate.
    pub drops_data: bool,
}

/// What an operation's SQL may depend on besides the operation itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context<'a> {
    /// The plan's version (`20260301120000`), used in the names of helper
    /// objects so that two plans never share a trigger.
    pub version: &'a str,
    /// The step of a multi-phase operation this phase runs (`expand`,
    /// `contract`, …); `None` for an operation written once.
    pub step: Option<&'a str>,
    /// The operation's table as the catalog had it right before the step's
    /// first action (after the earlier operations of its phase), when the
    /// operation needs it (a renamed column keeps its type, NOT NULL,
    /// default and indexes). The engine reads it once per step and
    /// keeps it with the step's progress, so a resumed step compiles to the
    /// same SQL even though its first actions already changed the table.
    pub table: Option<&'a TableFacts>,
}

/// A table as the catalog describes it, for compiling operations that must
/// carry a column's properties over (read by `engine::table_facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableFacts {
    /// The table, schema-qualified and quoted as SQL (`public.users`).
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<ColumnFacts>,
    /// The primary key's columns, in order (empty without one).
    pub primary_key: Vec<String>,
    /// Its indexes (primary key included).
    pub indexes: Vec<IndexFacts>,
    /// Its constraints (check, unique, primary key, foreign key, exclusion),
    /// and foreign keys of other tables that reference it.
    pub constraints: Vec<ConstraintFacts>,
    /// Triggers on it that are not Strata's.
    pub triggers: Vec<String>,
    /// Views that depend on it (schema-qualified, quoted).
    pub dependent_views: Vec<String>,
    /// The planner's row estimate (`pg_class.reltuples`, 0 when never analysed).
    pub estimated_rows: i64,
}

/// One column of [`TableFacts`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnFacts {
    /// The column's name (unquoted).
    pub name: String,
    /// Its type as SQL (`format_type`, e.g. `character varying(20)`).
    pub type_sql: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Its default expression as SQL (`pg_get_expr`).
    pub default: Option<String>,
    /// `a` (always) or `d` (by default) for an identity column.
    pub identity: Option<String>,
    /// The expression of a generated column.
    pub generated: Option<String>,
}

/// One index of [`TableFacts`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexFacts {
    /// The index's name (unquoted).
    pub name: String,
    /// `pg_get_indexdef`: the full `CREATE [UNIQUE] INDEX …` statement.
    pub definition: String,
    /// The table columns it uses (in its keys, expressions or predicate).
    pub columns: Vec<String>,
    /// It backs a constraint (primary key, unique, exclusion) of this name.
    pub constraint: Option<String>,
}

/// One constraint of [`TableFacts`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConstraintFacts {
    /// The constraint's name (unquoted).
    pub name: String,
    /// The table it is on, schema-qualified and quoted (another table's
    /// for a foreign key that references this one).
    pub on_table: String,
    /// `p`, `u`, `c`, `f` or `x` (`pg_constraint.contype`).
    pub kind: String,
    /// `pg_get_constraintdef`.
    pub definition: String,
    /// The columns of this table it uses.
    pub columns: Vec<String>,
    /// Validated (false for NOT VALID).
    pub validated: bool,
}

/// Why an operation could not be compiled. The reader has already checked
/// the file's shape, so these are problems only the compiler sees (an
/// unknown step name, a table name that is not SQL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}
