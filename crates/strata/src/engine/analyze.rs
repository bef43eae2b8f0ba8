//! Risk analysis in context: builds lint options from the configuration,
//! gathers facts from the connected server, and lints the migrations that
//! matter (pending ones for `up` and `status`, everything for `lint`).
//!
//! The rewrite rate behind duration estimates is measured once per server
//! (see `db::catalog::measure_rewrite_rate`), and only when a finding needs
//! an estimate (a statement that scans or rewrites an existing, non-empty
//! table): measuring fills a 200,000-row temporary table, a third of a
//! second that an `up` of new tables should not pay. It is cached in
//! `rates.json` in `Config::cache_dir` (the project's `.strata/`, or the
//! user's cache directory without a `strata.toml`), keyed by the server's
//! hosts and ports and `server_version_num` (not the database: the rate is
//! the server's).
//!
//! The no-stall policy ([`lock_hold_policy`]) runs on the result: a
//! statement whose estimated lock hold on an existing table exceeds
//! `max_lock_hold` becomes HIGH, so it blocks `up` before anything runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::statements::{size_of, Budget, Released, BUDGET};
use super::{rewrite, EngineError, Project};
use crate::config::Config;
use crate::db::{catalog, Connection, Target};
use crate::lint::{self, LintOptions, LintReport, ServerFacts, TableStats};
use crate::source::{self, Migration};
use crate::sql::names::quote_ident;
use crate::sql::Statement;

/// Lint options from the configuration (not yet connected).
pub fn options(config: &Config) -> LintOptions {
    LintOptions {
        pg_version: config.lint.pg_version.unwrap_or(lint::context::NEWEST_PG),
        disabled: config.lint.disabled.iter().cloned().collect(),
        risk_overrides: config.lint.risk_overrides.iter().cloned().collect(),
        external_runner: config.lint.external_runner,
        facts: None,
        run_is_pending: false,
        layout: config.format,
    }
}

/// Whether `up` and `status` show a finding in full, rather than in the
/// one-line-per-rule summary: when it blocks (unacknowledged, at or above
/// `block_on`), or when it is MEDIUM or above on a table the server has
/// (its size is known). A bootstrap's hundreds of findings on tables the
/// run itself creates then fit in a few lines.
pub fn shown_in_full(f: &lint::Finding, block_on: Option<lint::Risk>) -> bool {
    !f.allowed
        && (block_on.is_some_and(|t| f.risk >= t)
            || (f.risk >= lint::Risk::Medium && f.table_rows.is_some()))
}

/// A migration of a run, parsed once: the one value that analysis (lint),
/// estimates, safe rewrites, backup decisions, the dry run and apply use,
/// so a file is never parsed twice in a run (a 50 MB data file takes
/// seconds per parse). `statements` are as written (what lint judges);
/// `rewritten` is what runs instead when safe rewrites change anything.
pub(super) struct Parsed {
    /// The migration's index in the project.
    pub index: usize,
    /// The up script's statements, as written.
    pub statements: Vec<Statement>,
    /// The statements safe rewrites run instead, with their notes.
    pub rewritten: Option<rewrite::Rewritten>,
    /// Past the run's memory budget: the statements (both lists) were
    /// dropped after this parse checked them, and are parsed again where
    /// they are used (`engine::statements`).
    pub released: Option<Released>,
}

impl Parsed {
    /// Parses a migration's up script once, refusing bad SQL and
    /// unbalanced transactions (`apply::parse`), and applies safe rewrites
    /// when they are on.
    pub fn up(config: &Config, index: usize, m: &Migration) -> Result<Parsed, EngineError> {
        if m.kind == crate::source::MigrationKind::Plan {
            // A plan's TOML is not SQL; `engine::phases` runs it.
            return Ok(Parsed {
                index,
                statements: Vec::new(),
                rewritten: None,
                released: None,
            });
        }
        let statements = super::apply::parse(&m.up)?;
        let rewritten = config.safe_rewrites.then(|| {
            let pg_version = config.lint.pg_version.unwrap_or(lint::context::NEWEST_PG);
            rewrite::rewrite(&statements, m.up.first_line, pg_version)
        });
        Ok(Parsed {
            index,
            statements,
            rewritten: rewritten.filter(|r| !r.notes.is_empty()),
            released: None,
        })
    }

    /// Keeps the statements if they fit in `budget`; else drops them and
    /// keeps what parsing them again needs (see `engine::statements`).
    pub fn hold_within(&mut self, budget: &mut Budget) {
        let rewritten = self
            .rewritten
            .as_ref()
            .map_or(0, |r| size_of(&r.statements));
        if budget.take(size_of(&self.statements) + rewritten) {
            return;
        }
        let runs = match &self.rewritten {
            Some(r) => &r.statements,
            None => &self.statements,
        };
        self.released = Some(Released::of(self.index, false, runs));
        self.statements = Vec::new();
        if let Some(r) = &mut self.rewritten {
            r.statements = Vec::new();
        }
    }

    /// The statements as written, if this parse holds them.
    fn held(&self) -> Option<&[Statement]> {
        self.released
            .is_none()
            .then_some(self.statements.as_slice())
    }
}

/// Lints the migrations at `indexes` of the project, with server facts
/// when a connection is given. A file that does not parse is a
/// `syntax-error` finding here (`status` shows it); `up` refuses it.
pub async fn analyze(
    project: &Project,
    conn: Option<&Connection>,
    indexes: &[usize],
) -> Result<LintReport, EngineError> {
    let parsed: Vec<Parsed> = indexes
        .iter()
        .filter_map(|&i| Parsed::up(&project.config, i, project.migrations.get(i)?).ok())
        .collect();
    analyze_parsed(project, conn, indexes, &parsed).await
}

/// [`analyze`] over migrations parsed once for the run (`parsed`, in run
/// order; those at `indexes` that are missing there are parsed by lint
/// for their findings).
pub(super) async fn analyze_parsed(
    project: &Project,
    conn: Option<&Connection>,
    indexes: &[usize],
    parsed: &[Parsed],
) -> Result<LintReport, EngineError> {
    let mut opts = options(&project.config);
    opts.layout = Some(project.format);
    // `indexes` are the pending migrations, which run in this order: what
    // an earlier one creates is new to the later ones.
    opts.run_is_pending = true;
    if indexes.is_empty() {
        return Ok(LintReport::default());
    }
    // Those released past the memory budget are parsed again by lint.
    let by_index: HashMap<usize, &[Statement]> = parsed
        .iter()
        .filter_map(|p| Some((p.index, p.held()?)))
        .collect();
    let report: HashSet<usize> = indexes.iter().copied().collect();
    analyze_with(
        &project.config,
        conn,
        &project.migrations,
        &report,
        &mut opts,
        &|i| by_index.get(&i).copied(),
        &rewritten_lines(&project.migrations, parsed),
    )
    .await
}

/// Lints `migrations` (statements from `parsed` where it has them, else
/// parsed by lint), reporting those in `which`, with server facts,
/// estimates and the lock-hold policy when connected.
async fn analyze_with<'p>(
    config: &Config,
    conn: Option<&Connection>,
    migrations: &[Migration],
    which: &HashSet<usize>,
    opts: &mut LintOptions,
    parsed: &'p dyn Fn(usize) -> Option<&'p [Statement]>,
    rewritten: &HashSet<(PathBuf, usize)>,
) -> Result<LintReport, EngineError> {
    let mut rates = None;
    if let Some(conn) = conn {
        let (facts, r) = server_facts(config, conn, migrations, which).await?;
        opts.facts = Some(facts);
        rates = Some(r);
    }
    let mut report = lint_measuring(migrations, which, opts, rates.as_mut(), parsed)
        .await
        .map_err(|problem| EngineError::Source(vec![problem]))?;
    let mut every: Vec<usize> = which.iter().copied().collect();
    every.sort_unstable();
    let planned = match (conn, rates.as_mut()) {
        (Some(conn), Some(rates)) => {
            let max = config.max_lock_hold;
            add_estimates(
                conn,
                migrations,
                &every,
                parsed,
                opts,
                rates,
                max,
                &mut report,
            )
            .await;
            planner_rows(conn, &report, max).await
        }
        _ => HashMap::new(),
    };
    lock_hold_policy(&mut report, config.max_lock_hold, rewritten, &planned);
    Ok(report)
}

/// `strata lint PATH...`: directories (any layout) and single files. Each
/// directory is linted as a whole, in order, so later files see the schema
/// of earlier ones. Files inside the configured migrations directories are
/// linted within them, as `up` sees them: the history before them is
/// replayed for context and only they are reported, so a file gives the
/// same findings alone as in its directory.
pub async fn lint_paths(
    paths: &[PathBuf],
    config: &Config,
    target: Option<&Target>,
) -> Result<LintReport, EngineError> {
    let conn = match target {
        Some(t) => Some(t.connect().await?),
        None => None,
    };
    let mut total = LintReport::default();
    // Files that are migrations of the configured directories (their up
    // scripts): linted within their history, below.
    let (history, history_layout) = if paths
        .iter()
        .any(|p| !p.is_dir() && in_configured_dirs(config, p))
    {
        let loaded = super::load_dirs(config);
        if !loaded.problems.is_empty() {
            return Err(EngineError::Source(loaded.problems));
        }
        (loaded.migrations, Some(loaded.format))
    } else {
        (Vec::new(), config.format)
    };
    let ups: HashMap<PathBuf, usize> = history
        .iter()
        .enumerate()
        .map(|(i, m)| (canonical(&m.up.path), i))
        .collect();
    let mut in_history: HashSet<usize> = HashSet::new();
    for path in paths {
        if let Some(i) = ups.get(&canonical(path)).filter(|_| !path.is_dir()) {
            in_history.insert(*i);
            continue;
        }
        let mut layout = config.format;
        let migrations: Vec<Migration> = if path.is_dir() {
            // The configured directory (`strata lint` without paths) is
            // linted with the run's other directories, merged, as `up` sees it.
            let loaded = if config.dirs.first() == Some(path) {
                super::load_dirs(config)
            } else {
                source::load_all(
                    std::slice::from_ref(path),
                    config.format,
                    &config.placeholders,
                    &[],
                    source::TEXT_BUDGET,
                )
            };
            if !loaded.problems.is_empty() {
                return Err(EngineError::Source(loaded.problems));
            }
            layout = Some(loaded.format);
            loaded.migrations
        } else {
            let mut one = vec![source::load_file(path).map_err(EngineError::Source)?];
            let problems = source::placeholders::apply(&mut one, &config.placeholders);
            if !problems.is_empty() {
                return Err(EngineError::Source(problems));
            }
            one
        };
        let all: HashSet<usize> = (0..migrations.len()).collect();
        merge(
            &mut total,
            lint_set(config, conn.as_ref(), &migrations, &all, layout).await?,
        );
    }
    if !in_history.is_empty() {
        merge(
            &mut total,
            lint_set(config, conn.as_ref(), &history, &in_history, history_layout).await?,
        );
    }
    Ok(total)
}

fn merge(total: &mut LintReport, report: LintReport) {
    total.files += report.files;
    total.statements += report.statements;
    total.findings.extend(report.findings);
}

/// Which migrations of the configured directories `strata lint` reports;
/// the whole history is replayed for context either way.
#[derive(Debug, Clone)]
pub enum LintSelection {
    /// Those after this version (`--since`): the version itself is the one
    /// already deployed and is not reported.
    Since(String),
    /// Those whose up script changed in git relative to the merge-base with
    /// the base (`--changed [--base REF]`; default: see
    /// [`crate::localpg::git::DEFAULT_BASES`]), uncommitted and untracked
    /// files included.
    Changed(Option<String>),
}

/// `strata lint --since VERSION` / `--changed`: lints the configured
/// directories and reports only the selected migrations.
pub async fn lint_selection(
    config: &Config,
    target: Option<&Target>,
    selection: LintSelection,
) -> Result<LintReport, EngineError> {
    let conn = match target {
        Some(t) => Some(t.connect().await?),
        None => None,
    };
    lint_selected(config, conn.as_ref(), selection).await
}

async fn lint_selected(
    config: &Config,
    conn: Option<&Connection>,
    selection: LintSelection,
) -> Result<LintReport, EngineError> {
    let loaded = super::load_dirs(config);
    if !loaded.problems.is_empty() {
        return Err(EngineError::Source(loaded.problems));
    }
    let layout = Some(loaded.format);
    let migrations = loaded.migrations;
    let changed = match selection {
        LintSelection::Since(version) => {
            // As written in the file name in any layout's spelling
            // (`2024-01-01-120000` for diesel, `0002` for `2`), or the
            // whole name of the file or diesel folder.
            let spelled: Vec<String> = [
                source::Version::integer(&version),
                source::Version::dotted(&version),
                source::Version::diesel(&version),
            ]
            .into_iter()
            .flatten()
            .map(|v| v.canonical())
            .collect();
            let Some(at) = migrations.iter().position(|m| {
                let named = |p: Option<&std::ffi::OsStr>| {
                    p.and_then(|n| n.to_str()).is_some_and(|n| {
                        n == version
                            || n.strip_prefix(version.as_str())
                                .is_some_and(|r| r.starts_with(['_', '.']))
                    })
                };
                m.version.as_str() == version
                    || m.version.canonical() == version
                    || spelled.contains(&m.version.canonical())
                    || m.label() == version
                    || named(m.up.path.file_name())
                    || named(m.up.path.parent().and_then(|d| d.file_name()))
            }) else {
                return Err(EngineError::UnknownVersion(version));
            };
            let which: HashSet<usize> = (at + 1..migrations.len()).collect();
            return lint_set(config, conn, &migrations, &which, layout).await;
        }
        LintSelection::Changed(base) => {
            let dir = config.dirs.first().unwrap_or(&config.project_dir);
            crate::localpg::git::changed_files(dir, base.as_deref())?
        }
    };
    let wanted: HashSet<PathBuf> = changed.iter().map(|f| canonical(f)).collect();
    let which: HashSet<usize> = migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| wanted.contains(&canonical(&m.up.path)))
        .map(|(i, _)| i)
        .collect();
    lint_set(config, conn, &migrations, &which, layout).await
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// True when `path` lies in one of the configured migrations directories.
fn in_configured_dirs(config: &Config, path: &Path) -> bool {
    let path = canonical(path);
    config.dirs.iter().any(|d| path.starts_with(canonical(d)))
}

/// Lints `migrations` in order, reporting those in `which`, with server
/// facts and estimates when connected. Each file is parsed once, here.
async fn lint_set(
    config: &Config,
    conn: Option<&Connection>,
    migrations: &[Migration],
    which: &HashSet<usize>,
    layout: Option<source::Format>,
) -> Result<LintReport, EngineError> {
    let mut opts = options(config);
    opts.layout = layout;
    // A file that does not parse stays `None`: lint reports its error.
    let statements: Vec<Option<Vec<Statement>>> = migrations
        .iter()
        .map(|m| Ok(lint_split(&load_for_analysis(&m.up)?).ok()))
        .collect::<Result<_, EngineError>>()?;
    let mut rewrites = Vec::new();
    if config.safe_rewrites {
        let pg_version = config.lint.pg_version.unwrap_or(lint::context::NEWEST_PG);
        for (i, s) in statements.iter().enumerate() {
            if let (true, Some(s)) = (which.contains(&i), s) {
                rewrites.push((
                    i,
                    rewrite::rewrite(s, migrations[i].up.first_line, pg_version),
                ));
            }
        }
    }
    let rewritten = lines_of(
        rewrites
            .iter()
            .map(|(i, r)| (&migrations[*i], r.notes.as_slice())),
    );
    analyze_with(
        config,
        conn,
        migrations,
        which,
        &mut opts,
        &|i| statements.get(i)?.as_deref(),
        &rewritten,
    )
    .await
}

/// Tables with fewer rows than this are exempt from the lock-hold estimate
/// (their statements take milliseconds; the watchdog still watches them).
const SMALL_TABLE_ROWS: i64 = 1_000;

/// The no-stall policy, before anything runs: a finding whose estimated
/// lock hold (table size over the measured rewrite rate, see
/// `lint::context`) on an existing table of at least 1,000 rows exceeds
/// `max` is raised to HIGH, so `up` refuses it like any HIGH finding, and
/// its message says why; its fix is the safe alternative. A statement
/// that runs after an ACCESS EXCLUSIVE lock in the same transaction extends
/// that lock by its own duration, so it carries the estimate of the slow
/// statement on the same line. Statements that safe rewrites replace
/// (`rewritten`: file and line) are judged by the form that runs, so they
/// are skipped. Tables created in the same run have no size yet, hence no
/// estimate: the watchdog is their backstop. `planned` holds the planner's
/// row count of tables whose statistics say they are small (see
/// [`planner_rows`]).
pub fn lock_hold_policy(
    report: &mut LintReport,
    max: Option<Duration>,
    rewritten: &HashSet<(PathBuf, usize)>,
    planned: &HashMap<String, i64>,
) {
    let Some(max) = max else { return };
    let limit_ms = max.as_millis() as i64;
    let rows = |f: &lint::Finding| {
        let planned = f.table.as_ref().and_then(|t| planned.get(t)).copied();
        f.table_rows.max(planned)
    };
    let counted = |f: &lint::Finding| {
        f.estimate_ms.is_some()
            && rows(f).is_some_and(|rows| rows >= SMALL_TABLE_ROWS)
            && !rewritten.contains(&(f.file.clone(), f.line))
    };
    let over = |f: &lint::Finding| counted(f) && f.estimate_ms.is_some_and(|ms| ms > limit_ms);
    // The slowest estimate per statement, with the table it is about.
    let mut slow: HashMap<(PathBuf, usize), (i64, String, i64)> = HashMap::new();
    for f in report.findings.iter().filter(|f| counted(f)) {
        let entry = (
            f.estimate_ms.unwrap_or_default(),
            f.table.clone().unwrap_or_default(),
            rows(f).unwrap_or_default(),
        );
        let key = (f.file.clone(), f.line);
        if !slow.get(&key).is_some_and(|e| e.0 >= entry.0) {
            slow.insert(key, entry);
        }
    }
    let extends = lint::rules::ban_statements_after_access_exclusive::META.id;
    for f in &mut report.findings {
        // A lock span is held for the sum of the statements run inside it;
        // its message names the slowest.
        let spanned = (f.rule == extends && f.estimate_ms.is_none()).then(|| {
            let inside = f
                .span
                .iter()
                .filter_map(|l| slow.get(&(f.file.clone(), *l)));
            let total: i64 = inside.clone().map(|e| e.0).sum();
            inside
                .max_by_key(|e| e.0)
                .map(|(_, table, rows)| (total, table.clone(), *rows))
        });
        let own = slow.get(&(f.file.clone(), f.line)).cloned();
        let (extended, (ms, table, rows)) = match (spanned, own) {
            (Some(Some(entry)), _) if entry.0 > limit_ms => (true, entry),
            (None, Some(entry)) if over(f) => (false, entry),
            _ => continue,
        };
        let (ms, table, rows) = (&ms, &table, &rows);
        f.risk = lint::Risk::High;
        if extended {
            f.estimate_ms = Some(*ms);
        }
        f.message.push_str(&format!(
            "; estimated lock hold {:.1} s ({} rows of {table}) exceeds max_lock_hold = {}: application queries would stall behind it. Use the safe alternative below, or raise max_lock_hold in strata.toml",
            *ms as f64 / 1000.0,
            rows,
            super::watchdog::describe(max)
        ));
    }
}

/// UPDATE and DELETE with a WHERE clause lock every row they match until
/// the transaction commits, and the rules cannot tell from the text how
/// many that is. For each such statement on an existing table of at least
/// 1,000 rows, the planner says (`EXPLAIN`, which plans without running
/// anything, in a read-only transaction); the share of the table's bytes
/// it matches, over the measured rate, is its estimate. When that exceeds
/// `max`, a `ban-unbatched-update-delete` finding carries it (so an allow
/// for that rule acknowledges it). A statement that needs an earlier one
/// of its migration (a column added just before) cannot be planned yet and
/// gets no estimate: the watchdog is its backstop.
///
/// Validating a new foreign key joins the table with the one it
/// references, holding SHARE ROW EXCLUSIVE on both: its estimate counts the
/// bytes of both tables, not only those of the table altered.
#[allow(clippy::too_many_arguments)]
async fn add_estimates<'p>(
    conn: &Connection,
    migrations: &[Migration],
    indexes: &[usize],
    parsed: &'p dyn Fn(usize) -> Option<&'p [Statement]>,
    opts: &LintOptions,
    rates: &mut Rates<'_>,
    max: Option<Duration>,
    report: &mut LintReport,
) {
    use lint::rules::ban_unbatched_update_delete::META;
    let (Some(max), Some(facts)) = (max, opts.facts.as_ref()) else {
        return;
    };
    let dml = !opts.disabled.contains(META.id);
    let limit_ms = max.as_millis() as i64;
    let stats_of = |table: &str| facts.table(table).copied();
    // (file, line) of ADD FOREIGN KEY statements -> both tables' estimate.
    let mut foreign_keys: HashMap<(PathBuf, usize), i64> = HashMap::new();
    let estimated: HashSet<(PathBuf, usize)> = report
        .findings
        .iter()
        .filter(|f| f.estimate_ms.is_some())
        .map(|f| (f.file.clone(), f.line))
        .collect();
    let mut open = false;
    let mut added = Vec::new();
    for &i in indexes {
        let Some(m) = migrations.get(i) else {
            continue;
        };
        // Released past the run's memory budget (or not parsed by the
        // caller): parsed again here. A file that does not parse has no
        // estimates (lint reports it).
        let split;
        let statements = match parsed(i) {
            Some(statements) => statements,
            // Only UPDATE, DELETE and foreign keys get estimates here: a
            // text without those words has none, and is not parsed.
            None => {
                let Ok(sql) = m.up.load() else {
                    // Changed since loading: the run stops where it reads it.
                    continue;
                };
                if !mentions_any(sql.text(), &["update", "delete", "references", "foreign"]) {
                    continue;
                }
                split = lint_split(&sql).map(|statements| (sql, statements));
                match &split {
                    Ok((_, statements)) => statements.as_slice(),
                    Err(_) => continue,
                }
            }
        };
        // A backfill runs in short batches: no lock is held for long
        // (`apply::parse` marked its statement).
        for (index, stmt) in statements.iter().enumerate() {
            if stmt.backfill {
                continue;
            }
            let line = m.up.first_line + stmt.line - 1;
            let nodes = stmt.nodes();
            let (rv, verb) = match nodes.first().and_then(|n| n.node.as_ref()) {
                Some(node @ pg_query::NodeEnum::AlterTableStmt(_)) => {
                    let Some((table, cmds)) = lint::ast::alter_table(node) else {
                        continue;
                    };
                    let referenced = cmds
                        .iter()
                        .filter_map(|cmd| lint::ast::constraint(cmd))
                        .filter(|c| {
                            !c.skip_validation
                                && lint::ast::constr_is(
                                    c,
                                    pg_query::protobuf::ConstrType::ConstrForeign,
                                )
                        })
                        .filter_map(|c| c.pktable.as_ref().map(lint::ast::relation));
                    let bytes: i64 = referenced
                        .filter_map(|pk| Some(stats_of(&table)?.bytes + stats_of(&pk)?.bytes))
                        .sum();
                    if bytes > 0 {
                        let Some(rate) = rates.get().await else {
                            return;
                        };
                        let ms = (bytes as f64 / rate * 1000.0).ceil() as i64;
                        foreign_keys.insert((m.up.path.clone(), line), ms);
                    }
                    continue;
                }
                _ if !dml => continue,
                Some(pg_query::NodeEnum::UpdateStmt(u)) if u.where_clause.is_some() => {
                    (u.relation.as_ref(), "UPDATE")
                }
                Some(pg_query::NodeEnum::DeleteStmt(d)) if d.where_clause.is_some() => {
                    (d.relation.as_ref(), "DELETE")
                }
                _ => continue,
            };
            let Some(rv) = rv else { continue };
            let table = lint::ast::relation(rv);
            let Some(stats) = stats_of(&table) else {
                continue;
            };
            if stats.rows < SMALL_TABLE_ROWS
                || estimated.contains(&(m.up.path.clone(), line))
                || acknowledged(&m.up, statements, index, META.id)
            {
                continue;
            }
            let Some(rate) = rates.get().await else {
                break;
            };
            if !open {
                // Planning takes the statement's locks: never wait long.
                if conn
                    .batch("BEGIN READ ONLY; SET LOCAL lock_timeout = '500ms'")
                    .await
                    .is_err()
                {
                    return;
                }
                open = true;
            }
            let plan = conn
                .query(&format!("EXPLAIN (FORMAT JSON) {}", stmt.sql), &[])
                .await;
            let matched = plan.ok().and_then(|rows| {
                let plan = rows.first()?.try_get::<_, serde_json::Value>(0).ok()?;
                let top = plan.pointer("/0/Plan")?;
                // ModifyTable's input is the scan that finds the rows.
                top.pointer("/Plans/0/Plan Rows")
                    .or_else(|| top.get("Plan Rows"))
                    .and_then(|n| n.as_f64())
            });
            let Some(matched) = matched else {
                // A failed EXPLAIN aborts the transaction.
                let _ = conn.batch("ROLLBACK").await;
                open = false;
                continue;
            };
            let share = (matched / stats.rows.max(1) as f64).min(1.0);
            let ms = (share * stats.bytes as f64 / rate * 1000.0).ceil() as i64;
            if ms <= limit_ms {
                continue;
            }
            let mut f = lint::Finding::new(
                &META,
                format!(
                    "{verb} matches about {} of the {} rows of {table} (planner estimate) and locks each until the transaction commits",
                    matched as i64, stats.rows
                ),
            )
            .table(table.clone())
            .fix(lint::rules::ban_unbatched_update_delete::backfill_fix(&stmt.sql));
            f.file = m.up.path.clone();
            f.line = line;
            f.column = stmt.column;
            f.source_line = stmt.sql.lines().next().unwrap_or("").to_owned();
            f.table_rows = Some(stats.rows);
            f.table_bytes = Some(stats.bytes);
            f.estimate_ms = Some(ms);
            added.push(f);
        }
    }
    if open {
        let _ = conn.batch("ROLLBACK").await;
    }
    let validates = lint::rules::require_not_valid_constraint::META.id;
    for f in &mut report.findings {
        if let (true, Some(ms), Some(both)) = (
            f.rule == validates,
            f.estimate_ms,
            foreign_keys.get(&(f.file.clone(), f.line)),
        ) {
            f.estimate_ms = Some(ms.max(*both));
        }
    }
    if added.is_empty() {
        return;
    }
    report.findings.extend(added);
    // Back in file order: migrations in run order, then line and column.
    let order: HashMap<&Path, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.up.path.as_path(), i))
        .collect();
    report.findings.sort_by_key(|f| {
        (
            order.get(f.file.as_path()).copied().unwrap_or(usize::MAX),
            f.line,
            f.column,
        )
    });
}

/// True when a `-- strata:allow RULE` covers statement `index`: on the
/// lines directly above it, or in the file's header (followed by a blank
/// line), as `lint` reads allows.
fn acknowledged(
    script: &source::Script,
    statements: &[crate::sql::Statement],
    index: usize,
    rule: &str,
) -> bool {
    // Read again if released; a file changed since loading is not
    // acknowledged (the run stops where it reads it).
    let Ok(sql) = script.load() else {
        return false;
    };
    let lines: Vec<&str> = sql.text().lines().collect();
    script.directives.iter().any(|(line, directive)| {
        let source::Directive::Allow { rules, .. } = directive else {
            return false;
        };
        if !rules.iter().any(|r| r == rule) {
            return false;
        }
        let rel = (line + 1).saturating_sub(script.first_line);
        let next = statements.iter().position(|s| s.line > rel);
        let blank_between = next.is_some_and(|n| {
            lines
                .get(rel..statements[n].line - 1)
                .is_some_and(|between| between.iter().any(|l| l.trim().is_empty()))
        });
        next == Some(index) || (next == Some(0) && blank_between)
    })
}

/// The planner's row count of each table that a finding over the limit is
/// about, when its statistics say it has fewer than 1,000 rows. A table
/// filled moments ago and never analysed reads as empty in `pg_class` and
/// `pg_stat_user_tables`, though its bytes are real; the planner then
/// estimates rows from its size on disk, as it would for a query, so the
/// small-table exemption does not let a freshly filled table through.
async fn planner_rows(
    conn: &Connection,
    report: &LintReport,
    max: Option<Duration>,
) -> HashMap<String, i64> {
    let mut rows = HashMap::new();
    let Some(max) = max else { return rows };
    let limit_ms = max.as_millis() as i64;
    let tables: HashSet<&String> = report
        .findings
        .iter()
        .filter(|f| {
            f.estimate_ms.is_some_and(|ms| ms > limit_ms)
                && f.table_rows.is_some_and(|r| r < SMALL_TABLE_ROWS)
        })
        .filter_map(|f| f.table.as_ref())
        .collect();
    if tables.is_empty() {
        return rows;
    }
    // Planning takes ACCESS SHARE locks: never wait long behind a holder.
    if conn
        .batch("BEGIN READ ONLY; SET LOCAL lock_timeout = '500ms'")
        .await
        .is_err()
    {
        return rows;
    }
    for table in tables {
        // The name resolved and quoted by the server, so nothing in it is
        // ever spliced into SQL as written.
        let Ok(Some(row)) = conn
            .query_opt("SELECT to_regclass($1)::text", &[table])
            .await
        else {
            continue;
        };
        let Some(name) = row.get::<_, Option<String>>(0) else {
            continue;
        };
        let plan = conn
            .query(&format!("EXPLAIN (FORMAT JSON) SELECT FROM {name}"), &[])
            .await;
        let planned = plan.ok().and_then(|r| {
            r.first()
                .and_then(|r| r.try_get::<_, serde_json::Value>(0).ok())
                .and_then(|v| v.pointer("/0/Plan/Plan Rows").and_then(|n| n.as_f64()))
        });
        match planned {
            Some(n) => {
                rows.insert(table.clone(), n as i64);
            }
            // A failed EXPLAIN aborts the transaction: start a new one.
            None => {
                let _ = conn
                    .batch("ROLLBACK; BEGIN READ ONLY; SET LOCAL lock_timeout = '500ms'")
                    .await;
            }
        }
    }
    let _ = conn.batch("ROLLBACK").await;
    rows
}

/// The (file, line) of every statement that safe rewrites replace in the
/// parsed migrations.
fn rewritten_lines(migrations: &[Migration], parsed: &[Parsed]) -> HashSet<(PathBuf, usize)> {
    lines_of(parsed.iter().filter_map(|p| {
        let r = p.rewritten.as_ref()?;
        Some((migrations.get(p.index)?, r.notes.as_slice()))
    }))
}

/// (file, line) of each rewrite note ("line N: what was rewritten").
fn lines_of<'m>(
    notes: impl Iterator<Item = (&'m Migration, &'m [String])>,
) -> HashSet<(PathBuf, usize)> {
    let mut lines = HashSet::new();
    for (m, notes) in notes {
        for note in notes {
            if let Some(line) = note
                .strip_prefix("line ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<usize>().ok())
            {
                lines.insert((m.up.path.clone(), line));
            }
        }
    }
    lines
}

/// What the server says about the tables, functions and version, and its
/// rewrite rate if a measurement is cached (see [`Rates`]). Sizes and
/// functions are looked up for what the reported migrations (`which`)
/// mention, not for the whole history replayed before them: one pending
/// migration in a database of thousands of tables measures its own.
async fn server_facts<'c>(
    config: &Config,
    conn: &'c Connection,
    migrations: &[Migration],
    which: &HashSet<usize>,
) -> Result<(ServerFacts, Rates<'c>), EngineError> {
    let mut facts = ServerFacts::default();
    let reported: Vec<&Migration> = which.iter().filter_map(|&i| migrations.get(i)).collect();
    // A parent's size is its own plus every partition's and child's
    // (`Tables::total`). Bare names resolve through the search path, first
    // schema first, as PostgreSQL resolves them; `public` last for
    // sessions whose path lacks it.
    let (names, called) = vocabulary(&reported)?;
    let all = catalog::tables(conn, catalog::Sizes::Named(&names)).await?;
    let mut path = all.search_path.clone();
    path.push("public".to_owned());
    let totals = all.totals();
    // Keyed by the names as SQL (`public.users`, `"Sch"."Orders"`), the
    // form findings carry, so a dot inside a quoted name is never taken
    // for a schema.
    let sql = |schema: &str, name: &str| format!("{}.{}", quote_ident(schema), quote_ident(name));
    for t in &all.tables {
        let (rows, bytes) = totals.get(&t.oid).copied().unwrap_or((0, 0));
        facts
            .tables
            .insert(sql(&t.schema, &t.name), TableStats { rows, bytes });
    }
    for schema in &path {
        for t in all.tables.iter().filter(|t| &t.schema == schema) {
            if let Some(stats) = facts.tables.get(&sql(&t.schema, &t.name)).copied() {
                facts.tables.entry(quote_ident(&t.name)).or_insert(stats);
            }
        }
    }
    // Indexes likewise: qualified, and bare through the search path (the
    // first schema on the path wins).
    let indexes = catalog::index_tables(conn).await?;
    for (schema, index, table) in &indexes {
        facts.indexes.insert(sql(schema, index), sql(schema, table));
    }
    for schema in path.iter().rev() {
        for (s, index, table) in indexes.iter().filter(|(s, ..)| s == schema) {
            facts.indexes.insert(quote_ident(index), sql(s, table));
        }
    }
    let version = catalog::server_version_num(conn).await?;
    facts.major_version = Some((version / 10_000) as u32);
    facts.volatility = catalog::volatility(conn, &called).await?;
    let rates = Rates::open(config, conn, version);
    facts.rewrite_bytes_per_sec = rates.cached();
    Ok((facts, rates))
}

/// Lints, and when a finding would carry a duration estimate but no rate
/// is cached, measures the rate and lints again with it (once per server:
/// the measurement is cached).
async fn lint_measuring<'p>(
    migrations: &[Migration],
    report: &HashSet<usize>,
    opts: &mut LintOptions,
    rates: Option<&mut Rates<'_>>,
    parsed: &'p dyn Fn(usize) -> Option<&'p [Statement]>,
) -> Result<LintReport, source::SourceProblem> {
    // A second pass may follow (no rate cached yet): then the files the
    // caller did not parse are parsed here once and kept for both passes,
    // within the memory budget (past it, each pass parses them).
    let second_pass = rates.is_some()
        && opts
            .facts
            .as_ref()
            .is_some_and(|f| f.rewrite_bytes_per_sec.is_none());
    let kept: Vec<Option<Vec<Statement>>> = if second_pass {
        let mut budget = Budget::new(BUDGET);
        migrations
            .iter()
            .enumerate()
            .map(|(i, m)| match parsed(i) {
                Some(_) => None,
                None if budget.is_spent() => None,
                None => {
                    m.up.load()
                        .ok()
                        .and_then(|sql| lint_split(&sql).ok())
                        .filter(|s| budget.take(size_of(s)))
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    // Plans are linted as the statements they compile to, each at its
    // operation's line.
    let plans: Vec<Option<Vec<Statement>>> = migrations
        .iter()
        .map(|m| {
            (m.kind == crate::source::MigrationKind::Plan)
                .then(|| super::phases::lint_statements(m))
        })
        .collect();
    let parsed = &|i: usize| {
        plans
            .get(i)
            .and_then(Option::as_deref)
            .or_else(|| parsed(i))
            .or_else(|| kept.get(i)?.as_deref())
    };
    let findings = lint::lint_parsed(migrations, report, opts, parsed)?;
    let (Some(rates), Some(facts)) = (rates, opts.facts.as_mut()) else {
        return Ok(findings);
    };
    if facts.rewrite_bytes_per_sec.is_some() || !needs_estimate(&findings) {
        return Ok(findings);
    }
    facts.rewrite_bytes_per_sec = rates.get().await;
    if facts.rewrite_bytes_per_sec.is_none() {
        return Ok(findings);
    }
    lint::lint_parsed(migrations, report, opts, parsed)
}

/// Whether `text` contains any of `words` (lower case), in any case.
fn mentions_any(text: &str, words: &[&str]) -> bool {
    let bytes = text.as_bytes();
    words.iter().any(|w| {
        bytes
            .windows(w.len())
            .any(|window| window.eq_ignore_ascii_case(w.as_bytes()))
    })
}

/// A script's text for analysis, which runs before any migration does: a
/// file that cannot be read back as loaded is bad input (exit 2).
fn load_for_analysis(script: &source::Script) -> Result<source::Sql<'_>, EngineError> {
    script
        .load()
        .map_err(|problem| EngineError::Source(vec![problem]))
}

/// A migration's up script split as lint reads it: rules judge a
/// `-- strata:backfill` statement as batched (a misplaced one is
/// `validate`'s and `up`'s to report).
fn lint_split(sql: &source::Sql<'_>) -> Result<Vec<Statement>, crate::sql::SqlError> {
    let mut statements = crate::sql::split(sql.text(), &sql.blocks)?;
    let _ = source::mark_backfills(sql, &mut statements);
    Ok(statements)
}

/// Whether a finding is about an existing, non-empty table and comes from a
/// rule whose statement scans or rewrites it: those carry an estimate of
/// how long they hold their lock (`lint::context`), which needs the rate.
fn needs_estimate(report: &LintReport) -> bool {
    report.findings.iter().any(|f| {
        f.table_bytes.is_some_and(|b| b > 0)
            && lint::rules::RULES
                .iter()
                .any(|r| r.meta().id == f.rule && r.meta().scans)
    })
}

/// What the migrations' texts mention: the names a table or an index may
/// go by ([`mentioned_names`]) and the functions they call
/// ([`called_functions`]), each text read once (a text released past the
/// loading budget is read from its file).
fn vocabulary(migrations: &[&Migration]) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let (mut names, mut calls) = (Distinct::default(), Distinct::default());
    let mut scratch = String::new();
    for m in migrations {
        let sql = load_for_analysis(&m.up)?;
        mentioned_names(sql.text(), &mut names, &mut scratch);
        called_functions(sql.text(), &mut calls, &mut scratch);
    }
    Ok((names.into_sorted(), calls.into_sorted()))
}

/// Every name a text may use for a table or an index, as
/// `pg_class.relname` holds it: unquoted words folded to lower case, quoted
/// identifiers as written. Over-approximated from the text (keywords,
/// columns and comments come along), which costs only a size lookup that
/// finds nothing; missing a name would lose a finding's size.
///
/// Distinct names are kept as they are found, so memory follows the
/// vocabulary of the migrations (a few hundred words), not their length:
/// 20,000 data migrations repeat the same dozen words.
fn mentioned_names(text: &str, names: &mut Distinct, word: &mut String) {
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' {
            word.clear();
            while let Some((_, c)) = chars.next() {
                if c != '"' {
                    word.push(c);
                } else if chars.peek().is_some_and(|&(_, next)| next == '"') {
                    chars.next();
                    word.push('"');
                } else {
                    break;
                }
            }
            names.add(word);
        } else if c.is_alphabetic() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            // PostgreSQL folds only ASCII letters of unquoted names
            // in UTF-8 databases (`downcase_identifier`).
            word.clear();
            word.push_str(&text[start..end]);
            word.make_ascii_lowercase();
            names.add(word);
        } else if c.is_ascii_digit() {
            // A number: its digits and letters (`1e5`) name nothing.
            while chars.peek().is_some_and(|&(_, c)| c.is_alphanumeric()) {
                chars.next();
            }
        }
    }
}

/// Every function name called in a text's defaults and expressions,
/// cheaply over-approximated: volatility lookups are one query.
fn called_functions(source: &str, names: &mut Distinct, text: &mut String) {
    text.clear();
    text.push_str(source);
    text.make_ascii_lowercase();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('(') {
        // `f ()`: formatters put a space before the parenthesis.
        let mut end = i;
        while end > 0 && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            start -= 1;
        }
        if start < end {
            names.add(&text[start..end]);
        }
    }
}

/// A set of names that allocates only for a name it has not seen.
#[derive(Default)]
struct Distinct(std::collections::BTreeSet<String>);

impl Distinct {
    fn add(&mut self, name: &str) {
        if !self.0.contains(name) {
            self.0.insert(name.to_owned());
        }
    }

    fn into_sorted(self) -> Vec<String> {
        self.0.into_iter().collect()
    }
}

/// Where a rewrite rate came from, for estimates that must say how they
/// were made (`strata plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateSource {
    /// Read from `rates.json`, measured on this server by an earlier run.
    Cached,
    /// Measured now (and cached).
    Measured,
}

/// This server's rewrite rate in bytes per second, as lint's estimates use
/// it: the cached one, or measured now (a third of a second) and cached.
/// `None` when it cannot be measured (a read-only replica, no TEMP
/// privilege).
pub async fn rewrite_rate(config: &Config, conn: &Connection) -> Option<(f64, RateSource)> {
    let version = catalog::server_version_num(conn).await.ok()?;
    let mut rates = Rates::open(config, conn, version);
    if let Some(rate) = rates.cached() {
        return Some((rate, RateSource::Cached));
    }
    rates.get().await.map(|rate| (rate, RateSource::Measured))
}

/// The server's rewrite rate (bytes per second), from the cache or
/// measured on first need; a failed measurement (read-only replica, no TEMP
/// privilege) is not retried in the same run.
struct Rates<'c> {
    conn: &'c Connection,
    file: Option<PathBuf>,
    key: String,
    cache: BTreeMap<String, f64>,
    measured: Option<Option<f64>>,
}

impl<'c> Rates<'c> {
    /// Reads the cache (no measurement yet).
    fn open(config: &Config, conn: &'c Connection, version: i32) -> Rates<'c> {
        let file = config.cache_dir().map(|d| d.join("rates.json"));
        let cache = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Rates {
            conn,
            file,
            key: format!("{} v{version}", conn.server_key()),
            cache,
            measured: None,
        }
    }

    /// The cached rate, if any.
    fn cached(&self) -> Option<f64> {
        self.cache.get(&self.key).copied().filter(|r| *r > 0.0)
    }

    /// The rate, measured (and cached) if it is not cached yet.
    async fn get(&mut self) -> Option<f64> {
        if let Some(rate) = self.cached() {
            return Some(rate);
        }
        if let Some(measured) = self.measured {
            return measured;
        }
        tracing::debug!("measuring the server's rewrite rate for duration estimates");
        let measured = match catalog::measure_rewrite_rate(self.conn).await {
            Ok(rate) if rate > 0.0 => Some(rate),
            Ok(_) => None,
            Err(e) => {
                tracing::info!(
                    "cannot measure the rewrite rate, so findings carry no duration estimate: {e}"
                );
                None
            }
        };
        self.measured = Some(measured);
        if let (Some(rate), Some(file)) = (measured, &self.file) {
            self.cache.insert(self.key.clone(), rate);
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(
                file,
                serde_json::to_string_pretty(&self.cache).unwrap_or_default(),
            );
        }
        measured
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lint::rules::{ban_statements_after_access_exclusive, ban_unbatched_update_delete};
    use lint::{Finding, Risk};

    #[test]
    fn mentioned_names_are_the_words_and_quoted_identifiers_of_the_text() {
        let m = lint::test_utils::migration(
            "1",
            "ALTER TABLE app.\"Big \"\"Orders\"\"\" ADD COLUMN n2 int DEFAULT 1e5;\n\
             DROP INDEX Users_Email_Idx; -- café\n\
             DROP TABLE RÉSUMÉS; DROP TABLE app.\"Big \"\"Orders\"\"\";",
        );
        let (names, _) = vocabulary(&[&m]).unwrap();
        // Each name once, in order, however often the text repeats it.
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for name in [
            "app",
            "Big \"Orders\"",
            "n2",
            "users_email_idx",
            "café",
            "table",
            // PostgreSQL folds only ASCII letters in UTF-8 databases.
            "rÉsumÉs",
        ] {
            assert!(names.contains(&name.to_owned()), "{name}: {names:?}");
        }
        // Numbers name nothing; unquoted words are folded, quoted ones not.
        assert!(!names
            .iter()
            .any(|n| n == "e5" || n == "1e5" || n == "Users_Email_Idx"));
    }

    #[test]
    fn estimates_skip_only_texts_without_update_delete_or_foreign_keys() {
        let words = ["update", "delete", "references", "foreign"];
        for text in [
            "UPDATE t SET a = 1 WHERE id < 9",
            "delete from t where x",
            "ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES c",
            "alter table a add column b int References c",
        ] {
            assert!(mentions_any(text, &words), "{text}");
        }
        assert!(!mentions_any("INSERT INTO t VALUES (1, 'upd')", &words));
    }

    fn finding(meta: &'static lint::RuleMeta, line: usize, rows: i64, ms: Option<i64>) -> Finding {
        let mut f = Finding::new(meta, "m").table("users");
        f.file = PathBuf::from("2_x.up.sql");
        f.line = line;
        f.table_rows = Some(rows);
        f.estimate_ms = ms;
        f
    }

    fn policy(
        findings: Vec<Finding>,
        rewritten: &[usize],
        planned: &[(&str, i64)],
    ) -> Vec<Finding> {
        let mut report = LintReport {
            findings,
            ..LintReport::default()
        };
        let rewritten = rewritten
            .iter()
            .map(|l| (PathBuf::from("2_x.up.sql"), *l))
            .collect();
        let planned = planned.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        lock_hold_policy(
            &mut report,
            Some(Duration::from_secs(1)),
            &rewritten,
            &planned,
        );
        report.findings
    }

    #[test]
    fn in_full_what_blocks_and_what_hits_a_table_that_exists() {
        let drop = &lint::rules::ban_drop_column::META;
        let existing = finding(drop, 1, 5_000, None).risk(Risk::Medium);
        assert!(shown_in_full(&existing, Some(Risk::High)));
        let mut new = existing.clone();
        new.table_rows = None;
        assert!(!shown_in_full(&new, Some(Risk::High)));
        assert!(shown_in_full(
            &new.clone().risk(Risk::High),
            Some(Risk::High)
        ));
        assert!(!shown_in_full(&new.clone().risk(Risk::High), None));
        let mut allowed = existing.clone();
        allowed.allowed = true;
        assert!(!shown_in_full(&allowed, Some(Risk::Low)));
        assert!(!shown_in_full(&existing.risk(Risk::Low), Some(Risk::High)));
    }

    #[test]
    fn a_long_estimated_hold_on_a_table_of_1000_rows_or_more_is_high() {
        let update = &ban_unbatched_update_delete::META;
        let out = policy(
            vec![
                finding(update, 1, 1_000, Some(1_001)),
                finding(update, 2, 999, Some(5_000)),
                finding(update, 3, 2_000_000, Some(1_000)),
                finding(update, 4, 2_000_000, None),
            ],
            &[],
            &[],
        );
        let risks: Vec<Risk> = out.iter().map(|f| f.risk).collect();
        assert_eq!(
            risks,
            [Risk::High, Risk::Medium, Risk::Medium, Risk::Medium]
        );
        assert!(
            out[0].message.contains(
                "estimated lock hold 1.0 s (1000 rows of users) exceeds max_lock_hold = 1 s"
            ),
            "{}",
            out[0].message
        );
    }

    #[test]
    fn the_statement_after_an_access_exclusive_lock_carries_its_estimate() {
        let out = policy(
            vec![
                {
                    let mut span =
                        finding(&ban_statements_after_access_exclusive::META, 1, 10, None);
                    span.span = vec![2, 3];
                    span
                },
                finding(
                    &ban_unbatched_update_delete::META,
                    2,
                    2_000_000,
                    Some(3_000),
                ),
                // Under the limit alone, but it adds to the hold.
                finding(&ban_unbatched_update_delete::META, 3, 2_000_000, Some(500)),
            ],
            &[],
            &[],
        );
        let risks: Vec<Risk> = out.iter().map(|f| f.risk).collect();
        assert_eq!(risks, [Risk::High, Risk::High, Risk::Medium], "{out:#?}");
        assert_eq!(out[0].estimate_ms, Some(3_500));
    }

    #[test]
    fn stale_statistics_rewritten_statements_and_off() {
        let update = &ban_unbatched_update_delete::META;
        // Statistics say empty, the planner sees the rows on disk.
        let out = policy(
            vec![finding(update, 1, 0, Some(3_000))],
            &[],
            &[("users", 1_200_000)],
        );
        assert_eq!(out[0].risk, Risk::High);
        // A statement that safe rewrites replace is judged by what runs.
        let out = policy(vec![finding(update, 1, 2_000_000, Some(3_000))], &[1], &[]);
        assert_eq!(out[0].risk, Risk::Medium);
        let mut report = LintReport {
            findings: vec![finding(update, 1, 2_000_000, Some(3_000))],
            ..LintReport::default()
        };
        lock_hold_policy(&mut report, None, &HashSet::new(), &HashMap::new());
        assert_eq!(report.findings[0].risk, Risk::Medium);
    }
}
