//! Risk analysis in context: builds lint options from the configuration,
//! gathers facts from the connected server, and lints the migrations that
//! matter (pending ones for `up` and `status`, everything for `lint`).
//!
//! The rewrite rate behind duration estimates is measured once per server
//! (see `db::catalog::measure_rewrite_rate`) and cached in
//! `<project>/.strata/rates.json`, keyed by the server's hosts and ports
//! and `server_version_num` (not the database: the rate is the server's).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{EngineError, Project};
use crate::config::Config;
use crate::db::{catalog, Connection, Target};
use crate::lint::{self, LintOptions, LintReport, ServerFacts, TableStats};
use crate::source::{self, Migration};

/// Lint options from the configuration (not yet connected).
pub fn options(config: &Config) -> LintOptions {
    LintOptions {
        pg_version: config.lint.pg_version.unwrap_or(lint::context::NEWEST_PG),
        disabled: config.lint.disabled.iter().cloned().collect(),
        risk_overrides: config.lint.risk_overrides.iter().cloned().collect(),
        external_runner: config.lint.external_runner,
        facts: None,
    }
}

/// Lints the migrations at `indexes` of the project, with server facts
/// when a connection is given.
pub async fn analyze(
    project: &Project,
    conn: Option<&Connection>,
    indexes: &[usize],
) -> Result<LintReport, EngineError> {
    let mut opts = options(&project.config);
    if indexes.is_empty() {
        return Ok(LintReport::default());
    }
    if let Some(conn) = conn {
        opts.facts =
            Some(server_facts(&project.config.project_dir, conn, &project.migrations).await?);
    }
    let report: HashSet<usize> = indexes.iter().copied().collect();
    Ok(lint::lint_migrations(&project.migrations, &report, &opts))
}

/// `strata lint PATH...`: directories (any layout) and single files. Each
/// directory is linted as a whole, in order, so later files see the schema
/// of earlier ones.
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
    for path in paths {
        let migrations: Vec<Migration> = if path.is_dir() {
            let loaded = source::load(path, config.format);
            if !loaded.problems.is_empty() {
                return Err(EngineError::Source(loaded.problems));
            }
            loaded.migrations
        } else {
            vec![source::load_file(path).map_err(EngineError::Source)?]
        };
        let mut opts = options(config);
        if let Some(conn) = &conn {
            opts.facts = Some(server_facts(&config.project_dir, conn, &migrations).await?);
        }
        let all: HashSet<usize> = (0..migrations.len()).collect();
        let report = lint::lint_migrations(&migrations, &all, &opts);
        total.files += report.files;
        total.statements += report.statements;
        total.findings.extend(report.findings);
    }
    Ok(total)
}

async fn server_facts(
    project_dir: &Path,
    conn: &Connection,
    migrations: &[Migration],
) -> Result<ServerFacts, EngineError> {
    let mut facts = ServerFacts::default();
    // A parent's size is its own plus every partition's and child's
    // (`Tables::total`). Bare names resolve through the search path, first
    // schema first, as PostgreSQL resolves them; `public` last for
    // sessions whose path lacks it.
    let all = catalog::tables(conn, true).await?;
    let mut path = all.search_path.clone();
    path.push("public".to_owned());
    let totals = all.totals();
    for t in &all.tables {
        let (rows, bytes) = totals.get(&t.oid).copied().unwrap_or((0, 0));
        facts.tables.insert(
            format!("{}.{}", t.schema, t.name),
            TableStats { rows, bytes },
        );
    }
    for schema in &path {
        for t in all.tables.iter().filter(|t| &t.schema == schema) {
            if let Some(stats) = facts
                .tables
                .get(&format!("{}.{}", t.schema, t.name))
                .copied()
            {
                facts.tables.entry(t.name.clone()).or_insert(stats);
            }
        }
    }
    let version = catalog::server_version_num(conn).await?;
    facts.major_version = Some((version / 10_000) as u32);
    facts.volatility = catalog::volatility(conn, &called_functions(migrations)).await?;
    facts.rewrite_bytes_per_sec = rewrite_rate(project_dir, conn, version).await;
    Ok(facts)
}

/// Every function name called in the migrations' defaults and expressions,
/// cheaply over-approximated from the text: volatility lookups are one query.
fn called_functions(migrations: &[Migration]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in migrations {
        let text = m.up.text.to_ascii_lowercase();
        let bytes = text.as_bytes();
        for (i, _) in text.match_indices('(') {
            let mut start = i;
            while start > 0
                && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_')
            {
                start -= 1;
            }
            if start < i {
                names.push(text[start..i].to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The cached rate for this server, measuring it on first use. `None` when
/// it cannot be measured (read-only replica, no TEMP privilege).
async fn rewrite_rate(project_dir: &Path, conn: &Connection, version: i32) -> Option<f64> {
    let file = project_dir.join(".strata").join("rates.json");
    let key = format!("{} v{version}", conn.server_key());
    let mut cache: BTreeMap<String, f64> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(rate) = cache.get(&key) {
        return Some(*rate);
    }
    match catalog::measure_rewrite_rate(conn).await {
        Ok(rate) => {
            cache.insert(key, rate);
            let _ = std::fs::create_dir_all(file.parent().unwrap_or(project_dir));
            let _ = std::fs::write(
                &file,
                serde_json::to_string_pretty(&cache).unwrap_or_default(),
            );
            Some(rate)
        }
        Err(e) => {
            tracing::info!(
                "cannot measure the rewrite rate, so findings carry no duration estimate: {e}"
            );
            None
        }
    }
}
