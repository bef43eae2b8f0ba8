//! Safe rewrites: where a form with the same end result exists that does
//! not block the application, run it instead of the naive statement.
//!
//! | naive | runs as |
//! |---|---|
//! | `CREATE [UNIQUE] INDEX` | `... CONCURRENTLY`, outside a transaction |
//! | `DROP INDEX` | `DROP INDEX CONCURRENTLY` (one per index) |
//! | `ADD FOREIGN KEY` / `ADD CHECK` | `... NOT VALID`, commit, `VALIDATE CONSTRAINT` |
//! | `SET NOT NULL` | `CHECK (c IS NOT NULL) NOT VALID`, `VALIDATE`, `SET NOT NULL`, drop the check |
//! | `ADD UNIQUE` / `PRIMARY KEY` | `CREATE UNIQUE INDEX CONCURRENTLY`, then `ADD CONSTRAINT ... USING INDEX` |
//!
//! Only statements on tables that existed before the migration are
//! rewritten, and only single-action statements whose end state is known to
//! be identical (the same constraint and index names PostgreSQL would have
//! chosen). A migration with a rewrite runs outside a transaction, one
//! statement at a time, with progress recorded after each, so an
//! interrupted run resumes where it stopped.
//!
//! This module is pure: statements in, statements out.

use std::collections::HashSet;

use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
use pg_query::NodeEnum;

use crate::lint::{ast, schema};
use crate::sql::{self, names, Statement};

/// The statements to run and a description of each rewrite made.
pub struct Rewritten {
    /// The statements, rewritten where possible.
    pub statements: Vec<Statement>,
    /// "line 3: CREATE INDEX → CREATE INDEX CONCURRENTLY", one per rewrite.
    pub notes: Vec<String>,
}

/// Rewrites a migration's statements. `pg_version` gates the forms that
/// need PostgreSQL 12 (scan-free SET NOT NULL).
pub fn rewrite(statements: &[Statement], first_line: usize, pg_version: u32) -> Rewritten {
    // A file with its own BEGIN/COMMIT chose its transactions: it runs as
    // written (a CONCURRENTLY form would fail inside its BEGIN, and moving
    // statements out of its transaction would break what it asked for).
    if statements.iter().any(|s| s.transaction.is_control()) {
        return Rewritten {
            statements: statements.to_vec(),
            notes: Vec::new(),
        };
    }
    let mut created: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for stmt in statements {
        let nodes = stmt.nodes();
        let node = nodes.first().and_then(|n| n.node.as_ref());
        let replacement = match node {
            Some(n) if nodes.len() == 1 && !stmt.transaction.is_control() => {
                safe_form(n, &created, pg_version)
            }
            _ => None,
        };
        if let Some(NodeEnum::CreateStmt(c)) = node {
            if let Some(rv) = &c.relation {
                created.insert(schema::key(&ast::relation(rv)));
            }
        }
        match replacement.and_then(|(what, sqls)| parse_all(&sqls, stmt).map(|s| (what, s))) {
            Some((what, new)) => {
                notes.push(format!("line {}: {what}", first_line + stmt.line - 1));
                out.extend(new);
            }
            None => out.push(stmt.clone()),
        }
    }
    Rewritten {
        statements: out,
        notes,
    }
}

/// Parses generated SQL, keeping the original statement's position for
/// error messages.
fn parse_all(sqls: &[String], original: &Statement) -> Option<Vec<Statement>> {
    let mut out = Vec::new();
    for text in sqls {
        let mut parsed = sql::split(text, &[]).ok()?;
        for s in &mut parsed {
            s.line = original.line;
            s.column = original.column;
            s.offset = original.offset;
        }
        out.extend(parsed);
    }
    Some(out)
}

fn existing(created: &HashSet<String>, table: &str) -> bool {
    !created.contains(&schema::key(table))
}

/// The safe form of one statement: (description, SQL statements).
fn safe_form(
    node: &NodeEnum,
    created: &HashSet<String>,
    pg_version: u32,
) -> Option<(String, Vec<String>)> {
    match node {
        NodeEnum::IndexStmt(index) if !index.concurrent => {
            let table = ast::relation(index.relation.as_ref()?);
            if !existing(created, &table) {
                return None;
            }
            let mut safe = index.clone();
            safe.concurrent = true;
            Some((
                "CREATE INDEX → CREATE INDEX CONCURRENTLY".into(),
                vec![ast::deparse(&NodeEnum::IndexStmt(safe))],
            ))
        }
        NodeEnum::DropStmt(drop)
            if drop.remove_type == ObjectType::ObjectIndex as i32 && !drop.concurrent =>
        {
            // CONCURRENTLY drops one index per statement, and cannot CASCADE.
            if drop.behavior == pg_query::protobuf::DropBehavior::DropCascade as i32 {
                return None;
            }
            let sqls = drop
                .objects
                .iter()
                .map(|o| {
                    let mut one = drop.clone();
                    one.objects = vec![o.clone()];
                    one.concurrent = true;
                    ast::deparse(&NodeEnum::DropStmt(one))
                })
                .collect();
            Some(("DROP INDEX → DROP INDEX CONCURRENTLY".into(), sqls))
        }
        NodeEnum::AlterTableStmt(_) => {
            let (table, cmds) = ast::alter_table(node)?;
            if cmds.len() != 1 || !existing(created, &table) {
                return None;
            }
            let cmd = cmds[0];
            // `table` is the name as SQL (`"Sch".t`); `base` is the
            // relation's own name, unquoted, which PostgreSQL builds
            // default names from.
            let t = table.clone();
            let base = ast::base_name(&table);
            if ast::is(cmd, AlterTableType::AtSetNotNull) && pg_version >= 12 {
                let col = ast::ident(&cmd.name);
                let check = not_null_check(&table, &cmd.name);
                return Some((
                    "SET NOT NULL → CHECK NOT VALID, VALIDATE, SET NOT NULL, drop the check".into(),
                    vec![
                        format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID"),
                        format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"),
                        format!("ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL"),
                        format!("ALTER TABLE {t} DROP CONSTRAINT {check}"),
                    ],
                ));
            }
            if !ast::is(cmd, AlterTableType::AtAddConstraint) {
                return None;
            }
            let c = ast::constraint(cmd)?;
            let foreign = ast::constr_is(c, ConstrType::ConstrForeign);
            let check = ast::constr_is(c, ConstrType::ConstrCheck);
            if (foreign || check) && !c.skip_validation {
                // The name PostgreSQL would choose, so the end state matches.
                let name = if !c.conname.is_empty() {
                    c.conname.clone()
                } else if foreign {
                    names::object_name(
                        &base,
                        Some(&names::name_addition(&ast::strings(&c.fk_attrs))),
                        "fkey",
                    )
                } else {
                    return None; // PostgreSQL's CHECK naming depends on the expression
                };
                let mut safe = c.clone();
                safe.conname = name.clone();
                safe.skip_validation = true;
                safe.initially_valid = false;
                let add = crate::lint::rules::require_not_valid_constraint::alter_with(
                    node,
                    &table,
                    NodeEnum::Constraint(Box::new(safe)),
                );
                let kind = if foreign { "FOREIGN KEY" } else { "CHECK" };
                return Some((
                    format!(
                        "ADD {kind} → ADD {kind} NOT VALID, then VALIDATE in its own transaction"
                    ),
                    vec![
                        add,
                        format!("ALTER TABLE {t} VALIDATE CONSTRAINT {}", ast::ident(&name)),
                    ],
                ));
            }
            let primary = ast::constr_is(c, ConstrType::ConstrPrimary);
            let unique = ast::constr_is(c, ConstrType::ConstrUnique);
            let plain = c.indexname.is_empty()
                && !c.deferrable
                && c.including.is_empty()
                && c.options.is_empty()
                && c.where_clause.is_none()
                && !c.nulls_not_distinct
                && c.indexspace.is_empty();
            if !(primary || unique) || !plain {
                return None;
            }
            let cols = ast::strings(&c.keys);
            let name = if !c.conname.is_empty() {
                c.conname.clone()
            } else if primary {
                names::object_name(&base, None, "pkey")
            } else {
                names::object_name(&base, Some(&names::name_addition(&cols)), "key")
            };
            let n = ast::ident(&name);
            let list = cols
                .iter()
                .map(|c| ast::ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            let mut sqls = Vec::new();
            if primary {
                // ADD PRIMARY KEY USING INDEX would set NOT NULL with a scan
                // under ACCESS EXCLUSIVE; prove it with validated checks first.
                for col in &cols {
                    let check = not_null_check(&table, col);
                    let col = ast::ident(col);
                    sqls.push(format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID"));
                    sqls.push(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"));
                    sqls.push(format!("ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL"));
                    sqls.push(format!("ALTER TABLE {t} DROP CONSTRAINT {check}"));
                }
            }
            let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
            sqls.push(format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {n} ON {t} ({list})"
            ));
            sqls.push(format!(
                "ALTER TABLE {t} ADD CONSTRAINT {n} {kind} USING INDEX {n}"
            ));
            Some((format!("ADD {kind} → unique index built concurrently, then ADD CONSTRAINT ... USING INDEX"), sqls))
        }
        _ => None,
    }
}

/// The temporary CHECK that proves a column NOT NULL before SET NOT NULL:
/// a fixed, short name derived from the table and column, so a resumed
/// run drops the same one, quoted for SQL.
fn not_null_check(table: &str, column: &str) -> String {
    ast::ident(&format!(
        "strata_nn_{}",
        &crate::source::checksum(&format!("{table}.{column}"))[..12]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Vec<String> {
        let stmts = sql::split(sql, &[]).unwrap();
        rewrite(&stmts, 1, 15)
            .statements
            .into_iter()
            .map(|s| s.sql)
            .collect()
    }

    #[test]
    fn rewrites_each_naive_form() {
        assert_eq!(
            rewritten("CREATE INDEX i ON t (a)"),
            ["CREATE INDEX CONCURRENTLY i ON t USING btree (a)"]
        );
        assert_eq!(
            rewritten("DROP INDEX i, j"),
            ["DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY j"]
        );
        assert_eq!(
            rewritten("ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id)"),
            [
                "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey"
            ]
        );
        let nn = rewritten("ALTER TABLE users ALTER COLUMN email SET NOT NULL");
        assert_eq!(nn.len(), 4);
        assert!(
            nn[0].contains("CHECK (email IS NOT NULL) NOT VALID")
                && nn[2].ends_with("SET NOT NULL")
        );
        assert_eq!(
            rewritten("ALTER TABLE users ADD UNIQUE (email)"),
            [
                "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)",
                "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key"
            ]
        );
    }

    #[test]
    fn quotes_names_as_postgres_sees_them() {
        assert_eq!(
            rewritten(r#"ALTER TABLE "Orders" ADD PRIMARY KEY ("OrderId")"#)
                .last()
                .unwrap(),
            r#"ALTER TABLE "Orders" ADD CONSTRAINT "Orders_pkey" PRIMARY KEY USING INDEX "Orders_pkey""#
        );
        assert_eq!(
            rewritten(r#"ALTER TABLE "my.table" ADD UNIQUE ("E-mail")"#),
            [
                r#"CREATE UNIQUE INDEX CONCURRENTLY "my.table_E-mail_key" ON "my.table" ("E-mail")"#,
                r#"ALTER TABLE "my.table" ADD CONSTRAINT "my.table_E-mail_key" UNIQUE USING INDEX "my.table_E-mail_key""#
            ]
        );
        assert_eq!(
            rewritten(
                r#"ALTER TABLE "Sch".t ADD FOREIGN KEY ("UserId") REFERENCES "Sch"."Users" (id)"#
            ),
            [
                r#"ALTER TABLE "Sch".t ADD CONSTRAINT "t_UserId_fkey" FOREIGN KEY ("UserId") REFERENCES "Sch"."Users" (id) NOT VALID"#,
                r#"ALTER TABLE "Sch".t VALIDATE CONSTRAINT "t_UserId_fkey""#
            ]
        );
        // Over 63 bytes, names are truncated as PostgreSQL truncates them
        // (the parser cuts the table name to 63 bytes first).
        let out = rewritten(&format!(
            "ALTER TABLE {} ADD UNIQUE (email)",
            "t".repeat(70)
        ));
        assert_eq!(
            out[0],
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {}_email_key ON {} (email)",
                "t".repeat(53),
                "t".repeat(63)
            )
        );
    }

    #[test]
    fn leaves_new_tables_multi_action_and_unnamed_checks_alone() {
        let same = |sql: &str| {
            let stmts = sql::split(sql, &[]).unwrap();
            assert!(rewrite(&stmts, 1, 15).notes.is_empty(), "{sql}");
        };
        same("CREATE TABLE t (a int); CREATE INDEX i ON t (a)");
        same("ALTER TABLE t ADD COLUMN b int, ADD CONSTRAINT c CHECK (b > 0)");
        same("ALTER TABLE t ADD CHECK (a > 0)");
        same("CREATE INDEX CONCURRENTLY i ON t (a)");
        same("BEGIN; CREATE INDEX i ON t (a); COMMIT;");
    }
}
