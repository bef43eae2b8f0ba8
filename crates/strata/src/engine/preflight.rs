//! Pre-flight: before a migration runs, look for sessions that would make
//! it wait, and wait for them (boundedly) before taking any lock.
//!
//! A transaction that has held a lock on one of the migration's tables for
//! a while, or sits idle in transaction, would make the migration's first
//! lock wait. Strata never waits in the lock queue for long (lock_timeout
//! and the watchdog see to that), but retrying against a holder that will
//! not go away only burns the retry budget. So pre-flight waits up to
//! `preflight_wait` for such holders to finish, then reports them and goes
//! on. It also reports transactions open for over a minute anywhere in the
//! database: they hold back the old snapshots that CONCURRENTLY builds and
//! VALIDATE wait for.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pg_query::NodeEnum;

use crate::db::catalog::{self, LockHolder};
use crate::db::{Connection, DbError};
use crate::lint::{ast, context::table_lock};
use crate::sql::Statement;

/// What pre-flight found.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    /// The tables the migration locks.
    pub tables: Vec<String>,
    /// Holders seen at the start.
    pub initial: Vec<LockHolder>,
    /// Holders still there when the wait ended.
    pub remaining: Vec<LockHolder>,
    /// How long pre-flight waited.
    pub waited: Duration,
    /// Long transactions elsewhere in the database: (pid, application, state, seconds).
    pub long_transactions: Vec<(i32, String, String, i64)>,
}

/// How old a lock holder's transaction must be to count: younger ones are
/// ordinary application traffic that finishes in milliseconds.
const HOLDER_MIN_AGE_MS: i64 = 200;
/// Transactions older than this are reported wherever they are.
const LONG_TRANSACTION_SECS: i64 = 60;

/// The tables `statements` take locks on, the referenced tables of foreign
/// keys included, less the tables the statements create themselves (nobody
/// else can hold a lock on those yet).
pub fn tables(statements: &[Statement]) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut created = BTreeSet::new();
    let inner: Vec<Statement> = statements
        .iter()
        .flat_map(crate::sql::do_block_statements)
        .collect();
    for node in statements
        .iter()
        .chain(&inner)
        .flat_map(|s| s.nodes())
        .filter_map(|n| n.node)
    {
        let node = &node;
        if let Some((_, table)) = table_lock(node) {
            out.insert(table);
        }
        if let Some((_, cmds)) = ast::alter_table(node) {
            for cmd in cmds {
                if let Some(pk) = ast::constraint(cmd).and_then(|c| c.pktable.as_ref()) {
                    out.insert(ast::relation(pk));
                }
            }
        }
        if let NodeEnum::CreateStmt(c) = node {
            if let Some(rv) = &c.relation {
                created.insert(ast::relation(rv));
            }
            let constraints = c.table_elts.iter().flat_map(|elt| match &elt.node {
                Some(NodeEnum::Constraint(_)) => std::slice::from_ref(elt),
                Some(NodeEnum::ColumnDef(col)) => col.constraints.as_slice(),
                _ => &[],
            });
            for k in constraints {
                if let Some(NodeEnum::Constraint(k)) = &k.node {
                    if let Some(pk) = &k.pktable {
                        out.insert(ast::relation(pk));
                    }
                }
            }
        }
    }
    out.into_iter().filter(|t| !created.contains(t)).collect()
}

/// True when a statement waits for old snapshots to go away (CONCURRENTLY
/// builds, VALIDATE CONSTRAINT), so long transactions anywhere matter.
pub fn waits_for_snapshots(statements: &[Statement]) -> bool {
    statements.iter().any(|s| {
        matches!(s.transaction, crate::sql::TransactionBehavior::Never(why) if why.contains("CONCURRENTLY"))
            || s.nodes().iter().filter_map(|n| n.node.as_ref()).any(|n| {
                ast::alter_table(n).is_some_and(|(_, cmds)| {
                    cmds.iter().any(|c| ast::is(c, pg_query::protobuf::AlterTableType::AtValidateConstraint))
                })
            })
    })
}

/// Waits up to `wait` for sessions holding locks on the statements' tables
/// to finish, and reports what it saw. Long transactions elsewhere are
/// looked for when `long_transactions` is set (the first migration of a
/// run, and any that waits for old snapshots), so that a run of many small
/// migrations does not pay for the query each time.
pub async fn check(
    conn: &Connection,
    statements: &[Statement],
    wait: Duration,
    long_transactions: bool,
) -> Result<Preflight, DbError> {
    let tables = tables(statements);
    let mut report = Preflight::default();
    if long_transactions || waits_for_snapshots(statements) {
        report.long_transactions = catalog::long_transactions(conn, LONG_TRANSACTION_SECS).await?;
    }
    if !tables.is_empty() {
        let started = Instant::now();
        report.initial = catalog::lock_holders(conn, &tables, HOLDER_MIN_AGE_MS).await?;
        report.remaining = report.initial.clone();
        // Wait for the transactions seen now, not for whichever come later:
        // a stream of new ones must not keep pre-flight waiting.
        let same = |a: &LockHolder, b: &LockHolder| a.pid == b.pid && a.xact_start == b.xact_start;
        while !report.remaining.is_empty() && started.elapsed() < wait {
            tokio::time::sleep(Duration::from_millis(100).min(wait)).await;
            let now = catalog::lock_holders(conn, &tables, 0).await?;
            report.remaining.retain(|h| now.iter().any(|n| same(h, n)));
        }
        if !report.initial.is_empty() {
            report.waited = started.elapsed();
        }
    }
    report.tables = tables;
    Ok(report)
}

/// One line for the user; `None` when there is nothing to say.
pub fn describe(p: &Preflight) -> Option<String> {
    let holder = |h: &LockHolder| {
        format!(
            "pid {} ({}, {} for {} s, locks {}): {}",
            h.pid,
            if h.application.is_empty() {
                "no application_name"
            } else {
                &h.application
            },
            h.state,
            h.xact_secs,
            h.tables.join(", "),
            h.query
        )
    };
    let mut parts = Vec::new();
    if !p.initial.is_empty() {
        if p.remaining.is_empty() {
            parts.push(format!(
                "waited {:.1} s for {} transaction(s) holding locks on its tables to finish; they did",
                p.waited.as_secs_f64(),
                p.initial.len()
            ));
        } else {
            parts.push(format!(
                "after {:.1} s, still held: {}; going on, statements retry under lock_timeout until they finish",
                p.waited.as_secs_f64(),
                p.remaining.iter().map(holder).collect::<Vec<_>>().join("; ")
            ));
        }
    }
    if !p.long_transactions.is_empty() {
        parts.push(format!(
            "long-running transactions in the database (CONCURRENTLY builds and VALIDATE wait for them): {}",
            p.long_transactions
                .iter()
                .map(|(pid, app, state, secs)| format!(
                    "pid {pid} ({}, {state}, {secs} s)",
                    if app.is_empty() { "no application_name" } else { app }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("pre-flight: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables_of(sql: &str) -> Vec<String> {
        tables(&crate::sql::split(sql, &[]).unwrap())
    }

    #[test]
    fn tables_are_sql_names() {
        assert_eq!(
            tables_of(
                r#"ALTER TABLE "Sch".t ADD FOREIGN KEY (a) REFERENCES "my.table" (id); CREATE INDEX ON "Orders" ("OrderId"); ALTER TABLE Public.Users ADD COLUMN b int;"#
            ),
            [r#""Orders""#, r#""Sch".t"#, r#""my.table""#, "public.users"]
        );
    }

    #[test]
    fn tables_include_foreign_key_targets() {
        assert_eq!(
            tables_of(
                "ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (user_id) REFERENCES users (id);"
            ),
            ["orders", "users"]
        );
        assert_eq!(
            tables_of("CREATE INDEX i ON app.events (at);\nTRUNCATE audit;"),
            ["app.events", "audit"]
        );
        assert_eq!(
            tables_of("CREATE TABLE t (id int, u int REFERENCES users);"),
            ["users"]
        );
        assert!(
            tables_of("CREATE TABLE t (id int);\nCREATE INDEX ON t (id);").is_empty(),
            "nobody else holds locks on a table created in the same migration"
        );
        assert!(waits_for_snapshots(
            &crate::sql::split("CREATE INDEX CONCURRENTLY i ON t (a);", &[]).unwrap()
        ));
        assert!(waits_for_snapshots(
            &crate::sql::split("ALTER TABLE t VALIDATE CONSTRAINT c;", &[]).unwrap()
        ));
        assert!(!waits_for_snapshots(
            &crate::sql::split("ALTER TABLE t ADD COLUMN c int;", &[]).unwrap()
        ));
        assert!(tables_of("SELECT 1;").is_empty());
        assert_eq!(
            tables_of("DO $$ BEGIN ALTER TABLE users DROP COLUMN x; END $$;"),
            ["users"],
            "what a DO block runs counts"
        );
    }

    #[test]
    fn describes_what_it_saw() {
        let holder = LockHolder {
            pid: 42,
            application: "app".into(),
            state: "idle in transaction".into(),
            xact_secs: 30,
            xact_start: 0.0,
            tables: vec!["users".into()],
            query: "SELECT 1".into(),
        };
        assert_eq!(describe(&Preflight::default()), None);
        let waited = Preflight {
            initial: vec![holder.clone()],
            waited: Duration::from_millis(1500),
            ..Preflight::default()
        };
        assert!(describe(&waited)
            .unwrap()
            .contains("waited 1.5 s for 1 transaction(s)"));
        let stuck = Preflight {
            remaining: vec![holder.clone()],
            initial: vec![holder],
            waited: Duration::from_secs(10),
            ..Preflight::default()
        };
        let text = describe(&stuck).unwrap();
        assert!(
            text.contains("still held: pid 42 (app, idle in transaction for 30 s, locks users)"),
            "{text}"
        );
    }
}
