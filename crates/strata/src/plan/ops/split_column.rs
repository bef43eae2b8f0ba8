//! `split_column`: new columns computed from one (the design documents'
//! `full_name` → `first_name`, `last_name`).
//!
//! - `expand`: the new columns (nullable), a sync trigger that computes
//!   them from the row on every insert and on updates of the columns their
//!   expressions read, a batched backfill of every row, and a validation
//!   that lists the rows that split badly: the source is not blank but a
//!   part came out NULL, or the first part came out empty (the first 20
//!   keys). While the trigger is there the source column is the truth:
//!   a value written to a new column directly is recomputed.
//! - `contract` (after the app writes the new columns itself): the trigger
//!   and its function go. The source column stays; a `drop_column` after a
//!   deploy gate removes it.
//!
//! The end state is the plain `ADD COLUMN …; UPDATE … SET … ;`. The reverse
//! of `contract` installs the trigger again (rows written in between are
//! not recomputed: the app may have set their parts itself); the reverse of
//! `expand` drops the trigger, its function and the new columns.

use strata_source::plan::NewColumn;
use strata_source::sql::names::quote_ident;

use super::super::{Action, CompileError, Compiled, Context};
use super::shadow::{
    column, column_name, facts, install_trigger, remove_trigger, row_expression, row_keys,
    step_index, Helpers,
};

const OP: &str = "split_column";

/// Compiles one step of `split_column`.
pub(super) fn compile(
    table: &str,
    source_sql: &str,
    into: &[NewColumn],
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let step = step_index(OP, ctx, &["expand", "contract"])?;
    let facts = facts(OP, ctx)?;
    let source = column_name(source_sql);
    column(OP, facts, &source)?;
    let Some(first_part) = into.first() else {
        return Err(CompileError {
            message: format!("`{OP}` creates no column"),
            help: Some("list the new columns in `into`".to_owned()),
        });
    };
    let names: Vec<String> = into.iter().map(|c| column_name(&c.column)).collect();
    let mut key: Vec<&str> = vec![&source];
    key.extend(names.iter().map(String::as_str));
    let helpers = Helpers::for_table(ctx, facts, "spl", &key);
    // The expressions read the table as it was before `expand`: at
    // `contract` the new columns are in the facts too, and must not be read
    // as inputs.
    let mut inputs = facts.clone();
    inputs.columns.retain(|c| !names.contains(&c.name));
    let mut body = String::new();
    let mut reads: Vec<String> = Vec::new();
    for (c, name) in into.iter().zip(&names) {
        let (expr, used) = row_expression(&c.expression, &inputs, "NEW")?;
        body.push_str(&format!("  NEW.{} := {expr};\n", quote_ident(name)));
        for u in used {
            if !reads.contains(&u) {
                reads.push(u);
            }
        }
    }
    let trigger = install_trigger(&helpers, table, &reads, &body);

    if step == 1 {
        return Ok(Compiled {
            up: vec![Action::Transaction(remove_trigger(&helpers, table))],
            down: Ok(vec![Action::Transaction(trigger)]),
            drops_data: false,
        });
    }

    if let Some(taken) = names
        .iter()
        .find(|n| facts.columns.iter().any(|c| &&c.name == n))
    {
        return Err(CompileError {
            message: format!(
                "`{OP}`: {} already has a column {}",
                facts.name,
                quote_ident(taken)
            ),
            help: Some("pick another name, or drop the column first".to_owned()),
        });
    }
    let mut first: Vec<String> = into
        .iter()
        .zip(&names)
        .map(|(c, n)| {
            format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                quote_ident(n),
                c.column_type
            )
        })
        .collect();
    first.extend(trigger);
    let set = into
        .iter()
        .zip(&names)
        .map(|(c, n)| format!("{} = {}", quote_ident(n), c.expression))
        .collect::<Vec<_>>()
        .join(", ");
    let src = quote_ident(&source);
    let mut bad: Vec<String> = names
        .iter()
        .map(|n| format!("{} IS NULL", quote_ident(n)))
        .collect();
    bad.push(format!(
        "{}::text = ''",
        quote_ident(&column_name(&first_part.column))
    ));
    let up = vec![
        Action::Transaction(first),
        Action::Backfill(format!("UPDATE {table} SET {set}")),
        Action::Validate {
            sql: format!(
                "SELECT {} FROM {table} WHERE btrim({src}::text) <> '' AND ({}) LIMIT 20",
                row_keys(facts),
                bad.join(" OR ")
            ),
            message: format!(
                "rows of {table} whose {src} split badly: a part is NULL or the first is empty (first 20 keys); fix the rows or the expressions"
            ),
        },
    ];
    let mut down = remove_trigger(&helpers, table);
    for n in &names {
        down.push(format!(
            "ALTER TABLE {table} DROP COLUMN IF EXISTS {}",
            quote_ident(n)
        ));
    }
    Ok(Compiled {
        up,
        down: Ok(vec![Action::Transaction(down)]),
        drops_data: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, TableFacts};
    use super::*;

    fn users() -> TableFacts {
        TableFacts {
            name: "public.users".into(),
            columns: vec![ColumnFacts {
                name: "full_name".into(),
                type_sql: "text".into(),
                not_null: false,
                default: None,
                identity: None,
                generated: None,
            }],
            primary_key: vec!["id".into()],
            ..TableFacts::default()
        }
    }

    fn into() -> Vec<NewColumn> {
        vec![
            NewColumn {
                column: "first_name".into(),
                column_type: "text".into(),
                expression: "split_part(btrim(full_name), ' ', 1)".into(),
            },
            NewColumn {
                column: "\"Last Name\"".into(),
                column_type: "text".into(),
                expression: "nullif(btrim(substr(btrim(full_name), length(split_part(btrim(full_name), ' ', 1)) + 1)), '')".into(),
            },
        ]
    }

    #[test]
    fn expand_adds_computes_backfills_and_reports_bad_splits() {
        let facts = users();
        let ctx = Context {
            version: "20260301120000",
            step: None,
            table: Some(&facts),
        };
        let c = compile("users", "full_name", &into(), &ctx).unwrap();
        let up: Vec<String> = c.up.iter().map(|a| a.to_string()).collect();
        assert!(
            up[0].contains("ADD COLUMN \"Last Name\" text;"),
            "{}",
            up[0]
        );
        assert!(
            up[0].contains("NEW.first_name := split_part(btrim(NEW.full_name), ' ', 1);"),
            "{}",
            up[0]
        );
        assert!(
            up[0].contains("BEFORE INSERT OR UPDATE OF full_name ON users"),
            "{}",
            up[0]
        );
        assert!(
            up[1].starts_with("-- strata:backfill\nUPDATE users SET first_name = split_part"),
            "{}",
            up[1]
        );
        assert!(up[2].contains("WHERE btrim(full_name::text) <> '' AND (first_name IS NULL OR \"Last Name\" IS NULL OR first_name::text = '')"), "{}", up[2]);
        let down = c.down.unwrap()[0].to_string();
        assert!(
            down.contains("DROP COLUMN IF EXISTS \"Last Name\""),
            "{down}"
        );
    }

    #[test]
    fn contract_removes_the_trigger_and_its_reverse_puts_it_back() {
        let mut facts = users();
        facts.columns.push(ColumnFacts {
            name: "first_name".into(),
            ..facts.columns[0].clone()
        });
        let ctx = Context {
            version: "20260301120000",
            step: Some("contract"),
            table: Some(&facts),
        };
        let c = compile("users", "full_name", &into(), &ctx).unwrap();
        let up = c.up[0].to_string();
        assert!(
            up.contains("DROP TRIGGER IF EXISTS strata_20260301120000_spl_"),
            "{up}"
        );
        assert!(
            up.contains("DROP FUNCTION IF EXISTS public.strata_20260301120000_spl_"),
            "{up}"
        );
        let down = c.down.unwrap()[0].to_string();
        assert!(
            down.contains("NEW.first_name := split_part(btrim(NEW.full_name)"),
            "{down}"
        );
        assert!(!c.drops_data);
    }
}
