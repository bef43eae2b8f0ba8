//! `set_not_null`: NOT NULL without a long ACCESS EXCLUSIVE scan.
//!
//! `ALTER COLUMN … SET NOT NULL` scans the whole table under ACCESS
//! EXCLUSIVE, blocking every read and write for as long as the scan takes.
//! Since PostgreSQL 12 it skips the scan when a validated
//! `CHECK (col IS NOT NULL)` already proves the column has no NULL, and
//! `VALIDATE CONSTRAINT` scans under SHARE UPDATE EXCLUSIVE, which lets
//! reads and writes go on. So: add the check `NOT VALID` (instant; new rows
//! are checked from then on), list the rows that would fail (so a failure
//! names them instead of ending in "violated by some row"), validate it
//! alone, then `SET NOT NULL` and drop the check in one short transaction.
//! `add_required_column`, `rename_column` and `change_column_type` reuse
//! the same path ([`not_null_via_check`]).

use strata_source::sql::names::quote_ident;

use super::super::{Action, CompileError, Compiled, Context, TableFacts};
use super::shadow::{column, column_name, literal, row_keys, Helpers};

/// Compiles `set_not_null`.
pub(super) fn compile(
    table: &str,
    column_sql: &str,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let name = column_name(column_sql);
    if let Some(facts) = ctx.table {
        // Already NOT NULL (a plan applied to a database that has it): there
        // is nothing to do, and nothing to undo either (dropping NOT NULL
        // here would change what the plan did not create).
        if column("set_not_null", facts, &name)?.not_null {
            return Ok(Compiled {
                up: Vec::new(),
                down: Ok(Vec::new()),
                drops_data: false,
            });
        }
    }
    let helpers = Helpers::new(ctx.version, "nn", table, &[&name]);
    let check = helpers.name("chk");
    let col = quote_ident(&name);
    let up = not_null_via_check(table, &col, &check, ctx.table, false);
    let down = vec![Action::Transaction(vec![
        format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
            quote_ident(&check)
        ),
        format!("ALTER TABLE {table} ALTER COLUMN {col} DROP NOT NULL"),
    ])];
    Ok(Compiled {
        up,
        down: Ok(down),
        drops_data: false,
    })
}

/// The actions that make `col` (quoted) of `table` NOT NULL through the
/// validated check `check` (unquoted).
///
/// With `guarded`, every action may run again after the path already
/// finished (a reverse run a second time by `strata abort`): the
/// validation of a check that is gone already is skipped.
pub(super) fn not_null_via_check(
    table: &str,
    col: &str,
    check: &str,
    facts: Option<&TableFacts>,
    guarded: bool,
) -> Vec<Action> {
    let check_q = quote_ident(check);
    let keys = facts
        .map(row_keys)
        .unwrap_or_else(|| "ctid::text AS ctid".to_owned());
    let validate = if guarded {
        format!(
            "DO $strata$ BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = to_regclass({}) AND conname = {}) THEN ALTER TABLE {table} VALIDATE CONSTRAINT {check_q}; END IF; END $strata$",
            literal(table),
            literal(check)
        )
    } else {
        format!("ALTER TABLE {table} VALIDATE CONSTRAINT {check_q}")
    };
    vec![
        Action::Transaction(vec![
            // A retry after a failed validation finds the check there.
            format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check_q}"),
            format!(
                "ALTER TABLE {table} ADD CONSTRAINT {check_q} CHECK ({col} IS NOT NULL) NOT VALID"
            ),
        ]),
        Action::Validate {
            sql: format!("SELECT {keys} FROM {table} WHERE {col} IS NULL LIMIT 20"),
            message: format!(
                "rows of {table} where {col} is NULL (first 20 keys): set it, then run again"
            ),
        },
        Action::Alone(validate),
        Action::Transaction(vec![
            format!("ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL"),
            format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check_q}"),
        ]),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::super::ColumnFacts;
    use super::*;

    fn ctx(table: Option<&TableFacts>) -> Context<'_> {
        Context {
            version: "20260301120000",
            step: None,
            table,
        }
    }

    #[test]
    fn goes_through_a_validated_check() {
        let c = compile("\"User Data\"", "\"E Mail\"", &ctx(None)).unwrap();
        let text: Vec<String> = c.up.iter().map(|a| a.to_string()).collect();
        let all = text.join("\n");
        let check = Helpers::new("20260301120000", "nn", "\"User Data\"", &["E Mail"]).name("chk");
        assert!(check.len() <= 63);
        assert!(all.contains(&format!(
            "ALTER TABLE \"User Data\" ADD CONSTRAINT {check} CHECK (\"E Mail\" IS NOT NULL) NOT VALID;"
        )), "{all}");
        assert_eq!(
            text[2],
            format!("ALTER TABLE \"User Data\" VALIDATE CONSTRAINT {check};")
        );
        assert!(matches!(c.up[2], Action::Alone(_)));
        assert!(
            text[3].contains("SET NOT NULL;\nALTER TABLE \"User Data\" DROP CONSTRAINT IF EXISTS")
        );
        let down = c.down.unwrap();
        assert!(down[0]
            .to_string()
            .contains("ALTER COLUMN \"E Mail\" DROP NOT NULL"));
        assert!(!c.drops_data);
    }

    #[test]
    fn an_already_required_column_needs_nothing() {
        let facts = TableFacts {
            name: "public.users".into(),
            columns: vec![ColumnFacts {
                name: "email".into(),
                type_sql: "text".into(),
                not_null: true,
                default: None,
                identity: None,
                generated: None,
            }],
            ..TableFacts::default()
        };
        let c = compile("users", "email", &ctx(Some(&facts))).unwrap();
        assert!(c.up.is_empty());
        assert_eq!(c.down, Ok(vec![]));
        let e = compile("users", "nope", &ctx(Some(&facts))).unwrap_err();
        assert!(e.message.contains("has no column nope"), "{e:?}");
    }
}
