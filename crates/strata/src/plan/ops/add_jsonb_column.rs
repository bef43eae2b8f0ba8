//! `add_jsonb_column`: a JSONB column the app can use at once.
//!
//! The column gets a constant default (`'{}'::jsonb` unless written), which
//! PostgreSQL 11+ stores in the catalog: no rewrite, a moment's lock.
//! Existing rows may be filled from an expression over other columns in
//! batches; the GIN index (on unless `gin = false`) and the expression
//! indexes on `path_indexes` are built CONCURRENTLY, named as PostgreSQL
//! names them (`t_c_idx`, `t_expr_idx`, `t_expr_idx1`). The reverse drops
//! the indexes and the column.

use super::super::{Action, CompileError, Compiled, Context};
use super::table_names::{choose_name, index_shape, index_taken, sibling, single_step};
use crate::sql::names;

/// What `add_jsonb_column` says.
pub(super) struct AddJsonbColumn<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub default: Option<&'a str>,
    pub backfill: Option<&'a str>,
    pub gin: Option<bool>,
    pub path_indexes: &'a [String],
}

pub(super) fn compile(
    op: &AddJsonbColumn<'_>,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    single_step("add_jsonb_column", ctx)?;
    if let Some(f) = ctx.table {
        if f.columns.iter().any(|c| c.name == op.column) {
            return Err(CompileError {
                message: format!(
                    "add_jsonb_column: {} already has a column `{}`",
                    op.table, op.column
                ),
                help: Some("choose another column name".into()),
            });
        }
    }
    let col = names::quote_ident(op.column);
    let default = op.default.unwrap_or("'{}'::jsonb");
    let mut up = vec![Action::Transaction(vec![format!(
        "ALTER TABLE {} ADD COLUMN {col} jsonb DEFAULT {default}",
        op.table
    )])];
    if let Some(expr) = op.backfill {
        // Rows already holding the value are skipped, so a resumed or
        // repeated backfill writes nothing twice.
        up.push(Action::Backfill(format!(
            "UPDATE {} SET {col} = ({expr}) WHERE {col} IS DISTINCT FROM ({expr})",
            op.table
        )));
    }
    let table_base = names::base_name(op.table);
    let mut index_names: Vec<String> = Vec::new();
    let mut creates = Vec::new();
    if op.gin.unwrap_or(true) {
        let name = choose_name(
            &table_base,
            Some(op.column),
            "idx",
            &index_taken(ctx.table, &index_names),
        );
        creates.push(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING gin ({col})",
            names::quote_ident(&name),
            op.table
        ));
        index_names.push(name);
    }
    for path in op.path_indexes {
        // PostgreSQL names an expression key (`lower`, a cast's type) or
        // calls it `expr`; a path that does not parse is reported below.
        let key = index_shape(&format!("CREATE INDEX ON t (({path}))"))
            .ok()
            .and_then(|s| s.key_names.into_iter().next().flatten())
            .unwrap_or_else(|| "expr".to_owned());
        let name = choose_name(
            &table_base,
            Some(&key),
            "idx",
            &index_taken(ctx.table, &index_names),
        );
        creates.push(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} (({path}))",
            names::quote_ident(&name),
            op.table
        ));
        index_names.push(name);
    }
    for create in &creates {
        if let Err(e) = pg_query::parse(create, 0) {
            return Err(CompileError {
                message: format!("add_jsonb_column: an index does not parse: {e}"),
                help: Some(
                    "path_indexes are expressions over the column, e.g. [\"prefs->>'theme'\"]"
                        .into(),
                ),
            });
        }
    }
    up.extend(creates.into_iter().map(Action::Alone));
    let mut down: Vec<Action> = index_names
        .iter()
        .rev()
        .map(|n| {
            Action::Alone(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                sibling(op.table, n)
            ))
        })
        .collect();
    down.push(Action::Transaction(vec![format!(
        "ALTER TABLE {} DROP COLUMN IF EXISTS {col}",
        op.table
    )]));
    Ok(Compiled {
        up,
        down: Ok(down),
        drops_data: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            version: "20260301120000",
            step: None,
            table: None,
        }
    }

    #[test]
    fn column_backfill_gin_and_path_indexes() {
        let paths = vec!["prefs->>'theme'".to_owned(), "(prefs->>'lang')".to_owned()];
        let c = compile(
            &AddJsonbColumn {
                table: "users",
                column: "prefs",
                default: None,
                backfill: Some("jsonb_build_object('theme', theme)"),
                gin: None,
                path_indexes: &paths,
            },
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            c.up,
            vec![
                Action::Transaction(vec![
                    "ALTER TABLE users ADD COLUMN prefs jsonb DEFAULT '{}'::jsonb".into()
                ]),
                Action::Backfill(
                    "UPDATE users SET prefs = (jsonb_build_object('theme', theme)) WHERE prefs IS DISTINCT FROM (jsonb_build_object('theme', theme))".into()
                ),
                Action::Alone(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_prefs_idx ON users USING gin (prefs)".into()
                ),
                Action::Alone(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_expr_idx ON users ((prefs->>'theme'))".into()
                ),
                Action::Alone(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_expr_idx1 ON users (((prefs->>'lang')))".into()
                ),
            ]
        );
        assert_eq!(
            c.down,
            Ok(vec![
                Action::Alone("DROP INDEX CONCURRENTLY IF EXISTS users_expr_idx1".into()),
                Action::Alone("DROP INDEX CONCURRENTLY IF EXISTS users_expr_idx".into()),
                Action::Alone("DROP INDEX CONCURRENTLY IF EXISTS users_prefs_idx".into()),
                Action::Transaction(vec!["ALTER TABLE users DROP COLUMN IF EXISTS prefs".into()]),
            ])
        );
    }

    #[test]
    fn no_gin_custom_default_and_odd_names() {
        let c = compile(
            &AddJsonbColumn {
                table: "app.\"User Data\"",
                column: "Extra Info",
                default: Some("'[]'::jsonb"),
                backfill: None,
                gin: Some(false),
                path_indexes: &[],
            },
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            c.up,
            vec![Action::Transaction(vec![
                "ALTER TABLE app.\"User Data\" ADD COLUMN \"Extra Info\" jsonb DEFAULT '[]'::jsonb"
                    .into()
            ])]
        );
        assert_eq!(c.down.unwrap().len(), 1);
    }

    #[test]
    fn bad_path_and_step_are_errors() {
        let paths = vec!["prefs->>".to_owned()];
        let op = AddJsonbColumn {
            table: "users",
            column: "prefs",
            default: None,
            backfill: None,
            gin: None,
            path_indexes: &paths,
        };
        assert!(compile(&op, &ctx()).is_err());
        let stepped = Context {
            step: Some("contract"),
            ..ctx()
        };
        assert!(compile(
            &AddJsonbColumn {
                path_indexes: &[],
                ..op
            },
            &stepped
        )
        .is_err());
    }
}
