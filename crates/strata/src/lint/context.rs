//! The lint driver: walks migrations in order, replays the schema, tracks
//! transaction state, runs every enabled rule on every statement, then
//! applies `-- strata:allow` directives, project overrides and table sizes.

use std::collections::{HashMap, HashSet};

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use super::rules::{self, RULES};
use super::schema::{self, Schema};
use super::{ast, Finding, LintReport, Lock, Risk, ServerFacts};
use crate::source::{Directive, Migration, Script, SourceProblem, Sql};
use crate::sql::{self, RunMode, Statement, TransactionBehavior};

/// The newest PostgreSQL major version the rules know about.
pub const NEWEST_PG: u32 = 18;

/// What shapes a lint run.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// The target server's major version (connected: the real one; else
    /// `pg_version` from strata.toml, default [`NEWEST_PG`]).
    pub pg_version: u32,
    /// Rule ids switched off by the project.
    pub disabled: HashSet<String>,
    /// Risk overrides by rule id.
    pub risk_overrides: HashMap<String, Risk>,
    /// The SQL will be run by another tool, not Strata's engine (which sets
    /// lock_timeout and statement_timeout itself).
    pub external_runner: bool,
    /// Facts from the connected server, when connected.
    pub facts: Option<ServerFacts>,
    /// The reported migrations run together, in order (`up`, `status`):
    /// a table created by an earlier one of them is new for the rest of
    /// the run, unless the connected server already has a table of that
    /// name. A bootstrap of an empty database is then judged like one big
    /// migration, where nobody can be using what was just created. Off for
    /// offline `lint`, which does not know what is pending.
    pub run_is_pending: bool,
    /// The layout the migrations are written in, when known: with
    /// `external_runner`, its own tool's transaction rules apply, and
    /// advice names its own way to run a file outside a transaction.
    pub layout: Option<crate::source::Format>,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: NEWEST_PG,
            disabled: HashSet::new(),
            risk_overrides: HashMap::new(),
            external_runner: false,
            facts: None,
            run_is_pending: false,
            layout: None,
        }
    }
}

/// Facts about the transaction a statement runs in, gathered from the
/// statements before it.
#[derive(Debug, Clone, Default)]
pub struct TxState {
    /// The first ACCESS EXCLUSIVE lock on an existing table: (table, line).
    pub access_exclusive: Option<(String, usize)>,
    /// Constraints added NOT VALID in this transaction: (table, name).
    pub not_valid: Vec<(String, String)>,
    /// ALTER TABLE statements in this transaction: (table, line).
    pub altered: Vec<(String, usize)>,
    /// `SET lock_timeout` seen (in the script, for external runners).
    pub lock_timeout_set: bool,
    /// `SET statement_timeout` seen.
    pub statement_timeout_set: bool,
    /// `SET [LOCAL] TimeZone` to a zone at UTC offset 0 ran in this
    /// transaction (`timestamp` ↔ `timestamptz` is then metadata-only).
    pub utc_time_zone: bool,
    /// UNIQUE / PRIMARY KEY constraints dropped in this transaction, by
    /// table key. Until COMMIT nobody else can write, so their columns are
    /// still free of duplicates.
    pub dropped_unique_keys: HashMap<String, Vec<DroppedKey>>,
}

/// A UNIQUE / PRIMARY KEY constraint dropped in the current transaction.
#[derive(Debug, Clone)]
pub struct DroppedKey {
    /// Its columns, sorted.
    pub columns: Vec<String>,
    /// It was the primary key.
    pub primary: bool,
    /// Line and column of the DROP statement (in the script's text).
    pub at: (usize, usize),
}

/// Everything a rule may look at for one statement.
pub struct StmtCtx<'a> {
    /// The statement's parse tree.
    pub node: &'a NodeEnum,
    /// The statement.
    pub stmt: &'a Statement,
    /// The schema before this statement.
    pub schema: &'a Schema,
    /// Tables created earlier in this migration (schema keys).
    pub created: &'a HashSet<String>,
    /// Whether the statement runs inside a transaction block.
    pub in_transaction: bool,
    /// Whether that block was opened by the file's own BEGIN.
    pub explicit_transaction: bool,
    /// Facts about the transaction so far.
    pub tx: &'a TxState,
    /// Options.
    pub options: &'a LintOptions,
    /// Whether the file has a statement before this one (for file-level checks).
    pub index: usize,
}

impl StmtCtx<'_> {
    /// True when the table existed before this migration: it was not
    /// created earlier in the same migration.
    pub fn is_existing(&self, table: &str) -> bool {
        !self.created.contains(&schema::key(table))
    }

    /// The table an index is on: from the replayed history, else from the
    /// connected server.
    pub fn index_table(&self, index: &str) -> Option<String> {
        self.schema
            .index_table(index)
            .or_else(|| self.options.facts.as_ref()?.index_table(index))
            .map(str::to_owned)
    }

    /// The target's major version.
    pub fn pg_version(&self) -> u32 {
        self.options
            .facts
            .as_ref()
            .and_then(|f| f.major_version)
            .unwrap_or(self.options.pg_version)
    }

    /// A function's volatility: as the migrations declared it (a function
    /// they created), else from the connected catalogue, else from the
    /// built-in list of well-known functions and PostgreSQL's own catalogue
    /// ([`super::builtins`]). `None`: unknown.
    pub fn volatility(&self, function: &str) -> Option<char> {
        if let Some(v) = self.schema.functions.get(function) {
            return Some(*v);
        }
        if let Some(v) = self
            .options
            .facts
            .as_ref()
            .and_then(|f| f.volatility.get(function))
        {
            return Some(*v);
        }
        match function {
            "random" | "gen_random_uuid" | "uuid_generate_v1" | "uuid_generate_v1mc"
            | "uuid_generate_v4" | "clock_timestamp" | "timeofday" | "nextval"
            | "random_normal" | "uuidv4" | "uuidv7" | "setval" | "txid_current"
            | "pg_current_xact_id" => Some('v'),
            "now"
            | "statement_timestamp"
            | "transaction_timestamp"
            | "current_timestamp"
            | "current_date"
            | "localtimestamp"
            | "to_char"
            | "current_setting" => Some('s'),
            _ => super::builtins::non_volatile(function),
        }
    }
}

/// The table-level lock a statement takes and on which table, when it is
/// one of the statements the rules care about.
pub fn table_lock(node: &NodeEnum) -> Option<(Lock, String)> {
    match node {
        NodeEnum::AlterTableStmt(_) => {
            let (table, cmds) = ast::alter_table(node)?;
            let lock = cmds
                .iter()
                .map(|cmd| {
                    let detach_concurrently = ast::is(cmd, AlterTableType::AtDetachPartition)
                        && matches!(cmd.def.as_deref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent);
                    if detach_concurrently
                        || ast::is(cmd, AlterTableType::AtValidateConstraint)
                        || ast::is(cmd, AlterTableType::AtSetStatistics)
                        || ast::is(cmd, AlterTableType::AtAttachPartition)
                    {
                        Lock::ShareUpdateExclusive
                    } else if ast::is(cmd, AlterTableType::AtAddConstraint)
                        && ast::constraint(cmd).is_some_and(|c| ast::constr_is(c, ConstrType::ConstrForeign))
                    {
                        Lock::ShareRowExclusive
                    } else {
                        Lock::AccessExclusive
                    }
                })
                .max()?;
            Some((lock, table))
        }
        NodeEnum::IndexStmt(i) => {
            let table = ast::relation(i.relation.as_ref()?);
            Some((
                if i.concurrent {
                    Lock::ShareUpdateExclusive
                } else {
                    Lock::Share
                },
                table,
            ))
        }
        NodeEnum::CreateTrigStmt(t) => {
            Some((Lock::ShareRowExclusive, ast::relation(t.relation.as_ref()?)))
        }
        NodeEnum::TruncateStmt(t) => {
            let first = t.relations.first()?;
            match &first.node {
                Some(NodeEnum::RangeVar(rv)) => Some((Lock::AccessExclusive, ast::relation(rv))),
                _ => None,
            }
        }
        NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            let name = d.objects.first().and_then(|o| match &o.node {
                Some(NodeEnum::List(l)) => Some(ast::name(&l.items)),
                _ => None,
            })?;
            Some((Lock::AccessExclusive, name))
        }
        NodeEnum::RenameStmt(r) => {
            Some((Lock::AccessExclusive, ast::relation(r.relation.as_ref()?)))
        }
        NodeEnum::VacuumStmt(v)
            if v.is_vacuumcmd
                && v.options.iter().any(
                    |o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "full"),
                ) =>
        {
            let rel = v.rels.first().and_then(|r| match &r.node {
                Some(NodeEnum::VacuumRelation(vr)) => vr.relation.as_ref().map(ast::relation),
                _ => None,
            })?;
            Some((Lock::AccessExclusive, rel))
        }
        NodeEnum::ClusterStmt(c) => {
            Some((Lock::AccessExclusive, ast::relation(c.relation.as_ref()?)))
        }
        _ => None,
    }
}

/// [`table_lock`], and for `DROP INDEX` (without CONCURRENTLY) the ACCESS
/// EXCLUSIVE lock on the index's table, resolved from the replayed history
/// or, for indexes the migrations did not create, the connected server.
pub fn locked_table(
    node: &NodeEnum,
    schema: &Schema,
    facts: Option<&ServerFacts>,
) -> Option<(Lock, String)> {
    match node {
        NodeEnum::DropStmt(d)
            if d.remove_type == ObjectType::ObjectIndex as i32 && !d.concurrent =>
        {
            d.objects.iter().find_map(|o| {
                let Some(NodeEnum::List(l)) = &o.node else {
                    return None;
                };
                let index = ast::name(&l.items);
                let table = schema
                    .index_table(&index)
                    .map(str::to_owned)
                    .or_else(|| facts?.index_table(&index).map(str::to_owned))?;
                Some((Lock::AccessExclusive, table))
            })
        }
        _ => table_lock(node),
    }
}

/// Lints `migrations` (all of them, in run order, so the schema replay sees
/// everything); findings are reported only for those whose index is in
/// `report`.
///
/// A text released past the loading budget is read again here, one file
/// at a time; a file that changed since it was loaded is the error.
pub fn lint_migrations(
    migrations: &[Migration],
    report: &HashSet<usize>,
    options: &LintOptions,
) -> Result<LintReport, SourceProblem> {
    lint_parsed(migrations, report, options, &|_| None)
}

/// [`lint_migrations`] with the statements the caller already parsed:
/// `parsed(i)` gives migration `i`'s up statements, or `None` for lint to
/// split it (and drop it after use). A run parses each file once and hands
/// the same statements to lint, estimates, rewrites and apply.
pub fn lint_parsed<'p>(
    migrations: &[Migration],
    report: &HashSet<usize>,
    options: &LintOptions,
    parsed: &'p dyn Fn(usize) -> Option<&'p [Statement]>,
) -> Result<LintReport, SourceProblem> {
    let mut schema = Schema::default();
    let mut out = LintReport::default();
    // What earlier migrations of this run created (see `NewObjects`).
    let mut new = NewObjects::default();
    for (i, m) in migrations.iter().enumerate() {
        let wanted = report.contains(&i);
        let given = parsed(i);
        let is_plan = m.kind == crate::source::MigrationKind::Plan;
        // The text: for the findings' lines and allows, and to split a
        // file the caller did not parse. A replayed file the caller parsed
        // needs only its statements.
        let text = if wanted || (given.is_none() && !is_plan) {
            Some(m.up.load()?)
        } else {
            None
        };
        let split;
        let statements = match (given, &text) {
            (Some(statements), _) => Ok(statements),
            // A plan's TOML is not SQL: the engine hands over its compiled
            // statements (`engine::phases::lint_statements`), else nothing.
            _ if is_plan => Ok(&[][..]),
            (None, Some(sql)) => {
                // Rules judge a `-- strata:backfill` statement as batched;
                // a misplaced one is `validate`'s and `up`'s to report.
                split = sql::split(sql.text(), &m.up.blocks).map(|mut statements| {
                    let _ = crate::source::mark_backfills(sql, &mut statements);
                    statements
                });
                split.as_deref().map_err(Clone::clone)
            }
            (None, None) => Ok(&[][..]),
        };
        match (statements, &text) {
            (Ok(statements), Some(sql)) if wanted => {
                out.files += 1;
                out.statements += statements.len();
                out.findings
                    .extend(lint_script(sql, statements, &mut schema, options, &mut new));
                if options.run_is_pending {
                    // A table the server already has is not new, even
                    // if a migration of the run dropped and re-created
                    // it: somebody may be using it.
                    let added = std::mem::take(&mut new.added);
                    if let Some(facts) = &options.facts {
                        for k in added.iter().filter(|k| facts.table(k).is_some()) {
                            new.tables.remove(k);
                        }
                    }
                } else {
                    new = NewObjects::default();
                }
            }
            (Ok(statements), _) => {
                for s in statements {
                    for n in s.nodes().iter().filter_map(|n| n.node.as_ref()) {
                        schema.apply(n);
                    }
                }
            }
            (Err(error), Some(sql)) if wanted => {
                out.files += 1;
                let (line, column) = match &error {
                    sql::SqlError::Syntax { line, column, .. } => (*line, *column),
                    other => (other.line(), 1),
                };
                let mut f = Finding::new(&rules::syntax_error::META, error.to_string());
                f.file = m.up.path.clone();
                f.line = m.up.first_line + line - 1;
                f.column = column;
                f.source_line = sql.text().lines().nth(line - 1).unwrap_or("").to_owned();
                out.findings.push(f);
            }
            (Err(_), _) => {}
        }
    }
    Ok(out)
}

/// How the script runs. Strata's runner takes a file with a CONCURRENTLY
/// statement (or a no-transaction directive) out of its transaction; the
/// tool of a layout that wraps every migration in one (diesel, goose, sqlx,
/// dbmate) does so only when its own directive says so. With
/// `external_runner`, that tool runs the file: judge it as it will run.
fn run_mode(script: &Script, statements: &[Statement], options: &LintOptions) -> RunMode {
    let directive = script.no_transaction.as_ref();
    let tool = options
        .layout
        .filter(|l| options.external_runner && l.tool_wraps_in_transaction());
    if tool.is_some() && !statements.iter().any(|s| s.transaction.is_control()) {
        return match directive.filter(|d| !d.is_strata_directive()) {
            Some(d) => RunMode::NoTransaction(d.source.clone()),
            None => RunMode::Transaction,
        };
    }
    RunMode::of(
        directive.map(|d| d.source.clone()),
        script.first_line,
        statements,
    )
}

fn lint_script(
    script: &Sql<'_>,
    statements: &[Statement],
    schema: &mut Schema,
    options: &LintOptions,
    new: &mut NewObjects,
) -> Vec<Finding> {
    let mode = run_mode(script, statements, options);
    let mut tx = TxState::default();
    let mut depth = 0usize;
    let mut findings: Vec<(usize, Finding)> = Vec::new();
    // DROP CONSTRAINTs of unique keys that the same transaction re-added
    // on the same columns: (line, column) of the DROP, table, columns.
    let mut swaps: HashSet<(usize, usize, String, Vec<String>)> = HashSet::new();
    // Findings about objects new in this run: (rule, line, column).
    let mut lowered: HashMap<(&'static str, usize, usize), &str> = HashMap::new();
    // Rules judged over several statements, with what they need to know of
    // each: whether a scan or rewrite rule flagged it ("heavy").
    let mut span = rules::ban_statements_after_access_exclusive::Span::default();
    let mut alters = rules::prefer_single_alter::Alters::default();
    let span_on = !options
        .disabled
        .contains(rules::ban_statements_after_access_exclusive::META.id);
    // The statements a DO block runs are checked like the file's own, right
    // after the DO; they keep its index, so an allow above the DO covers them.
    let expanded = statements.iter().enumerate().flat_map(|(index, stmt)| {
        std::iter::once((index, std::borrow::Cow::Borrowed(stmt))).chain(
            crate::sql::do_block_statements(stmt)
                .into_iter()
                .map(move |inner| (index, std::borrow::Cow::Owned(inner))),
        )
    });
    for (index, stmt) in expanded {
        let stmt: &Statement = &stmt;
        let mut explicit = depth > 0;
        match stmt.transaction {
            TransactionBehavior::Begin => {
                explicit = depth > 0;
                depth += 1;
            }
            TransactionBehavior::Commit | TransactionBehavior::Rollback => {
                depth = 0;
            }
            _ => {}
        }
        let in_transaction = match mode {
            RunMode::Transaction => true,
            RunMode::NoTransaction(_) => false,
            RunMode::AsWritten => {
                explicit || stmt.transaction == TransactionBehavior::Begin && depth > 1
            }
        };
        if !in_transaction && !explicit {
            // Each statement is its own transaction.
            close_span(&mut span, script, options, &mut lowered, &mut findings);
            alters.end_transaction();
            let keep = (tx.lock_timeout_set, tx.statement_timeout_set);
            tx = TxState {
                lock_timeout_set: keep.0,
                statement_timeout_set: keep.1,
                ..TxState::default()
            };
        }
        for node in stmt.nodes().iter().filter_map(|n| n.node.as_ref()) {
            let ctx = StmtCtx {
                node,
                stmt,
                schema,
                created: &new.tables,
                in_transaction,
                explicit_transaction: explicit,
                tx: &tx,
                options,
                index,
            };
            let mut found = Vec::new();
            // Disabled rules run too: whether a statement scans or rewrites
            // must not depend on which findings the project wants to see.
            for rule in RULES {
                rule.check(&ctx, &mut found);
            }
            let heavy = found
                .iter()
                .any(|f| rules::find(f.rule).is_some_and(|r| r.meta().scans));
            let line = script.first_line + stmt.line - 1;
            alters.check(&ctx, heavy, line, &mut found);
            if span_on {
                span.observe(&ctx, heavy, line);
            }
            found.retain(|f| !options.disabled.contains(f.rule));
            let about_new = new.covers(node, options.facts.as_ref());
            for mut f in found {
                let key = (f.rule, line, stmt.column);
                if let Some(why) = lowering(&f, about_new, new, options) {
                    lowered.insert(key, why);
                }
                f.file = script.path.clone();
                f.line = script.first_line + stmt.line - 1;
                f.column = stmt.column;
                f.source_line = stmt.sql.lines().next().unwrap_or("").to_owned();
                findings.push((index, f));
            }
            let had_lock = tx.access_exclusive.is_some();
            observe(&mut tx, node, stmt, new, schema, options.facts.as_ref());
            observe_unique_swap(&mut tx, node, stmt, schema, &mut swaps);
            if let (false, true, Some((table, _))) =
                (had_lock, in_transaction, &tx.access_exclusive)
            {
                let first = stmt.sql.lines().next().unwrap_or("");
                span.start(table, index, line, stmt.column, first, explicit);
            }
            new.track(node);
            schema.apply(node);
        }
        if let Some(why) = &stmt.unparsed {
            let mut f = Finding::new(
                &rules::unanalysed_statement::META,
                format!("statement not analysed: {why}; it runs as written"),
            );
            // A statement that may lock or lose data goes unchecked (and
            // unseen by the backup decision): worth more than a note.
            let verb = stmt
                .sql
                .split(|c: char| !c.is_ascii_alphabetic())
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(
                verb.as_str(),
                "ALTER" | "DROP" | "DELETE" | "UPDATE" | "TRUNCATE" | "CREATE" | "MERGE"
            ) {
                f.risk = Risk::Medium;
                f.message.push_str(
                    " (it may take locks or lose data that no rule and no automatic backup looked at)",
                );
            }
            f.file = script.path.clone();
            f.line = script.first_line + stmt.line - 1;
            f.column = stmt.column;
            f.source_line = stmt.sql.lines().next().unwrap_or("").to_owned();
            findings.push((index, f));
        }
        if matches!(
            stmt.transaction,
            TransactionBehavior::Commit | TransactionBehavior::Rollback
        ) {
            close_span(&mut span, script, options, &mut lowered, &mut findings);
            alters.end_transaction();
            tx = TxState {
                lock_timeout_set: tx.lock_timeout_set,
                statement_timeout_set: tx.statement_timeout_set,
                ..TxState::default()
            };
        }
    }
    close_span(&mut span, script, options, &mut lowered, &mut findings);
    // A unique key replaced by one on the same columns in the same
    // transaction keeps its guarantee.
    findings.retain(|(_, f)| {
        f.rule != rules::ban_drop_constraint::META.id || f.columns.is_empty() || {
            let mut cols = f.columns.clone();
            cols.sort();
            let table = f.table.as_deref().map(schema::key).unwrap_or_default();
            let at = (f.line + 1 - script.first_line, f.column);
            !swaps.contains(&(at.0, at.1, table, cols))
        }
    });
    // A foreign key is covered if an index on its columns exists by the end
    // of the migration (indexes usually follow the CREATE TABLE).
    findings.retain(|(_, f)| {
        f.rule != rules::require_fk_covering_index::META.id
            || !f
                .table
                .as_ref()
                .and_then(|t| schema.table(t))
                .is_some_and(|t| {
                    t.indexes.iter().any(|idx| {
                        idx.len() >= f.columns.len() && idx[..f.columns.len()] == f.columns[..]
                    })
                })
    });
    if !options
        .disabled
        .contains(rules::ban_self_undoing_migration::META.id)
    {
        if let Some((index, mut f)) = rules::ban_self_undoing_migration::check_script(statements) {
            let stmt = &statements[index];
            f.file = script.path.clone();
            f.line = script.first_line + stmt.line - 1;
            f.column = stmt.column;
            f.source_line = stmt.sql.lines().next().unwrap_or("").to_owned();
            findings.push((index, f));
        }
    }
    // The one balance check (sql::balance), as `validate` and the runner.
    let unclosed = crate::sql::balance::imbalances(statements)
        .into_iter()
        .find(|(_, what)| *what == crate::sql::balance::Imbalance::Unclosed);
    if let Some((begin, _)) = unclosed {
        let begin = &statements[begin];
        {
            let mut f = Finding::new(&rules::ban_unbalanced_transaction::META, "BEGIN without a matching COMMIT: the migration ends inside an open transaction, and everything after BEGIN is rolled back when the session ends")
                .fix("COMMIT;");
            f.file = script.path.clone();
            f.line = script.first_line + begin.line - 1;
            f.column = begin.column;
            f.source_line = begin.sql.clone();
            findings.push((statements.len(), f));
        }
    }
    let mut findings = apply_allows(script, statements, findings);
    for f in &mut findings {
        if let Some(risk) = options.risk_overrides.get(f.rule) {
            f.risk = *risk;
        }
        if let Some(facts) = &options.facts {
            size_adjust(f, facts);
        }
        // Last, so no override raises it again: nobody can be using what
        // this run created, so its locks, rewrites and losses hurt no one.
        // Hygiene rules (LOW by default: types, names) keep the project's
        // override: they matter as much for a new table.
        let hygiene = !RULES
            .iter()
            .any(|r| r.meta().id == f.rule && r.meta().risk != Risk::Low);
        if let Some(why) = lowered
            .get(&(f.rule, f.line, f.column))
            .filter(|_| !hygiene)
        {
            if f.risk > Risk::Low {
                f.risk = Risk::Low;
                f.message.push_str(&format!(" ({why})"));
            }
        }
    }
    findings
}

/// Why a finding is about something nobody uses yet (it is then lowered to
/// LOW at the end): created earlier in this migration (offline) or run
/// (`up`, `status`), the same facts for both, so `lint` and `up` agree; or,
/// in a run of pending migrations, absent from the server (only a run
/// knows that such a table is not simply created by a migration it skips).
fn lowering(
    f: &Finding,
    about_new: bool,
    new: &NewObjects,
    options: &LintOptions,
) -> Option<&'static str> {
    let table = f.table.as_ref();
    if about_new || table.is_some_and(|t| new.tables.contains(&schema::key(t))) {
        Some(if options.run_is_pending {
            "created earlier in this run: nobody uses it yet"
        } else {
            "created earlier in this migration: nobody uses it yet"
        })
    } else if !options.run_is_pending {
        None
    } else if table.is_some_and(|t| absent_from_server(t, options.facts.as_ref())) {
        Some("not in the database when the run starts: nobody uses it")
    } else {
        None
    }
}

/// Ends the lock span of `ban-statements-after-access-exclusive` (the
/// transaction ended): its finding, if any, joins the others.
fn close_span(
    span: &mut rules::ban_statements_after_access_exclusive::Span,
    script: &Script,
    options: &LintOptions,
    lowered: &mut HashMap<(&'static str, usize, usize), &str>,
    findings: &mut Vec<(usize, Finding)>,
) {
    if let Some((index, f)) = span.close(script, options.layout) {
        // The table existed when the lock was taken (see `observe`); a
        // table of that name created since (DROP, then CREATE ... AS) does
        // not make the lock harmless.
        if let Some(why) = lowering(&f, false, &NewObjects::default(), options) {
            lowered.insert((f.rule, f.line, f.column), why);
        }
        findings.push((index, f));
    }
}

/// True when the connected server has no table of that name in any schema
/// (`DROP TABLE IF EXISTS schema_migrations` of another tool's leftovers):
/// such a statement is a no-op, fails, or acts on something this run made
/// where we cannot see it (a DO block's EXECUTE). Any schema, because a
/// migration's own `SET search_path` may resolve a bare name elsewhere.
fn absent_from_server(table: &str, facts: Option<&ServerFacts>) -> bool {
    let Some(facts) = facts else { return false };
    let base = crate::sql::names::base_name(table);
    !facts
        .tables
        .keys()
        .any(|k| crate::sql::names::base_name(k) == base)
}

/// Objects that did not exist before the run (or, offline, before the
/// migration) and that a statement of it created: nobody can be using
/// them yet. Names are schema keys (`schema::key`).
#[derive(Debug, Clone, Default)]
pub struct NewObjects {
    /// Tables and materialized views.
    pub tables: HashSet<String>,
    /// Indexes created on new tables, their primary keys' included.
    pub indexes: HashSet<String>,
    /// Sequences created, by `CREATE SEQUENCE` or a new table's serial column.
    pub sequences: HashSet<String>,
    /// Types created (enums, composites, domains).
    pub types: HashSet<String>,
    /// Schemas created.
    pub schemas: HashSet<String>,
    /// Tables added to `tables` since the driver last looked: only these
    /// need checking against the server after a migration, so a run of
    /// many migrations does not re-check every earlier table each time.
    pub added: Vec<String>,
}

impl NewObjects {
    fn add_table(&mut self, key: String) {
        self.added.push(key.clone());
        self.tables.insert(key);
    }

    /// Records what `node` creates; a new table stays new under a new name.
    fn track(&mut self, node: &NodeEnum) {
        let in_schema = |rv: &pg_query::protobuf::RangeVar, name: &str| {
            ast::relation(&pg_query::protobuf::RangeVar {
                relname: name.to_owned(),
                ..rv.clone()
            })
        };
        match node {
            NodeEnum::CreateStmt(c) => {
                let Some(rv) = &c.relation else { return };
                self.add_table(schema::key(&ast::relation(rv)));
                self.indexes
                    .insert(schema::key(&in_schema(rv, &format!("{}_pkey", rv.relname))));
                for elt in &c.table_elts {
                    if let Some(NodeEnum::Constraint(k)) = &elt.node {
                        self.constraint_index(rv, k);
                    }
                    let Some(NodeEnum::ColumnDef(col)) = &elt.node else {
                        continue;
                    };
                    self.column_indexes(rv, col);
                    let serial = col.type_name.as_ref().is_some_and(|t| {
                        ast::strings(&t.names).last().is_some_and(|n| {
                            matches!(
                                n.as_str(),
                                "serial"
                                    | "serial4"
                                    | "bigserial"
                                    | "serial8"
                                    | "smallserial"
                                    | "serial2"
                            )
                        })
                    });
                    if serial {
                        let seq = format!("{}_{}_seq", rv.relname, col.colname);
                        self.sequences.insert(schema::key(&in_schema(rv, &seq)));
                    }
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let Some(rv) = &a.relation else { return };
                if !self.tables.contains(&schema::key(&ast::relation(rv))) {
                    return;
                }
                for cmd in ast::alter_table(node).map(|(_, c)| c).unwrap_or_default() {
                    if let Some(k) = ast::constraint(cmd) {
                        self.constraint_index(rv, k);
                    }
                    if let Some(NodeEnum::ColumnDef(col)) =
                        cmd.def.as_deref().and_then(|d| d.node.as_ref())
                    {
                        self.column_indexes(rv, col);
                    }
                }
            }
            NodeEnum::CreateSeqStmt(c) => {
                if let Some(rv) = &c.sequence {
                    self.sequences.insert(schema::key(&ast::relation(rv)));
                }
            }
            NodeEnum::CreateTableAsStmt(c) => {
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.add_table(schema::key(&ast::relation(rv)));
                }
            }
            // `SELECT … INTO t` creates t, like CREATE TABLE AS.
            NodeEnum::SelectStmt(s) => {
                if let Some(rv) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.add_table(schema::key(&ast::relation(rv)));
                }
            }
            NodeEnum::IndexStmt(i) => {
                if let Some(rv) = &i.relation {
                    if self.tables.contains(&schema::key(&ast::relation(rv)))
                        && !i.idxname.is_empty()
                    {
                        self.indexes.insert(schema::key(&in_schema(rv, &i.idxname)));
                    }
                }
            }
            NodeEnum::CreateEnumStmt(e) => {
                self.types.insert(schema::key(&ast::name(&e.type_name)));
            }
            NodeEnum::CompositeTypeStmt(c) => {
                if let Some(rv) = &c.typevar {
                    self.types.insert(schema::key(&ast::relation(rv)));
                }
            }
            NodeEnum::CreateDomainStmt(d) => {
                self.types.insert(schema::key(&ast::name(&d.domainname)));
            }
            NodeEnum::CreateSchemaStmt(c) if !c.if_not_exists => {
                self.schemas.insert(c.schemaname.clone());
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectTable as i32 => {
                if let Some(rv) = &r.relation {
                    if self.tables.remove(&schema::key(&ast::relation(rv))) {
                        // The new name stays in the old one's schema.
                        self.add_table(schema::key(&in_schema(rv, &r.newname)));
                    }
                }
            }
            NodeEnum::RenameStmt(r)
                if r.rename_type == ObjectType::ObjectIndex as i32
                    || r.rename_type == ObjectType::ObjectSequence as i32 =>
            {
                let set = if r.rename_type == ObjectType::ObjectIndex as i32 {
                    &mut self.indexes
                } else {
                    &mut self.sequences
                };
                if let Some(rv) = &r.relation {
                    if set.remove(&schema::key(&ast::relation(rv))) {
                        set.insert(schema::key(&in_schema(rv, &r.newname)));
                    }
                }
            }
            _ => {}
        }
    }

    /// A named constraint of a new table may own an index of that name
    /// (UNIQUE, PRIMARY KEY, EXCLUDE): new too.
    fn constraint_index(
        &mut self,
        table: &pg_query::protobuf::RangeVar,
        c: &pg_query::protobuf::Constraint,
    ) {
        let keys = ast::strings(&c.keys);
        let default = if ast::constr_is(c, ConstrType::ConstrUnique) && !keys.is_empty() {
            crate::sql::names::object_name(
                &table.relname,
                Some(&crate::sql::names::name_addition(&keys)),
                "key",
            )
        } else {
            String::new()
        };
        let name = if c.conname.is_empty() {
            &default
        } else {
            &c.conname
        };
        for name in [name, &c.indexname] {
            if !name.is_empty() {
                let idx = ast::relation(&pg_query::protobuf::RangeVar {
                    relname: name.clone(),
                    ..table.clone()
                });
                self.indexes.insert(schema::key(&idx));
            }
        }
    }

    /// The indexes a column's own UNIQUE or PRIMARY KEY creates, named as
    /// PostgreSQL names them.
    fn column_indexes(
        &mut self,
        table: &pg_query::protobuf::RangeVar,
        col: &pg_query::protobuf::ColumnDef,
    ) {
        for k in col.constraints.iter().filter_map(|c| match &c.node {
            Some(NodeEnum::Constraint(k)) => Some(k),
            _ => None,
        }) {
            let name = if !k.conname.is_empty() {
                k.conname.clone()
            } else if ast::constr_is(k, ConstrType::ConstrUnique) {
                crate::sql::names::object_name(&table.relname, Some(&col.colname), "key")
            } else if ast::constr_is(k, ConstrType::ConstrPrimary) {
                crate::sql::names::object_name(&table.relname, None, "pkey")
            } else {
                continue;
            };
            let idx = ast::relation(&pg_query::protobuf::RangeVar {
                relname: name,
                ..table.clone()
            });
            self.indexes.insert(schema::key(&idx));
        }
    }

    /// True when every object `node` acts on (an index, a type, a schema)
    /// is new. Statements on tables are judged by their findings' table.
    ///
    /// A schema the connected server holds no table in loses no data when
    /// dropped (`DROP SCHEMA IF EXISTS r CASCADE` before creating it anew).
    fn covers(&self, node: &NodeEnum, facts: Option<&ServerFacts>) -> bool {
        let no_table_in = |name: &str| {
            let prefix = format!("{}.", crate::sql::names::quote_ident(name));
            facts.is_some_and(|f| !f.tables.keys().any(|k| k.starts_with(&prefix)))
        };
        let names = |objects: &[pg_query::protobuf::Node]| -> Vec<String> {
            objects
                .iter()
                .map(|o| match &o.node {
                    Some(NodeEnum::List(l)) => ast::name(&l.items),
                    Some(NodeEnum::String(s)) => s.sval.clone(),
                    _ => String::new(),
                })
                .collect()
        };
        match node {
            NodeEnum::DropStmt(d) if !d.objects.is_empty() => {
                let all = |set: &HashSet<String>| {
                    names(&d.objects)
                        .iter()
                        .all(|n| set.contains(&schema::key(n)))
                };
                match ObjectType::try_from(d.remove_type) {
                    Ok(ObjectType::ObjectIndex) => all(&self.indexes),
                    Ok(ObjectType::ObjectSchema) => names(&d.objects)
                        .iter()
                        .all(|n| self.schemas.contains(n) || no_table_in(n)),
                    Ok(ObjectType::ObjectType) | Ok(ObjectType::ObjectDomain) => all(&self.types),
                    _ => false,
                }
            }
            NodeEnum::AlterEnumStmt(e) => {
                self.types.contains(&schema::key(&ast::name(&e.type_name)))
            }
            _ => false,
        }
    }
}

/// Updates transaction facts after a statement.
fn observe(
    tx: &mut TxState,
    node: &NodeEnum,
    stmt: &Statement,
    new: &NewObjects,
    schema: &Schema,
    facts: Option<&ServerFacts>,
) {
    if let Some((lock, table)) = locked_table(node, schema, facts) {
        let key = schema::key(&table);
        if lock == Lock::AccessExclusive
            && tx.access_exclusive.is_none()
            && !new.tables.contains(&key)
            && !new.indexes.contains(&key)
            && !new.sequences.contains(&key)
        {
            tx.access_exclusive = Some((table.clone(), stmt.line));
        }
    }
    if let Some((table, cmds)) = ast::alter_table(node) {
        tx.altered.push((table.clone(), stmt.line));
        for cmd in cmds {
            if let Some(c) = ast::constraint(cmd).filter(|c| c.skip_validation) {
                tx.not_valid.push((schema::key(&table), c.conname.clone()));
            }
        }
    }
    if let NodeEnum::VariableSetStmt(set) = node {
        match set.name.as_str() {
            "lock_timeout" => tx.lock_timeout_set = true,
            "statement_timeout" => tx.statement_timeout_set = true,
            "timezone" => tx.utc_time_zone = is_utc(set),
            _ => {}
        }
    }
}

/// Records the UNIQUE / PRIMARY KEY constraints a statement drops, and
/// (into `swaps`) the drops that a UNIQUE / PRIMARY KEY on the same columns
/// replaces in the same transaction (a primary key only by a primary key).
/// Runs before the statement's schema effect, so the dropped constraint's
/// columns are still known.
fn observe_unique_swap(
    tx: &mut TxState,
    node: &NodeEnum,
    stmt: &Statement,
    schema: &Schema,
    swaps: &mut HashSet<(usize, usize, String, Vec<String>)>,
) {
    let Some((table, cmds)) = ast::alter_table(node) else {
        return;
    };
    let key = schema::key(&table);
    for cmd in cmds
        .iter()
        .filter(|c| ast::is(c, AlterTableType::AtDropConstraint))
    {
        if let Some((cols, primary)) = schema.unique_key(&table, &cmd.name) {
            let mut cols = cols.clone();
            cols.sort();
            tx.dropped_unique_keys
                .entry(key.clone())
                .or_default()
                .push(DroppedKey {
                    columns: cols,
                    primary,
                    at: (stmt.line, stmt.column),
                });
        }
    }
    for c in cmds
        .iter()
        .filter(|c| ast::is(c, AlterTableType::AtAddConstraint))
        .filter_map(|c| ast::constraint(c))
        .filter(|c| {
            ast::constr_is(c, ConstrType::ConstrPrimary)
                || ast::constr_is(c, ConstrType::ConstrUnique)
        })
    {
        let mut cols = ast::strings(&c.keys);
        cols.sort();
        // A primary key replaced by a mere UNIQUE is still a loss (logical
        // replication, for one, identifies rows by the primary key).
        let primary = ast::constr_is(c, ConstrType::ConstrPrimary);
        for dropped in tx.dropped_unique_keys.get(&key).into_iter().flatten() {
            if dropped.columns == cols && (primary || !dropped.primary) {
                swaps.insert((dropped.at.0, dropped.at.1, key.clone(), cols.clone()));
            }
        }
    }
}

/// True when `SET TimeZone` names a zone PostgreSQL treats as offset 0
/// (`TimestampTimestampTzRequiresRewrite` asks for exactly that).
fn is_utc(set: &pg_query::protobuf::VariableSetStmt) -> bool {
    let [arg] = set.args.as_slice() else {
        return false;
    };
    let Some(NodeEnum::AConst(c)) = &arg.node else {
        return false;
    };
    let Some(pg_query::protobuf::a_const::Val::Sval(s)) = &c.val else {
        return false;
    };
    matches!(
        s.sval.to_ascii_lowercase().as_str(),
        "utc"
            | "etc/utc"
            | "gmt"
            | "etc/gmt"
            | "universal"
            | "etc/universal"
            | "zulu"
            | "etc/zulu"
            | "uct"
            | "etc/uct"
            | "gmt0"
            | "etc/gmt0"
            | "greenwich"
            | "etc/greenwich"
    )
}

/// Marks findings acknowledged by `-- strata:allow` and reports allows that
/// acknowledged nothing.
///
/// An allow applies to the statement right below it. An allow in the
/// file's header (above the first statement and separated from it by a
/// blank line) applies to the whole file.
fn apply_allows(
    script: &Sql<'_>,
    statements: &[Statement],
    findings: Vec<(usize, Finding)>,
) -> Vec<Finding> {
    let lines: Vec<&str> = script.text().lines().collect();
    let mut findings = findings;
    let mut extra = Vec::new();
    for (line, directive) in &script.directives {
        let Directive::Allow { rules: ids, .. } = directive else {
            continue;
        };
        let rel = line + 1 - script.first_line; // 1-based line in the text
        let next = statements.iter().position(|s| s.line > rel);
        let blank_between = next
            .map(|n| {
                lines[rel..statements[n].line - 1]
                    .iter()
                    .any(|l| l.trim().is_empty())
            })
            .unwrap_or(true);
        let file_level = next == Some(0) && blank_between;
        for id in ids {
            let known = RULES.iter().any(|r| r.meta().id == id);
            let mut used = false;
            // Every statement on the line below it: in a plan file, all the
            // statements an operation compiles to sit on its line.
            let next_line = next.and_then(|n| statements.get(n)).map(|s| s.line);
            for (index, f) in findings.iter_mut() {
                let below =
                    next_line.is_some() && statements.get(*index).map(|s| s.line) == next_line;
                if f.rule == id && (file_level || below) {
                    f.allowed = true;
                    used = true;
                }
            }
            if !used {
                let message = if known {
                    format!("`strata:allow {id}` acknowledges nothing: no `{id}` finding on the statement below it")
                } else {
                    format!("`strata:allow {id}` names an unknown rule (see `strata rules`)")
                };
                let mut f = Finding::new(&rules::unused_allow::META, message)
                    .fix(format!("-- remove the line `-- strata:allow {id} ...`"));
                f.file = script.path.clone();
                f.line = *line;
                f.column = 1;
                f.source_line = lines.get(rel - 1).copied().unwrap_or("").to_owned();
                extra.push(f);
            }
        }
    }
    let mut all: Vec<Finding> = findings.into_iter().map(|(_, f)| f).collect();
    all.extend(extra);
    all.sort_by_key(|f| (f.line, f.column));
    all
}

/// Applies table sizes: tiny tables drop one risk level, big ones are at
/// least MEDIUM, and scans and rewrites get a duration estimate.
fn size_adjust(f: &mut Finding, facts: &ServerFacts) {
    let Some(table) = &f.table else { return };
    let stats = facts.table(table);
    let Some(stats) = stats else { return };
    f.table_rows = Some(stats.rows);
    f.table_bytes = Some(stats.bytes);
    let rule = rules::find(f.rule);
    let meta = rule.map(|r| r.meta());
    // Only what locks, scans or rewrites costs more on a big table (see
    // `Rule::sized`); style findings keep their risk on any table.
    if rule.is_some_and(|r| r.sized()) {
        if stats.rows < 1_000 {
            f.risk = f.risk.lower();
        } else if stats.rows > 100_000 {
            f.risk = f.risk.max(Risk::Medium);
        }
    }
    let scans = meta.is_some_and(|m| m.scans);
    if let (true, Some(rate)) = (scans, facts.rewrite_bytes_per_sec) {
        f.estimate_ms = Some(((stats.bytes as f64 / rate) * 1000.0).ceil() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::test_utils::{lint, migration};

    fn run(files: &[&str], pending: bool, facts: Option<ServerFacts>) -> Vec<Finding> {
        let ms: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, t)| migration(&(i + 1).to_string(), t))
            .collect();
        let report: HashSet<usize> = (0..ms.len()).collect();
        let options = LintOptions {
            run_is_pending: pending,
            facts,
            ..LintOptions::default()
        };
        lint_migrations(&ms, &report, &options).unwrap().findings
    }

    fn risk_of(found: &[Finding], rule: &str) -> Option<Risk> {
        found
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.risk)
            .max()
    }

    #[test]
    fn what_an_earlier_migration_of_the_run_created_is_new() {
        let files = [
            "CREATE TABLE t (id bigint PRIMARY KEY, a text UNIQUE, b int);\nCREATE INDEX t_b ON t (b);\nCREATE TYPE mood AS ENUM ('sad');\nCREATE SCHEMA s;\n",
            "ALTER TABLE t RENAME TO u;\nALTER INDEX t_a_key RENAME TO u_a_key;\n",
            "ALTER TABLE u DROP COLUMN b;\nDROP INDEX t_b;\nREINDEX TABLE u;\nALTER TYPE mood RENAME VALUE 'sad' TO 'blue';\nDROP SCHEMA s CASCADE;\n",
        ];
        // Offline lint judges each file alone, as before.
        let alone = run(&files, false, None);
        assert_eq!(risk_of(&alone, "ban-drop-column"), Some(Risk::High));
        // Run together (up, status), nothing is above LOW.
        let together = run(&files, true, None);
        assert!(
            together.iter().all(|f| f.risk == Risk::Low),
            "{together:#?}"
        );
        assert!(
            together
                .iter()
                .any(|f| f.rule == "require-concurrent-index-deletion"
                    && f.message.contains("created earlier in this run")),
            "{together:#?}"
        );
    }

    #[test]
    fn a_table_the_server_has_is_not_new_even_if_the_run_recreates_it() {
        let mut facts = ServerFacts::default();
        facts.tables.insert(
            "public.t".into(),
            crate::lint::TableStats {
                rows: 5_000,
                bytes: 1 << 20,
            },
        );
        facts.tables.insert(
            "t".into(),
            crate::lint::TableStats {
                rows: 5_000,
                bytes: 1 << 20,
            },
        );
        let found = run(
            &[
                "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, a text);\n",
                "ALTER TABLE t DROP COLUMN a;\n",
            ],
            true,
            Some(facts.clone()),
        );
        assert_eq!(risk_of(&found, "ban-drop-column"), Some(Risk::High));
        // Another tool's leftover that the server does not have: nothing to lose.
        let found = run(
            &["DROP TABLE IF EXISTS ghost;\n"],
            true,
            Some(facts.clone()),
        );
        assert_eq!(risk_of(&found, "ban-drop-table"), Some(Risk::Low));
        // A bare name found in any schema may be the one a migration's own
        // search_path reaches: existing.
        facts.tables.insert(
            "app.t".into(),
            crate::lint::TableStats {
                rows: 5_000,
                bytes: 1 << 20,
            },
        );
        facts.tables.remove("t");
        facts.tables.remove("public.t");
        let found = run(
            &["SET search_path = app;\nDROP TABLE t;\n"],
            true,
            Some(facts),
        );
        assert_eq!(risk_of(&found, "ban-drop-table"), Some(Risk::High));
    }

    fn big_and_tiny() -> ServerFacts {
        let mut facts = ServerFacts::default();
        for (name, rows) in [("big", 500_000), ("tiny", 10)] {
            facts.tables.insert(
                name.into(),
                crate::lint::TableStats {
                    rows,
                    bytes: rows * 100,
                },
            );
        }
        facts
    }

    #[test]
    fn size_moves_only_lock_rewrite_and_scan_rules() {
        let found = run(
            &["ALTER TABLE big ADD COLUMN name varchar(20), ADD COLUMN at timestamp, ADD COLUMN n int, ADD COLUMN owner_id int, ADD COLUMN doc json;\nALTER TABLE big ALTER COLUMN n TYPE bigint;\nALTER TABLE tiny ALTER COLUMN x TYPE bigint;\n"],
            false,
            Some(big_and_tiny()),
        );
        for style in [
            "prefer-text",
            "prefer-timestamptz",
            "prefer-bigint",
            "prefer-jsonb",
        ] {
            assert!(
                found.iter().any(|f| f.rule == style),
                "{style} missing: {found:#?}"
            );
            assert!(
                found
                    .iter()
                    .filter(|f| f.rule == style)
                    .all(|f| f.risk == Risk::Low),
                "{style} raised by size: {found:#?}"
            );
        }
        // A rewrite is still judged by size, both ways.
        let rewrites: Vec<_> = found
            .iter()
            .filter(|f| f.rule == "ban-column-type-change")
            .map(|f| (f.table.clone().unwrap_or_default(), f.risk))
            .collect();
        assert!(
            rewrites.contains(&("big".into(), Risk::Medium)),
            "{rewrites:?}"
        );
        assert!(
            rewrites.contains(&("tiny".into(), Risk::Low)),
            "{rewrites:?}"
        );
        for rule in RULES {
            let id = rule.meta().id;
            let style = id.starts_with("prefer-") && id != "prefer-single-alter";
            let compatibility = id.starts_with("ban-rename-") || id == "ban-drop-not-null";
            if style || compatibility || id == "ban-create-trigger-on-existing-table" {
                assert!(!rule.sized(), "{id} is not about a lock, scan or rewrite");
            }
        }
    }

    #[test]
    fn statements_inside_do_blocks_are_checked_at_their_own_line() {
        let found = lint(
            "DO $$\nBEGIN\n  IF EXISTS (SELECT 1 FROM information_schema.columns WHERE column_name = 'themeprops') THEN\n    ALTER TABLE users DROP COLUMN themeprops;\n  END IF;\nEND $$;\n",
        );
        let drop = found
            .iter()
            .find(|f| f.rule == "ban-drop-column")
            .unwrap_or_else(|| panic!("{found:#?}"));
        assert_eq!(drop.line, 4);
        assert_eq!(drop.risk, Risk::High);
    }

    #[test]
    fn a_batched_do_block_is_fine() {
        let found = lint(
            "-- strata:no-transaction\nDO $$\nDECLARE n int;\nBEGIN\n  LOOP\n    UPDATE users SET plan = 'free' WHERE id IN (SELECT id FROM users WHERE plan IS NULL LIMIT 5000);\n    GET DIAGNOSTICS n = ROW_COUNT;\n    COMMIT;\n    EXIT WHEN n = 0;\n  END LOOP;\nEND $$;\n",
        );
        assert!(found.iter().all(|f| f.risk == Risk::Low), "{found:#?}");
    }

    #[test]
    fn an_allow_above_the_do_covers_what_it_runs() {
        let found = lint(
            "-- strata:allow ban-drop-column reason: the column was never read\nDO $$ BEGIN ALTER TABLE users DROP COLUMN legacy; END $$;\n",
        );
        assert!(
            found
                .iter()
                .filter(|f| f.rule == "ban-drop-column")
                .all(|f| f.allowed),
            "{found:#?}"
        );
        assert!(
            !found.iter().any(|f| f.rule == "unused-allow"),
            "{found:#?}"
        );
    }
}
