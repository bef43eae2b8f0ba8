//! `change_column_type`: a type change without the table rewrite.
//!
//! `ALTER COLUMN … TYPE … USING …` rewrites the table and rebuilds its
//! indexes under ACCESS EXCLUSIVE: nothing reads or writes the table until
//! it is done, and one value that does not convert rolls all of it back at
//! the end. So the change goes through a shadow column, in two steps:
//!
//! - `expand`: the shadow column of the new type (with the column's
//!   default, converted by PostgreSQL as the plain `ALTER` converts it, so
//!   a default that cannot be converted fails here, at once), a sync
//!   trigger that sets it from the column on every insert and on updates
//!   of the columns the `using` expression reads, a conversion check
//!   function; then a validation that every row converts (on failure, the
//!   first 20 keys, before any batch ran), the batched backfill, NOT NULL
//!   through a validated check, the column's check constraints and indexes
//!   copied onto the shadow, and a validation that every row's shadow holds
//!   its converted value. The trigger is installed before the validation,
//!   so a row written after it either converts or fails its write with
//!   the cast's error: the validation's answer stays true.
//! - `contract` (after a gate): in one short transaction, the trigger and
//!   functions go, the old column is dropped, the shadow takes its name and
//!   the copies take the originals' names. The end catalog is the plain
//!   `ALTER`'s.
//!
//! The contract has no reverse: the old values are gone (a reverse
//! expression is not something the plan file says), so only the backup
//! taken before the step brings them back.
//!
//! What is not carried is refused as for `rename_column`
//! (`shadow::refuse_uncarried`); a check constraint that does not hold for
//! the new type fails when it is copied, as the plain `ALTER` would.

use strata_source::sql::names::quote_ident;

use super::super::{Action, CompileError, Compiled, Context};
use super::set_not_null::not_null_via_check;
use super::shadow::{
    carried, column, column_name, facts, install_trigger, not_null_names, refuse_uncarried,
    remove_trigger, row_expression, row_keys, step_index, Helpers,
};

const OP: &str = "change_column_type";

/// Compiles one step of `change_column_type`.
pub(super) fn compile(
    table: &str,
    column_sql: &str,
    new_type: &str,
    using: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let step = step_index(OP, ctx, &["expand", "contract"])?;
    let facts = facts(OP, ctx)?;
    let name = column_name(column_sql);
    let col_facts = column(OP, facts, &name)?;
    refuse_uncarried(OP, facts, col_facts)?;
    let helpers = Helpers::for_table(ctx, facts, "typ", &[&name]);
    let col = quote_ident(&name);
    let shadow_name = helpers.name("new");
    let shadow = quote_ident(&shadow_name);
    let using = using.map(str::to_owned).unwrap_or_else(|| col.clone());
    let converted = format!("({using})::{new_type}");
    let carried = carried(OP, facts, &helpers, &name, &shadow)?;
    // Functions read the row's columns through a record; the trigger fires
    // on updates of the columns the conversion reads.
    let (on_new, reads) = row_expression(&converted, facts, "NEW")?;
    let (on_param, _) = row_expression(&converted, facts, "strata_row")?;
    let check_fn = helpers.function("ok");
    let drop_check_fn = format!("DROP FUNCTION IF EXISTS {check_fn}({})", facts.name);
    let keys = row_keys(facts);

    if step == 1 {
        let mut up = remove_trigger(&helpers, table);
        up.push(drop_check_fn);
        up.push(format!("ALTER TABLE {table} DROP COLUMN {col}"));
        up.push(format!(
            "ALTER TABLE {table} RENAME COLUMN {shadow} TO {col}"
        ));
        if let Some((kept, given)) = not_null_names(facts, &name, &shadow_name) {
            up.push(format!(
                "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
                quote_ident(&given),
                quote_ident(&kept)
            ));
        }
        up.extend(carried.take_names(table, &helpers));
        return Ok(Compiled {
            up: vec![Action::Transaction(up)],
            down: Err(format!(
                "the contract step of `{OP}` dropped the old {col} values; only the backup taken before it brings them back"
            )),
            drops_data: true,
        });
    }

    let mut first = vec![format!(
        "ALTER TABLE {table} ADD COLUMN {shadow} {new_type}"
    )];
    if let Some(d) = &col_facts.default {
        first.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {shadow} SET DEFAULT {d}"
        ));
    }
    first.push(format!(
        "CREATE OR REPLACE FUNCTION {check_fn}(strata_row {}) RETURNS boolean LANGUAGE plpgsql AS $strata$\nBEGIN\n  PERFORM {on_param};\n  RETURN true;\nEXCEPTION WHEN others THEN\n  RETURN false;\nEND\n$strata$",
        facts.name
    ));
    first.extend(install_trigger(
        &helpers,
        table,
        &reads,
        &format!("  NEW.{shadow} := {on_new};\n"),
    ));
    let mut up = vec![
        Action::Transaction(first),
        Action::Validate {
            sql: format!("SELECT {keys} FROM {table} AS strata_row WHERE NOT {check_fn}(strata_row) LIMIT 20"),
            message: format!(
                "rows of {table} whose {col} does not convert to {new_type} (first 20 keys): fix them or the `using` expression, then run again"
            ),
        },
        Action::Backfill(format!("UPDATE {table} SET {shadow} = {converted}")),
    ];
    if col_facts.not_null {
        up.extend(not_null_via_check(
            table,
            &shadow,
            &helpers.name("nn"),
            Some(facts),
            false,
        ));
    }
    up.extend(carried.build_copies(table));
    up.push(Action::Validate {
        sql: format!(
            "SELECT {keys} FROM {table} WHERE {shadow} IS DISTINCT FROM {converted} LIMIT 20"
        ),
        message: format!("rows of {table} whose converted {col} is not in sync (first 20 keys)"),
    });
    let mut down = remove_trigger(&helpers, table);
    down.push(drop_check_fn);
    down.push(format!(
        "ALTER TABLE {table} DROP COLUMN IF EXISTS {shadow}"
    ));
    Ok(Compiled {
        up,
        down: Ok(vec![Action::Transaction(down)]),
        drops_data: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, IndexFacts, TableFacts};
    use super::*;

    fn people() -> TableFacts {
        TableFacts {
            name: "app.\"People\"".into(),
            columns: vec![
                ColumnFacts {
                    name: "id".into(),
                    type_sql: "integer".into(),
                    not_null: true,
                    default: None,
                    identity: None,
                    generated: None,
                },
                ColumnFacts {
                    name: "age".into(),
                    type_sql: "character varying(10)".into(),
                    not_null: false,
                    default: None,
                    identity: None,
                    generated: None,
                },
            ],
            primary_key: vec!["id".into()],
            indexes: vec![IndexFacts {
                name: "people_age_idx".into(),
                definition: "CREATE INDEX people_age_idx ON app.\"People\" USING btree (age)"
                    .into(),
                columns: vec!["age".into()],
                constraint: None,
            }],
            ..TableFacts::default()
        }
    }

    fn sql(c: &[Action]) -> String {
        c.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn expand_checks_conversion_before_the_backfill() {
        let facts = people();
        let ctx = Context {
            version: "20260301120000",
            step: Some("expand"),
            table: Some(&facts),
        };
        let c = compile(
            "app.\"People\"",
            "age",
            "integer",
            Some("nullif(trim(age), '')"),
            &ctx,
        )
        .unwrap();
        let up = sql(&c.up);
        let shadow = Helpers::new("20260301120000", "typ", "app.\"People\"", &["age"]).name("new");
        assert!(shadow.len() <= 63);
        assert!(
            up.contains(&format!("ADD COLUMN {shadow} integer;")),
            "{up}"
        );
        assert!(
            up.contains("PERFORM (nullif(trim(strata_row.age), ''))::integer;"),
            "{up}"
        );
        assert!(
            up.contains(&format!(
                "NEW.{shadow} := (nullif(trim(NEW.age), ''))::integer;"
            )),
            "{up}"
        );
        assert!(
            up.contains("BEFORE INSERT OR UPDATE OF age ON app.\"People\""),
            "{up}"
        );
        assert!(
            up.contains("CREATE FUNCTION") || up.contains("CREATE OR REPLACE FUNCTION app."),
            "{up}"
        );
        let validate = up.find("does not convert").unwrap();
        let backfill = up.find("strata:backfill").unwrap();
        assert!(validate < backfill, "the conversion is checked first");
        assert!(up.contains(&format!("USING btree ({shadow})")), "{up}");
        let down = sql(c.down.as_ref().unwrap());
        assert!(down.contains("DROP FUNCTION IF EXISTS app."), "{down}");
        assert!(
            down.contains(&format!("DROP COLUMN IF EXISTS {shadow}")),
            "{down}"
        );
    }

    #[test]
    fn contract_swaps_in_one_transaction_and_has_no_reverse() {
        let facts = people();
        let ctx = Context {
            version: "20260301120000",
            step: Some("contract"),
            table: Some(&facts),
        };
        let c = compile("app.\"People\"", "age", "integer", None, &ctx).unwrap();
        assert_eq!(c.up.len(), 1);
        let up = sql(&c.up);
        assert!(up.contains("DROP COLUMN age;"), "{up}");
        assert!(
            up.contains("RENAME COLUMN strata_20260301120000_typ_"),
            "{up}"
        );
        assert!(
            up.contains("ALTER INDEX app.strata_20260301120000_typ_"),
            "{up}"
        );
        assert!(up.contains("RENAME TO people_age_idx;"), "{up}");
        assert!(c.down.unwrap_err().contains("backup"));
        assert!(c.drops_data);
    }
}
