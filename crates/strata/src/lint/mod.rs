//! Risk analysis: every statement of a migration, parsed by the real
//! PostgreSQL parser, checked by a catalogue of rules, and classified
//! LOW / MEDIUM / HIGH.
//!
//! Each [`Finding`] says which lock the statement takes and what that lock
//! blocks, why the statement is dangerous, and gives a safe rewrite as SQL
//! built from the statement's own table and column names. Context sharpens
//! the verdict: tables created earlier in the same migration are new (no
//! rows, nobody uses them yet), the schema effects of earlier migrations are
//! replayed ([`schema::Schema`]), and when connected, real table sizes move
//! risk down for tiny tables and up for big ones ([`TableStats`]).
//!
//! **Architecture Invariant:** lint takes data in (migrations, table
//! statistics) and returns findings. It never opens a connection, reads a
//! file or prints.

pub mod ast;
pub mod builtins;
pub mod context;
pub mod name_map;
pub mod rewrite;
pub mod rules;
pub mod schema;
#[cfg(test)]
pub mod test_utils;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

pub use context::{lint_migrations, lint_parsed, LintOptions, StmtCtx};

/// How dangerous a finding is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Risk {
    /// Hygiene: no outage, no data loss.
    Low,
    /// Blocking locks or rewrites on existing tables, or a change that breaks
    /// the running application version.
    Medium,
    /// Data loss, long outages, or certain failure.
    High,
}

impl Risk {
    /// Parses `low`, `medium` or `high` (any case).
    pub fn parse(text: &str) -> Option<Risk> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Risk::Low),
            "medium" => Some(Risk::Medium),
            "high" => Some(Risk::High),
            _ => None,
        }
    }

    fn lower(self) -> Risk {
        match self {
            Risk::High => Risk::Medium,
            _ => Risk::Low,
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Risk::Low => "LOW",
            Risk::Medium => "MEDIUM",
            Risk::High => "HIGH",
        })
    }
}

/// PostgreSQL's table-level lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Lock {
    /// SELECT.
    AccessShare,
    /// SELECT FOR UPDATE/SHARE.
    RowShare,
    /// INSERT, UPDATE, DELETE.
    RowExclusive,
    /// VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT.
    ShareUpdateExclusive,
    /// CREATE INDEX.
    Share,
    /// CREATE TRIGGER, ADD FOREIGN KEY.
    ShareRowExclusive,
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY.
    Exclusive,
    /// Most ALTER TABLE forms, DROP, TRUNCATE, VACUUM FULL, CLUSTER.
    AccessExclusive,
}

impl Lock {
    /// The name as PostgreSQL writes it.
    pub fn name(self) -> &'static str {
        match self {
            Lock::AccessShare => "ACCESS SHARE",
            Lock::RowShare => "ROW SHARE",
            Lock::RowExclusive => "ROW EXCLUSIVE",
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::Exclusive => "EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What the lock blocks, in plain words.
    pub fn blocks(self) -> &'static str {
        match self {
            Lock::AccessShare | Lock::RowShare => {
                "blocks only ACCESS EXCLUSIVE (schema changes); reads and writes go on"
            }
            Lock::RowExclusive => "blocks CREATE INDEX and stronger locks; reads and writes go on",
            Lock::ShareUpdateExclusive => {
                "blocks other schema changes and VACUUM; reads and writes go on"
            }
            Lock::Share => "blocks writes (INSERT, UPDATE, DELETE); reads go on",
            Lock::ShareRowExclusive => "blocks writes (INSERT, UPDATE, DELETE); reads go on",
            Lock::Exclusive => "blocks writes and SELECT FOR UPDATE; plain reads go on",
            Lock::AccessExclusive => {
                "blocks everything, reads included, and every query queued behind it"
            }
        }
    }
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A rule's static description. `doc` is the full explanation printed by
/// `strata explain`, with the sections `## What it does`,
/// `## Why is this bad?`, `## Safe rewrite` and `## Example`.
#[derive(Debug)]
pub struct RuleMeta {
    /// Stable kebab-case id; never reused.
    pub id: &'static str,
    /// Default risk of its findings.
    pub risk: Risk,
    /// The lock the flagged statement takes, if any.
    pub lock: Option<Lock>,
    /// The statement scans or rewrites the whole table while it holds the
    /// lock, so its duration grows with the table (drives the estimate).
    pub scans: bool,
    /// One line for `strata rules`.
    pub summary: &'static str,
    /// The full explanation.
    pub doc: &'static str,
}

/// A lint rule. Rules are unit structs listed in [`rules::RULES`].
pub trait Rule: Sync {
    /// The rule's description.
    fn meta(&self) -> &'static RuleMeta;
    /// Checks one statement in its context and appends findings.
    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>);

    /// Whether the table's size changes what a finding costs, so that
    /// connected analysis lowers it on tiny tables and raises it on big
    /// ones. By default, rules about a lock on the table or a scan or
    /// rewrite of it (their `lock` and `scans`). A rule whose point is not
    /// the lock (style, hygiene, compatibility with the running code) or
    /// whose lock is brief says `false` in its own file: a rename breaks
    /// the application on a table of any size.
    fn sized(&self) -> bool {
        let meta = self.meta();
        meta.scans || meta.lock.is_some()
    }
}

/// One finding. Rules fill in `rule`, `risk`, `lock`, `message`, `fix` and
/// `table`; the driver adds the position, table sizes and estimates.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The rule id.
    pub rule: &'static str,
    /// Risk after context adjustments.
    pub risk: Risk,
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The lock taken and what it blocks, in words.
    pub lock: Option<String>,
    /// Why this statement is dangerous.
    pub message: String,
    /// The safe alternative, as SQL to paste.
    pub fix: Option<String>,
    /// True when `fix` is a rewrite: SQL that replaces the statement and
    /// ends in the same catalog (names, types, defaults, NOT NULL, indexes
    /// and constraints), not advice. `tests/cli/rewrites_run.rs` runs every
    /// such rewrite on a real cluster next to the original.
    #[serde(skip)]
    pub rewrite: bool,
    /// The table concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Estimated rows of that table (connected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<i64>,
    /// Total size of that table in bytes (connected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_bytes: Option<i64>,
    /// Estimated duration of the lock or rewrite (connected only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_ms: Option<i64>,
    /// The statement's first line, for display.
    #[serde(skip)]
    pub source_line: String,
    /// True when a `-- strata:allow` acknowledged it.
    #[serde(skip)]
    pub allowed: bool,
    /// Columns a finding is about, for checks at the end of the migration.
    #[serde(skip)]
    pub columns: Vec<String>,
    /// For a lock span (`ban-statements-after-access-exclusive`): the file
    /// lines of the statements that run while the lock is held, whose
    /// durations add to the hold.
    #[serde(skip)]
    pub span: Vec<usize>,
    /// What `strata trace` observed this statement do, when a stored trace
    /// of the file exists (`verify::trace::compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
}

impl Finding {
    /// A finding of `meta`'s rule with its default risk and lock.
    pub fn new(meta: &'static RuleMeta, message: impl Into<String>) -> Finding {
        Finding {
            rule: meta.id,
            risk: meta.risk,
            file: PathBuf::new(),
            line: 0,
            column: 0,
            lock: meta.lock.map(|l| format!("{l}: {}", l.blocks())),
            message: message.into(),
            fix: None,
            rewrite: false,
            table: None,
            table_rows: None,
            table_bytes: None,
            estimate_ms: None,
            source_line: String::new(),
            allowed: false,
            columns: Vec::new(),
            span: Vec::new(),
            observed: None,
        }
    }

    /// Sets the safe rewrite.
    pub fn fix(mut self, sql: impl Into<String>) -> Finding {
        self.fix = Some(sql.into());
        self
    }

    /// Sets a rewrite: SQL that replaces the statement with the same end
    /// state (see [`Finding::rewrite`]).
    pub fn rewrite(mut self, sql: impl Into<String>) -> Finding {
        self.fix = Some(sql.into());
        self.rewrite = true;
        self
    }

    /// Sets the table concerned.
    pub fn table(mut self, table: impl Into<String>) -> Finding {
        self.table = Some(table.into());
        self
    }

    /// Overrides the risk.
    pub fn risk(mut self, risk: Risk) -> Finding {
        self.risk = risk;
        self
    }

    /// Overrides the lock.
    pub fn lock(mut self, lock: Lock) -> Finding {
        self.lock = Some(format!("{lock}: {}", lock.blocks()));
        self
    }
}

/// Size of one table on the connected server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableStats {
    /// Estimated live rows.
    pub rows: i64,
    /// Total bytes, indexes and TOAST included.
    pub bytes: i64,
}

/// What the connected server tells lint: table sizes, a measured rewrite
/// rate and function volatility.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    /// Table sizes by name as SQL, quoted where needed: `schema.table`,
    /// and the bare name for tables the search path finds.
    pub tables: HashMap<String, TableStats>,
    /// Measured rewrite/scan throughput in bytes per second.
    pub rewrite_bytes_per_sec: Option<f64>,
    /// Function volatility by name: 'i', 's' or 'v'.
    pub volatility: HashMap<String, char>,
    /// The server's major version.
    pub major_version: Option<u32>,
    /// The table of each index, both named as SQL (`public.users_email_idx`
    /// → `public.users`, and the bare index name for indexes the search
    /// path finds): `DROP INDEX` locks that table.
    pub indexes: HashMap<String, String>,
}

impl ServerFacts {
    /// The size of a table named as SQL (`users`, `public.users`,
    /// `"Sch".t`), as findings and the replayed schema name it.
    pub fn table(&self, sql_name: &str) -> Option<&TableStats> {
        self.tables
            .get(sql_name)
            .or_else(|| self.tables.get(&schema::key(sql_name)))
    }
}

impl ServerFacts {
    /// The table (as SQL) an index named as SQL is on, when the server has it.
    pub fn index_table(&self, sql_name: &str) -> Option<&str> {
        self.indexes
            .get(sql_name)
            .or_else(|| self.indexes.get(&schema::key(sql_name)))
            .map(String::as_str)
    }
}

/// The result of linting.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LintReport {
    /// Every finding, acknowledged ones included, in file order.
    pub findings: Vec<Finding>,
    /// Statements analysed.
    pub statements: usize,
    /// Files analysed.
    pub files: usize,
}

impl LintReport {
    /// Findings not acknowledged by an allow directive.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.allowed)
    }

    /// True when an unacknowledged finding is at or above `threshold`.
    pub fn fails(&self, threshold: Option<Risk>) -> bool {
        match threshold {
            Some(t) => self.active().any(|f| f.risk >= t),
            None => false,
        }
    }
}
