//! `add_required_column`: a NOT NULL column on a table that has rows.
//!
//! `ADD COLUMN … NOT NULL DEFAULT x` is instant for a constant default, but
//! a volatile one (`now()`, `gen_random_uuid()`) rewrites the whole table
//! under ACCESS EXCLUSIVE, and a value computed from other columns needs an
//! UPDATE of every row. So the column is added nullable, without a default
//! (instant whatever the default), gets its default for new rows in the
//! same transaction, existing rows are filled in resumable batches (with
//! `backfill`, else the default), and NOT NULL comes through a validated
//! check (see `set_not_null`). A constant default with no `backfill` skips
//! the batches: PostgreSQL stores it once in the catalog for every
//! existing row.

use strata_source::sql::names::quote_ident;

use super::super::{Action, CompileError, Compiled, Context};
use super::set_not_null::not_null_via_check;
use super::shadow::{column_name, Helpers};

/// Compiles `add_required_column`.
pub(super) fn compile(
    table: &str,
    column_sql: &str,
    column_type: &str,
    default: &str,
    backfill: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let name = column_name(column_sql);
    let col = quote_ident(&name);
    let helpers = Helpers::new(ctx.version, "req", table, &[&name]);
    let mut up = Vec::new();
    if backfill.is_none() && is_constant(default) {
        up.push(Action::Transaction(vec![format!(
            "ALTER TABLE {table} ADD COLUMN {col} {column_type} DEFAULT {default}"
        )]));
    } else {
        up.push(Action::Transaction(vec![
            format!("ALTER TABLE {table} ADD COLUMN {col} {column_type}"),
            format!("ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default}"),
        ]));
        // Rows the app inserts from now on get the default; only rows that
        // are NULL (existing ones, or an explicit NULL) are filled, so a
        // resumed or repeated backfill changes nothing twice.
        up.push(Action::Backfill(format!(
            "UPDATE {table} SET {col} = {} WHERE {col} IS NULL",
            backfill.unwrap_or(default)
        )));
    }
    up.extend(not_null_via_check(
        table,
        &col,
        &helpers.name("chk"),
        ctx.table,
        false,
    ));
    let down = vec![Action::Transaction(vec![format!(
        "ALTER TABLE {table} DROP COLUMN IF EXISTS {col}"
    )])];
    Ok(Compiled {
        up,
        down: Ok(down),
        drops_data: false,
    })
}

/// True when `expr` is a literal (`false`, `0`, `'x'`, `'x'::text`), which
/// PostgreSQL evaluates once for the default of existing rows instead of
/// rewriting the table.
fn is_constant(expr: &str) -> bool {
    use pg_query::NodeEnum;
    let Ok(tree) = pg_query::parse(&format!("SELECT {expr}"), 0) else {
        return false;
    };
    let Some(NodeEnum::SelectStmt(select)) = tree
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|s| s.node.as_ref())
    else {
        return false;
    };
    let [target] = select.target_list.as_slice() else {
        return false;
    };
    let Some(NodeEnum::ResTarget(t)) = target.node.as_ref() else {
        return false;
    };
    let mut node = t.val.as_deref().and_then(|v| v.node.as_ref());
    if let Some(NodeEnum::TypeCast(cast)) = node {
        node = cast.arg.as_deref().and_then(|v| v.node.as_ref());
    }
    matches!(node, Some(NodeEnum::AConst(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(default: &str, backfill: Option<&str>) -> Vec<String> {
        let ctx = Context {
            version: "20260301120000",
            step: None,
            table: None,
        };
        compile(
            "\"User Data\"",
            "verified",
            "boolean",
            default,
            backfill,
            &ctx,
        )
        .unwrap()
        .up
        .iter()
        .map(|a| a.to_string())
        .collect()
    }

    #[test]
    fn a_constant_default_needs_no_backfill() {
        let up = compiled("false", None);
        assert_eq!(
            up[0],
            "BEGIN;\nALTER TABLE \"User Data\" ADD COLUMN verified boolean DEFAULT false;\nCOMMIT;"
        );
        assert!(!up.iter().any(|a| a.contains("strata:backfill")));
        assert!(up.iter().any(|a| a.contains("VALIDATE CONSTRAINT")));
        assert!(up.last().unwrap().contains("SET NOT NULL"));
    }

    #[test]
    fn a_volatile_default_or_a_backfill_fills_rows_in_batches() {
        let up = compiled("now() > '2020-01-01'", None);
        assert!(
            up[0].contains("ADD COLUMN verified boolean;\n"),
            "{}",
            up[0]
        );
        assert!(up[0].contains("SET DEFAULT now() > '2020-01-01'"));
        assert_eq!(
            up[1],
            "-- strata:backfill\nUPDATE \"User Data\" SET verified = now() > '2020-01-01' WHERE verified IS NULL;"
        );
        let up = compiled("false", Some("email IS NOT NULL"));
        assert!(
            up[1].contains("SET verified = email IS NOT NULL WHERE"),
            "{}",
            up[1]
        );
    }

    #[test]
    fn constants_are_recognised() {
        for c in ["false", "0", "'x'", "'{}'::jsonb"] {
            assert!(is_constant(c), "{c}");
        }
        for v in ["now()", "gen_random_uuid()", "1 + x"] {
            assert!(!is_constant(v), "{v}");
        }
    }

    #[test]
    fn the_reverse_drops_the_column() {
        let ctx = Context {
            version: "1",
            step: None,
            table: None,
        };
        let c = compile("users", "v", "int", "0", None, &ctx).unwrap();
        assert_eq!(
            c.down.unwrap(),
            vec![Action::Transaction(vec![
                "ALTER TABLE users DROP COLUMN IF EXISTS v".into()
            ])]
        );
    }
}
