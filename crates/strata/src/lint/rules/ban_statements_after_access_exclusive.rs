//! `ban-statements-after-access-exclusive`: more work after an ACCESS
//! EXCLUSIVE lock in the same transaction.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-statements-after-access-exclusive",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "statements after an ACCESS EXCLUSIVE lock keep the table blocked until the transaction ends",
    doc: "## What it does
Reports each lock span once: from the statement that takes an ACCESS EXCLUSIVE lock on an existing table to the end of its transaction, when statements run inside the span that take time: DML on existing tables (UPDATE, DELETE, INSERT ... SELECT), DO blocks, maintenance, and DDL that scans or rewrites an existing table (what the scan and rewrite rules flag: a validated constraint, SET NOT NULL, a type change, a non-concurrent index build). The finding sits on the locking statement and lists the statements inside the span.
Not counted: statements on tables created in the same migration; constant `INSERT ... VALUES` into the locked table, a new table, or a table the server says is small (offline, where sizes are unknown, too: a few rows cost the same on any table); and metadata-only DDL (ADD COLUMN without a volatile default, DROP CONSTRAINT, SET/DROP DEFAULT, DROP NOT NULL, renames, COMMENT, NOT VALID constraints, DROP INDEX), which holds the lock for microseconds.

## Why is this bad?
Locks are held until the transaction ends. Whatever runs after the locking statement (a backfill, an index build, a scan of another table) extends the time during which nobody can read or write the locked table.

## Safe rewrite
End the transaction right after the locking statement: move what follows into a migration of its own, or run the migration outside a transaction in the layout's own way, so each statement commits on its own (Strata's layout: `-- strata:no-transaction`; diesel: `run_in_transaction = false` in the migration's metadata.toml; goose: `-- +goose NO TRANSACTION`; sqlx: `-- no-transaction` as the first line; dbmate: `-- migrate:up transaction:false`; Flyway: `executeInTransaction=false` in the script's `.conf` file, with `-- strata:no-transaction` for Strata). A file with its own BEGIN: COMMIT right after the locking statement.

## Example
```sql
-- migration 1
ALTER TABLE users ADD COLUMN plan text;
-- migration 2
UPDATE accounts SET ...;
```",
};

/// See [`META`]. Checked per lock span by the driver ([`Span`]).
pub struct BanStatementsAfterAccessExclusive;

impl Rule for BanStatementsAfterAccessExclusive {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

/// At most this many statements are listed in a finding.
const LISTED: usize = 8;

/// The open lock span of a script, if any: the statement that took the
/// lock, and the statements inside the span that extend it.
#[derive(Debug, Default)]
pub struct Span {
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    /// The locked table.
    table: String,
    /// The locking statement: index in the script, file line and column,
    /// first line of its text.
    index: usize,
    line: usize,
    column: usize,
    source_line: String,
    /// Opened by the file's own BEGIN.
    explicit: bool,
    /// Statements that extend the span: (file line, first line of text).
    inside: Vec<(usize, String)>,
}

impl Span {
    /// A statement took an ACCESS EXCLUSIVE lock on an existing `table`
    /// inside a transaction: the span starts, unless one is open already.
    pub fn start(&mut self, table: &str, index: usize, line: usize, column: usize, source_line: &str, explicit: bool) {
        if self.open.is_none() {
            self.open = Some(Open { table: table.to_owned(), index, line, column, source_line: source_line.to_owned(), explicit, inside: Vec::new() });
        }
    }

    /// True while a lock is held.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Records a statement inside the span when it extends the lock
    /// (see [`extends`]); `heavy` says whether a scan or rewrite rule
    /// flagged it.
    pub fn observe(&mut self, ctx: &StmtCtx<'_>, heavy: bool, line: usize) {
        let Some(open) = &mut self.open else { return };
        if !ctx.in_transaction || open.inside.last().is_some_and(|(l, _)| *l == line) || !extends(ctx, heavy, &open.table) {
            return;
        }
        // On one line, so a statement formatted over several still reads.
        open.inside.push((line, clip(&ctx.stmt.sql)));
    }

    /// The transaction ends: one finding for the span, placed on the
    /// locking statement, when anything extended it.
    pub fn close(&mut self, script: &crate::source::Script, layout: Option<crate::source::Format>) -> Option<(usize, Finding)> {
        let open = self.open.take()?;
        if open.inside.is_empty() {
            return None;
        }
        let table = &open.table;
        let mut listed: Vec<String> = open.inside.iter().take(LISTED).map(|(l, text)| format!("line {l}: {text}")).collect();
        if open.inside.len() > LISTED {
            listed.push(format!("and {} more", open.inside.len() - LISTED));
        }
        let lines: Vec<String> = open.inside.iter().map(|(l, _)| l.to_string()).collect();
        let message = format!(
            "{table} stays locked against reads and writes (ACCESS EXCLUSIVE from line {}) until the transaction ends, while {} statement(s) that take time run after it ({})",
            open.line,
            open.inside.len(),
            listed.join("; ")
        );
        let fix = if open.explicit {
            format!("-- end the transaction right after line {}, so the lock is released before the rest runs:\n{};\nCOMMIT;\nBEGIN;  -- only if the statements after it (lines {}) need a transaction", open.line, open.source_line.trim_end_matches(';'), lines.join(", "))
        } else {
            let layout = layout.unwrap_or(crate::source::Format::Native);
            let how = match layout {
                crate::source::Format::Diesel => {
                    let dir = script.path.parent().map(|d| d.join("metadata.toml").display().to_string()).unwrap_or_else(|| "metadata.toml".into());
                    format!("put `run_in_transaction = false` in {dir}")
                }
                other => other.no_transaction_how().to_owned(),
            };
            format!("-- move the statements at lines {} into a migration of their own, or run this one outside a transaction so each statement commits on its own: {how}", lines.join(", "))
        };
        let mut f = Finding::new(&META, message).table(table.clone()).fix(fix);
        f.file = script.path.clone();
        f.line = open.line;
        f.column = open.column;
        f.source_line = open.source_line;
        f.span = open.inside.iter().map(|(l, _)| *l).collect();
        Some((open.index, f))
    }
}

/// Whether a FROM list reads an existing table (subqueries and CTEs are
/// assumed to).
fn reads_existing(ctx: &StmtCtx<'_>, from: &[pg_query::protobuf::Node]) -> bool {
    from.iter().any(|item| match &item.node {
        Some(NodeEnum::RangeVar(rv)) => ctx.is_existing(&ast::relation(rv)),
        Some(NodeEnum::JoinExpr(j)) => {
            let side = |n: &Option<Box<pg_query::protobuf::Node>>| n.as_deref().is_some_and(|n| reads_existing(ctx, std::slice::from_ref(n)));
            side(&j.larg) || side(&j.rarg)
        }
        Some(NodeEnum::RangeFunction(_)) => false,
        _ => true,
    })
}

/// A statement on one line, shortened for a list (only its first 60
/// words are looked at, so a huge statement costs nothing more).
fn clip(text: &str) -> String {
    let one_line = text.split_whitespace().take(60).collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

/// Whether a statement inside the span keeps the lock held for a time that
/// grows with data: `heavy` (a scan or rewrite rule flagged it), DML on
/// existing tables, DO blocks, maintenance. Metadata-only DDL, statements on
/// tables created in this migration and constant `INSERT ... VALUES` into
/// the locked, a new or a small table do not.
pub fn extends(ctx: &StmtCtx<'_>, heavy: bool, locked: &str) -> bool {
    if heavy {
        return true;
    }
    let existing = |rv: Option<&pg_query::protobuf::RangeVar>| rv.is_some_and(|rv| ctx.is_existing(&ast::relation(rv)));
    match ctx.node {
        NodeEnum::UpdateStmt(u) => existing(u.relation.as_ref()),
        NodeEnum::DeleteStmt(d) => existing(d.relation.as_ref()),
        NodeEnum::InsertStmt(i) => {
            let Some(rv) = i.relation.as_ref() else { return false };
            let table = ast::relation(rv);
            let select = match i.select_stmt.as_deref().and_then(|s| s.node.as_ref()) {
                Some(NodeEnum::SelectStmt(sel)) => Some(sel),
                _ => None,
            };
            let query = select.is_some_and(|sel| !sel.from_clause.is_empty() || sel.with_clause.is_some() || sel.larg.is_some());
            // Rows computed by a query: into an existing table, however
            // many; into a new one, only a read of an existing table counts.
            if query && (ctx.is_existing(&table) || select.is_some_and(|sel| reads_existing(ctx, &sel.from_clause))) {
                return true;
            }
            if query {
                return false;
            }
            // Constant rows: the cost is the rows written, not the table.
            let small = |t: &str| match ctx.options.facts.as_ref() {
                Some(facts) => !facts.table(t).is_some_and(|s| s.rows >= 1_000),
                None => true,
            };
            let same = crate::lint::schema::key(&table) == crate::lint::schema::key(locked);
            !(same || !ctx.is_existing(&table) || small(&table))
        }
        NodeEnum::DoStmt(_) => crate::sql::do_block_statements(ctx.stmt).is_empty(),
        NodeEnum::RefreshMatViewStmt(r) => existing(r.relation.as_ref()),
        // ANALYZE reads a bounded sample: not counted.
        NodeEnum::VacuumStmt(v) => v.is_vacuumcmd,
        NodeEnum::CreateTableAsStmt(_) | NodeEnum::ClusterStmt(_) => true,
        NodeEnum::ReindexStmt(r) => r.relation.is_none() || existing(r.relation.as_ref()),
        NodeEnum::IndexStmt(i) => existing(i.relation.as_ref()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint, lint_after};
    use crate::lint::{Finding, LintOptions};

    const RULE: &str = "ban-statements-after-access-exclusive";

    fn spans(found: &[Finding]) -> Vec<&Finding> {
        found.iter().filter(|f| f.rule == RULE).collect()
    }

    #[test]
    fn fires_once_per_lock_span_listing_what_runs_inside() {
        let f = check_fires(RULE, "ALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
        assert_eq!((f.line, f.table.as_deref()), (1, Some("users")));
        let found = lint("ALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;\nALTER TABLE users ADD COLUMN note text;\nCREATE INDEX orders_total ON orders (total);\nDELETE FROM sessions WHERE expired;\n");
        let found = spans(&found);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].line, 1);
        assert_eq!(found[0].span, [2, 4, 5]);
        assert!(found[0].message.contains("line 2: UPDATE accounts") && found[0].message.contains("line 5: DELETE FROM sessions"), "{}", found[0].message);
        // Scans and rewrites of another table extend the lock too.
        check_fires(RULE, "ALTER TABLE users ADD COLUMN plan text;\nALTER TABLE orders ALTER COLUMN total TYPE numeric;");
        // A file's own transactions: one span each.
        let found = lint("BEGIN;\nALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET a = 1;\nCOMMIT;\nBEGIN;\nALTER TABLE orders ADD COLUMN b text;\nUPDATE accounts SET a = 2;\nCOMMIT;\n");
        let lines: Vec<usize> = spans(&found).iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 6]);
        assert!(spans(&found)[0].fix.as_deref().unwrap_or("").contains("COMMIT;"), "{found:#?}");
    }

    #[test]
    fn a_table_dropped_and_created_again_was_locked_all_along() {
        let f = check_fires(RULE, "DROP TABLE totals;\nCREATE TABLE totals AS SELECT user_id, count(*) FROM orders GROUP BY user_id;\n");
        assert_eq!(f.risk, crate::lint::Risk::Medium, "{f:#?}");
    }

    #[test]
    fn ok_when_last_or_on_new_tables() {
        check_ok(RULE, "UPDATE accounts SET active = true WHERE id = 1;\nALTER TABLE users ADD COLUMN plan text;");
        check_ok(RULE, "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;\nCREATE INDEX ON t (b);");
        check_ok(RULE, "-- strata:no-transaction\nALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true WHERE id = 1;");
        // Fast follow-ups on the same table hold the lock for microseconds.
        check_ok(RULE, "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;\nCOMMENT ON COLUMN users.a IS 'x';");
    }

    #[test]
    fn ok_for_new_tables_constant_inserts_and_metadata_only_ddl() {
        // Statements on a table created in the same migration.
        check_ok(RULE, "ALTER TABLE users ADD COLUMN plan_id bigint;\nCREATE TABLE plans (id bigint PRIMARY KEY, name text);\nINSERT INTO plans SELECT g, 'p' || g FROM generate_series(1, 3) g;\nUPDATE plans SET name = 'free' WHERE id = 1;\nCREATE INDEX plans_name ON plans (name);");
        // Constant rows into the locked table, a new table or (offline) any table.
        check_ok(RULE, "ALTER TABLE settings ADD COLUMN theme text;\nINSERT INTO settings (id, theme) VALUES (1, 'dark');\nINSERT INTO features (name) VALUES ('x'), ('y');");
        // Metadata-only DDL on other existing tables.
        check_ok(RULE, "ALTER TABLE users ADD COLUMN plan text;\nALTER TABLE orders ADD COLUMN note text DEFAULT 'n';\nALTER TABLE orders DROP CONSTRAINT orders_note_check;\nALTER TABLE orders ALTER COLUMN note SET DEFAULT 'x';\nALTER TABLE orders RENAME COLUMN note TO remark;\nCOMMENT ON TABLE orders IS 'o';\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nDROP INDEX orders_old_idx;");
    }

    #[test]
    fn a_constant_insert_into_a_big_table_extends_the_lock_when_connected() {
        let mut facts = crate::lint::ServerFacts::default();
        facts.tables.insert("events".into(), crate::lint::TableStats { rows: 5_000_000, bytes: 1 << 30 });
        let options = LintOptions { facts: Some(facts), ..LintOptions::default() };
        let found = lint_after(&[], "ALTER TABLE users ADD COLUMN plan text;\nINSERT INTO events (kind) VALUES ('plan added');", &options);
        assert_eq!(spans(&found).len(), 1, "{found:#?}");
    }

    #[test]
    fn drop_index_locks_the_table_the_history_says() {
        let earlier = ["CREATE TABLE users (id bigint PRIMARY KEY, email text);\nCREATE INDEX users_email_idx ON users (email);\n"];
        let found = lint_after(&earlier, "DROP INDEX users_email_idx;\nUPDATE accounts SET active = true;\n", &LintOptions::default());
        let found = spans(&found);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!((found[0].line, found[0].table.as_deref()), (1, Some("users")));
        // Renamed since: the index follows its table.
        let earlier = ["CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE);\n", "ALTER TABLE users RENAME TO members;\n"];
        let found = lint_after(&earlier, "DROP INDEX users_email_key;\nUPDATE accounts SET active = true;\n", &LintOptions::default());
        assert_eq!(spans(&found).first().and_then(|f| f.table.as_deref()), Some("members"), "{found:#?}");
    }

    #[test]
    fn drop_index_locks_the_table_the_server_says() {
        let mut facts = crate::lint::ServerFacts::default();
        facts.indexes.insert("users_email_idx".into(), "public.users".into());
        let options = LintOptions { facts: Some(facts), ..LintOptions::default() };
        let found = lint_after(&[], "DROP INDEX users_email_idx;\nUPDATE accounts SET active = true;\n", &options);
        assert_eq!(spans(&found).first().and_then(|f| f.table.as_deref()), Some("public.users"), "{found:#?}");
        // Unknown index, offline: nothing to say which table is locked.
        check_ok(RULE, "DROP INDEX users_email_idx;\nUPDATE accounts SET active = true;\n");
    }

    #[test]
    fn the_rewrite_uses_the_layouts_own_directive() {
        use crate::source::Format;
        let sql = "ALTER TABLE users ADD COLUMN plan text;\nUPDATE accounts SET active = true;\n";
        for (layout, expected) in [
            (Format::Diesel, "run_in_transaction = false"),
            (Format::Goose, "-- +goose NO TRANSACTION"),
            (Format::Sqlx, "-- no-transaction"),
            (Format::Dbmate, "transaction:false"),
            (Format::Native, "-- strata:no-transaction"),
            (Format::Flyway, "executeInTransaction=false"),
        ] {
            let options = LintOptions { layout: Some(layout), ..LintOptions::default() };
            let found = lint_after(&[], sql, &options);
            let fix = spans(&found).first().and_then(|f| f.fix.clone()).unwrap_or_default();
            assert!(fix.contains(expected), "{layout}: {fix}");
            if !matches!(layout, Format::Native | Format::Flyway) {
                assert!(!fix.contains("strata:"), "{layout}: {fix}");
            }
        }
    }
}
