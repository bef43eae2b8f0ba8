//! `add_foreign_key`: a foreign key on a table that may hold orphans (rows
//! whose key matches no referenced row), without a long lock.
//!
//! Order, and why:
//! 1. With `orphans = "fail"`, a validation lists the first 20 orphans and
//!    stops the plan before anything changes.
//! 2. A covering index on the referencing columns, CONCURRENTLY, when no
//!    B-tree index of the table starts with them (without one, every delete
//!    or key update on the referenced table scans this table once the key
//!    exists). It comes first so the constraint never exists without it.
//! 3. `ADD CONSTRAINT … NOT VALID` in a short transaction: from here on the
//!    app cannot write new orphans, so the set to clean only shrinks.
//! 4. The policy: `move_to` deletes the orphans and inserts them into the
//!    side table in one statement (`WITH moved AS (DELETE … RETURNING *)
//!    INSERT …`): atomic, so a concurrent update is moved in its newest
//!    version and a crash moves everything or nothing, and a resume finds
//!    only what is left. It is one transaction, which holds row locks on the
//!    orphans only. `delete` and `set_null` are batched backfills.
//! 5. `VALIDATE CONSTRAINT` alone: it scans, but under a lock that lets
//!    reads and writes go on.
//!
//! The reverse drops the constraint, moves every row of the `move_to` side
//! table back (in one statement, as they left, keeping their identity
//! values) and drops the side table, then drops the index it built: a
//! rollback ends with the rows where they were. Deleted rows and nulled
//! keys are gone, so those policies have no reverse but a backup.

use strata_source::plan::ForeignKeyOrphans;

use super::super::{Action, CompileError, Compiled, Context, TableFacts};
use super::table_names::{
    base, choose_name, column, column_list, facts, has_leading_index, index_taken, sibling,
    single_step,
};
use crate::sql::names;

/// What `add_foreign_key` says.
pub(super) struct AddForeignKey<'a> {
    pub table: &'a str,
    pub columns: &'a [String],
    pub references: &'a str,
    pub references_columns: &'a [String],
    pub name: Option<&'a str>,
    pub orphans: &'a ForeignKeyOrphans,
    pub on_delete: Option<&'a str>,
}

/// The alias of the referencing table in every statement: a self-reference
/// (or two tables of one name in two schemas) stays unambiguous.
const CHILD: &str = "strata_child";
/// The alias of the referenced table.
const PARENT: &str = "strata_parent";

pub(super) fn compile(op: &AddForeignKey<'_>, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    single_step("add_foreign_key", ctx)?;
    let facts = facts(ctx, "add_foreign_key")?;
    if op.columns.is_empty() {
        return Err(CompileError {
            message: format!("add_foreign_key on {} lists no columns", op.table),
            help: Some("write columns = [\"user_id\"]".into()),
        });
    }
    for c in op.columns {
        column(facts, c)?;
    }
    let referenced = referenced_columns(op, facts)?;
    if referenced.len() != op.columns.len() {
        return Err(CompileError {
            message: format!(
                "add_foreign_key: {} columns reference {} columns",
                op.columns.len(),
                referenced.len()
            ),
            help: Some("list as many references_columns as columns, in order".into()),
        });
    }
    let table_base = base(op.table);
    let name = match op.name {
        Some(n) => n.to_owned(),
        None => choose_name(
            &table_base,
            Some(&names::name_addition(op.columns)),
            "fkey",
            &|n: &str| facts.constraints.iter().any(|c| c.name == n),
        ),
    };
    let orphan = orphan_condition(op, &referenced);
    // What identifies an orphan for the operator: the primary key, then the
    // referencing columns.
    let mut shown: Vec<String> = facts.primary_key.clone();
    for c in op.columns {
        if !shown.contains(c) {
            shown.push(c.clone());
        }
    }
    let shown_sql = shown
        .iter()
        .map(|c| format!("{CHILD}.{}", names::quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ");

    let mut up = Vec::new();
    let mut drops_data = false;
    let mut down_refused = None;
    if *op.orphans == ForeignKeyOrphans::Fail {
        up.push(Action::Validate {
            sql: format!(
                "SELECT {shown_sql} FROM {} AS {CHILD} WHERE {orphan} LIMIT 20",
                op.table
            ),
            message: format!(
                "{} has rows whose ({}) match no row of {}: fix or remove them, or choose another \
                 `orphans` policy (move_to, delete, set_null)",
                op.table,
                op.columns.join(", "),
                op.references
            ),
        });
    }
    let mut index = None;
    if !has_leading_index(facts, op.columns) {
        let index_name = choose_name(
            &table_base,
            Some(&names::name_addition(op.columns)),
            "idx",
            &index_taken(Some(facts), &[]),
        );
        up.push(Action::Alone(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})",
            names::quote_ident(&index_name),
            op.table,
            column_list(op.columns)
        )));
        index = Some(index_name);
    }
    let mut add = format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})",
        op.table,
        names::quote_ident(&name),
        column_list(op.columns),
        op.references,
        column_list(&referenced)
    );
    if let Some(action) = op.on_delete {
        add.push_str(&format!(" ON DELETE {}", on_delete(action)?));
    }
    add.push_str(" NOT VALID");
    up.push(Action::Transaction(vec![add]));
    // Moves the side table's rows back, for the reverse.
    let mut move_back = None;
    match op.orphans {
        ForeignKeyOrphans::Fail => {}
        ForeignKeyOrphans::MoveTo(side) => {
            let cols: Vec<String> = facts
                .columns
                .iter()
                .filter(|c| c.generated.is_none())
                .map(|c| c.name.clone())
                .collect();
            let list = column_list(&cols);
            up.push(Action::Transaction(vec![
                format!("CREATE TABLE IF NOT EXISTS {side} (LIKE {})", op.table),
                format!(
                    "WITH moved AS (DELETE FROM {} AS {CHILD} WHERE {orphan} RETURNING {CHILD}.*) \
                     INSERT INTO {side} ({list}) SELECT {list} FROM moved",
                    op.table
                ),
            ]));
            move_back = Some(vec![
                format!("CREATE TABLE IF NOT EXISTS {side} (LIKE {})", op.table),
                format!(
                    "WITH back AS (DELETE FROM {side} RETURNING *) \
                     INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE SELECT {list} FROM back",
                    op.table
                ),
                format!("DROP TABLE {side}"),
            ]);
        }
        ForeignKeyOrphans::Delete => {
            up.push(Action::Backfill(format!(
                "DELETE FROM {} AS {CHILD} WHERE {orphan}",
                op.table
            )));
            drops_data = true;
            down_refused = Some(format!(
                "the orphans of {} were deleted; only the backup taken before this step has them",
                op.table
            ));
        }
        ForeignKeyOrphans::SetNull => {
            for c in op.columns {
                if column(facts, c)?.not_null {
                    return Err(CompileError {
                        message: format!(
                            "add_foreign_key: orphans = \"set_null\", but {}.{} is NOT NULL",
                            op.table,
                            names::quote_ident(c)
                        ),
                        help: Some(
                            "choose orphans = \"delete\" or { move_to = \"…\" }, or drop NOT NULL first"
                                .into(),
                        ),
                    });
                }
            }
            let set = op
                .columns
                .iter()
                .map(|c| format!("{} = NULL", names::quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            up.push(Action::Backfill(format!(
                "UPDATE {} AS {CHILD} SET {set} WHERE {orphan}",
                op.table
            )));
            drops_data = true;
            down_refused = Some(format!(
                "the orphans' keys in {} were set to NULL; only the backup taken before this step \
                 has the old values",
                op.table
            ));
        }
    }
    up.push(Action::Alone(format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        op.table,
        names::quote_ident(&name)
    )));
    let down = match down_refused {
        Some(why) => Err(why),
        None => {
            let mut down = vec![Action::Transaction(vec![format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                op.table,
                names::quote_ident(&name)
            )])];
            // After the key is gone, so the orphans can come back. The side
            // table is created when missing (a reverse after a step that
            // stopped before the move) so that one plain transaction does it.
            if let Some(back) = move_back {
                down.push(Action::Transaction(back));
            }
            if let Some(index) = &index {
                down.push(Action::Alone(format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    sibling(op.table, index)
                )));
            }
            Ok(down)
        }
    };
    Ok(Compiled {
        up,
        down,
        drops_data,
    })
}

/// The referenced columns: as written, or the table's own primary key for a
/// self-reference. Another table's key is not in this table's facts, so it
/// must be written.
fn referenced_columns(
    op: &AddForeignKey<'_>,
    facts: &TableFacts,
) -> Result<Vec<String>, CompileError> {
    if !op.references_columns.is_empty() {
        return Ok(op.references_columns.to_vec());
    }
    let self_reference = names::parts(op.references) == names::parts(&facts.name)
        || names::parts(op.references) == names::parts(op.table);
    if self_reference && !facts.primary_key.is_empty() {
        return Ok(facts.primary_key.clone());
    }
    Err(CompileError {
        message: format!(
            "add_foreign_key: the referenced columns of {} are needed to find orphans",
            op.references
        ),
        help: Some("write references_columns = [\"id\"] (the referenced key)".into()),
    })
}

/// `ON DELETE` actions PostgreSQL knows, as SQL.
fn on_delete(action: &str) -> Result<&'static str, CompileError> {
    match action.trim().to_ascii_lowercase().as_str() {
        "cascade" => Ok("CASCADE"),
        "set null" => Ok("SET NULL"),
        "set default" => Ok("SET DEFAULT"),
        "restrict" => Ok("RESTRICT"),
        "no action" => Ok("NO ACTION"),
        other => Err(CompileError {
            message: format!("add_foreign_key: unknown on_delete `{other}`"),
            help: Some(
                "write one of \"cascade\", \"set null\", \"set default\", \"restrict\", \"no action\""
                    .into(),
            ),
        }),
    }
}

/// A row of the referencing table (aliased [`CHILD`]) is an orphan when all
/// its key columns are set (MATCH SIMPLE ignores a key with a NULL) and no
/// referenced row has that key.
fn orphan_condition(op: &AddForeignKey<'_>, referenced: &[String]) -> String {
    let set = op
        .columns
        .iter()
        .map(|c| format!("{CHILD}.{} IS NOT NULL", names::quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let matches = op
        .columns
        .iter()
        .zip(referenced)
        .map(|(c, r)| {
            format!(
                "{PARENT}.{} = {CHILD}.{}",
                names::quote_ident(r),
                names::quote_ident(c)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "{set} AND NOT EXISTS (SELECT 1 FROM {} AS {PARENT} WHERE {matches})",
        op.references
    )
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, IndexFacts};
    use super::*;

    fn col(name: &str, not_null: bool) -> ColumnFacts {
        ColumnFacts {
            name: name.into(),
            type_sql: "bigint".into(),
            not_null,
            default: None,
            identity: None,
            generated: None,
        }
    }

    fn orders() -> TableFacts {
        TableFacts {
            name: "public.orders".into(),
            columns: vec![col("id", true), col("user_id", false), col("total", false)],
            primary_key: vec!["id".into()],
            indexes: vec![IndexFacts {
                name: "orders_pkey".into(),
                definition: "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)"
                    .into(),
                columns: vec!["id".into()],
                constraint: Some("orders_pkey".into()),
            }],
            ..TableFacts::default()
        }
    }

    fn compile_with(
        facts: &TableFacts,
        orphans: &ForeignKeyOrphans,
        table: &str,
        columns: &[String],
    ) -> Result<Compiled, CompileError> {
        let refs = vec!["id".to_owned()];
        compile(
            &AddForeignKey {
                table,
                columns,
                references: "users",
                references_columns: &refs,
                name: None,
                orphans,
                on_delete: Some("cascade"),
            },
            &Context {
                version: "20260301120000",
                step: None,
                table: Some(facts),
            },
        )
    }

    #[test]
    fn fail_policy_validates_then_indexes_adds_and_validates() {
        let f = orders();
        let cols = vec!["user_id".to_owned()];
        let c = compile_with(&f, &ForeignKeyOrphans::Fail, "orders", &cols).unwrap();
        let text: Vec<String> = c.up.iter().map(|a| a.to_string()).collect();
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(text[0].contains(
            "SELECT strata_child.id, strata_child.user_id FROM orders AS strata_child WHERE strata_child.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users AS strata_parent WHERE strata_parent.id = strata_child.user_id) LIMIT 20"
        ), "{}", text[0]);
        assert_eq!(
            c.up[1],
            Action::Alone(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id)"
                    .into()
            )
        );
        assert_eq!(
            c.up[2],
            Action::Transaction(vec![
                "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE NOT VALID".into()
            ])
        );
        assert_eq!(
            c.up[3],
            Action::Alone("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey".into())
        );
        assert_eq!(
            c.down,
            Ok(vec![
                Action::Transaction(vec![
                    "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_user_id_fkey".into()
                ]),
                Action::Alone("DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx".into()),
            ])
        );
        assert!(!c.drops_data);
    }

    #[test]
    fn an_existing_leading_index_is_reused() {
        let mut f = orders();
        f.indexes.push(IndexFacts {
            name: "by_user".into(),
            definition: "CREATE INDEX by_user ON public.orders USING btree (user_id, total)".into(),
            columns: vec!["user_id".into(), "total".into()],
            constraint: None,
        });
        let cols = vec!["user_id".to_owned()];
        let c = compile_with(&f, &ForeignKeyOrphans::Delete, "orders", &cols).unwrap();
        assert!(!c.up.iter().any(|a| a.to_string().contains("CREATE INDEX")));
    }

    #[test]
    fn policies() {
        let f = orders();
        let cols = vec!["user_id".to_owned()];
        let moved = compile_with(
            &f,
            &ForeignKeyOrphans::MoveTo("orphaned_orders".into()),
            "orders",
            &cols,
        )
        .unwrap();
        let text: Vec<String> = moved.up.iter().map(|a| a.to_string()).collect();
        assert!(text[2].contains("CREATE TABLE IF NOT EXISTS orphaned_orders (LIKE orders)"));
        assert!(text[2].contains("WITH moved AS (DELETE FROM orders AS strata_child WHERE"));
        assert!(text[2].contains(
            "INSERT INTO orphaned_orders (id, user_id, total) SELECT id, user_id, total FROM moved"
        ));
        assert!(moved.down.is_ok());
        assert!(!moved.drops_data);

        let deleted = compile_with(&f, &ForeignKeyOrphans::Delete, "orders", &cols).unwrap();
        assert!(
            matches!(&deleted.up[2], Action::Backfill(s) if s.starts_with("DELETE FROM orders AS strata_child WHERE strata_child.user_id IS NOT NULL"))
        );
        assert!(deleted.down.is_err());
        assert!(deleted.drops_data);

        let nulled = compile_with(&f, &ForeignKeyOrphans::SetNull, "orders", &cols).unwrap();
        assert!(
            matches!(&nulled.up[2], Action::Backfill(s) if s.starts_with("UPDATE orders AS strata_child SET user_id = NULL WHERE"))
        );
        assert!(nulled.down.is_err());

        let mut strict = orders();
        strict.columns[1].not_null = true;
        assert!(compile_with(&strict, &ForeignKeyOrphans::SetNull, "orders", &cols).is_err());
    }

    #[test]
    fn odd_names_self_reference_and_errors() {
        let mut f = orders();
        f.name = "app.\"User Data\"".into();
        f.columns.push(col("Parent Id", false));
        let cols = vec!["Parent Id".to_owned()];
        let c = compile(
            &AddForeignKey {
                table: "app.\"User Data\"",
                columns: &cols,
                references: "app.\"User Data\"",
                references_columns: &[],
                name: None,
                orphans: &ForeignKeyOrphans::Fail,
                on_delete: None,
            },
            &Context {
                version: "1",
                step: None,
                table: Some(&f),
            },
        )
        .unwrap();
        let text: Vec<String> = c.up.iter().map(|a| a.to_string()).collect();
        assert!(text[2].contains("ADD CONSTRAINT \"User Data_Parent Id_fkey\" FOREIGN KEY (\"Parent Id\") REFERENCES app.\"User Data\" (id) NOT VALID"), "{}", text[2]);
        assert!(text[1].contains("DROP") || text[1].contains("\"User Data_Parent Id_idx\""));

        let missing = vec!["nope".to_owned()];
        assert!(compile_with(&f, &ForeignKeyOrphans::Fail, "orders", &missing).is_err());
        let no_refs = compile(
            &AddForeignKey {
                table: "orders",
                columns: &["user_id".to_owned()],
                references: "users",
                references_columns: &[],
                name: None,
                orphans: &ForeignKeyOrphans::Fail,
                on_delete: None,
            },
            &Context {
                version: "1",
                step: None,
                table: Some(&orders()),
            },
        );
        assert!(no_refs.is_err());
    }

    #[test]
    fn backfill_statements_are_ones_the_engine_batches() {
        let f = orders();
        let cols = vec!["user_id".to_owned()];
        for policy in [ForeignKeyOrphans::Delete, ForeignKeyOrphans::SetNull] {
            let c = compile_with(&f, &policy, "orders", &cols).unwrap();
            for a in &c.up {
                if let Action::Backfill(sql) = a {
                    crate::engine::backfill::BackfillSpec::from_sql(sql).unwrap();
                }
            }
        }
    }
}
