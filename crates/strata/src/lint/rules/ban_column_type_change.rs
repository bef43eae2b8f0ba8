//! `ban-column-type-change`: ALTER COLUMN ... TYPE that rewrites the table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-column-type-change",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "changing a column type rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ALTER COLUMN c TYPE t` on an existing table unless the change is binary-coercible, which PostgreSQL does without a rewrite: `varchar(n)` → `text`, `varchar(n)` → `varchar(m)` with m ≥ n or no limit, `char(n)` → `text`/`varchar`, `numeric(p,s)` → `numeric(q,s)` with q ≥ p or `numeric`, `varbit(n)` → wider, `cidr` → `inet`, `xml` → `text`, and nothing else; `timestamp` ↔ `timestamptz` is flagged with `SET LOCAL TimeZone = 'UTC'` as its rewrite. The old type comes from the replayed migrations; if it is unknown, the change is flagged.

## Why is this bad?
A rewrite copies every row and rebuilds every index on the table while holding an ACCESS EXCLUSIVE lock: no reads, no writes, for as long as the copy takes. Running code may also break on the new type.

## Safe rewrite
`timestamp` ↔ `timestamptz` on PostgreSQL 12 and later: run the ALTER after `SET LOCAL TimeZone = 'UTC'` in the same transaction; the table is then not rewritten (indexes on the column still are).
Otherwise expand and contract: add a new column of the new type, write both from the application (or a trigger), backfill in batches with the statement's `USING` expression, switch reads, then drop the old column, rename the new one and put back its default, NOT NULL and indexes (the rewrite lists them when the history knows them).

## Example
```sql
-- before
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
-- after
ALTER TABLE orders ADD COLUMN total_new bigint;
-- trigger keeps total_new = total::bigint; backfill in batches; switch reads; then
ALTER TABLE orders DROP COLUMN total;
ALTER TABLE orders RENAME COLUMN total_new TO total;
-- and put back the default, NOT NULL (see ban-set-not-null) and indexes
```",
};

/// See [`META`].
pub struct BanColumnTypeChange;

fn coercible(old: Option<(&str, &[i64])>, new: (&str, &[i64])) -> bool {
    let Some((from, from_mods)) = old else { return false };
    let widening = |a: &[i64], b: &[i64]| b.is_empty() || (!a.is_empty() && b[0] >= a[0] && b.get(1) == a.get(1));
    match (from, new.0) {
        ("varchar", "text") | ("bpchar", "text") | ("xml", "text") | ("cidr", "inet") | ("text", "text") => true,
        ("varchar", "varchar") | ("varbit", "varbit") => widening(from_mods, new.1),
        ("numeric", "numeric") => new.1.is_empty() || (from_mods.len() == 2 && new.1.len() == 2 && new.1[0] >= from_mods[0] && new.1[1] == from_mods[1]),
        ("bpchar", "varchar") => new.1.is_empty() || (!from_mods.is_empty() && new.1[0] >= from_mods[0]),
        ("text", "varchar") => new.1.is_empty(),
        _ => false,
    }
}

impl Rule for BanColumnTypeChange {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAlterColumnType)) {
            let Some(tn) = ast::column_def(cmd).and_then(|c| c.type_name.as_ref()) else { continue };
            let (new, new_mods) = ast::type_of(tn);
            let old = ctx.schema.table(&table).and_then(|t| t.columns.get(&cmd.name)).filter(|c| !c.type_name.is_empty());
            // `USING c` naming the column itself is what PostgreSQL does
            // without USING (the same coercion of the same value), so it keeps
            // a binary-coercible or time-zone-only change free of rewrites.
            let has_using = ast::column_def(cmd)
                .and_then(|c| c.raw_default.as_ref())
                .is_some_and(|expr| !is_the_column(expr, &cmd.name));
            if !has_using && coercible(old.map(|c| (c.type_name.as_str(), c.type_mods.as_slice())), (&new, &new_mods)) {
                continue;
            }
            let from = old.map(|o| format!(" from {}", o.type_name)).unwrap_or_default();
            let shown = ast::type_display(tn);
            let finding = Finding::new(&META, String::new()).table(table.clone());
            let zone_only = !has_using && old.is_some_and(|o| matches!((o.type_name.as_str(), new.as_str()), ("timestamp", "timestamptz") | ("timestamptz", "timestamp")));
            if zone_only && ctx.pg_version() >= 12 {
                // Verified on a real cluster (tests/cli/rewrites_run.rs):
                // under UTC the table keeps its file; indexes on the column
                // are rebuilt, because their operator class changes.
                let indexed = ctx.schema.table(&table).is_some_and(|t| t.indexes.iter().any(|i| i.contains(&cmd.name)));
                if ctx.tx.utc_time_zone {
                    // The file already runs it under UTC: the table is not
                    // rewritten; only a known index is rebuilt.
                    if indexed {
                        out.push(finding.fix("-- the table is not rewritten under UTC; the index on the column is rebuilt under the lock: run it when the table is quiet, or drop the index (CONCURRENTLY) and build it again afterwards").risk(Risk::Low).lock(Lock::AccessExclusive));
                        if let Some(f) = out.last_mut() {
                            f.message = format!("changing {table}.{}{from} to {shown} under UTC is metadata-only, but its index is rebuilt under the lock", cmd.name);
                        }
                    }
                    continue;
                }
                let indexes = if indexed { "; its index on the column is still rebuilt under the lock" } else { "; an index on the column would still be rebuilt" };
                let mut f = finding.rewrite(format!("SET LOCAL TimeZone = 'UTC';  -- in the same transaction as the ALTER\n{};", ctx.stmt.sql));
                f.message = format!("changing {table}.{}{from} to {shown} rewrites the table unless the session TimeZone is UTC: on PostgreSQL 12 and later it is then metadata-only{indexes}", cmd.name);
                out.push(f);
                continue;
            }
            let (fix, complete) = expand_contract(ctx, cmd, &table, tn);
            let mut f = if complete { finding.rewrite(fix) } else { finding.fix(fix) };
            f.message = format!("changing {table}.{}{from} to {shown} rewrites the table and its indexes while blocking reads and writes", cmd.name);
            out.push(f);
        }
    }
}

/// Expand and contract, from what the history knows about the column: a
/// new column of the new type, backfilled with the statement's own `USING`
/// expression (or a cast), then the old column dropped and the new one
/// renamed, with its default, NOT NULL and indexes put back and the
/// statement's other actions run last. Returns the SQL and whether it ends
/// where the statement does; it does not when the history does not know
/// the column, or a constraint uses it (dropping the column drops the
/// constraint), and the SQL then says so.
fn expand_contract(ctx: &StmtCtx<'_>, cmd: &pg_query::protobuf::AlterTableCmd, table: &str, tn: &pg_query::protobuf::TypeName) -> (String, bool) {
    use crate::lint::rewrite::{fresh_name, not_null_steps, others, set_not_null, type_sql};
    let t = table;
    let known = ctx.schema.table(table);
    let column = known.and_then(|k| k.columns.get(&cmd.name));
    let tmp_name = fresh_name(&format!("{}_new", cmd.name), |n| known.is_some_and(|k| k.columns.contains_key(n)));
    let (c, tmp) = (ast::ident(&cmd.name), ast::ident(&tmp_name));
    let ty = type_sql(tn);
    let value = ast::column_def(cmd)
        .and_then(|d| d.raw_default.as_deref())
        .map(ast::deparse_expr)
        .unwrap_or_else(|| format!("{c}::{ty}"));
    let mut sql = format!(
        "ALTER TABLE {t} ADD COLUMN {tmp} {ty};\n-- keep {tmp} in sync with a trigger, backfill in batches (separate transactions):\nUPDATE {t} SET {tmp} = {value} WHERE ctid IN (SELECT ctid FROM {t} WHERE {tmp} IS NULL AND {c} IS NOT NULL LIMIT 10000);\n-- switch reads to {tmp}, then in a later migration:\nALTER TABLE {t} DROP COLUMN {c};\nALTER TABLE {t} RENAME COLUMN {tmp} TO {c};"
    );
    let Some(column) = column else {
        sql.push_str(&format!("\n-- the history does not show {c}: put back its default, NOT NULL, indexes and constraints"));
        return (sql, false);
    };
    if let Some(default) = &column.default {
        sql.push_str(&format!("\nALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {};", ast::deparse_expr(default)));
    }
    if column.not_null {
        sql.push_str(&format!("\n{}", not_null_steps(t, &cmd.name, &set_not_null(t, &cmd.name))));
    }
    let rest = others(ctx.node, cmd);
    if !rest.is_empty() {
        sql.push_str(&format!("\n{}", rest.trim_end()));
    }
    let known = known.map(|k| (k.index_defs.as_slice(), k.constrained.contains(&cmd.name))).unwrap_or_default();
    for index in known.0.iter().filter(|i| i.columns.contains(&cmd.name)) {
        sql.push_str(&format!("\n{};", index.concurrent_sql()));
    }
    if known.1 {
        sql.push_str(&format!("\n-- {c} is part of a constraint, which DROP COLUMN drops: add it back (NOT VALID, then VALIDATE)"));
    }
    (sql, !known.1)
}

/// True when `expr` is a bare reference to `column` (`USING c`).
fn is_the_column(expr: &pg_query::protobuf::Node, column: &str) -> bool {
    let Some(NodeEnum::ColumnRef(r)) = &expr.node else {
        return false;
    };
    matches!(r.fields.as_slice(), [f] if matches!(&f.node, Some(NodeEnum::String(s)) if s.sval == column))
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint_after};
    use crate::lint::LintOptions;

    #[test]
    fn fires_on_rewrites() {
        check_fires("ban-column-type-change", "ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);");
        let after = lint_after(&["CREATE TABLE t (a int);"], "ALTER TABLE t ALTER COLUMN a TYPE bigint;", &LintOptions::default());
        assert!(after.iter().any(|f| f.rule == "ban-column-type-change"));
    }

    fn type_change(history: &str, sql: &str, options: &LintOptions) -> crate::lint::Finding {
        lint_after(&[history], sql, options).into_iter().find(|f| f.rule == "ban-column-type-change").expect("fires")
    }

    /// Issue 11, item 11: on PostgreSQL 12+ the zone change is metadata-only
    /// under UTC (proven in tests/cli/rewrites_run.rs), so the rewrite is
    /// the statement under `SET LOCAL TimeZone`; a server known to be older
    /// keeps the expand/contract rewrite.
    #[test]
    fn timestamptz_under_utc_is_the_rewrite_from_postgres_12() {
        let history = "CREATE TABLE ev (at timestamp NOT NULL, back timestamptz);\nCREATE INDEX ev_at_idx ON ev (at);";
        let f = type_change(history, "ALTER TABLE ev ALTER COLUMN at TYPE timestamptz;", &LintOptions::default());
        assert!(f.rewrite);
        assert_eq!(f.fix.as_deref(), Some("SET LOCAL TimeZone = 'UTC';  -- in the same transaction as the ALTER\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz;"));
        assert!(f.message.contains("metadata-only") && f.message.contains("index on the column is still rebuilt"), "{}", f.message);
        let back = type_change(history, "ALTER TABLE ev ALTER COLUMN back TYPE timestamp;", &LintOptions::default());
        assert!(back.fix.unwrap().starts_with("SET LOCAL TimeZone = 'UTC';"));
        let old = LintOptions {
            facts: Some(crate::lint::ServerFacts { major_version: Some(11), ..Default::default() }),
            ..LintOptions::default()
        };
        let f = type_change(history, "ALTER TABLE ev ALTER COLUMN at TYPE timestamptz;", &old);
        let fix = f.fix.unwrap();
        assert!(!fix.contains("TimeZone") && fix.contains("ADD COLUMN at_new timestamptz"), "{fix}");
    }

    /// Issue 11, item 13: the expand/contract rewrite keeps the USING
    /// expression and puts back what dropping the column loses.
    /// Following the advice silences the finding (unless an index must
    /// still be rebuilt, which is said at LOW).
    #[test]
    fn no_finding_once_the_file_sets_utc() {
        let history = "CREATE TABLE ev (at timestamp NOT NULL, ix timestamp);\nCREATE INDEX ev_ix_idx ON ev (ix);";
        for zone in ["'UTC'", "'Etc/UTC'", "'GMT'"] {
            let sql = format!("SET LOCAL TimeZone = {zone};\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz;");
            assert!(!lint_after(&[history], &sql, &LintOptions::default()).iter().any(|f| f.rule == "ban-column-type-change"), "{zone}");
        }
        let f = type_change(history, "SET TIME ZONE 'UTC';\nALTER TABLE ev ALTER COLUMN ix TYPE timestamptz;", &LintOptions::default());
        assert_eq!(f.risk, crate::lint::Risk::Low);
        let f = type_change(history, "SET LOCAL TimeZone = 'Europe/Paris';\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz;", &LintOptions::default());
        assert!(f.fix.unwrap().starts_with("SET LOCAL TimeZone = 'UTC';"));
    }

    /// lemmy's `fix-timezones` writes `USING published` for each column:
    /// the same expression PostgreSQL builds without USING.
    #[test]
    fn using_the_column_itself_is_no_using() {
        let history = "CREATE TABLE ev (at timestamp NOT NULL, n varchar(20));";
        let sql = "SET timezone = 'UTC';\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz USING at;\nALTER TABLE ev ALTER COLUMN n TYPE text USING n;";
        assert!(!lint_after(&[history], sql, &LintOptions::default()).iter().any(|f| f.rule == "ban-column-type-change"));
        let sql = "SET timezone = 'UTC';\nALTER TABLE ev ALTER COLUMN at TYPE timestamptz USING at + interval '1 hour';";
        assert!(lint_after(&[history], sql, &LintOptions::default()).iter().any(|f| f.rule == "ban-column-type-change"));
    }

    #[test]
    fn expand_contract_keeps_using_default_not_null_and_indexes() {
        let history = "CREATE TABLE t (id bigint, a int NOT NULL DEFAULT 0, a_new int);\nCREATE INDEX t_a_idx ON t (a) WHERE a > 0;";
        let f = type_change(history, "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a * 100, ADD COLUMN note text;", &LintOptions::default());
        let fix = f.fix.unwrap();
        for part in [
            "ALTER TABLE t ADD COLUMN a_new_new bigint;",
            "UPDATE t SET a_new_new = a * 100 WHERE",
            "ALTER TABLE t RENAME COLUMN a_new_new TO a;",
            "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
            "ALTER TABLE t ADD COLUMN note text;",
            "CREATE INDEX CONCURRENTLY t_a_idx ON t USING btree (a) WHERE a > 0;",
        ] {
            assert!(fix.contains(part), "{part} missing in:\n{fix}");
        }
        assert!(f.rewrite);
        // A column in a constraint, or one the history does not know: the
        // fix says what to put back and is not offered as a rewrite.
        let keyed = type_change("CREATE TABLE t (a int PRIMARY KEY);", "ALTER TABLE t ALTER COLUMN a TYPE bigint;", &LintOptions::default());
        assert!(!keyed.rewrite && keyed.fix.unwrap().contains("part of a constraint"));
        let unknown = type_change("CREATE TABLE u (b int);", "ALTER TABLE t ALTER COLUMN a TYPE bigint;", &LintOptions::default());
        assert!(!unknown.rewrite && unknown.fix.unwrap().contains("the history does not show a"));
    }

    #[test]
    fn ok_on_binary_coercible_changes() {
        for sql in ["ALTER TABLE t ALTER COLUMN a TYPE text;", "ALTER TABLE t ALTER COLUMN a TYPE varchar(200);", "ALTER TABLE t ALTER COLUMN a TYPE varchar;"] {
            let after = lint_after(&["CREATE TABLE t (a varchar(100));"], sql, &LintOptions::default());
            assert!(!after.iter().any(|f| f.rule == "ban-column-type-change"), "{sql}");
        }
        check_ok("ban-column-type-change", "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;");
    }

    /// Issue 11 item 8: a renamed column keeps its type in the replayed
    /// schema, and so do the columns of a renamed table.
    #[test]
    fn a_renamed_column_or_table_keeps_its_type() {
        let earlier = ["CREATE TABLE t (id bigint PRIMARY KEY, name varchar(20));", "ALTER TABLE t RENAME COLUMN name TO title;"];
        let after = lint_after(&earlier, "ALTER TABLE t ALTER COLUMN title TYPE varchar(255);", &LintOptions::default());
        assert!(!after.iter().any(|f| f.rule == "ban-column-type-change"), "{after:#?}");
        // In the same file, and after a table rename too.
        let after = lint_after(
            &["CREATE TABLE t (id bigint PRIMARY KEY, name varchar(20));"],
            "ALTER TABLE t RENAME COLUMN name TO title;\nALTER TABLE t RENAME TO t2;\nALTER TABLE t2 ALTER COLUMN title TYPE varchar(255);",
            &LintOptions::default(),
        );
        assert!(!after.iter().any(|f| f.rule == "ban-column-type-change"), "{after:#?}");
        // A renamed table alone (this worked before: the replay moves the table).
        let after = lint_after(&["CREATE TABLE t (id bigint PRIMARY KEY, name varchar(20));", "ALTER TABLE t RENAME TO t2;"], "ALTER TABLE t2 ALTER COLUMN name TYPE varchar(255);", &LintOptions::default());
        assert!(!after.iter().any(|f| f.rule == "ban-column-type-change"), "{after:#?}");
        // Narrowing the renamed column is still a rewrite.
        let after = lint_after(&earlier, "ALTER TABLE t ALTER COLUMN title TYPE varchar(10);", &LintOptions::default());
        assert!(after.iter().any(|f| f.rule == "ban-column-type-change"), "{after:#?}");
    }
}
