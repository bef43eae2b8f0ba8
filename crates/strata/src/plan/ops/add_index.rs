//! `add_index`: an index built with `CREATE INDEX CONCURRENTLY`, so writes
//! to the table go on while it builds.
//!
//! The statement runs alone (CONCURRENTLY cannot run in a transaction
//! block) with `IF NOT EXISTS`; a build that failed leaves an INVALID index
//! of that name, which the engine drops before it retries. An omitted name
//! is the one PostgreSQL would give (`orders_user_id_idx`, `orders_expr_idx`,
//! a number appended when the table already has one), so the plan ends in
//! the catalog of the naive `CREATE INDEX ON …`.

use super::super::{Action, CompileError, Compiled, Context};
use super::table_names::{
    choose_name, index_column_names, index_shape, index_taken, sibling, single_step,
};
use crate::sql::names;

/// What `add_index` says.
pub(super) struct AddIndex<'a> {
    pub table: &'a str,
    pub name: Option<&'a str>,
    pub columns: &'a [String],
    pub unique: bool,
    pub using: Option<&'a str>,
    pub predicate: Option<&'a str>,
}

/// The index's statement, without `CONCURRENTLY IF NOT EXISTS` and name:
/// `ON t USING m (…) WHERE …`, checked by parsing it.
fn body(op: &AddIndex<'_>) -> Result<(String, Vec<Option<String>>), CompileError> {
    if op.columns.is_empty() {
        return Err(CompileError {
            message: format!("add_index on {} lists no columns", op.table),
            help: Some("write columns = [\"col\"] (columns or expressions, as SQL)".into()),
        });
    }
    let mut sql = format!("ON {}", op.table);
    if let Some(using) = op.using {
        sql.push_str(&format!(" USING {}", names::quote_ident(using)));
    }
    sql.push_str(&format!(" ({})", op.columns.join(", ")));
    if let Some(p) = op.predicate {
        sql.push_str(&format!(" WHERE {p}"));
    }
    let shape = index_shape(&format!("CREATE INDEX {sql}")).map_err(|e| CompileError {
        message: format!("add_index on {}: the index does not parse: {e}", op.table),
        help: Some(
            "columns are column names or expressions in parentheses, e.g. [\"email\", \"(lower(name))\"]"
                .into(),
        ),
    })?;
    Ok((sql, shape.key_names))
}

/// The index's name: as written, or PostgreSQL's default.
pub(super) fn index_name(op: &AddIndex<'_>, ctx: &Context<'_>) -> Result<String, CompileError> {
    if let Some(n) = op.name {
        // `IF NOT EXISTS` would silently keep another index of that name;
        // the facts are those from before the step, so a resumed build is
        // not mistaken for one.
        if ctx
            .table
            .is_some_and(|f| f.indexes.iter().any(|i| i.name == n))
        {
            return Err(CompileError {
                message: format!("add_index: {} already has an index named `{n}`", op.table),
                help: Some(
                    "choose another name, or leave `name` out for PostgreSQL's default".into(),
                ),
            });
        }
        return Ok(n.to_owned());
    }
    let (_, keys) = body(op)?;
    let cols = index_column_names(&keys);
    let addition = names::name_addition(&cols);
    Ok(choose_name(
        &names::base_name(op.table),
        Some(&addition),
        "idx",
        &index_taken(ctx.table, &[]),
    ))
}

/// `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS …` and its drop.
pub(super) fn statements(
    op: &AddIndex<'_>,
    ctx: &Context<'_>,
) -> Result<(String, String), CompileError> {
    let (sql, _) = body(op)?;
    let name = index_name(op, ctx)?;
    let create = format!(
        "CREATE {}INDEX CONCURRENTLY IF NOT EXISTS {} {sql}",
        if op.unique { "UNIQUE " } else { "" },
        names::quote_ident(&name)
    );
    let drop = format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {}",
        sibling(op.table, &name)
    );
    Ok((create, drop))
}

pub(super) fn compile(op: &AddIndex<'_>, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    single_step("add_index", ctx)?;
    let (create, drop) = statements(op, ctx)?;
    Ok(Compiled {
        up: vec![Action::Alone(create)],
        down: Ok(vec![Action::Alone(drop)]),
        drops_data: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::{IndexFacts, TableFacts};
    use super::*;

    fn ctx<'a>(table: Option<&'a TableFacts>) -> Context<'a> {
        Context {
            version: "20260301120000",
            step: None,
            table,
        }
    }

    fn op<'a>(table: &'a str, columns: &'a [String]) -> AddIndex<'a> {
        AddIndex {
            table,
            name: None,
            columns,
            unique: false,
            using: None,
            predicate: None,
        }
    }

    #[test]
    fn builds_concurrently_with_postgres_default_name() {
        let cols = vec!["user_id".to_owned(), "(lower(email))".to_owned()];
        let c = compile(&op("orders", &cols), &ctx(None)).unwrap();
        assert_eq!(
            c.up,
            vec![Action::Alone(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_lower_idx ON orders (user_id, (lower(email)))".into()
            )]
        );
        assert_eq!(
            c.down,
            Ok(vec![Action::Alone(
                "DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_lower_idx".into()
            )])
        );
        assert!(!c.drops_data);
    }

    #[test]
    fn unique_using_where_and_odd_names() {
        let cols = vec!["\"Email Address\"".to_owned()];
        let o = AddIndex {
            unique: true,
            using: Some("btree"),
            predicate: Some("deleted_at IS NULL"),
            ..op("app.\"User Data\"", &cols)
        };
        let c = compile(&o, &ctx(None)).unwrap();
        assert_eq!(
            c.up,
            vec![Action::Alone(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"User Data_Email Address_idx\" ON app.\"User Data\" USING btree (\"Email Address\") WHERE deleted_at IS NULL".into()
            )]
        );
        assert_eq!(
            c.down,
            Ok(vec![Action::Alone(
                "DROP INDEX CONCURRENTLY IF EXISTS app.\"User Data_Email Address_idx\"".into()
            )])
        );
    }

    #[test]
    fn default_name_skips_taken_names_and_fits_63_bytes() {
        let facts = TableFacts {
            indexes: vec![IndexFacts {
                name: "orders_user_id_idx".into(),
                definition:
                    "CREATE INDEX orders_user_id_idx ON public.orders USING btree (user_id)".into(),
                columns: vec!["user_id".into()],
                constraint: None,
            }],
            ..TableFacts::default()
        };
        let cols = vec!["user_id".to_owned()];
        let o = op("orders", &cols);
        assert_eq!(
            index_name(&o, &ctx(Some(&facts))).unwrap(),
            "orders_user_id_idx1"
        );
        let long = "t".repeat(70);
        let cols = vec!["c".repeat(70)];
        let name = index_name(&op(&long, &cols), &ctx(None)).unwrap();
        assert!(name.len() <= 63, "{name}");
        assert!(name.ends_with("_idx"));
    }

    #[test]
    fn explicit_name_and_errors() {
        let cols = vec!["a".to_owned()];
        let o = AddIndex {
            name: Some("My Index"),
            ..op("t", &cols)
        };
        let c = compile(&o, &ctx(None)).unwrap();
        assert_eq!(
            c.up,
            vec![Action::Alone(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"My Index\" ON t (a)".into()
            )]
        );
        assert!(compile(&op("t", &[]), &ctx(None)).is_err());
        let bad = vec!["a +".to_owned()];
        assert!(compile(&op("t", &bad), &ctx(None)).is_err());
        let stepped = Context {
            step: Some("expand"),
            ..ctx(None)
        };
        assert!(compile(&op("t", &cols), &stepped).is_err());
    }
}
