//! `strata adopt`: take over a database that another migration tool ran.
//!
//! Teams come to Strata with a database that golang-migrate, goose, diesel,
//! sqlx, Flyway or dbmate has migrated. Running their history again would
//! fail on the first `CREATE TABLE` ("already exists"), and `baseline`
//! needs the user to know which version the other tool reached. The other
//! tool's history table already says so, in its own words:
//!
//! - golang-migrate: `schema_migrations (version bigint, dirty boolean)`,
//!   one row, the current version: every migration up to it is applied.
//!   `dirty` means the migration at that version failed part way.
//! - goose: `goose_db_version (id, version_id, is_applied, tstamp)`, a log:
//!   the newest row (highest `id`) of a version decides; version 0 is the
//!   row goose writes when it creates the table.
//! - diesel: `__diesel_schema_migrations (version varchar, run_on)`, one row
//!   per applied migration.
//! - sqlx: `_sqlx_migrations (version bigint, description, installed_on,
//!   success, checksum bytea, execution_time)`; the checksum is SHA-384 of
//!   the file's text, so the files here can be checked against what ran.
//! - Flyway: `flyway_schema_history (installed_rank, version, description,
//!   type, script, checksum, installed_by, installed_on, execution_time,
//!   success)`; `BASELINE` rows stand for every version up to theirs,
//!   `UNDO_SQL` and `DELETE` rows take a version back out, `SCHEMA` rows
//!   record created schemas, and repeatables have no version.
//! - dbmate: `schema_migrations (version varchar)`, one row per applied
//!   migration; told apart from golang-migrate's table of the same name by
//!   its columns.
//!
//! Tables are recognised by their columns, not their names, so `--from`
//! can name a table that a tool was configured to use.
//!
//! Adoption writes the same rows as `baseline` (state `applied`, the file's
//! checksum, duration 0) plus one `adopt` event per migration and one
//! summary `adopt` event naming the source table and the count.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::{Connection, DbError};
use crate::source::{Migration, MigrationKind};

use super::history::{Event, History};
use super::lock::MigrationLock;
use super::plan::MigrationState;
use super::{open, os_actor, EngineError, Project};
use crate::db::Target;

/// The tools whose history `adopt` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// golang-migrate.
    GolangMigrate,
    /// pressly/goose.
    Goose,
    /// diesel.
    Diesel,
    /// sqlx.
    Sqlx,
    /// Flyway.
    Flyway,
    /// dbmate.
    Dbmate,
}

impl Tool {
    /// The tool's name as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::GolangMigrate => "golang-migrate",
            Tool::Goose => "goose",
            Tool::Diesel => "diesel",
            Tool::Sqlx => "sqlx",
            Tool::Flyway => "Flyway",
            Tool::Dbmate => "dbmate",
        }
    }
}

/// The default table names of the tools, looked up on the search path.
const CANDIDATES: [&str; 5] = [
    "schema_migrations",
    "goose_db_version",
    "__diesel_schema_migrations",
    "_sqlx_migrations",
    "flyway_schema_history",
];

/// Why `adopt` (or `up`, pointing to `adopt`) refuses. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// No other tool's history table was found.
    #[error("no other tool's history table found (looked for {} on the search path)\n  help: pass --from SCHEMA.TABLE if the tool was configured to use another table; to mark migrations applied by hand, use `strata baseline VERSION`", CANDIDATES.join(", "))]
    NotFound,
    /// `--from` names a table that does not exist.
    #[error("table {0} does not exist\n  help: check the name (SCHEMA.TABLE, written as in SQL)")]
    NoSuchTable(String),
    /// `--from` names a table that is no known tool's history.
    #[error("table {table} ({columns}) is not the history table of golang-migrate, goose, diesel, sqlx, Flyway or dbmate\n  help: name the table the other tool wrote its history to")]
    Unknown {
        /// The table.
        table: String,
        /// Its columns, `name type`.
        columns: String,
    },
    /// More than one tool's history table exists.
    #[error("several history tables found: {}\n  help: pass --from TABLE to say which one describes this database", .0.iter().map(|(t, n)| format!("{n} ({})", t.name())).collect::<Vec<_>>().join(", "))]
    Several(Vec<(Tool, String)>),
    /// golang-migrate left a dirty version.
    #[error("golang-migrate's {table} says version {version} is dirty: that migration failed part way, and nothing records which of its statements ran\n  help: check what of migration {version} is in the database and finish or undo it by hand; then run `migrate -path DIR -database URL force {version}` if it is now fully applied (or `force` the previous version if you undid it), and run `strata adopt` again")]
    Dirty {
        /// The table.
        table: String,
        /// The dirty version.
        version: i64,
    },
    /// sqlx or Flyway recorded a failed migration.
    #[error("{tool}'s {table} records migration {version} as failed (success = false): it stopped part way, and nothing records which of its statements ran\n  help: {fix}")]
    Failed {
        /// sqlx or Flyway.
        tool: &'static str,
        /// The table.
        table: String,
        /// The failed version.
        version: String,
        /// The exact fix for that tool.
        fix: String,
    },
    /// sqlx's checksums differ from the files here.
    #[error("{} file(s) differ from what sqlx applied (SHA-384 checksum in {table}):\n{}\n  help: restore the files as they were applied (`git log` on them), then run `strata adopt` again; changes to applied migrations belong in a new migration", .files.len(), .files.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    ChecksumMismatch {
        /// The table.
        table: String,
        /// `version_name (path)` of each mismatching file.
        files: Vec<String>,
    },
    /// `up` with an empty Strata history on a database another tool ran.
    #[error("this database was migrated by {tool} ({table}: {count} migration(s) applied), and Strata's history is empty: `strata up` would run those migrations again\n  help: run `strata adopt` to record them as applied in Strata's history, then `strata up`")]
    UseAdopt {
        /// The tool.
        tool: &'static str,
        /// Its table.
        table: String,
        /// Migrations it applied.
        count: usize,
    },
    /// The configured history table is another tool's, or someone else's.
    #[error("the history table {table} is not Strata's: it has the columns {columns}{}\n  help: set history_table in strata.toml to a table of Strata's own (the default is strata_migrations){}", .tool.map(|t| format!(", like {}'s history table", t.name())).unwrap_or_default(), .tool.map(|_| "; then `strata adopt` takes over that tool's history".to_owned()).unwrap_or_default())]
    NotStrata {
        /// The table.
        table: String,
        /// Its columns, `name type`.
        columns: String,
        /// The tool whose history it looks like.
        tool: Option<Tool>,
    },
}

/// A table's name (as `regclass` prints it) and columns (name, type).
#[derive(Debug, Clone)]
pub(crate) struct TableShape {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

impl TableShape {
    fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|(n, _)| n == column)
    }

    fn type_of(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(n, _)| n == column)
            .map(|(_, t)| t.as_str())
    }

    pub fn describe(&self) -> String {
        self.columns
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Which tool wrote a table of this shape.
    pub fn tool(&self) -> Option<Tool> {
        let textual = |t: Option<&str>| {
            matches!(
                t,
                Some("character varying" | "text" | "character" | "varchar")
            )
        };
        if self.has("installed_rank") && self.has("script") && self.has("success") {
            Some(Tool::Flyway)
        } else if self.has("version_id") && self.has("is_applied") {
            Some(Tool::Goose)
        } else if self.has("version") && self.has("checksum") && self.has("success") {
            Some(Tool::Sqlx)
        } else if self.has("version") && self.has("dirty") {
            Some(Tool::GolangMigrate)
        } else if self.has("version") && self.has("run_on") {
            Some(Tool::Diesel)
        } else if self.columns.len() == 1 && textual(self.type_of("version")) {
            Some(Tool::Dbmate)
        } else {
            None
        }
    }
}

/// The shapes of the tables `names` (SQL text, resolved on the search
/// path) that exist.
pub(crate) async fn shapes(conn: &Connection, names: &[&str]) -> Result<Vec<TableShape>, DbError> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rows = conn
        .query(
            "SELECT c.oid::regclass::text,
                    array_agg(a.attname::text ORDER BY a.attnum),
                    array_agg(format_type(a.atttypid, NULL) ORDER BY a.attnum)
             FROM unnest($1::text[]) WITH ORDINALITY AS n(name, ord)
             JOIN pg_class c ON c.oid = to_regclass(n.name)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             GROUP BY c.oid, n.ord
             ORDER BY n.ord",
            &[&names],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let cols: Vec<String> = r.get(1);
            let types: Vec<String> = r.get(2);
            TableShape {
                name: r.get(0),
                columns: cols.into_iter().zip(types).collect(),
            }
        })
        .collect())
}

/// What the other tool counts as applied.
#[derive(Debug, Clone)]
enum Applied {
    /// golang-migrate: every version up to this one.
    UpTo(i64),
    /// The versions, with sqlx's checksum where there is one.
    Set(BTreeMap<String, Option<Vec<u8>>>),
}

/// Another tool's history, read.
#[derive(Debug, Clone)]
struct Foreign {
    tool: Tool,
    table: String,
    applied: Applied,
    /// Flyway: versions up to this one were baselined.
    baseline: Option<String>,
    /// Flyway repeatables recorded (by description).
    repeatables: usize,
}

impl Foreign {
    fn count(&self, project: &Project) -> usize {
        match &self.applied {
            Applied::UpTo(v) => project
                .migrations
                .iter()
                .filter(|m| up_to(m, *v))
                .count()
                .max(usize::from(*v > 0)),
            Applied::Set(s) => s.len(),
        }
    }
}

fn up_to(m: &Migration, v: i64) -> bool {
    m.kind == MigrationKind::Versioned
        && m.version.canonical().parse::<i64>().is_ok_and(|mv| mv <= v)
}

/// Reads `shape`'s table as `tool` writes it; refuses dirty or failed
/// states. Every column is cast and NULL-guarded in SQL: the table was
/// recognised by its column names only, and a hand-made look-alike must
/// give a server error, never a panic on a row.
async fn read_foreign(
    conn: &Connection,
    shape: &TableShape,
    tool: Tool,
) -> Result<Foreign, EngineError> {
    let table = shape.name.clone();
    let mut foreign = Foreign {
        tool,
        table: table.clone(),
        applied: Applied::Set(BTreeMap::new()),
        baseline: None,
        repeatables: 0,
    };
    let mut set = BTreeMap::new();
    match tool {
        Tool::GolangMigrate => {
            let row = conn
                .query_opt(
                    &format!("SELECT version::bigint, coalesce(dirty::boolean, true) FROM {table} WHERE version IS NOT NULL LIMIT 1"),
                    &[],
                )
                .await?;
            if let Some(r) = row {
                let (version, dirty): (i64, bool) = (r.get(0), r.get(1));
                if dirty {
                    return Err(AdoptError::Dirty { table, version }.into());
                }
                foreign.applied = Applied::UpTo(version);
                return Ok(foreign);
            }
        }
        Tool::Goose => {
            let rows = conn
                .query(
                    &format!("SELECT version_id::bigint, coalesce(is_applied::boolean, false) FROM {table} WHERE version_id IS NOT NULL ORDER BY id DESC"),
                    &[],
                )
                .await?;
            let mut seen = BTreeSet::new();
            for r in &rows {
                let (v, applied): (i64, bool) = (r.get(0), r.get(1));
                if seen.insert(v) && applied && v != 0 {
                    set.insert(v.to_string(), None);
                }
            }
        }
        Tool::Diesel | Tool::Dbmate => {
            let rows = conn
                .query(
                    &format!("SELECT version::text FROM {table} WHERE version IS NOT NULL"),
                    &[],
                )
                .await?;
            for r in &rows {
                set.insert(r.get::<_, String>(0), None);
            }
        }
        Tool::Sqlx => {
            let rows = conn
                .query(
                    &format!(
                        "SELECT version::bigint, coalesce(success::boolean, false), coalesce(checksum::bytea, ''::bytea) FROM {table} WHERE version IS NOT NULL ORDER BY version"
                    ),
                    &[],
                )
                .await?;
            for r in &rows {
                let (v, success, sum): (i64, bool, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
                if !success {
                    return Err(AdoptError::Failed {
                        tool: "sqlx",
                        table: table.clone(),
                        version: v.to_string(),
                        fix: format!("check what of migration {v} is in the database and undo it by hand, then `DELETE FROM {table} WHERE version = {v}` and run `strata adopt` again; `strata up` then runs it"),
                    }
                    .into());
                }
                set.insert(v.to_string(), Some(sum));
            }
        }
        Tool::Flyway => {
            let rows = conn
                .query(
                    &format!("SELECT version::text, coalesce(type::text, ''), coalesce(success::boolean, false), coalesce(description::text, '') FROM {table} ORDER BY installed_rank"),
                    &[],
                )
                .await?;
            for r in &rows {
                let version: Option<String> = r.get(0);
                let kind: String = r.get(1);
                let success: bool = r.get(2);
                if !success {
                    let v = version.clone().unwrap_or_else(|| r.get::<_, String>(3));
                    return Err(AdoptError::Failed {
                        tool: "Flyway",
                        table: table.clone(),
                        version: v,
                        fix: "check what of that migration is in the database and undo it by hand, then run `flyway repair` (it removes the failed entry) and `strata adopt` again; `strata up` then runs it".into(),
                    }
                    .into());
                }
                match (kind.as_str(), version) {
                    ("SCHEMA", _) => {}
                    (_, None) => foreign.repeatables += 1,
                    ("BASELINE", Some(v)) => foreign.baseline = Some(v),
                    ("DELETE", Some(v)) => {
                        set.remove(&v);
                    }
                    (k, Some(v)) if k.starts_with("UNDO") => {
                        set.remove(&v);
                    }
                    (_, Some(v)) => {
                        set.insert(v, None);
                    }
                }
            }
        }
    }
    foreign.applied = Applied::Set(set);
    Ok(foreign)
}

/// Finds the other tool's history: `from` when given, else the tools'
/// default tables on the search path (exactly one must exist).
async fn find(
    conn: &Connection,
    history: &History,
    from: Option<&str>,
) -> Result<(TableShape, Tool), EngineError> {
    if let Some(name) = from {
        let shape = shapes(conn, &[name])
            .await?
            .pop()
            .ok_or_else(|| AdoptError::NoSuchTable(name.to_owned()))?;
        let tool = shape.tool().ok_or_else(|| AdoptError::Unknown {
            table: shape.name.clone(),
            columns: shape.describe(),
        })?;
        return Ok((shape, tool));
    }
    let mut found: Vec<(TableShape, Tool)> = candidates(conn, history).await?;
    match found.len() {
        0 => Err(AdoptError::NotFound.into()),
        1 => Ok(found.remove(0)),
        _ => Err(AdoptError::Several(found.into_iter().map(|(s, t)| (t, s.name)).collect()).into()),
    }
}

/// The tools' default tables that exist and look like theirs (Strata's own
/// history table excluded, whatever its name).
async fn candidates(
    conn: &Connection,
    history: &History,
) -> Result<Vec<(TableShape, Tool)>, EngineError> {
    let ours = conn
        .query_opt("SELECT to_regclass($1)::text", &[&history.table()])
        .await?
        .and_then(|r| r.get::<_, Option<String>>(0));
    Ok(shapes(conn, &CANDIDATES)
        .await?
        .into_iter()
        .filter(|s| Some(&s.name) != ours.as_ref())
        .filter_map(|s| s.tool().map(|t| (s, t)))
        .collect())
}

/// `up` with an empty Strata history: refuses when another tool's history
/// says migrations were applied (or left dirty/failed), pointing to
/// `strata adopt`.
pub(crate) async fn refuse_if_foreign(
    project: &Project,
    conn: &Connection,
    history: &History,
) -> Result<(), EngineError> {
    for (shape, tool) in candidates(conn, history).await? {
        let foreign = read_foreign(conn, &shape, tool).await?;
        let count = foreign.count(project);
        if count > 0 || foreign.baseline.is_some() || foreign.repeatables > 0 {
            return Err(AdoptError::UseAdopt {
                tool: tool.name(),
                table: shape.name,
                count,
            }
            .into());
        }
    }
    Ok(())
}

/// Checks that the history table `shape` is Strata's.
pub(crate) fn check_ours(shape: &TableShape) -> Result<(), EngineError> {
    let ours = [
        "version",
        "kind",
        "checksum_algorithm",
        "state",
        "statements_done",
    ];
    if ours.iter().all(|c| shape.has(c)) {
        return Ok(());
    }
    Err(AdoptError::NotStrata {
        table: shape.name.clone(),
        columns: shape.describe(),
        tool: shape.tool(),
    }
    .into())
}

/// Options of `adopt`.
#[derive(Debug, Clone, Default)]
pub struct AdoptOptions {
    /// The other tool's table, when not one of the default names.
    pub from: Option<String>,
}

/// What `adopt` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AdoptReport {
    /// The tool whose history was read.
    pub tool: String,
    /// Its table.
    pub table: String,
    /// Migrations recorded as applied now (labels).
    pub adopted: Vec<String>,
    /// Migrations Strata's history already had.
    pub already: Vec<String>,
    /// Versions the other tool recorded that have no file here.
    pub without_file: Vec<String>,
    /// Files the other tool never applied: `strata up` applies them.
    pub not_applied: Vec<String>,
    /// Of those, the ones older than the newest adopted migration.
    pub older_than_adopted: Vec<String>,
    /// Flyway repeatables recorded by the other tool (run again by `up`).
    pub repeatables: usize,
}

/// Records the migrations another tool applied as applied in Strata's
/// history.
pub async fn adopt(
    project: &Project,
    target: &Target,
    options: &AdoptOptions,
) -> Result<AdoptReport, EngineError> {
    let history = project.history();
    let conn = open(target).await?;
    // Refuses a foreign history table configured as Strata's.
    history.read(&conn).await?;
    let (shape, tool) = find(&conn, &history, options.from.as_deref()).await?;
    let lock = MigrationLock::acquire(target, history.lock_key(), project.config.lock_wait).await?;
    let result = adopt_locked(project, &conn, &history, &shape, tool).await;
    lock.release().await?;
    result
}

async fn adopt_locked(
    project: &Project,
    conn: &Connection,
    history: &History,
    shape: &TableShape,
    tool: Tool,
) -> Result<AdoptReport, EngineError> {
    let foreign = read_foreign(conn, shape, tool).await?;
    let mut report = AdoptReport {
        tool: tool.name().to_owned(),
        table: foreign.table.clone(),
        repeatables: foreign.repeatables,
        ..AdoptReport::default()
    };
    // Which files the other tool applied, and its versions without a file.
    let baseline = foreign
        .baseline
        .as_deref()
        .and_then(|b| project.format.parse_version(b));
    let mut applied = vec![false; project.migrations.len()];
    let mut checksums: Vec<Option<&Vec<u8>>> = vec![None; project.migrations.len()];
    for (i, m) in project.migrations.iter().enumerate() {
        if m.kind != MigrationKind::Versioned {
            continue;
        }
        applied[i] = match (&foreign.applied, &baseline) {
            (Applied::UpTo(v), _) => up_to(m, *v),
            (_, Some(b)) if &m.version <= b => true,
            _ => false,
        };
    }
    if let Applied::Set(set) = &foreign.applied {
        for (v, sum) in set {
            let found = project.format.parse_version(v).and_then(|pv| {
                project
                    .migrations
                    .iter()
                    .position(|m| m.kind == MigrationKind::Versioned && m.version == pv)
            });
            match found {
                Some(i) => {
                    applied[i] = true;
                    checksums[i] = sum.as_ref();
                }
                None => report.without_file.push(v.clone()),
            }
        }
    }
    if let Applied::UpTo(v) = foreign.applied {
        let has_file = project.migrations.iter().any(|m| {
            m.kind == MigrationKind::Versioned && m.version.canonical().parse::<i64>() == Ok(v)
        });
        if v > 0 && !has_file {
            report.without_file.push(v.to_string());
        }
    }
    // sqlx: the files must be the ones that ran.
    let mut mismatched = Vec::new();
    for (i, sum) in checksums.iter().enumerate() {
        let Some(sum) = sum else { continue };
        let m = &project.migrations[i];
        let now = sqlx_checksum(&m.up.path);
        if now.as_deref() != Some(sum.as_slice()) {
            mismatched.push(format!("{} ({})", m.label(), m.up.path.display()));
        }
    }
    if !mismatched.is_empty() {
        return Err(AdoptError::ChecksumMismatch {
            table: foreign.table,
            files: mismatched,
        }
        .into());
    }
    let statuses = project.statuses(&history.read(conn).await?);
    let state_of = |i: usize| {
        statuses
            .iter()
            .find(|s| s.index == Some(i))
            .map(|s| s.state)
    };
    let mut to_adopt = Vec::new();
    for (i, m) in project.migrations.iter().enumerate() {
        match (applied[i], state_of(i)) {
            (true, Some(MigrationState::Pending)) => to_adopt.push(m),
            (true, _) => report.already.push(m.label()),
            (false, Some(MigrationState::Pending)) if m.kind == MigrationKind::Versioned => {
                report.not_applied.push(m.label())
            }
            _ => {}
        }
    }
    if let Some(newest) = to_adopt.iter().map(|m| &m.version).max() {
        report.older_than_adopted = project
            .migrations
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                !applied[*i]
                    && m.kind == MigrationKind::Versioned
                    && &m.version < newest
                    && state_of(*i) == Some(MigrationState::Pending)
            })
            .map(|(_, m)| m.label())
            .collect();
    }
    history.ensure(conn).await?;
    let actor = os_actor();
    conn.batch("BEGIN").await?;
    let written = write(conn, history, &actor, &foreign, &to_adopt).await;
    match written {
        Ok(()) => conn.batch("COMMIT").await?,
        Err(e) => {
            let _ = conn.batch("ROLLBACK").await;
            return Err(e.into());
        }
    }
    report.adopted = to_adopt.iter().map(|m| m.label()).collect();
    Ok(report)
}

async fn write(
    conn: &Connection,
    history: &History,
    actor: &str,
    foreign: &Foreign,
    to_adopt: &[&Migration],
) -> Result<(), DbError> {
    let details = serde_json::json!({ "from": foreign.table, "tool": foreign.tool.name() });
    for m in to_adopt {
        history.insert_baseline(conn, m, actor).await?;
        history
            .event(
                conn,
                actor,
                &Event {
                    action: "adopt",
                    migration: Some(m),
                    success: true,
                    duration_ms: None,
                    details: details.clone(),
                },
            )
            .await?;
    }
    history
        .event(
            conn,
            actor,
            &Event {
                action: "adopt",
                migration: None,
                success: true,
                duration_ms: None,
                details: serde_json::json!({
                    "from": foreign.table,
                    "tool": foreign.tool.name(),
                    "count": to_adopt.len(),
                }),
            },
        )
        .await
}

/// sqlx's checksum of a file: SHA-384 of its text exactly as on disk.
fn sqlx_checksum(path: &std::path::Path) -> Option<Vec<u8>> {
    use sha2::Digest;
    let bytes = std::fs::read(path).ok()?;
    Some(sha2::Sha384::digest(&bytes).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(cols: &[(&str, &str)]) -> TableShape {
        TableShape {
            name: "t".into(),
            columns: cols
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn tables_are_recognised_by_their_columns() {
        let golang = shape(&[("version", "bigint"), ("dirty", "boolean")]);
        let dbmate = shape(&[("version", "character varying")]);
        let goose = shape(&[
            ("id", "integer"),
            ("version_id", "bigint"),
            ("is_applied", "boolean"),
            ("tstamp", "timestamp without time zone"),
        ]);
        assert_eq!(golang.tool(), Some(Tool::GolangMigrate));
        assert_eq!(dbmate.tool(), Some(Tool::Dbmate));
        assert_eq!(goose.tool(), Some(Tool::Goose));
        assert_eq!(shape(&[("version", "bigint")]).tool(), None);
        assert!(check_ours(&golang).is_err());
    }
}
