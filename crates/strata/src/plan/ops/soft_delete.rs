//! `soft_delete`: rows are marked deleted instead of removed.
//!
//! A nullable `timestamptz` column (metadata only, no rewrite), a partial
//! index of the active rows on the primary key built CONCURRENTLY (so
//! lookups of active rows stay index-only-sized as deleted rows pile up),
//! and a view of the active rows the app can read instead of the table.
//! The reverse drops the three, newest first.

use super::super::{Action, CompileError, Compiled, Context};
use super::table_names::{base, clip, column_list, facts, sibling, single_step};
use crate::sql::names;

/// What `soft_delete` says.
pub(super) struct SoftDelete<'a> {
    pub table: &'a str,
    pub column: Option<&'a str>,
    pub view: Option<&'a str>,
}

pub(super) fn compile(op: &SoftDelete<'_>, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    single_step("soft_delete", ctx)?;
    let facts = facts(ctx, "soft_delete")?;
    if facts.primary_key.is_empty() {
        return Err(CompileError {
            message: format!(
                "soft_delete: {} has no primary key to index the active rows on",
                op.table
            ),
            help: Some("add a primary key first, or write the partial index with add_index".into()),
        });
    }
    let column = op.column.unwrap_or("deleted_at");
    if facts.columns.iter().any(|c| c.name == column) {
        return Err(CompileError {
            message: format!("soft_delete: {} already has a column `{column}`", op.table),
            help: Some("name another column with column = \"…\"".into()),
        });
    }
    let table_base = base(op.table);
    let view = match op.view {
        Some(v) => v.to_owned(),
        None => sibling(op.table, &clip(&format!("active_{table_base}"))),
    };
    let index = names::object_name(&table_base, Some("active"), "idx");
    let col = names::quote_ident(column);
    let up = vec![
        Action::Transaction(vec![format!(
            "ALTER TABLE {} ADD COLUMN {col} timestamptz",
            op.table
        )]),
        Action::Alone(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({}) WHERE {col} IS NULL",
            names::quote_ident(&index),
            op.table,
            column_list(&facts.primary_key)
        )),
        Action::Transaction(vec![format!(
            "CREATE VIEW {view} AS SELECT * FROM {} WHERE {col} IS NULL",
            op.table
        )]),
    ];
    let down = vec![
        Action::Transaction(vec![format!("DROP VIEW IF EXISTS {view}")]),
        Action::Alone(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            sibling(op.table, &index)
        )),
        Action::Transaction(vec![format!(
            "ALTER TABLE {} DROP COLUMN IF EXISTS {col}",
            op.table
        )]),
    ];
    Ok(Compiled {
        up,
        down: Ok(down),
        drops_data: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, TableFacts};
    use super::*;

    fn facts(name: &str) -> TableFacts {
        TableFacts {
            name: name.into(),
            columns: vec![ColumnFacts {
                name: "id".into(),
                type_sql: "bigint".into(),
                not_null: true,
                default: None,
                identity: None,
                generated: None,
            }],
            primary_key: vec!["id".into()],
            ..TableFacts::default()
        }
    }

    fn ctx(f: &TableFacts) -> Context<'_> {
        Context {
            version: "20260301120000",
            step: None,
            table: Some(f),
        }
    }

    #[test]
    fn column_partial_index_and_view() {
        let f = facts("users");
        let c = compile(
            &SoftDelete {
                table: "users",
                column: None,
                view: None,
            },
            &ctx(&f),
        )
        .unwrap();
        assert_eq!(
            c.up,
            vec![
                Action::Transaction(vec![
                    "ALTER TABLE users ADD COLUMN deleted_at timestamptz".into()
                ]),
                Action::Alone(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_active_idx ON users (id) WHERE deleted_at IS NULL".into()
                ),
                Action::Transaction(vec![
                    "CREATE VIEW active_users AS SELECT * FROM users WHERE deleted_at IS NULL"
                        .into()
                ]),
            ]
        );
        let down = c.down.unwrap();
        assert_eq!(down.len(), 3);
        assert!(down[0]
            .to_string()
            .contains("DROP VIEW IF EXISTS active_users"));
        assert!(down[2]
            .to_string()
            .contains("DROP COLUMN IF EXISTS deleted_at"));
    }

    #[test]
    fn odd_names_are_quoted_and_schema_kept() {
        let f = facts("app.\"User Data\"");
        let c = compile(
            &SoftDelete {
                table: "app.\"User Data\"",
                column: Some("Removed At"),
                view: None,
            },
            &ctx(&f),
        )
        .unwrap();
        let text: Vec<String> = c.up.iter().map(|a| a.to_string()).collect();
        assert!(text[0].contains("ADD COLUMN \"Removed At\" timestamptz"));
        assert!(text[1].contains(
            "\"User Data_active_idx\" ON app.\"User Data\" (id) WHERE \"Removed At\" IS NULL"
        ));
        assert!(text[2].contains("CREATE VIEW app.\"active_User Data\""));
        let down: Vec<String> = c.down.unwrap().iter().map(|a| a.to_string()).collect();
        assert!(down[1].contains("DROP INDEX CONCURRENTLY IF EXISTS app.\"User Data_active_idx\""));
    }

    #[test]
    fn refuses_without_primary_key_existing_column_or_facts() {
        let mut f = facts("t");
        f.primary_key.clear();
        let op = SoftDelete {
            table: "t",
            column: None,
            view: None,
        };
        assert!(compile(&op, &ctx(&f)).is_err());
        let f = facts("t");
        let op2 = SoftDelete {
            column: Some("id"),
            ..op
        };
        assert!(compile(&op2, &ctx(&f)).is_err());
        let none = Context {
            version: "1",
            step: None,
            table: None,
        };
        assert!(compile(&op, &none).is_err());
    }

    #[test]
    fn long_view_names_fit() {
        let long = "x".repeat(63);
        let f = facts(&long);
        let c = compile(
            &SoftDelete {
                table: &long,
                column: None,
                view: None,
            },
            &ctx(&f),
        )
        .unwrap();
        let view = c.up[2].to_string();
        let name = view.split_whitespace().nth(3).unwrap().to_owned();
        assert!(name.len() <= 63, "{name}");
    }
}
